//! Reading disks from `/sys/block`.
//!
//! Attributes that a driver does not provide (no serial on a virtio disk
//! without `serial=`, no model on virtio) are `None`; a disk whose files
//! vanish mid-read (unplugged) shows what could be read. Only failing to
//! list the directory itself is an error.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::mounts::{mount_containing, MountEntry};
use super::{DevNum, Disk, Partition, Transport};

/// Kernel name prefixes of devices that are not disks one installs on.
const VIRTUAL_PREFIXES: [&str; 7] = ["loop", "ram", "zram", "dm-", "md", "sr", "fd"];

/// How far [`DiscoverOptions::loader_exe`] is followed through stacked
/// devices (LVM on RAID on a partition, a loop file on a disk).
const MAX_STACK_DEPTH: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Also list loop, RAM, zram, device-mapper, md, CD-ROM and floppy
    /// devices (for `loader.disk=/dev/loop0` and tests on loop devices).
    pub include_virtual: bool,
    /// The loader's own executable (`/proc/self/exe`, resolved).
    ///
    /// The boot disk rule: the disk holding the filesystem the executable
    /// was started from is the boot disk, found through the mount table
    /// (the deepest mount point containing the path) and followed through
    /// device-mapper/md members (`slaves/`) and loop devices (their
    /// `backing_file`, on whatever it is mounted). An initramfs lives in
    /// RAM (a device with major 0), so under iPXE there is usually no boot
    /// disk; on a running host it is the system disk.
    pub loader_exe: Option<PathBuf>,
    /// Where the device nodes are (`/dev`). When set, each disk's first
    /// sectors are read to recognise boot media by content (an ISO 9660
    /// file system); unset, nothing is read (tests of sysfs alone).
    pub dev_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot list disks in {}: {source}", path.display())]
pub struct DiscoverError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Lists the disks under `sys_block` (`/sys/block` in real use), sorted by
/// name, with their partitions, mounts, holders and boot flag.
pub fn discover(
    sys_block: &Path,
    mounts: &[MountEntry],
    options: &DiscoverOptions,
) -> Result<Vec<Disk>, DiscoverError> {
    let read_err = |source| DiscoverError {
        path: sys_block.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(sys_block).map_err(read_err)? {
        names.push(entry.map_err(read_err)?.file_name().to_string_lossy().into_owned());
    }
    names.sort();

    let boot = match &options.loader_exe {
        // Anonymous devices (major 0: the initramfs, tmpfs, overlayfs) are
        // no entry of the index, so it is only built for a real one.
        Some(exe) if mount_containing(mounts, exe).is_some_and(|m| m.dev.major != 0) => {
            DeviceIndex::build(sys_block, &names).disks_holding(sys_block, mounts, exe, 0)
        }
        _ => HashSet::new(),
    };

    let mut disks = Vec::new();
    for name in &names {
        // The name first: checking `hidden` is a sysfs read per loop device.
        if !options.include_virtual && is_virtual_name(name) {
            tracing::debug!(disk = %name, "skipped: a loop, RAM, zram, device-mapper, md RAID, optical or floppy device");
        } else if is_never_a_target(sys_block, name) {
            tracing::debug!(disk = %name, "skipped: part of another disk (eMMC boot area, RPMB, NVMe path)");
        } else {
            let mut disk = read_disk(sys_block, name, mounts, boot.contains(name.as_str()));
            disk.iso9660 = options
                .dev_dir
                .as_ref()
                .is_some_and(|dev| super::medium::holds_iso9660(&dev.join(name)));
            disks.push(disk);
        }
    }
    Ok(disks)
}

fn is_virtual_name(name: &str) -> bool {
    VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// eMMC hardware boot areas and RPMB, and hidden NVMe multipath paths, are
/// never listed: they are parts of another disk.
fn is_never_a_target(sys_block: &Path, name: &str) -> bool {
    let mmc_area = name.starts_with("mmcblk") && (name.contains("boot") || name.contains("rpmb"));
    mmc_area || read_attr(&sys_block.join(name).join("hidden")).as_deref() == Some("1")
}

fn read_disk(sys_block: &Path, name: &str, mounts: &[MountEntry], boot: bool) -> Disk {
    let dir = sys_block.join(name);
    let attr = |rel: &str| read_attr(&dir.join(rel));
    let dev = attr("dev").and_then(|d| DevNum::parse(&d));
    let link = fs::read_link(&dir).unwrap_or_default();
    let transport = if is_virtual_name(name) {
        Transport::Virtual
    } else {
        transport_from_path(&link)
    };
    Disk {
        name: name.to_string(),
        dev,
        size: attr("size")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_mul(512),
        logical_sector_size: attr("queue/logical_block_size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(512),
        removable: attr("removable").as_deref() == Some("1"),
        read_only: attr("ro").as_deref() == Some("1"),
        rotational: attr("queue/rotational").map(|r| r == "1"),
        model: attr("device/model"),
        serial: attr("serial")
            .or_else(|| attr("device/serial"))
            .or_else(|| vpd_serial(&dir)),
        wwn: attr("wwid").or_else(|| attr("device/wwid")),
        transport,
        partitions: read_partitions(&dir, name, mounts),
        mount_points: mount_points_of(dev, mounts),
        holders: list_dir(&dir.join("holders")),
        boot,
        iso9660: false,
    }
}

/// The partitions under a disk's sysfs directory: named after the disk
/// (sda1, nvme0n1p1) and holding a `partition` file. Only those names are
/// looked at: the other entries are attributes, and each look is a sysfs
/// lookup (about 20 per disk).
pub fn partition_names(disk_dir: &Path, disk: &str) -> Vec<String> {
    list_dir(disk_dir)
        .into_iter()
        .filter(|name| name.starts_with(disk) && disk_dir.join(name).join("partition").is_file())
        .collect()
}

fn read_partitions(disk_dir: &Path, disk: &str, mounts: &[MountEntry]) -> Vec<Partition> {
    let mut partitions: Vec<Partition> = partition_names(disk_dir, disk)
        .into_iter()
        .map(|name| {
            let dir = disk_dir.join(&name);
            let dev = read_attr(&dir.join("dev")).and_then(|d| DevNum::parse(&d));
            Partition {
                mount_points: mount_points_of(dev, mounts),
                holders: list_dir(&dir.join("holders")),
                dev,
                name,
            }
        })
        .collect();
    partitions.sort_by(|a, b| a.name.cmp(&b.name));
    partitions
}

fn mount_points_of(dev: Option<DevNum>, mounts: &[MountEntry]) -> Vec<String> {
    let Some(dev) = dev else { return Vec::new() };
    mounts
        .iter()
        .filter(|m| m.dev == dev)
        .map(|m| m.mount_point.clone())
        .collect()
}

/// The transport, from the device path the `/sys/block/NAME` link points
/// to (`../devices/pci0000:00/0000:00:04.0/virtio1/block/vda`). USB and ATA
/// disks also sit under a SCSI `hostN`, so those are checked first;
/// virtio-scsi disks sit under both `virtioN` and `hostN` and are SCSI.
fn transport_from_path(link: &Path) -> Transport {
    let parts: Vec<String> = link
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let numbered = |prefix: &str| {
        parts.iter().any(|p| {
            p.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let named = |prefix: &str| parts.iter().any(|p| p.starts_with(prefix));
    if named("usb") {
        Transport::Usb
    } else if numbered("ata") {
        Transport::Ata
    } else if named("nvme") {
        Transport::Nvme
    } else if named("mmc") {
        Transport::Mmc
    } else if parts.iter().any(|p| p == "virtual") {
        Transport::Virtual
    } else if numbered("host") {
        Transport::Scsi
    } else if numbered("virtio") {
        Transport::Virtio
    } else {
        Transport::Unknown
    }
}

/// The unit serial number VPD page (0x80) of a SCSI or SATA disk: a 4-byte
/// header whose last byte is the length, then the serial in ASCII.
fn vpd_serial(disk_dir: &Path) -> Option<String> {
    let page = fs::read(disk_dir.join("device/vpd_pg80")).ok()?;
    let len = usize::from(*page.get(3)?);
    let serial = page.get(4..4 + len)?;
    let text = String::from_utf8_lossy(serial).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// A sysfs attribute, trimmed; `None` when missing or empty.
fn read_attr(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn list_dir(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Which top-level `/sys/block` entry every device number and partition
/// name belongs to, including the virtual devices discovery may skip.
struct DeviceIndex {
    by_dev: HashMap<DevNum, String>,
    by_partition: HashMap<String, String>,
}

impl DeviceIndex {
    fn build(sys_block: &Path, names: &[String]) -> DeviceIndex {
        let mut by_dev = HashMap::new();
        let mut by_partition = HashMap::new();
        for name in names {
            let dir = sys_block.join(name);
            if let Some(dev) = read_attr(&dir.join("dev")).and_then(|d| DevNum::parse(&d)) {
                by_dev.insert(dev, name.clone());
            }
            for part in partition_names(&dir, name) {
                if let Some(dev) = read_attr(&dir.join(&part).join("dev")).and_then(|d| DevNum::parse(&d)) {
                    by_dev.insert(dev, name.clone());
                }
                by_partition.insert(part, name.clone());
            }
        }
        DeviceIndex { by_dev, by_partition }
    }

    /// The physical disks under the filesystem that holds `path`.
    fn disks_holding(&self, sys_block: &Path, mounts: &[MountEntry], path: &Path, depth: usize) -> HashSet<String> {
        let Some(mount) = mount_containing(mounts, path) else {
            return HashSet::new();
        };
        match self.by_dev.get(&mount.dev) {
            Some(name) => self.physical_disks(sys_block, mounts, name, depth),
            None => HashSet::new(),
        }
    }

    /// Follows a device down to the disks it is built on.
    fn physical_disks(&self, sys_block: &Path, mounts: &[MountEntry], name: &str, depth: usize) -> HashSet<String> {
        if depth >= MAX_STACK_DEPTH {
            return HashSet::new();
        }
        let dir = sys_block.join(name);
        let slaves = list_dir(&dir.join("slaves"));
        if !slaves.is_empty() {
            return slaves
                .iter()
                // A member is a partition (sda3) or a whole device (md0).
                .map(|s| self.by_partition.get(s).map_or(s.as_str(), String::as_str))
                .flat_map(|disk| self.physical_disks(sys_block, mounts, disk, depth + 1))
                .collect();
        }
        if let Some(backing) = read_attr(&dir.join("loop/backing_file")) {
            return self.disks_holding(sys_block, mounts, Path::new(&backing), depth + 1);
        }
        HashSet::from([name.to_string()])
    }
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
