//! Reading the MBR partitions of a disk: the four primary slots as fwup's
//! guards see them, and the partition list as Linux numbers it.

use super::PRIMARY_SLOTS;
use crate::formats::error::FormatError;
use crate::formats::{Medium, BLOCK_SIZE};

/// Linux stops following an EBR chain after this many links.
const MAX_EBRS: usize = 100;

/// One partition as a partition table stores it, offsets absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEntry {
    /// Linux numbering: 1..=4 for the primary slots, 5… for logical
    /// partitions in EBR-chain order (`/dev/sda5` …).
    pub number: u32,
    pub boot: bool,
    /// The partition type byte (0 = unused slot).
    pub kind: u8,
    pub block_offset: u64,
    pub block_count: u64,
}

impl PartitionEntry {
    fn decode(number: u32, raw: &[u8], base: u64) -> PartitionEntry {
        let le32 = |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        PartitionEntry {
            number,
            boot: raw[0] & 0x80 != 0,
            kind: raw[4],
            block_offset: base + u64::from(le32(8)),
            block_count: u64::from(le32(12)),
        }
    }

    fn is_used(&self) -> bool {
        self.kind != 0 && self.block_count != 0
    }
}

/// Extended partition types Linux follows (0x85 is Linux's own).
fn is_chain_type(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

/// The four primary slots exactly as stored, unused ones included: what
/// fwup's `require-partition-offset(N, …)` compares (slot N = `number` N+1).
///
/// Fails when block 0 has no 55 AA boot signature (fwup: requirement not met).
pub fn read_primary_slots(m: &mut (impl Medium + ?Sized)) -> Result<[PartitionEntry; 4], FormatError> {
    let mbr = read_table_block(m, 0, "MBR at block 0")?;
    Ok(std::array::from_fn(|slot| {
        let at = 446 + 16 * slot;
        PartitionEntry::decode(slot as u32 + 1, &mbr[at..at + 16], 0)
    }))
}

/// The partitions Linux would create device nodes for: used primary slots
/// (the extended partition included) as numbers 1–4, then the logical
/// partitions of the first extended partition's EBR chain as 5, 6, ….
///
/// A broken EBR chain ends the list where it breaks, as in Linux.
pub fn read_partitions(m: &mut (impl Medium + ?Sized)) -> Result<Vec<PartitionEntry>, FormatError> {
    let slots = read_primary_slots(m)?;
    let mut partitions: Vec<PartitionEntry> = slots.iter().copied().filter(PartitionEntry::is_used).collect();
    if let Some(extended) = partitions.iter().find(|p| is_chain_type(p.kind)).copied() {
        read_logicals(m, extended.block_offset, &mut partitions)?;
    }
    Ok(partitions)
}

fn read_logicals(
    m: &mut (impl Medium + ?Sized),
    extended_start: u64,
    out: &mut Vec<PartitionEntry>,
) -> Result<(), FormatError> {
    let mut next_number = PRIMARY_SLOTS as u32 + 1;
    let mut ebr_block = extended_start;
    let mut visited = Vec::new();
    while visited.len() < MAX_EBRS && !visited.contains(&ebr_block) {
        visited.push(ebr_block);
        let what = format!("EBR at block {ebr_block}");
        let ebr = match read_table_block(m, ebr_block, &what) {
            Ok(ebr) => ebr,
            Err(FormatError::BadTable { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let entries: Vec<PartitionEntry> = (0..4)
            .map(|i| PartitionEntry::decode(0, &ebr[446 + 16 * i..462 + 16 * i], 0))
            .collect();
        // Data partitions are relative to this EBR…
        for e in entries.iter().filter(|e| e.is_used() && !is_chain_type(e.kind)) {
            out.push(PartitionEntry {
                number: next_number,
                block_offset: ebr_block + e.block_offset,
                ..*e
            });
            next_number += 1;
        }
        // …the link to the next EBR to the start of the extended partition.
        match entries.iter().find(|e| e.is_used() && is_chain_type(e.kind)) {
            Some(link) => ebr_block = extended_start + link.block_offset,
            None => return Ok(()),
        }
    }
    Ok(())
}

fn read_table_block(m: &mut (impl Medium + ?Sized), block: u64, what: &str) -> Result<[u8; 512], FormatError> {
    let mut sector = [0u8; BLOCK_SIZE as usize];
    m.read_at(block * BLOCK_SIZE, &mut sector)
        .map_err(FormatError::io(format!("reading the {what}")))?;
    if sector[510..] != [0x55, 0xaa] {
        return Err(FormatError::BadTable {
            what: what.to_string(),
            problem: "no 55 AA boot signature: no partition table there".to_string(),
        });
    }
    Ok(sector)
}
