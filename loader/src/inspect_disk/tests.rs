//! Hand-made images: each signature where its format puts it. Installed
//! systems from the fwup corpus are read in `tests/inspect_disk.rs`.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};

const MIB: usize = 1 << 20;

/// An MBR partition entry in slot `slot`.
fn mbr_entry(disk: &mut [u8], slot: usize, kind: u8, first: u32, count: u32) {
    let at = 446 + 16 * slot;
    disk[at + 4] = kind;
    disk[at + 8..at + 12].copy_from_slice(&first.to_le_bytes());
    disk[at + 12..at + 16].copy_from_slice(&count.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
}

/// An ext4 superblock (extents on) labelled `label` at byte `at`.
fn ext4(disk: &mut [u8], at: usize, label: &str) {
    let sb = at + 1024;
    disk[sb + 56..sb + 58].copy_from_slice(&0xef53u16.to_le_bytes());
    disk[sb + 0x5c..sb + 0x60].copy_from_slice(&0x4u32.to_le_bytes());
    disk[sb + 0x60..sb + 0x64].copy_from_slice(&0x2c2u32.to_le_bytes());
    disk[sb + 0x78..sb + 0x78 + label.len()].copy_from_slice(label.as_bytes());
}

fn env_spec() -> UbootEnvSpec {
    UbootEnvSpec {
        name: "uboot-env".into(),
        block_offset: 2048,
        block_count: 16,
        redundant_block_offset: None,
    }
}

fn write_env(disk: &mut Vec<u8>, vars: &[(&str, &str)]) {
    let env: UbootEnv = vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    uboot_env::write(disk, &env_spec(), &env).unwrap();
}

#[test]
fn a_disk_of_zeros_is_blank() {
    let mut disk = vec![0u8; 4 * MIB];
    let found = inspect(&mut disk, Some(4 * MIB as u64), None).unwrap();
    assert!(found.is_blank());
    assert_eq!(found.summary(), "blank (no partition table, no filesystem signature)");
}

#[test]
fn stray_bytes_without_a_signature_are_still_blank() {
    // What a first install cut before its commit leaves: bulk data, no table.
    let mut disk = vec![0u8; 4 * MIB];
    disk[2 * MIB..2 * MIB + 4096].fill(0x5a);
    assert!(inspect(&mut disk, Some(4 * MIB as u64), None).unwrap().is_blank());
}

#[test]
fn ext4_on_the_whole_disk_is_named_with_its_label() {
    let mut disk = vec![0u8; 4 * MIB];
    ext4(&mut disk, 0, "rootfs");
    let found = inspect(&mut disk, Some(4 * MIB as u64), None).unwrap();
    assert!(!found.is_blank());
    assert_eq!(found.whole_disk.as_ref().unwrap().kind, FsKind::Ext4);
    assert_eq!(found.summary(), "ext4 \"rootfs\" on the whole disk");
}

#[test]
fn an_mbr_lists_partitions_with_their_filesystems() {
    let mut disk = vec![0u8; 8 * MIB];
    mbr_entry(&mut disk, 0, 0x83, 2048, 4096);
    mbr_entry(&mut disk, 1, 0x82, 6144, 4096);
    ext4(&mut disk, 2048 * 512, "root");
    disk[6144 * 512 + 4086..6144 * 512 + 4096].copy_from_slice(b"SWAPSPACE2");
    let found = inspect(&mut disk, Some(8 * MIB as u64), None).unwrap();
    assert_eq!(found.table, TableKind::Mbr);
    assert_eq!(
        found.summary(),
        "MBR with 2 partition(s): 1: Linux (0x83), 2.0 MiB at block 2048, ext4 \"root\"; \
         2: Linux swap (0x82), 2.0 MiB at block 6144, Linux swap"
    );
}

#[test]
fn each_volume_format_is_recognised_by_its_magic() {
    type Maker = Box<dyn Fn(&mut [u8])>;
    let cases: Vec<(FsKind, Maker)> = vec![
        (FsKind::Xfs, Box::new(|b| b[0..4].copy_from_slice(b"XFSB"))),
        (FsKind::Squashfs, Box::new(|b| b[0..4].copy_from_slice(b"hsqs"))),
        (
            FsKind::Btrfs,
            Box::new(|b| b[0x10040..0x10048].copy_from_slice(b"_BHRfS_M")),
        ),
        (
            FsKind::Luks2,
            Box::new(|b| {
                b[0..6].copy_from_slice(b"LUKS\xba\xbe");
                b[7] = 2;
            }),
        ),
        (
            FsKind::LvmPv,
            Box::new(|b| {
                b[512..520].copy_from_slice(b"LABELONE");
                b[536..544].copy_from_slice(b"LVM2 001");
            }),
        ),
        (FsKind::Ntfs, Box::new(|b| b[3..11].copy_from_slice(b"NTFS    "))),
        (
            FsKind::LinuxRaid,
            Box::new(|b| b[4096..4100].copy_from_slice(&0xa92b_4efcu32.to_le_bytes())),
        ),
        (
            FsKind::Zfs,
            Box::new(|b| b[128 * 1024..128 * 1024 + 8].copy_from_slice(&0x00ba_b10cu64.to_le_bytes())),
        ),
        (
            FsKind::Iso9660,
            Box::new(|b| b[0x8001..0x8006].copy_from_slice(b"CD001")),
        ),
    ];
    for (kind, make) in cases {
        let mut head = vec![0u8; signatures::PROBE_WINDOW];
        make(&mut head);
        assert_eq!(identify_head(&head).map(|s| s.kind), Some(kind), "{kind}");
    }
}

#[test]
fn a_fat_volume_is_told_from_an_mbr_by_its_parameter_block() {
    let mut disk = vec![0u8; 64 * MIB];
    crate::formats::fat::mkfs(&mut disk, 0, (64 * MIB / 512) as u64).unwrap();
    let found = inspect(&mut disk, Some(64 * MIB as u64), None).unwrap();
    assert_eq!(found.table, TableKind::None, "a FAT boot sector is not a table");
    assert!(matches!(
        found.whole_disk.map(|s| s.kind),
        Some(FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32)
    ));
}

#[test]
fn an_environment_names_the_install_and_its_bundle_uuid() {
    let mut disk = vec![0u8; 4 * MIB];
    write_env(
        &mut disk,
        &[
            ("nerves_fw_active", "b"),
            ("b.nerves_fw_product", "Widget"),
            ("b.nerves_fw_version", "2.1.0"),
            ("b.nerves_fw_platform", "x86_64"),
            ("b.nerves_fw_uuid", "0a1b2c3d-0000-0000-0000-000000000000"),
        ],
    );
    let found = inspect(&mut disk, Some(4 * MIB as u64), None).unwrap();
    let install = found.install.clone().unwrap();
    assert_eq!(install.slot, "b");
    assert_eq!(install.uuid.as_deref(), Some("0a1b2c3d-0000-0000-0000-000000000000"));
    assert!(!found.is_blank(), "an environment alone is not blank");
    assert_eq!(
        found.summary(),
        "no partition table; install: slot b of 'Widget' 2.1.0 for x86_64"
    );
}

#[test]
fn a_damaged_environment_is_told_from_an_absent_one() {
    let mut disk = vec![0u8; 4 * MIB];
    write_env(&mut disk, &[("nerves_fw_active", "a")]);
    disk[2048 * 512 + 100] ^= 0xff;
    assert!(
        inspect(&mut disk, Some(4 * MIB as u64), None).unwrap().is_blank(),
        "without a table, bytes where an environment would be are stray data (an aborted first install)"
    );
    mbr_entry(&mut disk, 0, 0x83, 4096, 2048);
    let found = inspect(&mut disk, Some(4 * MIB as u64), None).unwrap();
    assert!(
        matches!(found.env, EnvState::Damaged { block: 2048, .. }),
        "{:?}",
        found.env
    );
    assert!(found.install.is_none());
    assert!(
        found
            .summary()
            .ends_with("; an unreadable U-Boot environment at block 2048"),
        "{}",
        found.summary()
    );

    let mut ones = vec![0u8; 4 * MIB];
    ones[2048 * 512..2064 * 512].fill(0xff);
    assert_eq!(read_env(&mut ones, &env_spec()).unwrap(), EnvState::Absent);
}

#[test]
fn a_protective_mbr_over_a_damaged_gpt_is_reported_as_damaged() {
    let mut disk = vec![0u8; 4 * MIB];
    mbr_entry(&mut disk, 0, 0xee, 1, (4 * MIB / 512 - 1) as u32);
    disk[512..520].copy_from_slice(b"EFI PART");
    let found = inspect(&mut disk, Some(4 * MIB as u64), None).unwrap();
    assert!(matches!(found.table, TableKind::Damaged(_)), "{:?}", found.table);
    assert!(!found.is_blank());
}

/// Counts the reads of the disk that lie within its head.
struct CountingDisk {
    disk: Vec<u8>,
    head_reads: usize,
    fail_head: bool,
}

impl Medium for CountingDisk {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if offset + buf.len() as u64 <= PROBE_WINDOW as u64 {
            self.head_reads += 1;
            if self.fail_head {
                return Err(std::io::Error::other("bad sector"));
            }
        }
        self.disk.read_at(offset, buf)
    }
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> std::io::Result<()> {
        unreachable!("inspection never writes")
    }
}

/// The table and the whole-disk signatures are read from one read of the
/// disk's head (each read of a disk is a round trip to the device), and
/// find what reads in pieces found; a head that cannot be read fails the
/// inspection with the device's error.
#[test]
fn the_head_of_the_disk_is_read_once() {
    let mut disk = vec![0u8; 4 * MIB];
    ext4(&mut disk, 0, "whole");
    let expected = inspect(&mut disk.clone(), Some(4 * MIB as u64), None).unwrap();
    let mut counting = CountingDisk {
        disk,
        head_reads: 0,
        fail_head: false,
    };
    let found = inspect(&mut counting, Some(4 * MIB as u64), None).unwrap();
    assert_eq!(found, expected);
    assert!(found.summary().contains("whole"), "{}", found.summary());
    assert_eq!(counting.head_reads, 1);

    counting.fail_head = true;
    let err = inspect(&mut counting, Some(4 * MIB as u64), None).unwrap_err();
    assert_eq!(err.to_string(), "bad sector");
}
