//! Two-pass mode's "mark the slot bad first" (as RAUC does): before the
//! second download writes a byte where the old system lives, the disk's
//! boot records stop selecting anything.
//!
//! Sector 0 is switched off as the commit switches it off around a
//! multi-sector switch (`apply::switched_off`: no boot signature, no 0xEE
//! type; the boot code and partition entries stay), so a disk a failed
//! two-pass install leaves looks like one a commit cut in the middle of its
//! switch leaves. The GPT headers and the bundle's U-Boot environments are
//! zeroed (each is guarded by its CRC, so a torn write reads invalid).
//! Everything is synced before the second pass starts, so from then on
//! the disk boots the old system only if it boots at all, and a failed
//! second pass leaves it booting nothing rather than unverified data. The
//! old bytes go to the install as held writes (`ApplyOptions::preload`):
//! guards and read-modify-writes see the disk as it was, and the commit
//! writes every record back, new where the task rewrote it and old where
//! it did not.
//!
//! A power cut while switching off lands any subset of these writes, and
//! each of them decides alone (a torn sector 0 is the old one or off);
//! every subset leaves the old system's data untouched (the second pass
//! has not started), so the disk boots the old system or nothing.

use super::bootable::{boot_records, describe};
use crate::apply::{self, ApplyError};
use crate::bundle::manifest::Manifest;
use crate::target::Target;

/// What [`switch_off`] did: the bytes it zeroed (for the install to hold)
/// and a description of them for the console.
pub struct SwitchedOff {
    pub saved: Vec<(u64, Vec<u8>)>,
    pub described: String,
}

/// Switches off every boot record on `target` (see the module docs) and
/// syncs; returns their old bytes.
pub fn switch_off(target: &mut dyn Target, manifest: &Manifest) -> Result<SwitchedOff, ApplyError> {
    let name = target.describe();
    let failed = |source| ApplyError::Target {
        target: name.clone(),
        source,
    };
    let size = target.size();
    let records = boot_records(target, size, manifest).map_err(failed)?;
    let mut saved = Vec::with_capacity(records.len());
    for record in &records {
        let mut old = vec![0u8; (record.range.end - record.range.start) as usize];
        target.read_at(record.range.start, &mut old).map_err(failed)?;
        saved.push((record.range.start, old));
    }
    for (offset, old) in &saved {
        let off = match <&[u8; 512]>::try_from(old.as_slice()) {
            Ok(sector0) if *offset == 0 => apply::switched_off(sector0).to_vec(),
            _ => vec![0u8; old.len()],
        };
        target.write_at(*offset, &off).map_err(failed)?;
    }
    target.sync().map_err(failed)?;
    Ok(SwitchedOff {
        saved,
        described: describe(&records),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bundle::meta_conf::load_meta_conf;
    use crate::formats::uboot_env;
    use crate::target::file::ImageFile;

    #[test]
    fn every_record_is_switched_off_on_disk_and_its_old_bytes_kept() {
        let conf = "meta-product=\"t\"\nuboot-environment \"env\" {\nblock-offset=16\nblock-count=16\n}\n";
        let manifest = load_meta_conf(conf.as_bytes(), &|_| None).unwrap().manifest;
        let spec = uboot_env::UbootEnvSpec::from_section(&manifest.uboot_envs[0]).unwrap();
        let mut disk = vec![0u8; 1 << 20];
        disk[0..446].fill(0x90);
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        uboot_env::clear(&mut disk, &spec).unwrap();
        uboot_env::setenv(&mut disk, &spec, "nerves_fw_active", "a").unwrap();
        disk[200_000] = 7; // a root filesystem byte: not a boot record
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        std::fs::write(&path, &disk).unwrap();

        let mut target = ImageFile::open(&path).unwrap();
        let off = switch_off(&mut target, &manifest).unwrap();
        assert_eq!(
            off.described,
            "boot code in sector 0, an MBR boot signature; a U-Boot environment at byte 8192"
        );
        drop(target);
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after[510..512], [0, 0], "the boot signature is gone");
        assert_eq!(
            after[..510],
            disk[..510],
            "boot code and entries stay, as the commit leaves them"
        );
        assert!(after[8192..16384].iter().all(|&b| b == 0));
        assert_eq!(after[200_000], 7);
        // A cut that tears the sector-0 write: every prefix of it over the
        // old sector is the old sector or starts no boot (zeroing the whole
        // sector could leave the signature behind zeroed boot code).
        for prefix in 0..=512 {
            let mut torn = disk[..512].to_vec();
            torn[..prefix].copy_from_slice(&after[..prefix]);
            let starts = torn[510..512] == [0x55, 0xaa] || (0..4).any(|i| torn[446 + 16 * i + 4] == 0xee);
            assert!(
                torn == disk[..512] || !starts,
                "torn after {prefix} bytes still starts a boot"
            );
        }
        assert_eq!(off.saved.len(), 2);
        assert_eq!(off.saved[0], (0, disk[..512].to_vec()));
        assert_eq!(off.saved[1], (8192, disk[8192..16384].to_vec()));
    }
}
