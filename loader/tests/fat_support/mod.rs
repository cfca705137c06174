//! Shared helpers of the FAT tests: a file-backed medium, the fixtures, and
//! the host tools the tests cross-check with (zstd, fsck.fat, mtools,
//! imgcompare). A missing tool fails the test with a message, never skips.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::formats::Medium;

/// A sparse image file as a medium (zeros past the end, like the trait says).
pub struct FileMedium(pub File);

impl FileMedium {
    /// Creates a sparse file of `size` bytes.
    pub fn create(path: &Path, size: u64) -> FileMedium {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("create image");
        f.set_len(size).expect("size image");
        FileMedium(f)
    }

    pub fn open(path: &Path) -> FileMedium {
        FileMedium(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .expect("open image"),
        )
    }

    pub fn read_range(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf).expect("read image");
        buf
    }
}

impl Medium for FileMedium {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        let mut done = 0;
        while done < buf.len() {
            let n = FileExt::read_at(&self.0, &mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        FileExt::write_all_at(&self.0, data, offset)
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fw")
}

pub fn input(name: &str) -> Vec<u8> {
    fs::read(fixtures().join("inputs").join(name)).expect("read input fixture")
}

/// Runs a host tool, failing the test with its output if it cannot run.
pub fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install zstd, dosfstools, mtools)"))
}

/// Decompresses `expected/<case>.img.zst` into `dir` (sparse).
pub fn expected_image(case: &str, dir: &Path) -> PathBuf {
    let src = fixtures().join("expected").join(format!("{case}.img.zst"));
    let dst = dir.join(format!("{case}.img"));
    let out = run(Command::new("zstd")
        .args(["-q", "-d", "-f"])
        .arg(&src)
        .arg("-o")
        .arg(&dst));
    assert!(out.status.success(), "zstd: {}", String::from_utf8_lossy(&out.stderr));
    dst
}

/// Copies `blocks` blocks at block `offset` of an image into its own file.
pub fn extract_volume(image: &Path, offset: u64, blocks: u64, dst: &Path) -> PathBuf {
    let mut src = FileMedium::open(image);
    let bytes = src.read_range(offset * 512, (blocks * 512) as usize);
    fs::write(dst, bytes).expect("write volume copy");
    dst.to_path_buf()
}

/// `fsck.fat -n` on a volume file: (clean, the problem lines it printed).
pub fn fsck(volume: &Path) -> (bool, Vec<String>) {
    let out = run(Command::new("fsck.fat").arg("-n").arg(volume));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let name = volume.display().to_string();
    let problems = text
        .lines()
        .filter(|l| !l.starts_with("fsck.fat ") && !l.starts_with(&name) && !l.trim().is_empty())
        .map(|l| l.to_string())
        .collect();
    (out.status.success(), problems)
}

/// `mtype` of a file in the FAT volume at byte `offset` of an image.
pub fn mtype(image: &Path, offset: u64, path: &str) -> Vec<u8> {
    let spec = format!("{}@@{offset}", image.display());
    let out = run(Command::new("mtype").args(["-i", &spec]).arg(format!("::{path}")));
    assert!(
        out.status.success(),
        "mtype {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `mdir -b` (bare listing with long names) of a directory.
pub fn mdir(image: &Path, offset: u64, path: &str) -> String {
    let spec = format!("{}@@{offset}", image.display());
    let out = run(Command::new("mdir")
        .args(["-i", &spec, "-b", "-a"])
        .arg(format!("::{path}")));
    assert!(
        out.status.success(),
        "mdir {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the corpus' `imgcompare EXPECTED ACTUAL`; returns (verdict, report).
pub fn imgcompare(expected_zst: &Path, actual: &Path) -> (String, String) {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/imgcompare");
    let out = run(Command::new("python3").arg(tool).arg(expected_zst).arg(actual));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let verdict = report.lines().last().unwrap_or("").to_string();
    assert_ne!(
        out.status.code(),
        Some(2),
        "imgcompare failed: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (verdict, report)
}

/// Byte offsets (within the volume) where two volume images differ.
pub fn differing_bytes(a: &[u8], b: &[u8]) -> Vec<usize> {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i)
        .collect()
}
