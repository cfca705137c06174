//! Waiting for disks that appear late.
//!
//! When the choice depends on which disks exist (no selector, `largest`,
//! `smallest`, `size:`, `model:`), it is only made once the kernel has
//! finished probing the storage it found ([`super::probe`]): a second
//! controller still scanning is waited for, so its disk is never missed,
//! and a machine whose probing is done when `/init` starts does not wait
//! at all. A selector naming one disk (path, serial, WWN) needs no such
//! wait: it is taken as soon as that disk appears. Everything is bounded
//! by `loader.disk_wait=`; probing that has not finished by then stops the
//! automatic choice instead of guessing.

use std::time::{Duration, Instant};

use super::probe::ProbeState;
use super::{select_disk, DiscoverError, Disk, SelectError, SelectRequest, Selected};

/// Time and sleeping, injectable so tests run without waiting.
pub trait Clock {
    /// Monotonic time since a fixed origin.
    fn now(&self) -> Duration;
    fn sleep(&mut self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock { origin: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Give up after this long (`loader.disk_wait=`).
    pub timeout: Duration,
    pub poll_interval: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// What the wait waited for and saw, for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitReport {
    pub waited: Duration,
    /// `None` when the selector names one disk (no probing wait).
    pub probe: Option<ProbeState>,
    /// Every disk seen at the end, as [`Disk::summary`] prints it.
    pub disks: Vec<String>,
}

impl std::fmt::Display for WaitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.probe {
            None => write!(f, "loader.disk= names one disk: no wait for storage probing")?,
            Some(probe) => {
                write!(
                    f,
                    "waited {:.2} s for the kernel's storage probing ({})",
                    self.waited.as_secs_f64(),
                    if probe.done.is_empty() {
                        "no storage controller found".to_string()
                    } else {
                        probe.done.join(", ")
                    }
                )?;
                if !probe.notes.is_empty() {
                    write!(f, "; note: {}", probe.notes.join(", "))?;
                }
            }
        }
        write!(
            f,
            "; disks seen: {}",
            if self.disks.is_empty() {
                "none".into()
            } else {
                self.disks.join(", ")
            }
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("after waiting {:.1} s for disks: {last}{}", waited.as_secs_f64(), pending_note(pending))]
    TimedOut {
        waited: Duration,
        last: SelectError,
        pending: Vec<String>,
    },
    /// Probing never finished: a disk may still appear, so no automatic choice.
    #[error(
        "after waiting {:.1} s the kernel is still probing storage ({}): a disk may still appear, so none is \
         chosen automatically; set loader.disk= to name one, or a longer loader.disk_wait=",
        waited.as_secs_f64(),
        pending.join(", ")
    )]
    StillProbing { waited: Duration, pending: Vec<String> },
    /// The disk list settled and the choice is ambiguous, or the disk
    /// named cannot be the target: more waiting cannot help.
    #[error(transparent)]
    Refused(SelectError),
}

fn pending_note(pending: &[String]) -> String {
    if pending.is_empty() {
        String::new()
    } else {
        format!(" (still probing: {})", pending.join(", "))
    }
}

/// Polls `discover` (and `probe`, given the time waited so far) until
/// `request` selects a disk (see the module doc). `on_poll` sees why each
/// unsuccessful poll did not choose, for "waiting for…" messages.
pub fn wait_for_disk(
    clock: &mut dyn Clock,
    policy: &WaitPolicy,
    request: &SelectRequest,
    mut discover: impl FnMut() -> Result<Vec<Disk>, DiscoverError>,
    mut probe: impl FnMut(Duration) -> ProbeState,
    mut on_poll: impl FnMut(&str),
) -> Result<(Selected, WaitReport), WaitError> {
    let start = clock.now();
    let needs_probe = request.selector.as_ref().is_none_or(|s| !s.identifies_one());
    let mut unfit_polls = 0;
    loop {
        let disks = discover()?;
        let elapsed = clock.now().saturating_sub(start);
        let state = if needs_probe {
            probe(elapsed)
        } else {
            ProbeState::default()
        };
        let settled = state.settled();
        let timed_out = elapsed >= policy.timeout;
        let report = |state: ProbeState| WaitReport {
            waited: elapsed,
            probe: needs_probe.then_some(state),
            disks: disks.iter().map(Disk::summary).collect(),
        };
        match select_disk(&disks, request) {
            Ok(selected) if settled => return Ok((selected, report(state))),
            Ok(_) if timed_out => {
                return Err(WaitError::StillProbing {
                    waited: elapsed,
                    pending: state.pending,
                })
            }
            Ok(_) => on_poll(&format!("storage still probing: {}", state.pending.join(", "))),
            Err(e) if timed_out => {
                return Err(WaitError::TimedOut {
                    waited: elapsed,
                    last: e,
                    pending: state.pending,
                })
            }
            Err(e) if settled && is_ambiguity(&e) => return Err(WaitError::Refused(e)),
            // Seen unfit twice in a row: not a disk caught mid-probe.
            Err(e) if is_named_and_unfit(&e, request) && unfit_polls >= 1 => return Err(WaitError::Refused(e)),
            Err(e) => {
                if is_named_and_unfit(&e, request) {
                    unfit_polls += 1;
                }
                on_poll(&format!("{e}{}", pending_note(&state.pending)));
            }
        }
        clock.sleep(policy.poll_interval.min(policy.timeout - elapsed));
    }
}

/// The one disk `loader.disk=` names is there but cannot be the target
/// (too small, mounted, the loader's own medium): waiting cannot change that.
fn is_named_and_unfit(error: &SelectError, request: &SelectRequest) -> bool {
    let names_one = request.selector.as_ref().is_some_and(|s| s.identifies_one());
    names_one && matches!(error, SelectError::MatchNotEligible { .. })
}

fn is_ambiguity(error: &SelectError) -> bool {
    matches!(
        error,
        SelectError::Ambiguous { .. } | SelectError::MatchAmbiguous { .. }
    )
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
