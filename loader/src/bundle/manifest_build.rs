//! Building the typed [`Manifest`] from a parsed `meta.conf` tree.
//!
//! The option tables are fwup's (`cfgfile.c`): what fwup knows is read and
//! checked, pack-time options (`host-path`, `contents`, `assert-size-*`,
//! `skip-holes`) are accepted and ignored. A bundle's `meta.conf` reaches
//! here already without the names fwup does not know (`parse_meta_conf`
//! skips them as libconfuse does); in a tree from `parse_conf`, unknown
//! options are reported in [`Manifest::warnings`] and unknown sections are
//! errors. Unknown actions and requirements are errors for
//! [`Manifest::from_conf`] (what `fwup -c` accepts) and make only their task
//! unusable for [`Manifest::for_install`] (what `fwup -a` does).

use std::collections::HashSet;

use super::conf::{parse_u64, Section, Value, ValueError};
use super::fwup_version::{check_fwup_version, FwupVersionError};
use super::manifest::{Manifest, Meta, Resource};
use super::manifest_calls::Declared;
use super::manifest_task::{read_task, Calls};

/// Top-level options fwup knows besides the sections (`__unknown` is a
/// real option in fwup's table).
const ROOT_OPTIONS: [&str; 15] = [
    "block-cache-size-mb",
    "__unknown",
    "meta-product",
    "meta-description",
    "meta-version",
    "meta-author",
    "meta-platform",
    "meta-architecture",
    "meta-creation-date",
    "meta-fwup-version",
    "meta-vcs-identifier",
    "meta-misc",
    "meta-uuid",
    "meta-nickname",
    "require-fwup-version",
];
/// `file-resource` options; only `length` and `blake2b-256` matter when
/// applying, the rest are used by `fwup -c`.
const RESOURCE_OPTIONS: [&str; 9] = [
    "__unknown",
    "length",
    "blake2b-256",
    "host-path",
    "contents",
    "skip-holes",
    "sha256",
    "assert-size-lte",
    "assert-size-gte",
];

/// Why a parsed `meta.conf` cannot be installed. Every message starts with
/// `meta.conf:` and names the section (task, handler, resource) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("{}", in_meta_conf(.0))]
    Value(#[from] ValueError),
    #[error("meta.conf: {0}")]
    FwupVersion(#[from] FwupVersionError),
    #[error("meta.conf: unknown section `{kind}` in {parent}")]
    UnknownSection { parent: String, kind: String },
    #[error("meta.conf: a `{kind}` section in {parent} needs a name, as in `{kind} \"NAME\" {{ … }}`")]
    MissingTitle { parent: String, kind: String },
    #[error("meta.conf: `{kind}` in {parent} takes no name, found \"{title}\"")]
    UnexpectedTitle {
        parent: String,
        kind: String,
        title: String,
    },
    #[error("meta.conf: {kind} \"{title}\" is declared twice in {parent}")]
    Duplicate {
        parent: String,
        kind: String,
        title: String,
    },
    #[error("meta.conf: file-resource \"{resource}\": {problem}")]
    Resource { resource: String, problem: String },
    #[error("meta.conf: task \"{task}\", {handler}: unknown action `{action}`")]
    UnknownAction {
        task: String,
        handler: String,
        action: String,
    },
    #[error("meta.conf: task \"{task}\", {handler}: {problem}")]
    BadAction {
        task: String,
        handler: String,
        problem: String,
    },
    #[error("meta.conf: task \"{task}\", reqlist: unknown requirement `{name}`")]
    UnknownRequirement { task: String, name: String },
    #[error("meta.conf: task \"{task}\", reqlist: {problem}")]
    BadRequirement { task: String, problem: String },
    #[error("meta.conf: task \"{task}\": on-resource \"{resource}\" names no file-resource")]
    UnknownResource { task: String, resource: String },
}

/// A [`ValueError`] names its section; the root is already "meta.conf".
fn in_meta_conf(e: &ValueError) -> String {
    if e.section == "meta.conf" {
        e.to_string()
    } else {
        format!("meta.conf: {e}")
    }
}

impl Manifest {
    /// Reads and validates everything the engine needs from the tree that
    /// `parse_conf` returned; every action and guard must be one fwup
    /// knows, with valid arguments (what `fwup -c` demands).
    pub fn from_conf(root: &Section) -> Result<Manifest, ManifestError> {
        Self::build(root, Calls::Strict)
    }

    /// Like [`Manifest::from_conf`], as fwup reads a bundle's `meta.conf`
    /// to install it: a task whose actions or guards fwup cannot run (a
    /// newer fwup's action, say) does not spoil the others. Such a task is
    /// never chosen (bad guard) or refused when chosen (bad action), and
    /// each problem is in [`Manifest::warnings`].
    pub fn for_install(root: &Section) -> Result<Manifest, ManifestError> {
        Self::build(root, Calls::Install)
    }

    fn build(root: &Section, calls: Calls) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest {
            meta: read_meta(root)?,
            ..Manifest::default()
        };
        manifest.require_fwup_version = root.str("require-fwup-version")?.map(str::to_string);
        if let Some(required) = &manifest.require_fwup_version {
            check_fwup_version(required)?;
        }
        warn_unknown_options(root, &ROOT_OPTIONS, "meta.conf", &mut manifest.warnings);

        let mut seen = HashSet::new();
        for section in &root.sections {
            let kind = section.kind.as_str();
            if !["file-resource", "mbr", "gpt", "uboot-environment", "task"].contains(&kind) {
                return Err(unknown_section("meta.conf", kind));
            }
            let title = titled(section, "meta.conf")?;
            if !seen.insert((kind, title)) {
                return Err(duplicate("meta.conf", section, title));
            }
            match kind {
                "file-resource" => manifest
                    .resources
                    .push(read_resource(section, title, &mut manifest.warnings)?),
                "mbr" => manifest.mbrs.push(section.clone()),
                "gpt" => manifest.gpts.push(section.clone()),
                "uboot-environment" => manifest.uboot_envs.push(section.clone()),
                _ => {}
            }
        }

        let declared = Declared {
            mbrs: manifest.mbrs.iter().filter_map(|s| s.title.as_deref()).collect(),
            gpts: manifest.gpts.iter().filter_map(|s| s.title.as_deref()).collect(),
            uboot_envs: manifest.uboot_envs.iter().filter_map(|s| s.title.as_deref()).collect(),
        };
        let resources: HashSet<&str> = manifest.resources.iter().map(|r| r.name.as_str()).collect();
        let mut tasks = Vec::new();
        for section in root.children("task") {
            tasks.push(read_task(
                section,
                &declared,
                &resources,
                calls,
                &mut manifest.warnings,
            )?);
        }
        manifest.tasks = tasks;
        Ok(manifest)
    }
}

fn read_meta(root: &Section) -> Result<Meta, ValueError> {
    let get = |key: &str| root.str(key).map(|v| v.map(str::to_string));
    Ok(Meta {
        product: get("meta-product")?,
        description: get("meta-description")?,
        version: get("meta-version")?,
        author: get("meta-author")?,
        platform: get("meta-platform")?,
        architecture: get("meta-architecture")?,
        vcs_identifier: get("meta-vcs-identifier")?,
        misc: get("meta-misc")?,
        creation_date: get("meta-creation-date")?,
        fwup_version: get("meta-fwup-version")?,
    })
}

/// Notes options that fwup would silently ignore.
pub(super) fn warn_unknown_options(section: &Section, known: &[&str], location: &str, warnings: &mut Vec<String>) {
    for (key, _) in &section.options {
        if !known.contains(&key.as_str()) {
            warnings.push(format!("{location}: unknown option `{key}` ignored"));
        }
    }
}

pub(super) fn unknown_section(parent: &str, kind: &str) -> ManifestError {
    ManifestError::UnknownSection {
        parent: parent.to_string(),
        kind: kind.to_string(),
    }
}

pub(super) fn duplicate(parent: &str, section: &Section, title: &str) -> ManifestError {
    ManifestError::Duplicate {
        parent: parent.to_string(),
        kind: section.kind.clone(),
        title: title.to_string(),
    }
}

/// The name of a section that must have one.
pub(super) fn titled<'a>(section: &'a Section, parent: &str) -> Result<&'a str, ManifestError> {
    section.title.as_deref().ok_or_else(|| ManifestError::MissingTitle {
        parent: parent.to_string(),
        kind: section.kind.clone(),
    })
}

/// An integer as libconfuse reads `CFG_INT` options: `0x` hex, `0b`
/// binary, leading-`0` octal or decimal.
pub(super) fn conf_int(text: &str) -> Option<u64> {
    match text.strip_prefix("0b") {
        Some(binary) => u64::from_str_radix(binary, 2).ok(),
        None => parse_u64(text),
    }
}

fn read_resource(section: &Section, name: &str, warnings: &mut Vec<String>) -> Result<Resource, ManifestError> {
    let problem = |problem: String| ManifestError::Resource {
        resource: name.to_string(),
        problem,
    };
    if let Some(sub) = section.sections.first() {
        return Err(unknown_section(&section.to_string(), &sub.kind));
    }
    warn_unknown_options(section, &RESOURCE_OPTIONS, &section.to_string(), warnings);

    let lengths: Vec<&str> = match section.get("length") {
        None => Vec::new(),
        Some(Value::Scalar(s)) => vec![s.as_str()],
        Some(Value::List(items)) => items.iter().map(String::as_str).collect(),
    };
    let mut sparse_map = lengths
        .iter()
        .map(|text| conf_int(text).ok_or_else(|| problem(format!("length `{text}` is not a byte count"))))
        .collect::<Result<Vec<u64>, _>>()?;
    if sparse_map.is_empty() {
        // libconfuse's default for a missing `length`: an empty resource.
        sparse_map.push(0);
    }
    let total = sparse_map.iter().try_fold(0u64, |sum, &n| sum.checked_add(n));
    if total.is_none_or(|t| t > i64::MAX as u64) {
        return Err(problem(
            "length adds up to more than a 64-bit file offset can hold".into(),
        ));
    }

    let hex = section
        .str("blake2b-256")?
        .ok_or_else(|| problem("no blake2b-256 hash".into()))?;
    let blake2b_256 =
        decode_hash(hex).ok_or_else(|| problem(format!("blake2b-256 `{hex}` is not 64 lower-case hex digits")))?;
    Ok(Resource {
        name: name.to_string(),
        sparse_map,
        blake2b_256,
    })
}

/// fwup compares its lower-case hex digest with the stored text, so only
/// lower-case digits can ever match.
fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
