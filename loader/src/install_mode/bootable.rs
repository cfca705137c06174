//! Does a disk hold anything that boots, or selects what boots? Read
//! before any task runs, to decide whether an install may stream in one
//! pass (nothing to keep) or must verify first.
//!
//! Kept apart so the disk-inspection module can take it over: it looks only
//! at the structures a firmware or boot loader starts from (sector 0, the
//! GPT headers) and the U-Boot environments the bundle declares.

use std::io;
use std::ops::Range;

use crate::bundle::manifest::Manifest;
use crate::formats::{uboot_env, Medium};

const SECTOR: u64 = 512;
/// GPT headers sit in the second logical block: 512 or 4096 bytes in.
const GPT_BLOCK_SIZES: [u64; 2] = [512, 4096];

/// Where a structure that boots or selects a boot is, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootRecord {
    pub range: Range<u64>,
    pub what: String,
}

/// The boot records on `disk` (of `size` bytes, when known): an MBR's boot
/// code, partition entries or boot signature in sector 0; GPT headers (the
/// primary, or the backup in the last block); a valid U-Boot environment
/// where the bundle declares one. None means nothing on the disk can boot.
pub fn boot_records(disk: &mut dyn Medium, size: Option<u64>, manifest: &Manifest) -> io::Result<Vec<BootRecord>> {
    let mut found = Vec::new();
    let mut sector0 = [0u8; SECTOR as usize];
    disk.read_at(0, &mut sector0)?;
    let parts = [
        (0..446, "boot code in sector 0"),
        (446..510, "MBR partition entries"),
        (510..512, "an MBR boot signature"),
    ];
    let what: Vec<&str> = parts
        .iter()
        .filter(|(r, _)| sector0[r.clone()].iter().any(|&b| b != 0))
        .map(|(_, what)| *what)
        .collect();
    if !what.is_empty() {
        found.push(BootRecord {
            range: 0..SECTOR,
            what: what.join(", "),
        });
    }
    for block in GPT_BLOCK_SIZES {
        let mut starts = vec![(block, "a GPT header")];
        if let Some(size) = size.filter(|&s| s >= 2 * block) {
            starts.push((size - block, "a backup GPT header"));
        }
        for (start, what) in starts {
            let mut signature = [0u8; 8];
            disk.read_at(start, &mut signature)?;
            if &signature == b"EFI PART" {
                found.push(BootRecord {
                    range: start..start + SECTOR,
                    what: format!("{what} at byte {start}"),
                });
            }
        }
    }
    for section in &manifest.uboot_envs {
        let Ok(spec) = uboot_env::UbootEnvSpec::from_section(section) else {
            continue;
        };
        if uboot_env::read(disk, &spec).is_ok() {
            for range in spec.byte_ranges() {
                found.push(BootRecord {
                    what: format!("a U-Boot environment at byte {}", range.start),
                    range,
                });
            }
        }
    }
    Ok(found)
}

/// `boot code in sector 0, an MBR boot signature; a GPT header at byte 512`.
pub fn describe(records: &[BootRecord]) -> String {
    let mut whats: Vec<&str> = records.iter().map(|r| r.what.as_str()).collect();
    whats.dedup();
    whats.join("; ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bundle::meta_conf::load_meta_conf;

    fn manifest(conf: &str) -> Manifest {
        load_meta_conf(conf.as_bytes(), &|_| None).unwrap().manifest
    }

    const WITH_ENV: &str = "meta-product=\"t\"\nuboot-environment \"env\" {\nblock-offset=16\nblock-count=16\n}\n";

    #[test]
    fn a_blank_disk_holds_nothing_bootable() {
        let mut disk = vec![0u8; 1 << 20];
        assert!(boot_records(&mut disk, Some(1 << 20), &manifest(WITH_ENV))
            .unwrap()
            .is_empty());
        // Data elsewhere (an old filesystem) does not boot.
        disk[100_000..100_100].fill(0xab);
        assert!(boot_records(&mut disk, Some(1 << 20), &manifest(WITH_ENV))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn mbr_parts_gpt_headers_and_a_valid_environment_are_found() {
        let size = 1u64 << 20;
        let mut disk = vec![0u8; size as usize];
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        disk[0] = 0xeb;
        disk[512..520].copy_from_slice(b"EFI PART");
        let backup = (size - 512) as usize;
        disk[backup..backup + 8].copy_from_slice(b"EFI PART");
        let m = manifest(WITH_ENV);
        let spec = uboot_env::UbootEnvSpec::from_section(&m.uboot_envs[0]).unwrap();
        uboot_env::clear(&mut disk, &spec).unwrap();
        uboot_env::setenv(&mut disk, &spec, "nerves_fw_active", "a").unwrap();
        let found = boot_records(&mut disk, Some(size), &m).unwrap();
        let text = describe(&found);
        assert_eq!(
            text,
            "boot code in sector 0, an MBR boot signature; a GPT header at byte 512; \
             a backup GPT header at byte 1048064; a U-Boot environment at byte 8192",
            "{found:?}"
        );
        assert_eq!(found[0].range, 0..512);
        assert_eq!(found[3].range, 16 * 512..32 * 512);
    }

    #[test]
    fn a_damaged_environment_is_not_a_boot_record() {
        let mut disk = vec![0u8; 1 << 20];
        disk[16 * 512..16 * 512 + 100].fill(0x11);
        assert!(boot_records(&mut disk, Some(1 << 20), &manifest(WITH_ENV))
            .unwrap()
            .is_empty());
    }
}
