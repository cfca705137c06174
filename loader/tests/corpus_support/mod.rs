//! Runs a table of apply cases made with fwup 1.16 (`cases.tsv` in a
//! fixture folder): the same success/failure as fwup, and for successes an
//! image that `tools/imgcompare` calls identical or equivalent to fwup's.
//! For failures, nothing that can boot was written: the first and last MiB
//! are as they were before.
//!
//! Columns: case, bundle, task, extra args (`-p KEY`, `--unsafe`), env
//! (`K=V …` or `-`), destination before (`sparse:SIZE`, `empty`,
//! `fill:SIZE:HEXBYTE`, `result:CASE`), fwup's exit status, size after,
//! SHA-256 after, expected image (zstd).
//!
//! Needs `zstd`, `python3` and `fsck.fat` (scripts/test installs them).

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::apply::{self, events::Silent, ApplyOptions};
use loader::bundle::signature::PublicKey;
use loader::target::file::ImageFile;

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub struct Case {
    pub name: String,
    pub bundle: String,
    pub task: String,
    pub extra: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub before: String,
    pub exit: i32,
    pub size_after: u64,
    pub expected: String,
}

pub fn cases(dir: &Path) -> Vec<Case> {
    let text = fs::read_to_string(dir.join("cases.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let env = if f[4] == "-" {
                BTreeMap::new()
            } else {
                f[4].split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            Case {
                name: f[0].into(),
                bundle: f[1].into(),
                task: f[2].into(),
                extra: f[3].split_whitespace().map(String::from).collect(),
                env,
                before: f[5].into(),
                exit: f[6].parse().unwrap(),
                size_after: f[7].parse().unwrap(),
                expected: f[9].into(),
            }
        })
        .collect()
}

/// The apply options of a case: its task, environment and fwup flags
/// (`-p KEY`, `--unsafe`; keys are found in `dir`).
pub fn options(dir: &Path, case: &Case) -> ApplyOptions {
    let mut opts = ApplyOptions::new(&case.task);
    opts.vars = case.env.clone();
    let mut args = case.extra.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-p" => {
                let key = dir.join(args.next().unwrap());
                opts.public_keys
                    .push(PublicKey::from_file_or_base64(key.to_str().unwrap()).unwrap());
            }
            "--unsafe" => opts.allow_unsafe = true,
            other => panic!("{}: unknown extra arg {other}", case.name),
        }
    }
    opts
}

/// `4MiB`, `16MiB`, `1GiB`, `64KiB` or a plain byte count.
fn parse_size(text: &str) -> u64 {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (suffix, unit) in units {
        if let Some(n) = text.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * unit;
        }
    }
    text.parse().unwrap_or_else(|_| panic!("size {text}"))
}

/// The destination a case starts from, made in `dir`.
pub fn prepare(case: &Case, dir: &Path, results: &BTreeMap<String, PathBuf>) -> PathBuf {
    let dest = dir.join(format!("{}.img", case.name));
    if let Some(size) = case.before.strip_prefix("sparse:") {
        File::create(&dest).unwrap().set_len(parse_size(size)).unwrap();
    } else if let Some(spec) = case.before.strip_prefix("fill:") {
        let (size, byte) = spec.split_once(':').unwrap();
        let byte = u8::from_str_radix(byte, 16).unwrap();
        fs::write(&dest, vec![byte; parse_size(size) as usize]).unwrap();
    } else if case.before == "empty" {
        File::create(&dest).unwrap();
    } else if let Some(prev) = case.before.strip_prefix("result:") {
        let src = results
            .get(prev)
            .unwrap_or_else(|| panic!("{} needs the result of {prev}", case.name));
        // cp keeps the file sparse.
        let ok = Command::new("cp")
            .arg("--sparse=always")
            .arg(src)
            .arg(&dest)
            .status()
            .unwrap();
        assert!(ok.success());
    } else {
        panic!("unknown destination {}", case.before);
    }
    dest
}

pub fn imgcompare(expected: &Path, actual: &Path) -> (bool, String) {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/imgcompare");
    let out = Command::new("python3")
        .arg(tool)
        .arg(expected)
        .arg(actual)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn read_region(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = File::open(path).unwrap();
    let mut buf = vec![0u8; len as usize];
    let n = f.read_at(&mut buf, offset).unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Applies every case of `fixtures` in order; returns one line per case
/// that differs from fwup.
pub fn run_cases(fixtures: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut results: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases(fixtures) {
        let dest = prepare(&case, dir.path(), &results);
        let before_size = fs::metadata(&dest).unwrap().len();
        let before_head = read_region(&dest, 0, 1 << 20);
        let before_tail = read_region(&dest, before_size.saturating_sub(1 << 20), 1 << 20);

        let bundle = File::open(fixtures.join(&case.bundle)).unwrap();
        let mut target = ImageFile::open(&dest).unwrap();
        let result = apply::apply(bundle, &mut target, &options(fixtures, &case), &mut Silent);
        drop(target);

        let size = fs::metadata(&dest).unwrap().len();
        match (&result, case.exit) {
            (Ok(_), 0) => {
                if size != case.size_after {
                    failures.push(format!("{}: size {size}, fwup {}", case.name, case.size_after));
                }
                let (same, report) = imgcompare(&fixtures.join(&case.expected), &dest);
                if !same {
                    failures.push(format!("{}: image differs from fwup's:\n{report}", case.name));
                }
            }
            (Err(e), 1) => {
                // Nothing bootable: the first and last MiB are untouched.
                if read_region(&dest, 0, 1 << 20) != before_head
                    || read_region(&dest, before_size.saturating_sub(1 << 20), 1 << 20) != before_tail
                {
                    failures.push(format!("{}: failed ({e}) but changed the first or last MiB", case.name));
                }
                println!("{}: refused as expected: {e}", case.name);
            }
            (Ok(_), _) => failures.push(format!("{}: succeeded, fwup failed", case.name)),
            (Err(e), _) => failures.push(format!("{}: failed ({e}), fwup succeeded", case.name)),
        }
        results.insert(case.name.clone(), dest);
    }
    failures
}
