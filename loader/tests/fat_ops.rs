//! fwup's semantics of the `fat_*` actions: which cases succeed silently,
//! which fail and with what message.

mod fat_support;

use loader::formats::fat::{self, Attributes, Fat, FatErrorKind};
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
fn errors_name_the_volume_and_the_missing_directory() {
    let (mut m, mut fat) = volume();
    fat.mkdir(&mut m, "/boot").expect("mkdir");
    let err = fat
        .write_file(&mut m, "/boot/grub/grub.cfg")
        .expect_err("no /boot/grub");
    assert_eq!(err.to_string(), "FAT at block 4096: /boot/grub: no such directory");
    put(&mut fat, &mut m, "/boot/file", b"x");
    let err = fat
        .mkdir(&mut m, "/boot/file/sub")
        .expect_err("file is not a directory");
    assert_eq!(err.to_string(), "FAT at block 4096: /boot/file: not a directory");
    let err = fat.write_file(&mut m, "/bad:name").expect_err("invalid");
    assert!(matches!(err.kind, FatErrorKind::InvalidName { .. }), "{err}");
}

#[test]
fn mounting_something_else_fails_clearly() {
    let mut zeros = vec![0u8; 1 << 20];
    let err = Fat::open(&mut zeros, 0).expect_err("no FAT");
    assert!(
        err.to_string().starts_with("FAT at block 0: not a FAT filesystem"),
        "{err}"
    );
    let mut mbr = vec![0u8; 1 << 20];
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr[446 + 8] = 1; // a partition at sector 1 that holds no FAT either
    assert!(matches!(
        Fat::open(&mut mbr, 0).map(|_| ()).expect_err("must fail").kind,
        FatErrorKind::NotFat { .. }
    ));
    let err = fat::mkfs(&mut zeros, 0, 100).expect_err("too small");
    assert_eq!(
        err.to_string(),
        "FAT at block 0: cannot format 100 blocks as FAT: FatFs needs at least 128 blocks"
    );
}

#[test]
fn mkdir_accepts_an_existing_directory_only() {
    let (mut m, mut fat) = volume();
    fat.mkdir(&mut m, "/dir").expect("mkdir");
    let before = m.clone();
    fat.mkdir(&mut m, "dir/").expect("again is fine");
    assert!(before == m, "a second mkdir changes nothing");
    put(&mut fat, &mut m, "/file", b"x");
    assert!(matches!(
        fat.mkdir(&mut m, "/file").expect_err("must fail").kind,
        FatErrorKind::AlreadyExists { .. }
    ));
    assert!(matches!(
        fat.mkdir(&mut m, "/").expect_err("must fail").kind,
        FatErrorKind::AlreadyExists { .. }
    ));
}

#[test]
fn rm_is_quiet_about_missing_files_unless_told() {
    let (mut m, mut fat) = volume();
    fat.rm(&mut m, "/nope.txt", false).expect("fat_rm of a missing file");
    fat.rm(&mut m, "/no/such/dir/file", false)
        .expect("missing directory too");
    let err = fat.rm(&mut m, "/nope.txt", true).expect_err("fat_rm!");
    assert_eq!(err.to_string(), "FAT at block 4096: /nope.txt: no such file");
    fat.mkdir(&mut m, "/d").expect("mkdir");
    put(&mut fat, &mut m, "/d/f", b"x");
    assert!(matches!(
        fat.rm(&mut m, "/d", false).expect_err("must fail").kind,
        FatErrorKind::DirectoryNotEmpty { .. }
    ));
    fat.attrib(&mut m, "/d/f", "R".parse().expect("attrs")).expect("attrib");
    assert!(matches!(
        fat.rm(&mut m, "/d/f", false).expect_err("must fail").kind,
        FatErrorKind::ReadOnly { .. }
    ));
    fat.attrib(&mut m, "/d/f", Attributes::default()).expect("attrib");
    fat.rm(&mut m, "/d/f", true).expect("rm file");
    fat.rm(&mut m, "/d", true).expect("rm empty directory");
    assert!(fat.list(&mut m, "/").expect("list").is_empty());
    assert!(matches!(
        fat.rm(&mut m, "/", false).expect_err("must fail").kind,
        FatErrorKind::InvalidName { .. }
    ));
}

#[test]
fn mv_refuses_to_overwrite_and_mv_bang_does() {
    let (mut m, mut fat) = volume();
    put(&mut fat, &mut m, "/a.txt", b"aaa");
    put(&mut fat, &mut m, "/b.txt", b"bbb");
    let err = fat.mv(&mut m, "/a.txt", "/b.txt", false).expect_err("exists");
    assert_eq!(err.to_string(), "FAT at block 4096: /b.txt: already exists");
    fat.mv(&mut m, "/a.txt", "/b.txt", true).expect("fat_mv!");
    assert_eq!(read(&mut fat, &mut m, "/b.txt"), b"aaa");
    assert!(!fat.exists(&mut m, "/a.txt").expect("exists"));
    // fwup removes the destination before it finds the source missing.
    let err = fat.mv(&mut m, "/gone.txt", "/b.txt", true).expect_err("no source");
    assert!(matches!(err.kind, FatErrorKind::NotFound { .. }));
    assert!(!fat.exists(&mut m, "/b.txt").expect("exists"));
    // A case-only rename, and moving a directory updates its "..".
    put(&mut fat, &mut m, "/c.txt", b"ccc");
    fat.mv(&mut m, "/c.txt", "/C-Renamed.TXT", false).expect("rename");
    assert_eq!(fat.list(&mut m, "/").expect("list")[0].name, "C-Renamed.TXT");
    fat.mkdir(&mut m, "/x").expect("mkdir");
    fat.mkdir(&mut m, "/y").expect("mkdir");
    put(&mut fat, &mut m, "/y/inner", b"in");
    fat.mv(&mut m, "/y", "/x/y", false).expect("move directory");
    assert_eq!(read(&mut fat, &mut m, "/x/y/inner"), b"in");
    let volume = &m[AT as usize..];
    let x = fat.stat(&mut m.clone(), "/x").expect("stat").expect("x").first_cluster;
    let y = fat
        .stat(&mut m.clone(), "/x/y")
        .expect("stat")
        .expect("y")
        .first_cluster;
    let y_sector = (1 + 2 * 33 + 32 + (y - 2)) as usize * 512;
    let dotdot = &volume[y_sector + 32..y_sector + 64];
    assert_eq!(&dotdot[..2], b"..");
    assert_eq!(u16::from_le_bytes([dotdot[26], dotdot[27]]) as u32, x);
}

#[test]
fn cp_overwrites_and_copies_across_volumes() {
    let (mut m, mut fat) = volume();
    let big: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    put(&mut fat, &mut m, "/src.bin", &big);
    put(&mut fat, &mut m, "/dst.bin", b"old contents");
    fat.cp(&mut m, "/src.bin", "/dst.bin").expect("cp");
    assert_eq!(read(&mut fat, &mut m, "/dst.bin"), big);
    assert!(matches!(
        fat.cp(&mut m, "/missing", "/x").expect_err("must fail").kind,
        FatErrorKind::NotFound { .. }
    ));
    fat.mkdir(&mut m, "/dir").expect("mkdir");
    assert!(matches!(
        fat.cp(&mut m, "/dir", "/x").expect_err("must fail").kind,
        FatErrorKind::IsADirectory { .. }
    ));
    fat.attrib(&mut m, "/dst.bin", "r".parse().expect("attrs"))
        .expect("attrib");
    assert!(matches!(
        fat.cp(&mut m, "/src.bin", "/dst.bin").expect_err("must fail").kind,
        FatErrorKind::ReadOnly { .. }
    ));

    let other_at = AT + BLOCKS * 512;
    m.resize((other_at + 4000 * 512) as usize, 0);
    let mut other = fat::mkfs(&mut m, other_at, 4000).expect("mkfs a FAT12 volume");
    fat::copy_between(&mut m, &mut fat, "/src.bin", &mut other, "/copy.bin").expect("cross copy");
    assert_eq!(read(&mut other, &mut m, "/copy.bin"), big);
    let err = fat::copy_between(&mut m, &mut fat, "/src.bin", &mut other, "/no/dir/x").expect_err("bad dest");
    assert!(
        err.to_string()
            .starts_with(&format!("FAT at block {}:", other_at / 512)),
        "{err}"
    );
}

#[test]
fn write_truncates_and_refuses_read_only_files_and_directories() {
    let (mut m, mut fat) = volume();
    put(&mut fat, &mut m, "/f", &[7u8; 5000]);
    put(&mut fat, &mut m, "/f", b"short");
    assert_eq!(read(&mut fat, &mut m, "/f"), b"short");
    let entry = fat.stat(&mut m, "/f").expect("stat").expect("exists");
    assert_eq!(
        (entry.size, entry.first_cluster),
        (5, 2),
        "truncation frees and reuses the chain"
    );
    fat.attrib(&mut m, "/f", "RHS".parse().expect("attrs")).expect("attrib");
    assert_eq!(fat.stat(&mut m, "/f").expect("stat").expect("f").attributes, 0x27);
    assert!(matches!(
        fat.write_file(&mut m, "/f").expect_err("ro").kind,
        FatErrorKind::ReadOnly { .. }
    ));
    fat.mkdir(&mut m, "/d").expect("mkdir");
    assert!(matches!(
        fat.write_file(&mut m, "/d").expect_err("dir").kind,
        FatErrorKind::IsADirectory { .. }
    ));
    let empty = fat.write_file(&mut m, "/empty").expect("create");
    assert_eq!(empty.finish().expect("finish"), 0);
    assert_eq!(fat.stat(&mut m, "/empty").expect("stat").expect("e").size, 0);
    assert!("RX".parse::<Attributes>().is_err());
}

#[test]
fn touch_creates_only_missing_files() {
    let (mut m, mut fat) = volume();
    put(&mut fat, &mut m, "/keep", b"data");
    fat.touch(&mut m, "/keep").expect("touch existing");
    assert_eq!(read(&mut fat, &mut m, "/keep"), b"data");
    fat.touch(&mut m, "/new").expect("touch new");
    assert_eq!(fat.stat(&mut m, "/new").expect("stat").expect("new").attributes, 0x20);
    fat.mkdir(&mut m, "/d").expect("mkdir");
    assert!(matches!(
        fat.touch(&mut m, "/d").expect_err("must fail").kind,
        FatErrorKind::IsADirectory { .. }
    ));
    assert!(matches!(
        fat.touch(&mut m, "/nodir/x").expect_err("must fail").kind,
        FatErrorKind::NoSuchDirectory { .. }
    ));
}

#[test]
fn full_volume_and_full_root_directory_are_reported() {
    let mut m = vec![0u8; 256 * 512];
    let mut fat = fat::mkfs(&mut m, 0, 256).expect("mkfs");
    let mut w = fat.write_file(&mut m, "/huge").expect("create");
    let err = w.write(&vec![1u8; 256 * 512]).expect_err("does not fit");
    assert_eq!(err.to_string(), "FAT at block 0: volume full");

    let (mut m, mut fat) = volume();
    for i in 0..512 {
        fat.touch(&mut m, &format!("/F{i}")).expect("room for 512 entries");
    }
    let err = fat.touch(&mut m, "/F512").expect_err("root is full");
    assert_eq!(
        err.to_string(),
        "FAT at block 4096: /F512: no room for another entry in the directory"
    );
}
