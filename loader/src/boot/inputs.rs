//! What an attempt starts from: the public keys it enforces and the bundle
//! file iPXE injected (or `loader.bundle=` names).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::config::Config;
use super::run::{fail, BootPaths, Failure};
use crate::bundle::signature::PublicKey;

pub(super) fn open(path: &Path) -> Result<File, Failure> {
    File::open(path).map_err(|e| {
        fail(
            "reading the bundle",
            "no-bundle",
            format!("{}: {e}", path.display()),
            "",
        )
    })
}

/// The keys an attempt enforces: those baked into the initramfs, or, when
/// none are baked, `loader.pubkey=`.
///
/// Baked keys are exclusive. Whoever can edit the kernel command line (the
/// iPXE script) could otherwise add a key of their own and have their
/// bundle accepted beside the owner's, so `loader.pubkey=` next to baked
/// keys is refused instead of being added to them.
pub(super) fn load_keys(config: &Config, paths: &BootPaths) -> Result<Vec<PublicKey>, Failure> {
    let baked = baked_files(&paths.keys_dir, "pub");
    if !baked.is_empty() && !config.pubkeys.is_empty() {
        return Err(fail(
            "loading keys",
            "config",
            format!(
                "loader.pubkey= is refused: the initramfs has {} baked key(s) in {}, and baked keys are exclusive \
                 (a key on the kernel command line never widens them)",
                baked.len(),
                paths.keys_dir.display()
            ),
            "remove loader.pubkey, or build the initramfs with that key (loader initramfs --public-key)",
        ));
    }
    let mut keys = Vec::new();
    for file in baked {
        keys.push(PublicKey::from_file(&file).map_err(|e| {
            fail(
                "loading keys",
                "config",
                format!("{}: {e}", file.display()),
                "rebuild the initramfs",
            )
        })?);
    }
    for raw in &config.pubkeys {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(raw);
        keys.push(PublicKey::parse(&text).map_err(|e| fail("loading keys", "config", e, "check loader.pubkey"))?);
    }
    Ok(keys)
}

/// `loader.bundle=`, else iPXE's `/root/install.fw`.
pub(super) fn find_bundle(config: &Config, paths: &BootPaths) -> Result<PathBuf, Failure> {
    let candidate = config.bundle.clone().unwrap_or_else(|| paths.default_bundle.clone());
    match std::fs::metadata(&candidate) {
        Ok(m) if m.is_file() && m.len() > 0 => Ok(candidate),
        Ok(_) => Err(fail(
            "finding the bundle",
            "no-bundle",
            format!("{} is empty", candidate.display()),
            "",
        )),
        Err(_) => Err(fail(
            "finding the bundle",
            "no-bundle",
            format!("no bundle at {} and no loader.url= given", candidate.display()),
            "add `initrd BUNDLE_URL /root/install.fw` to the iPXE script, or set loader.url=",
        )),
    }
}

/// The files `*.EXTENSION` in a directory baked into the initramfs, in name
/// order; none when the directory is missing (nothing was baked in).
pub(super) fn baked_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == extension));
    files.sort();
    files
}
