//! Rescue reinstalls onto a disk that already runs the example system.

use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, Scenario};

use crate::{disk_with_v1, expect_system, expect_unchanged_v1, serve_corrupted};

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// iPXE + ab-v2.fw injected, loader.task=auto → upgrade into slot b →
/// reboot → slot b, 2.0.0 up; /marker on the data partition intact.
#[test]
fn rescue_reinstall() {
    let mut s = Scenario::new("rescue_reinstall");
    let disk_path = disk_with_v1(&s, "disk.img");
    s.server.add_file("ab-v2.fw", &s.artifacts.bundle_v2.clone());
    let script = s.chain(
        "initramfs",
        "loader.disk=/dev/vda loader.task=auto",
        &["ab-v2.fw /root/install.fw"],
    );
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 2.0.0 task=upgrade"),
        "{result}"
    );
    let page = expect_system(&mut vm, "b", "2.0.0");
    assert!(page.contains("\"data_marker\":true"), "page: {page}");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::active_slot(&disk_path).as_deref(), Some("b"));
    assert_eq!(disk::fat_get(&disk_path, 4, "marker"), "kept across the reinstall\n");
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// iPXE + ab-v2.fw with one byte flipped, loader.task=auto,
/// loader.on_error=halt → failed class=corrupt, halted; the disk is byte for
/// byte what it was, and booting it brings up slot a, 1.0.0.
#[test]
fn refuse_corrupt_reinstall() {
    let mut s = Scenario::new("refuse_corrupt_reinstall");
    let disk_path = disk_with_v1(&s, "disk.img");
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();
    serve_corrupted(&s, &s.artifacts.bundle_v2.clone(), "corrupt-v2.fw");
    let args = "loader.disk=/dev/vda loader.task=auto loader.on_error=halt";
    let script = s.chain("initramfs", args, &["corrupt-v2.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(result.contains("result: failed class=corrupt"), "{result}");
    expect(&mut vm, "loader: halted");
    s.record_timings(&vm);
    drop(vm);
    expect_unchanged_v1(&mut s, &before, &disk_path);
}
