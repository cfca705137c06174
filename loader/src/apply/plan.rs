//! The byte ranges a task can write, worked out before its first write.
//!
//! Used to check a task against a disk that is in use (a running system
//! updating itself: the active slot and the data partition are mounted):
//! every region an action may touch, including `on-error`, is listed with
//! the action that touches it, so a refusal names both. Ranges are
//! generous rather than exact: a FAT operation covers the whole volume, a
//! `raw_write` the resource's expanded length rounded up to whole blocks.

use std::ops::Range;

use super::actions::describe;
use crate::bundle::manifest::{Action, Manifest, Task};
use crate::formats::{fat, gpt, mbr, uboot_env, Medium, BLOCK_SIZE};

/// One region a task may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    pub range: Range<u64>,
    /// The action, as messages name it: `raw_write(102400)`.
    pub action: String,
}

/// Every region `task` may write on `disk` (whose size is `device_size`).
pub fn plan_writes(
    manifest: &Manifest,
    task: &Task,
    disk: &mut dyn Medium,
    device_size: Option<u64>,
) -> Vec<PlannedWrite> {
    let mut planner = Planner {
        manifest,
        disk,
        device_blocks: device_size.map(|s| s / BLOCK_SIZE),
        fat_sizes: Vec::new(),
        out: Vec::new(),
    };
    for action in task.on_init.iter() {
        planner.action(action, 0);
    }
    for handler in &task.on_resource {
        let resource_len = manifest
            .resources
            .iter()
            .find(|r| r.name == handler.resource)
            .map_or(0, |r| r.expanded_len());
        for action in &handler.actions {
            planner.action(action, resource_len);
        }
    }
    for action in task.on_finish.iter().chain(task.on_error.iter()) {
        planner.action(action, 0);
    }
    planner.out
}

/// The bytes a `raw_write` (of a resource `resource_len` bytes long,
/// rounded up to whole blocks), `raw_memset` or `trim` reaches; `None` for
/// every other action. These are the writes that go straight to the disk
/// outside the held zones ([`super::overlay::held_zones`]).
pub fn direct_write(action: &Action, resource_len: u64) -> Option<Range<u64>> {
    let (block_offset, bytes) = match action {
        Action::RawWrite { block_offset, .. } => (*block_offset, resource_len),
        Action::RawMemset {
            block_offset,
            block_count,
            ..
        }
        | Action::Trim {
            block_offset,
            block_count,
        } => (*block_offset, block_count * BLOCK_SIZE),
        _ => return None,
    };
    let start = block_offset * BLOCK_SIZE;
    Some(start..start + bytes.div_ceil(BLOCK_SIZE) * BLOCK_SIZE)
}

struct Planner<'a> {
    manifest: &'a Manifest,
    disk: &'a mut dyn Medium,
    device_blocks: Option<u64>,
    /// Volumes made by an earlier `fat_mkfs` of this task: (offset, bytes).
    fat_sizes: Vec<(u64, u64)>,
    out: Vec<PlannedWrite>,
}

impl Planner<'_> {
    fn push(&mut self, action: &Action, range: Range<u64>) {
        if range.start < range.end {
            self.out.push(PlannedWrite {
                range,
                action: describe(action),
            });
        }
    }

    fn blocks(&mut self, action: &Action, block_offset: u64, bytes: u64) {
        let start = block_offset * BLOCK_SIZE;
        self.push(action, start..start + bytes.div_ceil(BLOCK_SIZE) * BLOCK_SIZE);
    }

    fn action(&mut self, action: &Action, resource_len: u64) {
        if let Some(range) = direct_write(action, resource_len) {
            self.push(action, range);
            return;
        }
        match action {
            Action::RawWrite { .. } | Action::RawMemset { .. } | Action::Trim { .. } => {}
            Action::MbrWrite { mbr: name } => {
                let spec = section(&self.manifest.mbrs, name).and_then(|s| mbr::MbrSpec::from_section(s).ok());
                match spec.and_then(|spec| mbr::encode(&spec, self.device_blocks).ok()) {
                    Some(pieces) => pieces
                        .iter()
                        .for_each(|(at, bytes)| self.push(action, *at..*at + bytes.len() as u64)),
                    None => self.push(action, 0..BLOCK_SIZE),
                }
            }
            Action::GptWrite { gpt: name } => {
                let spec = section(&self.manifest.gpts, name).and_then(|s| gpt::GptSpec::from_section(s).ok());
                match spec.and_then(|spec| gpt::encode(&spec, self.device_blocks).ok()) {
                    Some(pieces) => pieces
                        .iter()
                        .for_each(|(at, bytes)| self.push(action, *at..*at + bytes.len() as u64)),
                    None => self.push(action, 0..34 * BLOCK_SIZE),
                }
            }
            Action::UbootClearenv { env }
            | Action::UbootSetenv { env, .. }
            | Action::UbootUnsetenv { env, .. }
            | Action::UbootRecover { env } => {
                let spec =
                    section(&self.manifest.uboot_envs, env).and_then(|s| uboot_env::UbootEnvSpec::from_section(s).ok());
                for range in spec.map(|s| s.byte_ranges()).unwrap_or_default() {
                    self.push(action, range);
                }
            }
            Action::FatMkfs {
                block_offset,
                block_count,
            } => {
                let start = block_offset * BLOCK_SIZE;
                self.fat_sizes.push((start, block_count * BLOCK_SIZE));
                self.blocks(action, *block_offset, block_count * BLOCK_SIZE);
            }
            Action::FatWrite { block_offset, .. }
            | Action::FatMkdir { block_offset, .. }
            | Action::FatRm { block_offset, .. }
            | Action::FatMv { block_offset, .. }
            | Action::FatAttrib { block_offset, .. }
            | Action::FatTouch { block_offset, .. }
            | Action::FatSetlabel { block_offset, .. }
            | Action::FatCp {
                to_offset: block_offset,
                ..
            } => {
                let bytes = self.fat_volume_size(*block_offset * BLOCK_SIZE);
                self.blocks(action, *block_offset, bytes);
            }
            Action::Info { .. }
            | Action::Error { .. }
            | Action::Execute { .. }
            | Action::PathWrite { .. }
            | Action::PipeWrite { .. }
            | Action::Unusable { .. } => {}
        }
    }

    /// The size of the FAT volume at `offset`: made by this task, or as its
    /// boot sector says; one block (its boot sector) when neither knows.
    fn fat_volume_size(&mut self, offset: u64) -> u64 {
        if let Some((_, bytes)) = self.fat_sizes.iter().rev().find(|(at, _)| *at == offset) {
            return *bytes;
        }
        fat::Fat::open(self.disk, offset)
            .map(|f| u64::from(f.total_sectors()) * BLOCK_SIZE)
            .unwrap_or(BLOCK_SIZE)
    }
}

fn section<'s>(sections: &'s [crate::bundle::conf::Section], name: &str) -> Option<&'s crate::bundle::conf::Section> {
    sections.iter().find(|s| s.title.as_deref() == Some(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::apply::{events::Silent, open_bundle, ApplyOptions};

    /// The 02 corpus bundle's tasks, planned on a blank 800 MiB disk.
    fn plan(task: &str) -> Vec<PlannedWrite> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fw/02-x86_64-ab-mbr.fw");
        let bundle = open_bundle(std::fs::File::open(path).unwrap(), &ApplyOptions::new(""), &mut Silent).unwrap();
        let task = bundle.manifest.tasks.iter().find(|t| t.name == task).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut disk = crate::target::file::ImageFile::open(&dir.path().join("disk.img")).unwrap();
        plan_writes(&bundle.manifest, task, &mut disk, Some(800 << 20))
    }

    fn covers(plan: &[PlannedWrite], action: &str, range: Range<u64>) -> bool {
        plan.iter().any(|w| w.action.starts_with(action) && w.range == range)
    }

    #[test]
    fn a_complete_install_plans_the_table_the_volumes_and_the_slot() {
        let plan = plan("complete");
        assert!(covers(&plan, "mbr_write", 0..512), "{plan:#?}");
        assert!(covers(&plan, "fat_mkfs(4096", 4096 * 512..(4096 + 31232) * 512));
        assert!(
            covers(&plan, "fat_write(4096", 4096 * 512..(4096 + 31232) * 512),
            "a file write covers the volume this task made"
        );
        assert!(covers(&plan, "uboot_setenv", 2048 * 512..2064 * 512));
        let rootfs = plan.iter().find(|w| w.action == "raw_write(35328)").unwrap();
        assert_eq!(rootfs.range.start, 35328 * 512);
        assert_eq!(rootfs.range.end % 512, 0, "whole blocks");
    }

    #[test]
    fn an_upgrade_plans_only_the_other_slot_and_the_environment() {
        let plan = plan("upgrade.b");
        let slot_b = 559616 * 512..(559616 + 524288) * 512;
        for write in &plan {
            let in_b = slot_b.start <= write.range.start && write.range.end <= slot_b.end;
            let in_env = write.range == (2048 * 512..2064 * 512);
            let in_boot = write.action.starts_with("fat_write(4096");
            assert!(in_b || in_env || in_boot, "{write:?}");
        }
        // fat_write on a blank disk: no volume to measure, its boot sector.
        assert!(covers(&plan, "fat_write(4096", 4096 * 512..4097 * 512), "{plan:#?}");
    }
}
