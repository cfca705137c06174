//! Building the loader's initramfs: a reproducible `newc` cpio archive with
//! the static `loader` binary as `/init`, compressed so the kernel unpacks it.
//!
//! Layout (all entries owned by root, stamped with `SOURCE_DATE_EPOCH`):
//!
//! | path | what |
//! |---|---|
//! | `/init` | the musl `loader` binary (0755), checked to be a static x86-64 ELF |
//! | `/dev/console` | char device 5,1, so the kernel's early output and `/init`'s stdio work before devtmpfs |
//! | `/dev /proc /sys /run /tmp /root /etc` | mount points and working directories |
//! | `/etc/loader.conf` | optional default configuration |
//! | `/etc/loader/keys/NN.pub` | optional fwup public keys; when present the loader refuses unsigned bundles |
//! | `/etc/loader/ca/*.pem` | optional extra CA certificates for HTTPS |
//!
//! Two builds from the same inputs and epoch are byte-identical: entries are
//! sorted, inode numbers are assigned in that order, and nothing about the
//! build host (owners, times, file order on disk) reaches the archive.
//!
//! [`wrap_bundle`] makes the second kind of archive: a bundle at
//! `/root/install.fw`, stored uncompressed, to be loaded as an extra initrd
//! by boot loaders that cannot name files themselves (UEFI iPXE builds).

#[cfg(feature = "host-tools")]
pub mod cli;
mod compress;
mod cpio;
mod init_binary;
mod tree;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;

pub use compress::{compress, Compression};
pub use cpio::NewcWriter;
pub use tree::{FileTree, Node};

/// Where the default configuration goes.
pub const CONFIG_PATH: &str = "etc/loader.conf";
/// Directory of baked-in fwup public keys (one `NN.pub` per key).
pub const KEYS_DIR: &str = "etc/loader/keys";
/// Directory of extra CA certificates.
pub const CA_DIR: &str = "etc/loader/ca";
/// Where an injected bundle lands, for the initramfs and for iPXE's `initrd URL /root/install.fw`.
pub const BUNDLE_PATH: &str = "root/install.fw";

/// Directories every initramfs has, with their permissions.
const SKELETON_DIRS: &[(&str, u32)] = &[
    ("dev", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
];
/// `/dev/console`: character device 5,1.
const CONSOLE: (&str, u32, u32) = ("dev/console", 5, 1);

/// Errors building an initramfs; each names the input to fix.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("writing the cpio archive: {0}")]
    Write(io::Error),
    #[error("compressing the initramfs: {0}")]
    Compress(io::Error),
    #[error("{path}: expected {expected} bytes but the file ended after {actual} (did it change while being packed?)")]
    ShortFile { path: String, expected: u64, actual: u64 },
    #[error("initramfs path {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("initramfs entry {path}: mode {mode:o} has bits beyond the permission bits (0o7777)")]
    BadMode { path: String, mode: u32 },
    #[error("{path} is {len} bytes; a cpio entry holds at most 4294967295 bytes")]
    FileTooLarge { path: String, len: u64 },
    #[error("cannot add {path} to the initramfs: {reason}")]
    Conflict { path: String, reason: String },
    #[error("init binary {path}: {reason}")]
    BadInit { path: PathBuf, reason: String },
    #[error(
        "public key #{index} ({key:?}) is not an fwup public key: expected the base64 of 32 bytes, as in fwup-key.pub"
    )]
    BadPublicKey { index: usize, key: String },
    #[error("CA certificate {path}: no `-----BEGIN CERTIFICATE-----` block (give PEM files)")]
    BadCaCert { path: PathBuf },
    #[error("SOURCE_DATE_EPOCH={0:?} is not a whole number of seconds from 0 to 4294967295")]
    BadEpoch(String),
    #[error("unknown initramfs compression `{0}` (use xz, gzip or none)")]
    UnknownCompression(String),
}

/// A file added to the initramfs as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute path inside the initramfs, e.g. `/etc/hosts`.
    pub path: String,
    pub permissions: u32,
    pub contents: Vec<u8>,
}

/// What goes into the loader's initramfs.
#[derive(Debug, Clone, Default)]
pub struct InitramfsSpec {
    /// The statically linked `loader` (target `x86_64-unknown-linux-musl`), becomes `/init`.
    pub init_binary: PathBuf,
    /// Text of `/etc/loader.conf`.
    pub config: Option<String>,
    /// fwup public keys (base64, the contents of `fwup-key.pub`); the loader enforces them.
    pub public_keys: Vec<String>,
    /// PEM files copied to `/etc/loader/ca/` under their own file names.
    pub ca_certs: Vec<PathBuf>,
    pub extra_files: Vec<ExtraFile>,
    pub compression: Compression,
}

/// The file tree for `spec`, before archiving: what [`build`] writes.
pub fn tree(spec: &InitramfsSpec) -> Result<FileTree, InitramfsError> {
    let mut tree = FileTree::new();
    for (path, permissions) in SKELETON_DIRS {
        tree.directory(path, *permissions)?;
    }
    let (console, major, minor) = CONSOLE;
    tree.char_device(console, 0o600, major, minor)?;

    let init = read(&spec.init_binary)?;
    init_binary::check(&init).map_err(|reason| InitramfsError::BadInit {
        path: spec.init_binary.clone(),
        reason,
    })?;
    tree.file("init", 0o755, init)?;

    if let Some(config) = &spec.config {
        tree.file(CONFIG_PATH, 0o644, config.as_bytes().to_vec())?;
    }
    for (index, key) in spec.public_keys.iter().enumerate() {
        let key = checked_public_key(index + 1, key)?;
        tree.file(
            &format!("{KEYS_DIR}/{index:02}.pub"),
            0o644,
            format!("{key}\n").into_bytes(),
        )?;
    }
    for path in &spec.ca_certs {
        let pem = read(path)?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(InitramfsError::BadCaCert { path: path.clone() });
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| InitramfsError::BadCaCert { path: path.clone() })?;
        let name = if name.ends_with(".pem") {
            name
        } else {
            format!("{name}.pem")
        };
        tree.file(&format!("{CA_DIR}/{name}"), 0o644, pem)?;
    }
    for extra in &spec.extra_files {
        tree.file(&extra.path, extra.permissions, extra.contents.clone())?;
    }
    Ok(tree)
}

/// The compressed initramfs for `spec`, every entry stamped with `epoch`.
pub fn build(spec: &InitramfsSpec, epoch: u32) -> Result<Vec<u8>, InitramfsError> {
    let archive = tree(spec)?.to_cpio(epoch)?;
    compress(&archive, spec.compression)
}

/// Writes an uncompressed cpio holding `bundle` at `/root/install.fw` to
/// `out`, streaming the bundle. Loaded as a second initrd after the loader's
/// initramfs, the kernel unpacks it on top. The kernel needs each archive in
/// a chain to start on a 4-byte boundary; xz files always end on one, so
/// `cat initramfs.cpio.xz install.cpio` is also a valid single initrd.
pub fn wrap_bundle<W: Write>(bundle: &Path, epoch: u32, out: W) -> Result<W, InitramfsError> {
    let read_error = |source| InitramfsError::Read {
        path: bundle.to_owned(),
        source,
    };
    let file = File::open(bundle).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    let mut writer = NewcWriter::new(out, epoch);
    writer.directory("root", 0o700)?;
    writer.file_from_reader(BUNDLE_PATH, 0o644, len, io::BufReader::new(file))?;
    writer.finish()
}

/// The archive timestamp from a `SOURCE_DATE_EPOCH` value: unset or empty
/// means 0 (1970), anything else must be whole seconds that fit the cpio field.
pub fn parse_source_date_epoch(value: Option<&str>) -> Result<u32, InitramfsError> {
    match value.map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text
            .parse::<u32>()
            .map_err(|_| InitramfsError::BadEpoch(text.to_owned())),
    }
}

/// [`parse_source_date_epoch`] of the process environment.
pub fn source_date_epoch() -> Result<u32, InitramfsError> {
    let value = std::env::var_os("SOURCE_DATE_EPOCH").map(|v| v.to_string_lossy().into_owned());
    parse_source_date_epoch(value.as_deref())
}

fn read(path: &Path) -> Result<Vec<u8>, InitramfsError> {
    std::fs::read(path).map_err(|source| InitramfsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A key is accepted only if it decodes to an Ed25519 public key: a typo
/// here would otherwise lock every install out at boot time.
fn checked_public_key(index: usize, key: &str) -> Result<&str, InitramfsError> {
    let key = key.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    match decoded {
        Ok(bytes) if bytes.len() == 32 => Ok(key),
        _ => Err(InitramfsError::BadPublicKey {
            index,
            key: key.to_owned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn epoch_parsing() {
        assert_eq!(parse_source_date_epoch(None).unwrap(), 0);
        assert_eq!(parse_source_date_epoch(Some("")).unwrap(), 0);
        assert_eq!(parse_source_date_epoch(Some("1700000000\n")).unwrap(), 1_700_000_000);
        for bad in ["-1", "1.5", "yesterday", "4294967296"] {
            let err = parse_source_date_epoch(Some(bad)).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn public_keys_must_be_ed25519_base64() {
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(checked_public_key(1, &format!("{good}\n")).unwrap(), good);
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        assert!(checked_public_key(1, &short).is_err());
        let err = checked_public_key(2, "not base64!").unwrap_err();
        assert!(err.to_string().contains("#2"), "{err}");
    }
}
