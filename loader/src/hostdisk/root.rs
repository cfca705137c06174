//! `--device auto`: the disk whose partition holds the running system's
//! root filesystem.
//!
//! The mount table gives the root's device number; `/sys/block` tells which
//! disk (or partition of which disk) has that number; a device-mapper or
//! RAID device is followed down to its members (`slaves/`). Unlike the boot
//! disk rule of `boot::disks`, a loop device is the answer itself, not the
//! disk holding its backing file: updating in place writes the device the
//! system runs from, and that is the loop device.

use std::path::Path;

use crate::boot::disks::{DevNum, MountEntry};

/// How deep stacked devices are followed (LVM on RAID on partitions).
const MAX_DEPTH: usize = 6;

/// The `/sys/block` names of the disks under the filesystem mounted
/// closest above `root`, sorted; empty when it is not on a block device.
pub fn root_disks(sys_block: &Path, mounts: &[MountEntry], root: &Path) -> Vec<String> {
    let Some(mount) = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| root.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (Path::new(&m.mount_point).components().count(), *i))
        .map(|(_, m)| m)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    disks_of(sys_block, mount.dev, 0, &mut out);
    out.sort();
    out.dedup();
    out
}

fn disks_of(sys_block: &Path, dev: DevNum, depth: usize, out: &mut Vec<String>) {
    if depth >= MAX_DEPTH {
        return;
    }
    let Some((disk, part)) = find(sys_block, dev) else {
        return;
    };
    let dir = match &part {
        Some(part) => sys_block.join(&disk).join(part),
        None => sys_block.join(&disk),
    };
    let slaves: Vec<String> = list(&dir.join("slaves"));
    if slaves.is_empty() {
        out.push(disk);
        return;
    }
    for slave in slaves {
        let slave_dev = std::fs::read_to_string(dir.join("slaves").join(&slave).join("dev"))
            .ok()
            .and_then(|t| DevNum::parse(&t));
        if let Some(slave_dev) = slave_dev {
            disks_of(sys_block, slave_dev, depth + 1, out);
        }
    }
}

/// The `/sys/block` entry with device number `dev`, and the partition of
/// it when `dev` is a partition.
fn find(sys_block: &Path, dev: DevNum) -> Option<(String, Option<String>)> {
    let devnum = |dir: &Path| {
        std::fs::read_to_string(dir.join("dev"))
            .ok()
            .and_then(|t| DevNum::parse(&t))
    };
    for disk in list(sys_block) {
        let dir = sys_block.join(&disk);
        if devnum(&dir) == Some(dev) {
            return Some((disk, None));
        }
        for part in list(&dir) {
            let part_dir = dir.join(&part);
            if part_dir.join("partition").is_file() && devnum(&part_dir) == Some(dev) {
                return Some((disk, Some(part)));
            }
        }
    }
    None
}

fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::disks::parse_mountinfo;

    /// A sysfs with disks vda (vda1, vda2), vdb (vdb1), loop0 (loop0p1) and
    /// dm-0 built on vda2 and vdb1.
    fn sysfs() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let put = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        put("vda/dev", "254:0\n");
        put("vda/vda1/partition", "1\n");
        put("vda/vda1/dev", "254:1\n");
        put("vda/vda2/partition", "2\n");
        put("vda/vda2/dev", "254:2\n");
        put("vdb/dev", "254:16\n");
        put("vdb/vdb1/partition", "1\n");
        put("vdb/vdb1/dev", "254:17\n");
        put("loop0/dev", "7:0\n");
        put("loop0/loop/backing_file", "/images/disk.img\n");
        put("loop0/loop0p1/partition", "1\n");
        put("loop0/loop0p1/dev", "259:0\n");
        put("dm-0/dev", "253:0\n");
        put("dm-0/slaves/vda2/dev", "254:2\n");
        put("dm-0/slaves/vdb1/dev", "254:17\n");
        root
    }

    fn mounts(root_dev: &str) -> Vec<MountEntry> {
        let text = format!("20 1 {root_dev} / / rw - ext4 /dev/root rw\n21 20 0:5 / /proc rw - proc proc rw\n");
        parse_mountinfo(&text).expect("mountinfo")
    }

    #[test]
    fn the_root_partition_names_its_disk() {
        let sys = sysfs();
        assert_eq!(root_disks(sys.path(), &mounts("254:2"), Path::new("/")), ["vda"]);
        assert_eq!(root_disks(sys.path(), &mounts("254:16"), Path::new("/")), ["vdb"]);
    }

    #[test]
    fn a_loop_device_is_the_disk_itself_not_its_backing_disk() {
        let sys = sysfs();
        assert_eq!(root_disks(sys.path(), &mounts("259:0"), Path::new("/")), ["loop0"]);
    }

    #[test]
    fn device_mapper_is_followed_to_every_member_disk() {
        let sys = sysfs();
        assert_eq!(root_disks(sys.path(), &mounts("253:0"), Path::new("/")), ["vda", "vdb"]);
    }

    #[test]
    fn a_root_on_no_block_device_has_no_disk() {
        let sys = sysfs();
        assert!(root_disks(sys.path(), &mounts("0:25"), Path::new("/")).is_empty());
    }
}
