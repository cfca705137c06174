//! Rebuilds the FAT volumes of the fwup corpus with `formats::fat` and holds
//! them against what fwup 1.16 wrote (`tests/fixtures/fw/expected`):
//! imgcompare must say `identical` or `equivalent` with our volume spliced
//! into a copy of the expected image, fsck.fat must find nothing it does not
//! also find on fwup's volume, and the volume bytes must be equal.

mod fat_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use fat_support::{differing_bytes, expected_image, extract_volume, fsck, imgcompare, input, run, FileMedium};
use loader::formats::fat::{self, Fat};
use loader::formats::Medium;

const BLOCK: u64 = 512;

/// A FAT volume of a case: first block and block count.
#[derive(Clone, Copy)]
struct Vol(u64, u64);

/// What our volumes start from: a blank sparse image, or the expected
/// result of an earlier case (upgrades).
enum Start<'a> {
    Blank,
    ResultOf(&'a str),
}

/// Builds the case's volumes with `build`, splices them into the expected
/// image, and checks verdict, fsck and bytes.
fn check_case(case: &str, start: Start, vols: &[Vol], build: impl FnOnce(&mut dyn Medium)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = expected_image(case, dir.path());
    let size = fs::metadata(&expected).expect("stat").len();
    let ours_path = dir.path().join("ours.img");
    let mut ours = match start {
        Start::Blank => FileMedium::create(&ours_path, size),
        Start::ResultOf(base) => {
            let base = expected_image(base, dir.path());
            copy_sparse(&base, &ours_path);
            FileMedium::open(&ours_path)
        }
    };
    build(&mut ours);

    let actual = dir.path().join("actual.img");
    copy_sparse(&expected, &actual);
    let mut spliced = FileMedium::open(&actual);
    let mut fwups = FileMedium::open(&expected);
    let mut report = Vec::new();
    for &Vol(block, count) in vols {
        let mine = ours.read_range(block * BLOCK, (count * BLOCK) as usize);
        spliced.write_at(block * BLOCK, &mine).expect("splice");
        let theirs = fwups.read_range(block * BLOCK, mine.len());
        let diffs = differing_bytes(&mine, &theirs);
        eprintln!(
            "{case}: FAT at block {block}: {} byte(s) differ from fwup's, first at {:?}",
            diffs.len(),
            &diffs[..diffs.len().min(8)]
        );
        report.push((block, diffs.len()));

        let ours_vol = extract_volume(&ours_path, block, count, &dir.path().join("ours.vol"));
        let fwup_vol = extract_volume(&expected, block, count, &dir.path().join("fwup.vol"));
        let (_, our_problems) = fsck(&ours_vol);
        let (_, fwup_problems) = fsck(&fwup_vol);
        assert_eq!(
            our_problems, fwup_problems,
            "{case}: fsck.fat -n finds different problems in our volume at block {block}"
        );
    }
    drop(spliced);

    let zst = fat_support::fixtures().join("expected").join(format!("{case}.img.zst"));
    let (verdict, text) = imgcompare(&zst, &actual);
    eprintln!("{case}: imgcompare: {verdict}");
    assert!(
        verdict == "identical" || verdict == "equivalent",
        "{case}: imgcompare says {verdict}:\n{text}"
    );
    for (block, n) in report {
        assert_eq!(
            n, 0,
            "{case}: volume at block {block} is {verdict} but not byte-identical"
        );
    }
}

fn copy_sparse(from: &Path, to: &Path) {
    let out = run(Command::new("cp").arg("--sparse=always").arg(from).arg(to));
    assert!(out.status.success(), "cp: {}", String::from_utf8_lossy(&out.stderr));
}

fn write(fat: &mut Fat, m: &mut dyn Medium, path: &str, data: &[u8]) {
    let mut w = fat.write_file(m, path).expect("open for writing");
    w.write(data).expect("write");
    w.finish().expect("finish");
}

/// 02/03 `complete`: boot partition at block 4096, 31232 blocks.
fn nerves_boot(m: &mut dyn Medium, label: Option<&str>, grub_cfg: &str) {
    let mut boot = fat::mkfs(m, 4096 * BLOCK, 31232).expect("mkfs");
    if let Some(label) = label {
        boot.set_label(m, label).expect("label");
    }
    boot.mkdir(m, "/boot").expect("mkdir /boot");
    boot.mkdir(m, "/boot/grub").expect("mkdir /boot/grub");
    write(&mut boot, m, "/boot/grub/grub.cfg", &input(grub_cfg));
    write(&mut boot, m, "/boot/grub/grubenv", &input("grubenv_a_valid"));
}

#[test]
fn mbr_complete_boot_volume_matches_fwup() {
    check_case("02-complete", Start::Blank, &[Vol(4096, 31232)], |m| {
        nerves_boot(m, None, "grub.cfg")
    });
}

#[test]
fn gpt_complete_labelled_boot_volume_matches_fwup() {
    check_case("03-complete", Start::Blank, &[Vol(4096, 31232)], |m| {
        nerves_boot(m, Some("BOOT"), "grub-gpt.cfg")
    });
}

#[test]
fn upgrades_rewrite_grubenv_like_fwup() {
    let rewrite = |env: &'static str| {
        move |m: &mut dyn Medium| {
            let mut boot = Fat::open(m, 4096 * BLOCK).expect("mount fwup's volume");
            write(&mut boot, m, "/boot/grub/grubenv", &input(env));
        }
    };
    check_case(
        "02-up1-v2-to-b",
        Start::ResultOf("02-complete"),
        &[Vol(4096, 31232)],
        rewrite("grubenv_b"),
    );
    check_case(
        "02-up2-v1-to-a",
        Start::ResultOf("02-up1-v2-to-b"),
        &[Vol(4096, 31232)],
        rewrite("grubenv_a"),
    );
}

/// 06's `complete` task: every fat_* action, two volumes, in conf order.
fn actions_zoo(m: &mut dyn Medium) {
    let (boot_at, data_at) = (2048 * BLOCK, 10240 * BLOCK);
    let mut boot = fat::mkfs(m, boot_at, 8192).expect("mkfs boot");
    boot.set_label(m, "ZOOBOOT").expect("label");
    let mut data = fat::mkfs(m, data_at, 8192).expect("mkfs data");
    boot.mkdir(m, "/dir").expect("mkdir");
    boot.mkdir(m, "/dir").expect("mkdir of an existing directory succeeds");
    let config = b"# generated by fwup from a contents= string\nversion=1\nname=unset\n";
    write(&mut boot, m, "config.txt", config);
    write(&mut boot, m, "notes.txt", &input("notes.txt"));
    write(&mut data, m, "/extra.bin", &input("extra.bin"));
    boot.cp(m, "config.txt", "config.bak").expect("cp");
    fat::copy_between(m, &mut boot, "config.txt", &mut data, "config-copy.txt").expect("cp across");
    boot.mv(m, "config.bak", "config.old", false).expect("mv");
    boot.touch(m, "/dir/empty.txt").expect("touch");
    boot.touch(m, "victim.txt").expect("touch");
    boot.mv(m, "config.old", "victim.txt", true).expect("mv!");
    boot.attrib(m, "victim.txt", "RH".parse().expect("attrs"))
        .expect("attrib");
    boot.rm(m, "does-not-exist.txt", false)
        .expect("rm of a missing file succeeds");
}

#[test]
fn actions_zoo_volumes_match_fwup() {
    check_case(
        "06-complete",
        Start::Blank,
        &[Vol(2048, 8192), Vol(10240, 8192)],
        actions_zoo,
    );
}

#[test]
fn guard_task_touch_matches_fwup() {
    check_case("06-guard", Start::ResultOf("06-complete"), &[Vol(2048, 8192)], |m| {
        let mut boot = Fat::open(m, 2048 * BLOCK).expect("mount");
        assert!(boot.file_contains(m, "config.txt", b"version=1").expect("read"));
        assert!(!boot.file_contains(m, "config.txt", b"version=2").expect("read"));
        assert!(boot.exists(m, "/dir/empty.txt").expect("stat"));
        boot.touch(m, "guard-ran.txt").expect("touch");
    });
}

#[test]
fn reads_fwups_volumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = expected_image("06-complete", dir.path());
    let mut m = FileMedium::open(&image);
    let mut boot = Fat::open(&mut m, 2048 * BLOCK).expect("mount boot");
    assert_eq!(boot.label(&mut m).expect("label").as_deref(), Some("ZOOBOOT"));
    let names: Vec<String> = boot
        .list(&mut m, "/")
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["dir", "config.txt", "notes.txt", "victim.txt"]);
    let victim = boot.stat(&mut m, "VICTIM.TXT").expect("stat").expect("exists");
    assert_eq!(victim.attributes, 0x23, "R, H and A");
    let mut data = Fat::open(&mut m, 10240 * BLOCK).expect("mount data");
    assert_eq!(
        data.read_file(&mut m, "/extra.bin", usize::MAX).expect("read"),
        input("extra.bin")
    );
    let copy = data.stat(&mut m, "config-copy.txt").expect("stat").expect("exists");
    assert_eq!((copy.short_name.as_str(), copy.size), ("CONFIG~1.TXT", 65));
}
