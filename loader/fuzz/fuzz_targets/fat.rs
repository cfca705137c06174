//! Any bytes as a FAT volume, through the project's `formats::fat`: mount,
//! walk the directory tree, read and scan every file, then change the
//! volume the way an `upgrade` task's `fat_*` actions change the boot
//! partition it finds on the disk (mkdir, write, cp, mv, attrib, rm,
//! label), and mount and walk it again.
//!
//! The input is the volume from its boot sector on; blocks past the input
//! read as zeros, and the medium is 1 GiB (writes past it fail like a full
//! disk).
//!
//! Checked beyond "no panic" and "no hang" (cyclic cluster chains,
//! directories that never end): a file read completely returns exactly the
//! size its directory entry gives; a listing never has more entries than a
//! FAT directory can hold; a volume that mounted before the changes still
//! mounts after them.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::formats::fat::{Attributes, Fat};
use loader::formats::Medium;

use common::SparseDisk;

/// FatFs's limit: 2 MiB of 32-byte entries per directory.
const MAX_DIR_ENTRIES: usize = 0x20_0000 / 32;
/// Bounds the work per input: directories visited and bytes read.
const MAX_DIRS: usize = 64;
const MAX_READ: usize = 256 << 10;

fn walk(fat: &mut Fat, m: &mut dyn Medium) {
    let mut dirs = vec![String::new()];
    let mut visited = 0;
    while let Some(dir) = dirs.pop() {
        visited += 1;
        if visited > MAX_DIRS {
            return;
        }
        let path = if dir.is_empty() { "/".to_string() } else { dir.clone() };
        let Ok(entries) = fat.list(m, &path) else {
            continue;
        };
        assert!(entries.len() <= MAX_DIR_ENTRIES);
        for e in entries {
            if e.name.is_empty() || e.name == "." || e.name == ".." || e.name.contains(['/', '\\']) {
                continue;
            }
            let child = format!("{dir}/{}", e.name);
            let _ = fat.stat(m, &child);
            if e.is_dir() {
                if dirs.len() < MAX_DIRS {
                    dirs.push(child);
                }
                continue;
            }
            let _ = fat.exists(m, &child);
            if let Ok(data) = fat.read_file(m, &child, MAX_READ) {
                assert_eq!(data.len(), (e.size as usize).min(MAX_READ), "{child}");
            }
            if (e.size as usize) <= MAX_READ {
                let _ = fat.file_contains(m, &child, b"loader");
            }
        }
    }
}

fn change(fat: &mut Fat, m: &mut dyn Medium) {
    let _ = fat.mkdir(m, "/boot");
    let _ = fat.mkdir(m, "/boot/grub");
    if let Ok(mut w) = fat.write_file(m, "/boot/grub/grubenv") {
        let _ = w.write(&[b'#'; 1024]);
        let _ = w.write_at(3000, b"next_entry=b\n");
        let _ = w.finish();
    }
    let _ = fat.cp(m, "/boot/grub/grubenv", "/Copy of a long name.txt");
    let _ = fat.mv(m, "/Copy of a long name.txt", "/boot/moved", true);
    if let Ok(attrs) = "RHS".parse::<Attributes>() {
        let _ = fat.attrib(m, "/boot/moved", attrs);
    }
    let _ = fat.touch(m, "/boot/zero");
    let _ = fat.rm(m, "/boot/zero", true);
    let _ = fat.set_label(m, "FUZZ");
    let _ = fat.label(m);
}

fuzz_target!(|data: &[u8]| {
    let mut disk = SparseDisk::new(data, 1 << 30);
    let mut fat = match Fat::open(&mut disk, 0) {
        Ok(fat) => fat,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(fat.cluster_count() > 0);
    walk(&mut fat, &mut disk);
    change(&mut fat, &mut disk);
    let mut again = Fat::open(&mut disk, 0).expect("a volume that mounted still mounts after fat_* changes");
    walk(&mut again, &mut disk);
});
