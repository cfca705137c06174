//! Choosing what to do with the disk: `complete`, `upgrade`, the
//! data-keeping `repair`, nothing, or a refusal that says why.
//!
//! # `loader.task=auto` never wipes what it does not recognise
//!
//! - A blank disk (no partition table, no filesystem signature, no
//!   environment; see [`DiskContents::is_blank`]) gets `complete`.
//! - A recognised install of the same product (a valid U-Boot environment
//!   whose active slot names the bundle's product/platform) on the
//!   bundle's partition layout gets `upgrade`, which keeps the data
//!   partition. Unless it is the very bundle already active (same
//!   `FWUP_META_UUID`): then nothing is written. An older version than
//!   the installed one is refused unless `loader.allow_downgrade=1`.
//! - Anything else is refused, naming what is on the disk and the key that
//!   would proceed: another partition table or filesystem, another
//!   product, a layout that does not match, an unreadable environment.
//!   `loader.task=complete` wipes; where the bundle's layout is intact,
//!   `loader.task=repair` reinstalls keeping the data partition.
//!
//! - An install of this product whose environment is there but whose
//!   partition table is not, with nothing else on the disk: the state the
//!   ordered commit (`apply::commit`) leaves when cut between the
//!   environments and the final sector 0. The disk boots nothing; `auto`
//!   and `repair` finish it with `complete`, keeping the data partition
//!   where the bundle's table puts it (the commit had written it already).
//!   Never "already active": that would reboot into nothing, forever.
//!
//! An explicit `upgrade…` prefix follows the same identity rules (same
//! bundle: nothing written; another product or an older version: refused).
//! An explicit `complete` (or any other prefix) is the operator's word and
//! runs as given.
//!
//! # `loader.task=repair`
//!
//! The bundle's `complete` task, with the data partition shielded: every
//! write into it is kept in memory and dropped, so the partition keeps its
//! bytes (see `target::shield`). Allowed only where the disk's partition
//! table is the bundle's (the data partition is where the bundle expects
//! it) and no readable environment names another product.
//!
//! The decision is a pure function over facts ([`BundleFacts`],
//! [`DiskFacts`]); reading them is `inspect_disk`'s job.

use std::cmp::Ordering;
use std::ops::Range;

pub use super::bundle_facts::BundleFacts;
use super::config::TaskRequest;
use super::version_order::compare_versions;
use crate::bundle::manifest::Manifest;
use crate::inspect_disk::{DiskContents, Installed, LayoutComparison};

/// What is on the disk, and how its table compares with the bundle's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFacts {
    pub contents: DiskContents,
    pub layout: LayoutComparison,
}

/// Policies that widen what an upgrade may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// `loader.allow_downgrade=1`.
    pub allow_downgrade: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Complete,
    Upgrade,
    /// Named by `loader.task=`.
    Requested,
    /// `complete` with the data partition shielded.
    Repair,
    /// The bundle is already the active install: write nothing.
    AlreadyActive,
}

/// The partition a repair leaves alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPartition {
    pub number: u32,
    /// Bytes on the disk.
    pub range: Range<u64>,
}

/// The task prefix to run and the sentence to print before writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChoice {
    /// A task name prefix, resolved by the engine's guard evaluation
    /// (`upgrade` → `upgrade.a` or `upgrade.b`); empty for
    /// [`TaskKind::AlreadyActive`].
    pub task: String,
    pub kind: TaskKind,
    pub reason: String,
    /// For [`TaskKind::Repair`]: the data partition.
    pub keep: Option<KeptPartition>,
}

impl TaskChoice {
    /// The task as the console names it: `complete`, `repair (complete)`, `none`.
    pub fn label(&self) -> String {
        match self.kind {
            TaskKind::Repair => format!("repair ({})", self.task),
            TaskKind::AlreadyActive => "none".into(),
            _ => self.task.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskChoiceError {
    #[error("loader.task={requested}: the bundle has no task starting with `{requested}`; its tasks: {}", .available.join(", "))]
    NoSuchTask { requested: String, available: Vec<String> },
    /// The disk holds something this request must not overwrite.
    #[error("disk holds {holds}; {why}; {what_to_do}")]
    Refused {
        holds: String,
        why: String,
        what_to_do: String,
    },
    #[error("reading the disk to decide what to install: {0}")]
    Read(#[source] std::io::Error),
}

const WIPE: &str = "set loader.task=complete to wipe the disk and install";

/// Decides (see the module doc for the rules).
pub fn choose_task(
    request: &TaskRequest,
    policy: Policy,
    bundle: &BundleFacts,
    disk: &DiskFacts,
) -> Result<TaskChoice, TaskChoiceError> {
    let require = |prefix: &str| {
        if bundle.has_task(prefix) {
            Ok(prefix.to_string())
        } else {
            Err(TaskChoiceError::NoSuchTask {
                requested: prefix.into(),
                available: bundle.tasks.clone(),
            })
        }
    };
    let choice = |task: String, kind, reason: String| TaskChoice {
        task,
        kind,
        reason,
        keep: None,
    };
    let install = disk.contents.install.as_ref();
    let cut = install.is_some_and(|found| cut_before_table(found, bundle, disk));
    match request {
        TaskRequest::Repair | TaskRequest::Auto if cut => finish_cut(bundle, disk).and_then(|c| {
            require("complete")?;
            Ok(c)
        }),
        TaskRequest::Prefix(prefix) if prefix.starts_with("upgrade") && cut => Err(refused(
            disk,
            format!(
                "an install of {} was cut before its partition table was written, so the disk boots nothing and \
                 an upgrade cannot finish it",
                bundle.describe()
            ),
            "set loader.task=auto or loader.task=repair to finish it keeping the data partition".into(),
        )),
        TaskRequest::Repair => repair(policy, bundle, disk).and_then(|c| {
            require("complete")?;
            Ok(c)
        }),
        TaskRequest::Prefix(prefix) if prefix.starts_with("upgrade") => {
            if let Some(found) = install {
                if let Some(same) = check_identity(found, policy, bundle, disk)? {
                    return Ok(same);
                }
            }
            Ok(choice(
                require(prefix)?,
                TaskKind::Requested,
                format!("running task {prefix} as loader.task={prefix} asks"),
            ))
        }
        TaskRequest::Prefix(prefix) => Ok(choice(
            require(prefix)?,
            TaskKind::Requested,
            format!("running task {prefix} as loader.task={prefix} asks"),
        )),
        TaskRequest::Auto => match install {
            Some(found) => {
                if let Some(same) = check_identity(found, policy, bundle, disk)? {
                    return Ok(same);
                }
                let refuse = |why: String| refused(disk, why, WIPE.into());
                match &disk.layout {
                    LayoutComparison::Differs(how) => {
                        return Err(refuse(format!("its partition table differs from the bundle's ({how})")))
                    }
                    LayoutComparison::NoTable if bundle.has_partition_table => {
                        return Err(refuse("it has no partition table".into()))
                    }
                    _ => {}
                }
                if !bundle.has_task("upgrade") {
                    return Err(refuse("the bundle has no upgrade task".into()));
                }
                let to = bundle.version.as_ref().map(|v| format!(" to {v}")).unwrap_or_default();
                Ok(choice(
                    "upgrade".into(),
                    TaskKind::Upgrade,
                    format!(
                        "disk holds {found}: upgrading{to} (keeps application data); set loader.task=complete to wipe"
                    ),
                ))
            }
            None if disk.contents.is_blank() => Ok(choice(
                require("complete")?,
                TaskKind::Complete,
                "disk is blank: installing from scratch (task complete)".into(),
            )),
            None => {
                let what_to_do = if repairable(bundle, disk) {
                    "set loader.task=repair to reinstall keeping the data partition, or loader.task=complete to wipe \
                     the disk and install"
                } else {
                    WIPE
                };
                Err(refused(
                    disk,
                    format!(
                        "loader.task=auto installs only onto a blank disk or upgrades an install of {}",
                        bundle.describe()
                    ),
                    what_to_do.into(),
                ))
            }
        },
    }
}

/// For an install of a recognisable product: `Some(AlreadyActive)` when it
/// is this very bundle, an error for another product or an older version,
/// `None` to go on.
fn check_identity(
    found: &Installed,
    policy: Policy,
    bundle: &BundleFacts,
    disk: &DiskFacts,
) -> Result<Option<TaskChoice>, TaskChoiceError> {
    if !same_kind(found, bundle) {
        return Err(refused(disk, format!("that is not {}", bundle.describe()), WIPE.into()));
    }
    if found.uuid.is_some() && found.uuid == bundle.uuid {
        return Ok(Some(TaskChoice {
            task: String::new(),
            kind: TaskKind::AlreadyActive,
            reason: format!(
                "disk already runs this bundle ({found}, UUID {}): nothing to write",
                found.uuid.as_deref().unwrap_or_default()
            ),
            keep: None,
        }));
    }
    if let (Some(have), Some(want)) = (&found.version, &bundle.version) {
        if compare_versions(want, have) == Some(Ordering::Less) && !policy.allow_downgrade {
            return Err(refused(
                disk,
                format!("the bundle's version {want} is older than the installed {have}"),
                "set loader.allow_downgrade=1 to install the older version, or loader.task=complete to wipe the \
                 disk and install"
                    .into(),
            ));
        }
    }
    Ok(None)
}

fn repair(policy: Policy, bundle: &BundleFacts, disk: &DiskFacts) -> Result<TaskChoice, TaskChoiceError> {
    let refuse = |why: String| refused(disk, why, WIPE.into());
    if !bundle.has_partition_table {
        return Err(refuse(
            "loader.task=repair needs a bundle that lays out partitions".into(),
        ));
    }
    match &disk.layout {
        LayoutComparison::Matches => {}
        LayoutComparison::Differs(how) => {
            return Err(refuse(format!(
                "loader.task=repair needs the bundle's partition layout, and {how}"
            )))
        }
        _ => {
            return Err(refuse(
                "loader.task=repair needs the bundle's partition layout, and the disk has no partition table".into(),
            ))
        }
    }
    if let Some(found) = &disk.contents.install {
        // Another product or an older version is refused; the very bundle
        // already active is rewritten all the same (the operator asked).
        check_identity(found, policy, bundle, disk)?;
    }
    let Some(number) = bundle.data_partition else {
        return Err(refuse(
            "the bundle does not say which partition holds application data \
             (a.nerves_fw_application_part0_devpath in its complete task)"
                .into(),
        ));
    };
    let Some(part) = disk.contents.partitions.iter().find(|p| p.slot.number == number) else {
        return Err(refuse(format!("the disk has no partition {number} to keep")));
    };
    let keep = KeptPartition {
        number,
        range: part.slot.byte_range(),
    };
    Ok(TaskChoice {
        task: "complete".into(),
        kind: TaskKind::Repair,
        reason: format!(
            "the partition layout is the bundle's: reinstalling with task complete, keeping partition {number} \
             (application data, {}) untouched",
            crate::boot::disks::format_size(keep.range.end - keep.range.start)
        ),
        keep: Some(keep),
    })
}

/// The environment names an install of this product, but the disk has no
/// partition table and no signature on the whole disk (see the module doc).
fn cut_before_table(found: &Installed, bundle: &BundleFacts, disk: &DiskFacts) -> bool {
    bundle.has_partition_table
        && disk.layout == LayoutComparison::NoTable
        && disk.contents.whole_disk.is_none()
        && same_kind(found, bundle)
}

/// Finishes a cut install: `complete`, keeping the data partition where
/// the bundle's table puts it (its declared size: an expanding partition's
/// growth is never written by `complete`); plain `complete` when the bundle
/// names no data partition.
fn finish_cut(bundle: &BundleFacts, disk: &DiskFacts) -> Result<TaskChoice, TaskChoiceError> {
    let holds = disk.contents.summary();
    let place = bundle.data_partition.zip(bundle.data_partition_place);
    let Some((number, (first_block, blocks, _))) = place.filter(|(_, (_, blocks, _))| *blocks > 0) else {
        return Ok(TaskChoice {
            task: "complete".into(),
            kind: TaskKind::Complete,
            reason: format!(
                "disk holds {holds}: an install of {} was cut before its partition table was written; finishing it \
                 with task complete",
                bundle.describe()
            ),
            keep: None,
        });
    };
    let keep = KeptPartition {
        number,
        range: first_block * crate::formats::BLOCK_SIZE..(first_block + blocks) * crate::formats::BLOCK_SIZE,
    };
    Ok(TaskChoice {
        task: "complete".into(),
        kind: TaskKind::Repair,
        reason: format!(
            "disk holds {holds}: an install of {} was cut before its partition table was written; finishing it with \
             task complete, keeping partition {number} (application data, {}) where the bundle puts it",
            bundle.describe(),
            crate::boot::disks::format_size(keep.range.end - keep.range.start)
        ),
        keep: Some(keep),
    })
}

/// The layout is the bundle's and nothing readable names another product:
/// what `repair` needs.
fn repairable(bundle: &BundleFacts, disk: &DiskFacts) -> bool {
    bundle.has_partition_table && bundle.data_partition.is_some() && disk.layout == LayoutComparison::Matches
}

fn refused(disk: &DiskFacts, why: String, what_to_do: String) -> TaskChoiceError {
    TaskChoiceError::Refused {
        holds: disk.contents.summary(),
        why,
        what_to_do,
    }
}

/// Same firmware kind: product, platform and architecture agree wherever
/// both sides state them, and product or platform is stated.
fn same_kind(found: &Installed, bundle: &BundleFacts) -> bool {
    let agree = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let compared = (found.product.is_some() && bundle.product.is_some())
        || (found.platform.is_some() && bundle.platform.is_some());
    compared
        && agree(&found.product, &bundle.product)
        && agree(&found.platform, &bundle.platform)
        && agree(&found.architecture, &bundle.architecture)
}

/// Reads the disk, then decides.
pub fn choose_task_on(
    request: &TaskRequest,
    policy: Policy,
    manifest: &Manifest,
    uuid: &str,
    disk: &mut dyn crate::formats::Medium,
    size: Option<u64>,
) -> Result<(TaskChoice, DiskFacts), TaskChoiceError> {
    let contents = crate::inspect_disk::inspect(disk, size, Some(manifest)).map_err(TaskChoiceError::Read)?;
    let parts: Vec<_> = contents.partitions.iter().map(|p| p.slot.clone()).collect();
    let layout = crate::inspect_disk::compare_layout(manifest, &contents.table, &parts);
    let facts = DiskFacts { contents, layout };
    let choice = choose_task(request, policy, &BundleFacts::from_manifest(manifest, uuid), &facts)?;
    Ok((choice, facts))
}

#[cfg(test)]
#[path = "task_choice_tests.rs"]
mod tests;
