//! Choosing the task (first whose name starts with the prefix and whose
//! guards all pass, in meta.conf order) and validating it before any write.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::error::ApplyError;
use super::exec;
use super::ApplyOptions;
use crate::bundle::manifest::{Action, Manifest, Requirement, Task};
use crate::formats::error::FormatError;
use crate::formats::{fat, gpt, mbr, uboot_env, Medium, BLOCK_SIZE};

/// fwup's `find_task`.
pub fn choose_task<'m>(
    manifest: &'m Manifest,
    prefix: &str,
    disk: &mut dyn Medium,
    allow_unsafe: bool,
) -> Result<&'m Task, ApplyError> {
    for task in manifest.tasks.iter().filter(|t| t.name.starts_with(prefix)) {
        if task
            .requirements
            .iter()
            .all(|r| requirement_met(manifest, r, disk, allow_unsafe))
        {
            return Ok(task);
        }
    }
    let available: Vec<&str> = manifest.tasks.iter().map(|t| t.name.as_str()).collect();
    Err(ApplyError::NoTask {
        prefix: prefix.to_string(),
        available: available.join(", "),
    })
}

/// A guard that cannot be evaluated (unreadable env, no FAT) is "not met",
/// exactly as in fwup: guards pick between tasks, they do not fail installs.
pub fn requirement_met(manifest: &Manifest, req: &Requirement, disk: &mut dyn Medium, allow_unsafe: bool) -> bool {
    match req {
        // fwup compares raw MBR slot N (0-3), used or not.
        Requirement::PartitionOffset {
            partition,
            block_offset,
        } => mbr::read_primary_slots(disk)
            .ok()
            .and_then(|slots| slots.into_iter().nth(*partition as usize))
            .is_some_and(|p| p.block_offset == *block_offset),
        Requirement::FatFileExists { block_offset, path } => fat::Fat::open(disk, block_offset * BLOCK_SIZE)
            .and_then(|mut f| f.exists(disk, path))
            .unwrap_or(false),
        Requirement::FatFileMatch {
            block_offset,
            path,
            pattern,
        } => fat::Fat::open(disk, block_offset * BLOCK_SIZE)
            .and_then(|mut f| f.file_contains(disk, path, pattern.as_bytes()))
            .unwrap_or(false),
        Requirement::UbootVariable { env, name, value } => {
            let Some(section) = manifest
                .uboot_envs
                .iter()
                .find(|s| s.title.as_deref() == Some(env.as_str()))
            else {
                return false;
            };
            let Ok(spec) = uboot_env::UbootEnvSpec::from_section(section) else {
                return false;
            };
            uboot_env::read(disk, &spec).is_ok_and(|vars| vars.get(name) == Some(value.as_str()))
        }
        Requirement::PathOnDevice { path, device } => path_on_device(path, device),
        Requirement::PathAtOffset { path, block_offset } => path_at_offset(path, *block_offset),
        Requirement::Execute { command } => allow_unsafe && exec::run_shell(command).unwrap_or(false),
        Requirement::Unusable { .. } => false,
    }
}

/// The filesystem holding `path` lives on block device `device` (or one of
/// its partitions).
fn path_on_device(path: &str, device: &str) -> bool {
    let (Ok(p), Ok(d)) = (std::fs::metadata(path), std::fs::metadata(device)) else {
        return false;
    };
    if !d.file_type().is_block_device() {
        return false;
    }
    let fs_dev = p.dev();
    let disk = d.rdev();
    fs_dev == disk || whole_disk_of(fs_dev) == Some(disk)
}

/// The filesystem holding `path` is on a partition starting at `block_offset`.
fn path_at_offset(path: &str, block_offset: u64) -> bool {
    let Ok(p) = std::fs::metadata(path) else { return false };
    let (major, minor) = (nix::sys::stat::major(p.dev()), nix::sys::stat::minor(p.dev()));
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/start"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .is_some_and(|start| start == block_offset)
}

fn whole_disk_of(dev: u64) -> Option<u64> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let text = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/../dev")).ok()?;
    let (ma, mi) = text.trim().split_once(':')?;
    Some(nix::sys::stat::makedev(ma.parse().ok()?, mi.parse().ok()?))
}

/// Everything that can be refused before the first write.
pub fn validate_task(manifest: &Manifest, task: &Task, opts: &ApplyOptions) -> Result<(), ApplyError> {
    let all = task
        .on_init
        .iter()
        .chain(task.on_finish.iter())
        .chain(task.on_error.iter())
        .chain(task.on_resource.iter().flat_map(|h| h.actions.iter()));
    // fwup computes the progress of on-init, every on-resource and
    // on-finish before running anything, and fails on a function it does
    // not know; on-error is only run, and stops at one.
    let before_error = task
        .on_init
        .iter()
        .chain(task.on_finish.iter())
        .chain(task.on_resource.iter().flat_map(|h| h.actions.iter()));
    for action in before_error {
        if let Action::Unusable { problem, .. } = action {
            return Err(ApplyError::Manifest(format!(
                "task `{}` cannot be installed: {problem}",
                task.name
            )));
        }
    }
    let mut fat_bytes = 0u64;
    for action in all {
        if action.is_unsafe() && !opts.allow_unsafe {
            let name = super::actions::describe(action);
            let what = name.split('(').next().unwrap_or(&name).to_string();
            return Err(ApplyError::NeedsUnsafe { what });
        }
        if let Action::RawWrite { cipher: Some(_), .. } = action {
            return Err(ApplyError::Unsupported("raw_write with a dm-crypt cipher".into()));
        }
        if let Action::FatAttrib { attrib, .. } = action {
            attrib
                .parse::<fat::Attributes>()
                .map_err(|e| ApplyError::Manifest(e.to_string()))?;
        }
    }
    for handler in &task.on_resource {
        let readers = handler.actions.iter().filter(|a| a.consumes_data()).count();
        if readers > 1 {
            return Err(ApplyError::DataReadTwice {
                name: handler.resource.clone(),
                count: readers,
            });
        }
        let Some(resource) = manifest.resources.iter().find(|r| r.name == handler.resource) else {
            return Err(ApplyError::Manifest(format!(
                "task `{}` has on-resource `{}` but no file-resource declares it",
                task.name, handler.resource
            )));
        };
        if handler.actions.iter().any(|a| matches!(a, Action::FatWrite { .. })) {
            fat_bytes += resource.expanded_len();
        }
    }
    // FAT file data is held until the commit: refuse up front what cannot fit.
    if fat_bytes > opts.hold_limit {
        return Err(ApplyError::HoldLimit(format!(
            "task `{}` writes {fat_bytes} bytes into FAT volumes; the limit is {} bytes (--hold-limit)",
            task.name, opts.hold_limit
        )));
    }
    Ok(())
}

/// Every partition table the task writes must fit the target, checked
/// before anything is written (`disk_blocks` is `None` for an empty image
/// file, which fwup sizes from the partitions). fwup writes a table that
/// points past the end of the disk; the loader refuses with the disk size,
/// the layout size and the largest partition that does not fit. A table
/// that is wrong in another way is reported when its action runs, as fwup
/// does.
pub fn check_tables_fit(manifest: &Manifest, task: &Task, disk_blocks: Option<u64>) -> Result<(), ApplyError> {
    let Some(blocks) = disk_blocks.filter(|&b| b > 0) else {
        return Ok(());
    };
    let runs_before_success = task
        .on_init
        .iter()
        .chain(task.on_finish.iter())
        .chain(task.on_resource.iter().flat_map(|h| h.actions.iter()));
    let titled = |sections: &'_ [crate::bundle::conf::Section], name: &str| {
        sections.iter().find(|s| s.title.as_deref() == Some(name)).cloned()
    };
    for action in runs_before_success {
        let encoded = match action {
            Action::MbrWrite { mbr: name } => titled(&manifest.mbrs, name)
                .and_then(|s| mbr::MbrSpec::from_section(&s).ok())
                .map(|spec| mbr::encode(&spec, Some(blocks)).map(drop)),
            Action::GptWrite { gpt: name } => titled(&manifest.gpts, name)
                .and_then(|s| gpt::GptSpec::from_section(&s).ok())
                .map(|spec| gpt::encode(&spec, Some(blocks)).map(drop)),
            _ => None,
        };
        if let Some(Err(e @ FormatError::TooLarge { .. })) = encoded {
            return Err(ApplyError::TooSmall(e.to_string()));
        }
    }
    Ok(())
}
