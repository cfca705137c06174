//! Encoding an [`MbrSpec`] into the MBR sector and its EBRs, byte for byte as
//! fwup 1.16's `mbr_write` does.
//!
//! fwup quirks kept on purpose (the corpus images depend on them):
//! * CHS fields use a fixed 255-head, 63-sector geometry; addresses beyond
//!   what CHS can express are left zero (fwup leaves them unset).
//! * An unused slot still carries the offset and count given in meta.conf.
//! * In an EBR, the logical partition's offset *and its CHS values* are
//!   relative to that EBR's own block; the link to the next EBR is relative
//!   to the extended partition's start and always 1 block long.
//! * Every partition with `expand` (and the extended partition always) grows
//!   to the larger of the device size and the end of the last partition.

use super::spec::{MbrPartitionSpec, MbrSpec};
use super::{is_extended_type, MAX_PARTITIONS, PRIMARY_SLOTS};
use crate::formats::error::FormatError;
use crate::formats::BLOCK_SIZE;

const SECTORS_PER_TRACK: u32 = 63;
const HEADS: u32 = 255;
/// The last block a CHS address can name (1023 cylinders).
const MAX_CHS_LBA: u32 = SECTORS_PER_TRACK * HEADS * 0x3ff;

/// A partition placed on the disk: its final size and the block of the
/// table (MBR = 0, or its EBR) that describes it.
#[derive(Debug, Clone, Copy)]
struct Placed {
    index: usize,
    kind: u8,
    boot: bool,
    start: u32,
    count: u32,
    /// Block of the EBR describing a logical partition; 0 for primaries.
    record: u32,
}

impl Placed {
    fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.count)
    }
    fn contains(&self, block: u32) -> bool {
        block >= self.start && u64::from(block) < self.end()
    }
    fn overlaps(&self, other: &Placed) -> bool {
        u64::from(self.start) < other.end() && u64::from(other.start) < self.end()
    }
    fn describe(&self) -> String {
        format!("\"{}\" (blocks {}..{})", self.index, self.start, self.end())
    }
}

/// The MBR sector at byte 0 followed by one EBR per logical partition, each
/// as `(byte offset, 512 bytes)`.
///
/// `device_blocks` is the destination size in 512-byte blocks; `None` (or 0)
/// when unknown, e.g. an empty image file: then `expand` only grows
/// partitions up to the end of the last partition, as fwup does. A known
/// size also lets this check that every partition fits on the device.
pub fn encode(spec: &MbrSpec, device_blocks: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, FormatError> {
    let table = spec.label();
    let device = device_blocks.filter(|&d| d > 0);
    let placed = place(spec, device)?;
    verify(&table, &placed)?;
    if let Some(device) = device {
        check_fits(&table, &placed, device)?;
    }

    let mut sectors = Vec::with_capacity(1 + placed.len());
    sectors.push((0, mbr_sector(spec, &placed)));
    let logicals: Vec<&Placed> = placed.iter().filter(|p| p.index >= PRIMARY_SLOTS).collect();
    for (k, logical) in logicals.iter().enumerate() {
        let mut ebr = vec![0u8; BLOCK_SIZE as usize];
        let data = entry(false, logical.kind, logical.start - logical.record, logical.count);
        ebr[446..462].copy_from_slice(&data);
        if k + 1 < logicals.len() {
            // Link to the next EBR, relative to the extended partition start.
            ebr[462..478].copy_from_slice(&entry(false, 0x0f, k as u32 + 1, 1));
        }
        ebr[510] = 0x55;
        ebr[511] = 0xaa;
        sectors.push((u64::from(logical.record) * BLOCK_SIZE, ebr));
    }
    Ok(sectors)
}

/// Assigns EBR blocks and applies `expand`.
fn place(spec: &MbrSpec, device: Option<u64>) -> Result<Vec<Placed>, FormatError> {
    let table = spec.label();
    let extended_start = spec.extended().map(|e| e.block_offset);
    let mut placed = Vec::with_capacity(MAX_PARTITIONS);
    let mut logicals_seen = 0u32;
    for p in &spec.partitions {
        let record = match (p.index >= PRIMARY_SLOTS, extended_start) {
            (false, _) => 0,
            (true, Some(start)) => {
                // The k-th logical partition's EBR is block k of the extended one.
                logicals_seen += 1;
                start.checked_add(logicals_seen - 1).ok_or_else(|| too_far(&table, p))?
            }
            (true, None) => {
                return Err(FormatError::layout(
                    &table,
                    "logical partitions need an extended partition 3",
                ))
            }
        };
        placed.push(Placed {
            index: p.index,
            kind: p.kind,
            boot: p.boot,
            start: p.block_offset,
            count: p.block_count,
            record,
        });
    }

    // fwup's target size: the device (clamped to what an MBR can address)
    // or, when larger or unknown, the end of the furthest partition.
    let mut disk_end = device.map_or(0, |d| d.min(u64::from(u32::MAX)));
    for (p, spec_part) in placed.iter().zip(&spec.partitions) {
        if p.end() > u64::from(u32::MAX) {
            return Err(too_far(&table, spec_part));
        }
        disk_end = disk_end.max(p.end());
    }
    for (p, spec_part) in placed.iter_mut().zip(&spec.partitions) {
        if spec_part.expand && disk_end > p.end() {
            // disk_end <= u32::MAX, so this fits.
            p.count = (disk_end - u64::from(p.start)) as u32;
        }
    }
    Ok(placed)
}

fn too_far(table: &str, p: &MbrPartitionSpec) -> FormatError {
    FormatError::layout(
        table,
        format!(
            "partition \"{}\" (blocks {}..{}) reaches past block 2^32, the limit of an MBR; use a gpt section",
            p.index,
            p.block_offset,
            u64::from(p.block_offset) + u64::from(p.block_count)
        ),
    )
}

/// fwup's layout rules on the expanded table: no two partitions overlap,
/// except that the extended partition must contain every logical partition
/// and its EBR; no partition covers another's EBR. Empty slots and
/// zero-length partitions take no space.
fn verify(table: &str, placed: &[Placed]) -> Result<(), FormatError> {
    let used: Vec<&Placed> = placed.iter().filter(|p| p.kind != 0 && p.count > 0).collect();
    for (n, a) in used.iter().enumerate() {
        let must_contain = a.index == 3 && is_extended_type(a.kind);
        for b in &used[n + 1..] {
            if a.overlaps(b) != must_contain {
                let problem = if must_contain {
                    format!(
                        "the extended partition {} must contain logical partition {}",
                        a.describe(),
                        b.describe()
                    )
                } else {
                    format!("partitions {} and {} overlap", a.describe(), b.describe())
                };
                return Err(FormatError::layout(table, problem));
            }
            let b_ebr_inside_a = b.record > 0 && a.contains(b.record);
            if b_ebr_inside_a != must_contain {
                let problem = if must_contain {
                    format!(
                        "the extended partition {} must contain the EBR of partition \"{}\" at block {}",
                        a.describe(),
                        b.index,
                        b.record
                    )
                } else {
                    format!(
                        "partition {} covers the EBR of partition \"{}\" at block {}",
                        a.describe(),
                        b.index,
                        b.record
                    )
                };
                return Err(FormatError::layout(table, problem));
            }
            if a.record > 0 && b.contains(a.record) {
                return Err(FormatError::layout(
                    table,
                    format!(
                        "partition {} covers the EBR of partition \"{}\" at block {}",
                        b.describe(),
                        a.index,
                        a.record
                    ),
                ));
            }
        }
    }
    // Not checked by fwup, which would write a corrupt EBR: a logical
    // partition must start after the EBR that describes it.
    for p in used.iter().filter(|p| p.index >= PRIMARY_SLOTS) {
        if p.start <= p.record {
            return Err(FormatError::layout(
                table,
                format!(
                    "logical partition {} must start after its EBR at block {}",
                    p.describe(),
                    p.record
                ),
            ));
        }
    }
    Ok(())
}

/// With a known device size, every partition and EBR must lie on it.
/// (fwup writes such a table anyway; see [`FormatError::TooLarge`].)
fn check_fits(table: &str, placed: &[Placed], device: u64) -> Result<(), FormatError> {
    let used: Vec<&Placed> = placed.iter().filter(|p| p.kind != 0).collect();
    let outside = |p: &&&Placed| p.end() > device || (p.record > 0 && u64::from(p.record) >= device);
    // The first of the largest, if several are as large.
    let Some(largest) = used.iter().filter(outside).min_by_key(|p| std::cmp::Reverse(p.count)) else {
        return Ok(());
    };
    let layout_blocks = used
        .iter()
        .map(|p| p.end().max(u64::from(p.record) + 1))
        .max()
        .unwrap_or(0);
    Err(FormatError::TooLarge {
        table: table.to_string(),
        disk_blocks: device,
        layout_blocks,
        partition: format!("partition \"{}\"", largest.index),
        start: u64::from(largest.start),
        end: largest.end(),
    })
}

fn mbr_sector(spec: &MbrSpec, placed: &[Placed]) -> Vec<u8> {
    let mut mbr = vec![0u8; BLOCK_SIZE as usize];
    if let Some(code) = &spec.bootstrap_code {
        mbr[..440].copy_from_slice(&code[..]);
    }
    mbr[440..444].copy_from_slice(&spec.signature.to_le_bytes());
    for p in placed.iter().filter(|p| p.index < PRIMARY_SLOTS) {
        let at = 446 + 16 * p.index;
        mbr[at..at + 16].copy_from_slice(&entry(p.boot, p.kind, p.start, p.count));
    }
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

/// A 16-byte partition entry. For type 0 only the offset and count are
/// stored (fwup keeps them; some boards hide data there).
fn entry(boot: bool, kind: u8, start: u32, count: u32) -> [u8; 16] {
    let mut e = [0u8; 16];
    if kind != 0 {
        e[0] = if boot { 0x80 } else { 0 };
        e[1..4].copy_from_slice(&chs(start));
        e[4] = kind;
        e[5..8].copy_from_slice(&chs(start.wrapping_add(count).wrapping_sub(1)));
    }
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
    e
}

/// Head, sector|cylinder-high-bits, cylinder-low-byte of a block.
fn chs(lba: u32) -> [u8; 3] {
    if lba > MAX_CHS_LBA {
        return [0; 3];
    }
    let cylinder = lba / (SECTORS_PER_TRACK * HEADS);
    let head = (lba / SECTORS_PER_TRACK) % HEADS;
    let sector = lba % SECTORS_PER_TRACK + 1;
    [
        head as u8,
        (((cylinder & 0x300) >> 2) | sector) as u8,
        (cylinder & 0xff) as u8,
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn chs_matches_the_fixed_255_63_geometry() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(2048), [0x20, 0x21, 0x00]);
        // 22528 = cylinder 1, head 102, sector 38
        assert_eq!(chs(22528), [0x66, 0x26, 0x01]);
        // cylinder 256 sets the high bits in the sector byte
        assert_eq!(chs(256 * 16065), [0, 0x41, 0]);
        assert_eq!(chs(MAX_CHS_LBA + 1), [0, 0, 0]);
    }

    #[test]
    fn unused_entry_keeps_offset_and_count_only() {
        let e = entry(true, 0, 7, 9);
        assert_eq!(&e[..8], &[0; 8]);
        assert_eq!(u32::from_le_bytes([e[8], e[9], e[10], e[11]]), 7);
        assert_eq!(u32::from_le_bytes([e[12], e[13], e[14], e[15]]), 9);
    }
}
