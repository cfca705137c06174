//! Any bytes as a disk through the GPT reader: the input is the whole disk
//! (its size rounded up to blocks), read with that size known (so a damaged
//! primary falls back to the backup in the last block) and unknown.
//!
//! Checked beyond "no panic":
//! * the primary is preferred: whatever reads without the disk size reads
//!   the same with it;
//! * a table comes from block 1 or the disk's last block, its partitions
//!   in slot order, each with a sane block count;
//! * re-encoding what was read (as a `gpt` spec on a disk of the same size)
//!   and reading that gives the same partitions.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::formats::gpt::{self, GptPartitionEntry, GptPartitionSpec, GptSpec, GptTable};
use loader::formats::{Medium, BLOCK_SIZE};

use common::SparseDisk;

/// The table as a spec, if it fits one (16 slots, fwup's size limits).
fn as_spec(table: &GptTable) -> Option<GptSpec> {
    let mut partitions = Vec::new();
    for p in &table.partitions {
        let index = p.number as usize - 1;
        if index >= gpt::MAX_PARTITIONS || !within_fwup_limits(p) {
            return None;
        }
        partitions.push(GptPartitionSpec {
            index,
            type_guid: p.type_guid,
            guid: p.guid,
            name: p.name.clone(),
            flags: p.flags,
            block_offset: p.first_lba,
            block_count: p.block_count(),
            expand: false,
        });
    }
    (!partitions.is_empty()).then(|| GptSpec {
        name: "fuzz".into(),
        disk_guid: table.disk_guid,
        partitions,
    })
}

/// fwup's limits: offsets below 2^32 - 1, counts below 2^31 - 1, and a
/// last block that is `first + count - 1`.
fn within_fwup_limits(p: &GptPartitionEntry) -> bool {
    let count = p.block_count();
    p.first_lba < u64::from(u32::MAX) && count > 0 && count < i32::MAX as u64 && p.last_lba == p.first_lba + count - 1
}

fuzz_target!(|data: &[u8]| {
    let blocks = (data.len() as u64).div_ceil(BLOCK_SIZE);
    let mut disk = SparseDisk::new(data, u64::MAX);
    let sized = gpt::read(&mut disk, Some(blocks));
    let unsized_ = gpt::read(&mut disk, None);
    if let Ok(t) = &unsized_ {
        assert_eq!(sized.as_ref().ok(), Some(t), "the disk size changed what the primary reads as");
    }
    let table = match sized {
        Ok(table) => table,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(table.header_lba == 1 || table.header_lba + 1 == blocks);
    for pair in table.partitions.windows(2) {
        assert!(pair[0].number < pair[1].number);
    }
    for p in &table.partitions {
        assert!(!p.type_guid.is_nil());
        assert!(p.block_count() <= p.last_lba.saturating_add(1));
    }

    let Some(spec) = as_spec(&table) else {
        return;
    };
    let Ok(copies) = gpt::encode(&spec, Some(blocks)) else {
        return;
    };
    let mut copy = SparseDisk::new(&[], u64::MAX);
    for (offset, bytes) in &copies {
        copy.write_at(*offset, bytes).expect("sparse write");
    }
    let again = gpt::read(&mut copy, Some(blocks)).expect("an encoded GPT reads back");
    assert_eq!(again.partitions, table.partitions);
    assert_eq!(again.disk_guid, table.disk_guid);
});
