//! Waiting for disks that appear late.
//!
//! NVMe and USB disks are probed asynchronously and can show up seconds
//! after `/init` starts. The wait polls discovery until selection succeeds
//! or a deadline passes. When the choice depends on which disks exist
//! (no selector, `largest`, `size:`, `model:`), it is only accepted once the
//! disk list has stayed the same for the settle time, so a second disk
//! still being probed is not missed; a selector naming one disk (path,
//! serial, WWN) is accepted as soon as that disk appears.

use std::time::{Duration, Instant};

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
    /// How long the disk list must stay unchanged before a choice that
    /// depends on it is accepted.
    pub settle: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            settle: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("after waiting {:.1} s for disks: {last}", waited.as_secs_f64())]
    TimedOut { waited: Duration, last: SelectError },
    /// The disk list settled and the choice is ambiguous, or the disk
    /// named cannot be the target: more waiting cannot help.
    #[error(transparent)]
    Refused(SelectError),
}

/// Polls `discover` until `request` selects a disk (see the module doc).
/// `on_poll` sees every unsuccessful attempt, for "waiting for disks…"
/// messages.
pub fn wait_for_disk(
    clock: &mut dyn Clock,
    policy: &WaitPolicy,
    request: &SelectRequest,
    mut discover: impl FnMut() -> Result<Vec<Disk>, DiscoverError>,
    mut on_poll: impl FnMut(&SelectError),
) -> Result<Selected, WaitError> {
    let start = clock.now();
    let needs_settle = request.selector.as_ref().is_none_or(|s| !s.identifies_one());
    let mut unchanged_since: Option<(Vec<(String, u64)>, Duration)> = None;
    loop {
        let disks = discover()?;
        let now = clock.now();
        let fingerprint: Vec<(String, u64)> = disks.iter().map(|d| (d.name.clone(), d.size)).collect();
        let since = match unchanged_since.take() {
            Some((previous, since)) if previous == fingerprint => since,
            _ => now,
        };
        unchanged_since = Some((fingerprint, since));
        let stable = now.saturating_sub(since) >= policy.settle;
        let settled = !needs_settle || stable;
        let elapsed = now.saturating_sub(start);
        let timed_out = elapsed >= policy.timeout;

        match select_disk(&disks, request) {
            Ok(selected) if settled || timed_out => return Ok(selected),
            Ok(_) => {}
            Err(e) if timed_out => {
                return Err(WaitError::TimedOut {
                    waited: elapsed,
                    last: e,
                })
            }
            Err(e) if settled && is_ambiguity(&e) => return Err(WaitError::Refused(e)),
            Err(e) if stable && is_named_and_unfit(&e, request) => return Err(WaitError::Refused(e)),
            Err(e) => on_poll(&e),
        }
        clock.sleep(policy.poll_interval.min(policy.timeout - elapsed));
    }
}

/// The one disk `loader.disk=` names is there but cannot be the target
/// (too small, mounted, the loader's own medium). Once the disk list has
/// been stable for the settle time, waiting longer cannot change that.
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
mod tests {
    use super::*;
    use crate::boot::disks::select::tests::disk;
    use crate::boot::disks::DiskSelector;

    /// A clock that advances only when slept on.
    struct FakeClock(Duration);
    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            self.0
        }
        fn sleep(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    const GIB: u64 = 1 << 30;
    const POLICY: WaitPolicy = WaitPolicy {
        timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(500),
        settle: Duration::from_secs(1),
    };

    /// Disks that appear at given times on the fake clock.
    fn appearing(schedule: &[(&str, u64, u64)], clock: &FakeClock) -> Vec<Disk> {
        schedule
            .iter()
            .filter(|(_, at_ms, _)| clock.0 >= Duration::from_millis(*at_ms))
            .map(|(name, _, size)| disk(name, *size))
            .collect()
    }

    fn run(schedule: &[(&str, u64, u64)], selector: Option<&str>) -> (Result<Selected, WaitError>, Duration, usize) {
        let clock = std::cell::RefCell::new(FakeClock(Duration::ZERO));
        let request = SelectRequest {
            selector: selector.map(|s| DiskSelector::parse(s).expect("selector")),
            ..Default::default()
        };
        let mut polls = 0;
        let mut sleeper = ClockRef(&clock);
        let result = wait_for_disk(
            &mut sleeper,
            &POLICY,
            &request,
            || Ok(appearing(schedule, &clock.borrow())),
            |_| polls += 1,
        );
        let elapsed = clock.borrow().0;
        (result, elapsed, polls)
    }

    struct ClockRef<'a>(&'a std::cell::RefCell<FakeClock>);
    impl Clock for ClockRef<'_> {
        fn now(&self) -> Duration {
            self.0.borrow().now()
        }
        fn sleep(&mut self, d: Duration) {
            self.0.borrow_mut().sleep(d);
        }
    }

    fn run_too_small(selector: &str) -> (Result<Selected, WaitError>, Duration) {
        let clock = std::cell::RefCell::new(FakeClock(Duration::ZERO));
        let request = SelectRequest {
            selector: Some(DiskSelector::parse(selector).expect("selector")),
            min_size: 10 * GIB,
            ..Default::default()
        };
        let mut sleeper = ClockRef(&clock);
        let result = wait_for_disk(&mut sleeper, &POLICY, &request, || Ok(vec![disk("vda", GIB)]), |_| {});
        let elapsed = clock.borrow().0;
        (result, elapsed)
    }

    #[test]
    fn a_named_disk_that_cannot_be_the_target_is_refused_once_the_list_is_stable() {
        let (result, elapsed) = run_too_small("/dev/vda");
        let err = result.expect_err("too small");
        assert!(
            matches!(err, WaitError::Refused(SelectError::MatchNotEligible { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("too small"), "{err}");
        assert_eq!(
            elapsed, POLICY.settle,
            "refused after the settle time, not the 10 s deadline"
        );
    }

    #[test]
    fn a_broad_selector_keeps_waiting_for_a_disk_that_fits() {
        let (result, elapsed) = run_too_small("largest");
        let err = result.expect_err("too small");
        assert!(matches!(err, WaitError::TimedOut { .. }), "{err}");
        assert_eq!(elapsed, POLICY.timeout);
    }

    #[test]
    fn a_late_disk_is_waited_for() {
        let (result, elapsed, polls) = run(&[("nvme0n1", 3000, 100 * GIB)], None);
        assert_eq!(result.expect("found").disk.name, "nvme0n1");
        assert_eq!(elapsed, Duration::from_secs(4), "appeared at 3 s, settled 1 s later");
        assert_eq!(polls, 6, "6 failed polls before the disk appeared");
    }

    #[test]
    fn a_second_late_disk_makes_the_automatic_choice_ambiguous() {
        let (result, _, _) = run(&[("vda", 0, 20 * GIB), ("nvme0n1", 700, 100 * GIB)], None);
        let err = result.expect_err("two disks");
        assert!(
            matches!(err, WaitError::Refused(SelectError::Ambiguous { count: 2, .. })),
            "{err}"
        );
    }

    #[test]
    fn a_disk_named_by_serial_is_taken_as_soon_as_it_appears() {
        let schedule = [("vda", 0, 20 * GIB), ("vdb", 2000, 20 * GIB)];
        let (result, elapsed, _) = run(&schedule, Some("vdb"));
        assert_eq!(result.expect("found").disk.name, "vdb");
        assert_eq!(elapsed, Duration::from_secs(2));
    }

    #[test]
    fn the_deadline_reports_the_last_reason() {
        let (result, elapsed, _) = run(&[("vda", 0, 20 * GIB)], Some("/dev/nvme0n1"));
        let err = result.expect_err("never appears");
        assert_eq!(elapsed, POLICY.timeout);
        let msg = err.to_string();
        assert!(
            msg.starts_with("after waiting 10.0 s for disks: no disk matches loader.disk=/dev/nvme0n1"),
            "{msg}"
        );
    }

    #[test]
    fn discovery_failure_ends_the_wait_at_once() {
        let mut clock = FakeClock(Duration::ZERO);
        let err = wait_for_disk(
            &mut clock,
            &POLICY,
            &SelectRequest::default(),
            || {
                Err(DiscoverError {
                    path: "/sys/block".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                })
            },
            |_| {},
        )
        .expect_err("no sysfs");
        assert!(err.to_string().contains("/sys/block"), "{err}");
        assert_eq!(clock.0, Duration::ZERO);
    }
}
