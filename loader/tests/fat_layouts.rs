//! FAT12 and FAT32 volumes, long names, short-name collisions, files over
//! many (and fragmented) clusters, growing directories, and the cost of a
//! large write — each volume checked with fsck.fat and read back by mtools.

mod fat_support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use fat_support::{extract_volume, fsck, mdir, mtype, FileMedium};
use loader::formats::fat::{self, Fat, FatType};
use loader::formats::Medium;

/// Volumes sit at this block of the test images, like a first partition.
const AT: u64 = 2048;

fn image(dir: &Path, blocks: u64) -> (PathBuf, FileMedium) {
    let path = dir.join("disk.img");
    let m = FileMedium::create(&path, (AT + blocks) * 512);
    (path, m)
}

fn put(fat: &mut Fat, m: &mut dyn Medium, path: &str, data: &[u8]) {
    let mut w = fat.write_file(m, path).expect("create");
    w.write(data).expect("write");
    w.finish().expect("finish");
}

fn assert_fsck_clean(image: &Path, blocks: u64) {
    let vol = extract_volume(image, AT, blocks, &image.with_extension("vol"));
    let (clean, problems) = fsck(&vol);
    assert!(clean && problems.is_empty(), "fsck.fat -n: {problems:#?}");
}

/// Deterministic bytes that differ from sector to sector.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn small_volume_is_fat12_and_readable_by_mtools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = 2048;
    let (path, mut m) = image(dir.path(), blocks);
    let mut fat = fat::mkfs(&mut m, AT * 512, blocks).expect("mkfs");
    assert_eq!(fat.fat_type(), FatType::Fat12);
    let boot = m.read_range(AT * 512, 512);
    assert_eq!(&boot[54..62], b"FAT12   ", "fwup's FatFs names the type FAT12");
    fat.mkdir(&mut m, "/efi/boot").expect_err("parent missing");
    fat.mkdir(&mut m, "/efi").expect("mkdir");
    fat.mkdir(&mut m, "/efi/boot").expect("mkdir");
    let kernel = pattern(300_000, 1);
    put(&mut fat, &mut m, "/efi/boot/bootx64.efi", &kernel);
    put(&mut fat, &mut m, "/README", b"hello\n");
    drop(m);
    assert_eq!(mtype(&path, AT * 512, "/efi/boot/bootx64.efi"), kernel);
    assert_eq!(mtype(&path, AT * 512, "/README"), b"hello\n");
    assert_fsck_clean(&path, blocks);
}

#[test]
fn large_volume_is_fat32_with_growing_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = 80_000;
    let (path, mut m) = image(dir.path(), blocks);
    let mut fat = fat::mkfs(&mut m, AT * 512, blocks).expect("mkfs");
    assert_eq!(fat.fat_type(), FatType::Fat32);
    // One-sector clusters hold 16 entries: 40 long names need many clusters,
    // in the root (a cluster chain on FAT32) and in a subdirectory.
    fat.mkdir(&mut m, "/many").expect("mkdir");
    for i in 0..40 {
        put(
            &mut fat,
            &mut m,
            &format!("/Root File Number {i}.txt"),
            format!("root {i}\n").as_bytes(),
        );
        put(
            &mut fat,
            &mut m,
            &format!("/many/Sub File Number {i}.txt"),
            format!("sub {i}\n").as_bytes(),
        );
    }
    let listed = fat.list(&mut m, "/many").expect("list");
    assert_eq!(listed.len(), 40);
    assert_eq!(listed[39].name, "Sub File Number 39.txt");
    drop(m);
    assert_eq!(mtype(&path, AT * 512, "/many/Sub File Number 39.txt"), b"sub 39\n");
    assert_eq!(mtype(&path, AT * 512, "/Root File Number 7.txt"), b"root 7\n");
    assert!(mdir(&path, AT * 512, "/").contains("Root File Number 39.txt"));
    assert_fsck_clean(&path, blocks);
}

#[test]
fn long_names_round_trip_through_mtools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = 8192;
    let (path, mut m) = image(dir.path(), blocks);
    let mut fat = fat::mkfs(&mut m, AT * 512, blocks).expect("mkfs");
    let names = [
        "A Long Name With Spaces.conf",
        "MixedCase.Txt",
        "lower.txt",
        "UPPER.TXT",
        "trailing dots...",
        "x".repeat(200).as_str().to_owned().leak(),
        "dots.in.the.middle.tar.gz",
    ];
    for (i, name) in names.iter().enumerate() {
        put(&mut fat, &mut m, &format!("/{name}"), format!("{i}").as_bytes());
    }
    let listed: Vec<String> = fat
        .list(&mut m, "/")
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    let expected: Vec<String> = names.iter().map(|n| n.trim_end_matches('.').to_string()).collect();
    assert_eq!(listed, expected);
    // Names are found again whatever their case, like FatFs does.
    assert_eq!(fat.read_file(&mut m, "/mixedcase.TXT", 10).expect("read"), b"1");
    let upper = fat.stat(&mut m, "/UPPER.TXT").expect("stat").expect("exists");
    assert_eq!(upper.short_name, "UPPER.TXT");
    let lower = fat.stat(&mut m, "/lower.txt").expect("stat").expect("exists");
    assert_eq!(
        (lower.name.as_str(), lower.short_name.as_str()),
        ("lower.txt", "LOWER.TXT")
    );
    drop(m);
    let listing = mdir(&path, AT * 512, "/");
    for name in &expected {
        assert!(listing.contains(name.as_str()), "mdir lacks {name}:\n{listing}");
    }
    assert_eq!(mtype(&path, AT * 512, "/dots.in.the.middle.tar.gz"), b"6");
    assert_fsck_clean(&path, blocks);
}

#[test]
fn colliding_short_names_get_numbered_then_hashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = 8192;
    let (path, mut m) = image(dir.path(), blocks);
    let mut fat = fat::mkfs(&mut m, AT * 512, blocks).expect("mkfs");
    for i in 0..9 {
        put(&mut fat, &mut m, &format!("/configuration-{i}.json"), &[b'0' + i]);
    }
    let shorts: Vec<String> = fat
        .list(&mut m, "/")
        .expect("list")
        .into_iter()
        .map(|e| e.short_name)
        .collect();
    assert_eq!(
        &shorts[..5],
        [
            "CONFIG~1.JSO",
            "CONFIG~2.JSO",
            "CONFIG~3.JSO",
            "CONFIG~4.JSO",
            "CONFIG~5.JSO"
        ]
    );
    for s in &shorts[5..] {
        assert!(
            !s.starts_with("CONFIG~") && s.contains('~'),
            "hashed short name expected, got {s}"
        );
    }
    let mut unique = shorts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), shorts.len(), "short names must differ: {shorts:?}");
    drop(m);
    assert_eq!(mtype(&path, AT * 512, "/configuration-8.json"), b"8");
    assert_fsck_clean(&path, blocks);
}

#[test]
fn file_over_many_fragmented_clusters_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = 8192;
    let (path, mut m) = image(dir.path(), blocks);
    let mut fat = fat::mkfs(&mut m, AT * 512, blocks).expect("mkfs");
    for i in 0..6 {
        put(&mut fat, &mut m, &format!("/small{i}"), &pattern(700, i));
    }
    fat.rm(&mut m, "/small1", true).expect("rm");
    fat.rm(&mut m, "/small4", true).expect("rm");
    // A fresh mount searches from the start, so the big file fills the holes
    // first and continues after the last small file: three fragments.
    let mut fat = Fat::open(&mut m, AT * 512).expect("remount");
    let big = pattern(1_000_000, 99);
    let mut w = fat.write_file(&mut m, "/big.bin").expect("create");
    for chunk in big.chunks(65_536 + 7) {
        w.write(chunk).expect("write");
    }
    assert_eq!(w.finish().expect("finish"), big.len() as u64);
    assert_eq!(fat.read_file(&mut m, "/big.bin", usize::MAX).expect("read"), big);
    let entry = fat.stat(&mut m, "/big.bin").expect("stat").expect("exists");
    assert_eq!(entry.first_cluster, 4, "first hole (small1's two clusters)");
    drop(m);
    assert_eq!(mtype(&path, AT * 512, "/big.bin"), big);
    assert_fsck_clean(&path, blocks);
}

/// Counts the writes reaching the medium.
struct Counting<'a> {
    inner: &'a mut dyn Medium,
    writes: usize,
}

impl Medium for Counting<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.writes += 1;
        self.inner.write_at(offset, data)
    }
}

#[test]
fn twenty_mib_file_is_written_in_large_runs() {
    let blocks = 100_000;
    let mut disk = vec![0u8; (blocks * 512) as usize];
    let mut fat = fat::mkfs(&mut disk, 0, blocks).expect("mkfs");
    let data = pattern(20 << 20, 7);
    let mut m = Counting {
        inner: &mut disk,
        writes: 0,
    };
    let started = Instant::now();
    let mut w = fat.write_file(&mut m, "/rootfs.img").expect("create");
    for chunk in data.chunks(128 << 10) {
        w.write(chunk).expect("write");
    }
    w.finish().expect("finish");
    let elapsed = started.elapsed();
    eprintln!(
        "20 MiB on FAT32 (1-sector clusters): {elapsed:?}, {} medium writes",
        m.writes
    );
    assert!(m.writes < 400, "{} writes for 20 MiB: data should go in runs", m.writes);
    assert!(elapsed.as_secs() < 20, "took {elapsed:?}");
    assert_eq!(fat.read_file(&mut disk, "/rootfs.img", usize::MAX).expect("read"), data);
}

#[test]
fn failed_write_leaves_a_consistent_fat32_volume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks = 70_000;
    let (path, mut m) = image(dir.path(), blocks);
    let mut fat = fat::mkfs(&mut m, AT * 512, blocks).expect("mkfs");
    assert_eq!(fat.fat_type(), FatType::Fat32);
    let mut w = fat.write_file(&mut m, "/too-big").expect("create");
    let err = w.write(&vec![0x5A; 40 << 20]).expect_err("40 MiB cannot fit in 34 MiB");
    assert!(err.to_string().ends_with("volume full"), "{err}");
    drop(w);
    // The dropped writer's clusters are not committed; the FSInfo free
    // count written by the next operation must still be right.
    put(&mut fat, &mut m, "/after.txt", b"fine\n");
    drop(m);
    assert_eq!(mtype(&path, AT * 512, "/after.txt"), b"fine\n");
    assert_fsck_clean(&path, blocks);
}
