//! The rescue ISO (`loader iso`): booted from a CD under BIOS and from a
//! USB stick under UEFI, left attached and first in the boot order across
//! the loader's reboot. No scenario names the disk: the loader must find
//! the virtio disk the only candidate, the medium never being one.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, result_text, Scenario, FIRST_WRITE, LOADER_START, RESULT};
use qemu_tests::vm::{Medium, Vm, VmConfig};

use crate::{disk_with_v1, expect_system, DISK_MIB};

/// What the ISO's menu prints when it boots the installed system.
const MENU_BOOTS_DISK: &str = "Booting the installed system: configfile (";

/// After the install the machine came back through the medium, whose menu
/// booted the disk's own GRUB configuration: the loader ran exactly once.
fn assert_menu_booted_the_disk(vm: &Vm) {
    let lines = vm.lines();
    let starts = lines.iter().filter(|(_, l)| l.contains(LOADER_START)).count();
    assert_eq!(
        starts,
        1,
        "the loader started {starts} times (serial log: {})",
        vm.log.display()
    );
    let after_install = lines.iter().skip_while(|(_, l)| !l.contains(RESULT));
    assert!(
        after_install.clone().any(|(_, l)| l.contains(MENU_BOOTS_DISK)),
        "the medium's menu did not boot the installed disk (serial log: {})",
        vm.log.display()
    );
}

/// Copies `iso` to a 64 MiB stick image, as `dd` onto a stick leaves it.
fn write_stick(iso: &Path, stick: &Path) {
    std::fs::copy(iso, stick).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(stick).unwrap();
    file.set_len(64 << 20).unwrap();
}

/// disk:  [ blank, 256 MiB ...................................... ] /dev/vda
/// CD-ROM: rescue.iso carrying ab-v1.fw (bootindex 0, stays attached)
/// SeaBIOS → the CD's GRUB: no installed system → the loader → installs
/// (the disk found without loader.disk=) → reboot → the CD's GRUB again,
/// which now finds the disk's grub.cfg and boots it → slot a, 1.0.0 up,
/// first boot of the installed system, no second install.
#[test]
fn iso_bios_cdrom_first_install() {
    let mut s = Scenario::new("iso_bios_cdrom_first_install");
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    let bundle = s.artifacts.bundle_v1.clone();
    let iso = s.iso(
        "rescue.iso",
        &s.artifacts.initramfs.clone(),
        &["--bundle", bundle.to_str().unwrap()],
        "",
    );

    let mut vm = s.boot(VmConfig::new(&[&disk_path]).medium(Medium::Cdrom(iso)));
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 1.0.0 task=complete disk=/dev/vda"),
        "{result}"
    );
    // The bundle from the medium is an injected one: onto this blank disk,
    // one pass (nothing bootable is written before every hash verified;
    // the refusal scenarios prove that), chosen before the first write.
    let mode = vm.line("install mode: one-pass").map(|(at, _)| at);
    let first_write = vm.line(FIRST_WRITE).map(|(at, _)| at);
    assert!(
        matches!((mode, first_write), (Some(m), Some(w)) if m <= w),
        "install mode at {mode:?}, first write at {first_write:?}"
    );
    let page = expect_system(&mut vm, "a", "1.0.0");
    assert!(page.contains("\"boot_count\":1"), "page: {page}");
    assert_menu_booted_the_disk(&vm);
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::active_slot(&disk_path).as_deref(), Some("a"));
}

/// disk:  [ blank, 256 MiB ...................................... ] /dev/vda
/// stick: rescue.iso written raw to a 64 MiB USB stick (xHCI, bootindex 0),
///        with --fetch-bundle https://10.0.2.2:PORT/ab-v1.fw and the test CA
///        baked into its initramfs
/// OVMF → the stick's EFI partition (GRUB) → the loader → DHCP → streamed
/// install over HTTPS → reboot → the stick's GRUB boots the disk → slot a,
/// 1.0.0 up; the bundle only ever travelled over TLS.
#[test]
fn iso_uefi_usb_stick_https() {
    let mut s = Scenario::new("iso_uefi_usb_stick_https");
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let url = s.server.guest_https_url("ab-v1.fw");
    let iso = s.iso("rescue.iso", &s.ca_initramfs(), &["--fetch-bundle", &url], "");
    let stick = s.path("stick.img");
    write_stick(&iso, &stick);

    let config = VmConfig::new(&[&disk_path])
        .uefi(&s.path("vars.fd"))
        .medium(Medium::UsbStick(stick));
    let mut vm = s.boot(config);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 1.0.0 task=complete disk=/dev/vda"),
        "{result}"
    );
    expect_system(&mut vm, "a", "1.0.0");
    assert_menu_booted_the_disk(&vm);
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::active_slot(&disk_path).as_deref(), Some("a"));
    let fetches: Vec<_> = s.server.seen().into_iter().filter(|r| r.path == "/ab-v1.fw").collect();
    assert!(
        !fetches.is_empty() && fetches.iter().all(|r| r.tls),
        "the bundle was fetched without TLS: {fetches:?}"
    );
}

/// Writes `bytes` at byte `offset` of the disk image at `path`.
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
}

/// What a dead server's disk looks like: the MBR boot code zeroed, the
/// U-Boot environment torn (its CRC fails), the boot partition's FAT boot
/// sector zeroed (GRUB and its configuration unreadable). The partition
/// table and the data partition are intact.
fn damage_boot_records(path: &Path) {
    patch(path, 0, &[0u8; 440]);
    patch(path, 2048 * 512 + 64, b"torn");
    patch(path, disk::partition_offset(path, 1), &[0u8; 512]);
}

/// The v2 rescue ISO with the bundle on it and `args` on the kernel line.
fn v2_iso(s: &Scenario, name: &str, args: &str) -> std::path::PathBuf {
    let bundle = s.artifacts.bundle_v2.clone();
    let initramfs = s.artifacts.initramfs.clone();
    s.iso(name, &initramfs, &["--bundle", bundle.to_str().unwrap()], args)
}

/// disk:  [MBR: code zeroed | env: torn | boot: FAT zeroed | A: 1.0.0 | B | data: /marker ]
/// CD-ROM: rescue.iso with ab-v2.fw and loader.task=repair (stays attached)
/// The CD's menu finds no installed system → the loader → repair: the
/// bundle's complete task with the data partition shielded → reboot → the
/// menu boots the repaired disk → slot a, 2.0.0 up, /marker kept; the
/// loader ran once.
#[test]
fn iso_rescue_repair_keeps_data() {
    let mut s = Scenario::new("iso_rescue_repair_keeps_data");
    let disk_path = disk_with_v1(&s, "disk.img");
    damage_boot_records(&disk_path);
    let iso = v2_iso(&s, "rescue.iso", "loader.task=repair");

    let mut vm = s.boot(VmConfig::new(&[&disk_path]).medium(Medium::Cdrom(iso)));
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 2.0.0 task=complete (repair, partition 4 kept)"),
        "{result}"
    );
    let page = expect_system(&mut vm, "a", "2.0.0");
    assert!(page.contains("\"data_marker\":true"), "page: {page}");
    assert_menu_booted_the_disk(&vm);
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::fat_get(&disk_path, 4, "marker"), "kept across the reinstall\n");
}

/// disk:  [MBR: code zeroed, slot B moved | env: torn | boot: FAT zeroed | A: 1.0.0 | B | data: /marker ]
/// 1. CD-ROM: rescue-repair.iso (ab-v2.fw, loader.task=repair,
///    loader.on_error=halt) → refused: the layout is not the bundle's;
///    halted; the disk byte for byte as before.
/// 2. CD-ROM: rescue-complete.iso (ab-v2.fw, loader.task=complete), left
///    attached → installed → reboot → the menu boots the disk (an ISO that
///    wipes does not wipe twice) → slot a, 2.0.0 up, a fresh data partition.
#[test]
fn iso_rescue_layout_differs_needs_complete() {
    let mut s = Scenario::new("iso_rescue_layout_differs_needs_complete");
    let disk_path = disk_with_v1(&s, "disk.img");
    damage_boot_records(&disk_path);
    // Partition 3 (slot B) starts 1 MiB later than the bundle lays it out.
    let entry = 446 + 2 * 16;
    let start = u32::from_le_bytes(disk::read_at(&disk_path, entry + 8, 4).try_into().unwrap());
    let count = u32::from_le_bytes(disk::read_at(&disk_path, entry + 12, 4).try_into().unwrap());
    patch(&disk_path, entry + 8, &(start + 2048).to_le_bytes());
    patch(&disk_path, entry + 12, &(count - 2048).to_le_bytes());
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();

    let repair = v2_iso(&s, "rescue-repair.iso", "loader.task=repair loader.on_error=halt");
    let mut vm = s.boot(VmConfig::new(&[&disk_path]).medium(Medium::Cdrom(repair)));
    result_line(&mut vm);
    expect(&mut vm, "loader: halted");
    let refusal = result_text(&vm);
    assert!(refusal.contains("result: failed class=task"), "{refusal}");
    assert!(
        refusal.contains("loader.task=repair needs the bundle's partition layout, and partition 3"),
        "{refusal}"
    );
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(
        disk::first_difference(&before, &disk_path),
        None,
        "the refused repair changed the disk"
    );

    let complete = v2_iso(&s, "rescue-complete.iso", "loader.task=complete");
    let mut vm = s.boot(VmConfig::new(&[&disk_path]).medium(Medium::Cdrom(complete)));
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 2.0.0 task=complete disk=/dev/vda"),
        "{result}"
    );
    let page = expect_system(&mut vm, "a", "2.0.0");
    assert!(
        page.contains("\"data_marker\":false"),
        "complete wipes the data partition: {page}"
    );
    assert_menu_booted_the_disk(&vm);
    s.record_timings(&vm);
}
