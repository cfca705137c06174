//! The partition table of a disk as an operator reads it: MBR or GPT, each
//! partition with its place, size and type name.
//!
//! GPT is read with our own reader (`formats::gpt::read`), not the `gpt`
//! crate: the crate (4.1) panics on a valid GPT with 256-byte entries (an
//! `assert_eq!(part_size, 128)`) and reads as many entries as a damaged
//! header claims; a disk's bytes are untrusted input to PID 1.

use std::fmt;

use crate::formats::gpt::{self, Guid};
use crate::formats::{mbr, Medium, BLOCK_SIZE};

/// What holds the partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    /// No MBR boot signature and no GPT header.
    None,
    Mbr,
    Gpt,
    /// Something that claims to be a table but cannot be read (a
    /// protective MBR whose GPT is damaged): the text says what.
    Damaged(String),
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableKind::None => f.write_str("no partition table"),
            TableKind::Mbr => f.write_str("MBR"),
            TableKind::Gpt => f.write_str("GPT"),
            TableKind::Damaged(why) => write!(f, "damaged partition table ({why})"),
        }
    }
}

/// One partition, whatever the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSlot {
    /// Linux numbering (`vda1` is 1).
    pub number: u32,
    pub first_block: u64,
    pub blocks: u64,
    /// The MBR type byte, when the table is an MBR.
    pub mbr_type: Option<u8>,
    /// The type GUID, when the table is a GPT.
    pub gpt_type: Option<Guid>,
    /// GPT partition name.
    pub name: Option<String>,
}

impl PartitionSlot {
    /// "Linux (0x83)", "EFI System".
    pub fn type_name(&self) -> String {
        if let Some(kind) = self.mbr_type {
            return format!("{} ({kind:#04x})", mbr_type_name(kind));
        }
        match self.gpt_type {
            Some(guid) => gpt_type_name(&guid).map_or_else(|| guid.to_string(), str::to_string),
            None => "unknown type".into(),
        }
    }

    pub fn byte_range(&self) -> std::ops::Range<u64> {
        self.first_block * BLOCK_SIZE..(self.first_block + self.blocks) * BLOCK_SIZE
    }
}

/// Reads the table: a protective MBR leads to the GPT (primary, else the
/// backup when the disk size is known); a GPT without a protective MBR is
/// still found; otherwise an MBR with at least one partition inside the
/// disk.
pub fn read_table(m: &mut (impl Medium + ?Sized), device_blocks: Option<u64>) -> (TableKind, Vec<PartitionSlot>) {
    let slots = mbr::read_primary_slots(m).ok();
    let protective = slots.as_ref().is_some_and(|s| s.iter().any(|p| p.kind == 0xee));
    match gpt::read(m, device_blocks) {
        Ok(table) => {
            let parts = table
                .partitions
                .iter()
                .map(|p| PartitionSlot {
                    number: p.number,
                    first_block: p.first_lba,
                    blocks: p.block_count(),
                    mbr_type: None,
                    gpt_type: Some(p.type_guid),
                    name: Some(p.name.clone()).filter(|n| !n.is_empty()),
                })
                .collect();
            return (TableKind::Gpt, parts);
        }
        Err(e) if protective => return (TableKind::Damaged(format!("protective MBR, but {e}")), Vec::new()),
        Err(_) => {}
    }
    if slots.is_none() {
        return (TableKind::None, Vec::new());
    }
    let Ok(entries) = mbr::read_partitions(m) else {
        return (TableKind::None, Vec::new());
    };
    let inside = |p: &mbr::PartitionEntry| device_blocks.is_none_or(|d| p.block_offset < d) && p.block_offset > 0;
    if entries.is_empty() || !entries.iter().all(inside) {
        // A boot sector with 55 AA (a FAT volume, a boot loader alone)
        // but no sensible entries is not a partition table.
        return (TableKind::None, Vec::new());
    }
    let parts = entries
        .iter()
        .map(|p| PartitionSlot {
            number: p.number,
            first_block: p.block_offset,
            blocks: p.block_count,
            mbr_type: Some(p.kind),
            gpt_type: None,
            name: None,
        })
        .collect();
    (TableKind::Mbr, parts)
}

fn mbr_type_name(kind: u8) -> &'static str {
    match kind {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0e => "FAT16",
        0x05 | 0x0f | 0x85 => "extended",
        0x07 => "NTFS/exFAT",
        0x0b | 0x0c => "FAT32",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8e => "Linux LVM",
        0xa5 => "FreeBSD",
        0xee => "GPT protective",
        0xef => "EFI System",
        0xfd => "Linux RAID",
        _ => "type",
    }
}

/// Names of the GPT partition types one meets on servers.
fn gpt_type_name(guid: &Guid) -> Option<&'static str> {
    const KNOWN: [(&str, &str); 14] = [
        ("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System"),
        ("21686148-6449-6e6f-744e-656564454649", "BIOS boot"),
        ("0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem"),
        ("4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)"),
        ("44479540-f297-41b2-9af7-d131d5f0458a", "Linux root (x86)"),
        ("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap"),
        ("e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM"),
        ("a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID"),
        ("933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home"),
        ("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data"),
        ("e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved"),
        ("de94bba4-06d1-4d40-a16a-bfd50179d6ac", "Windows recovery"),
        ("6a898cc3-1dd2-11b2-99a6-080020736631", "ZFS"),
        ("516e7cba-6ecf-11d6-8ff8-00022d09712b", "FreeBSD data"),
    ];
    let text = guid.to_string();
    KNOWN.iter().find(|(g, _)| *g == text).map(|(_, name)| *name)
}
