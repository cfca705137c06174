//! The commit survives a power cut at any write.
//!
//! For every case of the fwup corpus that succeeds (each `complete` and
//! `upgrade`, upgrades applied onto the image the preceding case left, and
//! the 06 task that changes a redundant environment alone), for completes over
//! installed disks of the same and of the other layout, for a redundant
//! environment changed by one, two and three `uboot_setenv`s, and for the
//! example A/B system
//! (`examples/ab-system/fwup.conf` packed with stand-in GRUB and slot
//! images: a complete, two upgrades, a complete over the installed disk,
//! and one more as two-pass mode's second pass installs it),
//! the commit's writes and syncs are recorded, and every cut inside it is
//! replayed as `power_cut_support` describes: every subset of each sync
//! interval's changed sectors (a seeded sample of 1024 where there are
//! more), each also with a torn sector. Each outcome must boot entirely
//! the old selection or entirely the new one (an install that writes the
//! partition table may also leave nothing bootable), and every U-Boot
//! environment must agree with what boots (see `selection::judge`).
//!
//! `POWER_CUT_SEED=N` replays a run; the seed is printed.

#![allow(clippy::unwrap_used)]

mod corpus_support;
mod pack_support;
mod power_cut_support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use corpus_support::{cases, options, prepare};
use loader::apply::{self, ApplyOptions};
use loader::pack::{pack, PackOptions};
use pack_support::{corpus_bytes, fixtures, CORPUS_EPOCH};
use power_cut_support::judge::Outcome;
use power_cut_support::matrix::{self, Report};
use power_cut_support::selection::Layout;
use power_cut_support::{CommitLog, Recorder};

/// Applies `bundle` to `image` while recording the commit, then replays
/// every cut. Returns the report (the image ends as the install left it).
fn install_and_cut(bundle: &Path, image: &Path, opts: &ApplyOptions, seed: u64) -> Report {
    let manifest = {
        let opened = apply::open_bundle(File::open(bundle).unwrap(), opts, &mut apply::events::Silent).unwrap();
        opened.manifest
    };
    let (log, size) = record_install(bundle, image, opts);
    let task_name = log.task.clone().expect("the engine names its task");
    let task = manifest.tasks.iter().find(|t| t.name == task_name).unwrap();
    let layout = Layout::of(&manifest, task, size);
    matrix::run(image, &log, &layout, seed)
}

/// Applies `bundle` to `image`, recording the commit's writes and syncs.
/// Returns the record and the image's size.
fn record_install(bundle: &Path, image: &Path, opts: &ApplyOptions) -> (CommitLog, Option<u64>) {
    let (mut target, mut watch) = Recorder::open(image);
    let size = loader::target::Target::size(&target);
    apply::apply(File::open(bundle).unwrap(), &mut target, opts, &mut watch)
        .unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
    drop(target);
    (watch.take(), size)
}

fn check(results: &mut Vec<String>, failures: &mut Vec<String>, name: &str, report: &Report) {
    let line = format!("{name}: {}", report.summary());
    println!("{line}");
    results.push(line);
    for f in &report.failures {
        failures.push(format!("{name}: {f}"));
    }
    if report.failed > report.failures.len() {
        failures.push(format!("{name}: … {} failed outcomes in all", report.failed));
    }
}

#[test]
fn corpus_commits_survive_a_cut_anywhere() {
    let seed = matrix::seed();
    println!("POWER_CUT_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut images: BTreeMap<String, PathBuf> = BTreeMap::new();
    let (mut results, mut failures) = (Vec::new(), Vec::new());
    for case in cases(&fixtures()) {
        // Every case that installs: the complete and upgrade cases, and the
        // 06 tasks that change a redundant environment alone. Not 06-guard:
        // it creates a FAT directory entry, a multi-byte change inside one
        // sector that fwup's layout gives no atomic form (a torn directory
        // sector can show part of an entry); the upgrades rewrite file data
        // in place, where only one byte decides.
        let needs_missing = case
            .before
            .strip_prefix("result:")
            .is_some_and(|p| !images.contains_key(p));
        if case.exit != 0 || needs_missing {
            continue;
        }
        let image = prepare(&case, dir.path(), &images);
        let bundle = fixtures().join(&case.bundle);
        if case.name == "06-guard" {
            // Only the image it leaves, for the cases after it.
            let mut target = loader::target::file::ImageFile::open(&image).unwrap();
            apply::apply(
                File::open(&bundle).unwrap(),
                &mut target,
                &options(&fixtures(), &case),
                &mut apply::events::Silent,
            )
            .unwrap();
        } else {
            let report = install_and_cut(&bundle, &image, &options(&fixtures(), &case), seed);
            check(&mut results, &mut failures, &case.name, &report);
        }
        images.insert(case.name.clone(), image);
    }
    // Completes over installed disks (not corpus cases: fwup's result is
    // the image of a complete on a blank disk): the same layout, where only
    // the slot switch and the environment change, and the other layout,
    // where the partition table, the boot code and the FAT change too.
    for (name, bundle, over) in [
        ("02-complete-over-installed", "02-x86_64-ab-mbr-v2.fw", "02-up2-v1-to-a"),
        ("03-complete-over-installed", "03-x86_64-ab-gpt-v2.fw", "03-up2-v1-to-a"),
        ("03-complete-over-installed-02", "03-x86_64-ab-gpt.fw", "02-up1-v2-to-b"),
        ("02-complete-over-installed-03", "02-x86_64-ab-mbr.fw", "03-up1-v2-to-b"),
    ] {
        let image = dir.path().join(format!("{name}.img"));
        fs::copy(&images[over], &image).unwrap();
        let report = install_and_cut(&fixtures().join(bundle), &image, &ApplyOptions::new("complete"), seed);
        check(&mut results, &mut failures, name, &report);
    }
    assert!(results.len() >= 20, "too few cases ran: {results:?}");
    assert!(
        failures.is_empty(),
        "POWER_CUT_SEED={seed}: {} case(s) can be cut into a mixed state:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A GRUB environment block as `grub-editenv` writes it.
fn grubenv(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut block = b"# GRUB Environment Block\n".to_vec();
    for (k, v) in vars {
        block.extend_from_slice(format!("{k}={v}\n").as_bytes());
    }
    block.resize(1024, b'#');
    block
}

/// `examples/ab-system/fwup.conf` packed as version 1.0.0 and 2.0.0 with
/// stand-ins for GRUB's images and the slot filesystems (the layout, the
/// environments and the grubenv switch are the real ones).
fn example_bundles(dir: &Path) -> (PathBuf, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let conf = repo.join("examples/ab-system/fwup.conf");
    let mut out = Vec::new();
    for version in ["1.0.0", "2.0.0"] {
        let build = dir.join(format!("build-{version}"));
        fs::create_dir_all(&build).unwrap();
        fs::write(build.join("boot.img"), corpus_bytes("boot.img", 440)).unwrap();
        fs::write(build.join("core.img"), corpus_bytes("core.img", 60 * 1024)).unwrap();
        fs::write(build.join("BOOTX64.EFI"), corpus_bytes("BOOTX64.EFI", 300 * 1024)).unwrap();
        fs::copy(repo.join("examples/ab-system/grub.cfg"), build.join("grub.cfg")).unwrap();
        for (name, boot, valid) in [("a", "0", "0"), ("a_valid", "0", "1"), ("b", "1", "0")] {
            let block = grubenv(&[("boot", boot), ("validated", valid), ("booted_once", valid)]);
            fs::write(build.join(format!("grubenv_{name}")), block).unwrap();
        }
        fs::write(
            build.join("rootfs.squashfs"),
            corpus_bytes(&format!("rootfs-{version}"), 3 << 20),
        )
        .unwrap();
        let bundle = dir.join(format!("ab-{version}.fw"));
        let opts = PackOptions {
            vars: [
                ("NERVES_FW_VERSION", version.to_string()),
                ("EXAMPLE_BUILD_DIR", build.display().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            creation_time: Some(CORPUS_EPOCH),
            ..PackOptions::default()
        };
        pack(&conf, &bundle, &opts).unwrap_or_else(|e| panic!("packing the example {version}: {e}"));
        out.push(bundle);
    }
    (out[0].clone(), out[1].clone())
}

#[test]
fn example_ab_system_commits_survive_a_cut_anywhere() {
    let seed = matrix::seed();
    println!("POWER_CUT_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = example_bundles(dir.path());
    let image = dir.path().join("disk.img");
    File::create(&image).unwrap().set_len(256 << 20).unwrap();
    let (mut results, mut failures) = (Vec::new(), Vec::new());
    for (name, bundle, task) in [
        ("complete 1.0.0 on a blank disk", &v1, "complete"),
        ("upgrade to 2.0.0 (slot b)", &v2, "upgrade"),
        ("upgrade to 1.0.0 (slot a)", &v1, "upgrade"),
        ("upgrade to 2.0.0 (slot b) again", &v2, "upgrade"),
        ("complete 2.0.0 over the installed disk", &v2, "complete"),
    ] {
        let report = install_and_cut(bundle, &image, &ApplyOptions::new(task), seed);
        check(&mut results, &mut failures, name, &report);
    }
    // Two-pass mode's second pass: the old boot records switched off on the
    // disk first, their old bytes held from the start of the install.
    let manifest = apply::open_bundle(
        File::open(&v1).unwrap(),
        &ApplyOptions::new(""),
        &mut apply::events::Silent,
    )
    .unwrap()
    .manifest;
    let mut disk = loader::target::file::ImageFile::open(&image).unwrap();
    let off = loader::install_mode::switch_off::switch_off(&mut disk, &manifest).unwrap();
    drop(disk);
    let mut opts = ApplyOptions::new("complete");
    opts.preload = off.saved;
    let report = install_and_cut(&v1, &image, &opts, seed);
    check(
        &mut results,
        &mut failures,
        "complete 1.0.0 in two passes (switched off)",
        &report,
    );
    assert!(
        failures.is_empty(),
        "POWER_CUT_SEED={seed}: the example A/B system can be cut into a mixed state:\n{}",
        failures.join("\n")
    );
}

/// A redundant environment that changes alone switches atomically, however
/// many `uboot_setenv`s leave fwup's copies with the new environment in the
/// copy read now or in the other.
#[test]
fn redundant_environment_switches_atomically() {
    let seed = matrix::seed();
    println!("POWER_CUT_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redundant.conf");
    fs::write(
        &conf,
        r#"
meta-product = "redundant environment"
mbr mbr { partition 0 { block-offset = 2048 block-count = 2048 type = 0x83 } }
uboot-environment env { block-offset = 256 block-count = 16 block-offset-redund = 272 }
task complete { on-init { mbr_write(mbr) uboot_clearenv(env) uboot_setenv(env, "slot", "a") } }
task once { on-init { uboot_setenv(env, "slot", "b") } }
task twice { on-init { uboot_setenv(env, "slot", "a") uboot_setenv(env, "version", "2") } }
task thrice { on-init { uboot_setenv(env, "slot", "b") uboot_unsetenv(env, "version") uboot_setenv(env, "n", "3") } }
"#,
    )
    .unwrap();
    let bundle = dir.path().join("redundant.fw");
    pack(&conf, &bundle, &PackOptions::default()).unwrap();
    let image = dir.path().join("disk.img");
    File::create(&image).unwrap().set_len(4 << 20).unwrap();
    let (mut results, mut failures) = (Vec::new(), Vec::new());
    for task in [
        "complete", "once", "twice", "thrice", "twice", "once", "thrice", "thrice",
    ] {
        let report = install_and_cut(&bundle, &image, &ApplyOptions::new(task), seed);
        assert!(!report.counts.contains_key(&Outcome::NothingBootable) || task == "complete");
        check(&mut results, &mut failures, task, &report);
    }
    assert!(
        failures.is_empty(),
        "POWER_CUT_SEED={seed}: a redundant environment can be cut into a mixed state:\n{}",
        failures.join("\n")
    );
}

/// The commit's flushes are what a power cut needs and no more: a first
/// install syncs twice (everything but sector 0, then sector 0 alone, which
/// arms the disk), while a complete over a disk that boots still syncs the
/// streamed data before anything else.
/// The cuts between them are judged by `example_ab_system_commits_survive_a_cut_anywhere`.
#[test]
fn a_first_install_syncs_twice_and_arms_sector_0_last() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = example_bundles(dir.path());
    let image = dir.path().join("disk.img");
    File::create(&image).unwrap().set_len(256 << 20).unwrap();

    let (first, _) = record_install(&v1, &image, &ApplyOptions::new("complete"));
    assert_eq!(
        first.syncs.len(),
        2,
        "a first install syncs twice, after {:?} of {} writes",
        first.syncs,
        first.writes.len()
    );
    assert!(
        first.syncs[0] > 0,
        "no sync before the first write: nothing can boot yet"
    );
    let last: Vec<(u64, usize)> = first.writes[first.syncs[0]..first.syncs[1]]
        .iter()
        .map(|w| (w.offset, w.new.len()))
        .collect();
    assert_eq!(
        last,
        [(0, 512)],
        "sector 0 goes alone, after everything else is durable"
    );
    assert!(
        first.writes[..first.syncs[0]].iter().all(|w| w.offset >= 512),
        "sector 0 is not written before the last step"
    );

    // Over the installed disk only the environment changes (the rest is
    // byte for byte the same): it still waits for the streamed data.
    let (over, _) = record_install(&v2, &image, &ApplyOptions::new("complete"));
    assert_eq!(
        over.syncs.first(),
        Some(&0),
        "over a disk that boots, the streamed data is synced before the commit's first write"
    );
}
