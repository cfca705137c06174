//! Reading the GPT of a disk: header and entry CRCs checked, the backup
//! copy used when the primary is damaged and the disk size is known.

use super::Guid;
use crate::formats::error::FormatError;
use crate::formats::{Medium, BLOCK_SIZE};

/// More entries than this is not a table anyone writes (the spec's minimum
/// array is 128; some tools use 256).
const MAX_ENTRIES: u32 = 1024;

/// One used entry of a partition array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartitionEntry {
    /// Slot + 1, as Linux numbers it (`/dev/sda1` = slot 0).
    pub number: u32,
    pub type_guid: Guid,
    pub guid: Guid,
    pub name: String,
    pub flags: u64,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
}

impl GptPartitionEntry {
    /// Blocks from `first_lba` to `last_lba` inclusive: 0 when the entry
    /// ends before it starts, `u64::MAX` when the count does not fit (a
    /// damaged or hostile entry ending at block 2^64 - 1 must not overflow:
    /// found by the property tests).
    pub fn block_count(&self) -> u64 {
        self.last_lba
            .checked_sub(self.first_lba)
            .map_or(0, |span| span.saturating_add(1))
    }
}

/// A decoded GPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptTable {
    pub disk_guid: Guid,
    /// Block of the header this was read from (1 for the primary).
    pub header_lba: u64,
    pub backup_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// Used entries (non-nil type GUID), in slot order.
    pub partitions: Vec<GptPartitionEntry>,
}

/// Reads the primary GPT; if it is missing or damaged and `device_blocks`
/// is known, the backup header in the last block.
pub fn read(m: &mut (impl Medium + ?Sized), device_blocks: Option<u64>) -> Result<GptTable, FormatError> {
    match read_at(m, 1) {
        Ok(table) => Ok(table),
        Err(primary_error) => match device_blocks.filter(|&d| d > 1) {
            Some(d) => read_at(m, d - 1).map_err(|_| primary_error),
            None => Err(primary_error),
        },
    }
}

fn read_at(m: &mut (impl Medium + ?Sized), header_lba: u64) -> Result<GptTable, FormatError> {
    let what = format!("GPT header at block {header_lba}");
    let bad = |problem: String| FormatError::BadTable {
        what: what.clone(),
        problem,
    };

    let mut h = [0u8; BLOCK_SIZE as usize];
    m.read_at(header_lba * BLOCK_SIZE, &mut h)
        .map_err(FormatError::io(format!("reading the {what}")))?;
    if &h[0..8] != b"EFI PART" {
        return Err(bad("no \"EFI PART\" signature: no GPT there".to_string()));
    }
    let le32 = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let le64 = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().unwrap_or([0; 8]));

    let header_size = le32(12) as usize;
    if !(92..=h.len()).contains(&header_size) {
        return Err(bad(format!("header size {header_size} is not between 92 and 512")));
    }
    let mut copy = h;
    copy[16..20].fill(0);
    let actual = crc32fast::hash(&copy[..header_size]);
    if actual != le32(16) {
        return Err(bad(format!(
            "header CRC32 mismatch (stored {:#010x}, computed {actual:#010x})",
            le32(16)
        )));
    }

    let entry_count = le32(80);
    let entry_size = le32(84) as usize;
    if entry_count > MAX_ENTRIES || entry_size < 128 || !entry_size.is_multiple_of(8) || entry_size > 4096 {
        return Err(bad(format!(
            "unsupported entry array: {entry_count} entries of {entry_size} bytes"
        )));
    }
    let entries_lba = le64(72);
    let mut entries = vec![0u8; entry_count as usize * entry_size];
    let entries_at = entries_lba
        .checked_mul(BLOCK_SIZE)
        .ok_or_else(|| bad(format!("entry array block {entries_lba} is out of range")))?;
    m.read_at(entries_at, &mut entries).map_err(FormatError::io(format!(
        "reading the GPT entries at block {entries_lba}"
    )))?;
    let actual = crc32fast::hash(&entries);
    if actual != le32(88) {
        return Err(bad(format!(
            "entry array CRC32 mismatch (stored {:#010x}, computed {actual:#010x})",
            le32(88)
        )));
    }

    let partitions = entries
        .chunks_exact(entry_size)
        .enumerate()
        .filter_map(|(slot, e)| decode_entry(slot, e))
        .collect();
    Ok(GptTable {
        disk_guid: guid_at(&h, 56),
        header_lba,
        backup_lba: le64(32),
        first_usable_lba: le64(40),
        last_usable_lba: le64(48),
        partitions,
    })
}

fn decode_entry(slot: usize, e: &[u8]) -> Option<GptPartitionEntry> {
    let type_guid = guid_at(e, 0);
    if type_guid.is_nil() {
        return None;
    }
    let le64 = |at: usize| u64::from_le_bytes(e[at..at + 8].try_into().unwrap_or([0; 8]));
    let units: Vec<u16> = e[56..128]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    Some(GptPartitionEntry {
        number: slot as u32 + 1,
        type_guid,
        guid: guid_at(e, 16),
        name: String::from_utf16_lossy(&units),
        flags: le64(48),
        first_lba: le64(32),
        last_lba: le64(40),
    })
}

fn guid_at(bytes: &[u8], at: usize) -> Guid {
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&bytes[at..at + 16]);
    Guid::from_gpt_bytes(&raw)
}
