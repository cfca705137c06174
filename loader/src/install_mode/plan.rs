//! Choosing the mode once the target and the task are known (the rules
//! are in the module docs of `install_mode`), and saying why.

use super::bootable::{boot_records, describe};
use super::footprint::streams_safely;
use super::look::{Look, Settings, State};
use super::{Mode, ModeRequest};
use crate::apply::{select, ApplyError, Event, Reporter};
use crate::target::Target;

/// The mode of an install, why, and the task it runs (resolved by its
/// guards on the disk as it is now, so every pass runs the same task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub reason: String,
    pub task: String,
}

/// Chooses the mode for installing `look`'s bundle with the task
/// `task_prefix` onto `target`, and reports it. Reads the disk, writes
/// nothing.
pub fn plan(
    look: &Look,
    target: &mut dyn Target,
    task_prefix: &str,
    allow_unsafe: bool,
    settings: &Settings,
    reporter: &mut dyn Reporter,
) -> Result<Plan, ApplyError> {
    let manifest = look.manifest();
    let task = select::choose_task(manifest, task_prefix, target, allow_unsafe)?;
    let size = target.size();
    let records = boot_records(target, size, manifest).map_err(|source| ApplyError::Target {
        target: target.describe(),
        source,
    })?;
    let (mode, reason) = if records.is_empty() {
        match settings.request {
            ModeRequest::Auto => (
                Mode::OnePass,
                "the disk holds nothing bootable (no partition table, boot code or environment): \
                 the held boot writes keep a failed install from booting"
                    .to_string(),
            ),
            _ => forced(look, settings)?,
        }
    } else {
        let holds = format!("the disk holds {}", describe(&records));
        match settings.request {
            ModeRequest::Auto => {
                let one_pass = || streams_safely(manifest, task, target, size);
                choose(look, settings, &holds, one_pass)?
            }
            _ => forced(look, settings)?,
        }
    };
    reporter.event(&Event::InstallMode {
        mode: mode.to_string(),
        reason: reason.clone(),
        budget: settings.budget.bytes,
        available: settings.budget.available,
    });
    Ok(Plan {
        mode,
        reason,
        task: task.name.clone(),
    })
}

/// The automatic choice over a disk that holds something bootable.
fn choose(
    look: &Look,
    settings: &Settings,
    holds: &str,
    one_pass: impl FnOnce() -> Result<String, String>,
) -> Result<(Mode, String), ApplyError> {
    if look.in_memory(settings.origin) {
        return Ok((
            Mode::Memory,
            format!("{holds}; the bundle is in memory: every resource is verified before the first write"),
        ));
    }
    let mut why_not = String::new();
    if !settings.origin.local {
        match one_pass() {
            Ok(why) => return Ok((Mode::OnePass, format!("{holds}; {why}"))),
            Err(why) => why_not = format!(" ({why})"),
        }
    }
    if matches!(look.state, State::Proven { .. }) {
        return Ok((
            Mode::TwoPass,
            format!("{holds}{why_not}; the first download proved the bundle, the second installs it"),
        ));
    }
    let fits = match look.length {
        Some(length) => settings.budget.fits(length),
        // A stream of unknown length is tried in memory only when it
        // cannot be read twice; the copy stops at the budget.
        None => !settings.origin.rereadable,
    };
    if fits {
        return Ok((
            Mode::Memory,
            format!("{holds}{why_not}; the bundle fits the memory budget: verified whole before the first write"),
        ));
    }
    if settings.origin.rereadable {
        return Ok((
            Mode::TwoPass,
            format!(
                "{holds}{why_not}; the bundle does not fit the memory budget: a first pass verifies it, \
                 then the old boot records are switched off before a second pass writes"
            ),
        ));
    }
    Err(ApplyError::InstallMode(format!(
        "{holds}{why_not}, and the bundle can neither be held in memory (budget {}) nor read twice: \
         save it to a file, or install onto a disk that holds nothing bootable",
        settings.budget
    )))
}

/// `loader.install_mode=memory|two-pass`.
fn forced(look: &Look, settings: &Settings) -> Result<(Mode, String), ApplyError> {
    match (settings.request, &look.state) {
        (ModeRequest::TwoPass, State::Held { .. }) | (ModeRequest::Memory, State::Proven { .. }) => Err(
            ApplyError::InstallMode("internal: the first look does not match the forced install mode".into()),
        ),
        (ModeRequest::TwoPass, _) if !settings.origin.rereadable => Err(ApplyError::InstallMode(
            "loader.install_mode=two-pass: the bundle cannot be read twice (standard input)".into(),
        )),
        (ModeRequest::TwoPass, _) => Ok((Mode::TwoPass, "forced by loader.install_mode=two-pass".into())),
        _ => {
            let over = look.length.filter(|&l| !settings.budget.fits(l));
            let note = match over {
                Some(_) => " (above the memory budget)",
                None => "",
            };
            Ok((Mode::Memory, format!("forced by loader.install_mode=memory{note}")))
        }
    }
}
