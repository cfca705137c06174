//! Choosing the install target among discovered disks.
//!
//! The rules, in the order an operator reads them in a refusal:
//! never a read-only disk, a boot medium (an ISO 9660 image), or one too
//! small for the bundle; never removable
//! media (the removable flag, or any USB disk), a disk with mounted or otherwise used partitions (LVM, RAID,
//! swap via a holder), or the disk the loader started from, unless
//! `loader.force=` names that rule. Without `loader.disk=` exactly one
//! eligible disk must remain; with it, the matching disks are narrowed to
//! the eligible ones, and exactly one must remain too. Never a guess.

use std::fmt;

use super::{format_size, Disk, DiskSelector, Transport};

/// Rules the operator lifted with `loader.force=` (comma-separated
/// `removable`, `mounted`, `boot-disk`, or `all`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Force {
    /// Allow removable media (USB sticks, SD cards).
    pub removable: bool,
    /// Allow disks with mounted or held partitions (the open still fails
    /// while the kernel holds them exclusively).
    pub mounted: bool,
    /// Allow the disk the loader was started from.
    pub boot_disk: bool,
}

impl Force {
    pub fn parse(text: &str) -> Result<Force, String> {
        let mut force = Force::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "removable" => force.removable = true,
                "mounted" => force.mounted = true,
                "boot-disk" | "boot_disk" => force.boot_disk = true,
                "all" => {
                    force = Force {
                        removable: true,
                        mounted: true,
                        boot_disk: true,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown rule `{other}` (expected removable, mounted, boot-disk or all)"
                    ))
                }
            }
        }
        Ok(force)
    }
}

/// Why a disk cannot be the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ReadOnly,
    /// Holds an ISO 9660 file system (a boot medium); no force lifts it.
    Iso9660,
    Empty,
    TooSmall {
        needed: u64,
    },
    Removable,
    Mounted(Vec<String>),
    InUse(Vec<String>),
    BootDisk,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ReadOnly => f.write_str("read-only"),
            Refusal::Iso9660 => f.write_str(
                "holds an ISO 9660 file system (a CD image or a stick written from one, such as the rescue ISO): never a target",
            ),
            Refusal::Empty => f.write_str("no medium (0 bytes)"),
            Refusal::TooSmall { needed } => {
                write!(f, "too small (the bundle needs {})", format_size(*needed))
            }
            Refusal::Removable => f.write_str("removable or USB media (loader.force=removable to allow)"),
            Refusal::Mounted(m) => {
                write!(f, "mounted: {} (loader.force=mounted to allow)", m.join(", "))
            }
            Refusal::InUse(h) => write!(f, "in use: {} (loader.force=mounted to allow)", h.join(", ")),
            Refusal::BootDisk => f.write_str("the loader was started from it (loader.force=boot-disk to allow)"),
        }
    }
}

/// Every reason `disk` cannot be the target; empty when it is eligible.
pub fn eligibility(disk: &Disk, min_size: u64, force: Force) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    if disk.read_only {
        refusals.push(Refusal::ReadOnly);
    }
    if disk.iso9660 {
        refusals.push(Refusal::Iso9660);
    }
    if disk.size == 0 {
        refusals.push(Refusal::Empty);
    } else if disk.size < min_size {
        refusals.push(Refusal::TooSmall { needed: min_size });
    }
    // USB sticks often claim to be fixed disks; on a server a USB disk is
    // the boot stick or someone's backup, never an implicit target.
    if (disk.removable || disk.transport == Transport::Usb) && !force.removable {
        refusals.push(Refusal::Removable);
    }
    let mounts = disk.mounts();
    if !mounts.is_empty() && !force.mounted {
        refusals.push(Refusal::Mounted(mounts));
    }
    let holders = disk.holders_in_use();
    if !holders.is_empty() && !force.mounted {
        refusals.push(Refusal::InUse(holders));
    }
    if disk.boot && !force.boot_disk {
        refusals.push(Refusal::BootDisk);
    }
    refusals
}

/// What the caller asks for.
#[derive(Debug, Clone, Default)]
pub struct SelectRequest {
    /// `loader.disk=`, if given.
    pub selector: Option<DiskSelector>,
    /// Bytes the bundle's layout needs (0 when unknown).
    pub min_size: u64,
    pub force: Force,
}

/// The chosen disk and why, for the console before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub disk: Disk,
    pub reason: String,
}

/// Every disk with its verdict, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateList(pub Vec<(String, Vec<Refusal>)>);

impl fmt::Display for CandidateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (summary, refusals) in &self.0 {
            let verdict = if refusals.is_empty() {
                "eligible".to_string()
            } else {
                refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join("; ")
            };
            write!(f, "\n  {summary}: {verdict}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no disks found; check that the kernel has the storage driver built in")]
    NoDisks,
    #[error("no disk can be the install target:{candidates}")]
    NoneEligible { candidates: CandidateList },
    #[error("{count} disks could be the install target; set loader.disk= to one of them:{candidates}")]
    Ambiguous { count: usize, candidates: CandidateList },
    #[error("no disk matches loader.disk={selector}; disks:{candidates}")]
    NoMatch {
        selector: DiskSelector,
        candidates: CandidateList,
    },
    #[error("loader.disk={selector} matches only disks that cannot be the target:{candidates}")]
    MatchNotEligible {
        selector: DiskSelector,
        candidates: CandidateList,
    },
    #[error("loader.disk={selector} matches {count} eligible disks; use a serial: or wwn: selector:{candidates}")]
    MatchAmbiguous {
        selector: DiskSelector,
        count: usize,
        candidates: CandidateList,
    },
}

/// Picks the install target (see the module doc for the rules).
pub fn select_disk(disks: &[Disk], request: &SelectRequest) -> Result<Selected, SelectError> {
    if disks.is_empty() {
        return Err(SelectError::NoDisks);
    }
    let verdicts: Vec<(&Disk, Vec<Refusal>)> = disks
        .iter()
        .map(|d| (d, eligibility(d, request.min_size, request.force)))
        .collect();
    for (disk, refusals) in &verdicts {
        let matches = request.selector.as_ref().is_none_or(|s| s.matches(disk));
        if refusals.is_empty() {
            tracing::debug!(disk = %disk.summary(), matches, "eligible");
        } else {
            let reasons = refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join("; ");
            tracing::debug!(disk = %disk.summary(), matches, reasons, "skipped");
        }
    }
    let list = |filter: &dyn Fn(&Disk) -> bool| {
        CandidateList(
            verdicts
                .iter()
                .filter(|(d, _)| filter(d))
                .map(|(d, r)| (d.summary(), r.clone()))
                .collect(),
        )
    };
    let all = || list(&|_| true);

    let Some(selector) = &request.selector else {
        let eligible: Vec<&Disk> = verdicts.iter().filter(|(_, r)| r.is_empty()).map(|(d, _)| *d).collect();
        return match eligible.as_slice() {
            [] => Err(SelectError::NoneEligible { candidates: all() }),
            [disk] => Ok(Selected {
                disk: (*disk).clone(),
                reason: format!(
                    "{} is the only disk that can be the install target{}",
                    disk.summary(),
                    others_note(disks.len())
                ),
            }),
            many => Err(SelectError::Ambiguous {
                count: many.len(),
                candidates: all(),
            }),
        };
    };

    let matching: Vec<&(&Disk, Vec<Refusal>)> = verdicts.iter().filter(|(d, _)| selector.matches(d)).collect();
    if matching.is_empty() {
        return Err(SelectError::NoMatch {
            selector: selector.clone(),
            candidates: all(),
        });
    }
    let mut eligible: Vec<&Disk> = matching.iter().filter(|(_, r)| r.is_empty()).map(|(d, _)| *d).collect();
    let matched = |d: &Disk| selector.matches(d);
    if eligible.is_empty() {
        return Err(SelectError::MatchNotEligible {
            selector: selector.clone(),
            candidates: list(&matched),
        });
    }
    match selector {
        DiskSelector::Largest => keep_extreme(&mut eligible, |a, b| a > b),
        DiskSelector::Smallest => keep_extreme(&mut eligible, |a, b| a < b),
        _ => {}
    }
    match eligible.as_slice() {
        [disk] => Ok(Selected {
            disk: (*disk).clone(),
            reason: format!("{} selected by loader.disk={selector}", disk.summary()),
        }),
        many => Err(SelectError::MatchAmbiguous {
            selector: selector.clone(),
            count: many.len(),
            candidates: list(&|d| many.iter().any(|m| m.name == d.name)),
        }),
    }
}

/// Keeps the disks of the extreme size; a tie keeps them all (ambiguous).
fn keep_extreme(disks: &mut Vec<&Disk>, better: fn(u64, u64) -> bool) {
    let Some(best) = disks
        .iter()
        .map(|d| d.size)
        .reduce(|a, b| if better(b, a) { b } else { a })
    else {
        return;
    };
    disks.retain(|d| d.size == best);
}

fn others_note(total: usize) -> String {
    match total - 1 {
        0 => String::new(),
        1 => " (the other disk is not eligible)".into(),
        n => format!(" (the other {n} disks are not eligible)"),
    }
}

#[cfg(test)]
#[path = "select_tests.rs"]
pub(crate) mod tests;
