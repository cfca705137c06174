//! Finding the disk to install on, safely.
//!
//! Discovery reads `/sys/block` (the root is a parameter, so tests build
//! fake trees) and the mount table; selection applies `loader.disk=` or,
//! without it, picks the single disk that can only be the target. Selection
//! never guesses: when more than one disk could be meant it stops and lists
//! every candidate with the reason it was or was not eligible.

mod discover;
mod medium;
mod mounts;
mod probe;
mod select;
mod selector;
mod wait;

#[cfg(test)]
mod fake_sysfs;
#[cfg(test)]
mod probe_tests;

use std::fmt;

pub use discover::{discover, partition_names, DiscoverError, DiscoverOptions};
pub use mounts::{parse_mountinfo, MountEntry, MountinfoError};
pub use probe::{probe_state, ProbeState, GRACE};
pub use select::{eligibility, select_disk, Force, Refusal, SelectError, SelectRequest, Selected};
pub use selector::{parse_size, DiskSelector, SelectorError};
pub use wait::{wait_for_disk, Clock, SystemClock, WaitError, WaitPolicy, WaitReport};

/// A block device number, `major:minor` as in sysfs `dev` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    /// Parses `8:1`.
    pub fn parse(text: &str) -> Option<DevNum> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(DevNum {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// How a disk is attached, from its sysfs device path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Nvme,
    Virtio,
    Ata,
    Scsi,
    Usb,
    Mmc,
    /// Loop, RAM, device-mapper, md: no hardware behind it.
    Virtual,
    Unknown,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Nvme => "nvme",
            Transport::Virtio => "virtio",
            Transport::Ata => "ata",
            Transport::Scsi => "scsi",
            Transport::Usb => "usb",
            Transport::Mmc => "mmc",
            Transport::Virtual => "virtual",
            Transport::Unknown => "unknown transport",
        })
    }
}

/// A partition of a disk and what uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `vda1`, `nvme0n1p2`.
    pub name: String,
    pub dev: Option<DevNum>,
    /// Where it is mounted (a partition can be mounted several times).
    pub mount_points: Vec<String>,
    /// Devices built on top of it (`dm-0` for LVM or LUKS, `md0` for RAID).
    pub holders: Vec<String>,
}

/// A whole disk as `/sys/block` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name: `vda`, `nvme0n1`, `sda`.
    pub name: String,
    pub dev: Option<DevNum>,
    /// Bytes (`size` counts 512-byte units whatever the sector size).
    pub size: u64,
    pub logical_sector_size: u32,
    pub removable: bool,
    pub read_only: bool,
    /// `None` when the kernel does not say.
    pub rotational: Option<bool>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// World Wide Name / EUI / NGUID as the kernel reports it
    /// (`naa.5000c500a1b2c3d4`, `eui.0025388b71b2c5f1`).
    pub wwn: Option<String>,
    pub transport: Transport,
    pub partitions: Vec<Partition>,
    /// Mount points of a filesystem on the whole disk (no partition table).
    pub mount_points: Vec<String>,
    /// Devices built directly on the whole disk.
    pub holders: Vec<String>,
    /// Whether the loader itself was started from this disk (see
    /// [`DiscoverOptions::loader_exe`] for the rule).
    pub boot: bool,
    /// Holds an ISO 9660 file system: a CD image or a stick written from
    /// one, such as the rescue ISO (see [`DiscoverOptions::dev_dir`]).
    pub iso9660: bool,
}

impl Disk {
    /// `/dev/NAME`.
    pub fn dev_path(&self) -> String {
        format!("/dev/{}", self.name)
    }

    /// "vda (virtio, 20.0 GiB, serial ABC)": enough for an operator to
    /// recognise the disk and write a `loader.disk=` selector for it.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.transport.to_string(), format_size(self.size)];
        if let Some(model) = &self.model {
            parts.push(format!("model {model}"));
        }
        if let Some(serial) = &self.serial {
            parts.push(format!("serial {serial}"));
        }
        if let Some(wwn) = &self.wwn {
            parts.push(format!("wwn {wwn}"));
        }
        format!("{} ({})", self.name, parts.join(", "))
    }

    /// Every mount point on the disk or its partitions, as "vda1 on /boot".
    pub fn mounts(&self) -> Vec<String> {
        let whole = self.mount_points.iter().map(|m| format!("{} on {m}", self.name));
        let parts = self
            .partitions
            .iter()
            .flat_map(|p| p.mount_points.iter().map(move |m| format!("{} on {m}", p.name)));
        whole.chain(parts).collect()
    }

    /// Every holder of the disk or its partitions, as "vda2 used by dm-0".
    pub fn holders_in_use(&self) -> Vec<String> {
        let whole = self.holders.iter().map(|h| format!("{} used by {h}", self.name));
        let parts = self
            .partitions
            .iter()
            .flat_map(|p| p.holders.iter().map(move |h| format!("{} used by {h}", p.name)));
        whole.chain(parts).collect()
    }
}

/// Binary units throughout (as QEMU's `size=20G`, `lsblk` and
/// [`parse_size`]), so a `20G` disk prints as "20.0 GiB".
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(format_size(0), "0 bytes");
        assert_eq!(format_size(1023), "1023 bytes");
        assert_eq!(format_size(20 << 30), "20.0 GiB");
        assert_eq!(format_size(1536 << 20), "1.5 GiB");
        assert_eq!(format_size(960_197_124_096), "894.3 GiB");
    }

    #[test]
    fn devnum_parses_sysfs_dev_files() {
        assert_eq!(DevNum::parse("254:16\n"), Some(DevNum { major: 254, minor: 16 }));
        assert_eq!(DevNum::parse("254"), None);
        assert_eq!(DevNum::parse("a:b"), None);
    }
}
