#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use super::*;
use crate::apply::{self, events::Silent, ApplyOptions};
use crate::bundle::manifest::Action;
use crate::target::file::ImageFile;
use crate::target::Target;

const MIB: u64 = 1024 * 1024;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fw")
        .join(name)
}

/// The corpus' A/B bundle (slot a at block 35328, b at 559616).
fn ab_manifest() -> Manifest {
    let file = std::fs::File::open(fixture("02-x86_64-ab-mbr.fw")).unwrap();
    apply::open_bundle(file, &ApplyOptions::new(""), &mut Silent)
        .unwrap()
        .manifest
}

fn task<'m>(manifest: &'m Manifest, name: &str) -> &'m Task {
    manifest.tasks.iter().find(|t| t.name == name).unwrap()
}

/// A 1 GiB image holding the bundle's `complete` install, or blank.
fn disk(installed: bool) -> (tempfile::TempDir, ImageFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    std::fs::File::create(&path).unwrap().set_len(1 << 30).unwrap();
    let mut image = ImageFile::open(&path).unwrap();
    if installed {
        let bundle = std::fs::File::open(fixture("02-x86_64-ab-mbr.fw")).unwrap();
        apply::apply(bundle, &mut image, &ApplyOptions::new("complete"), &mut Silent).unwrap();
    }
    (dir, image)
}

#[test]
fn early_writes_are_raw_writes_memsets_and_trims() {
    let m = ab_manifest();
    let b = streamed_ranges(&m, task(&m, "upgrade.b"));
    assert_eq!(b, [559616 * 512..1083904 * 512, 559616 * 512..(559616 * 512 + 69632)]);
    let complete = streamed_ranges(&m, task(&m, "complete"));
    assert!(
        complete.contains(&(512..512 + 32768)),
        "grub.img at block 1: {complete:?}"
    );
    assert!(complete.contains(&(1608191 * 512..1608192 * 512)), "{complete:?}");
}

#[test]
fn an_upgrade_of_the_other_slot_streams_safely_on_its_own_layout() {
    let m = ab_manifest();
    let (_dir, mut image) = disk(true);
    let size = image.size();
    let why = streams_safely(&m, task(&m, "upgrade.b"), &mut image, size).unwrap();
    assert!(
        why.contains("upgrade.b writes only blocks 559616-1083903") && why.contains("upgrade.a"),
        "{why}"
    );
    let why = streams_safely(&m, task(&m, "provision"), &mut image, size).unwrap();
    assert_eq!(why, "task provision writes nothing before its commit");
}

#[test]
fn a_task_without_slot_siblings_or_touching_a_sibling_slot_does_not() {
    let mut m = ab_manifest();
    let (_dir, mut image) = disk(true);
    let size = image.size();
    let err = streams_safely(&m, task(&m, "complete"), &mut image, size).unwrap_err();
    assert!(err.contains("not one of a set of slot tasks"), "{err}");

    let b = m.tasks.iter_mut().find(|t| t.name == "upgrade.b").unwrap();
    b.on_init.push(Action::Trim {
        block_offset: 40000,
        block_count: 8,
    });
    let err = streams_safely(&m, task(&m, "upgrade.b"), &mut image, size).unwrap_err();
    assert!(
        err.contains("writes blocks 40000-40007, which task upgrade.a also writes"),
        "{err}"
    );
}

#[test]
fn a_disk_whose_layout_is_not_the_bundles_does_not() {
    let m = ab_manifest();
    let (_dir, mut image) = disk(false);
    let size = image.size();
    let err = streams_safely(&m, task(&m, "upgrade.b"), &mut image, size).unwrap_err();
    assert!(err.contains("no partition starting at block"), "{err}");
}

#[test]
fn held_zones_are_cut_out_of_early_writes() {
    let held = [0..MIB, 10 * MIB..11 * MIB];
    let cut = outside(vec![512..2 * MIB, 9 * MIB..12 * MIB, 100..200], &held);
    assert_eq!(cut, [MIB..2 * MIB, 9 * MIB..10 * MIB, 11 * MIB..12 * MIB]);
}
