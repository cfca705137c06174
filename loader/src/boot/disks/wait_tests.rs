use std::cell::RefCell;

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

struct ClockRef<'a>(&'a RefCell<FakeClock>);
impl Clock for ClockRef<'_> {
    fn now(&self) -> Duration {
        self.0.borrow().now()
    }
    fn sleep(&mut self, d: Duration) {
        self.0.borrow_mut().sleep(d);
    }
}

const GIB: u64 = 1 << 30;
const POLICY: WaitPolicy = WaitPolicy {
    timeout: Duration::from_secs(10),
    poll_interval: Duration::from_millis(100),
};

/// Disks that appear at given times (ms) on the fake clock, and a
/// controller that is still probing until `probing_until` ms.
struct Machine<'a> {
    disks: &'a [(&'a str, u64, u64)],
    probing_until: u64,
}

struct Run {
    result: Result<(Selected, WaitReport), WaitError>,
    elapsed: Duration,
    polls: Vec<String>,
}

fn run(machine: &Machine, selector: Option<&str>, min_size: u64) -> Run {
    let clock = RefCell::new(FakeClock(Duration::ZERO));
    let request = SelectRequest {
        selector: selector.map(|s| DiskSelector::parse(s).expect("selector")),
        min_size,
        ..Default::default()
    };
    let now_ms = || clock.borrow().0.as_millis() as u64;
    let mut polls = Vec::new();
    let result = wait_for_disk(
        &mut ClockRef(&clock),
        &POLICY,
        &request,
        || {
            Ok(machine
                .disks
                .iter()
                .filter(|(_, at, _)| now_ms() >= *at)
                .map(|(name, _, size)| disk(name, *size))
                .collect())
        },
        |_| {
            let mut state = ProbeState::default();
            if now_ms() < machine.probing_until {
                state.pending.push("nvme0: state connecting".into());
            } else {
                state.done.push("nvme0 live, 1 namespace(s)".into());
            }
            state
        },
        |note| polls.push(note.to_string()),
    );
    let elapsed = clock.borrow().0;
    Run { result, elapsed, polls }
}

#[test]
fn no_wait_when_probing_is_already_done() {
    let machine = Machine {
        disks: &[("vda", 0, 20 * GIB)],
        probing_until: 0,
    };
    let run = run(&machine, None, 0);
    let (selected, report) = run.result.expect("found");
    assert_eq!(selected.disk.name, "vda");
    assert_eq!(run.elapsed, Duration::ZERO, "no fixed quiet period");
    assert_eq!(
        report.to_string(),
        "waited 0.00 s for the kernel's storage probing (nvme0 live, 1 namespace(s)); disks seen: vda (virtio, 20.0 \
         GiB)"
    );
}

#[test]
fn a_second_controller_finishing_late_makes_the_choice_ambiguous() {
    // vda is there at once; the NVMe controller finishes its scan at 700 ms.
    let machine = Machine {
        disks: &[("vda", 0, 20 * GIB), ("nvme0n1", 700, 100 * GIB)],
        probing_until: 700,
    };
    let run = run(&machine, None, 0);
    let err = run.result.expect_err("two disks");
    assert!(
        matches!(err, WaitError::Refused(SelectError::Ambiguous { count: 2, .. })),
        "{err}"
    );
    assert_eq!(
        run.elapsed,
        Duration::from_millis(700),
        "refused as soon as probing ended"
    );
    assert_eq!(run.polls[0], "storage still probing: nvme0: state connecting");
    // `largest` among them would tie-break by size; it too waits for the scan.
    let run_largest = self::run(&machine, Some("largest"), 0);
    assert_eq!(run_largest.result.expect("largest").0.disk.name, "nvme0n1");
}

#[test]
fn a_late_disk_is_waited_for_while_its_controller_probes() {
    let machine = Machine {
        disks: &[("nvme0n1", 3000, 100 * GIB)],
        probing_until: 3000,
    };
    let run = run(&machine, None, 0);
    assert_eq!(run.result.expect("found").0.disk.name, "nvme0n1");
    assert_eq!(run.elapsed, Duration::from_secs(3));
}

#[test]
fn probing_that_never_ends_stops_the_automatic_choice() {
    let machine = Machine {
        disks: &[("vda", 0, 20 * GIB)],
        probing_until: u64::MAX,
    };
    let run = run(&machine, None, 0);
    let err = run.result.expect_err("still probing");
    assert!(matches!(err, WaitError::StillProbing { .. }), "{err}");
    assert_eq!(run.elapsed, POLICY.timeout);
    assert!(err.to_string().contains("nvme0: state connecting"), "{err}");
}

#[test]
fn a_disk_named_by_serial_or_path_is_taken_as_soon_as_it_appears() {
    let machine = Machine {
        disks: &[("vda", 0, 20 * GIB), ("vdb", 2000, 20 * GIB)],
        probing_until: u64::MAX,
    };
    let run = run(&machine, Some("vdb"), 0);
    let (selected, report) = run.result.expect("found");
    assert_eq!(selected.disk.name, "vdb");
    assert_eq!(run.elapsed, Duration::from_secs(2));
    assert!(report.probe.is_none(), "no probing wait for a named disk");
}

#[test]
fn a_named_disk_that_cannot_be_the_target_is_refused_without_waiting_out_the_deadline() {
    let machine = Machine {
        disks: &[("vda", 0, GIB)],
        probing_until: 0,
    };
    let run = run(&machine, Some("/dev/vda"), 10 * GIB);
    let err = run.result.expect_err("too small");
    assert!(
        matches!(err, WaitError::Refused(SelectError::MatchNotEligible { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("too small"), "{err}");
    assert_eq!(run.elapsed, POLICY.poll_interval, "seen unfit on two polls in a row");
}

#[test]
fn a_broad_selector_keeps_waiting_for_a_disk_that_fits() {
    let machine = Machine {
        disks: &[("vda", 0, GIB)],
        probing_until: 0,
    };
    let run = run(&machine, Some("largest"), 10 * GIB);
    assert!(matches!(run.result, Err(WaitError::TimedOut { .. })));
    assert_eq!(run.elapsed, POLICY.timeout);
}

#[test]
fn the_deadline_reports_the_last_reason() {
    let machine = Machine {
        disks: &[("vda", 0, 20 * GIB)],
        probing_until: 0,
    };
    let run = run(&machine, Some("/dev/nvme0n1"), 0);
    let msg = run.result.expect_err("never appears").to_string();
    assert_eq!(run.elapsed, POLICY.timeout);
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
        |_| ProbeState::default(),
        |_| {},
    )
    .expect_err("no sysfs");
    assert!(err.to_string().contains("/sys/block"), "{err}");
    assert_eq!(clock.0, Duration::ZERO);
}
