//! The plan of an install, printed by `loader.dry_run=1` and `loader plan`
//! before anything is written: the task's actions in the order they run,
//! each with the bytes of the disk it writes.
//!
//! The places come from the bundle alone (action arguments, resource
//! lengths, the `mbr`/`gpt`/`uboot-environment` sections), so printing the
//! plan reads nothing but the guards the task choice already read.

use std::ops::Range;

use super::config::Config;
use super::reporter::BootReporter;
use super::run::{describe_task, fail, Failure, Outcome};
use super::task_choice::{KeptPartition, TaskChoice, TaskKind};
use crate::apply::{self, describe_action, ApplyOptions};
use crate::boot::disks::format_size;
use crate::bundle::manifest::{Action, Manifest, Task};
use crate::formats::{gpt, uboot_env, BLOCK_SIZE};
use crate::install_mode::Look;
use crate::target::Target;

/// After the task choice: `Some` when the attempt ends here without
/// writing (the bundle already active; `loader.dry_run=1`, which prints
/// the plan first).
pub(super) fn stop_before_writing(
    config: &Config,
    choice: &TaskChoice,
    bundle: &Look,
    device: &mut dyn Target,
    opts: &ApplyOptions,
    out: &mut BootReporter,
) -> Result<Option<Outcome>, Failure> {
    let already = choice.kind == TaskKind::AlreadyActive;
    if !config.dry_run {
        if already {
            out.say("nothing written: this bundle is already the active install");
            return Ok(Some(Outcome::AlreadyActive));
        }
        return Ok(None);
    }
    out.stage("planning (loader.dry_run=1: nothing is written)");
    out.say(&format!(
        "policies: loader.task={}, allow_downgrade={}, force={}, {} public key(s) enforced, on_success={:?}, \
         on_error={:?}, held boot-critical writes up to {}",
        describe_task(&config.task),
        u8::from(config.allow_downgrade),
        describe_force(config.force),
        opts.public_keys.len(),
        config.on_success,
        config.on_error,
        format_size(opts.hold_limit)
    ));
    if already {
        out.say("plan: nothing to write (this bundle is already the active install)");
        return Ok(Some(Outcome::DryRun));
    }
    let task = apply::select::choose_task(bundle.manifest(), &choice.task, device, opts.allow_unsafe)
        .map_err(|e| fail("planning", e.class(), e, "check loader.task and what the disk holds"))?;
    out.say(&format!(
        "plan: task {} onto {} ({})",
        task.name,
        device.describe(),
        choice.reason
    ));
    for line in plan_lines(bundle.manifest(), task, choice.keep.as_ref(), device.size()) {
        out.say(&format!("plan: {line}"));
    }
    Ok(Some(Outcome::DryRun))
}

/// The summary of an attempt that wrote nothing.
pub(super) fn unwritten_summary(bundle: &Look, choice: &TaskChoice) -> apply::Summary {
    let meta = &bundle.manifest().meta;
    apply::Summary {
        product: meta.product.clone().unwrap_or_default(),
        version: meta.version.clone().unwrap_or_default(),
        uuid: bundle.uuid().to_string(),
        task: if choice.task.is_empty() {
            "none".into()
        } else {
            choice.task.clone()
        },
        signature: bundle.signature().to_string(),
        resource_bytes: 0,
        committed_bytes: 0,
        restarts: 0,
        refetched_bytes: 0,
        elapsed: Default::default(),
    }
}

fn describe_force(force: crate::boot::disks::Force) -> String {
    let rules: Vec<&str> = [
        (force.removable, "removable"),
        (force.mounted, "mounted"),
        (force.boot_disk, "boot-disk"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    if rules.is_empty() {
        "none".into()
    } else {
        rules.join(",")
    }
}

/// One line per action: "on-init: mbr_write(mbr) → bytes 0..512 (512 bytes)".
pub fn plan_lines(
    manifest: &Manifest,
    task: &Task,
    keep: Option<&KeptPartition>,
    disk_size: Option<u64>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut add = |stage: &str, action: &Action, resource: Option<(&str, u64)>| {
        let (place, range) = place(manifest, action, resource, disk_size);
        let kept = match (keep, &range) {
            (Some(k), Some(r)) if r.start >= k.range.start && r.end <= k.range.end => {
                format!(" [inside partition {}: kept, not written]", k.number)
            }
            (Some(k), Some(r)) if r.start < k.range.end && k.range.start < r.end => {
                format!(" [partly inside partition {}: that part kept]", k.number)
            }
            _ => String::new(),
        };
        lines.push(format!("{stage}: {} → {place}{kept}", describe_action(action)));
    };
    for action in &task.on_init {
        add("on-init", action, None);
    }
    for resource in &manifest.resources {
        if let Some(handler) = task.handler(&resource.name) {
            for action in &handler.actions {
                add(
                    &format!("on-resource {}", resource.name),
                    action,
                    Some((&resource.name, resource.expanded_len())),
                );
            }
        }
    }
    for action in &task.on_finish {
        add("on-finish", action, None);
    }
    lines
}

/// Where an action writes, in words, and the byte range when it is one.
fn place(
    manifest: &Manifest,
    action: &Action,
    resource: Option<(&str, u64)>,
    disk_size: Option<u64>,
) -> (String, Option<Range<u64>>) {
    let blocks = |first: u64, count: u64| {
        let range = first * BLOCK_SIZE..(first + count) * BLOCK_SIZE;
        (bytes(&range), Some(range))
    };
    match action {
        Action::RawWrite { block_offset, .. } => {
            let (name, len) = resource.unwrap_or(("the resource", 0));
            let range = block_offset * BLOCK_SIZE..block_offset * BLOCK_SIZE + len;
            (format!("{} ({name})", bytes(&range)), Some(range))
        }
        Action::RawMemset {
            block_offset,
            block_count,
            value,
        } => {
            let (text, range) = blocks(*block_offset, *block_count);
            (format!("{text} filled with {value:#04x}"), range)
        }
        Action::Trim {
            block_offset,
            block_count,
        } => {
            let (text, range) = blocks(*block_offset, *block_count);
            (format!("{text} discarded"), range)
        }
        Action::MbrWrite { .. } => {
            let (text, range) = blocks(0, 1);
            (format!("{text} (partition table)"), range)
        }
        Action::GptWrite { .. } => {
            let backup = disk_size.map_or("and the last 33 blocks".to_string(), |size| {
                let last = size / BLOCK_SIZE;
                format!(
                    "and {} (backup)",
                    bytes(&(last.saturating_sub(gpt::GPT_BLOCKS) * BLOCK_SIZE..size))
                )
            });
            let (text, range) = blocks(0, 1 + gpt::GPT_BLOCKS);
            (format!("{text} (protective MBR, GPT) {backup}"), range)
        }
        Action::UbootClearenv { env }
        | Action::UbootSetenv { env, .. }
        | Action::UbootUnsetenv { env, .. }
        | Action::UbootRecover { env } => env_place(manifest, env),
        Action::FatMkfs {
            block_offset,
            block_count,
        } => {
            let (text, range) = blocks(*block_offset, *block_count);
            (format!("{text} (new FAT filesystem)"), range)
        }
        Action::FatWrite { block_offset, .. }
        | Action::FatMkdir { block_offset, .. }
        | Action::FatRm { block_offset, .. }
        | Action::FatMv { block_offset, .. }
        | Action::FatAttrib { block_offset, .. }
        | Action::FatTouch { block_offset, .. }
        | Action::FatSetlabel { block_offset, .. } => fat_place(*block_offset),
        Action::FatCp { to_offset, .. } => fat_place(*to_offset),
        Action::Info { message } => (format!("prints \"{message}\""), None),
        Action::Error { message } => (format!("stops the install: \"{message}\""), None),
        Action::Execute { .. } | Action::PathWrite { .. } | Action::PipeWrite { .. } => {
            ("runs on the host (only with --unsafe)".into(), None)
        }
        Action::Unusable { action, problem } => (format!("cannot run `{action}`: {problem}"), None),
    }
}

fn fat_place(block_offset: u64) -> (String, Option<Range<u64>>) {
    let at = block_offset * BLOCK_SIZE;
    (
        format!("the FAT filesystem at byte {at} (block {block_offset})"),
        Some(at..at + 1),
    )
}

fn env_place(manifest: &Manifest, env: &str) -> (String, Option<Range<u64>>) {
    let spec = manifest
        .uboot_envs
        .iter()
        .find(|s| s.title.as_deref() == Some(env))
        .and_then(|s| uboot_env::UbootEnvSpec::from_section(s).ok());
    match spec {
        Some(spec) => {
            let ranges = spec.byte_ranges();
            let text: Vec<String> = ranges.iter().map(bytes).collect();
            (
                format!("{} (U-Boot environment)", text.join(" and ")),
                ranges.first().cloned(),
            )
        }
        None => (format!("the U-Boot environment `{env}`"), None),
    }
}

/// "bytes 1048576..1056768 (8.0 KiB)".
fn bytes(range: &Range<u64>) -> String {
    format!(
        "bytes {}..{} ({})",
        range.start,
        range.end,
        format_size(range.end - range.start)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::{Resource, ResourceHandler};

    #[test]
    fn each_action_names_the_bytes_it_writes_and_what_a_repair_keeps() {
        let manifest = Manifest {
            resources: vec![Resource {
                name: "rootfs.img".into(),
                sparse_map: vec![4096],
                blake2b_256: [0; 32],
            }],
            ..Manifest::default()
        };
        let task = Task {
            name: "complete".into(),
            on_init: vec![
                Action::MbrWrite { mbr: "mbr".into() },
                Action::FatMkfs {
                    block_offset: 100,
                    block_count: 20,
                },
            ],
            on_resource: vec![ResourceHandler {
                resource: "rootfs.img".into(),
                actions: vec![Action::RawWrite {
                    block_offset: 2048,
                    cipher: None,
                }],
                delta_source: false,
            }],
            ..Task::default()
        };
        let keep = KeptPartition {
            number: 4,
            range: 100 * 512..200 * 512,
        };
        let lines = plan_lines(&manifest, &task, Some(&keep), Some(1 << 20));
        assert_eq!(
            lines,
            [
                "on-init: mbr_write(mbr) → bytes 0..512 (512 bytes) (partition table)",
                "on-init: fat_mkfs(100, 20) → bytes 51200..61440 (10.0 KiB) (new FAT filesystem) [inside partition 4: \
                 kept, not written]",
                "on-resource rootfs.img: raw_write(2048) → bytes 1048576..1052672 (4.0 KiB) (rootfs.img)",
            ]
        );
    }
}
