//! The probing signal over fake sysfs trees, alone and driving the wait.

use std::cell::RefCell;
use std::fs;
use std::time::Duration;

use super::fake_sysfs::{FakeDisk, FakeSysfs};
use super::*;

const GIB: u64 = 1 << 30;
const START: Duration = Duration::ZERO;
const LATER: Duration = Duration::from_secs(5);

/// One virtio disk, probed and bound: the QEMU machine of the tests.
fn virtio_machine() -> FakeSysfs {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::virtio("vda", 20 * GIB))
        .add_pci("0000:00:04.0", 0x018000, Some("virtio-pci"))
        .add_virtio("virtio1", "0x0002", &["vda"])
        .add_virtio("virtio2", "0x0001", &[]);
    sys
}

#[test]
fn a_probed_machine_is_settled_at_once_and_says_what_it_checked() {
    let sys = virtio_machine();
    let state = probe_state(sys.root(), START);
    assert!(state.settled(), "{state:?}");
    assert_eq!(
        state.done,
        [
            "0000:00:04.0 (storage) bound to virtio-pci",
            "virtio1 (virtio block) has its disk"
        ]
    );
}

#[test]
fn an_nvme_controller_is_pending_until_live_with_a_namespace() {
    let sys = virtio_machine();
    sys.add_pci("0000:00:05.0", 0x010802, Some("nvme"));
    sys.set_nvme("nvme0", "connecting", &[]);
    assert_eq!(probe_state(sys.root(), LATER).pending, ["nvme0: state connecting"]);
    sys.set_nvme("nvme0", "live", &[]);
    assert_eq!(
        probe_state(sys.root(), START).pending,
        ["nvme0: live, namespaces not listed yet"]
    );
    assert_eq!(
        probe_state(sys.root(), LATER).notes,
        ["nvme0 is live but has no namespace"],
        "a drive without namespaces is not waited for past the grace"
    );
    sys.set_nvme("nvme0", "live", &["nvme0n1"]);
    assert!(probe_state(sys.root(), START).settled());
    sys.set_nvme("nvme1", "dead", &[]);
    let state = probe_state(sys.root(), START);
    assert!(state.settled() && state.notes == ["nvme1 is dead"], "{state:?}");
}

#[test]
fn a_controller_without_a_driver_is_waited_for_only_during_the_grace() {
    let sys = virtio_machine();
    sys.add_pci("0000:03:00.0", 0x010400, None);
    assert_eq!(
        probe_state(sys.root(), START).pending,
        ["0000:03:00.0 (RAID): no driver bound yet"]
    );
    let later = probe_state(sys.root(), GRACE);
    assert!(later.settled());
    assert_eq!(
        later.notes,
        ["0000:03:00.0 (RAID) has no driver: its disks cannot be seen"]
    );
}

#[test]
fn usb_storage_is_pending_until_its_delayed_scan() {
    let sys = virtio_machine();
    let host = sys.root().join("bus/usb/drivers/usb-storage/1-1:1.0/host6");
    fs::create_dir_all(&host).unwrap();
    fs::create_dir_all(sys.root().join("module/usb_storage/parameters")).unwrap();
    fs::write(sys.root().join("module/usb_storage/parameters/delay_use"), "3\n").unwrap();
    assert_eq!(
        probe_state(sys.root(), Duration::from_secs(3)).pending,
        ["USB storage 1-1:1.0: not scanned yet"],
        "delay_use (3 s) plus the grace"
    );
    fs::create_dir_all(host.join("target6:0:0")).unwrap();
    assert!(probe_state(sys.root(), START).settled());
}

/// The scenario the fixed quiet period got wrong: the virtio disk is there
/// at once, the NVMe controller finishes its scan 700 ms later. The wait
/// sees the controller probing, waits for it, then refuses to guess.
#[test]
fn a_second_controller_finishing_its_scan_late_is_waited_for_then_the_choice_is_refused() {
    let sys = virtio_machine();
    sys.add_pci("0000:00:05.0", 0x010802, Some("nvme"));
    sys.set_nvme("nvme0", "connecting", &[]);

    struct ScanClock<'a> {
        now: Duration,
        sys: &'a FakeSysfs,
        finished: bool,
    }
    impl Clock for ScanClock<'_> {
        fn now(&self) -> Duration {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d;
            if self.now >= Duration::from_millis(700) && !self.finished {
                self.finished = true;
                self.sys.set_nvme("nvme0", "live", &["nvme0n1"]);
                self.sys.add(&FakeDisk::nvme("nvme0n1", 100 * GIB).dev_num("259:0"));
            }
        }
    }
    let mut clock = ScanClock {
        now: Duration::ZERO,
        sys: &sys,
        finished: false,
    };
    let notes = RefCell::new(Vec::new());
    let policy = WaitPolicy::default();
    let result = wait_for_disk(
        &mut clock,
        &policy,
        &SelectRequest::default(),
        || discover(&sys.sys_block(), &[], &DiscoverOptions::default()),
        |elapsed| probe_state(sys.root(), elapsed),
        |note| notes.borrow_mut().push(note.to_string()),
    );
    let err = result.expect_err("two disks after the scan");
    assert!(
        matches!(err, WaitError::Refused(SelectError::Ambiguous { count: 2, .. })),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("nvme0n1") && msg.contains("vda"), "{msg}");
    assert!(clock.now >= Duration::from_millis(700), "waited for the scan");
    assert_eq!(notes.borrow()[0], "storage still probing: nvme0: state connecting");
}
