//! The ZIP walker on what streaming writers make and on archives built to
//! mislead it: stored entries sized only by their data descriptor,
//! descriptor look-alikes inside the data, central directories that lie,
//! duplicate names, and entries skipped without being inflated.

mod zip_support;

use std::io::Read;

use loader::bundle::zip::{ZipError, ZipWalker};
use zip_support::{noise, walk_all, walk_reader, walk_with_buffer, Layout, ZipBuilder, FWUP};

/// Stored, flag bit 3, both sizes 0 in the local header (Python's
/// `zipfile` on a pipe, Perl's `IO::Compress::Zip`, Go's `archive/zip`).
const STREAMED_STORED: Layout = Layout { deflate: false, ..FWUP };

/// `prefix`, then a data descriptor for it (signed, 32-bit sizes) and a
/// local header signature: what the end of an entry looks like.
fn descriptor_after(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(b"PK\x07\x08");
    out.extend_from_slice(&crc32fast::hash(prefix).to_le_bytes());
    out.extend_from_slice(&(prefix.len() as u32).to_le_bytes());
    out.extend_from_slice(&(prefix.len() as u32).to_le_bytes());
    out.extend_from_slice(b"PK\x03\x04");
    out
}

/// Reads every entry with a small read-ahead, so descriptors and
/// look-alikes straddle the buffer's end.
fn walk_small_buffer(zip: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    walk_with_buffer(zip, 4096)
}

#[test]
fn stored_entries_sized_only_by_their_descriptor_are_read_in_every_form() {
    let contents = [
        ("meta.conf.ed25519", noise(64, 1)),
        ("meta.conf", b"task complete {}\n".repeat(40)),
        ("data/empty", Vec::new()),
        ("data/rootfs.img", noise(300_000, 2)),
    ];
    for signature in [true, false] {
        for zip64 in [false, true] {
            let layout = Layout {
                descriptor_signature: signature,
                zip64,
                ..STREAMED_STORED
            };
            let mut zip = ZipBuilder::new();
            for (name, data) in &contents {
                zip.add(name, data, layout);
            }
            let bytes = zip.finish();
            let expected: Vec<(String, Vec<u8>)> = contents.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
            assert_eq!(walk_all(&bytes), Ok(expected.clone()), "{layout:?}");
            assert_eq!(walk_small_buffer(&bytes), Ok(expected.clone()), "{layout:?}");
            // A reader that dribbles bytes changes nothing either.
            let dribble = DribbleReader(&bytes, 7);
            assert_eq!(walk_reader(dribble), Ok(expected), "{layout:?}");
        }
    }
}

struct DribbleReader<'a>(&'a [u8], usize);

impl Read for DribbleReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_descriptor_look_alike_whose_crc_or_length_is_wrong_is_data() {
    // The data holds a signed descriptor followed by a local header
    // signature, but its CRC (then its length) does not describe the bytes
    // before it: splitting there would be wrong.
    for corrupt_at in [4, 8, 12] {
        let mut data = noise(5000, 3);
        let mut fake = descriptor_after(&data[..2000]);
        fake[2000 + corrupt_at] ^= 0x40;
        data.splice(..fake.len(), fake);
        let bytes = ZipBuilder::new()
            .add("data/rootfs.img", &data, STREAMED_STORED)
            .add("data/next", b"next", STREAMED_STORED)
            .finish();
        let walked = walk_small_buffer(&bytes).unwrap_or_else(|e| panic!("byte {corrupt_at}: {e}"));
        assert_eq!(walked[0].1, data, "corrupted descriptor byte {corrupt_at}");
        assert_eq!(walked[1], ("data/next".to_string(), b"next".to_vec()));
    }
}

#[test]
fn a_complete_descriptor_inside_the_data_ends_it_as_in_libarchive_and_what_follows_must_parse() {
    // A crafted entry whose data contains a descriptor that matches both
    // CRC and length of the bytes before it: libarchive (fwup) ends the
    // entry there too. What follows is then read as the next header, and
    // here it is not one: the bundle is refused, never read differently.
    let mut data = descriptor_after(b"first part");
    data.extend_from_slice(b" and not a header");
    let bytes = ZipBuilder::new().add("data/x", &data, STREAMED_STORED).finish();
    let err = walk_all(&bytes).err().unwrap_or_default();
    assert!(
        err.starts_with("corrupt ZIP header") || err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn a_truncated_stored_entry_without_sizes_is_truncated() {
    let bytes = ZipBuilder::new()
        .add("data/rootfs.img", &noise(100_000, 4), STREAMED_STORED)
        .finish();
    // The data ends at byte 100045 and its descriptor at 100061: cut in
    // the data, in the descriptor, right after it, and inside the central
    // directory's signature.
    for cut in [50_000, 100_050, 100_061, 100_063] {
        let err = walk_small_buffer(&bytes[..cut]).err().unwrap_or_default();
        assert!(err.starts_with("the bundle is truncated"), "cut at {cut}: {err}");
    }
}

#[test]
fn the_central_directory_is_not_trusted_for_sizes() {
    // libarchive's streaming reader (fwup) never reads the central
    // directory; neither does the walker. A directory that lies about the
    // sizes and CRC changes nothing.
    let data = noise(10_000, 5);
    let mut zip = ZipBuilder::new();
    zip.add("data/a", &data, STREAMED_STORED).add("data/b", b"bee", FWUP);
    let cd = zip.bytes.len();
    let mut bytes = zip.finish();
    // First central record: CRC at +16, sizes at +20 and +24.
    for field in [16, 20, 24] {
        bytes[cd + field..cd + field + 4].copy_from_slice(&7u32.to_le_bytes());
    }
    let walked = walk_all(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(walked[0], ("data/a".to_string(), data));
    assert_eq!(walked[1], ("data/b".to_string(), b"bee".to_vec()));
}

#[test]
fn two_entries_with_one_name_are_refused() {
    for name in ["data/rootfs.img", "meta.conf"] {
        let mut zip = ZipBuilder::new();
        zip.add(name, b"first", FWUP).add("data/other", b"o", FWUP);
        let again = zip.bytes.len();
        zip.add(name, b"second", STREAMED_STORED);
        let err = walk_all(&zip.finish()).err().unwrap_or_default();
        assert_eq!(
            err,
            format!(
                "ZIP entry `{name}` appears twice (local headers at bytes 0 and {again}); the bundle is ambiguous and is refused"
            )
        );
    }
}

#[test]
fn a_skipped_entry_is_not_inflated_or_checked() {
    // An entry skipped as undeclared: fwup (libarchive) passes over it
    // without checking its CRC, and so does the walker; reading it instead
    // finds the bad CRC, which shows that skipping did not inflate it.
    for layout in [FWUP, zip_support::PLAIN_DEFLATE, zip_support::PLAIN_STORED] {
        let bytes = ZipBuilder::new()
            .add_with_crc("README", &noise(50_000, 6), layout, 0x1234_5678)
            .add("data/rootfs.img", b"rootfs", FWUP)
            .finish();
        let mut walker = ZipWalker::new(&bytes[..]);
        let readme = walker.next_entry().ok().flatten().map(|e| e.skip());
        assert!(matches!(readme, Some(Ok(()))), "{layout:?}: {readme:?}");
        let mut rootfs = Vec::new();
        if let Ok(Some(mut entry)) = walker.next_entry() {
            assert_eq!(entry.name(), "data/rootfs.img");
            assert!(entry.read_to_end(&mut rootfs).is_ok());
        }
        assert_eq!(rootfs, b"rootfs", "{layout:?}");
        assert!(matches!(walker.next_entry(), Ok(None)));

        let err = walk_all(&bytes).err().unwrap_or_default();
        assert!(err.contains("bad CRC-32"), "{layout:?}: {err}");
    }
}

#[test]
fn a_skipped_streamed_stored_entry_still_finds_its_end() {
    let data = noise(20_000, 8);
    let bytes = ZipBuilder::new()
        .add("junk", &data, STREAMED_STORED)
        .add("data/x", b"x", STREAMED_STORED)
        .finish();
    let mut walker = ZipWalker::with_buffer(&bytes[..], 4096);
    assert!(matches!(
        walker.next_entry().ok().flatten().map(|e| e.skip()),
        Some(Ok(()))
    ));
    let name = walker.next_entry().ok().flatten().map(|e| e.name().to_string());
    assert_eq!(name.as_deref(), Some("data/x"));
}

#[test]
fn skipping_a_corrupt_deflate_stream_is_refused() {
    let mut zip = ZipBuilder::new();
    zip.add("junk", &noise(5000, 9), FWUP);
    let mut bytes = zip.finish();
    // Block type 3 does not exist.
    bytes[30 + 4] |= 0b110;
    let mut walker = ZipWalker::new(&bytes[..]);
    let skipped = walker.next_entry().ok().flatten().map(|e| e.skip());
    assert!(
        matches!(skipped, Some(Err(ZipError::CorruptDeflate { .. }))),
        "{skipped:?}"
    );
}

/// 01-minimal-raw's entries, read back with the walker.
fn minimal_entries() -> Vec<(String, Vec<u8>)> {
    walk_all(&zip_support::read_fixture("01-minimal-raw.fw")).unwrap_or_else(|e| panic!("{e}"))
}

fn install(bundle: Vec<u8>) -> Result<(), String> {
    use loader::apply::{self, events::Silent, ApplyOptions};
    use loader::target::file::ImageFile;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(4 << 20))
        .map_err(|e| e.to_string())?;
    let mut target = ImageFile::open(&img).map_err(|e| e.to_string())?;
    apply::apply(
        std::io::Cursor::new(bundle),
        &mut target,
        &ApplyOptions::new("complete"),
        &mut Silent,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn an_install_refuses_a_resource_or_meta_conf_that_appears_twice() {
    // fwup would run the handler of a repeated resource again (and write
    // whichever copy came last); the loader refuses the bundle.
    let entries = minimal_entries();
    let mut once = ZipBuilder::new();
    for (name, data) in &entries {
        once.add(name, data, FWUP);
    }
    assert_eq!(install(once.finish()), Ok(()), "the bundle itself installs");
    for twice in ["data/payload.bin", "meta.conf"] {
        let mut zip = ZipBuilder::new();
        for (name, data) in &entries {
            zip.add(name, data, FWUP);
        }
        let (_, data) = entries.iter().find(|(n, _)| n == twice).cloned().unwrap_or_default();
        zip.add(twice, &data, STREAMED_STORED);
        let err = install(zip.finish()).err().unwrap_or_default();
        assert!(err.contains(&format!("ZIP entry `{twice}` appears twice")), "{err}");
    }
}

#[test]
fn a_stored_entry_without_sizes_reads_the_same_in_tiny_pieces() {
    let data = noise(40_000, 11);
    let bytes = ZipBuilder::new()
        .add("data/a", &data, STREAMED_STORED)
        .add("data/b", b"b", STREAMED_STORED)
        .finish();
    let mut walker = ZipWalker::new(&bytes[..]);
    let mut got = Vec::new();
    if let Ok(Some(mut entry)) = walker.next_entry() {
        let mut piece = [0u8; 3];
        loop {
            match entry.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&piece[..n]),
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(got, data);
    let next = walker.next_entry().ok().flatten().map(|e| e.name().to_string());
    assert_eq!(next.as_deref(), Some("data/b"));
}
