//! What crosses the jump besides the bundle: the loader configuration (as a
//! drop-in, `/etc/loader.conf.d/50-takeover.conf`, so a configuration baked
//! into a given initramfs stays), the public keys and CA certificates
//! (baked files, never `loader.pubkey=` on the command line), and which
//! disk to install on.

use std::path::Path;

use crate::boot::cmdline;
use crate::boot::config::{Config, ConfigFile, ConfigWarning};
use crate::boot::disks::{self, DiscoverOptions, Disk, DiskSelector};
use crate::hostdisk::{self, Paths};
use crate::initramfs::{FileTree, InitramfsError, CA_DIR, KEYS_DIR};

/// Where the configuration goes in the new initramfs.
pub const DROP_IN: &str = "etc/loader.conf.d/50-takeover.conf";

/// The files added on top of the loader's initramfs.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    /// `key=value` lines of the drop-in, in order.
    pub settings: Vec<(String, String)>,
    /// fwup public keys, base64 (the text of a `.pub` file).
    pub keys: Vec<String>,
    /// CA certificates: (origin for messages, PEM bytes).
    pub ca: Vec<(String, Vec<u8>)>,
}

impl Carried {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.settings.push((key.to_string(), value.into()));
    }

    /// The drop-in's text. A value with surrounding spaces or quotes is
    /// quoted (the file format strips one pair of quotes).
    pub fn config_text(&self) -> String {
        let mut text = String::from("# written by loader takeover: the install after the jump\n");
        for (key, value) in &self.settings {
            let quote = value.trim() != value || value.starts_with('"');
            if quote {
                text.push_str(&format!("{key}=\"{value}\"\n"));
            } else {
                text.push_str(&format!("{key}={value}\n"));
            }
        }
        text
    }

    /// The configuration the loader will run with after the jump (drop-in
    /// plus `cmdline`), parsed by the loader's own rules: an invalid value
    /// is refused now, not after the jump. Returns the warnings.
    pub fn validate(&self, cmdline: &str) -> Result<(Config, Vec<ConfigWarning>), String> {
        let text = self.config_text();
        let path = format!("/{DROP_IN}");
        let file = ConfigFile {
            path: &path,
            text: &text,
        };
        Config::from_files(&[file], &cmdline::parse(cmdline))
            .map(|loaded| (loaded.config, loaded.warnings))
            .map_err(|e| e.to_string())
    }

    /// The uncompressed cpio archive of the drop-in, keys and certificates.
    pub fn archive(&self) -> Result<Vec<u8>, InitramfsError> {
        let mut tree = FileTree::new();
        tree.file(DROP_IN, 0o644, self.config_text().into_bytes())?;
        for (index, key) in self.keys.iter().enumerate() {
            tree.file(
                &format!("{KEYS_DIR}/takeover-{index:02}.pub"),
                0o644,
                format!("{}\n", key.trim()).into_bytes(),
            )?;
        }
        for (index, (_, pem)) in self.ca.iter().enumerate() {
            tree.file(&format!("{CA_DIR}/takeover-{index:02}.pem"), 0o644, pem.clone())?;
        }
        tree.to_cpio(0)
    }

    /// One line per carried file, for the console.
    pub fn describe_files(&self) -> Vec<String> {
        let mut lines = vec![format!("/{DROP_IN} ({} settings)", self.settings.len())];
        lines.extend((0..self.keys.len()).map(|i| format!("/{KEYS_DIR}/takeover-{i:02}.pub (public key, enforced)")));
        lines.extend(
            self.ca
                .iter()
                .enumerate()
                .map(|(i, (origin, _))| format!("/{CA_DIR}/takeover-{i:02}.pem (CA certificate from {origin})")),
        );
        lines
    }
}

/// The disk to install on after the jump, and how it is named there.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub selector: DiskSelector,
    pub disk: Disk,
    /// Why this name: "serial", or why only the path was possible.
    pub how: String,
}

/// The disk this system runs from, named so that the loader's kernel finds
/// the same one: by serial number, else WWN, else its path (kernel names
/// can differ between kernels: say so).
pub fn pin_running_disk(paths: &Paths) -> Result<Pinned, String> {
    let mounts = std::fs::read_to_string(&paths.mountinfo)
        .map_err(|e| format!("reading {}: {e}", paths.mountinfo.display()))
        .and_then(|t| disks::parse_mountinfo(&t).map_err(|e| e.to_string()))?;
    let names = hostdisk::root::root_disks(&paths.sys_block, &mounts, &paths.root);
    let name = match names.as_slice() {
        [name] => name.clone(),
        [] => {
            return Err(format!(
                "the root filesystem {} is not on a local disk; name the disk to install on with --disk",
                paths.root.display()
            ))
        }
        many => {
            return Err(format!(
                "the root filesystem spans several disks ({}); name the one to install on with --disk",
                many.join(", ")
            ))
        }
    };
    let options = DiscoverOptions {
        include_virtual: true,
        loader_exe: None,
        dev_dir: None,
    };
    let disk = disks::discover(&paths.sys_block, &mounts, &options)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            format!(
                "{name} holds the root filesystem but is not listed in {}",
                paths.sys_block.display()
            )
        })?;
    let (selector, how) = if let Some(serial) = disk.serial.clone() {
        (DiskSelector::Serial(serial), "by its serial number".to_string())
    } else if let Some(wwn) = disk.wwn.clone() {
        (DiskSelector::Wwn(wwn), "by its WWN".to_string())
    } else {
        (
            DiskSelector::Path(Path::new("/dev").join(&disk.name)),
            "by its path: it reports no serial number or WWN (the loader's kernel names disks by driver, \
             like this one; give --disk if the drivers differ)"
                .to_string(),
        )
    };
    Ok(Pinned { selector, disk, how })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_in_is_what_the_loader_reads_after_the_jump() {
        let mut carried = Carried::default();
        carried.set("loader.task", "complete");
        carried.set("loader.disk", "serial:QM 0001");
        carried.set("loader.env.GREETING", " hello ");
        carried.set(
            "loader.iface",
            "mac=52:54:00:12:34:56,addr=192.0.2.10/32,route=0.0.0.0/0@192.0.2.1",
        );
        let (config, warnings) = carried.validate("console=ttyS0").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.disk, Some(DiskSelector::Serial("QM 0001".into())));
        assert_eq!(config.env["GREETING"], " hello ", "quoted, spaces kept");
        assert_eq!(config.ifaces.len(), 1);

        carried.set("loader.task", "bad task");
        let err = carried.validate("").unwrap_err();
        assert!(
            err.contains("/etc/loader.conf.d/50-takeover.conf line 6: loader.task=bad task"),
            "{err}"
        );
    }

    #[test]
    fn keys_and_certificates_become_files_in_the_archive() {
        let carried = Carried {
            settings: vec![("loader.task".into(), "complete".into())],
            keys: vec!["Uf8S1/7ZyE0PSt9YZ+3wSJXfIyUs8eYQ4tftvhKvOKo=\n".into()],
            ca: vec![("ca.pem".into(), b"-----BEGIN CERTIFICATE-----\n".to_vec())],
        };
        let archive = carried.archive().unwrap();
        let text = String::from_utf8_lossy(&archive);
        for name in [
            "etc/loader.conf.d/50-takeover.conf",
            "etc/loader/keys/takeover-00.pub",
            "etc/loader/ca/takeover-00.pem",
            "TRAILER!!!",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(!text.contains("loader.pubkey"), "keys are files, not settings");
        assert_eq!(archive.len() % 4, 0);
    }
}
