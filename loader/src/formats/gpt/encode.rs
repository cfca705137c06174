//! Encoding a [`GptSpec`] into the protective MBR, the primary GPT and the
//! backup GPT, byte for byte as fwup 1.16's `gpt_write` does.
//!
//! fwup details kept on purpose:
//! * With an unknown device size (an empty image file) the disk is taken to
//!   end 34 blocks after the furthest partition: room for the backup GPT and
//!   one spare block.
//! * `expand` grows a partition to the last usable block only when the disk
//!   has more than 33 blocks after the partition's planned end.
//! * The protective MBR's first entry starts with CHS `00 02 00`, type 0xEE,
//!   end CHS `ff ff ff`, and covers blocks 1..N (capped at 2^32 - 1).

use super::spec::{GptPartitionSpec, GptSpec};
use super::{ENTRY_COUNT, ENTRY_SIZE, GPT_BLOCKS, MAX_PARTITIONS};
use crate::formats::error::FormatError;
use crate::formats::BLOCK_SIZE;

/// Protective MBR + primary header + entries: the first usable block.
const FIRST_USABLE: u64 = 1 + GPT_BLOCKS;
const HEADER_SIZE: usize = 92;
const BLOCK: usize = BLOCK_SIZE as usize;

/// `(byte offset, bytes)` pairs: blocks 0..=33 (protective MBR and primary
/// GPT) and the 33 blocks of the backup GPT at the end of the disk.
///
/// `device_blocks` is the destination size in 512-byte blocks; `None` (or 0)
/// when unknown: the disk is then sized from the partitions, as fwup does.
/// With a known size every partition must end before the backup GPT.
pub fn encode(spec: &GptSpec, device_blocks: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, FormatError> {
    let table = spec.label();
    let disk_blocks = match device_blocks.filter(|&d| d > 0) {
        Some(d) => d,
        None => {
            spec.partitions
                .iter()
                .map(|p| p.block_offset + p.block_count)
                .max()
                .unwrap_or(0)
                + FIRST_USABLE
        }
    };
    if disk_blocks < 2 * FIRST_USABLE {
        return Err(FormatError::layout(
            &table,
            format!(
                "a {disk_blocks}-block device is too small for a GPT (needs at least {} blocks)",
                2 * FIRST_USABLE
            ),
        ));
    }
    let last_usable = disk_blocks - FIRST_USABLE;
    check_fits(spec, disk_blocks)?;

    let mut entries = vec![0u8; ENTRY_COUNT * ENTRY_SIZE];
    for p in &spec.partitions {
        let (first, last) = extent(p, disk_blocks);
        if p.block_count > 0 || p.expand {
            check_extent(&table, p, first, last, last_usable)?;
        }
        if p.index >= MAX_PARTITIONS {
            return Err(FormatError::layout(
                &table,
                format!(
                    "partition \"{}\": partitions are numbered 0 through {}",
                    p.index,
                    MAX_PARTITIONS - 1
                ),
            ));
        }
        let at = p.index * ENTRY_SIZE;
        entries[at..at + ENTRY_SIZE].copy_from_slice(&entry(p, first, last));
    }
    let entries_crc = crc32fast::hash(&entries);

    let header = |current: u64, backup: u64, entries_at: u64| {
        let mut h = vec![0u8; BLOCK];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&FIRST_USABLE.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&spec.disk_guid.to_gpt_bytes());
        h[72..80].copy_from_slice(&entries_at.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRY_COUNT as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..HEADER_SIZE]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };

    let backup_entries_at = disk_blocks - GPT_BLOCKS;
    let mut primary = protective_mbr(disk_blocks);
    primary.extend(header(1, disk_blocks - 1, 2));
    primary.extend_from_slice(&entries);

    let mut backup = entries;
    backup.extend(header(disk_blocks - 1, 1, backup_entries_at));

    Ok(vec![(0, primary), (backup_entries_at * BLOCK_SIZE, backup)])
}

/// Every partition must end before the backup GPT at the end of the disk
/// (fwup writes such a table anyway; see [`FormatError::TooLarge`]).
fn check_fits(spec: &GptSpec, disk_blocks: u64) -> Result<(), FormatError> {
    let used = spec.partitions.iter().filter(|p| p.block_count > 0 || p.expand);
    let extents: Vec<(&GptPartitionSpec, u64, u64)> = used
        .map(|p| {
            let (first, last) = extent(p, disk_blocks);
            (p, first, last.wrapping_add(1))
        })
        .collect();
    let last_usable = disk_blocks - FIRST_USABLE;
    let outside = extents.iter().filter(|(_, _, end)| *end > last_usable + 1);
    // The first of the largest, if several are as large.
    let Some((largest, start, end)) = outside.min_by_key(|(_, start, end)| std::cmp::Reverse(end - start)) else {
        return Ok(());
    };
    let layout_blocks = extents.iter().map(|(_, _, end)| end).max().copied().unwrap_or(0) + GPT_BLOCKS;
    Err(FormatError::TooLarge {
        table: spec.label(),
        disk_blocks,
        layout_blocks,
        partition: format!("partition \"{}\"", largest.index),
        start: *start,
        end: *end,
    })
}

/// First and last block of a partition after `expand`.
fn extent(p: &GptPartitionSpec, disk_blocks: u64) -> (u64, u64) {
    let mut count = p.block_count;
    if p.expand && disk_blocks > p.block_offset + p.block_count + GPT_BLOCKS {
        count = disk_blocks - FIRST_USABLE - p.block_offset;
    }
    // fwup stores `offset + count - 1` even for an empty partition.
    (p.block_offset, (p.block_offset + count).wrapping_sub(1))
}

fn check_extent(table: &str, p: &GptPartitionSpec, first: u64, last: u64, last_usable: u64) -> Result<(), FormatError> {
    let problem = if first < FIRST_USABLE {
        format!("starts at block {first}, inside the primary GPT (blocks 0..{FIRST_USABLE})")
    } else if last > last_usable {
        format!(
            "ends at block {}, past the last usable block {last_usable} (the backup GPT follows it at the end of the device)",
            last + 1
        )
    } else {
        return Ok(());
    };
    Err(FormatError::layout(
        table,
        format!("partition \"{}\" {problem}", p.index),
    ))
}

fn entry(p: &GptPartitionSpec, first: u64, last: u64) -> [u8; ENTRY_SIZE] {
    let mut e = [0u8; ENTRY_SIZE];
    e[0..16].copy_from_slice(&p.type_guid.to_gpt_bytes());
    e[16..32].copy_from_slice(&p.guid.to_gpt_bytes());
    e[32..40].copy_from_slice(&first.to_le_bytes());
    e[40..48].copy_from_slice(&last.to_le_bytes());
    e[48..56].copy_from_slice(&p.flags.to_le_bytes());
    for (slot, unit) in e[56..].chunks_exact_mut(2).zip(p.name.encode_utf16()) {
        slot.copy_from_slice(&unit.to_le_bytes());
    }
    e
}

fn protective_mbr(disk_blocks: u64) -> Vec<u8> {
    let mut mbr = vec![0u8; BLOCK];
    let e = &mut mbr[446..462];
    e[2] = 0x02; // start CHS 0/0/2 = block 1
    e[4] = 0xee;
    e[5..8].copy_from_slice(&[0xff; 3]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    let covered = u32::try_from(disk_blocks - 1).unwrap_or(u32::MAX);
    e[12..16].copy_from_slice(&covered.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}
