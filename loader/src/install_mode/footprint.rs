//! Which bytes a task writes straight to the disk before its commit, and
//! whether an upgrade may therefore stream in one pass over a disk whose
//! running system must keep booting.
//!
//! An A/B upgrade writes only the slot the running system does not boot
//! from, and switches slots in held writes at the commit: a download that
//! fails half-way leaves the running slot, and everything that selects it,
//! as it was. The loader cannot read the boot loader's mind, so it takes
//! the bundle's own slot tasks as the witness: `upgrade.b` is chosen (by
//! its guards) when slot a runs, and `upgrade.a`, its sibling, writes
//! exactly the blocks of slot a. The chosen task may stream in one pass
//! only when
//!
//! - it has siblings (`NAME.x` tasks of the same `NAME`) that write slots,
//! - none of its early writes touches a block any sibling writes early,
//! - every early write lies in a partition of the bundle's table, and the
//!   disk's partition table has a partition starting at the same block
//!   (the disk's layout is the bundle's, so its slots are where the bundle
//!   says).
//!
//! Writes into the held zones (the first and last MiB, the U-Boot
//! environments) never reach the disk before the commit and do not count.

use std::ops::Range;

use crate::apply::overlay::held_zones;
use crate::apply::plan::direct_write;
use crate::bundle::manifest::{Manifest, Task};
use crate::formats::{gpt, mbr, Medium, BLOCK_SIZE};

/// Byte ranges `task` writes before its commit: `raw_write` data,
/// `raw_memset` and `trim`, in every handler including `on-error`. Every
/// other write of a bundle goes through the held overlay (or, for
/// `path_write`/`pipe_write`/`execute`, to the host).
pub fn streamed_ranges(manifest: &Manifest, task: &Task) -> Vec<Range<u64>> {
    let lists = [&task.on_init, &task.on_finish, &task.on_error];
    let plain = lists.into_iter().flatten().map(|a| (a, 0));
    let handled = task.on_resource.iter().flat_map(|h| {
        let len = manifest
            .resources
            .iter()
            .find(|r| r.name == h.resource)
            .map_or(0, |r| r.expanded_len());
        h.actions.iter().map(move |a| (a, len))
    });
    plain
        .chain(handled)
        .filter_map(|(action, len)| direct_write(action, len))
        .filter(|range| range.start < range.end)
        .collect()
}

/// Why `task` may stream in one pass over a disk that boots a running
/// system (see the module docs), or why not.
pub fn streams_safely(
    manifest: &Manifest,
    task: &Task,
    disk: &mut dyn Medium,
    size: Option<u64>,
) -> Result<String, String> {
    let held = held_zones(manifest, size);
    let early = |t: &Task| outside(streamed_ranges(manifest, t), &held);
    let mine = early(task);
    if mine.is_empty() {
        return Ok(format!("task {} writes nothing before its commit", task.name));
    }
    let Some((family, _)) = task.name.rsplit_once('.') else {
        return Err(format!(
            "task {} is not one of a set of slot tasks ({0}.a, {0}.b): nothing shows which slot the running system boots from",
            task.name
        ));
    };
    let siblings: Vec<&Task> = manifest
        .tasks
        .iter()
        .filter(|t| t.name != task.name && t.name.strip_prefix(family).is_some_and(|r| r.starts_with('.')))
        .collect();
    let mut theirs = Vec::new();
    for sibling in &siblings {
        for range in early(sibling) {
            if let Some(overlap) = mine.iter().find(|m| m.start < range.end && range.start < m.end) {
                return Err(format!(
                    "task {} writes {}, which task {} also writes: the running system may boot from them",
                    task.name,
                    blocks(overlap),
                    sibling.name
                ));
            }
            theirs.push(range);
        }
    }
    if theirs.is_empty() {
        return Err(format!(
            "no other {family}.* task writes a slot: nothing shows which slot the running system boots from"
        ));
    }
    let layout = Layout::read(manifest, disk, size)?;
    for range in mine.iter().chain(&theirs) {
        layout.check(range)?;
    }
    let names: Vec<&str> = siblings.iter().map(|t| t.name.as_str()).collect();
    let written: Vec<String> = mine.iter().map(blocks).collect();
    Ok(format!(
        "task {} writes only {} before its commit, which the other slot's task ({}) leaves alone: \
         the running slot stays untouched until the commit switches slots",
        task.name,
        written.join(", "),
        names.join(", ")
    ))
}

/// The bundle's partitions (block ranges) and the start blocks of the
/// disk's.
struct Layout {
    bundle: Vec<Range<u64>>,
    disk_starts: Vec<u64>,
}

impl Layout {
    fn read(manifest: &Manifest, disk: &mut dyn Medium, size: Option<u64>) -> Result<Layout, String> {
        let end = u64::MAX / BLOCK_SIZE;
        let (bundle, disk_starts) = if let Some(section) = manifest.gpts.first() {
            let spec = gpt::GptSpec::from_section(section).map_err(|e| e.to_string())?;
            let parts = spec.partitions.iter().map(|p| {
                let count = if p.expand { end - p.block_offset } else { p.block_count };
                p.block_offset..p.block_offset + count
            });
            let on_disk = gpt::read(disk, size.map(|s| s / BLOCK_SIZE))
                .map_or(Vec::new(), |t| t.partitions.iter().map(|p| p.first_lba).collect());
            (parts.collect(), on_disk)
        } else if let Some(section) = manifest.mbrs.first() {
            let spec = mbr::MbrSpec::from_section(section).map_err(|e| e.to_string())?;
            let parts = spec.partitions.iter().map(|p| {
                let start = u64::from(p.block_offset);
                let count = if p.expand {
                    end - start
                } else {
                    u64::from(p.block_count)
                };
                start..start + count
            });
            let on_disk = mbr::read_partitions(disk).map_or(Vec::new(), |ps| {
                ps.iter()
                    .filter(|p| p.block_count > 0)
                    .map(|p| p.block_offset)
                    .collect()
            });
            (parts.collect(), on_disk)
        } else {
            return Err("the bundle declares no partition table to find its slots on the disk".into());
        };
        Ok(Layout { bundle, disk_starts })
    }

    /// `range` (bytes) lies in one of the bundle's partitions, and the disk
    /// has a partition starting where that one does.
    fn check(&self, range: &Range<u64>) -> Result<(), String> {
        let (first, last) = (range.start / BLOCK_SIZE, (range.end - 1) / BLOCK_SIZE);
        let part = self
            .bundle
            .iter()
            .find(|p| p.start <= first && last < p.end)
            .ok_or_else(|| format!("{} lies outside the bundle's partitions", blocks(range)))?;
        if !self.disk_starts.contains(&part.start) {
            return Err(format!(
                "the disk has no partition starting at block {}, where the bundle's slot does: its layout differs",
                part.start
            ));
        }
        Ok(())
    }
}

/// The parts of `ranges` outside every zone of `held`.
fn outside(ranges: Vec<Range<u64>>, held: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = ranges;
    for zone in held {
        out = out
            .into_iter()
            .flat_map(|r| {
                let before = r.start..r.end.min(zone.start);
                let after = r.start.max(zone.end)..r.end;
                [before, after]
            })
            .filter(|r| r.start < r.end)
            .collect();
    }
    out
}

/// `blocks 102400-167935`.
fn blocks(range: &Range<u64>) -> String {
    format!("blocks {}-{}", range.start / BLOCK_SIZE, (range.end - 1) / BLOCK_SIZE)
}

#[cfg(test)]
#[path = "footprint_tests.rs"]
mod tests;
