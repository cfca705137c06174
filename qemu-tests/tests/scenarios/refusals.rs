//! Every refusal on the real boot path: each ends with a `result: failed
//! class=…` line naming the cause, the follow-up the configuration asked for
//! (halt, or retry and then halt), and blank disks still blank, or, where
//! the bundle failed while installing in one pass, nothing bootable on them.

use std::path::PathBuf;
use std::sync::OnceLock;

use qemu_tests::artifacts::{artifacts, path_str};
use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, result_text, Scenario, RESULT, SYSTEM_UP};
use qemu_tests::vm::Vm;

use crate::{serve_corrupted, DISK_MIB};

const HALT: &str = "loader.on_error=halt";

/// Waits for the result; checks its class and message, that the loader
/// halted, and that nothing booted after it.
fn expect_refusal(s: &mut Scenario, vm: &mut Vm, class: &str, message: &str) -> String {
    result_line(vm);
    expect(vm, "loader: halted");
    let result = result_text(vm);
    let wanted = format!("result: failed class={class} ");
    assert!(result.contains(&wanted), "expected class={class}: {result}");
    assert!(result.contains(message), "expected `{message}` in: {result}");
    assert!(vm.line(SYSTEM_UP).is_none(), "something booted after the refusal");
    s.record_timings(vm);
    result
}

/// A blank disk, booted with `args` and the served `initrds`.
fn refuse_on_blank(s: &mut Scenario, initramfs: &str, args: &str, initrds: &[&str]) -> (PathBuf, Vm) {
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    let script = s.chain(initramfs, args, initrds);
    let vm = s.boot_network(&[&disk_path], script);
    (disk_path, vm)
}

fn assert_untouched(disk_path: &std::path::Path) {
    assert!(disk::all_zero(disk_path), "the refused install wrote to the disk");
}

/// A bundle that fails while it installs in one pass on a blank disk has
/// streamed bulk data by then; what matters is that nothing can boot it.
fn assert_nothing_bootable(disk_path: &std::path::Path) {
    let found = disk::boot_records(disk_path);
    assert!(found.is_empty(), "the refused install left boot records: {found:?}");
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// ab-v1.fw with one byte flipped → class=corrupt, halted, nothing bootable
/// on the disk (a blank disk is installed in one pass: the held boot
/// writes never reach it).
#[test]
fn refuse_corrupt() {
    let mut s = Scenario::new("refuse_corrupt");
    serve_corrupted(&s, &s.artifacts.bundle_v1.clone(), "corrupt.fw");
    let args = format!("loader.disk=/dev/vda {HALT}");
    let (disk_path, mut vm) = refuse_on_blank(&mut s, "initramfs", &args, &["corrupt.fw /root/install.fw"]);
    expect_refusal(&mut s, &mut vm, "corrupt", "");
    drop(vm);
    assert_nothing_bootable(&disk_path);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// ab-v1.fw cut to 60 % of its length → class=corrupt naming the
/// truncation, halted, nothing bootable on the disk.
#[test]
fn refuse_truncated() {
    let mut s = Scenario::new("refuse_truncated");
    let mut bytes = std::fs::read(&s.artifacts.bundle_v1).unwrap();
    bytes.truncate(bytes.len() * 6 / 10);
    s.server.add_bytes("truncated.fw", bytes);
    let args = format!("loader.disk=/dev/vda {HALT}");
    let (disk_path, mut vm) = refuse_on_blank(&mut s, "initramfs", &args, &["truncated.fw /root/install.fw"]);
    expect_refusal(&mut s, &mut vm, "corrupt", "truncated");
    drop(vm);
    assert_nothing_bootable(&disk_path);
}

/// An initramfs enforcing key A, and bundles signed with key B: built once.
struct Keyed {
    initramfs: PathBuf,
    signed_by_other_key: PathBuf,
}

fn keyed() -> &'static Keyed {
    static KEYED: OnceLock<Keyed> = OnceLock::new();
    KEYED.get_or_init(|| {
        let a = artifacts();
        let (_, trusted_pub) = a.keygen(&a.dir, "trusted");
        let (other_priv, _) = a.keygen(&a.dir, "other");
        let signed = a.dir.join("ab-v1-other-key.fw");
        let bundle = path_str(&a.bundle_v1);
        a.loader(&["sign", "--key", path_str(&other_priv), "-o", path_str(&signed), bundle]);
        Keyed {
            initramfs: a.initramfs_with("keyed", &["--public-key", path_str(&trusted_pub)]),
            signed_by_other_key: signed,
        }
    })
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// Initramfs enforcing key A; ab-v1.fw signed with key B → class=signature,
/// halted, disk all zeros.
#[test]
fn refuse_wrong_key() {
    let mut s = Scenario::new("refuse_wrong_key");
    let keyed = keyed();
    s.server.add_file("initramfs-keyed", &keyed.initramfs);
    s.server.add_file("other-key.fw", &keyed.signed_by_other_key);
    let args = format!("loader.disk=/dev/vda {HALT}");
    let (disk_path, mut vm) = refuse_on_blank(&mut s, "initramfs-keyed", &args, &["other-key.fw /root/install.fw"]);
    expect_refusal(&mut s, &mut vm, "signature", "");
    drop(vm);
    assert_untouched(&disk_path);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// Initramfs enforcing key A; the unsigned ab-v1.fw → class=signature,
/// halted, disk all zeros.
#[test]
fn refuse_unsigned_with_key() {
    let mut s = Scenario::new("refuse_unsigned_with_key");
    s.server.add_file("initramfs-keyed", &keyed().initramfs);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let args = format!("loader.disk=/dev/vda {HALT}");
    let (disk_path, mut vm) = refuse_on_blank(&mut s, "initramfs-keyed", &args, &["ab-v1.fw /root/install.fw"]);
    expect_refusal(&mut s, &mut vm, "signature", "unsigned");
    drop(vm);
    assert_untouched(&disk_path);
}

/// disk 1: [ blank, 256 MiB ] /dev/vda    disk 2: [ blank, 256 MiB ] /dev/vdb
/// No loader.disk= → class=disk naming both candidates, halted, both disks
/// all zeros.
#[test]
fn refuse_two_disks() {
    let mut s = Scenario::new("refuse_two_disks");
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let (first, second) = (s.path("disk1.img"), s.path("disk2.img"));
    disk::blank(&first, DISK_MIB);
    disk::blank(&second, DISK_MIB);
    let script = s.chain("initramfs", HALT, &["ab-v1.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&first, &second], script);
    let result = expect_refusal(&mut s, &mut vm, "disk", "2 disks could be the install target");
    assert!(
        result.contains("vda (virtio") && result.contains("vdb (virtio"),
        "both candidates are named: {result}"
    );
    drop(vm);
    assert_untouched(&first);
    assert_untouched(&second);
}

/// disk: [ blank, 64 MiB ] /dev/vda (the layout needs ~114 MiB)
/// → class=disk saying it is too small, at once (a present disk does not
/// grow, so the loader does not wait out loader.disk_wait), halted, disk all
/// zeros.
#[test]
fn refuse_disk_too_small() {
    let mut s = Scenario::new("refuse_disk_too_small");
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let disk_path = s.path("small.img");
    disk::blank(&disk_path, 64);
    let args = format!("loader.disk=/dev/vda {HALT}");
    let script = s.chain("initramfs", &args, &["ab-v1.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = expect_refusal(&mut s, &mut vm, "disk", "vda (virtio, 64.0 MiB): too small");
    assert!(
        !result.contains("after waiting"),
        "the loader waited for a disk that cannot grow: {result}"
    );
    drop(vm);
    assert_untouched(&disk_path);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// No injected bundle and no loader.url=, loader.on_error=retry with one
/// retry after 1 s → class=no-bundle twice, "retrying", then halted.
#[test]
fn refuse_no_bundle_retry_then_halt() {
    let mut s = Scenario::new("refuse_no_bundle_retry_then_halt");
    let args = "loader.disk=/dev/vda loader.on_error=retry loader.on_error_delay=1 loader.on_error_retries=1";
    let (disk_path, mut vm) = refuse_on_blank(&mut s, "initramfs", args, &[]);
    let result = expect_refusal(&mut s, &mut vm, "no-bundle", "no bundle at /root/install.fw");
    assert!(
        vm.line("retrying in 1 s (attempt 2 of 2)").is_some(),
        "no retry line after: {result}"
    );
    let failures = vm.lines().iter().filter(|(_, l)| l.contains(RESULT)).count();
    assert_eq!(failures, 2, "one attempt and one retry");
    drop(vm);
    assert_untouched(&disk_path);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// loader.url=https://10.0.2.2:PORT/ab-v1.fw served with a certificate from
/// a CA the initramfs does not trust → class=network naming the
/// certificate, halted, disk all zeros.
#[test]
fn refuse_untrusted_certificate() {
    let mut s = Scenario::new("refuse_untrusted_certificate");
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let args = format!(
        "loader.disk=/dev/vda {HALT} loader.url={}",
        s.server.guest_https_url("ab-v1.fw")
    );
    let (disk_path, mut vm) = refuse_on_blank(&mut s, "initramfs", &args, &[]);
    expect_refusal(&mut s, &mut vm, "network", "certificate");
    drop(vm);
    assert_untouched(&disk_path);
}
