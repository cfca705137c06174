//! Finds the root partition and its sibling data partition through sysfs.
//!
//! The kernel found the root by `PARTUUID`, so the disk may be `vda`, `sda`
//! or `nvme0n1`; sysfs knows which. `/sys/dev/block/MAJOR:MINOR` links to
//! the partition's directory, which sits inside its disk's directory next to
//! the other partitions, each with a `partition` file holding its number.

use std::path::{Path, PathBuf};

/// Why a partition could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("no block device {major}:{minor} under {sysfs}/dev/block: {source}")]
    UnknownDevice {
        major: u64,
        minor: u64,
        sysfs: String,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("disk {disk} has no partition {number}")]
    NoSuchPartition { disk: String, number: u32 },
}

/// A partition as the kernel names it (`vda2`), with its number and disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub number: u32,
    pub disk: String,
    sys_dir: PathBuf,
}

impl Partition {
    /// The device node under devtmpfs, e.g. `/dev/vda4`.
    pub fn dev_path(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

/// The partition with device number `major:minor`, or `None` when that
/// device is a whole disk (or not a partition at all).
pub fn partition_by_devnum(sysfs: &Path, major: u64, minor: u64) -> Result<Option<Partition>, DiskError> {
    let link = sysfs.join(format!("dev/block/{major}:{minor}"));
    let sys_dir = std::fs::canonicalize(&link).map_err(|source| DiskError::UnknownDevice {
        major,
        minor,
        sysfs: sysfs.display().to_string(),
        source,
    })?;
    partition_at(&sys_dir)
}

/// Partition `number` on the same disk as `partition`.
pub fn sibling_partition(partition: &Partition, number: u32) -> Result<Partition, DiskError> {
    let disk_dir = partition.sys_dir.parent().unwrap_or(&partition.sys_dir);
    let entries = std::fs::read_dir(disk_dir).map_err(|source| DiskError::Read {
        path: disk_dir.display().to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        if let Ok(Some(candidate)) = partition_at(&entry.path()) {
            if candidate.number == number {
                return Ok(candidate);
            }
        }
    }
    Err(DiskError::NoSuchPartition {
        disk: partition.disk.clone(),
        number,
    })
}

/// Reads the sysfs directory of a block device; `None` when it has no
/// `partition` file (a whole disk).
fn partition_at(sys_dir: &Path) -> Result<Option<Partition>, DiskError> {
    let number_file = sys_dir.join("partition");
    let text = match std::fs::read_to_string(&number_file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DiskError::Read {
                path: number_file.display().to_string(),
                source,
            })
        }
    };
    let Ok(number) = text.trim().parse::<u32>() else {
        return Ok(None);
    };
    let name_of = |dir: &Path| dir.file_name().map(|name| name.to_string_lossy().into_owned());
    let (Some(name), Some(disk)) = (name_of(sys_dir), sys_dir.parent().and_then(name_of)) else {
        return Ok(None);
    };
    Ok(Some(Partition {
        name,
        number,
        disk,
        sys_dir: sys_dir.to_path_buf(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs with disk `vda` (252:0) and partitions vda1..vda4 (252:1..4).
    fn fake_sysfs() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let disk = root.path().join("devices/pci0000:00/0000:00:04.0/virtio1/block/vda");
        std::fs::create_dir_all(root.path().join("dev/block")).unwrap();
        std::fs::create_dir_all(&disk).unwrap();
        symlink(&disk, root.path().join("dev/block/252:0")).unwrap();
        for number in 1..=4 {
            let part = disk.join(format!("vda{number}"));
            std::fs::create_dir_all(&part).unwrap();
            std::fs::write(part.join("partition"), format!("{number}\n")).unwrap();
            symlink(&part, root.path().join(format!("dev/block/252:{number}"))).unwrap();
        }
        std::fs::create_dir_all(disk.join("queue")).unwrap();
        root
    }

    #[test]
    fn the_root_partition_and_its_data_sibling_are_found() {
        let sysfs = fake_sysfs();
        let root = partition_by_devnum(sysfs.path(), 252, 2).unwrap().unwrap();
        assert_eq!(
            (root.name.as_str(), root.number, root.disk.as_str()),
            ("vda2", 2, "vda")
        );
        let data = sibling_partition(&root, 4).unwrap();
        assert_eq!(data.name, "vda4");
        assert_eq!(data.dev_path(), Path::new("/dev/vda4"));
    }

    #[test]
    fn a_whole_disk_is_not_a_partition() {
        let sysfs = fake_sysfs();
        assert_eq!(partition_by_devnum(sysfs.path(), 252, 0).unwrap(), None);
    }

    #[test]
    fn missing_devices_and_partitions_are_errors_that_name_them() {
        let sysfs = fake_sysfs();
        let unknown = partition_by_devnum(sysfs.path(), 8, 1).unwrap_err();
        assert!(unknown.to_string().contains("no block device 8:1"), "{unknown}");
        let root = partition_by_devnum(sysfs.path(), 252, 2).unwrap().unwrap();
        let missing = sibling_partition(&root, 7).unwrap_err();
        assert_eq!(missing.to_string(), "disk vda has no partition 7");
    }
}
