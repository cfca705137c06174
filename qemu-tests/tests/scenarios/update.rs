//! Updating a running server in place: the installed example system runs
//! its own loader (`loader apply … --device auto --task upgrade --reboot`)
//! when asked over HTTP, writing the inactive slot while it runs.

use qemu_tests::disk;
use qemu_tests::scenario::{expect, Scenario};

use crate::{disk_with_v1, expect_system, signed};

const TOKEN: &str = "update-token-for-the-test";

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker,
///        /update-token, /update.pub, /update-ca.pem ]
/// boot → slot a, 1.0.0 up → POST /update without the token: refused →
/// POST /update (Bearer token, body https://10.0.2.2:PORT/ab-v2.fw signed)
/// → the system's loader: apply --device auto --task upgrade --reboot →
/// slot b, 2.0.0 up; /marker and the boot count kept.
#[test]
fn update_in_place() {
    let mut s = Scenario::new("update_in_place");
    let disk_path = disk_with_v1(&s, "disk.img");
    let (signed, public) = signed(&s, &s.artifacts.bundle_v2.clone(), "ab-v2");
    s.server.add_file("ab-v2.fw", &signed);
    let token = s.path("update-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let ca = s.path("update-ca.pem");
    std::fs::write(&ca, s.ca.pem()).unwrap();
    disk::fat_put(&disk_path, 4, &token, "update-token");
    disk::fat_put(&disk_path, 4, &public, "update.pub");
    disk::fat_put(&disk_path, 4, &ca, "update-ca.pem");

    let mut vm = s.boot_disk(&[&disk_path]);
    let page = expect_system(&mut vm, "a", "1.0.0");
    assert!(page.contains("\"boot_count\":1"), "page: {page}");

    let url = s.server.guest_https_url("ab-v2.fw");
    let (status, body) = vm.http_post("/update", &["Authorization: Bearer wrong"], &url).unwrap();
    assert!(status.contains("401"), "{status}: {body}");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (status, body) = vm.http_post("/update", &[&auth], &url).unwrap();
    assert!(status.contains("202"), "{status}: {body}");

    let done = "installed Loader example A/B system 2.0.0 (task upgrade.b) onto auto";
    expect(&mut vm, done);
    expect(&mut vm, "installed-system: slot=b version=2.0.0 up");
    let page = vm.http_get("/").unwrap();
    assert!(
        page.contains("\"slot\":\"b\"") && page.contains("\"version\":\"2.0.0\""),
        "page: {page}"
    );
    assert!(
        page.contains("\"data_marker\":true"),
        "the data partition was kept: {page}"
    );
    assert!(page.contains("\"boot_count\":2"), "page: {page}");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::active_slot(&disk_path).as_deref(), Some("b"));
    assert_eq!(disk::fat_get(&disk_path, 4, "marker"), "kept across the reinstall\n");
}
