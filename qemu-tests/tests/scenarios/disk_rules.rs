//! What the loader does with a disk that already holds something: refuses a
//! foreign disk, repairs a damaged install keeping its data, plans without
//! writing, and leaves the very bundle it would install alone.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use qemu_tests::disk;
use qemu_tests::scenario::{expect, result_line, Scenario};

use crate::{disk_with_v1, expect_system, DISK_MIB};

/// CRC-32 (IEEE), as GPT uses it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Another OS's disk: a GPT (protective MBR, primary and backup headers)
/// with one "Linux filesystem" partition from block 2048 holding an ext4
/// filesystem labelled `root`.
fn foreign_gpt_ext4(path: &Path) {
    disk::blank(path, DISK_MIB);
    let blocks = DISK_MIB << 11;
    let (first, last): (u64, u64) = (2048, 2048 + (64 << 11) - 1);
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "root", "-E", &format!("offset={}", first * 512)])
        .arg(path)
        .arg("64M")
        .status()
        .expect("mkfs.ext4 (e2fsprogs, scripts/setup installs it)");
    assert!(status.success(), "mkfs.ext4 failed");

    let mut entries = vec![0u8; 128 * 128];
    // 0fc63daf-8483-4772-8e79-3d69d8477de4 in GPT byte order.
    entries[..16].copy_from_slice(&[
        0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
    ]);
    entries[16..32].copy_from_slice(&[0x42; 16]);
    entries[32..40].copy_from_slice(&first.to_le_bytes());
    entries[40..48].copy_from_slice(&last.to_le_bytes());
    for (i, unit) in "root".encode_utf16().enumerate() {
        entries[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    let header = |current: u64, backup: u64, array: u64| {
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(blocks - 34).to_le_bytes());
        h[56..72].copy_from_slice(&[0x24; 16]);
        h[72..80].copy_from_slice(&array.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&crc32(&entries).to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    let mut mbr = vec![0u8; 512];
    mbr[446 + 4] = 0xee;
    mbr[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&u32::try_from(blocks - 1).unwrap().to_le_bytes());
    mbr[510..].copy_from_slice(&[0x55, 0xaa]);

    let mut file = OpenOptions::new().write(true).open(path).unwrap();
    let mut put = |block: u64, bytes: &[u8]| {
        file.seek(SeekFrom::Start(block * 512)).unwrap();
        file.write_all(bytes).unwrap();
    };
    put(0, &mbr);
    put(1, &header(1, blocks - 1, 2));
    put(2, &entries);
    put(blocks - 33, &entries);
    put(blocks - 1, &header(blocks - 1, 1, blocks - 33));
}

/// disk: [GPT | p1 "root": ext4 "root", 64 MiB | free ............ ] /dev/vda
/// iPXE + ab-v1.fw injected, loader.task=auto, no loader.disk (one disk) →
/// failed class=task naming the GPT, the ext4 partition and
/// loader.task=complete; halted; the disk byte for byte as before.
#[test]
fn refuse_foreign_disk() {
    let mut s = Scenario::new("refuse_foreign_disk");
    let disk_path = s.path("disk.img");
    foreign_gpt_ext4(&disk_path);
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let script = s.chain(
        "initramfs",
        "loader.task=auto loader.on_error=halt",
        &["ab-v1.fw /root/install.fw"],
    );
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(result.contains("result: failed class=task"), "{result}");
    for named in [
        "GPT with 1 partition(s): 1: Linux filesystem, 64.0 MiB at block 2048 \"root\", ext4 \"root\"",
        "set loader.task=complete to wipe the disk and install",
    ] {
        assert!(result.contains(named), "the refusal names {named:?}: {result}");
    }
    expect(&mut vm, "loader: halted");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(
        disk::first_difference(&before, &disk_path),
        None,
        "the refused disk changed"
    );
}

/// disk: [MBR+GRUB | env: torn | boot | A: 1.0.0 | B: empty | data: /marker ]
/// iPXE + ab-v2.fw injected, loader.task=repair → complete with the data
/// partition kept → reboot → slot a, 2.0.0 up, /marker still there.
#[test]
fn repair_damaged_env() {
    let mut s = Scenario::new("repair_damaged_env");
    let disk_path = disk_with_v1(&s, "disk.img");
    // A torn environment: the CRC no longer matches.
    let mut file = OpenOptions::new().write(true).open(&disk_path).unwrap();
    file.seek(SeekFrom::Start(2048 * 512 + 64)).unwrap();
    file.write_all(b"torn").unwrap();
    drop(file);
    s.server.add_file("ab-v2.fw", &s.artifacts.bundle_v2.clone());
    let script = s.chain("initramfs", "loader.task=repair", &["ab-v2.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 2.0.0 task=complete (repair, partition 4 kept)"),
        "{result}"
    );
    let page = expect_system(&mut vm, "a", "2.0.0");
    assert!(page.contains("\"data_marker\":true"), "page: {page}");
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(disk::fat_get(&disk_path, 4, "marker"), "kept across the reinstall\n");
}

/// disk: [MBR+GRUB | env: a | boot | A: 1.0.0 | B: empty | data: /marker ]
/// iPXE + ab-v2.fw injected, loader.dry_run=1 → the plan (upgrade.b, each
/// write with its bytes) and "dry run … nothing written"; the disk byte for
/// byte as before.
#[test]
fn dry_run_writes_nothing() {
    let mut s = Scenario::new("dry_run_writes_nothing");
    let disk_path = disk_with_v1(&s, "disk.img");
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();
    s.server.add_file("ab-v2.fw", &s.artifacts.bundle_v2.clone());
    let script = s.chain("initramfs", "loader.dry_run=1", &["ab-v2.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: dry run Loader example A/B system 2.0.0 task=upgrade"),
        "{result}"
    );
    expect(&mut vm, "dry run finished: nothing was written");
    for line in [
        "loader: plan: task upgrade.b onto /dev/vda",
        "loader: plan: on-resource rootfs.img: raw_write(102400) → bytes 52428800..",
    ] {
        assert!(vm.line(line).is_some(), "the console shows {line:?}");
    }
    s.record_timings(&vm);
    drop(vm);
    assert_eq!(
        disk::first_difference(&before, &disk_path),
        None,
        "the dry run changed the disk"
    );
}

/// disk: [MBR+GRUB | env: a, UUID of ab-v1.fw | boot | A: 1.0.0 | … ]
/// iPXE + ab-v1.fw again (an ISO or PXE left first in the boot order) →
/// "result: unchanged … nothing written" → reboot → slot a, 1.0.0 up;
/// everything before the data partition byte for byte as before.
#[test]
fn same_bundle_already_active() {
    let mut s = Scenario::new("same_bundle_already_active");
    let disk_path = disk_with_v1(&s, "disk.img");
    let before = s.path("before.img");
    std::fs::copy(&disk_path, &before).unwrap();
    s.server.add_file("ab-v1.fw", &s.artifacts.bundle_v1.clone());
    let script = s.chain("initramfs", "", &["ab-v1.fw /root/install.fw"]);
    let mut vm = s.boot_network(&[&disk_path], script);
    let result = result_line(&mut vm);
    assert!(
        result.contains("result: unchanged Loader example A/B system 1.0.0") && result.contains("nothing written"),
        "{result}"
    );
    expect_system(&mut vm, "a", "1.0.0");
    s.record_timings(&vm);
    drop(vm);
    // The installed system counts its boots on the data partition.
    let data = disk::partition_offset(&disk_path, 4);
    let first = disk::first_difference(&before, &disk_path);
    assert!(
        first.is_none_or(|at| at >= data),
        "the loader wrote at byte {first:?}, before the data partition at {data}"
    );
}
