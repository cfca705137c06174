//! Every apply case of the fwup corpus (`fixtures/fw/cases.tsv`): same
//! success/failure as fwup 1.16, and for successes an image that
//! `tools/imgcompare` calls identical or equivalent to fwup's. For failures,
//! nothing that can boot was written: the first and last MiB, and every
//! byte fwup itself left untouched, are as they were before.
//!
//! Needs `zstd`, `python3` and `fsck.fat` (scripts/test installs them).

#![allow(clippy::unwrap_used)]

mod pack_support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use loader::apply::{self, events::Silent};
use loader::target::file::ImageFile;
use pack_support::{cases, fixtures, imgcompare, options, prepare};

fn read_region(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = File::open(path).unwrap();
    let mut buf = vec![0u8; len as usize];
    let n = f.read_at(&mut buf, offset).unwrap_or(0);
    buf.truncate(n);
    buf
}

#[test]
fn corpus_cases_match_fwup() {
    let dir = tempfile::tempdir().unwrap();
    let mut results: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases() {
        let dest = prepare(&case, dir.path(), &results);
        let before_size = fs::metadata(&dest).unwrap().len();
        let before_head = read_region(&dest, 0, 1 << 20);
        let before_tail = read_region(&dest, before_size.saturating_sub(1 << 20), 1 << 20);

        let bundle = File::open(fixtures().join(&case.bundle)).unwrap();
        let mut target = ImageFile::open(&dest).unwrap();
        let result = apply::apply(bundle, &mut target, &options(&case), &mut Silent);
        drop(target);

        let size = fs::metadata(&dest).unwrap().len();
        match (&result, case.exit) {
            (Ok(_), 0) => {
                if size != case.size_after {
                    failures.push(format!("{}: size {size}, fwup {}", case.name, case.size_after));
                }
                let (same, report) = imgcompare(&fixtures().join(&case.expected), &dest);
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
    assert!(
        failures.is_empty(),
        "{} case(s) differ from fwup:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
