//! Has the kernel finished probing the storage it found? Read from sysfs,
//! so the disk choice waits exactly as long as a disk may still appear.
//!
//! Inside the kernel, `wait_for_device_probe()` waits for running probes
//! and the async domain; before `/init` runs, `kernel_init` already waits
//! for the async domain, which covers NVMe's controller reset and
//! namespace scan, SCSI's asynchronous host scan and libata's port probes
//! in Linux 6.1 (`async_schedule` in `nvme_probe`, `scsi_scan_host`). What
//! can still be under way when `/init` starts, and how it shows:
//!
//! | storage | probing is done when |
//! |---|---|
//! | any PCI mass-storage controller (class `0x01xxxx`) | it has a `driver` link |
//! | NVMe controller (`/sys/class/nvme/nvmeN`) | `state` is `live` and a namespace is listed |
//! | virtio block device (`/sys/bus/virtio/devices/*`, device `0x0002`) | bound and its `block/` entry exists |
//! | USB mass storage (usb-storage, uas) | its SCSI host has a target (usb-storage waits `delay_use` s before scanning) |
//! | MMC/SD host | a card is listed under it |
//!
//! A condition that may never become true (a controller the kernel has no
//! driver for, an NVMe drive without namespaces, an empty card slot, a USB
//! stick with no medium) is waited for at most [`GRACE`] after the wait
//! started (USB: `delay_use` and then [`GRACE`]), then reported as a note,
//! so a machine with such a device pays one second, not the whole
//! `loader.disk_wait`. A dead NVMe controller is a note at once.
//!
//! All paths are under a sysfs root given as a parameter (a fake tree in
//! tests).

use std::fs;
use std::path::Path;
use std::time::Duration;

/// How long a condition that may never come true is waited for.
pub const GRACE: Duration = Duration::from_secs(1);

/// What the kernel is still probing, and what was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// Still being probed: waiting for these ("nvme1: state connecting").
    pub pending: Vec<String>,
    /// Checked and done ("0000:00:04.0 (NVMe) bound to nvme").
    pub done: Vec<String>,
    /// Will not change, but worth telling ("0000:03:00.0 (RAID) has no driver:
    /// its disks cannot be seen").
    pub notes: Vec<String>,
}

impl ProbeState {
    pub fn settled(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Reads the probing state under `sys` (`/sys`); `elapsed` is the time since
/// the wait started (for [`GRACE`]).
pub fn probe_state(sys: &Path, elapsed: Duration) -> ProbeState {
    let mut state = ProbeState::default();
    let in_grace = elapsed < GRACE;
    pci_controllers(sys, in_grace, &mut state);
    nvme_controllers(sys, in_grace, &mut state);
    virtio_block(sys, in_grace, &mut state);
    usb_storage(sys, elapsed, &mut state);
    mmc_hosts(sys, in_grace, &mut state);
    state
}

/// Either still pending, or (after the grace) a note.
fn maybe(state: &mut ProbeState, in_grace: bool, pending: String, note: String) {
    if in_grace {
        state.pending.push(pending);
    } else {
        state.notes.push(note);
    }
}

fn pci_controllers(sys: &Path, in_grace: bool, state: &mut ProbeState) {
    for dir in entries(&sys.join("bus/pci/devices")) {
        let Some(class) =
            attr(&dir.join("class")).and_then(|c| u32::from_str_radix(c.trim_start_matches("0x"), 16).ok())
        else {
            continue;
        };
        if class >> 16 != 0x01 {
            continue;
        }
        let name = format!("{} ({})", file_name(&dir), storage_class(class));
        match link_name(&dir.join("driver")) {
            Some(driver) => state.done.push(format!("{name} bound to {driver}")),
            None => maybe(
                state,
                in_grace,
                format!("{name}: no driver bound yet"),
                format!("{name} has no driver: its disks cannot be seen"),
            ),
        }
    }
}

fn nvme_controllers(sys: &Path, in_grace: bool, state: &mut ProbeState) {
    for dir in entries(&sys.join("class/nvme")) {
        let name = file_name(&dir);
        let status = attr(&dir.join("state")).unwrap_or_else(|| "unknown".into());
        let namespaces = fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| is_namespace(&name, &e.file_name().to_string_lossy()))
                    .count()
            })
            .unwrap_or(0);
        match status.as_str() {
            "live" if namespaces > 0 => state.done.push(format!("{name} live, {namespaces} namespace(s)")),
            "live" => maybe(
                state,
                in_grace,
                format!("{name}: live, namespaces not listed yet"),
                format!("{name} is live but has no namespace"),
            ),
            "dead" | "deleting" | "deleting (no IO)" => state.notes.push(format!("{name} is {status}")),
            other => state.pending.push(format!("{name}: state {other}")),
        }
    }
}

/// `nvme0n1` or the multipath path `nvme0c0n1` of controller `nvme0`.
fn is_namespace(controller: &str, entry: &str) -> bool {
    entry
        .strip_prefix(controller)
        .is_some_and(|rest| rest.starts_with('n') || rest.starts_with('c'))
}

fn virtio_block(sys: &Path, in_grace: bool, state: &mut ProbeState) {
    for dir in entries(&sys.join("bus/virtio/devices")) {
        if attr(&dir.join("device")).as_deref() != Some("0x0002") {
            continue;
        }
        let name = file_name(&dir);
        let bound = link_name(&dir.join("driver")).is_some();
        let disks = entries(&dir.join("block")).len();
        if bound && disks > 0 {
            state.done.push(format!("{name} (virtio block) has its disk"));
        } else {
            maybe(
                state,
                in_grace,
                format!("{name} (virtio block): no disk yet"),
                format!("{name} (virtio block) has no disk"),
            );
        }
    }
}

fn usb_storage(sys: &Path, elapsed: Duration, state: &mut ProbeState) {
    let delay = attr(&sys.join("module/usb_storage/parameters/delay_use"))
        .and_then(|d| d.parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs);
    for driver in ["usb-storage", "uas"] {
        for intf in entries(&sys.join("bus/usb/drivers").join(driver)) {
            let name = file_name(&intf);
            let hosts: Vec<_> = entries(&intf)
                .into_iter()
                .filter(|p| file_name(p).starts_with("host"))
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let scanned = hosts
                .iter()
                .any(|h| entries(h).iter().any(|t| file_name(t).starts_with("target")));
            if scanned {
                state.done.push(format!("USB storage {name} scanned"));
            } else if elapsed < delay + GRACE {
                state.pending.push(format!("USB storage {name}: not scanned yet"));
            } else {
                state.notes.push(format!("USB storage {name} shows no disk"));
            }
        }
    }
}

fn mmc_hosts(sys: &Path, in_grace: bool, state: &mut ProbeState) {
    for dir in entries(&sys.join("class/mmc_host")) {
        let name = file_name(&dir);
        let card = entries(&dir)
            .iter()
            .any(|e| file_name(e).starts_with(&format!("{name}:")));
        if card {
            state.done.push(format!("{name} has a card"));
        } else {
            maybe(
                state,
                in_grace,
                format!("{name}: no card yet"),
                format!("{name} has no card"),
            );
        }
    }
}

fn storage_class(class: u32) -> &'static str {
    match (class >> 8) & 0xff {
        0x00 => "SCSI",
        0x01 => "IDE",
        0x04 => "RAID",
        0x06 => "SATA",
        0x07 => "SAS",
        0x08 => "NVMe",
        0x80 => "storage",
        _ => "storage controller",
    }
}

/// Entries of a directory (following symlinks), sorted; empty when missing.
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn link_name(path: &Path) -> Option<String> {
    fs::read_link(path).ok().map(|t| file_name(&t))
}

fn attr(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
