//! Selection over fake `/sys/block` trees: every rule and every refusal.

use super::*;
use crate::boot::disks::fake_sysfs::{FakeDisk, FakeSysfs};
use crate::boot::disks::{discover, parse_mountinfo, DiscoverOptions, Transport};

const GIB: u64 = 1 << 30;

/// A plain eligible disk, for tests that do not need sysfs.
pub(crate) fn disk(name: &str, size: u64) -> Disk {
    Disk {
        name: name.into(),
        dev: None,
        size,
        logical_sector_size: 512,
        removable: false,
        read_only: false,
        rotational: None,
        model: None,
        serial: None,
        wwn: None,
        transport: Transport::Virtio,
        partitions: Vec::new(),
        mount_points: Vec::new(),
        holders: Vec::new(),
        boot: false,
        iso9660: false,
    }
}

/// Discovers the fake tree with a mount table and the loader at `exe`.
fn disks_of(sys: &FakeSysfs, mountinfo: &str, exe: Option<&str>) -> Vec<Disk> {
    let mounts = parse_mountinfo(mountinfo).expect("mountinfo");
    let options = DiscoverOptions {
        include_virtual: false,
        loader_exe: exe.map(Into::into),
        dev_dir: None,
    };
    discover(&sys.sys_block(), &mounts, &options).expect("discover")
}

fn select(disks: &[Disk], selector: Option<&str>, min_size: u64, force: Force) -> Result<Selected, SelectError> {
    let selector = selector.map(|s| DiskSelector::parse(s).expect("selector"));
    select_disk(
        disks,
        &SelectRequest {
            selector,
            min_size,
            force,
        },
    )
}

fn chosen(result: Result<Selected, SelectError>) -> String {
    match result {
        Ok(s) => s.disk.name,
        Err(e) => panic!("expected a disk, got: {e}"),
    }
}

fn refused(result: Result<Selected, SelectError>) -> String {
    match result {
        Ok(s) => panic!("expected a refusal, got {}", s.disk.name),
        Err(e) => e.to_string(),
    }
}

/// vda: the real target; sdb: a USB stick; vdc: mounted; sda: the loader's disk.
fn mixed_machine() -> (FakeSysfs, &'static str) {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::virtio("vda", 20 * GIB).dev_num("254:0").file("serial", "ABC"))
        .add(&FakeDisk::usb("sdb", 16 * GIB).file("device/model", "Cruzer Blade"))
        .add(
            &FakeDisk::virtio("vdc", 50 * GIB)
                .dev_num("254:32")
                .partition("vdc1", "254:33"),
        )
        .add(&FakeDisk::sata("sda", 100 * GIB).dev_num("8:0").partition("sda2", "8:2"));
    (
        sys,
        "1 0 8:2 / / rw - ext4 /dev/root rw\n2 1 254:33 / /data rw - ext4 /dev/vdc1 rw\n",
    )
}

#[test]
fn the_single_eligible_disk_is_chosen_and_the_reason_says_why() {
    let (sys, mounts) = mixed_machine();
    let disks = disks_of(&sys, mounts, Some("/usr/bin/loader"));
    let selected = select(&disks, None, GIB, Force::default()).expect("one eligible disk");
    assert_eq!(selected.disk.name, "vda");
    assert_eq!(
        selected.reason,
        "vda (virtio, 20.0 GiB, serial ABC) is the only disk that can be the install target \
         (the other 3 disks are not eligible)"
    );
}

#[test]
fn each_refusal_is_listed_with_its_override() {
    let (sys, mounts) = mixed_machine();
    let disks = disks_of(&sys, mounts, Some("/usr/bin/loader"));
    let msg = refused(select(&disks, None, 30 * GIB, Force::default()));
    assert!(msg.starts_with("no disk can be the install target:"), "{msg}");
    assert!(
        msg.contains("vda (virtio, 20.0 GiB, serial ABC): too small (the bundle needs 30.0 GiB)"),
        "{msg}"
    );
    assert!(
        msg.contains("sdb (usb, 16.0 GiB, model Cruzer Blade): too small"),
        "{msg}"
    );
    assert!(
        msg.contains("removable or USB media (loader.force=removable to allow)"),
        "{msg}"
    );
    assert!(msg.contains("vdc (virtio, 50.0 GiB): mounted: vdc1 on /data"), "{msg}");
    assert!(
        msg.contains(
            "sda (ata, 100.0 GiB): mounted: sda2 on / (loader.force=mounted to allow); \
             the loader was started from it (loader.force=boot-disk to allow)"
        ),
        "{msg}"
    );
}

#[test]
fn two_eligible_disks_are_never_guessed_between() {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::virtio("vda", 20 * GIB).file("serial", "ABC"))
        .add(&FakeDisk::virtio("vdb", 8 * GIB));
    let disks = disks_of(&sys, "", None);
    let msg = refused(select(&disks, None, GIB, Force::default()));
    assert_eq!(
        msg,
        "2 disks could be the install target; set loader.disk= to one of them:\n  \
         vda (virtio, 20.0 GiB, serial ABC): eligible\n  vdb (virtio, 8.0 GiB): eligible"
    );
    assert_eq!(
        chosen(select(&disks, None, 10 * GIB, Force::default())),
        "vda",
        "size rules vdb out"
    );
}

#[test]
fn no_disks_at_all_points_at_the_driver() {
    let sys = FakeSysfs::new();
    let msg = refused(select(&disks_of(&sys, "", None), None, 0, Force::default()));
    assert!(msg.contains("storage driver"), "{msg}");
}

#[test]
fn read_only_and_empty_disks_are_refused_even_with_force() {
    let sys = FakeSysfs::new();
    let mut ro = FakeDisk::virtio("vda", 20 * GIB);
    ro.read_only = true;
    sys.add(&ro).add(&FakeDisk::usb("sdb", 0));
    let disks = disks_of(&sys, "", None);
    let all = Force::parse("all").expect("force");
    let msg = refused(select(&disks, None, 0, all));
    assert!(msg.contains("vda (virtio, 20.0 GiB): read-only"), "{msg}");
    assert!(msg.contains("sdb (usb, 0 bytes): no medium"), "{msg}");
}

#[test]
fn force_lifts_exactly_the_named_rule() {
    let (sys, mounts) = mixed_machine();
    let disks = disks_of(&sys, mounts, Some("/usr/bin/loader"));
    let force = |t: &str| Force::parse(t).expect("force");
    assert_eq!(chosen(select(&disks, Some("/dev/sdb"), 0, force("removable"))), "sdb");
    assert_eq!(chosen(select(&disks, Some("vdc"), 0, force("mounted"))), "vdc");
    let msg = refused(select(&disks, Some("sda"), 0, force("mounted")));
    assert!(
        msg.contains("the loader was started from it") && !msg.contains("mounted:"),
        "{msg}"
    );
    assert_eq!(
        chosen(select(&disks, Some("sda"), 0, force("mounted,boot-disk"))),
        "sda"
    );
    assert!(Force::parse("everything").is_err());
}

#[test]
fn held_partitions_count_as_in_use() {
    let sys = FakeSysfs::new();
    sys.add(
        &FakeDisk::virtio("vda", 20 * GIB)
            .partition("vda2", "254:2")
            .holder("vda2", "dm-0"),
    );
    let disks = disks_of(&sys, "", None);
    let msg = refused(select(&disks, None, 0, Force::default()));
    assert!(msg.contains("in use: vda2 used by dm-0"), "{msg}");
}

#[test]
fn a_path_selector_picks_that_disk_and_refuses_an_ineligible_one() {
    let (sys, mounts) = mixed_machine();
    let disks = disks_of(&sys, mounts, Some("/usr/bin/loader"));
    let s = select(&disks, Some("/dev/vda"), 0, Force::default()).expect("vda");
    assert_eq!(
        s.reason,
        "vda (virtio, 20.0 GiB, serial ABC) selected by loader.disk=/dev/vda"
    );
    let msg = refused(select(&disks, Some("/dev/sdb"), 0, Force::default()));
    assert!(
        msg.starts_with("loader.disk=/dev/sdb matches only disks that cannot be the target:"),
        "{msg}"
    );
    assert!(
        msg.contains("removable or USB media") && !msg.contains("vda"),
        "only the match is listed: {msg}"
    );
    let msg = refused(select(&disks, Some("/dev/nvme0n1"), 0, Force::default()));
    assert!(
        msg.starts_with("no disk matches loader.disk=/dev/nvme0n1; disks:"),
        "{msg}"
    );
    assert!(
        msg.contains("vda (virtio") && msg.contains("sdb (usb"),
        "lists every disk: {msg}"
    );
}

fn fleet_server() -> Vec<Disk> {
    let sys = FakeSysfs::new();
    sys.add(
        &FakeDisk::nvme("nvme0n1", 960 * GIB)
            .dev_num("259:0")
            .file("device/model", "SAMSUNG MZQL2960HCJR")
            .file("device/serial", "S64FNE0R100001")
            .file("wwid", "eui.36344630528000010025384500000001"),
    )
    .add(
        &FakeDisk::sata("sda", 4000 * GIB)
            .dev_num("8:0")
            .file("device/model", "ST4000NM000A")
            .file("device/wwid", "naa.5000c500a1b2c3d4"),
    )
    .add(
        &FakeDisk::sata("sdb", 4000 * GIB)
            .dev_num("8:16")
            .file("device/model", "ST4000NM000A"),
    );
    disks_of(&sys, "", None)
}

#[test]
fn serial_wwn_model_and_size_selectors() {
    let disks = fleet_server();
    let pick = |s: &str| chosen(select(&disks, Some(s), 0, Force::default()));
    assert_eq!(pick("serial:S64FNE0R100001"), "nvme0n1");
    assert_eq!(pick("serial:s64fne0r100001"), "nvme0n1");
    assert_eq!(pick("wwn:0x5000c500a1b2c3d4"), "sda");
    assert_eq!(pick("model:samsung"), "nvme0n1");
    assert_eq!(pick("size:<=1T"), "nvme0n1");
    assert_eq!(pick("smallest"), "nvme0n1");
    let msg = refused(select(&disks, Some("serial:NOPE"), 0, Force::default()));
    assert!(msg.contains("no disk matches loader.disk=serial:NOPE"), "{msg}");
}

#[test]
fn a_selector_matching_several_eligible_disks_is_refused() {
    let disks = fleet_server();
    let msg = refused(select(&disks, Some("model:ST4000"), 0, Force::default()));
    assert!(
        msg.starts_with("loader.disk=model:ST4000 matches 2 eligible disks"),
        "{msg}"
    );
    assert!(
        msg.contains("sda (ata") && msg.contains("sdb (ata") && !msg.contains("nvme0n1"),
        "{msg}"
    );
    let msg = refused(select(&disks, Some("largest"), 0, Force::default()));
    assert!(msg.contains("matches 2 eligible disks"), "a tie is ambiguous: {msg}");
    let msg = refused(select(&disks, Some("size:>=1T"), 0, Force::default()));
    assert!(msg.contains("matches 2 eligible disks"), "{msg}");
}

#[test]
fn a_selector_skips_matching_disks_that_are_not_eligible() {
    let sys = FakeSysfs::new();
    sys.add(
        &FakeDisk::virtio("vda", 20 * GIB)
            .dev_num("254:0")
            .partition("vda1", "254:1"),
    )
    .add(&FakeDisk::virtio("vdb", 40 * GIB).dev_num("254:16"))
    .add(&FakeDisk::usb("sdc", 64 * GIB));
    let disks = disks_of(&sys, "1 0 254:1 / / rw - ext4 /dev/vda1 rw\n", None);
    assert_eq!(
        chosen(select(&disks, Some("largest"), 0, Force::default())),
        "vdb",
        "sdc is removable"
    );
    assert_eq!(
        chosen(select(&disks, Some("smallest"), 0, Force::default())),
        "vdb",
        "vda is mounted"
    );
}

#[test]
fn a_usb_disk_claiming_to_be_fixed_is_still_refused() {
    let sys = FakeSysfs::new();
    let mut stick = FakeDisk::usb("sda", 64 * GIB);
    stick.removable = false;
    sys.add(&stick).add(&FakeDisk::nvme("nvme0n1", 512 * GIB));
    let disks = disks_of(&sys, "", None);
    assert_eq!(chosen(select(&disks, None, 0, Force::default())), "nvme0n1");
    let msg = refused(select(&disks, Some("sda"), 0, Force::default()));
    assert!(msg.contains("sda (usb, 64.0 GiB): removable or USB media"), "{msg}");
}

#[test]
fn loader_log_debug_names_each_disk_skipped_and_why() {
    use crate::diag::{capture, LogLevel};
    let mut stick = disk("sda", 8 * GIB);
    stick.read_only = true;
    let disks = [stick, disk("vda", 16 * GIB)];
    let (console, _) = capture(LogLevel::Debug, || {
        assert_eq!(chosen(select(&disks, None, GIB, Force::default())), "vda");
    });
    let lines: Vec<&str> = console.lines().collect();
    assert_eq!(lines.len(), 2, "{console}");
    assert!(
        lines[0].contains("skipped") && lines[0].contains("sda") && lines[0].contains("reasons=\"read-only\""),
        "{console}"
    );
    assert!(lines[1].contains("eligible") && lines[1].contains("vda"), "{console}");
    let (quiet, _) = capture(LogLevel::Info, || {
        let _ = select(&disks, None, GIB, Force::default());
    });
    assert_eq!(quiet, "", "per-disk verdicts are debug records");
}
