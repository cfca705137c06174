//! Filesystems and volume formats recognised by their magic numbers, the way
//! `blkid` finds them: a few bytes at a known place from the start of the
//! device or partition.
//!
//! Only the signature is read, never the structures behind it: this says
//! "there is an ext4 filesystem labelled `root` here", enough to refuse to
//! wipe it and to tell the operator what it is.

use std::fmt;
use std::io;

use crate::formats::Medium;

/// How much of the start of a device the probes look at: btrfs's
/// superblock sits at 64 KiB, ZFS's uberblocks from 128 KiB.
pub const PROBE_WINDOW: usize = 136 * 1024;

/// A format found by its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub kind: FsKind,
    /// The volume label, when the format has one and it is set.
    pub label: Option<String>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(label) = &self.label {
            write!(f, " \"{label}\"")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Fat12,
    Fat16,
    Fat32,
    Exfat,
    Ntfs,
    Squashfs,
    Iso9660,
    Swap,
    Luks1,
    Luks2,
    LvmPv,
    LinuxRaid,
    Zfs,
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Fat12 => "FAT12",
            FsKind::Fat16 => "FAT16",
            FsKind::Fat32 => "FAT32",
            FsKind::Exfat => "exFAT",
            FsKind::Ntfs => "NTFS",
            FsKind::Squashfs => "squashfs",
            FsKind::Iso9660 => "ISO 9660",
            FsKind::Swap => "Linux swap",
            FsKind::Luks1 => "LUKS1 encrypted volume",
            FsKind::Luks2 => "LUKS2 encrypted volume",
            FsKind::LvmPv => "LVM2 physical volume",
            FsKind::LinuxRaid => "Linux RAID member",
            FsKind::Zfs => "ZFS pool member",
        })
    }
}

/// Reads the probe window at `offset` (and, for formats that keep their
/// signature at the end, the tail of `len` bytes) and names the format.
pub fn identify(m: &mut (impl Medium + ?Sized), offset: u64, len: Option<u64>) -> io::Result<Option<Signature>> {
    let window = match len {
        Some(len) => PROBE_WINDOW.min(usize::try_from(len).unwrap_or(PROBE_WINDOW)),
        None => PROBE_WINDOW,
    };
    let mut head = vec![0u8; window];
    m.read_at(offset, &mut head)?;
    if let Some(found) = identify_head(&head) {
        return Ok(Some(found));
    }
    // md metadata 0.90 and 1.0 live near the end of the member.
    if let Some(len) = len.filter(|&l| l >= 128 * 1024) {
        let v1_0 = (len - 8192) & !4095;
        let v0_90 = (len & !65535) - 65536;
        for at in [v1_0, v0_90] {
            let mut magic = [0u8; 4];
            m.read_at(offset + at, &mut magic)?;
            if u32::from_le_bytes(magic) == MD_MAGIC {
                return Ok(Some(unlabelled(FsKind::LinuxRaid)));
            }
        }
    }
    Ok(None)
}

const MD_MAGIC: u32 = 0xa92b_4efc;
const ZFS_UBERBLOCK_MAGIC: u64 = 0x00ba_b10c;

fn unlabelled(kind: FsKind) -> Signature {
    Signature { kind, label: None }
}

/// The probes over the first bytes of a device, most specific first.
pub fn identify_head(b: &[u8]) -> Option<Signature> {
    let at = |offset: usize, magic: &[u8]| b.get(offset..offset + magic.len()) == Some(magic);
    let label = |range: std::ops::Range<usize>| b.get(range).and_then(text_label);
    let le16 = |o: usize| b.get(o..o + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]));
    let le32 = |o: usize| {
        b.get(o..o + 4)
            .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };

    if at(0, b"LUKS\xba\xbe") {
        let version = b.get(6..8).map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
        return Some(if version == 2 {
            Signature {
                kind: FsKind::Luks2,
                label: label(24..72),
            }
        } else {
            unlabelled(FsKind::Luks1)
        });
    }
    if at(0, b"XFSB") {
        return Some(Signature {
            kind: FsKind::Xfs,
            label: label(108..120),
        });
    }
    if at(0, b"hsqs") {
        return Some(unlabelled(FsKind::Squashfs));
    }
    if at(0x10040, b"_BHRfS_M") {
        return Some(Signature {
            kind: FsKind::Btrfs,
            label: label(0x1012b..0x1022b),
        });
    }
    if le16(0x438) == 0xef53 {
        return Some(Signature {
            kind: ext_kind(le32(0x45c), le32(0x460)),
            label: label(0x478..0x488),
        });
    }
    if (0..4).any(|sector| at(sector * 512, b"LABELONE") && at(sector * 512 + 24, b"LVM2 001")) {
        return Some(unlabelled(FsKind::LvmPv));
    }
    if le32(0) == MD_MAGIC || le32(4096) == MD_MAGIC {
        return Some(unlabelled(FsKind::LinuxRaid));
    }
    if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        return Some(Signature {
            kind: FsKind::Swap,
            label: label(1024 + 28..1024 + 44),
        });
    }
    if at(3, b"NTFS    ") {
        return Some(unlabelled(FsKind::Ntfs));
    }
    if at(3, b"EXFAT   ") {
        return Some(unlabelled(FsKind::Exfat));
    }
    if let Some(fat) = fat_signature(b) {
        return Some(fat);
    }
    if at(0x8001, b"CD001") {
        return Some(Signature {
            kind: FsKind::Iso9660,
            label: label(0x8028..0x8048),
        });
    }
    if is_zfs_label(b) {
        return Some(unlabelled(FsKind::Zfs));
    }
    None
}

/// ext4 when any ext4-only feature is on, ext3 with a journal, else ext2.
fn ext_kind(compat: u32, incompat: u32) -> FsKind {
    const COMPAT_HAS_JOURNAL: u32 = 0x4;
    // extents, 64bit, flex_bg, mmp, inline data… anything past ext3's set.
    const INCOMPAT_EXT3: u32 = 0x2 | 0x4 | 0x8 | 0x10;
    if incompat & !INCOMPAT_EXT3 != 0 {
        FsKind::Ext4
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    }
}

/// A FAT boot sector: 55 AA, a jump instruction, and a BIOS parameter block
/// whose values are possible (an MBR's boot code fails these checks).
fn fat_signature(b: &[u8]) -> Option<Signature> {
    if b.len() < 512 || b[510..512] != [0x55, 0xaa] || !matches!(b[0], 0xeb | 0xe9) {
        return None;
    }
    let bytes_per_sector = u16::from_le_bytes([b[11], b[12]]);
    let sectors_per_cluster = b[13];
    let reserved = u16::from_le_bytes([b[14], b[15]]);
    let fats = b[16];
    let plausible = matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved > 0
        && matches!(fats, 1 | 2);
    if !plausible {
        return None;
    }
    let (kind, label_at) = if &b[82..87] == b"FAT32" {
        (FsKind::Fat32, 71)
    } else if &b[54..59] == b"FAT16" {
        (FsKind::Fat16, 43)
    } else if &b[54..59] == b"FAT12" {
        (FsKind::Fat12, 43)
    } else {
        return None;
    };
    let label = text_label(&b[label_at..label_at + 11]).filter(|l| l != "NO NAME");
    Some(Signature { kind, label })
}

/// A ZFS vdev label: uberblocks (1 KiB each) from 128 KiB into the label,
/// in either byte order.
fn is_zfs_label(b: &[u8]) -> bool {
    (0..8).any(|i| {
        let at = 128 * 1024 + i * 1024;
        b.get(at..at + 8).is_some_and(|m| {
            let raw: [u8; 8] = m.try_into().unwrap_or([0; 8]);
            u64::from_le_bytes(raw) == ZFS_UBERBLOCK_MAGIC || u64::from_be_bytes(raw) == ZFS_UBERBLOCK_MAGIC
        })
    })
}

/// A label field: up to the first NUL, trailing spaces trimmed; `None`
/// when empty or not printable text.
fn text_label(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let text = std::str::from_utf8(&raw[..end]).ok()?.trim_end();
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_string())
}
