//! What the scenarios read back from a disk image: the MBR, the U-Boot
//! environment the example system keeps at block 2048, files on the FAT
//! data partition (through mtools, independent of the loader's own FAT).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use crate::artifacts::{path_str, run_checked};

/// A sparse, all-zero raw disk of `mib` MiB.
pub fn blank(path: &Path, mib: u64) {
    let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.set_len(mib << 20).expect("size the disk image");
}

pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0; len];
    file.read_exact(&mut buf).expect("read the disk image");
    buf
}

/// Whether sector 0 ends with the 0x55AA boot signature.
pub fn has_mbr(path: &Path) -> bool {
    read_at(path, 510, 2) == [0x55, 0xaa]
}

/// Byte offset of MBR partition `n` (1–4).
pub fn partition_offset(path: &Path, n: u64) -> u64 {
    let entry = read_at(path, 446 + 16 * (n - 1) + 8, 4);
    u64::from(u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]])) * 512
}

/// The `name=value` lines of the example system's U-Boot environment
/// (8 KiB at block 2048).
pub fn uboot_env(path: &Path) -> Vec<String> {
    let block = read_at(path, 2048 * 512 + 4, 8192 - 4);
    block
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The slot the U-Boot environment says is active (`nerves_fw_active`).
pub fn active_slot(path: &Path) -> Option<String> {
    uboot_env(path)
        .iter()
        .find_map(|l| l.strip_prefix("nerves_fw_active=").map(str::to_string))
}

/// What on the disk could boot or select a boot: sector 0 (boot code,
/// partition table, boot signature), a GPT header (primary or backup, for
/// 512- and 4096-byte blocks), a valid U-Boot environment at the example
/// system's block 2048. An empty list: nothing bootable on the disk.
pub fn boot_records(path: &Path) -> Vec<String> {
    let mut found = what_boots(path);
    if read_at(path, 0, 512).iter().any(|&b| b != 0) && found.first().is_none_or(|f| !f.starts_with("sector 0")) {
        found.insert(0, "sector 0 is not blank (boot code or partition table)".to_string());
    }
    found
}

/// What on the disk could still start a boot: sector 0 with a boot
/// signature (BIOSes need it) or a 0xEE partition type (UEFI firmware looks
/// for it, signed or not), a GPT header, a valid U-Boot environment at
/// block 2048. A disk switched off (as the commit and two-pass installs
/// do) keeps its boot code and partition entries, and nothing listed here.
pub fn what_boots(path: &Path) -> Vec<String> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut found = Vec::new();
    let sector0 = read_at(path, 0, 512);
    let protective = (0..4).any(|i| sector0[446 + 16 * i + 4] == 0xee);
    if sector0[510..512] == [0x55, 0xaa] || protective {
        found.push("sector 0 with a boot signature or a 0xEE partition type".to_string());
    }
    for at in [512, 4096, len.saturating_sub(512), len.saturating_sub(4096)] {
        if at >= 512 && at + 8 <= len && read_at(path, at, 8) == b"EFI PART" {
            found.push(format!("a GPT header at byte {at}"));
        }
    }
    let env = read_at(path, 2048 * 512, 8192);
    let stored = u32::from_le_bytes([env[0], env[1], env[2], env[3]]);
    if env.iter().any(|&b| b != 0) && crc32(&env[4..]) == stored {
        found.push("a U-Boot environment at block 2048".to_string());
    }
    found
}

/// CRC-32 (IEEE), as U-Boot environments carry it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & 0u32.wrapping_sub(crc & 1));
        }
    }
    !crc
}

/// Whether every byte of the image is zero.
pub fn all_zero(path: &Path) -> bool {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read the disk image");
        if n == 0 {
            return true;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return false;
        }
    }
}

/// Copies `local` to `::name` on the FAT volume of MBR partition `n`.
pub fn fat_put(disk: &Path, n: u64, local: &Path, name: &str) {
    let image = format!("{}@@{}", path_str(disk), partition_offset(disk, n));
    run_checked(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-o", "-i", &image, path_str(local)])
            .arg(format!("::{name}")),
    );
}

/// The contents of `::name` on the FAT volume of MBR partition `n`.
pub fn fat_get(disk: &Path, n: u64, name: &str) -> String {
    let image = format!("{}@@{}", path_str(disk), partition_offset(disk, n));
    run_checked(
        Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-i", &image])
            .arg(format!("::{name}")),
    )
}

/// The first byte offset where two images differ (a shorter image reads as
/// zeros past its end), or `None` when they hold the same bytes.
pub fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let open = |p: &Path| File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a), open(b));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        let n = na.max(nb);
        if n == 0 {
            return None;
        }
        ba[na..n].fill(0);
        bb[nb..n].fill(0);
        if let Some(i) = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y) {
            return Some(offset + i as u64);
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]).expect("read the disk image") {
            0 => break,
            n => done += n,
        }
    }
    done
}
