//! Property tests of the partition-table and U-Boot environment codecs:
//! generated layouts encode and read back to what was asked for, and
//! arbitrary bytes on a disk never make a reader panic.
#![allow(clippy::unwrap_used)]

mod formats_support;

use formats_support::SparseDisk;
use loader::formats::gpt::{self, GptPartitionSpec, GptSpec, Guid};
use loader::formats::mbr::{self, MbrPartitionSpec, MbrSpec};
use loader::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};
use loader::formats::Medium;
use proptest::prelude::*;

/// Non-extended partition types, 0x85 included only as a logical would be
/// misread (Linux follows it as a link), so left out.
fn data_kind() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![
        0x01u8, 0x06, 0x0b, 0x0c, 0x0e, 0x27, 0x82, 0x83, 0x8e, 0xda, 0xef, 0xfd,
    ])
}

/// An MBR layout fwup accepts: primaries in any of the slots 0–3 (gaps
/// allowed), laid out one after another, and optionally an extended
/// partition in slot 3 holding up to 8 logical partitions whose EBRs are
/// its first blocks.
fn mbr_spec() -> impl Strategy<Value = (MbrSpec, Option<u64>)> {
    (
        prop::collection::vec((data_kind(), any::<bool>(), 0u32..64, 1u32..4096, any::<bool>()), 0..4),
        prop::option::of((
            prop::sample::select(vec![0x05u8, 0x0f]),
            prop::collection::vec((data_kind(), 0u32..16, 1u32..2048), 1..9),
        )),
        any::<u32>(),
        prop::option::of(0u64..100_000),
    )
        .prop_filter("an empty table", |(p, e, _, _)| !p.is_empty() || e.is_some())
        .prop_map(|(primaries, extended, signature, spare)| {
            let mut partitions = Vec::new();
            let mut next = 1u32;
            let slots = if extended.is_some() { 3 } else { 4 };
            for (n, (kind, boot, gap, count, skip)) in primaries.into_iter().enumerate().take(slots) {
                // Leave a slot unused now and then.
                let index = (n + usize::from(skip && n + 1 < slots)).min(slots - 1);
                if partitions.iter().any(|p: &MbrPartitionSpec| p.index == index) {
                    continue;
                }
                partitions.push(MbrPartitionSpec {
                    index,
                    kind,
                    boot,
                    block_offset: next + gap,
                    block_count: count,
                    expand: false,
                });
                next += gap + count;
            }
            if let Some((kind, logicals)) = extended {
                let start = next + 1;
                partitions.push(MbrPartitionSpec {
                    index: 3,
                    kind,
                    boot: false,
                    block_offset: start,
                    block_count: 1,
                    expand: true,
                });
                let mut at = start + logicals.len() as u32;
                for (k, (kind, gap, count)) in logicals.into_iter().enumerate() {
                    partitions.push(MbrPartitionSpec {
                        index: 4 + k,
                        kind,
                        boot: false,
                        block_offset: at + gap,
                        block_count: count,
                        expand: false,
                    });
                    at += gap + count;
                }
                next = at;
            }
            partitions.sort_by_key(|p| p.index);
            let device = spare.map(|s| u64::from(next) + s);
            (
                MbrSpec {
                    name: "prop".into(),
                    bootstrap_code: None,
                    signature,
                    partitions,
                },
                device,
            )
        })
}

fn guid() -> impl Strategy<Value = Guid> {
    any::<[u8; 16]>().prop_filter("nil", |g| g != &[0; 16]).prop_map(Guid)
}

/// A GPT layout: up to 16 partitions in slots 0–15, one after another
/// from block 34, the last one possibly expanding.
fn gpt_spec() -> impl Strategy<Value = (GptSpec, u64)> {
    (
        guid(),
        prop::collection::btree_set(0usize..16, 1..8),
        prop::collection::vec((guid(), guid(), "\\PC{0,40}", any::<u64>(), 0u64..64, 0u64..5000), 8),
        any::<bool>(),
        0u64..100_000,
    )
        .prop_map(|(disk_guid, slots, parts, expand_last, spare)| {
            let mut next = 34;
            let count = slots.len();
            let partitions = slots
                .into_iter()
                .zip(parts)
                .enumerate()
                .map(|(n, (index, (type_guid, guid, name, flags, gap, count_)))| {
                    let p = GptPartitionSpec {
                        index,
                        type_guid,
                        guid,
                        name,
                        flags,
                        block_offset: next + gap,
                        block_count: count_,
                        expand: expand_last && n + 1 == count,
                    };
                    next += gap + count_;
                    p
                })
                .collect();
            (
                GptSpec {
                    name: "prop".into(),
                    disk_guid,
                    partitions,
                },
                next + 33 + spare,
            )
        })
}

fn env_spec(block_offset: u64, block_count: u64, redundant_block_offset: Option<u64>) -> UbootEnvSpec {
    UbootEnvSpec {
        name: "prop".into(),
        block_offset,
        block_count,
        redundant_block_offset,
    }
}

/// Any value, the extremes often.
fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()]
}

/// Variable names U-Boot can read back (no `=`, no NUL), values without NUL.
fn env_vars() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>().prop_filter("= or NUL", |b| *b != b'=' && *b != 0), 1..12),
            prop::collection::vec(any::<u8>().prop_filter("NUL", |b| *b != 0), 0..40),
        ),
        0..20,
    )
}

proptest! {
    #[test]
    fn mbr_layouts_read_back((spec, device) in mbr_spec()) {
        let sectors = mbr::encode(&spec, device).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut disk = SparseDisk::new();
        disk.write_all(&sectors);
        let slots = mbr::read_primary_slots(&mut disk).unwrap();
        for p in spec.partitions.iter().filter(|p| p.index < 4) {
            let s = slots[p.index];
            prop_assert_eq!((s.kind, s.boot, s.block_offset), (p.kind, p.boot, u64::from(p.block_offset)));
            if !p.expand {
                prop_assert_eq!(s.block_count, u64::from(p.block_count));
            }
        }
        let read = mbr::read_partitions(&mut disk).unwrap();
        let logicals: Vec<_> = read
            .iter()
            .filter(|p| p.number > 4)
            .map(|p| (p.kind, p.block_offset, p.block_count))
            .collect();
        let expected: Vec<_> = spec
            .logicals()
            .map(|p| (p.kind, u64::from(p.block_offset), u64::from(p.block_count)))
            .collect();
        prop_assert_eq!(logicals, expected);
        if let (Some(device), Some(ext)) = (device, spec.extended()) {
            // The extended partition grows to the end of the disk.
            prop_assert_eq!(slots[3].block_offset + slots[3].block_count, device.max(u64::from(ext.block_offset) + 1));
        }
    }

    #[test]
    fn environments_round_trip(vars in env_vars(), blocks in 1u64..4, redundant: bool, flag: u8) {
        let spec = env_spec(8, blocks, redundant.then_some(8 + blocks));
        let env: UbootEnv = vars.into_iter().collect();
        match uboot_env::encode(&spec, &env, flag) {
            Ok(bytes) => {
                prop_assert_eq!(bytes.len(), spec.size());
                prop_assert_eq!(uboot_env::decode(&spec, 8, &bytes).unwrap(), env);
            }
            Err(e) => {
                let needed: usize = env.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
                prop_assert!(needed + 2 + if redundant { 5 } else { 4 } > spec.size(), "{}", e);
            }
        }
    }

    /// A run of `setenv`s on a redundant environment, each write possibly
    /// torn by a power loss (the new bytes up to some offset, the old ones
    /// after it): what reads back is always the environment before the
    /// update or after it, never nothing; and without a tear, after it.
    #[test]
    fn redundant_updates_survive_a_torn_write(
        values in prop::collection::vec("[a-z]{0,8}", 1..12),
        tears in prop::collection::vec(prop::option::of(0usize..512), 12),
        start in any::<u8>(),
    ) {
        let spec = env_spec(0, 1, Some(1));
        let mut disk = SparseDisk::new();
        // Start from a pair whose counters are anywhere in their cycle.
        let base: UbootEnv = [("slot", "a")].into_iter().collect();
        disk.write_at(0, &uboot_env::encode(&spec, &base, start).unwrap()).unwrap();
        disk.write_at(512, &uboot_env::encode(&spec, &base, start.wrapping_sub(1)).unwrap()).unwrap();
        let mut current = base;
        for (value, tear) in values.iter().zip(tears) {
            let before = disk.bytes(0, 1024);
            uboot_env::setenv(&mut disk, &spec, "slot", value).unwrap();
            let after = disk.bytes(0, 1024);
            let mut updated = current.clone();
            updated.set("slot", value);
            let changed: Vec<usize> = (0..2).filter(|&c| before[c * 512..][..512] != after[c * 512..][..512]).collect();
            prop_assert_eq!(changed.len(), 1, "one update rewrote both copies");
            if let Some(tear) = tear {
                let at = changed[0] * 512 + tear;
                disk.write_at(at as u64, &before[at..(changed[0] + 1) * 512]).unwrap();
            }
            let read = uboot_env::read(&mut disk, &spec).unwrap();
            prop_assert!(read == current || read == updated, "{:?}", read);
            if tear.is_none() {
                prop_assert_eq!(&read, &updated);
            }
            current = read;
        }
    }

    #[test]
    fn arbitrary_disks_never_panic_the_readers(bytes in prop::collection::vec(any::<u8>(), 0..4096), redundant: bool) {
        let mut disk = SparseDisk::new();
        disk.write_at(0, &bytes).unwrap();
        let _ = mbr::read_partitions(&mut disk);
        let _ = gpt::read(&mut disk, Some(8));
        let spec = env_spec(0, 2, redundant.then_some(2));
        let _ = uboot_env::read(&mut disk, &spec);
        let _ = uboot_env::decode(&spec, 0, &bytes);
    }

    /// A header with a valid signature and CRCs makes the reader decode the
    /// entries: any LBAs there (a damaged or hostile disk) must read or be
    /// refused, never panic, and give sane block counts.
    #[test]
    fn gpt_entries_with_any_lbas_never_panic(
        header in prop::collection::vec(any::<u64>(), 4),
        entries in prop::collection::vec((guid(), edge_u64(), edge_u64(), any::<u64>()), 1..8),
        entry_size in 16u32..24,
    ) {
        let entry_size = entry_size * 8;
        let mut array = Vec::new();
        for (type_guid, first, last, flags) in &entries {
            let mut e = vec![0u8; entry_size as usize];
            e[..16].copy_from_slice(&type_guid.0);
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last.to_le_bytes());
            e[48..56].copy_from_slice(&flags.to_le_bytes());
            array.extend(e);
        }
        let mut h = vec![0u8; 512];
        h[..8].copy_from_slice(b"EFI PART");
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        for (i, f) in header.iter().enumerate() {
            // current, backup, first and last usable block
            h[24 + 8 * i..32 + 8 * i].copy_from_slice(&f.to_le_bytes());
        }
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&(entries.len() as u32).to_le_bytes());
        h[84..88].copy_from_slice(&entry_size.to_le_bytes());
        h[88..92].copy_from_slice(&crc32fast::hash(&array).to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        let mut disk = SparseDisk::new();
        disk.write_at(512, &h).unwrap();
        disk.write_at(1024, &array).unwrap();
        let table = gpt::read(&mut disk, None).unwrap();
        prop_assert_eq!(table.partitions.len(), entries.len());
        for p in &table.partitions {
            let count = p.block_count();
            // The count spans first..=last exactly, or saturates.
            let exact = p.first_lba.checked_add(count.wrapping_sub(1)) == Some(p.last_lba);
            prop_assert!(count == 0 && p.last_lba < p.first_lba || exact || count == u64::MAX);
        }
    }
}

proptest! {
    // Each case encodes and reads 67 blocks through a byte-wise sparse
    // disk: fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn gpt_layouts_read_back_from_either_copy((spec, disk_blocks) in gpt_spec()) {
        let copies = gpt::encode(&spec, Some(disk_blocks)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut disk = SparseDisk::new();
        disk.write_all(&copies);
        let table = gpt::read(&mut disk, Some(disk_blocks)).unwrap();
        prop_assert_eq!(table.header_lba, 1);
        prop_assert_eq!(table.disk_guid, spec.disk_guid);
        prop_assert_eq!(table.partitions.len(), spec.partitions.len());
        for (read, p) in table.partitions.iter().zip(&spec.partitions) {
            prop_assert_eq!(read.number as usize, p.index + 1);
            prop_assert_eq!(
                (read.type_guid, read.guid, read.flags, read.first_lba),
                (p.type_guid, p.guid, p.flags, p.block_offset)
            );
            // fwup grows a partition only when more than the backup GPT's
            // 33 blocks follow its planned end.
            let grows = p.expand && disk_blocks > p.block_offset + p.block_count + 33;
            let end = if grows { disk_blocks - 34 } else { p.block_offset + p.block_count };
            prop_assert_eq!(read.block_count(), end - p.block_offset);
            let units: Vec<u16> = p.name.encode_utf16().take(36).take_while(|&u| u != 0).collect();
            prop_assert_eq!(&read.name, &String::from_utf16_lossy(&units));
        }
        disk.write_at(512, &[0; 512]).unwrap();
        let backup = gpt::read(&mut disk, Some(disk_blocks)).unwrap();
        prop_assert_eq!(backup.header_lba, disk_blocks - 1);
        prop_assert_eq!(backup.partitions, table.partitions);
    }
}
