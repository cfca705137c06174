//! The kernel filesystems PID 1 needs, as a table.
//!
//! The kernel mounts the squashfs root read-only and (with
//! `CONFIG_DEVTMPFS_MOUNT`) devtmpfs on `/dev`; everything else is ours.
//! A filesystem that is already mounted is left alone.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};

/// One filesystem to mount early.
pub struct EarlyMount {
    pub fstype: &'static str,
    pub target: &'static str,
    pub flags: MsFlags,
}

/// What PID 1 mounts before it reads anything: `/proc` (the kernel command
/// line), `/sys` (block devices and consoles), `/dev` (device nodes).
pub const EARLY_MOUNTS: &[EarlyMount] = &[
    EarlyMount {
        fstype: "proc",
        target: "/proc",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC),
    },
    EarlyMount {
        fstype: "sysfs",
        target: "/sys",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC),
    },
    EarlyMount {
        fstype: "devtmpfs",
        target: "/dev",
        flags: MsFlags::MS_NOSUID,
    },
];

/// Why an early mount failed.
#[derive(Debug, thiserror::Error)]
#[error("mounting {fstype} on {target}: {source}")]
pub struct MountError {
    fstype: &'static str,
    target: &'static str,
    source: nix::Error,
}

/// Mounts every entry of [`EARLY_MOUNTS`] that is not mounted yet and
/// returns the failures (boot goes on without them).
pub fn mount_all() -> Vec<MountError> {
    EARLY_MOUNTS
        .iter()
        .filter(|entry| !is_mountpoint(Path::new(entry.target)))
        .filter_map(|entry| {
            mount(
                Some(entry.fstype),
                entry.target,
                Some(entry.fstype),
                entry.flags,
                None::<&str>,
            )
            .err()
            .map(|source| MountError {
                fstype: entry.fstype,
                target: entry.target,
                source,
            })
        })
        .collect()
}

/// True when `path` is on a different filesystem than its parent directory,
/// i.e. something is mounted there.
pub fn is_mountpoint(path: &Path) -> bool {
    match (std::fs::metadata(path), std::fs::metadata(path.join(".."))) {
        (Ok(here), Ok(parent)) => here.dev() != parent.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_a_mountpoint_and_a_plain_directory_is_not() {
        assert!(is_mountpoint(Path::new("/proc")));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plain")).unwrap();
        assert!(!is_mountpoint(&dir.path().join("plain")));
        assert!(!is_mountpoint(&dir.path().join("missing")));
    }
}
