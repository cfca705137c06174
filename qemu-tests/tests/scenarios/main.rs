//! QEMU end-to-end scenarios: the loader booted the way a server boots it,
//! judged from the serial console and the disk. Every test is one scenario
//! and draws its VM's disks in its doc comment. Two run at a time by default
//! (one TCG VM per core).
//!
//!   cargo test -p qemu-tests --test scenarios                   # all
//!   cargo test -p qemu-tests --test scenarios -- first_install  # by name
//!
//! Environment: QEMU_TEST_TIMEOUT (seconds per console marker, default 240),
//! KEEP=1 (keep target/qemu-tests/NAME after a pass; it is always kept after
//! a failure, and its path printed).
#![allow(clippy::unwrap_used)]

mod disk_rules;
mod install;
mod iso;
mod power_cut;
mod refusals;
mod reinstall;
mod takeover;
mod uefi;
mod update;

use std::path::Path;

use qemu_tests::disk;
use qemu_tests::scenario::{expect, Scenario, SYSTEM_UP};
use qemu_tests::vm::Vm;

/// The example disk's size: comfortably above its 140 MiB layout.
pub const DISK_MIB: u64 = 256;

/// Waits for the installed system's line and checks slot and version there
/// and on its web page.
pub fn expect_system(vm: &mut Vm, slot: &str, version: &str) -> String {
    let marker = format!("installed-system: slot={slot} version={version} up");
    expect(vm, SYSTEM_UP);
    let line = vm.line(SYSTEM_UP).unwrap().1;
    assert!(line.contains(&marker), "expected `{marker}`, the console says `{line}`");
    let page = vm.http_get("/").unwrap();
    assert!(page.contains(&format!("\"slot\":\"{slot}\"")), "page: {page}");
    assert!(page.contains(&format!("\"version\":\"{version}\"")), "page: {page}");
    page
}

/// A disk holding version 1.0.0 (installed from the host, as a previous
/// loader run would have left it) with `/marker` on its data partition.
pub fn disk_with_v1(s: &Scenario, name: &str) -> std::path::PathBuf {
    let path = s.path(name);
    disk::blank(&path, DISK_MIB);
    let bundle = s.artifacts.bundle_v1.to_str().unwrap();
    s.artifacts.loader(&[
        "apply",
        bundle,
        "--device",
        path.to_str().unwrap(),
        "--task",
        "complete",
        "--progress",
        "json",
    ]);
    let marker = s.path("marker");
    std::fs::write(&marker, "kept across the reinstall\n").unwrap();
    disk::fat_put(&path, 4, &marker, "marker");
    path
}

/// `src` with the byte in its middle inverted, served as `name`.
pub fn serve_corrupted(s: &Scenario, src: &Path, name: &str) {
    let mut bytes = std::fs::read(src).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    s.server.add_bytes(name, bytes);
}

/// `bundle` signed with a fresh key pair named `name`, both in the
/// scenario's directory: (the signed bundle `NAME.fw`, the public key).
pub fn signed(s: &Scenario, bundle: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (private, public) = s.artifacts.keygen(&s.dir, name);
    let signed = s.path(&format!("{name}.fw"));
    let path = |p: &Path| p.to_str().unwrap().to_string();
    s.artifacts
        .loader(&["sign", "--key", &path(&private), "-o", &path(&signed), &path(bundle)]);
    (signed, public)
}
