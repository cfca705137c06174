//! Unit tests of the record parsers in `header.rs`.

use super::error::{After, ZipError};
use super::header::*;

fn fixed(flags: u16, method: u16, csize: u32, usize_: u32, name_len: u16, extra_len: u16) -> [u8; FIXED_LEN] {
    let mut f = [0u8; FIXED_LEN];
    f[0..2].copy_from_slice(&20u16.to_le_bytes());
    f[2..4].copy_from_slice(&flags.to_le_bytes());
    f[4..6].copy_from_slice(&method.to_le_bytes());
    f[14..18].copy_from_slice(&csize.to_le_bytes());
    f[18..22].copy_from_slice(&usize_.to_le_bytes());
    f[22..24].copy_from_slice(&name_len.to_le_bytes());
    f[24..26].copy_from_slice(&extra_len.to_le_bytes());
    f
}

fn zip64_extra(uncompressed: u64, compressed: u64) -> Vec<u8> {
    let mut e = vec![0x01, 0x00, 16, 0];
    e.extend_from_slice(&uncompressed.to_le_bytes());
    e.extend_from_slice(&compressed.to_le_bytes());
    e
}

#[test]
fn zip64_extra_replaces_marked_sizes() {
    let extra = zip64_extra(5 << 32, 6 << 32);
    let f = fixed(8, 8, u32::MAX, u32::MAX, 1, extra.len() as u16);
    let h = parse_local_header(0, &After::default(), &f, b"x", &extra).ok();
    let h = h.map(|h| (h.uncompressed_size, h.compressed_size, h.zip64, h.has_descriptor));
    assert_eq!(h, Some((5 << 32, 6 << 32, true, true)));
}

#[test]
fn zip64_extra_with_only_the_uncompressed_size_marked() {
    let mut extra = vec![0x01, 0x00, 8, 0];
    extra.extend_from_slice(&(7u64 << 32).to_le_bytes());
    let f = fixed(0, 8, 1000, u32::MAX, 1, extra.len() as u16);
    let h = parse_local_header(0, &After::default(), &f, b"x", &extra).ok();
    assert_eq!(
        h.map(|h| (h.uncompressed_size, h.compressed_size)),
        Some((7 << 32, 1000))
    );
}

#[test]
fn short_zip64_extra_is_a_corrupt_header() {
    let extra = vec![0x01, 0x00, 4, 0, 1, 2, 3, 4];
    let f = fixed(0, 8, u32::MAX, u32::MAX, 1, extra.len() as u16);
    let err = parse_local_header(42, &After(Some("meta.conf".into())), &f, b"x", &extra).err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("byte 42") && text.contains("after ZIP entry `meta.conf`") && text.contains("zip64"),
        "{text}"
    );
}

#[test]
fn extra_record_longer_than_the_field_is_refused() {
    let extra = vec![0x55, 0x54, 9, 0, 1];
    let f = fixed(0, 8, 1, 1, 1, extra.len() as u16);
    assert!(matches!(
        parse_local_header(0, &After::default(), &f, b"x", &extra),
        Err(ZipError::BadHeader { .. })
    ));
}

#[test]
fn encryption_and_other_methods_are_refused_by_name() {
    let enc = parse_local_header(0, &After::default(), &fixed(1, 8, 1, 1, 1, 0), b"data/a", &[]);
    let text = enc.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("`data/a`") && text.contains("encryption"), "{text}");
    let bz = parse_local_header(0, &After::default(), &fixed(0, 12, 1, 1, 1, 0), b"data/a", &[]);
    let text = bz.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("method 12 (bzip2) is not supported"), "{text}");
    let aes = parse_local_header(0, &After::default(), &fixed(0, 99, 1, 1, 1, 0), b"data/a", &[]);
    assert!(matches!(aes, Err(ZipError::Unsupported { .. })));
}

#[test]
fn stored_length_comes_from_either_size() {
    let with = |c, u, dd| {
        let f = fixed(if dd { 8 } else { 0 }, 0, c, u, 1, 0);
        parse_local_header(0, &After::default(), &f, b"s", &[])
            .ok()
            .and_then(|h| h.stored_length())
    };
    assert_eq!(with(64, 64, true), Some(64), "fwup's meta.conf.ed25519");
    assert_eq!(with(0, 64, true), Some(64));
    assert_eq!(with(0, 0, true), None, "no length at all");
    assert_eq!(with(0, 0, false), Some(0), "an empty entry without descriptor");
    assert!(parse_local_header(0, &After::default(), &fixed(0, 0, 3, 4, 1, 0), b"s", &[]).is_err());
}

#[test]
fn descriptor_sizes_in_both_widths() {
    let mut b = Vec::new();
    b.extend_from_slice(&10u32.to_le_bytes());
    b.extend_from_slice(&20u32.to_le_bytes());
    assert_eq!(
        parse_descriptor_sizes(7, &b),
        Descriptor {
            crc32: 7,
            compressed_size: 10,
            uncompressed_size: 20
        }
    );
    let mut w = Vec::new();
    w.extend_from_slice(&(10u64 << 32).to_le_bytes());
    w.extend_from_slice(&(20u64 << 32).to_le_bytes());
    assert_eq!(parse_descriptor_sizes(7, &w).uncompressed_size, 20 << 32);
}
