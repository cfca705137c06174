//! Any byte string through the streaming ZIP walker: it must return
//! entries or errors, never panic, hang or allocate without bound; and what
//! it returns must not depend on how the bytes arrive or on what the caller
//! does with each entry.
//!
//! Input: one control byte, then the archive. The control byte picks the
//! walker's read-ahead and, per entry, whether it is read to the end, read
//! partly and dropped (the walker drains it), dropped unread, or passed
//! over with `Entry::skip`. Stored entries sized only by their data
//! descriptor, duplicate names and skipped deflate bombs all come from the
//! seeds (`seeds.py`).
//!
//! Checked beyond "no panic":
//! * the walker never consumes more bytes than the archive has;
//! * a name is returned at most once (duplicates are refused);
//! * an entry read to its verified end yields exactly the size its header
//!   declares, when it declares one;
//! * after any error the walker refuses to go on;
//! * reading everything gives the same entries, bytes and outcome with a
//!   4 KiB and a 256 KiB read-ahead, from one slice or in 7-byte pieces.
//!
//! An input whose entries inflate to more than [`INFLATE_CAP`] in all is
//! read once and dropped: deflate expands up to 1032:1, so a 128 KiB input
//! could make every walk inflate ~130 MB, which under ASan takes seconds
//! and spends the run on inflating instead of on the archive's structure.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::io::Read;

use libfuzzer_sys::fuzz_target;
use loader::bundle::zip::ZipWalker;

use common::Trickle;

/// What the walk returned: (name, CRC-32 of the data) per entry, and
/// whether it ended at the central directory.
type Outcome = (Vec<(String, u32)>, bool);

/// Inflated bytes, over all entries, beyond which an input is not walked
/// again (see the module docs).
const INFLATE_CAP: u64 = 16 << 20;

/// The walk's outcome, or `None` once the entries inflated past
/// [`INFLATE_CAP`].
fn read_all(reader: impl Read, capacity: usize) -> Option<Outcome> {
    let mut walker = ZipWalker::with_buffer(reader, capacity);
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut inflated = 0u64;
    loop {
        match walker.next_entry() {
            Ok(Some(mut entry)) => {
                let name = entry.name().to_string();
                let mut crc = crc32fast::Hasher::new();
                loop {
                    match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            crc.update(&buf[..n]);
                            inflated += n as u64;
                            if inflated > INFLATE_CAP {
                                return None;
                            }
                        }
                        Err(_) => return Some((entries, false)),
                    }
                }
                entries.push((name, crc.finalize()));
            }
            Ok(None) => return Some((entries, true)),
            Err(_) => return Some((entries, false)),
        }
    }
}

fn mixed_walk(zip: &[u8], control: u8) {
    let capacity = 4096 << (control & 3);
    let mut walker = ZipWalker::with_buffer(zip, capacity);
    let mut names = HashSet::new();
    let mut buf = vec![0u8; 8192];
    let mut failed = false;
    for index in 0usize.. {
        assert!(walker.bytes_consumed() <= zip.len() as u64);
        let mut entry = match walker.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        };
        let name = entry.name().to_string();
        assert!(names.insert(name.clone()), "entry {name:?} returned twice");
        assert!(entry.header_offset() < zip.len() as u64);
        let declared = entry.uncompressed_size();
        match (usize::from(control >> 2) + index) % 4 {
            0 => {
                let mut total = 0u64;
                loop {
                    match entry.read(&mut buf) {
                        Ok(0) => {
                            if let Some(declared) = declared {
                                assert_eq!(total, declared, "{name}: verified end at the wrong size");
                            }
                            break;
                        }
                        Ok(n) => total += n as u64,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
            }
            1 => {
                if entry.read(&mut buf[..100]).is_err() {
                    failed = true;
                }
            }
            2 => {}
            _ => {
                if entry.skip().is_err() {
                    failed = true;
                }
            }
        }
        if failed {
            break;
        }
    }
    assert!(walker.bytes_consumed() <= zip.len() as u64);
    if failed {
        assert!(walker.next_entry().is_err(), "the walker went on after an error");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, zip)) = data.split_first() else {
        return;
    };
    // First, so an input that inflates past the cap is walked only once.
    let Some(whole) = read_all(zip, 4096) else {
        return;
    };
    mixed_walk(zip, control);
    let whole = Some(whole);
    assert_eq!(read_all(zip, 256 << 10), whole, "outcome depends on the read-ahead");
    let trickle = Trickle { data: zip, chunk: 7 };
    assert_eq!(read_all(trickle, 4096), whole, "outcome depends on the read sizes");
});
