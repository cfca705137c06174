//! Installs under UEFI firmware (OVMF) instead of SeaBIOS.

use std::path::Path;

use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, Scenario};
use qemu_tests::vm::VmConfig;

use crate::{disk_with_v1, expect_system, DISK_MIB};

/// Serves `bundle` wrapped in its own cpio (`loader initramfs
/// --wrap-bundle`) and, as boot.ipxe, the script `loader ipxe --bundle-cpio`
/// prints for it, with /dev/vda and `args` on the kernel line.
fn serve_wrapped(s: &Scenario, bundle: &Path, args: &str) {
    let cpio = s.path("bundle.cpio");
    let bundle = bundle.to_str().unwrap();
    s.artifacts
        .loader(&["initramfs", "--wrap-bundle", bundle, "-o", cpio.to_str().unwrap()]);
    s.server.add_file("bundle.cpio", &cpio);
    let delivery = ["--bundle-cpio".to_string(), "bundle.cpio".to_string()];
    let script = s.ipxe_script("initramfs", &delivery, &format!("loader.disk=/dev/vda {args}"));
    s.server.add_bytes("boot.ipxe", script.into_bytes());
}

/// disk: [ blank, 256 MiB ...................................... ] /dev/vda
/// OVMF → the NIC ROM's EFI iPXE → the script `loader ipxe --bundle-cpio`
/// prints (that iPXE cannot inject named files, so the bundle comes wrapped
/// in its own cpio by `loader initramfs --wrap-bundle`) → install → reset →
/// OVMF boots the disk's EFI/BOOT/BOOTX64.EFI (GRUB) → slot a, 1.0.0 up.
#[test]
fn uefi_first_install() {
    let mut s = Scenario::new("uefi_first_install");
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, DISK_MIB);
    serve_wrapped(&s, &s.artifacts.bundle_v1.clone(), "");

    let config = VmConfig::new(&[&disk_path])
        .network_boot(s.server.guest_url("boot.ipxe"))
        .uefi(&s.path("vars.fd"));
    let mut vm = s.boot(config);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 1.0.0 task=complete"),
        "{result}"
    );
    // The installed kernel, started by OVMF through GRUB's EFI image.
    expect(&mut vm, "installed-system: slot=");
    let efi_after_install = vm
        .lines()
        .iter()
        .skip_while(|(_, l)| !l.contains("loader: result:"))
        .any(|(_, l)| l.contains("efi: EFI v"));
    assert!(efi_after_install, "the installed system was not started by UEFI");
    expect_system(&mut vm, "a", "1.0.0");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::active_slot(&disk_path).as_deref(), Some("a"));
    assert!(
        disk::fat_get(&disk_path, 1, "EFI/BOOT/BOOTX64.EFI").len() > 100_000,
        "no GRUB EFI image on the boot partition"
    );
}

/// disk: [MBR+GRUB | env: a | boot (+EFI/BOOT) | A: 1.0.0 | B: empty | data: /marker ]
/// Under OVMF with the NIC first in the boot order: EFI iPXE → ab-v2.fw as
/// its own cpio, loader.task=auto, loader.on_success=poweroff → upgrade into
/// slot b, powered off; then OVMF with the disk first → slot b, 2.0.0 up,
/// /marker intact.
#[test]
fn uefi_rescue_reinstall() {
    let mut s = Scenario::new("uefi_rescue_reinstall");
    let disk_path = disk_with_v1(&s, "disk.img");
    serve_wrapped(
        &s,
        &s.artifacts.bundle_v2.clone(),
        "loader.task=auto loader.on_success=poweroff",
    );

    let vars = s.path("vars.fd");
    let mut config = VmConfig::new(&[&disk_path])
        .network_boot(s.server.guest_url("boot.ipxe"))
        .uefi(&vars);
    config.network_first = true;
    let mut vm = s.boot(config);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 2.0.0 task=upgrade"),
        "{result}"
    );
    expect(&mut vm, "reboot: Power down");
    s.record_timings(&vm);
    drop(vm);

    let mut vm = s.boot(VmConfig::new(&[&disk_path]).uefi(&vars));
    let page = expect_system(&mut vm, "b", "2.0.0");
    assert!(page.contains("\"data_marker\":true"), "page: {page}");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::fat_get(&disk_path, 4, "marker"), "kept across the reinstall\n");
}

/// disk: [ blank, 256 MiB + 3 sectors (not a multiple of 4 KiB) ] /dev/vda
/// OVMF → EFI iPXE → the GPT variant of the example (`fwup-gpt.conf`,
/// wrapped in its own cpio) → the loader writes the GPT with its backup in
/// the device's last sector, inside a 4 KiB page that ends past the device
/// → reset → OVMF boots EFI/BOOT/BOOTX64.EFI from the EFI System Partition
/// → slot a, 1.0.0 up.
#[test]
fn uefi_gpt_odd_size_disk() {
    let mut s = Scenario::new("uefi_gpt_odd_size_disk");
    let disk_path = s.path("disk.img");
    let size = (DISK_MIB << 20) + 3 * 512;
    std::fs::File::create(&disk_path).unwrap().set_len(size).unwrap();
    let (bundle, _) = s.artifacts.gpt_bundles();
    serve_wrapped(&s, &bundle, "");

    let config = VmConfig::new(&[&disk_path])
        .network_boot(s.server.guest_url("boot.ipxe"))
        .uefi(&s.path("vars.fd"));
    let mut vm = s.boot(config);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system (GPT) 1.0.0 task=complete disk=/dev/vda"),
        "{result}"
    );
    expect_system(&mut vm, "a", "1.0.0");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(std::fs::metadata(&disk_path).unwrap().len(), size);
    assert_eq!(disk::read_at(&disk_path, 512, 8), b"EFI PART", "primary GPT header");
    assert_eq!(
        disk::read_at(&disk_path, size - 512, 8),
        b"EFI PART",
        "backup GPT header in the last sector"
    );
}
