//! Making bundles without fwup: `loader pack`, `loader keygen`,
//! `loader sign`.
//!
//! `pack` reads fwup's configuration language as real `fwup.conf` files use
//! it ([`read`]) and writes the bundle in fwup's layout: the signature
//! (when signing), `meta.conf` in fwup's normalized form ([`print`]), then
//! the resources in declaration order, deflated and streamed
//! ([`zip_writer`]). For the fwup test corpus the `meta.conf` is
//! byte-identical to fwup 1.16's, so bundles get the same meta UUID.
//!
//! Paths in a config (`host-path`, `include`, `bootstrap-code-host-path`)
//! are looked up relative to the directory of the file that names them,
//! as fwup 1.16 does for host paths and includes, and then relative to the
//! working directory, where older fwup releases (and fwup's
//! `bootstrap-code-host-path`) look. Absolute paths are used as they are.

mod calls;
pub mod cli;
pub mod expr;
mod print;
#[cfg(test)]
mod print_props;
mod read;
mod resources;
mod schema;
mod sections;
pub mod sign;
mod sparse;
mod zip_records;
pub(crate) mod zip_writer;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bundle::conf::Value;
use crate::bundle::meta_conf::load_meta_conf;
use crate::bundle::meta_uuid::MetaIds;
use crate::bundle::signature::{self, SigningKey};
pub use sections::Origin;

/// fwup's default (and maximum) compression level.
pub const DEFAULT_LEVEL: u32 = 9;

/// Why a bundle could not be made. Config errors name the file and line.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{file} line {line}: {message}")]
    Config { file: String, line: usize, message: String },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("file-resource \"{resource}\" ({origin}): {problem}")]
    Resource {
        origin: Origin,
        resource: String,
        problem: String,
    },
    #[error("the meta.conf made from this config would not install: {0}")]
    MetaConf(String),
    #[error("writing the bundle: {0}")]
    Write(String),
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Bundle(String),
}

/// How to pack.
#[derive(Debug)]
pub struct PackOptions {
    /// Variables `${…}` sees before any `define` (the process environment).
    pub vars: BTreeMap<String, String>,
    /// Sign `meta.conf` with this key (`meta.conf.ed25519` comes first).
    pub signing_key: Option<SigningKey>,
    /// Time stamp of `meta.conf` in the archive, which is the bundle's
    /// creation date (fwup reads `meta-creation-date` from it); `None` is
    /// now. Set from `SOURCE_DATE_EPOCH` for reproducible bundles.
    pub creation_time: Option<u64>,
    /// Deflate level 0..=9.
    pub level: u32,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            vars: BTreeMap::new(),
            signing_key: None,
            creation_time: None,
            level: DEFAULT_LEVEL,
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct PackSummary {
    pub meta_conf: String,
    pub meta_uuid: String,
    pub resources: usize,
    /// Resource bytes stored (before compression).
    pub data_bytes: u64,
    pub bundle_bytes: u64,
    pub signed: bool,
}

/// Packs the bundle that `config` describes into `output`.
pub fn pack(config: &Path, output: &Path, opts: &PackOptions) -> Result<PackSummary, PackError> {
    let read::Config { mut root, resources } = read::read_config(config, opts.vars.clone())?;
    let prepared = resources
        .into_iter()
        .map(resources::Prepared::new)
        .collect::<Result<Vec<_>, _>>()?;
    for resource in &prepared {
        let Some(section) = root
            .sections
            .iter_mut()
            .find(|s| s.kind == "file-resource" && s.title.as_deref() == Some(resource.spec.name.as_str()))
        else {
            continue;
        };
        section.options.retain(|(k, _)| k != "length" && k != "blake2b-256");
        let lengths = resource.lengths.iter().map(u64::to_string).collect();
        section.options.push(("length".into(), Value::List(lengths)));
        let hex = resource.blake2b_256.iter().map(|b| format!("{b:02x}")).collect();
        section.options.push(("blake2b-256".into(), Value::Scalar(hex)));
    }
    let meta_conf = print::meta_conf_text(&root);
    // The engine must be able to install what we write.
    load_meta_conf(meta_conf.as_bytes(), &|_| None).map_err(|e| PackError::MetaConf(e.to_string()))?;

    let mtime = opts.creation_time.unwrap_or_else(now);
    let mtime = u32::try_from(mtime).unwrap_or(u32::MAX);
    let signature = opts
        .signing_key
        .as_ref()
        .map(|key| signature::sign(meta_conf.as_bytes(), key));
    let write = |out: File| -> Result<u64, PackError> {
        let werr = |e: std::io::Error| PackError::Write(format!("{}: {e}", output.display()));
        let mut zip = zip_writer::ZipWriter::new(BufWriter::with_capacity(1 << 20, out), opts.level);
        if let Some(signature) = &signature {
            zip.add_stored("meta.conf.ed25519", signature).map_err(werr)?;
        }
        let mut entry = zip
            .begin_deflated("meta.conf", meta_conf.len() as u64, Some(mtime))
            .map_err(werr)?;
        std::io::Write::write_all(&mut entry, meta_conf.as_bytes()).map_err(werr)?;
        entry.finish().map_err(werr)?;
        for resource in &prepared {
            let mut entry = zip
                .begin_deflated(&resource.archive_path(), resource.stored_len, None)
                .map_err(werr)?;
            resource.write_to(&mut entry)?;
            entry.finish().map_err(werr)?;
        }
        let out = zip.finish().map_err(werr)?;
        let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
        file.sync_all().map_err(werr)?;
        file.metadata().map(|m| m.len()).map_err(werr)
    };
    let bundle_bytes = write_atomically(output, write)?;
    Ok(PackSummary {
        meta_uuid: MetaIds::from_meta_conf(meta_conf.as_bytes()).uuid,
        resources: prepared.len(),
        data_bytes: prepared.iter().map(|r| r.stored_len).sum(),
        bundle_bytes,
        signed: signature.is_some(),
        meta_conf,
    })
}

/// Writes through a temporary file next to `output` and renames it into
/// place, so a failed pack never leaves a half-written bundle behind.
pub(crate) fn write_atomically<T>(
    output: &Path,
    write: impl FnOnce(File) -> Result<T, PackError>,
) -> Result<T, PackError> {
    let mut tmp_name = output.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = output.with_file_name(tmp_name);
    let file = File::create(&tmp).map_err(|e| PackError::Write(format!("{}: {e}", tmp.display())))?;
    let result = write(file).and_then(|value| {
        std::fs::rename(&tmp, output)
            .map(|()| value)
            .map_err(|e| PackError::Write(format!("renaming {} to {}: {e}", tmp.display(), output.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Finds `path` as named in the file `from` (see the module docs): the
/// directory of `from` first, then the working directory.
pub(crate) fn resolve_path(from: &str, path: &str) -> Result<PathBuf, String> {
    let wanted = Path::new(path);
    if wanted.is_absolute() {
        return if wanted.exists() {
            Ok(wanted.to_path_buf())
        } else {
            Err(format!("{path} does not exist"))
        };
    }
    let dir = Path::new(from).parent().unwrap_or(Path::new(""));
    let beside = dir.join(wanted);
    if beside.exists() {
        return Ok(beside);
    }
    if wanted.exists() {
        return Ok(wanted.to_path_buf());
    }
    let shown = if dir.as_os_str().is_empty() {
        ".".to_string()
    } else {
        dir.display().to_string()
    };
    Err(format!(
        "{path} does not exist (looked in {shown} and in the working directory)"
    ))
}

/// Reads a `.priv` signing key file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, PackError> {
    SigningKey::from_file(path).map_err(|e| PackError::Key(format!("signing key {}: {e}", path.display())))
}
