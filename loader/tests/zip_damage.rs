//! Damaged bundles: the corpus cut short and with bits flipped at
//! pseudo-random places (fixed seed, so a failure reproduces). The walker
//! must return an error or the original data, and never panic.

mod zip_support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use loader::bundle::zip::{ZipError, ZipWalker};
use zip_support::{read_fixture, walk_all};

const BUNDLES: &[&str] = &[
    "01-minimal-raw.fw",
    "02-x86_64-ab-mbr.fw",
    "03-x86_64-ab-gpt.fw",
    "04-signed.fw",
    "05-corrupt-resource.fw",
    "06-actions-zoo.fw",
];

/// xorshift64: enough randomness to pick offsets, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Offset of the central directory: the walker stops reading 4 bytes in.
fn central_directory_start(zip: &[u8]) -> usize {
    let eocd = (0..zip.len() - 21)
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .unwrap_or_else(|| panic!("no end record"));
    u32::from_le_bytes([zip[eocd + 16], zip[eocd + 17], zip[eocd + 18], zip[eocd + 19]]) as usize
}

/// Walks without letting a panic escape, so the test can say which input
/// caused it.
fn walk_guarded(zip: &[u8], what: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    catch_unwind(AssertUnwindSafe(|| walk_all(zip))).unwrap_or_else(|_| panic!("the walker panicked on {what}"))
}

/// The typed error of a walk, for checking the kind.
fn typed_error(zip: &[u8]) -> Option<ZipError> {
    let mut walker = ZipWalker::new(zip);
    loop {
        match walker.next_entry() {
            Ok(Some(mut entry)) => {
                if let Err(e) = std::io::copy(&mut entry, &mut std::io::sink()) {
                    return e
                        .into_inner()
                        .and_then(|inner| inner.downcast::<ZipError>().ok())
                        .map(|b| *b);
                }
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

#[test]
fn every_cut_before_the_central_directory_is_a_truncation() {
    let mut rng = Rng(0x5eed_0001);
    for name in BUNDLES {
        let zip = read_fixture(name);
        let needed = central_directory_start(&zip) + 4;
        // Every cut in the first 200 bytes (headers, signature, descriptor
        // boundaries) plus random ones through the rest.
        let cuts = (1..200.min(needed)).chain((0..150).map(|_| 1 + rng.below(needed - 1)));
        for cut in cuts {
            let what = format!("{name} cut at {cut}");
            assert!(walk_guarded(&zip[..cut], &what).is_err(), "{what}: walk succeeded");
            let err = typed_error(&zip[..cut]);
            assert!(err.as_ref().is_some_and(ZipError::is_truncation), "{what}: {err:?}");
        }
        // Cutting inside the central directory loses nothing we read.
        assert!(walk_guarded(&zip[..needed], name).is_ok());
    }
}

#[test]
fn bit_flips_give_an_error_or_the_original_data() {
    let mut rng = Rng(0x5eed_0002);
    for name in BUNDLES {
        let zip = read_fixture(name);
        let original: Vec<Vec<u8>> = walk_all(&zip)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .into_iter()
            .map(|(_, data)| data)
            .collect();
        let walked_region = central_directory_start(&zip) + 4;
        let (mut errors, mut same) = (0, 0);
        for _ in 0..300 {
            let (at, bit) = (rng.below(walked_region), rng.below(8));
            let mut damaged = zip.clone();
            damaged[at] ^= 1 << bit;
            let what = format!("{name} with bit {bit} of byte {at} flipped");
            match walk_guarded(&damaged, &what) {
                Err(_) => errors += 1,
                Ok(entries) => {
                    // Names, timestamps and padding bits are not covered by
                    // any check; the data is.
                    let data: Vec<Vec<u8>> = entries.into_iter().map(|(_, d)| d).collect();
                    assert!(data == original, "{what}: accepted with different data");
                    same += 1;
                }
            }
        }
        // Most of a bundle is entry data, where a flip must be caught.
        assert!(errors > same * 4, "{name}: only {errors} of 300 flips detected");
    }
}

#[test]
fn random_garbage_is_refused_without_panicking() {
    let mut rng = Rng(0x5eed_0003);
    for round in 0..200 {
        let len = rng.below(4096);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        if round % 2 == 0 && len >= 4 {
            // Give it a valid first signature so the header parser runs.
            junk[..4].copy_from_slice(&[0x50, 0x4b, 0x03, 0x04]);
        }
        let result = walk_guarded(&junk, &format!("garbage round {round}"));
        assert!(result.is_err(), "garbage round {round} accepted");
    }
}
