//! The write check for a disk in use: the regions no install may write while
//! the system runs from the disk, and the refusal that names them.
//!
//! Forbidden: every partition that is mounted or held by another device
//! (LVM, RAID, swap through a holder), the whole disk when a filesystem
//! sits on it directly, and the partition table (the MBR in block 0, and
//! the primary and backup GPT when there is one): rewriting it under
//! mounted partitions leaves the kernel and the disk disagreeing.
//! Everything else may be written: an upgrade task writes the inactive
//! slot and switches the boot selection, which is what it is for.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::apply::plan::PlannedWrite;
use crate::apply::WriteCheck;
use crate::boot::disks::Disk;
use crate::formats::{gpt, Medium, BLOCK_SIZE};
use crate::target::Target;

/// A region of the disk no write may touch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub range: Range<u64>,
    /// "vda2 (mounted on /)", "the partition table (MBR, block 0)".
    pub what: String,
}

/// The forbidden regions of one disk.
#[derive(Debug, Clone)]
pub struct WriteGuard {
    pub disk: String,
    pub regions: Vec<Region>,
}

impl WriteGuard {
    /// The regions of `disk` (as discovered, with its mounts and holders),
    /// partition extents from `sys_block`, the table read from `device`.
    pub fn for_disk(disk: &Disk, sys_block: &Path, device: &mut dyn Target) -> WriteGuard {
        let mut regions = Vec::new();
        let whole: Vec<String> = disk
            .mount_points
            .iter()
            .map(|m| format!("mounted on {m}"))
            .chain(disk.holders.iter().map(|h| format!("used by {h}")))
            .collect();
        if !whole.is_empty() {
            regions.push(Region {
                range: 0..u64::MAX,
                what: format!("{} ({})", disk.name, whole.join(", ")),
            });
        }
        for part in &disk.partitions {
            let uses: Vec<String> = part
                .mount_points
                .iter()
                .map(|m| format!("mounted on {m}"))
                .chain(part.holders.iter().map(|h| format!("used by {h}")))
                .collect();
            if uses.is_empty() {
                continue;
            }
            let dir = sys_block.join(&disk.name).join(&part.name);
            let blocks = |attr: &str| {
                std::fs::read_to_string(dir.join(attr))
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
            };
            // A partition whose extent sysfs does not give is taken to be
            // everywhere: refusing too much is safe, too little is not.
            let range = match (blocks("start"), blocks("size")) {
                (Some(start), Some(size)) => start * BLOCK_SIZE..(start + size) * BLOCK_SIZE,
                _ => 0..u64::MAX,
            };
            regions.push(Region {
                range,
                what: format!("{} ({})", part.name, uses.join(", ")),
            });
        }
        regions.extend(table_regions(device));
        WriteGuard {
            disk: disk.name.clone(),
            regions,
        }
    }

    /// `Err` naming every planned write that touches a forbidden region.
    pub fn check(&self, planned: &[PlannedWrite]) -> Result<(), String> {
        let mut conflicts: Vec<String> = Vec::new();
        for write in planned {
            for region in &self.regions {
                if write.range.start < region.range.end && region.range.start < write.range.end {
                    let line = format!(
                        "{} writes bytes {}..{}, into {}",
                        write.action, write.range.start, write.range.end, region.what
                    );
                    if !conflicts.contains(&line) {
                        conflicts.push(line);
                    }
                }
            }
        }
        if conflicts.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refusing to install onto {} while it is in use, nothing was written: {}",
            self.disk,
            conflicts.join("; ")
        ))
    }

    pub fn into_check(self) -> WriteCheck {
        Arc::new(move |planned: &[PlannedWrite]| self.check(planned))
    }
}

/// Block 0 always (MBR or protective MBR); the primary and backup GPT
/// when the disk has one.
fn table_regions(device: &mut dyn Target) -> Vec<Region> {
    let mut regions = vec![Region {
        range: 0..BLOCK_SIZE,
        what: "the partition table (MBR, block 0)".into(),
    }];
    let size = device.size();
    let medium: &mut dyn Medium = device;
    if let Ok(table) = gpt::read(medium, size.map(|s| s / BLOCK_SIZE)) {
        regions.push(Region {
            range: BLOCK_SIZE..table.first_usable_lba * BLOCK_SIZE,
            what: "the partition table (primary GPT)".into(),
        });
        if let Some(size) = size {
            regions.push(Region {
                range: (table.last_usable_lba + 1) * BLOCK_SIZE..size,
                what: "the partition table (backup GPT)".into(),
            });
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> WriteGuard {
        WriteGuard {
            disk: "vda".into(),
            regions: vec![
                Region {
                    range: 0..512,
                    what: "the partition table (MBR, block 0)".into(),
                },
                Region {
                    range: 36864 * 512..102400 * 512,
                    what: "vda2 (mounted on /)".into(),
                },
            ],
        }
    }

    fn write(action: &str, blocks: Range<u64>) -> PlannedWrite {
        PlannedWrite {
            range: blocks.start * 512..blocks.end * 512,
            action: action.into(),
        }
    }

    #[test]
    fn writes_beside_the_regions_in_use_pass() {
        let planned = [
            write("uboot_setenv(uboot-env, …)", 2048..2064),
            write("raw_write(102400)", 102400..160000),
        ];
        assert_eq!(guard().check(&planned), Ok(()));
    }

    #[test]
    fn a_write_touching_a_region_in_use_is_refused_naming_both() {
        let planned = [
            write("raw_write(36864)", 36864..50000),
            write("mbr_write(mbr)", 0..1),
            write("raw_write(102400)", 102399..102401),
        ];
        let err = guard().check(&planned).expect_err("in use");
        assert!(
            err.starts_with("refusing to install onto vda while it is in use"),
            "{err}"
        );
        assert!(
            err.contains("raw_write(36864) writes bytes 18874368..25600000, into vda2 (mounted on /)"),
            "{err}"
        );
        assert!(
            err.contains("mbr_write(mbr) writes bytes 0..512, into the partition table"),
            "{err}"
        );
        assert!(err.contains("raw_write(102400)"), "one block of overlap counts: {err}");
    }
}
