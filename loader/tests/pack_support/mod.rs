//! Helpers for the `loader pack` tests: a working copy of the corpus
//! inputs (plus the sparse file 06 needs), the corpus cases, destinations
//! and the image comparison tool.

#![allow(dead_code)] // each test uses a different part

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::bundle::open::read_head;
use loader::bundle::zip::ZipWalker;
use sha2::{Digest, Sha256};

/// `SOURCE_DATE_EPOCH` the corpus bundles were made with.
pub const CORPUS_EPOCH: u64 = 1_700_000_000;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fw")
}

/// `len` bytes of SHA-256("<name>:0") ‖ SHA-256("<name>:1") ‖ …, the way
/// the corpus inputs were generated.
pub fn corpus_bytes(name: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u64;
    while out.len() < len {
        out.extend_from_slice(&Sha256::digest(format!("{name}:{counter}").as_bytes()));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// A copy of the corpus confs, `inputs/` and `keys/`, plus
/// `inputs/grub.img` when missing and `inputs/sparse-2MiB.img` as the corpus README describes it: 2 MiB, 64 KiB
/// of data at 0 and at 1 MiB, holes elsewhere (its bytes are
/// SHA-256("sparse-a:N") and SHA-256("sparse-b:N"), which reproduces fwup's
/// hash and image).
pub fn corpus_workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["inputs", "keys"] {
        fs::create_dir(dir.path().join(sub)).expect("mkdir");
        for entry in fs::read_dir(fixtures().join(sub)).expect("read_dir") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).expect("copy");
        }
    }
    for conf in corpus_confs() {
        fs::copy(fixtures().join(&conf), dir.path().join(&conf)).expect("copy conf");
    }
    // `*.img` is git-ignored, so the fixture copy may lack grub.img; it is
    // generated the same way as the other corpus inputs.
    let grub = dir.path().join("inputs/grub.img");
    if !grub.exists() {
        fs::write(&grub, corpus_bytes("grub.img", 32768)).expect("write grub.img");
    }
    let sparse = File::create(dir.path().join("inputs/sparse-2MiB.img")).expect("create");
    sparse.set_len(2 << 20).expect("set_len");
    sparse.write_all_at(&corpus_bytes("sparse-a", 65536), 0).expect("write");
    sparse
        .write_all_at(&corpus_bytes("sparse-b", 65536), 1 << 20)
        .expect("write");
    dir
}

/// Whether the filesystem of `path` reports holes (SEEK_DATA).
pub fn has_holes(path: &Path) -> bool {
    let file = File::open(path).expect("open");
    matches!(
        nix::unistd::lseek(&file, 0, nix::unistd::Whence::SeekHole),
        Ok(n) if (n as u64) < file.metadata().expect("metadata").len()
    )
}

/// The `.conf` files of the corpus, sorted.
pub fn corpus_confs() -> Vec<String> {
    let mut confs: Vec<String> = fs::read_dir(fixtures())
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    confs.sort();
    confs
}

/// Signature (if any) and meta.conf of a bundle.
pub fn bundle_head(path: &Path) -> (Option<Vec<u8>>, Vec<u8>) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut walker = ZipWalker::new(file);
    let head = read_head(&mut walker).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (head.signature, head.meta_conf)
}

/// Every entry's name and data, in order.
pub fn bundle_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut walker = ZipWalker::new(File::open(path).expect("open"));
    let mut entries = Vec::new();
    while let Some(mut entry) = walker.next_entry().expect("entry") {
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        entries.push((entry.name().to_string(), data));
    }
    entries
}

/// The raw local header (fixed part, name, extra fields) of every entry:
/// everything fwup's libarchive writes before an entry's data.
pub fn local_headers(path: &Path) -> Vec<Vec<u8>> {
    let file = File::open(path).expect("open");
    let mut offsets = Vec::new();
    let mut walker = ZipWalker::new(File::open(path).expect("open"));
    while let Some(entry) = walker.next_entry().expect("entry") {
        offsets.push(entry.header_offset());
    }
    offsets
        .into_iter()
        .map(|offset| {
            let mut fixed = [0u8; 30];
            file.read_exact_at(&mut fixed, offset).expect("header");
            let len = 30
                + usize::from(u16::from_le_bytes([fixed[26], fixed[27]]))
                + usize::from(u16::from_le_bytes([fixed[28], fixed[29]]));
            let mut header = vec![0u8; len];
            file.read_exact_at(&mut header, offset).expect("header");
            header
        })
        .collect()
}

/// Runs the `loader` binary; (success, stdout + stderr).
pub fn loader(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run loader");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}
