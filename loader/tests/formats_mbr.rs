//! MBR encoder against the bytes fwup 1.16 wrote in the corpus images, the
//! reader following EBR chains, and the errors for bad layouts.
#![allow(clippy::unwrap_used)]

mod formats_support;

use formats_support::{assert_bytes, edited, meta_conf, region, section, set, SparseDisk, BLOCK};
use loader::bundle::conf::{Section, Value};
use loader::formats::{mbr, Medium};

const ONE_GIB_BLOCKS: u64 = 1 << 21;

fn mbr_spec(bundle: &str, name: &str) -> mbr::MbrSpec {
    mbr::MbrSpec::from_section(section(&meta_conf(bundle), "mbr", name)).unwrap()
}

#[test]
fn mbr_on_a_1gib_disk_matches_fwup_and_expands_p4() {
    let sectors = mbr::encode(&mbr_spec("02-x86_64-ab-mbr", "mbr"), Some(ONE_GIB_BLOCKS)).unwrap();
    assert_eq!(sectors.len(), 1);
    assert_eq!(sectors[0].0, 0);
    assert_bytes("02-complete MBR", &region("02-complete", 0, 1), &sectors[0].1);

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
        assert_eq!(offsets, [0, 22528 * BLOCK, 22529 * BLOCK], "device {device:?}");
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
    // require-partition-offset(2, 18432) reads slot 2 of the MBR; guards
    // hold the disk as a `dyn Medium`.
    let dyn_disk: &mut dyn Medium = &mut disk;
    assert_eq!(mbr::read_primary_slots(dyn_disk).unwrap()[2].block_offset, 18432);
}

#[test]
fn mbr_reader_refuses_a_disk_without_a_table() {
    let err = mbr::read_partitions(&mut SparseDisk::new()).unwrap_err();
    assert!(
        err.to_string().contains("MBR at block 0: no 55 AA boot signature"),
        "{err}"
    );
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
    assert_eq!(
        err,
        "mbr \"mbr\": partitions \"1\" (blocks 35328..559616) and \"2\" (blocks 559000..1083288) overlap"
    );
}

#[test]
fn mbr_partition_past_the_device_end_is_refused() {
    let err = mbr_error(section(&meta_conf("02-x86_64-ab-mbr"), "mbr", "mbr"), Some(1_000_000));
    assert_eq!(
        err,
        "mbr \"mbr\" does not fit on the target: the disk is 488.3 MiB (512000000 bytes), the layout needs \
         785.2 MiB (823394304 bytes); the largest partition that does not fit is partition \"2\" (256.0 MiB \
         at blocks 559616..1083904)"
    );
}

#[test]
fn more_than_four_partitions_need_an_extended_partition() {
    let s = edited("06-actions-zoo", "mbr", "mbr-ext", |s| {
        set(s, "3", "type", "0x83");
        set(s, "3", "block-count", "2048");
    });
    let err = mbr_error(&s, None);
    assert!(err.contains("partition \"5\" needs an extended partition"), "{err}");
    assert!(err.contains("partition 3 must have type 0x0f or 0x05"), "{err}");
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
    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| set(s, "0", "type", "256"));
    assert_eq!(
        mbr_error(&s, None),
        "mbr \"mbr\" partition \"0\": option `type`: 256 is not between 0 and 255"
    );

    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| {
        s.options.push(("bootstrap-code".into(), Value::Scalar("eb63".into())))
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
fn logical_partitions_must_be_numbered_without_gaps() {
    let s = edited("06-actions-zoo", "mbr", "mbr-ext", |s| {
        s.sections.retain(|p| p.title.as_deref() != Some("4"));
    });
    let err = mbr_error(&s, None);
    assert!(err.contains("partition \"4\" is missing"), "{err}");
}

#[test]
fn mbr_expand_before_the_last_partition_overlaps_it() {
    let s = edited("02-x86_64-ab-mbr", "mbr", "mbr", |s| set(s, "1", "expand", "true"));
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
