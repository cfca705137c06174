//! After an install: make the kernel's list of partitions match the table
//! now on the disk, so `/dev/vda1…` name the new partitions.
//!
//! A disk nothing uses gets a full re-read (`BLKRRPART`, retried while
//! udev briefly holds it). A disk in use cannot be re-read (the kernel
//! refuses while any partition is open), so each partition that differs
//! is removed and added again on its own (`BLKPG`); one that is itself in
//! use keeps its old extent until a reboot, and the note says so. The
//! same partition-by-partition pass also runs after a re-read, which
//! covers kernels built without the partition table's parser.

use std::collections::BTreeMap;
use std::path::Path;

use super::Paths;
use crate::boot::disks::{parse_mountinfo, DevNum};
use crate::formats::{gpt, mbr, BLOCK_SIZE};
use crate::target::blockdev::{BlockDevice, PartitionOp};
use crate::target::Target;

/// One partition: start and length in 512-byte blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub start: u64,
    pub blocks: u64,
}

/// A partition as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KernelPartition {
    name: String,
    extent: Extent,
    /// "mounted on /data", "used by dm-0".
    uses: Vec<String>,
}

/// Brings the kernel's view of `device` (kernel name `disk`) up to date;
/// returns one line per thing done or left undone.
pub fn refresh(device: &mut BlockDevice, disk: &str, paths: &Paths, in_use: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if in_use {
        if let Err(e) = device.sync() {
            notes.push(format!("syncing {disk}: {e}"));
        }
    } else {
        match device.reread_partitions() {
            Ok(()) => {}
            Err(e) => notes.push(format!("{e}; updating the partitions one by one instead")),
        }
    }
    let table = match on_disk(device) {
        Ok(table) => table,
        Err(problem) => {
            notes.push(format!(
                "{disk}: the kernel's partition list was not updated: {problem}"
            ));
            return notes;
        }
    };
    let kernel = kernel_view(&paths.sys_block.join(disk), &paths.mountinfo);
    notes.extend(reconcile(device, &table, &kernel));
    notes
}

/// The partitions of the table on the disk, by number; empty when there is
/// no table. The extended partition of an MBR is two blocks long, as Linux
/// registers it.
fn on_disk(device: &mut BlockDevice) -> Result<BTreeMap<u32, Extent>, String> {
    let blocks = device.size().map(|s| s / BLOCK_SIZE);
    let slots = match mbr::read_primary_slots(device) {
        Ok(slots) => slots,
        Err(_) => return Ok(BTreeMap::new()),
    };
    if slots[0].kind == 0xee {
        let table = gpt::read(device, blocks).map_err(|e| e.to_string())?;
        return Ok(table
            .partitions
            .iter()
            .map(|p| {
                let extent = Extent {
                    start: p.first_lba,
                    blocks: p.block_count(),
                };
                (p.number, extent)
            })
            .collect());
    }
    let partitions = mbr::read_partitions(device).map_err(|e| e.to_string())?;
    Ok(partitions
        .iter()
        .map(|p| {
            let blocks = if mbr::is_extended_type(p.kind) {
                p.block_count.min(2)
            } else {
                p.block_count
            };
            let extent = Extent {
                start: p.block_offset,
                blocks,
            };
            (p.number, extent)
        })
        .collect())
}

/// The kernel's partitions of the disk at `disk_dir` (`/sys/block/vda`).
fn kernel_view(disk_dir: &Path, mountinfo: &Path) -> BTreeMap<u32, KernelPartition> {
    let mounts = std::fs::read_to_string(mountinfo)
        .ok()
        .and_then(|t| parse_mountinfo(&t).ok())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(disk_dir).into_iter().flatten().flatten() {
        let dir = entry.path();
        let attr = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let number = attr("partition").and_then(|t| t.trim().parse::<u32>().ok());
        let (start, blocks) = (attr("start"), attr("size"));
        let (Some(number), Some(start), Some(blocks)) = (
            number,
            start.and_then(|t| t.trim().parse().ok()),
            blocks.and_then(|t| t.trim().parse().ok()),
        ) else {
            continue;
        };
        let dev = attr("dev").and_then(|d| DevNum::parse(&d));
        let mut uses: Vec<String> = mounts
            .iter()
            .filter(|m| Some(m.dev) == dev)
            .map(|m| format!("mounted on {}", m.mount_point))
            .collect();
        for holder in std::fs::read_dir(dir.join("holders")).into_iter().flatten().flatten() {
            uses.push(format!("used by {}", holder.file_name().to_string_lossy()));
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        out.insert(
            number,
            KernelPartition {
                name,
                extent: Extent { start, blocks },
                uses,
            },
        );
    }
    out
}

/// Removes and adds what differs, leaving partitions in use alone.
fn reconcile(
    device: &mut BlockDevice,
    table: &BTreeMap<u32, Extent>,
    kernel: &BTreeMap<u32, KernelPartition>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let disk = device.path().display().to_string();
    let numbers: std::collections::BTreeSet<u32> = table.keys().chain(kernel.keys()).copied().collect();
    for number in numbers {
        let wanted = table.get(&number);
        let current = kernel.get(&number);
        if wanted.is_some() && wanted == current.map(|k| &k.extent) {
            continue;
        }
        if let Some(current) = current {
            if !current.uses.is_empty() {
                notes.push(format!(
                    "{} is in use ({}): the kernel keeps its old extent until a reboot",
                    current.name,
                    current.uses.join(", ")
                ));
                continue;
            }
            if let Err(errno) = device.change_partition(PartitionOp::Delete { number }) {
                notes.push(format!(
                    "{}: removing it from the kernel's view failed: {errno}",
                    current.name
                ));
                continue;
            }
        }
        if let Some(extent) = wanted {
            let op = PartitionOp::Add {
                number,
                start: extent.start * BLOCK_SIZE,
                length: extent.blocks * BLOCK_SIZE,
            };
            match device.change_partition(op) {
                Ok(()) => notes.push(format!("partition {number} of {disk} updated in the kernel (BLKPG)")),
                Err(errno) => notes.push(format!("partition {number} of {disk}: adding it failed: {errno}")),
            }
        } else {
            notes.push(format!(
                "partition {number} of {disk} removed from the kernel's view (BLKPG)"
            ));
        }
    }
    notes
}
