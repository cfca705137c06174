//! MBR and GPT encoders against the bytes fwup 1.16 wrote in the corpus
//! images, decoders reading them back, and the errors for bad layouts.
#![allow(clippy::unwrap_used)]

mod formats_support;

use formats_support::{first_difference, meta_conf, region, section, SparseDisk, BLOCK};
use loader::bundle::conf::{Section, Value};
use loader::formats::{gpt, mbr, FormatError};

const ONE_GIB_BLOCKS: u64 = 1 << 21;

fn assert_bytes(what: &str, expected: &[u8], actual: &[u8]) {
    assert!(
        expected == actual,
        "{what}: {}",
        first_difference(expected, actual)
    );
}

fn mbr_spec(bundle: &str, name: &str) -> mbr::MbrSpec {
    mbr::MbrSpec::from_section(section(&meta_conf(bundle), "mbr", name)).unwrap()
}

fn gpt_spec() -> gpt::GptSpec {
    gpt::GptSpec::from_section(section(&meta_conf("03-x86_64-ab-gpt"), "gpt", "gpt")).unwrap()
}

#[test]
fn mbr_on_a_1gib_disk_matches_fwup_and_expands_p4() {
    let sectors = mbr::encode(&mbr_spec("02-x86_64-ab-mbr", "mbr"), Some(ONE_GIB_BLOCKS)).unwrap();
    assert_eq!(sectors.len(), 1);
    assert_eq!(sectors[0].0, 0);
    assert_bytes(
        "02-complete MBR",
        &region("02-complete", 0, 1),
        &sectors[0].1,
    );

    let mut disk = SparseDisk::new();
    disk.write_all(&sectors);
    let parts = mbr::read_partitions(&mut disk).unwrap();
    let p4 = parts.iter().find(|p| p.number == 4).unwrap();
    assert_eq!((p4.block_offset, p4.block_count), (1083904, 1013248));
    assert!(parts[0].boot && parts[0].kind == 0x0c);
}

#[test]
fn mbr_of_unknown_size_keeps_the_configured_count() {
    let sectors = mbr::encode(&mbr_spec("02-x86_64-ab-mbr", "mbr"), None).unwrap();
    assert_bytes(
        "02-complete-emptyfile MBR",
        &region("02-complete-emptyfile", 0, 1),
        &sectors[0].1,
    );
    // A size of 0 (an empty image file) means unknown, as in fwup.
    assert_eq!(
        mbr::encode(&mbr_spec("02-x86_64-ab-mbr", "mbr"), Some(0)).unwrap(),
        sectors
    );
}

#[test]
fn mbr_with_logical_partitions_writes_fwups_ebrs() {
    let spec = mbr_spec("06-actions-zoo", "mbr-ext");
    let ebrs = region("06-complete", 22528, 2);
    for device in [Some(32768), None] {
        let sectors = mbr::encode(&spec, device).unwrap();
        let offsets: Vec<u64> = sectors.iter().map(|s| s.0).collect();
        assert_eq!(
            offsets,
            [0, 22528 * BLOCK, 22529 * BLOCK],
            "device {device:?}"
        );
        assert_bytes("06 MBR", &region("06-complete", 0, 1), &sectors[0].1);
        assert_bytes("06 first EBR", &ebrs[..512], &sectors[1].1);
        assert_bytes("06 second EBR", &ebrs[512..], &sectors[2].1);
    }
}

#[test]
fn extended_partition_grows_to_the_device_end() {
    let sectors = mbr::encode(&mbr_spec("06-actions-zoo", "mbr-ext"), Some(65536)).unwrap();
    let mut disk = SparseDisk::new();
    disk.write_all(&sectors);
    let ext = mbr::read_partitions(&mut disk)
        .unwrap()
        .into_iter()
        .find(|p| p.number == 4)
        .unwrap();
    assert_eq!(
        (ext.kind, ext.block_offset, ext.block_count),
        (0x0f, 22528, 65536 - 22528)
    );
}

#[test]
fn mbr_reader_follows_the_ebr_chain_with_linux_numbering() {
    let mut disk = SparseDisk::new();
    disk.write_at_block(0, &region("06-complete", 0, 1));
    disk.write_at_block(22528, &region("06-complete", 22528, 2));
    let got: Vec<(u32, u8, u64, u64)> = mbr::read_partitions(&mut disk)
        .unwrap()
        .iter()
        .map(|p| (p.number, p.kind, p.block_offset, p.block_count))
        .collect();
    assert_eq!(
        got,
        [
            (1, 0x0c, 2048, 8192),
            (2, 0x0c, 10240, 8192),
            (3, 0x83, 18432, 4096),
            (4, 0x0f, 22528, 10240),
            (5, 0x83, 24576, 4096),
            (6, 0x83, 28672, 4096),
        ]
    );
    // require-partition-offset(2, 18432) reads slot 2 of the MBR.
    assert_eq!(
        mbr::read_primary_slots(&mut disk).unwrap()[2].block_offset,
        18432
    );
}

#[test]
fn mbr_reader_refuses_a_disk_without_a_table() {
    let err = mbr::read_partitions(&mut SparseDisk::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("MBR at block 0: no 55 AA boot signature"),
        "{err}"
    );
}

#[test]
fn gpt_on_a_1gib_disk_matches_fwup() {
    let written = gpt::encode(&gpt_spec(), Some(ONE_GIB_BLOCKS)).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(written[0].0, 0);
    assert_bytes(
        "03-complete primary GPT",
        &region("03-complete", 0, 34),
        &written[0].1,
    );
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
    assert_eq!(
        table.disk_guid.to_string(),
        "b1d4f5a0-0000-4c6f-8a6f-6c6f61646572"
    );
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
        err.to_string()
            .contains("GPT header at block 1: no \"EFI PART\""),
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
    assert!(
        err.to_string().contains("entry array CRC32 mismatch"),
        "{err}"
    );
}

/// A copy of `root`'s section `kind "title"` with `edit` applied.
fn edited(bundle: &str, kind: &str, title: &str, edit: impl FnOnce(&mut Section)) -> Section {
    let mut s = section(&meta_conf(bundle), kind, title).clone();
    edit(&mut s);
    s
}

fn set(s: &mut Section, partition: &str, key: &str, value: &str) {
    let part = s
        .sections
        .iter_mut()
        .find(|p| p.title.as_deref() == Some(partition))
        .unwrap();
    part.options
        .push((key.to_string(), Value::Scalar(value.to_string())));
}

fn mbr_error(s: &Section, device: Option<u64>) -> String {
    let result = mbr::MbrSpec::from_section(s).and_then(|spec| mbr::encode(&spec, device));
    result.unwrap_err().to_string()
}

#[test]
fn overlapping_mbr_partitions_are_refused_naming_both() {
    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| {
        set(s, "2", "block-offset", "559000")
    });
    let err = mbr_error(&s, Some(ONE_GIB_BLOCKS));
    assert_eq!(err, "mbr \"mbr\": partitions \"1\" (blocks 35328..559616) and \"2\" (blocks 559000..1083288) overlap");
}

#[test]
fn mbr_partition_past_the_device_end_is_refused() {
    let err = mbr_error(
        section(&meta_conf("02-x86_64-ab-mbr"), "mbr", "mbr"),
        Some(1_000_000),
    );
    assert_eq!(err, "mbr \"mbr\": partition \"2\" (blocks 559616..1083904) does not fit on the 1000000-block device");
}

#[test]
fn more_than_four_partitions_need_an_extended_partition() {
    let s = edited("06-actions-zoo", "mbr", "mbr-ext", |s| {
        set(s, "3", "type", "0x83");
        set(s, "3", "block-count", "2048");
    });
    let err = mbr_error(&s, None);
    assert!(
        err.contains("partition \"5\" needs an extended partition"),
        "{err}"
    );
    assert!(
        err.contains("partition 3 must have type 0x0f or 0x05"),
        "{err}"
    );
}

#[test]
fn logical_partition_outside_the_extended_one_is_refused() {
    let s = edited("06-actions-zoo", "mbr", "mbr-ext", |s| {
        set(s, "4", "block-offset", "20000")
    });
    let err = mbr_error(&s, None);
    assert!(err.starts_with("mbr \"mbr-ext\": "), "{err}");
    assert!(err.contains("\"4\" (blocks 20000..24096)"), "{err}");
}

#[test]
fn mbr_options_are_checked_with_their_names() {
    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| {
        set(s, "0", "type", "256")
    });
    assert_eq!(
        mbr_error(&s, None),
        "mbr \"mbr\" partition \"0\": option `type`: 256 is not between 0 and 255"
    );

    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| {
        s.options
            .push(("bootstrap-code".into(), Value::Scalar("eb63".into())))
    });
    assert!(mbr_error(&s, None).contains("option `bootstrap-code`: must be exactly 440 bytes"));

    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| {
        s.sections[1].options.retain(|(k, _)| k != "block-count");
    });
    assert_eq!(
        mbr_error(&s, None),
        "mbr \"mbr\" partition \"1\": option `block-count`: is required"
    );
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
        err.contains(
            "partitions \"1\" (blocks 35328..635328) and \"2\" (blocks 559616..1083904) overlap"
        ),
        "{err}"
    );

    let s = edited("03-x86_64-ab-gpt", "gpt", "gpt", |s| {
        set(s, "1", "expand", "true")
    });
    let err = gpt::GptSpec::from_section(&s).unwrap_err().to_string();
    assert!(err.contains("only the last partition may expand"), "{err}");

    // Does not fit a 512 MiB disk: p3 would run into the backup GPT.
    let err = gpt::encode(&gpt_spec(), Some(ONE_GIB_BLOCKS / 2)).unwrap_err();
    assert!(matches!(err, FormatError::Layout { .. }));
    assert!(
        err.to_string()
            .contains("partition \"2\" ends at block 1083904, past the last usable block 1048542"),
        "{err}"
    );
}

#[test]
fn gpt_boot_option_sets_the_legacy_bootable_flag() {
    let s = edited("03-x86_64-ab-gpt", "gpt", "gpt", |s| {
        set(s, "1", "boot", "true")
    });
    let spec = gpt::GptSpec::from_section(&s).unwrap();
    assert_eq!(spec.partitions[1].flags, gpt::LEGACY_BIOS_BOOTABLE);
}

#[test]
fn logical_partitions_must_be_numbered_without_gaps() {
    let s = edited("06-actions-zoo", "mbr", "mbr-ext", |s| {
        s.sections.retain(|p| p.title.as_deref() != Some("4"));
    });
    let err = mbr_error(&s, None);
    assert!(err.contains("partition \"4\" is missing"), "{err}");
}

#[test]
fn mbr_expand_before_the_last_partition_overlaps_it() {
    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| {
        set(s, "1", "expand", "true")
    });
    let err = mbr_error(&s, Some(ONE_GIB_BLOCKS));
    assert!(
        err.contains("partitions \"1\" (blocks 35328..2097152) and \"2\""),
        "{err}"
    );
}

#[test]
fn mbr_expand_stops_at_the_2tib_limit_of_an_mbr() {
    let sectors = mbr::encode(&mbr_spec("02-x86_64-ab-mbr", "mbr"), Some(1 << 33)).unwrap();
    let mut disk = SparseDisk::new();
    disk.write_all(&sectors);
    let p4 = mbr::read_partitions(&mut disk)
        .unwrap()
        .into_iter()
        .find(|p| p.number == 4)
        .unwrap();
    assert_eq!(p4.block_offset + p4.block_count, u64::from(u32::MAX));
}
