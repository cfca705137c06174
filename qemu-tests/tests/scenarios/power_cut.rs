//! Power cuts (QEMU killed, no shutdown, guest caches lost) during a first
//! install and during a reinstall, then the machine boots again. A first
//! install is retried and completes; a reinstall leaves the old slot
//! booting or completes the new one. Never a disk that boots nothing.
//!
//! "Mid-write" cuts are placed exactly: the bundle streams over HTTPS and
//! the server stops sending at a random byte inside its resources (seeded,
//! printed), so the loader is stuck with part of the data written and
//! nothing committed when the plug is pulled.
//! "At commit" cuts happen when the console says the commit starts; where
//! exactly they land varies, and either outcome must hold.
//! "Commit state" scenarios boot disks in exact states a cut inside the
//! commit leaves, made on the host by the engine through the power-cut
//! matrix's recording target (`qemu_tests::cut`).

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use qemu_tests::cut::{self, Partial};
use qemu_tests::disk;
use qemu_tests::scenario::{expect, expect_before_failure, result_line, Scenario, FIRST_WRITE};
use qemu_tests::vm::Vm;

use crate::{disk_with_v1, expect_system, DISK_MIB};

const COMMIT: &str = "stage: committing boot-critical writes";

/// Serves `bundle` as `name` over HTTPS to an initramfs trusting the
/// scenario's CA; returns the chain script installing it with `args`.
fn streamed(s: &Scenario, bundle: &Path, name: &str, args: &str) -> String {
    s.serve_ca_initramfs();
    s.server.add_file(name, bundle);
    let args = format!(
        "loader.disk=/dev/vda {args} loader.url={}",
        s.server.guest_https_url(name)
    );
    s.chain("initramfs-ca", &args, &[])
}

/// Where the server stops sending: a byte between a fifth and four fifths
/// of the bundle (inside its resources), from `QEMU_TEST_SEED` or the
/// clock; printed so a failure can be replayed.
fn stall_offset(bundle: &Path) -> u64 {
    let len = std::fs::metadata(bundle).unwrap().len();
    let seed = std::env::var("QEMU_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_nanos() as u64
        });
    // One splitmix64 step spreads even neighbouring seeds.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let offset = len / 5 + z % (len * 3 / 5);
    eprintln!("qemu-tests: QEMU_TEST_SEED={seed}: the transfer stalls at byte {offset} of {len}");
    offset
}

/// Boots `script`, waits for `marker` (and `settle` more), pulls the plug.
fn cut_at(s: &mut Scenario, disk_path: &Path, script: &str, marker: &str, settle: Duration) {
    let mut vm = s.boot_network(&[disk_path], script.to_string());
    expect_before_failure(&mut vm, marker);
    sleep(settle);
    vm.power_cut();
    assert!(
        vm.line("loader: result:").is_none() || marker == COMMIT,
        "the install finished before the cut"
    );
    s.record_timings(&vm);
}

/// Boots `script` again (the retry an operator or the provider's boot
/// order makes) and expects the install to complete and boot. A commit that
/// landed whole before the cut leaves the very bundle active: the retry then
/// writes nothing (`result: unchanged`).
fn retry_completes(s: &mut Scenario, disk_path: &Path, script: &str, slot: &str, version: &str) {
    let mut vm = s.boot_network(&[disk_path], script.to_string());
    let result = result_line(&mut vm);
    assert!(
        result.contains(&format!("result: installed Loader example A/B system {version}"))
            || result.contains(&format!("result: unchanged Loader example A/B system {version}")),
        "{result}"
    );
    expect_system(&mut vm, slot, version);
    s.record_timings(&vm);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// Streamed ab-v1.fw stalls at a random byte, plug pulled → no MBR on the disk
/// (nothing bootable was written); boot again → installed, slot a up.
#[test]
fn power_cut_first_install_mid_write() {
    let mut s = Scenario::new("power_cut_first_install_mid_write");
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    let bundle = s.artifacts.bundle_v1.clone();
    let script = streamed(&s, &bundle, "ab-v1.fw", "");
    s.server.stall_at("ab-v1.fw", stall_offset(&bundle));
    cut_at(&mut s, &disk_path, &script, FIRST_WRITE, Duration::from_secs(3));
    assert!(
        !disk::has_mbr(&disk_path),
        "a boot record was written before the install completed"
    );
    retry_completes(&mut s, &disk_path, &script, "a", "1.0.0");
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// Injected ab-v1.fw, plug pulled when the commit starts; boot again →
/// installed (whatever the cut left), slot a up.
#[test]
fn power_cut_first_install_at_commit() {
    let mut s = Scenario::new("power_cut_first_install_at_commit");
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let script = s.chain("initramfs", "loader.disk=/dev/vda", &["ab-v1.fw /root/install.fw"]);
    cut_at(&mut s, &disk_path, &script, COMMIT, Duration::ZERO);
    retry_completes(&mut s, &disk_path, &script, "a", "1.0.0");
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// Streamed ab-v2.fw (loader.task=auto → upgrade into b) stalls at a random byte,
/// plug pulled → the disk boots slot a, 1.0.0; the loader again → slot b,
/// 2.0.0, /marker intact.
#[test]
fn power_cut_reinstall_mid_write() {
    let mut s = Scenario::new("power_cut_reinstall_mid_write");
    let disk_path = disk_with_v1(&s, "disk.img");
    let bundle = s.artifacts.bundle_v2.clone();
    let script = streamed(&s, &bundle, "ab-v2.fw", "loader.task=auto");
    s.server.stall_at("ab-v2.fw", stall_offset(&bundle));
    cut_at(&mut s, &disk_path, &script, FIRST_WRITE, Duration::from_secs(3));
    assert_eq!(
        disk::active_slot(&disk_path).as_deref(),
        Some("a"),
        "the cut install switched slots"
    );
    let mut vm = s.boot_disk(&[&disk_path]);
    expect_system(&mut vm, "a", "1.0.0");
    s.record_timings(&vm);
    drop(vm);
    retry_completes(&mut s, &disk_path, &script, "b", "2.0.0");
    assert_eq!(disk::fat_get(&disk_path, 4, "marker"), "kept across the reinstall\n");
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// Injected ab-v2.fw, loader.task=auto, plug pulled when the commit starts
/// → the disk boots either slot a 1.0.0 (commit lost) or slot b 2.0.0
/// (commit made): never nothing.
#[test]
fn power_cut_reinstall_at_commit() {
    let mut s = Scenario::new("power_cut_reinstall_at_commit");
    let disk_path = disk_with_v1(&s, "disk.img");
    s.server.add_file("ab-v2.fw", &s.artifacts.bundle_v2.clone());
    let script = s.chain(
        "initramfs",
        "loader.disk=/dev/vda loader.task=auto",
        &["ab-v2.fw /root/install.fw"],
    );
    cut_at(&mut s, &disk_path, &script, COMMIT, Duration::ZERO);
    let mut vm = s.boot_disk(&[&disk_path]);
    expect(&mut vm, "installed-system: slot=");
    let line = vm.line("installed-system: slot=").unwrap().1;
    let (slot, version) = if line.contains("slot=b") {
        ("b", "2.0.0")
    } else {
        ("a", "1.0.0")
    };
    expect_system(&mut vm, slot, version);
    s.record_timings(&vm);
}

/// Sectors of the example's boot FAT (p1), where grubenv lives.
const BOOT_FAT: std::ops::Range<u64> = 4096..36864;

/// No GRUB rescue prompt, no GRUB error on the console.
fn assert_no_rescue(vm: &Vm) {
    let bad: Vec<String> = vm
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.contains("rescue") || l.contains("error: "))
        .collect();
    assert!(bad.is_empty(), "GRUB stopped: {bad:?}");
}

/// disk: [MBR+GRUB | env: a | boot: grubenv boot=0 | A: 1.0.0 | B: 2.0.0 | data ]
/// The upgrade to 2.0.0, made on the host, cut inside its commit: after
/// the sync that locked the environment (phase 1), with the grubenv switch
/// torn after its `boot=` byte, and after the switch with the environment
/// still locked → each disk boots slot a 1.0.0 or slot b 2.0.0 as its
/// grubenv says, never a rescue prompt.
#[test]
fn power_cut_upgrade_commit_states() {
    let mut s = Scenario::new("power_cut_upgrade_commit_states");
    let v1 = disk_with_v1(&s, "v1.img");
    let commit = cut::record(&s.artifacts.bundle_v2.clone(), &v1, &s.path("v2.img"), "upgrade");
    let switch = commit.interval_touching(BOOT_FAT);
    assert!(switch >= 1, "the switch comes after a sync of its own");
    let boot_byte = commit.changed_bytes(switch)[0];
    for (name, landed, partial, slot, version) in [
        ("locked.img", switch, Partial::Nothing, "a", "1.0.0"),
        (
            "torn.img",
            switch,
            Partial::Torn { prefix: boot_byte + 1 },
            "b",
            "2.0.0",
        ),
        ("switched.img", switch + 1, Partial::Nothing, "b", "2.0.0"),
    ] {
        let disk_path = s.path(name);
        commit.state(&disk_path, landed, partial);
        let mut vm = s.boot_disk(&[&disk_path]);
        expect_system(&mut vm, slot, version);
        assert_no_rescue(&vm);
        s.record_timings(&vm);
    }
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// The first install of 1.0.0, made on the host, cut inside its commit:
/// after everything but sector 0 landed (the environment included: a first
/// install writes it with the rest, sector 0 alone after a sync), and with
/// the final sector 0 torn before its boot signature → both disks boot nothing
/// (the BIOS finds no bootable disk; no GRUB, no rescue prompt); the loader
/// then installs onto the first → slot a.
#[test]
fn power_cut_first_install_commit_states() {
    let mut s = Scenario::new("power_cut_first_install_commit_states");
    let blank = s.path("blank.img");
    disk::blank(&blank, DISK_MIB);
    let commit = cut::record(&s.artifacts.bundle_v1.clone(), &blank, &s.path("v1.img"), "complete");
    let arm = commit.interval_touching(0..1);
    assert_eq!(arm + 1, commit.intervals.intervals.len(), "sector 0 is written last");
    let env = commit.interval_touching(2048..2064);
    assert!(env < arm, "the environment lands before sector 0 is armed");
    for (name, landed, partial) in [
        ("unswitched.img", arm, Partial::Nothing),
        ("torn.img", arm, Partial::Torn { prefix: 510 }),
    ] {
        let disk_path = s.path(name);
        commit.state(&disk_path, landed, partial);
        assert!(
            !disk::has_mbr(&disk_path),
            "{name}: a boot signature before the end of the commit"
        );
        let mut vm = s.boot_disk(&[&disk_path]);
        expect(&mut vm, "Boot failed: not a bootable disk");
        assert_no_rescue(&vm);
        s.record_timings(&vm);
    }
    let disk_path = s.path("unswitched.img");
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    // The same bundle again, task auto: its environment is on the disk, so
    // "already active" would reboot into nothing forever; the loader must
    // see the missing table and finish the install.
    let script = s.chain("initramfs", "loader.disk=/dev/vda", &["ab-v1.fw /root/install.fw"]);
    retry_completes(&mut s, &disk_path, &script, "a", "1.0.0");
}
