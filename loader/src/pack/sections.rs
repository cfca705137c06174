//! What `fwup -c` checks and rewrites when a top-level section of
//! `fwup.conf` closes (the validate callbacks of fwup's `cfgfile.c`):
//!
//! * `file-resource`: exactly one of `host-path` and `contents`; a name
//!   that maps to an archive path; host paths resolved now, so a missing
//!   file is reported with the line that names it;
//! * `mbr`: `bootstrap-code-host-path` is read into `bootstrap-code` (440
//!   bytes as hex), then the table is checked as the engine will read it;
//! * `gpt`: `boot = true` becomes bit 2 of `flags`, then checked;
//! * `uboot-environment`: checked.

use std::path::PathBuf;

use super::resolve_path;
use super::schema::parse_int;
use crate::bundle::conf::{parse_u64, Section, Value};
use crate::bundle::parse::parser::At;
use crate::formats::gpt::GptSpec;
use crate::formats::mbr::MbrSpec;
use crate::formats::uboot_env::UbootEnvSpec;

/// fwup's MBR boot code: the bytes before the disk signature.
const BOOTSTRAP_LEN: usize = 440;
/// GPT attribute bit 2, "legacy BIOS bootable", which `boot = true` sets.
const GPT_BOOT_FLAG: u64 = 0x4;

/// Where a declaration is: `fwup.conf line 12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.source, self.line)
    }
}

/// Where a resource's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceData {
    /// Files concatenated in order (`host-path = "a;b"`), resolved.
    Files(Vec<PathBuf>),
    /// `contents = "…"`.
    Contents(String),
}

/// One `file-resource` to pack.
#[derive(Debug, Clone)]
pub(crate) struct ResourceSpec {
    pub name: String,
    pub origin: Origin,
    pub data: ResourceData,
    /// Record holes instead of storing them (`skip-holes`, default true).
    pub skip_holes: bool,
    /// `assert-size-lte` / `-gte`, converted from blocks to bytes.
    pub max_size: Option<u64>,
    pub min_size: Option<u64>,
}

impl ResourceSpec {
    /// fwup defines `FWUP_SIZE_<name>` (with `-`, `/`, `.` as `_`) after a
    /// resource with a single host file, for the rest of the config.
    pub fn size_variable(&self) -> Option<(String, String)> {
        let ResourceData::Files(files) = &self.data else {
            return None;
        };
        let [file] = files.as_slice() else {
            return None;
        };
        let size = std::fs::metadata(file).ok()?.len();
        let key: String = self
            .name
            .chars()
            .map(|c| if matches!(c, '-' | '/' | '.') { '_' } else { c })
            .collect();
        Some((format!("FWUP_SIZE_{key}"), size.to_string()))
    }
}

/// Checks (and completes) a top-level section that just closed; returns
/// the resource a `file-resource` declares.
pub(crate) fn close_top_level(at: At<'_>, section: &mut Section) -> Result<Option<ResourceSpec>, String> {
    match section.kind.as_str() {
        "file-resource" => resource(at, section).map(Some),
        "mbr" => {
            read_bootstrap_code(at, section)?;
            MbrSpec::from_section(section).map_err(|e| e.to_string())?;
            Ok(None)
        }
        "gpt" => {
            fold_boot_flags(section)?;
            GptSpec::from_section(section).map_err(|e| e.to_string())?;
            Ok(None)
        }
        "uboot-environment" => {
            UbootEnvSpec::from_section(section).map_err(|e| e.to_string())?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn scalar<'a>(section: &'a Section, key: &str) -> Option<&'a str> {
    match section.get(key) {
        Some(Value::Scalar(s)) => Some(s),
        _ => None,
    }
}

fn resource(at: At<'_>, section: &Section) -> Result<ResourceSpec, String> {
    let name = section.title.clone().unwrap_or_default();
    check_resource_name(&name).map_err(|problem| format!("{section}: {problem}"))?;
    let data = match (scalar(section, "host-path"), scalar(section, "contents")) {
        (Some(_), Some(_)) => return Err(format!("{section}: set host-path or contents, not both")),
        (None, None) => return Err(format!("{section}: host-path or contents must be set")),
        (None, Some(contents)) => ResourceData::Contents(contents.to_string()),
        (Some(paths), None) => {
            // Like strtok: empty pieces (`a;;b`, a trailing `;`) are skipped.
            let pieces: Vec<&str> = paths.split(';').filter(|p| !p.is_empty()).collect();
            if pieces.is_empty() {
                return Err(format!("{section}: host-path is empty"));
            }
            let files = pieces
                .iter()
                .map(|p| resolve_path(at.source, p).map_err(|e| format!("{section}: host-path `{p}`: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            ResourceData::Files(files)
        }
    };
    let blocks = |key: &str| -> Result<Option<u64>, String> {
        let Some(text) = scalar(section, key) else {
            return Ok(None);
        };
        let n = parse_int(text).ok_or_else(|| format!("{section}: {key} `{text}` is not a block count"))?;
        // fwup's default -1 means "no assertion".
        Ok(u64::try_from(n).ok().map(|n| n.saturating_mul(512)))
    };
    Ok(ResourceSpec {
        origin: Origin {
            source: at.source.to_string(),
            line: at.line,
        },
        skip_holes: scalar(section, "skip-holes") != Some("false"),
        max_size: blocks("assert-size-lte")?,
        min_size: blocks("assert-size-gte")?,
        data,
        name,
    })
}

/// fwup's rules for turning a resource name into an archive path.
fn check_resource_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the resource name can't be empty");
    }
    if name.ends_with('/') {
        return Err("a resource name can't end in a '/'");
    }
    if name == "/meta.conf" {
        return Err("resources can't be named /meta.conf");
    }
    if name == "/data" || name.starts_with("/data/") {
        return Err("use a normal resource name rather than specifying /data");
    }
    Ok(())
}

fn read_bootstrap_code(at: At<'_>, section: &mut Section) -> Result<(), String> {
    let Some(path) = scalar(section, "bootstrap-code-host-path").map(str::to_string) else {
        return Ok(());
    };
    if section.get("bootstrap-code").is_some() {
        return Ok(());
    }
    let file = resolve_path(at.source, &path).map_err(|e| format!("{section}: bootstrap-code-host-path: {e}"))?;
    let bytes = std::fs::read(&file).map_err(|e| format!("{section}: reading {}: {e}", file.display()))?;
    let Some(code) = bytes.get(..BOOTSTRAP_LEN) else {
        return Err(format!(
            "{section}: mbr bootstrap code in `{path}` should be {BOOTSTRAP_LEN} bytes, it has {}",
            bytes.len()
        ));
    };
    let hex: String = code.iter().map(|b| format!("{b:02x}")).collect();
    section.options.push(("bootstrap-code".into(), Value::Scalar(hex)));
    Ok(())
}

/// `boot = true` in a GPT partition becomes bit 2 of `flags` (written as
/// hex), and `boot` itself is dropped, as in fwup's `meta.conf`.
fn fold_boot_flags(section: &mut Section) -> Result<(), String> {
    let table = section.to_string();
    for part in section.sections.iter_mut().filter(|s| s.kind == "partition") {
        let boot = scalar(part, "boot") == Some("true");
        part.options.retain(|(k, _)| k != "boot");
        if !boot {
            continue;
        }
        let flags = match scalar(part, "flags") {
            None => 0,
            Some(text) => parse_u64(text).ok_or_else(|| format!("{table} {part}: flags `{text}` is not a number"))?,
        };
        part.options.retain(|(k, _)| k != "flags");
        part.options
            .push(("flags".into(), Value::Scalar(format!("0x{:x}", flags | GPT_BOOT_FLAG))));
    }
    Ok(())
}
