//! Every way an install must be refused, one test each: the error class a
//! user (or a fleet dashboard) sees, and proof that nothing bootable was
//! written — the first and last MiB and the U-Boot environment of the
//! destination are exactly as before.

#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use loader::apply::{self, events::Silent, ApplyError, ApplyOptions};
use loader::bundle::signature::PublicKey;
use loader::target::file::ImageFile;

const MIB: u64 = 1 << 20;

fn fw(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fw")
        .join(name)
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_file(&fw(&format!("keys/{name}"))).unwrap()
}

/// Applies `bundle` onto a fresh sparse image of `size` (or onto `base`'s
/// copy) and returns the error plus whether the protected areas changed.
fn refuse(bundle: &str, size: u64, opts: ApplyOptions) -> ApplyError {
    refuse_on(bundle, None, size, opts)
}

fn refuse_on(bundle: &str, base: Option<&Path>, size: u64, opts: ApplyOptions) -> ApplyError {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    match base {
        Some(b) => {
            fs::copy(b, &img).unwrap();
        }
        None => File::create(&img).unwrap().set_len(size).unwrap(),
    }
    let before = fs::read(&img).unwrap();
    let mut target = ImageFile::open(&img).unwrap();
    let err = apply::apply(File::open(fw(bundle)).unwrap(), &mut target, &opts, &mut Silent)
        .expect_err("the install must be refused");
    drop(target);
    let after = fs::read(&img).unwrap();
    let len = before.len() as u64;
    let head = 0..MIB as usize;
    let tail = (len - MIB) as usize..len as usize;
    assert_eq!(
        before[head.clone()],
        after[head],
        "{bundle}: first MiB changed after `{err}`"
    );
    assert_eq!(
        before[tail.clone()],
        after[tail],
        "{bundle}: last MiB changed after `{err}`"
    );
    // The 02 layout's U-Boot environment (blocks 2048..2064), outside the first MiB.
    if len >= 1 << 30 {
        let env = MIB as usize..MIB as usize + 8192;
        assert_eq!(before[env.clone()], after[env], "{bundle}: U-Boot environment changed");
    }
    err
}

fn with_keys(task: &str, keys: &[&str]) -> ApplyOptions {
    let mut o = ApplyOptions::new(task);
    o.public_keys = keys.iter().map(|k| key(k)).collect();
    o
}

#[test]
fn wrong_key_is_refused_as_signature() {
    let e = refuse("04-signed.fw", 4 * MIB, with_keys("complete", &["wrong-key.pub"]));
    assert_eq!(e.class(), "signature", "{e}");
}

#[test]
fn unsigned_bundle_with_a_key_is_refused() {
    let e = refuse("01-minimal-raw.fw", 4 * MIB, with_keys("complete", &["test-key.pub"]));
    assert_eq!(e.class(), "signature", "{e}");
    assert!(e.to_string().contains("not signed"), "{e}");
}

#[test]
fn tampered_meta_conf_is_refused_with_the_right_key() {
    let e = refuse(
        "04-signed-tampered-meta.fw",
        4 * MIB,
        with_keys("complete", &["test-key.pub"]),
    );
    assert_eq!(e.class(), "signature", "{e}");
}

#[test]
fn tampered_data_fails_its_hash_even_when_signed() {
    let e = refuse(
        "04-signed-tampered-data.fw",
        4 * MIB,
        with_keys("complete", &["test-key.pub"]),
    );
    assert_eq!(e.class(), "corrupt", "{e}");
    assert!(e.to_string().contains("payload.bin"), "{e}");
}

#[test]
fn flipped_compressed_byte_is_a_crc_error() {
    let e = refuse("05-corrupt-zipbyte.fw", 1 << 30, ApplyOptions::new("complete"));
    assert_eq!(e.class(), "corrupt", "{e}");
    assert!(e.to_string().contains("rootfs.img"), "{e}");
}

#[test]
fn corrupt_resource_with_valid_zip_crc_fails_blake2b() {
    let e = refuse("05-corrupt-resource.fw", 1 << 30, ApplyOptions::new("complete"));
    assert!(
        matches!(e, ApplyError::HashMismatch { ref name } if name == "rootfs.img"),
        "{e}"
    );
}

#[test]
fn truncated_bundle_is_refused() {
    let e = refuse("05-truncated.fw", 1 << 30, ApplyOptions::new("complete"));
    assert_eq!(e.class(), "corrupt", "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn bundle_cut_inside_meta_conf_is_refused() {
    let e = refuse("05-truncated-meta.fw", 1 << 30, ApplyOptions::new("complete"));
    assert_eq!(e.class(), "corrupt", "{e}");
}

/// fwup writes 7 of 8 segments of the resource before noticing; we may too
/// (it is not boot-critical), but the MBR from on-init must not land.
#[test]
fn late_corruption_leaves_no_partition_table() {
    let e = refuse("05-corrupt-late.fw", 4 * MIB, ApplyOptions::new("complete"));
    assert!(
        matches!(e, ApplyError::HashMismatch { ref name } if name == "large.bin"),
        "{e}"
    );
}

#[test]
fn upgrade_on_a_blank_disk_runs_the_bundles_error() {
    let e = refuse("02-x86_64-ab-mbr.fw", 1 << 30, ApplyOptions::new("upgrade"));
    assert_eq!(e.class(), "bundle-error", "{e}");
    assert!(e.to_string().contains("Expecting platform=x86_64"), "{e}");
}

#[test]
fn guard_task_on_a_blank_disk_falls_through_to_error() {
    let e = refuse("06-actions-zoo.fw", 16 * MIB, ApplyOptions::new("guard"));
    assert_eq!(e.class(), "bundle-error", "{e}");
}

#[test]
fn require_execute_without_unsafe_finds_no_task() {
    let e = refuse("06-actions-zoo.fw", 16 * MIB, ApplyOptions::new("reqexec"));
    assert_eq!(e.class(), "no-task", "{e}");
}

#[test]
fn execute_without_unsafe_is_refused_before_writing() {
    let e = refuse("06-actions-zoo.fw", 16 * MIB, ApplyOptions::new("unsafe"));
    assert_eq!(e.class(), "needs-unsafe", "{e}");
}

#[test]
fn unknown_task_lists_the_tasks() {
    let e = refuse("01-minimal-raw.fw", 4 * MIB, ApplyOptions::new("nonexistent"));
    assert_eq!(e.class(), "no-task", "{e}");
    assert!(e.to_string().contains("complete"), "{e}");
}

#[test]
fn fat_data_over_the_hold_limit_is_refused_up_front() {
    let mut opts = ApplyOptions::new("complete");
    opts.vars.insert("NERVES_SERIAL_NUMBER".into(), "X".into());
    opts.hold_limit = 1024;
    let e = refuse("02-x86_64-ab-mbr.fw", 1 << 30, opts);
    assert_eq!(e.class(), "hold-limit", "{e}");
}

#[test]
fn not_a_zip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.fw");
    fs::write(&bogus, b"<!DOCTYPE html><html>404</html>").unwrap();
    let img = dir.path().join("disk.img");
    File::create(&img).unwrap().set_len(4 * MIB).unwrap();
    let mut target = ImageFile::open(&img).unwrap();
    let e = apply::apply(
        File::open(&bogus).unwrap(),
        &mut target,
        &ApplyOptions::new("complete"),
        &mut Silent,
    )
    .unwrap_err();
    assert_eq!(e.class(), "corrupt", "{e}");
    assert!(fs::read(&img).unwrap().iter().all(|&b| b == 0));
}

/// A failed upgrade of an installed disk leaves it booting the old slot.
#[test]
fn failed_upgrade_keeps_the_installed_slot() {
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("installed.img");
    File::create(&installed).unwrap().set_len(1 << 30).unwrap();
    let mut opts = ApplyOptions::new("complete");
    opts.vars.insert("NERVES_SERIAL_NUMBER".into(), "LT-0001".into());
    let mut target = ImageFile::open(&installed).unwrap();
    apply::apply(
        File::open(fw("02-x86_64-ab-mbr.fw")).unwrap(),
        &mut target,
        &opts,
        &mut Silent,
    )
    .unwrap();
    drop(target);
    // 05-corrupt-resource is 02 v1 with a corrupt rootfs: `upgrade` picks upgrade.b.
    let e = refuse_on(
        "05-corrupt-resource.fw",
        Some(&installed),
        0,
        ApplyOptions::new("upgrade"),
    );
    assert!(matches!(e, ApplyError::HashMismatch { .. }), "{e}");
}
