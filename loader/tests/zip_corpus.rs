//! The ZIP walker against the real fwup corpus: every bundle walks to the
//! same entries its central directory lists, and the corrupt and truncated
//! bundles fail the way a user needs to hear about.

mod zip_support;

use std::io::{self, Read};

use loader::bundle::zip::{Method, Place, ZipError, ZipWalker};
use zip_support::{central_directory, read_fixture, walk_all, walk_reader};

/// Every complete bundle of the corpus.
const COMPLETE: &[&str] = &[
    "01-minimal-raw.fw",
    "02-x86_64-ab-mbr.fw",
    "02-x86_64-ab-mbr-v2.fw",
    "03-x86_64-ab-gpt.fw",
    "03-x86_64-ab-gpt-v2.fw",
    "04-signed.fw",
    "04-signed-tampered-data.fw",
    "04-signed-tampered-meta.fw",
    "05-corrupt-resource.fw",
    "05-corrupt-late.fw",
    "05-large-base.fw",
    "06-actions-zoo.fw",
];

#[test]
fn every_corpus_bundle_walks_to_its_central_directory_listing() {
    for name in COMPLETE {
        let zip = read_fixture(name);
        let entries = walk_all(&zip).unwrap_or_else(|e| panic!("{name}: {e}"));
        let listed = central_directory(&zip);
        let walked: Vec<_> = entries
            .iter()
            .map(|(n, data)| zip_support::Listed {
                name: n.clone(),
                uncompressed: data.len() as u64,
                crc: crc32fast::hash(data),
            })
            .collect();
        assert_eq!(walked, listed, "{name}");
    }
}

#[test]
fn bundle_02_has_the_entries_the_corpus_readme_lists() {
    let entries = walk_all(&read_fixture("02-x86_64-ab-mbr.fw")).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, usize)> = entries.iter().map(|(n, d)| (n.as_str(), d.len())).collect();
    assert_eq!(
        got,
        [
            ("meta.conf", 7338),
            ("data/grub.img", 32768),
            ("data/grub.cfg", 371),
            ("data/rootfs.img", 69632),
            ("data/grubenv_a_valid", 1024),
            ("data/grubenv_a", 1024),
            ("data/grubenv_b", 1024),
        ]
    );
    // The resource bytes are the input files fwup zipped.
    let rootfs = std::fs::read(zip_support::fixture("inputs/rootfs-v1.squashfs")).unwrap_or_default();
    assert!(entries[3].1 == rootfs, "data/rootfs.img is inputs/rootfs-v1.squashfs");
}

#[test]
fn signed_bundle_starts_with_a_stored_signature_whose_size_is_in_the_header() {
    // fwup (libarchive) sets the descriptor flag on every entry, but writes
    // the stored signature's size into the local header too, so it can be
    // delimited while streaming.
    let zip = read_fixture("04-signed.fw");
    assert_eq!(&zip[6..8], &[8, 0], "flag bit 3 on meta.conf.ed25519");
    let mut walker = ZipWalker::new(&zip[..]);
    let Ok(Some(mut entry)) = walker.next_entry() else {
        panic!("no first entry")
    };
    assert_eq!(entry.name(), "meta.conf.ed25519");
    assert_eq!(entry.method(), Some(Method::Stored));
    assert_eq!(
        (entry.compressed_size(), entry.uncompressed_size()),
        (Some(64), Some(64))
    );
    let mut sig = Vec::new();
    entry.read_to_end(&mut sig).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sig.len(), 64);
    let Ok(Some(meta)) = walker.next_entry() else {
        panic!("no meta.conf")
    };
    assert_eq!(meta.name(), "meta.conf");
    assert_eq!(meta.method(), Some(Method::Deflated));
    assert_eq!(
        meta.compressed_size(),
        None,
        "fwup leaves the compressed size to the descriptor"
    );
    assert_eq!(meta.uncompressed_size(), Some(473));
}

/// Walks `zip` reading every entry; the first error (typed) with the names
/// of the entries that completed before it.
fn first_error(zip: &[u8]) -> (Vec<String>, ZipError) {
    let mut walker = ZipWalker::new(zip);
    let mut done = Vec::new();
    loop {
        match walker.next_entry() {
            Ok(Some(mut entry)) => {
                let name = entry.name().to_string();
                if let Err(e) = io::copy(&mut entry, &mut io::sink()) {
                    let typed = ZipError::from_io(&e).map(|z| z.to_string()).unwrap_or_default();
                    assert_eq!(typed, e.to_string(), "the io::Error wraps the typed error");
                    match e.into_inner().map(|inner| inner.downcast::<ZipError>()) {
                        Some(Ok(typed)) => return (done, *typed),
                        other => panic!("entry error is not a ZipError: {other:?}"),
                    }
                }
                done.push(name);
            }
            Ok(None) => panic!("walk succeeded; entries {done:?}"),
            Err(e) => return (done, e),
        }
    }
}

#[test]
fn corrupt_zip_byte_fails_on_rootfs_with_a_crc_or_deflate_error() {
    let (done, err) = first_error(&read_fixture("05-corrupt-zipbyte.fw"));
    assert_eq!(done, ["meta.conf", "data/grub.img", "data/grub.cfg"]);
    match &err {
        ZipError::BadCrc { entry, .. } | ZipError::CorruptDeflate { entry, .. } => {
            assert_eq!(entry, "data/rootfs.img")
        }
        other => panic!("expected a CRC or deflate error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.starts_with("ZIP entry `data/rootfs.img`: "), "{text}");
}

#[test]
fn corrupt_zip_byte_is_also_caught_when_the_entry_is_skipped_unread() {
    let zip = read_fixture("05-corrupt-zipbyte.fw");
    let mut walker = ZipWalker::new(&zip[..]);
    let mut seen = Vec::new();
    let err = loop {
        match walker.next_entry() {
            Ok(Some(entry)) => seen.push(entry.name().to_string()),
            Ok(None) => panic!("skipping must still check every entry"),
            Err(e) => break e,
        }
    };
    assert_eq!(seen.last().map(String::as_str), Some("data/rootfs.img"));
    assert!(err.to_string().contains("`data/rootfs.img`"), "{err}");
    assert!(
        matches!(walker.next_entry(), Err(ZipError::AfterFailure)),
        "no walking on after an error"
    );
}

#[test]
fn truncated_bundles_fail_as_truncated_naming_the_entry() {
    for (name, entry, size) in [
        ("05-truncated.fw", "data/rootfs.img", 60000),
        ("05-truncated-meta.fw", "meta.conf", 1000),
    ] {
        let (_, err) = first_error(&read_fixture(name));
        assert!(err.is_truncation(), "{name}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!("the bundle is truncated: it ends at byte {size}, inside the data of ZIP entry `{entry}`"),
            "{name}"
        );
        assert!(matches!(
            err,
            ZipError::Truncated {
                place: Place::EntryData { .. },
                ..
            }
        ));
    }
}

#[test]
fn python_zipfile_bundle_without_descriptors_walks() {
    // 05-corrupt-resource was re-zipped by Python: sizes in the headers, no
    // descriptors. Its ZIP CRCs are valid (only fwup's BLAKE2b catches the
    // flipped byte), so the walk succeeds.
    let zip = read_fixture("05-corrupt-resource.fw");
    assert_eq!(&zip[6..8], &[0, 0], "no descriptor flag");
    let entries = walk_all(&zip).unwrap_or_else(|e| panic!("{e}"));
    let rootfs = entries
        .iter()
        .find(|(n, _)| n == "data/rootfs.img")
        .map(|(_, d)| d.clone());
    let original = walk_all(&read_fixture("02-x86_64-ab-mbr.fw"))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|(n, _)| n == "data/rootfs.img")
        .map(|(_, d)| d);
    let (Some(rootfs), Some(original)) = (rootfs, original) else {
        panic!("rootfs.img missing")
    };
    let differing: Vec<usize> = (0..rootfs.len()).filter(|&i| rootfs[i] != original[i]).collect();
    assert_eq!(differing, [40000], "exactly the corrupted byte differs");
}

/// A source that hands out at most 7 bytes per read: every header and
/// descriptor straddles reads.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn tiny_reads_from_the_source_give_the_same_walk() {
    let zip = read_fixture("06-actions-zoo.fw");
    let direct = walk_all(&zip);
    let trickled = walk_reader(Trickle(&zip));
    assert!(direct.is_ok());
    assert_eq!(direct, trickled);
}

#[test]
fn bytes_consumed_tracks_headers_and_stops_at_the_central_directory() {
    let zip = read_fixture("01-minimal-raw.fw");
    let mut walker = ZipWalker::new(&zip[..]);
    let mut offsets = Vec::new();
    while let Ok(Some(mut entry)) = walker.next_entry() {
        offsets.push(entry.header_offset());
        let _ = io::copy(&mut entry, &mut io::sink());
    }
    // From the corpus layout: meta.conf at 0, payload.bin at 377, the
    // central directory at 100494 (+4 for its signature, read to see it).
    assert_eq!(offsets, [0, 377]);
    assert_eq!(walker.bytes_consumed(), 100494 + 4);
    assert!(matches!(walker.next_entry(), Ok(None)), "the walk stays finished");
}
