//! The application data partition: the part of the disk an upgrade keeps.
//!
//! It is mounted read-write at `/data`. Two things show that it survives an
//! upgrade: `/data/marker` (a file someone put there, e.g. the rescue
//! reinstall test before upgrading) and `/data/boot-count`, which this init
//! increments on every boot, so the second slot's first boot reads a count
//! the first slot wrote.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

/// File names inside the data partition.
pub const MARKER_FILE: &str = "marker";
pub const BOOT_COUNT_FILE: &str = "boot-count";

/// Filesystems tried in order: the example's `fwup.conf` formats the data
/// partition as FAT (`fat_mkfs`); ext4 is what Nerves systems use.
const DATA_FSTYPES: &[&str] = &["vfat", "ext4"];

/// Why the data partition is not usable.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("mounting {device} on {mountpoint} (tried {tried}): {source}")]
    Mount {
        device: String,
        mountpoint: String,
        tried: String,
        source: nix::Error,
    },
    #[error("updating {path}: {source}")]
    BootCount { path: String, source: std::io::Error },
}

/// Mounts `device` read-write on `mountpoint` with the first filesystem type
/// the kernel accepts; returns that type.
pub fn mount_data(device: &Path, mountpoint: &Path) -> Result<&'static str, DataError> {
    let mut last_error = nix::Error::ENODEV;
    for fstype in DATA_FSTYPES {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        match mount(Some(device), mountpoint, Some(*fstype), flags, None::<&str>) {
            Ok(()) => return Ok(fstype),
            Err(error) => last_error = error,
        }
    }
    Err(DataError::Mount {
        device: device.display().to_string(),
        mountpoint: mountpoint.display().to_string(),
        tried: DATA_FSTYPES.join(", "),
        source: last_error,
    })
}

/// True when the marker file exists in the mounted data directory.
pub fn marker_present(data_dir: &Path) -> bool {
    data_dir.join(MARKER_FILE).is_file()
}

/// Adds one to the boot counter in `data_dir` and returns the new count.
/// A missing or unreadable counter starts again at 1. The new value is
/// written to a temporary file, synced and renamed, so a power cut leaves
/// the old or the new count, never an empty file.
pub fn bump_boot_count(data_dir: &Path) -> Result<u64, DataError> {
    let path = data_dir.join(BOOT_COUNT_FILE);
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let count = previous.saturating_add(1);
    let temporary = data_dir.join(format!("{BOOT_COUNT_FILE}.new"));
    write_synced(&temporary, &format!("{count}\n"))
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|source| DataError::BootCount {
            path: path.display().to_string(),
            source,
        })?;
    nix::unistd::sync();
    Ok(count)
}

fn write_synced(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_count_starts_at_one_and_increments() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(bump_boot_count(dir.path()).unwrap(), 1);
        assert_eq!(bump_boot_count(dir.path()).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(BOOT_COUNT_FILE)).unwrap(),
            "2\n"
        );
        assert!(!dir.path().join("boot-count.new").exists());
    }

    #[test]
    fn a_garbled_boot_count_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BOOT_COUNT_FILE), "\u{1}\u{2}").unwrap();
        assert_eq!(bump_boot_count(dir.path()).unwrap(), 1);
    }

    #[test]
    fn an_unwritable_data_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-mounted");
        let error = bump_boot_count(&missing).unwrap_err();
        assert!(error.to_string().contains("not-mounted/boot-count"), "{error}");
    }

    #[test]
    fn the_marker_is_a_file_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!marker_present(dir.path()));
        std::fs::create_dir(dir.path().join(MARKER_FILE)).unwrap();
        assert!(!marker_present(dir.path()));
        std::fs::remove_dir(dir.path().join(MARKER_FILE)).unwrap();
        std::fs::write(dir.path().join(MARKER_FILE), "kept").unwrap();
        assert!(marker_present(dir.path()));
    }
}
