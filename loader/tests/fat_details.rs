//! FatFs details that show in fwup's volumes: the label only in the root
//! directory, guards' view of files, sparse writes, the sector buffer's
//! leftover bytes, next-fit allocation over a kept mount, CP850 names.

use loader::formats::fat::{self, Fat, FatErrorKind};
use loader::formats::Medium;

const AT: u64 = 4096 * 512;
const BLOCKS: u64 = 8192;

fn volume() -> (Vec<u8>, Fat) {
    let mut disk = vec![0u8; (AT + BLOCKS * 512) as usize];
    let fat = fat::mkfs(&mut disk, AT, BLOCKS).expect("mkfs");
    (disk, fat)
}

fn put(fat: &mut Fat, m: &mut dyn Medium, path: &str, data: &[u8]) {
    let mut w = fat.write_file(m, path).expect("create");
    w.write(data).expect("write");
    w.finish().expect("finish");
}

fn read(fat: &mut Fat, m: &mut dyn Medium, path: &str) -> Vec<u8> {
    fat.read_file(m, path, usize::MAX).expect("read")
}

#[test]
fn label_goes_only_into_the_root_directory() {
    let (mut m, mut fat) = volume();
    fat.set_label(&mut m, "zoo boot").expect("label");
    assert_eq!(fat.label(&mut m).expect("label").as_deref(), Some("ZOO BOOT"));
    assert_eq!(
        &m[AT as usize + 43..AT as usize + 54],
        b"NO NAME    ",
        "boot sector untouched, as FatFs"
    );
    fat.set_label(&mut m, "OTHER").expect("relabel");
    assert_eq!(fat.label(&mut m).expect("label").as_deref(), Some("OTHER"));
    fat.set_label(&mut m, "").expect("remove");
    assert_eq!(fat.label(&mut m).expect("label"), None);
    let err = fat.set_label(&mut m, "TWELVE CHARS").expect_err("too long");
    assert_eq!(
        err.to_string(),
        "FAT at block 4096: invalid volume label `TWELVE CHARS`: longer than 11 characters"
    );
    assert!(fat.set_label(&mut m, "A.B").is_err());
}

#[test]
fn sparse_writes_fill_holes_with_zeros() {
    let (mut m, mut fat) = volume();
    let mut w = fat.write_file(&mut m, "/sparse").expect("create");
    w.write_at(1000, b"x").expect("after a hole");
    w.write_at(5000, b"y").expect("second run");
    w.write_at(6000, &[]).expect("final hole");
    let err = w.write_at(10, b"z").expect_err("no going back");
    assert!(matches!(err.kind, FatErrorKind::WriteBehind { .. }));
    assert_eq!(w.finish().expect("finish"), 6000);
    let data = read(&mut fat, &mut m, "/sparse");
    let mut expected = vec![0u8; 6000];
    expected[1000] = b'x';
    expected[5000] = b'y';
    assert_eq!(data, expected);
}

#[test]
fn last_sector_tail_holds_what_fatfs_leaves_there() {
    let (mut m, mut fat) = volume();
    let data: Vec<u8> = (0..700u32).map(|i| (i % 200) as u8 + 1).collect();
    let mut w = fat.write_file(&mut m, "/chunked").expect("create");
    for chunk in [&data[..100], &data[100..600], &data[600..]] {
        w.write(chunk).expect("write");
    }
    w.finish().expect("finish");
    // FatFs reuses its sector buffer without clearing it: bytes 188..512 of
    // the second sector still hold the first sector's bytes 188..512.
    let first = fat.stat(&mut m, "/chunked").expect("stat").expect("f").first_cluster;
    let at = AT as usize + (1 + 2 * 33 + 32 + (first as usize - 2)) * 512;
    assert_eq!(&m[at..at + 512], &data[..512]);
    assert_eq!(&m[at + 512..at + 700], &data[512..]);
    assert_eq!(&m[at + 700..at + 1024], &data[188..512]);
}

#[test]
fn a_kept_mount_allocates_after_the_last_cluster_like_fwup() {
    let (mut m, mut fat) = volume();
    put(&mut fat, &mut m, "/a", b"a");
    put(&mut fat, &mut m, "/b", b"b");
    fat.rm(&mut m, "/a", true).expect("rm");
    put(&mut fat, &mut m, "/c", b"c");
    let c = fat.stat(&mut m, "/c").expect("stat").expect("c").first_cluster;
    assert_eq!(c, 4, "next-fit after /b, not /a's freed cluster 2");
    let mut fresh = Fat::open(&mut m, AT).expect("remount");
    put(&mut fresh, &mut m, "/d", b"d");
    assert_eq!(fresh.stat(&mut m, "/d").expect("stat").expect("d").first_cluster, 2);
}

#[test]
fn utf8_names_are_stored_as_fwup_stores_them() {
    let (mut m, mut fat) = volume();
    put(&mut fat, &mut m, "/café.txt", b"x");
    let e = &fat.list(&mut m, "/").expect("list")[0];
    // FatFs reads the UTF-8 bytes C3 A9 as the CP850 characters U+251C U+00AE.
    assert_eq!(e.name, "caf\u{251C}\u{00AE}.txt");
    assert_eq!(read(&mut fat, &mut m, "/café.txt"), b"x");
}

#[test]
fn guards_see_files_the_way_fwup_does() {
    let (mut m, mut fat) = volume();
    fat.mkdir(&mut m, "/dir").expect("mkdir");
    put(&mut fat, &mut m, "/cfg", b"version=1\nname=x\n");
    assert!(fat.exists(&mut m, "/cfg").expect("exists"));
    assert!(!fat.exists(&mut m, "/dir").expect("a directory is no file"));
    assert!(!fat.exists(&mut m, "/missing/cfg").expect("missing"));
    assert!(!fat.exists(&mut m, "/in*valid").expect("invalid name"));
    assert!(fat.file_contains(&mut m, "/cfg", b"name=x").expect("scan"));
    assert!(fat.file_contains(&mut m, "/cfg", b"").expect("empty pattern matches"));
    assert!(!fat
        .file_contains(&mut m, "/cfg", &[b'a'; 4096])
        .expect("too long never matches"));
    assert!(fat.file_contains(&mut m, "/missing", b"x").is_err());
    assert_eq!(fat.read_file(&mut m, "/cfg", 7).expect("read"), b"version");
}

#[test]
fn corrupted_volumes_give_errors_not_panics() {
    let mut pristine = vec![0u8; 600 * 512];
    let mut fat = fat::mkfs(&mut pristine, 0, 600).expect("mkfs");
    fat.mkdir(&mut pristine, "/d").expect("mkdir");
    for i in 0..20 {
        let mut w = fat
            .write_file(&mut pristine, &format!("/d/file number {i}"))
            .expect("create");
        w.write(&vec![i as u8; 700 * (i + 1)]).expect("write");
        w.finish().expect("finish");
    }
    let mut x: u32 = 0x1234_5678;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize
    };
    for _ in 0..200 {
        let mut m = pristine.clone();
        // Flip bytes in the boot sector, FATs, root and first data sectors.
        for _ in 0..1 + next() % 16 {
            let at = next() % (120 * 512);
            m[at] ^= 1 << (next() % 8);
        }
        let Ok(mut fat) = Fat::open(&mut m, 0) else {
            continue;
        };
        let _ = fat.list(&mut m, "/d");
        let _ = fat.read_file(&mut m, "/d/file number 7", usize::MAX);
        let _ = fat.mkdir(&mut m, "/d/new dir");
        let _ = fat.rm(&mut m, "/d/file number 3", true);
        let _ = fat.mv(&mut m, "/d/file number 4", "/moved", true);
        let _ = fat.cp(&mut m, "/d/file number 5", "/copy");
        if let Ok(mut w) = fat.write_file(&mut m, "/d/file number 9") {
            let _ = w.write(&[1u8; 3000]);
            let _ = w.finish();
        }
        let _ = fat.set_label(&mut m, "X");
    }
}
