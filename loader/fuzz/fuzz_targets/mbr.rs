//! Any bytes as the start of a disk through the MBR readers: the four
//! primary slots and the partition list with its EBR chain (the input's
//! bytes are blocks 0, 1, …; every other block reads as zeros, so a chain
//! may point anywhere up to block 2^32 + 2^32).
//!
//! Checked beyond "no panic":
//! * the readers succeed exactly when block 0 ends in 55 AA;
//! * the list is the used primary slots, numbered 1–4 in slot order, then
//!   logical partitions numbered 5, 6, … without gaps, never more than
//!   Linux would follow (4 per EBR over at most 100 EBRs);
//! * re-encoding what was read (as an `mbr` spec) and reading that gives
//!   the same primary slots.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::formats::mbr::{self, MbrPartitionSpec, MbrSpec, PartitionEntry};
use loader::formats::Medium;

use common::SparseDisk;

/// The primary slots as a spec, if they fit one (offsets and counts below
/// fwup's limits); logical partitions are left out.
fn as_spec(slots: &[PartitionEntry; 4], block0: &[u8]) -> Option<MbrSpec> {
    let mut partitions = Vec::new();
    for (index, s) in slots.iter().enumerate() {
        if s.kind == 0 || mbr::is_extended_type(s.kind) {
            continue;
        }
        partitions.push(MbrPartitionSpec {
            index,
            kind: s.kind,
            boot: s.boot,
            block_offset: u32::try_from(s.block_offset).ok().filter(|&o| o != u32::MAX)?,
            block_count: u32::try_from(s.block_count).ok().filter(|&c| c < i32::MAX as u32)?,
            expand: false,
        });
    }
    let mut code = [0u8; 440];
    code.copy_from_slice(&block0[..440]);
    Some(MbrSpec {
        name: "fuzz".into(),
        bootstrap_code: Some(Box::new(code)),
        signature: u32::from_le_bytes([block0[440], block0[441], block0[442], block0[443]]),
        partitions,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut disk = SparseDisk::new(data, u64::MAX);
    let block0 = disk.bytes(0, 512);
    let signed = block0[510..] == [0x55, 0xaa];

    let slots = mbr::read_primary_slots(&mut disk);
    assert_eq!(slots.is_ok(), signed);
    let list = mbr::read_partitions(&mut disk);
    assert_eq!(list.is_ok(), signed);
    let (Ok(slots), Ok(list)) = (slots, list) else {
        return;
    };

    let primaries: Vec<_> = list.iter().take_while(|p| p.number <= 4).collect();
    let used: Vec<_> = slots.iter().filter(|s| s.kind != 0 && s.block_count != 0).collect();
    assert_eq!(primaries.len(), used.len());
    for (p, s) in primaries.iter().zip(&used) {
        assert_eq!(*p, *s);
    }
    let logicals = &list[primaries.len()..];
    assert!(logicals.len() <= 4 * 100);
    for (n, p) in logicals.iter().enumerate() {
        assert_eq!(p.number as usize, 5 + n);
        assert!(p.kind != 0 && p.block_count != 0);
    }

    if let Some(spec) = as_spec(&slots, &block0) {
        if let Ok(sectors) = mbr::encode(&spec, None) {
            let mut copy = SparseDisk::new(&[], u64::MAX);
            for (offset, bytes) in &sectors {
                copy.write_at(*offset, bytes).expect("sparse write");
            }
            let again = mbr::read_primary_slots(&mut copy).expect("an encoded MBR reads back");
            for p in &spec.partitions {
                let s = again[p.index];
                assert_eq!(
                    (s.kind, s.boot, s.block_offset, s.block_count),
                    (p.kind, p.boot, u64::from(p.block_offset), u64::from(p.block_count))
                );
            }
        }
    }
});
