//! Building the typed [`Manifest`] from a parsed `meta.conf` tree.
//!
//! The option tables are fwup's (`cfgfile.c`): what fwup knows is read and
//! checked, pack-time options (`host-path`, `contents`, `assert-size-*`,
//! `skip-holes`) are accepted and ignored, and unknown simple options are
//! tolerated like fwup does for forward compatibility, but reported in
//! [`Manifest::warnings`]. Unknown sections, actions and requirements are
//! errors: the loader cannot know what they would have written.

use std::collections::HashSet;

use super::conf::{parse_u64, Section, Value, ValueError};
use super::fwup_version::{check_fwup_version, FwupVersionError};
use super::manifest::{Manifest, Meta, Requirement, Resource, ResourceHandler, Task};
use super::manifest_calls::{decode_action, decode_requirement, split_calls, CallError, Declared, Event};

/// Top-level options fwup knows besides the sections.
const ROOT_OPTIONS: [&str; 13] = [
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
const RESOURCE_OPTIONS: [&str; 8] =
    ["length", "blake2b-256", "host-path", "contents", "skip-holes", "sha256", "assert-size-lte", "assert-size-gte"];
const TASK_OPTIONS: [&str; 4] =
    ["reqlist", "require-partition1-offset", "require-unmounted-destination", "verify-on-the-fly"];
const EVENT_KINDS: [&str; 3] = ["on-init", "on-finish", "on-error"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("meta.conf: {0}")]
    Value(#[from] ValueError),
    #[error("meta.conf: {0}")]
    FwupVersion(#[from] FwupVersionError),
    #[error("meta.conf: unknown section `{kind}` in {parent}")]
    UnknownSection { parent: String, kind: String },
    #[error("meta.conf: a `{kind}` section in {parent} needs a name, as in `{kind} \"NAME\" {{ … }}`")]
    MissingTitle { parent: String, kind: String },
    #[error("meta.conf: `{kind}` in {parent} takes no name, found \"{title}\"")]
    UnexpectedTitle { parent: String, kind: String, title: String },
    #[error("meta.conf: {kind} \"{title}\" is declared twice in {parent}")]
    Duplicate { parent: String, kind: String, title: String },
    #[error("meta.conf: file-resource \"{resource}\": {problem}")]
    Resource { resource: String, problem: String },
    #[error("meta.conf: task \"{task}\", {handler}: unknown action `{action}`")]
    UnknownAction { task: String, handler: String, action: String },
    #[error("meta.conf: task \"{task}\", {handler}: {problem}")]
    BadAction { task: String, handler: String, problem: String },
    #[error("meta.conf: task \"{task}\", reqlist: unknown requirement `{name}`")]
    UnknownRequirement { task: String, name: String },
    #[error("meta.conf: task \"{task}\", reqlist: {problem}")]
    BadRequirement { task: String, problem: String },
    #[error("meta.conf: task \"{task}\": on-resource \"{resource}\" names no file-resource")]
    UnknownResource { task: String, resource: String },
}

impl Manifest {
    /// Reads and validates everything the engine needs from the tree that
    /// `parse_conf` returned.
    pub fn from_conf(root: &Section) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest { meta: read_meta(root)?, ..Manifest::default() };
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
                "file-resource" => manifest.resources.push(read_resource(section, title, &mut manifest.warnings)?),
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
            tasks.push(read_task(section, &declared, &resources, &mut manifest.warnings)?);
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
fn warn_unknown_options(section: &Section, known: &[&str], location: &str, warnings: &mut Vec<String>) {
    for (key, _) in &section.options {
        if !known.contains(&key.as_str()) {
            warnings.push(format!("{location}: unknown option `{key}` ignored"));
        }
    }
}

fn unknown_section(parent: &str, kind: &str) -> ManifestError {
    ManifestError::UnknownSection { parent: parent.to_string(), kind: kind.to_string() }
}

fn duplicate(parent: &str, section: &Section, title: &str) -> ManifestError {
    ManifestError::Duplicate { parent: parent.to_string(), kind: section.kind.clone(), title: title.to_string() }
}

/// The name of a section that must have one.
fn titled<'a>(section: &'a Section, parent: &str) -> Result<&'a str, ManifestError> {
    section
        .title
        .as_deref()
        .ok_or_else(|| ManifestError::MissingTitle { parent: parent.to_string(), kind: section.kind.clone() })
}

/// An integer as libconfuse reads `CFG_INT` options: `0x` hex, `0b`
/// binary, leading-`0` octal or decimal.
fn conf_int(text: &str) -> Option<u64> {
    match text.strip_prefix("0b") {
        Some(binary) => u64::from_str_radix(binary, 2).ok(),
        None => parse_u64(text),
    }
}

fn read_resource(section: &Section, name: &str, warnings: &mut Vec<String>) -> Result<Resource, ManifestError> {
    let problem = |problem: String| ManifestError::Resource { resource: name.to_string(), problem };
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
        return Err(problem("length adds up to more than a 64-bit file offset can hold".into()));
    }

    let hex = section.str("blake2b-256")?.ok_or_else(|| problem("no blake2b-256 hash".into()))?;
    let blake2b_256 = decode_hash(hex)
        .ok_or_else(|| problem(format!("blake2b-256 `{hex}` is not 64 lower-case hex digits")))?;
    Ok(Resource { name: name.to_string(), sparse_map, blake2b_256 })
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

/// A `funlist`/`reqlist` value as a flat list (a single value is a list
/// of one, as libconfuse stores it).
fn as_list(value: Option<&Value>) -> &[String] {
    match value {
        None => &[],
        Some(Value::Scalar(s)) => std::slice::from_ref(s),
        Some(Value::List(items)) => items,
    }
}

fn read_task(
    section: &Section,
    declared: &Declared<'_>,
    resources: &HashSet<&str>,
    warnings: &mut Vec<String>,
) -> Result<Task, ManifestError> {
    let name = titled(section, "meta.conf")?;
    let location = section.to_string();
    warn_unknown_options(section, &TASK_OPTIONS, &location, warnings);
    let mut task = Task { name: name.to_string(), ..Task::default() };

    // Deprecated guards; the last two never changed what fwup writes.
    match section.str("require-partition1-offset")? {
        None | Some("-1") => {}
        Some(text) => {
            let block_offset = conf_int(text)
                .ok_or_else(|| section.bad("require-partition1-offset", &format!("`{text}` is not a block offset")))?;
            task.requirements.push(Requirement::PartitionOffset { partition: 1, block_offset });
        }
    }
    section.bool("require-unmounted-destination")?;
    section.bool("verify-on-the-fly")?;

    let reqlist = as_list(section.get("reqlist"));
    let calls = split_calls(reqlist, "reqlist").map_err(|problem| ManifestError::BadRequirement {
        task: name.to_string(),
        problem,
    })?;
    for call in calls {
        let requirement = decode_requirement(call, declared).map_err(|e| match e {
            CallError::Unknown(n) => ManifestError::UnknownRequirement { task: name.to_string(), name: n },
            CallError::Invalid(problem) => ManifestError::BadRequirement { task: name.to_string(), problem },
        })?;
        task.requirements.push(requirement);
    }

    let mut handled = HashSet::new();
    for sub in &section.sections {
        let kind = sub.kind.as_str();
        if EVENT_KINDS.contains(&kind) {
            if let Some(title) = &sub.title {
                return Err(ManifestError::UnexpectedTitle {
                    parent: location.clone(),
                    kind: kind.to_string(),
                    title: title.clone(),
                });
            }
            continue;
        }
        if kind != "on-resource" {
            return Err(unknown_section(&location, kind));
        }
        let resource = titled(sub, &location)?;
        if !handled.insert(resource) {
            return Err(duplicate(&location, sub, resource));
        }
        if !resources.contains(resource) {
            return Err(ManifestError::UnknownResource { task: name.to_string(), resource: resource.to_string() });
        }
        let event = Event::Resource(resource);
        let actions = read_handler(&[sub], name, event, declared, warnings)?;
        let delta_source = sub.options.iter().any(|(k, _)| k.starts_with("delta-source-"));
        task.on_resource.push(ResourceHandler { resource: resource.to_string(), actions, delta_source });
    }
    for (kind, event) in EVENT_KINDS.iter().zip([Event::Init, Event::Finish, Event::Error]) {
        // A repeated `on-init { }` is the same section to libconfuse.
        let sections: Vec<&Section> = section.children(kind).collect();
        let actions = read_handler(&sections, name, event, declared, warnings)?;
        match event {
            Event::Init => task.on_init = actions,
            Event::Finish => task.on_finish = actions,
            _ => task.on_error = actions,
        }
    }
    Ok(task)
}

fn handler_label(event: Event<'_>) -> String {
    match event {
        Event::Init => "on-init".into(),
        Event::Finish => "on-finish".into(),
        Event::Error => "on-error".into(),
        Event::Resource(name) => format!("on-resource \"{name}\""),
    }
}

/// The actions of one event handler (possibly written as several sections
/// of the same kind; the last `funlist` wins as with libconfuse).
fn read_handler(
    sections: &[&Section],
    task: &str,
    event: Event<'_>,
    declared: &Declared<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<super::manifest::Action>, ManifestError> {
    let handler = handler_label(event);
    let location = format!("task \"{task}\", {handler}");
    let bad = |problem: String| ManifestError::BadAction { task: task.to_string(), handler: handler.clone(), problem };
    let mut funlist = None;
    for section in sections {
        if let Some(sub) = section.sections.first() {
            return Err(unknown_section(&location, &sub.kind));
        }
        for (key, value) in &section.options {
            match key.as_str() {
                "funlist" => funlist = Some(value),
                "verify-on-the-fly" => {
                    section.bool(key)?;
                }
                k if k.starts_with("delta-source-") && matches!(event, Event::Resource(_)) => {}
                _ => warnings.push(format!("{location}: unknown option `{key}` ignored")),
            }
        }
    }
    let calls = split_calls(as_list(funlist), "funlist").map_err(bad)?;
    calls
        .into_iter()
        .map(|call| {
            decode_action(call, event, declared).map_err(|e| match e {
                CallError::Unknown(action) => {
                    ManifestError::UnknownAction { task: task.to_string(), handler: handler.clone(), action }
                }
                CallError::Invalid(problem) => bad(problem),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
