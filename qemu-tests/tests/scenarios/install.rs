//! First installs onto a blank disk: the bundle injected by iPXE, streamed
//! over HTTPS, streamed through a connection that breaks twice, and with
//! the status callback watching.

use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, Scenario};
use serde_json::Value;

use crate::{expect_system, DISK_MIB};

/// The install judged from the disk: an MBR boot signature, and the U-Boot
/// environment says slot a.
fn assert_installed_slot_a(disk_path: &std::path::Path) {
    assert!(disk::has_mbr(disk_path), "no MBR boot signature on the disk");
    assert_eq!(
        disk::active_slot(disk_path).as_deref(),
        Some("a"),
        "U-Boot env: {:?}",
        disk::uboot_env(disk_path)
    );
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// iPXE: kernel + initramfs + ab-v1.fw injected at /root/install.fw, no
/// loader.disk= (the one disk is chosen once the kernel's storage probing
/// is done) → installed task=complete → reboot → slot a, 1.0.0 up, first boot.
#[test]
fn first_install_injected() {
    let mut s = Scenario::new("first_install_injected");
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let script = s.chain("initramfs", "", &["ab-v1.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 1.0.0 task=complete disk=/dev/vda"),
        "{result}"
    );
    let page = expect_system(&mut vm, "a", "1.0.0");
    assert!(page.contains("\"boot_count\":1"), "page: {page}");
    s.record_timings(&vm);
    drop(vm);
    assert_installed_slot_a(&disk_path);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// iPXE: as `first_install_https`, no loader.disk=, with `loader.log=debug`:
/// the console explains the DHCP exchange, the HTTP answer and the disks
/// considered, each inside its boot step, and the install still succeeds.
#[test]
fn loader_log_debug_explains_dhcp_http_and_disks() {
    let mut s = Scenario::new("loader_log_debug");
    s.serve_ca_initramfs();
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let args = format!("loader.log=debug loader.url={}", s.server.guest_https_url("ab-v1.fw"));
    let script = s.chain("initramfs-ca", &args, &[]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(result.contains("result: installed"), "{result}");
    let console: Vec<String> = vm.lines().into_iter().map(|(_, line)| line).collect();
    let has = |parts: &[&str]| console.iter().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(has(&["DEBUG", "dhcp{iface=", "sending", "Discover"]), "{console:#?}");
    assert!(
        has(&["INFO", "dhcp{iface=", "lease acknowledged", "address=10.0.2."]),
        "{console:#?}"
    );
    assert!(
        has(&["INFO", "stage{name=\"fetching the bundle\"}", "answer", "status=200 OK"]),
        "{console:#?}"
    );
    assert!(
        has(&["DEBUG", "stage{name=\"choosing the disk\"}", "eligible", "vda"]),
        "{console:#?}"
    );
    drop(vm);
    assert_installed_slot_a(&disk_path);
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// iPXE: kernel + initramfs with the test CA baked in; no injected bundle.
/// loader.url=https://10.0.2.2:PORT/ab-v1.fw → DHCP → streamed install
/// → reboot → slot a, 1.0.0 up.
#[test]
fn first_install_https() {
    let mut s = Scenario::new("first_install_https");
    s.serve_ca_initramfs();
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let args = format!(
        "loader.disk=/dev/vda loader.url={}",
        s.server.guest_https_url("ab-v1.fw")
    );
    let script = s.chain("initramfs-ca", &args, &[]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 1.0.0 task=complete"),
        "{result}"
    );
    expect_system(&mut vm, "a", "1.0.0");
    s.record_timings(&vm);
    drop(vm);
    assert_installed_slot_a(&disk_path);
    let fetches: Vec<_> = s.server.seen().into_iter().filter(|r| r.path == "/ab-v1.fw").collect();
    assert!(
        fetches.iter().all(|r| r.tls),
        "the bundle was fetched without TLS: {fetches:?}"
    );
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// As first_install_https, but the server cuts the bundle's transfer at a
/// third and at two thirds → two Range resumes, nothing fetched twice, and
/// (powered off right after the install) the same disk bytes as an
/// uninterrupted install from the file on the host.
#[test]
fn resume_after_two_cuts() {
    let mut s = Scenario::new("resume_after_two_cuts");
    s.serve_ca_initramfs();
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    let bundle = s.artifacts.bundle_v1.clone();
    let len = std::fs::metadata(&bundle).unwrap().len();
    s.server.add_file("ab-v1.fw", &bundle);
    s.server.cut_at("ab-v1.fw", &[len / 3, 2 * len / 3]);
    let args = format!(
        "loader.disk=/dev/vda loader.on_success=poweroff loader.url={}",
        s.server.guest_https_url("ab-v1.fw")
    );
    let script = s.chain("initramfs-ca", &args, &[]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(result.contains("result: installed"), "{result}");
    expect(&mut vm, "reboot: Power down");
    let resumes: Vec<String> = vm
        .lines()
        .into_iter()
        .filter(|(_, l)| l.contains("download: resumed at byte"))
        .map(|(_, l)| l)
        .collect();
    assert_eq!(resumes.len(), 2, "the console shows the two resumes: {resumes:?}");
    assert!(
        resumes.iter().all(|l| l.contains("(0 bytes fetched twice)")),
        "{resumes:?}"
    );
    s.record_timings(&vm);
    drop(vm);

    let fetches: Vec<_> = s.server.seen().into_iter().filter(|r| r.path == "/ab-v1.fw").collect();
    assert_eq!(fetches.len(), 3, "one request and two resumes: {fetches:?}");
    assert_eq!(
        fetches[1].range.as_deref(),
        Some(format!("bytes={}-", len / 3).as_str()),
        "{fetches:?}"
    );
    let sent: u64 = fetches.iter().map(|r| r.sent).sum();
    assert_eq!(sent, len, "bytes sent in total equal the bundle: nothing fetched twice");

    let reference = s.path("reference.img");
    disk::blank(&reference, DISK_MIB);
    let bundle = bundle.to_str().unwrap();
    s.artifacts.loader(&[
        "apply",
        bundle,
        "--device",
        reference.to_str().unwrap(),
        "--task",
        "complete",
    ]);
    let offset = disk::first_difference(&reference, &disk_path);
    assert!(
        offset.is_none(),
        "the disk differs from the file install at byte {offset:?}"
    );
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// Injected ab-v1.fw, loader.report=https://10.0.2.2:PORT/report (test CA
/// baked in) → the server receives start, stage, progress and the final
/// result with the bundle's UUID and the VM's MAC address.
#[test]
fn status_callback() {
    let mut s = Scenario::new("status_callback");
    s.serve_ca_initramfs();
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let inspect = s
        .artifacts
        .loader(&["inspect", "--json", s.artifacts.bundle_v1.to_str().unwrap()]);
    let uuid = serde_json::from_str::<Value>(&inspect).unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let args = format!(
        "loader.disk=/dev/vda loader.on_success=poweroff loader.report={}",
        s.server.guest_https_url("report")
    );
    let script = s.chain("initramfs-ca", &args, &["ab-v1.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(result.contains("result: installed"), "{result}");
    s.record_timings(&vm);
    expect(&mut vm, "reboot: Power down");
    drop(vm);

    let reports: Vec<Value> = s
        .server
        .posts("report")
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let events: Vec<&str> = reports.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"start"), "reports: {reports:?}");
    assert!(
        events.contains(&"stage") && events.contains(&"progress"),
        "reports: {events:?}"
    );
    assert_eq!(events.last(), Some(&"result"), "reports: {events:?}");
    let last = reports.last().unwrap();
    assert_eq!(last["result"], "installed", "final report: {last}");
    assert_eq!(
        last["summary"]["uuid"],
        uuid.as_str(),
        "the final report names the bundle: {last}"
    );
    let macs = last["machine"]["macs"].as_object().unwrap();
    assert!(
        macs.values().any(|m| m == "52:54:00:12:34:56"),
        "the reports identify the machine by MAC: {last}"
    );
}
