//! Reinstalls over a working system whose download goes wrong: the install
//! modes keep the old system booting when they can, and never leave a disk
//! that boots unverified bytes.

use std::time::Duration;

use qemu_tests::artifacts::{path_str, run_checked};
use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, result_text, Scenario, SYSTEM_UP};

use crate::{disk_with_v1, expect_unchanged_v1};

/// A byte late in ab-v2.fw's stream: inside the root filesystem, which is
/// followed only by three small grubenv entries and the central directory.
fn late_offset(s: &Scenario) -> u64 {
    std::fs::metadata(&s.artifacts.bundle_v2).unwrap().len() - 20_000
}

/// Serves ab-v2.fw over HTTPS (the scenario's CA baked into the
/// initramfs) and boots the loader with `loader.task=complete` onto the
/// v1 disk; returns the result line and the console text.
fn reinstall_over_https(s: &mut Scenario, disk_path: &std::path::Path, args: &str) -> (String, String) {
    s.serve_ca_initramfs();
    let args = format!(
        "loader.disk=/dev/vda loader.task=complete loader.on_error=halt {args} loader.url={}",
        s.server.guest_https_url("ab-v2.fw")
    );
    let script = s.chain("initramfs-ca", &args, &[]);
    let mut vm = s.boot_network(&[disk_path], script);
    result_line(&mut vm);
    expect(&mut vm, "loader: halted");
    s.record_timings(&vm);
    let console: Vec<String> = vm.lines().into_iter().map(|(_, l)| l).collect();
    (result_text(&vm), console.join("\n"))
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// loader.url=https://…/ab-v2.fw, loader.task=complete; the server inverts a
/// byte of the root filesystem late in the stream → the bundle fits in
/// memory: verified there before the first write → class=corrupt, halted;
/// the disk byte for byte as before, and it boots slot a, 1.0.0.
#[test]
fn refuse_late_corrupt_reinstall_in_memory() {
    let mut s = Scenario::new("refuse_late_corrupt_reinstall_in_memory");
    let disk_path = disk_with_v1(&s, "disk.img");
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();
    s.server.add_file("ab-v2.fw", &s.artifacts.bundle_v2.clone());
    s.server.corrupt_at("ab-v2.fw", late_offset(&s), None);
    let (result, console) = reinstall_over_https(&mut s, &disk_path, "");
    assert!(result.contains("result: failed class=corrupt"), "{result}");
    assert!(console.contains("install mode: memory"), "{console}");
    expect_unchanged_v1(&mut s, &before, &disk_path);
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// As above with loader.install_mode=two-pass, and the server inverts the
/// byte only in its second answer → the first download verifies, the old
/// boot records are switched off, the second download is refused
/// (class=corrupt) → nothing on the disk starts a boot (sector 0 without
/// its signature, no GPT header or environment), and booting it brings up
/// no system (never the corrupt bytes).
#[test]
fn refuse_two_pass_second_download_corrupt() {
    let mut s = Scenario::new("refuse_two_pass_second_download_corrupt");
    let disk_path = disk_with_v1(&s, "disk.img");
    s.server.add_file("ab-v2.fw", &s.artifacts.bundle_v2.clone());
    s.server.corrupt_at("ab-v2.fw", late_offset(&s), Some(2));
    let (result, console) = reinstall_over_https(&mut s, &disk_path, "loader.install_mode=two-pass");
    assert!(result.contains("result: failed class=corrupt"), "{result}");
    assert!(console.contains("install mode: two-pass"), "{console}");
    assert!(console.contains("switched off"), "{console}");
    let gets = s.server.seen().iter().filter(|r| r.path == "/ab-v2.fw").count();
    assert_eq!(gets, 2, "a verifying download and an installing one");
    let found = disk::what_boots(&disk_path);
    assert!(found.is_empty(), "the disk still selects something: {found:?}");

    let mut vm = s.boot_disk(&[&disk_path]);
    let booted = vm.wait_for(SYSTEM_UP, Duration::from_secs(90));
    assert!(booted.is_err(), "a system booted from the refused disk");
    s.record_timings(&vm);
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// loader.url=http://…/ab-v2.fw (plain HTTP) with loader.sha256= of the
/// real ab-v2.fw, loader.task=complete; the server answers with another
/// bundle whose on-init wipes the data partition and slot a → the pin is
/// compared before meta.conf is read → refused, halted, the disk byte for
/// byte as before.
#[test]
fn refuse_swapped_bundle_behind_a_pin() {
    let mut s = Scenario::new("refuse_swapped_bundle_behind_a_pin");
    let disk_path = disk_with_v1(&s, "disk.img");
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();
    let conf = s.path("evil.conf");
    std::fs::write(
        &conf,
        "meta-product = \"Loader example A/B system\"\nmeta-version = \"6.6.6\"\n\
         task complete {\n    on-init {\n        raw_memset(167936, 65536, 0xaa)\n        trim(36864, 65536)\n    }\n}\n",
    )
    .unwrap();
    let evil = s.path("evil.fw");
    s.artifacts.loader(&["pack", path_str(&conf), "-o", path_str(&evil)]);
    s.server.add_file("ab-v2.fw", &evil);
    let sums = run_checked(std::process::Command::new("sha256sum").arg(&s.artifacts.bundle_v2));
    let pin = sums.split_whitespace().next().unwrap().to_string();
    let args = format!(
        "loader.disk=/dev/vda loader.task=complete loader.on_error=halt loader.sha256={pin} loader.url={}",
        s.server.guest_url("ab-v2.fw")
    );
    let script = s.chain("initramfs", &args, &[]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    expect(&mut vm, "loader: halted");
    s.record_timings(&vm);
    assert!(
        result.contains("result: failed class=corrupt") && result.contains("SHA-256"),
        "{result}"
    );
    assert!(
        vm.line("bundle: Loader example").is_none(),
        "meta.conf was read before the pin matched"
    );
    drop(vm);
    assert_eq!(
        disk::first_difference(&before, &disk_path),
        None,
        "the swapped bundle changed the disk"
    );
}
