//! GPT encoder against the bytes fwup 1.16 wrote in the corpus images, the
//! reader with its backup fallback, and the errors for bad layouts.
#![allow(clippy::unwrap_used)]

mod formats_support;

use formats_support::{assert_bytes, edited, meta_conf, region, section, set, SparseDisk, BLOCK};
use loader::formats::{gpt, FormatError};

const ONE_GIB_BLOCKS: u64 = 1 << 21;

fn gpt_spec() -> gpt::GptSpec {
    gpt::GptSpec::from_section(section(&meta_conf("03-x86_64-ab-gpt"), "gpt", "gpt")).unwrap()
}

#[test]
fn gpt_on_a_1gib_disk_matches_fwup() {
    let written = gpt::encode(&gpt_spec(), Some(ONE_GIB_BLOCKS)).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(written[0].0, 0);
    assert_bytes("03-complete primary GPT", &region("03-complete", 0, 34), &written[0].1);
    assert_eq!(written[1].0, (ONE_GIB_BLOCKS - 33) * BLOCK);
    assert_bytes(
        "03-complete backup GPT",
        &region("03-complete", 2097119, 33),
        &written[1].1,
    );
}

#[test]
fn gpt_of_unknown_size_is_sized_from_the_partitions() {
    let written = gpt::encode(&gpt_spec(), None).unwrap();
    assert_bytes(
        "03-complete-emptyfile primary",
        &region("03-complete-emptyfile", 0, 34),
        &written[0].1,
    );
    assert_eq!(
        written[1].0,
        1608193 * BLOCK,
        "backup header must land at block 1608225"
    );
    assert_bytes(
        "03-complete-emptyfile backup",
        &region("03-complete-emptyfile", 1608193, 33),
        &written[1].1,
    );
}

#[test]
fn gpt_reader_reads_back_what_was_written_and_falls_back_to_the_backup() {
    let spec = gpt_spec();
    let mut disk = SparseDisk::new();
    disk.write_all(&gpt::encode(&spec, Some(ONE_GIB_BLOCKS)).unwrap());

    let table = gpt::read(&mut disk, Some(ONE_GIB_BLOCKS)).unwrap();
    assert_eq!(table.disk_guid.to_string(), "b1d4f5a0-0000-4c6f-8a6f-6c6f61646572");
    assert_eq!(
        (table.first_usable_lba, table.last_usable_lba),
        (34, ONE_GIB_BLOCKS - 34)
    );
    let names: Vec<&str> = table.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["boot", "rootfs-a", "rootfs-b", "appdata"]);
    for (read, want) in table.partitions.iter().zip(&spec.partitions) {
        assert_eq!(read.number as usize, want.index + 1);
        assert_eq!(
            (read.type_guid, read.guid, read.flags),
            (want.type_guid, want.guid, want.flags)
        );
        assert_eq!(read.first_lba, want.block_offset);
    }
    assert_eq!(table.partitions[0].flags, gpt::LEGACY_BIOS_BOOTABLE);
    assert_eq!(table.partitions[3].last_lba, 2097117);

    // Damage the primary header: the backup at the last block still reads.
    disk.write_at_block(1, &[0u8; 512]);
    let err = gpt::read(&mut disk, None).unwrap_err();
    assert!(
        err.to_string().contains("GPT header at block 1: no \"EFI PART\""),
        "{err}"
    );
    let backup = gpt::read(&mut disk, Some(ONE_GIB_BLOCKS)).unwrap();
    assert_eq!(backup.header_lba, ONE_GIB_BLOCKS - 1);
    assert_eq!(backup.partitions, table.partitions);
}

#[test]
fn gpt_reader_rejects_a_corrupt_entry_array() {
    let mut disk = SparseDisk::new();
    disk.write_all(&gpt::encode(&gpt_spec(), None).unwrap());
    disk.write_at_block(2, &[0x55; 512]);
    let err = gpt::read(&mut disk, None).unwrap_err();
    assert!(err.to_string().contains("entry array CRC32 mismatch"), "{err}");
}

/// Found by the property tests: an entry ending at block 2^64 - 1
/// overflowed the block count (a panic in debug builds, a count of 0 in
/// release ones).
#[test]
fn gpt_block_counts_of_extreme_entries_do_not_overflow() {
    let entry = |first, last| gpt::GptPartitionEntry {
        number: 1,
        type_guid: gpt::Guid([1; 16]),
        guid: gpt::Guid([2; 16]),
        name: String::new(),
        flags: 0,
        first_lba: first,
        last_lba: last,
    };
    assert_eq!(entry(0, u64::MAX).block_count(), u64::MAX);
    assert_eq!(entry(1, u64::MAX).block_count(), u64::MAX);
    assert_eq!(entry(34, 33).block_count(), 0, "fwup's empty partition");
    assert_eq!(entry(u64::MAX, 0).block_count(), 0);
    assert_eq!(entry(34, 2081).block_count(), 2048);
}

#[test]
fn bad_gpt_guid_is_refused_naming_the_partition() {
    let s = edited("03-x86_64-ab-gpt", "gpt", "gpt", |s| {
        set(s, "2", "guid", "b1d4f5a0-0003-4c6f-8a6f-6c6f6164657")
    });
    let err = gpt::GptSpec::from_section(&s).unwrap_err().to_string();
    assert_eq!(
        err,
        "gpt \"gpt\" partition \"2\": option `guid`: `b1d4f5a0-0003-4c6f-8a6f-6c6f6164657` is not a GUID like 0fc63daf-8483-4772-8e79-3d69d8477de4"
    );
}

#[test]
fn gpt_layout_errors_name_the_partitions() {
    let s = edited("03-x86_64-ab-gpt", "gpt", "gpt", |s| {
        set(s, "1", "block-count", "600000")
    });
    let err = gpt::GptSpec::from_section(&s).unwrap_err().to_string();
    assert!(
        err.contains("partitions \"1\" (blocks 35328..635328) and \"2\" (blocks 559616..1083904) overlap"),
        "{err}"
    );

    let s = edited("03-x86_64-ab-gpt", "gpt", "gpt", |s| set(s, "1", "expand", "true"));
    let err = gpt::GptSpec::from_section(&s).unwrap_err().to_string();
    assert!(err.contains("only the last partition may expand"), "{err}");

    // Does not fit a 512 MiB disk: p3 would run into the backup GPT.
    let err = gpt::encode(&gpt_spec(), Some(ONE_GIB_BLOCKS / 2)).unwrap_err();
    assert!(matches!(err, FormatError::TooLarge { .. }));
    assert_eq!(
        err.to_string(),
        "gpt \"gpt\" does not fit on the target: the disk is 512.0 MiB (536870912 bytes), the layout needs \
         785.3 MiB (823411200 bytes); the largest partition that does not fit is partition \"2\" (256.0 MiB \
         at blocks 559616..1083904)"
    );
}

#[test]
fn gpt_boot_option_sets_the_legacy_bootable_flag() {
    let s = edited("03-x86_64-ab-gpt", "gpt", "gpt", |s| set(s, "1", "boot", "true"));
    let spec = gpt::GptSpec::from_section(&s).unwrap();
    assert_eq!(spec.partitions[1].flags, gpt::LEGACY_BIOS_BOOTABLE);
}
