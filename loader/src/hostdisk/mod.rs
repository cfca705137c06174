//! Installing from a running host onto its block devices: `loader apply
//! --device /dev/X` and `--device auto`.
//!
//! The rules are the boot flow's ([`crate::boot::disks`]): a named disk
//! must be eligible as the boot flow judges it (not read-only, not
//! removable, no mounted or held partitions, not the disk the running
//! system booted from) unless `--force` lifts a rule, with the names
//! `loader.force=` uses. An eligible disk is opened exclusively (`O_EXCL`):
//! nothing can mount it while the install writes.
//!
//! A disk in use (`--force mounted`, or `--device auto`: the disk this
//! system runs from, which is itself the permission to write it) cannot be
//! opened exclusively. Its writes are checked instead ([`guard`]): before
//! the first write, every region the task may write is compared with the
//! partitions in use and the partition table, and an overlap refuses the
//! install, naming both.
//!
//! Afterwards the kernel's view of the partitions is brought up to date
//! ([`refresh`]): a full re-read where nothing is in use, else partition by
//! partition.
//!
//! "The disk the running system booted from" is, for the refusal of a named
//! disk, the boot flow's rule (the disk under the root filesystem, followed
//! through device-mapper, RAID and a loop device's backing file); for
//! `--device auto` it is the disk whose partition holds the root filesystem
//! ([`root`]), never a loop device's backing disk.

pub mod guard;
pub mod refresh;
pub mod root;

use std::path::{Path, PathBuf};

use crate::apply::WriteCheck;
use crate::boot::disks::{self, DiscoverOptions, Disk, Force, Refusal};
use crate::target::blockdev::{BlockDevError, BlockDevice};
use crate::target::file::ImageFile;
use crate::target::Target;
pub use guard::WriteGuard;

/// Where the host's disk and mount information is (a fake tree in tests).
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/sys/block`.
    pub sys_block: PathBuf,
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// The running system's root: the disk holding it is the boot disk.
    pub root: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            sys_block: "/sys/block".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            root: "/".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostDiskError {
    #[error("reading the mount table {}: {problem}", path.display())]
    MountTable { path: PathBuf, problem: String },
    #[error(transparent)]
    Discover(#[from] disks::DiscoverError),
    #[error("{} is not a whole disk (a partition?); give the disk, e.g. /dev/vda", path.display())]
    NotADisk { path: PathBuf },
    #[error("{} cannot be the install target: {reasons}", path.display())]
    Refused { path: PathBuf, reasons: String },
    #[error("--device auto: {0}")]
    Auto(String),
    #[error(transparent)]
    Open(#[from] BlockDevError),
}

/// A host disk opened for an install.
#[derive(Debug)]
pub struct HostDevice {
    pub device: BlockDevice,
    /// The disk as discovered before opening it.
    pub disk: Disk,
    /// Set when the disk is in use: its writes must be checked.
    pub guard: Option<WriteGuard>,
}

/// Opens `/dev/X` by the boot flow's rules, `force` lifting some of them.
pub fn open_disk(path: &Path, force: Force, paths: &Paths) -> Result<HostDevice, HostDiskError> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let disk = discover(paths)?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| HostDiskError::NotADisk { path: path.into() })?;
    let refusals = disks::eligibility(&disk, 0, force);
    if !refusals.is_empty() {
        let reasons: Vec<String> = refusals.iter().map(host_words).collect();
        return Err(HostDiskError::Refused {
            path: path.into(),
            reasons: reasons.join("; "),
        });
    }
    open_checked(&real, disk, paths)
}

/// Opens the disk this system booted from, for updating it in place.
pub fn open_auto(paths: &Paths) -> Result<HostDevice, HostDiskError> {
    let mounts = read_mounts(paths)?;
    let names = root::root_disks(&paths.sys_block, &mounts, &paths.root);
    let name = match names.as_slice() {
        [name] => name.clone(),
        [] => {
            return Err(HostDiskError::Auto(format!(
                "no disk holds the root filesystem {} (it is not on a local disk: tmpfs, \
                 overlay or network); name the disk with --device /dev/X",
                paths.root.display()
            )))
        }
        many => {
            return Err(HostDiskError::Auto(format!(
                "the root filesystem spans several disks ({}); name one with --device /dev/X",
                many.join(", ")
            )));
        }
    };
    let disk = discover(paths)?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| HostDiskError::Auto(format!("{name} holds the root filesystem but is not listed as a disk")))?;
    let path = PathBuf::from(disk.dev_path());
    open_checked(&path, disk, paths)
}

/// Opens `disk` exclusively when nothing uses it, else shared with a write
/// guard over what is in use.
fn open_checked(path: &Path, disk: Disk, paths: &Paths) -> Result<HostDevice, HostDiskError> {
    let in_use = !disk.mounts().is_empty() || !disk.holders_in_use().is_empty();
    let mut device = BlockDevice::open(path, in_use)?;
    let guard = in_use.then(|| WriteGuard::for_disk(&disk, &paths.sys_block, &mut device));
    Ok(HostDevice { device, disk, guard })
}

fn read_mounts(paths: &Paths) -> Result<Vec<disks::MountEntry>, HostDiskError> {
    let table_err = |problem: String| HostDiskError::MountTable {
        path: paths.mountinfo.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&paths.mountinfo).map_err(|e| table_err(e.to_string()))?;
    disks::parse_mountinfo(&text).map_err(|e| table_err(e.to_string()))
}

fn discover(paths: &Paths) -> Result<Vec<Disk>, HostDiskError> {
    let mounts = read_mounts(paths)?;
    let options = DiscoverOptions {
        include_virtual: true,
        loader_exe: Some(paths.root.clone()),
        dev_dir: None,
    };
    Ok(disks::discover(&paths.sys_block, &mounts, &options)?)
}

/// A refusal as the host command words it: `--force` instead of `loader.force=`.
fn host_words(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Removable => "removable or USB media (--force removable to allow)".into(),
        Refusal::Mounted(m) => format!("mounted: {} (--force mounted to allow)", m.join(", ")),
        Refusal::InUse(h) => format!("in use: {} (--force mounted to allow)", h.join(", ")),
        Refusal::BootDisk => "the running system booted from it (--force boot-disk to allow; \
                              --device auto updates it in place)"
            .into(),
        other => other.to_string(),
    }
}

/// What `loader apply --device` writes to.
pub enum ApplyTarget {
    File(ImageFile),
    Disk(Box<HostDevice>),
}

impl ApplyTarget {
    /// `auto`, a block device (by the rules above) or an image file
    /// (created when missing). `force` is `loader.force=` syntax.
    pub fn open(device: &str, force: &str) -> Result<ApplyTarget, String> {
        use std::os::unix::fs::FileTypeExt;
        let force = Force::parse(force).map_err(|e| format!("--force: {e}"))?;
        let paths = Paths::default();
        if device == "auto" {
            return open_auto(&paths)
                .map(|d| ApplyTarget::Disk(Box::new(d)))
                .map_err(|e| e.to_string());
        }
        let path = Path::new(device);
        let is_block = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
        if is_block {
            open_disk(path, force, &paths)
                .map(|d| ApplyTarget::Disk(Box::new(d)))
                .map_err(|e| e.to_string())
        } else {
            ImageFile::open(path)
                .map(ApplyTarget::File)
                .map_err(|e| format!("opening {device}: {e}"))
        }
    }

    pub fn target(&mut self) -> &mut dyn Target {
        match self {
            ApplyTarget::File(file) => file,
            ApplyTarget::Disk(disk) => &mut disk.device,
        }
    }

    /// The check of the task's writes, for a disk in use.
    pub fn write_check(&self) -> Option<WriteCheck> {
        match self {
            ApplyTarget::Disk(disk) => disk.guard.clone().map(WriteGuard::into_check),
            ApplyTarget::File(_) => None,
        }
    }

    /// After a successful install: the kernel's partition list brought up
    /// to date. Returns what was done and what could not be, one line each.
    pub fn finish(&mut self) -> Vec<String> {
        match self {
            ApplyTarget::File(_) => Vec::new(),
            ApplyTarget::Disk(disk) => {
                let in_use = disk.guard.is_some();
                refresh::refresh(&mut disk.device, &disk.disk.name, &Paths::default(), in_use)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake host: disk `vdz` (not a real device here) whose partition
    /// vdz2 carries dm-0, which holds the root filesystem.
    fn host() -> (tempfile::TempDir, Paths) {
        let root = tempfile::tempdir().expect("tempdir");
        let put = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        put("block/vdz/dev", "254:0\n");
        put("block/vdz/size", "2097152\n");
        put("block/vdz/vdz1/partition", "1\n");
        put("block/vdz/vdz1/dev", "254:1\n");
        put("block/vdz/vdz2/partition", "2\n");
        put("block/vdz/vdz2/dev", "254:2\n");
        put("block/vdz/vdz2/holders/dm-0", "");
        put("block/dm-0/dev", "253:0\n");
        put("block/dm-0/slaves/vdz2/dev", "254:2\n");
        put("mountinfo", "20 1 253:0 / / rw - ext4 /dev/mapper/root rw\n");
        let paths = Paths {
            sys_block: root.path().join("block"),
            mountinfo: root.path().join("mountinfo"),
            root: "/".into(),
        };
        (root, paths)
    }

    fn refusal(force: &str) -> String {
        let (_root, paths) = host();
        let force = Force::parse(force).expect("force");
        open_disk(Path::new("/dev/vdz"), force, &paths)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn the_disk_the_system_booted_from_is_refused_unless_forced() {
        let err = refusal("");
        assert!(err.starts_with("/dev/vdz cannot be the install target: "), "{err}");
        assert!(
            err.contains("in use: vdz2 used by dm-0 (--force mounted to allow)"),
            "{err}"
        );
        assert!(
            err.contains("the running system booted from it (--force boot-disk to allow"),
            "{err}"
        );

        let err = refusal("mounted");
        assert!(err.contains("booted from it") && !err.contains("used by dm-0"), "{err}");

        // With both rules lifted the disk passes them: what fails is opening
        // /dev/vdz, which does not exist on this host.
        let err = refusal("mounted,boot-disk");
        assert!(err.starts_with("opening /dev/vdz: "), "{err}");
    }

    #[test]
    fn device_auto_needs_the_root_on_a_disk() {
        let (root, mut paths) = host();
        std::fs::write(root.path().join("mountinfo"), "20 1 0:25 / / rw - tmpfs tmpfs rw\n").expect("write");
        let err = open_auto(&paths).expect_err("tmpfs root").to_string();
        assert!(err.contains("no disk holds the root filesystem /"), "{err}");
        paths.mountinfo = root.path().join("missing");
        let err = open_auto(&paths).expect_err("no table").to_string();
        assert!(err.starts_with("reading the mount table"), "{err}");
    }
}
