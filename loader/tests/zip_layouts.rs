//! The ZIP walker on archives built by the test: each layout a writer may
//! produce, and each way an archive can be wrong.

mod zip_support;

use std::io::{self, Read};

use loader::bundle::zip::{SizeKind, ZipError, ZipWalker};
use zip_support::{noise, walk_all, Layout, ZipBuilder, FWUP, PLAIN_DEFLATE, PLAIN_STORED};

fn text(len: usize) -> Vec<u8> {
    b"task complete { on-resource rootfs.img { raw_write(2048) } }\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn contents() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("meta.conf", text(5000)),
        ("data/empty.bin", Vec::new()),
        ("data/rootfs.img", noise(300_000, 7)),
        ("data/small.txt", b"x".to_vec()),
    ]
}

fn build(layout: Layout) -> Vec<u8> {
    let mut zip = ZipBuilder::new();
    for (name, data) in contents() {
        zip.add(name, &data, layout);
    }
    zip.finish()
}

fn expect_roundtrip(layout: Layout) {
    let walked = walk_all(&build(layout)).unwrap_or_else(|e| panic!("{layout:?}: {e}"));
    let expected: Vec<(String, Vec<u8>)> = contents().into_iter().map(|(n, d)| (n.to_string(), d)).collect();
    assert_eq!(walked, expected, "{layout:?}");
}

#[test]
fn every_writer_layout_roundtrips() {
    let descriptor_variants = [
        FWUP,
        Layout {
            descriptor_signature: false,
            ..FWUP
        },
        Layout { zip64: true, ..FWUP },
        Layout {
            zip64: true,
            descriptor_signature: false,
            ..FWUP
        },
        Layout {
            sizes_in_header: true,
            ..FWUP
        },
        // Stored with a descriptor, sizes in the header (fwup's
        // meta.conf.ed25519) or only in the descriptor (streaming writers).
        Layout {
            deflate: false,
            sizes_in_header: true,
            ..FWUP
        },
        Layout { deflate: false, ..FWUP },
        Layout {
            deflate: false,
            descriptor_signature: false,
            ..FWUP
        },
        Layout {
            deflate: false,
            zip64: true,
            ..FWUP
        },
        Layout {
            deflate: false,
            sizes_in_header: true,
            zip64: true,
            ..FWUP
        },
    ];
    for layout in descriptor_variants {
        expect_roundtrip(layout);
    }
    expect_roundtrip(PLAIN_DEFLATE);
    expect_roundtrip(PLAIN_STORED);
    expect_roundtrip(Layout {
        zip64: true,
        ..PLAIN_DEFLATE
    });
    expect_roundtrip(Layout {
        zip64: true,
        ..PLAIN_STORED
    });
}

#[test]
fn mixed_layouts_in_one_archive() {
    let mut zip = ZipBuilder::new();
    zip.add("a", b"stored plain", PLAIN_STORED)
        .add("b", &text(999), FWUP)
        .add("c", &noise(70_000, 3), PLAIN_DEFLATE)
        .add(
            "d",
            b"sig",
            Layout {
                deflate: false,
                sizes_in_header: true,
                ..FWUP
            },
        );
    let names: Vec<String> = walk_all(&zip.finish())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}

#[test]
fn empty_stored_entry_with_descriptor_is_an_empty_file() {
    let layout = Layout { deflate: false, ..FWUP };
    let zip = ZipBuilder::new().add("data/empty", b"", layout).finish();
    assert_eq!(walk_all(&zip), Ok(vec![("data/empty".to_string(), Vec::new())]));
}

#[test]
fn bad_crc_in_the_descriptor_names_the_entry_and_both_values() {
    let data = text(4000);
    let good = crc32fast::hash(&data);
    let zip = ZipBuilder::new()
        .add_with_crc("data/rootfs.img", &data, FWUP, good ^ 0x10)
        .finish();
    let err = walk_all(&zip).err().unwrap_or_default();
    assert_eq!(
        err,
        format!(
            "ZIP entry `data/rootfs.img`: bad CRC-32 {good:#010x} (expected {:#010x}); the bundle is corrupt",
            good ^ 0x10
        )
    );
}

#[test]
fn bad_crc_in_a_plain_header_is_caught_too() {
    let zip = ZipBuilder::new().add_with_crc("a", b"hello", PLAIN_STORED, 1).finish();
    assert!(walk_all(&zip).err().unwrap_or_default().contains("bad CRC-32"));
}

/// Walks `zip` as the install does: the CRC-32 waived, every entry read.
fn walk_waived(zip: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut walker = ZipWalker::new(zip);
    walker.waive_crc();
    let mut out = Vec::new();
    while let Some(mut entry) = walker.next_entry().map_err(|e| e.to_string())? {
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
        out.push(data);
    }
    Ok(out)
}

#[test]
fn a_waived_crc_is_not_compared_where_the_entry_ends_without_it() {
    // The install checks each entry's BLAKE2b-256 instead; the sizes are
    // still checked.
    let data = text(4000);
    let wrong = crc32fast::hash(&data) ^ 0x10;
    for layout in [FWUP, PLAIN_DEFLATE, PLAIN_STORED] {
        let zip = ZipBuilder::new()
            .add_with_crc("data/rootfs.img", &data, layout, wrong)
            .finish();
        assert!(walk_all(&zip).is_err(), "{layout:?}: checked unless waived");
        assert_eq!(walk_waived(&zip), Ok(vec![data.clone()]), "{layout:?}");
    }
    let mut zip = ZipBuilder::new();
    zip.add("meta.conf", &data, FWUP);
    let cd = zip.bytes.len();
    let mut bytes = zip.finish();
    bytes[cd - 4..cd].copy_from_slice(&3999u32.to_le_bytes());
    assert!(
        walk_waived(&bytes).is_err_and(|e| e.contains("size")),
        "sizes still checked"
    );
}

#[test]
fn a_stored_entry_sized_only_by_its_descriptor_keeps_its_crc_when_waived() {
    // Its CRC is how its end is found.
    let layout = Layout { deflate: false, ..FWUP };
    let data = text(4000);
    let good = ZipBuilder::new()
        .add("a", &data, layout)
        .add("b", b"bee", layout)
        .finish();
    assert_eq!(walk_waived(&good), Ok(vec![data.clone(), b"bee".to_vec()]));
    let wrong = crc32fast::hash(&data) ^ 0x10;
    let bad = ZipBuilder::new().add_with_crc("a", &data, layout, wrong).finish();
    assert!(walk_waived(&bad).is_err());
}

#[test]
fn sizes_that_disagree_with_the_descriptor_are_refused() {
    // Build a correct fwup-style entry, then change the descriptor's
    // uncompressed size (the last 4 bytes before the central directory).
    let data = text(3000);
    let mut zip = ZipBuilder::new();
    zip.add("meta.conf", &data, FWUP);
    let cd = zip.bytes.len();
    let mut bytes = zip.finish();
    bytes[cd - 4..cd].copy_from_slice(&2999u32.to_le_bytes());
    let mut walker = ZipWalker::new(&bytes[..]);
    let Ok(Some(mut entry)) = walker.next_entry() else {
        panic!("first entry")
    };
    let err = io::copy(&mut entry, &mut io::sink()).err();
    let typed = err.as_ref().and_then(ZipError::from_io);
    assert!(
        matches!(
            typed,
            Some(ZipError::SizeMismatch {
                which: SizeKind::Uncompressed,
                actual: 3000,
                expected: 2999,
                ..
            })
        ),
        "{typed:?}"
    );
}

#[test]
fn dropped_entries_are_skipped_and_still_checked() {
    let mut zip = ZipBuilder::new();
    zip.add("one", &noise(200_000, 1), FWUP)
        .add("two", &text(100), PLAIN_STORED);
    let bytes = zip.finish();
    let mut walker = ZipWalker::new(&bytes[..]);
    let mut names = Vec::new();
    while let Ok(Some(entry)) = walker.next_entry() {
        names.push(entry.name().to_string());
    }
    assert_eq!(names, ["one", "two"]);

    let corrupt = ZipBuilder::new()
        .add_with_crc("one", &text(50), FWUP, 0)
        .add("two", b"2", FWUP)
        .finish();
    let mut walker = ZipWalker::new(&corrupt[..]);
    assert!(matches!(walker.next_entry(), Ok(Some(_))));
    assert!(
        matches!(walker.next_entry(), Err(ZipError::BadCrc { .. })),
        "checked while skipping"
    );
}

#[test]
fn partly_read_entry_is_finished_by_next_entry() {
    let data = noise(100_000, 9);
    let bytes = ZipBuilder::new().add("a", &data, FWUP).add("b", b"bee", FWUP).finish();
    let mut walker = ZipWalker::new(&bytes[..]);
    let Ok(Some(mut a)) = walker.next_entry() else {
        panic!("a")
    };
    let mut head = [0u8; 1000];
    assert!(a.read_exact(&mut head).is_ok());
    assert_eq!(head[..], data[..1000]);
    let Ok(Some(mut b)) = walker.next_entry() else {
        panic!("b")
    };
    let mut rest = String::new();
    assert!(b.read_to_string(&mut rest).is_ok());
    assert_eq!(rest, "bee");
}

#[test]
fn garbage_input_is_not_a_zip() {
    let html = b"<!DOCTYPE html><html><body>404 Not Found</body></html>";
    let err = walk_all(html).err().unwrap_or_default();
    assert_eq!(
        err,
        "not a ZIP archive: the bundle starts with 3c 21 44 4f (`<!DO`) instead of a ZIP local file header (`PK\\x03\\x04`)"
    );
    assert_eq!(walk_all(b"").err().unwrap_or_default(), "the bundle is empty (0 bytes)");
    assert!(walk_all(b"PK")
        .err()
        .unwrap_or_default()
        .starts_with("the bundle is truncated: it ends at byte 2"));
}

#[test]
fn garbage_between_entries_names_the_offset_and_previous_entry() {
    let mut zip = ZipBuilder::new();
    zip.add("meta.conf", b"x", PLAIN_STORED);
    let at = zip.bytes.len();
    zip.raw(b"JUNKJUNK");
    let err = walk_all(&zip.finish()).err().unwrap_or_default();
    assert_eq!(
        err,
        format!(
            "corrupt ZIP stream at byte {at} (after ZIP entry `meta.conf`): found 4a 55 4e 4b (`JUNK`) where a ZIP header should start"
        )
    );
}

#[test]
fn archive_without_central_directory_is_truncated() {
    let mut zip = ZipBuilder::new();
    zip.add("meta.conf", &text(100), FWUP);
    let cut = zip.bytes.clone();
    let err = walk_all(&cut).err().unwrap_or_default();
    assert!(err.starts_with("the bundle is truncated"), "{err}");
    assert!(err.contains("after ZIP entry `meta.conf`"), "{err}");
}

#[test]
fn empty_archive_has_no_entries() {
    assert_eq!(walk_all(&ZipBuilder::new().finish()), Ok(vec![]));
}

#[test]
fn unsupported_methods_and_encryption_are_refused() {
    let mut bytes = ZipBuilder::new().add("data/x", b"abc", PLAIN_STORED).finish();
    bytes[8] = 14; // LZMA
    let err = walk_all(&bytes).err().unwrap_or_default();
    assert_eq!(err, "ZIP entry `data/x`: compression method 14 (LZMA) is not supported");
    bytes[8] = 0;
    bytes[6] |= 1; // encrypted
    let err = walk_all(&bytes).err().unwrap_or_default();
    assert!(err.starts_with("ZIP entry `data/x`: encryption"), "{err}");
}

#[test]
fn deflate_stream_longer_than_the_header_size_is_corrupt() {
    let mut zip = ZipBuilder::new();
    zip.add("a", &noise(5000, 5), PLAIN_DEFLATE);
    let mut bytes = zip.finish();
    // Shrink the compressed size in the local header by 10.
    let csize = u32::from_le_bytes([bytes[18], bytes[19], bytes[20], bytes[21]]);
    bytes[18..22].copy_from_slice(&(csize - 10).to_le_bytes());
    let err = walk_all(&bytes).err().unwrap_or_default();
    assert!(err.starts_with("ZIP entry `a`: corrupt deflate data"), "{err}");
    assert!(err.contains("does not end within"), "{err}");
}

#[test]
fn source_errors_are_reported_with_their_offset() {
    struct FailAfter<'a>(&'a [u8]);
    impl Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                ));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let bytes = build(FWUP);
    let err = zip_support::walk_reader(FailAfter(&bytes[..9000]))
        .err()
        .unwrap_or_default();
    assert_eq!(err, "reading the bundle at byte 9000: connection reset by peer");
}

#[test]
fn walker_can_move_to_a_reader_thread() {
    // The install pipeline walks the bundle on its own thread.
    fn assert_send<T: Send>(_: &T) {}
    let walker = ZipWalker::new(std::io::empty());
    assert_send(&walker);
    let handle = std::thread::spawn(move || {
        let mut walker = walker;
        walker.next_entry().err().map(|e| e.to_string())
    });
    let result = handle.join().unwrap_or_else(|_| panic!("reader thread panicked"));
    assert_eq!(result.as_deref(), Some("the bundle is empty (0 bytes)"));
}
