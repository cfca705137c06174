//! Where a stored entry ends when only its data descriptor gives the size.
//!
//! Streaming writers (Python's `zipfile` on a pipe, Perl's
//! `IO::Compress::Zip`, Go's `archive/zip`) write stored entries with flag
//! bit 3 and zero sizes in the local header: nothing before the data says
//! how long it is. A reader that cannot seek to the central directory has
//! to find the descriptor after the data. libarchive (and so fwup) scans for
//! the `PK\x07\x08` signature followed by the CRC-32 of the bytes before
//! it; this scan is stricter, so that a descriptor-looking sequence inside
//! the data is never taken for the end:
//!
//! A boundary at position `i` (the data is the `i` bytes before it) is
//! accepted only when all of these hold:
//! * a descriptor starts there, with or without its signature, with 32-bit
//!   sizes (64-bit when the local header has a zip64 field or `i` does not
//!   fit 32 bits);
//! * its CRC-32 is the CRC-32 of those `i` bytes, and both its sizes are `i`;
//! * the next ZIP record (local header, central directory or end record)
//!   starts right after it.
//!
//! The first such position wins, as in libarchive. Since every candidate
//! must be followed by a record signature, candidates are found by
//! searching for `PK` and checked only there: the data itself is looked at
//! once, at memory speed.

use crate::bundle::crc32::Crc32;

use super::header::{self, Descriptor};

/// Bytes a candidate needs in view to be decided: the longest descriptor
/// (signature, CRC, two 64-bit sizes) and the next record's signature.
pub(super) const LOOK_AHEAD: usize = 4 + 4 + 16 + 4;

/// Offsets of a descriptor's size fields from its start, for the forms it
/// can take: (with signature, 64-bit sizes).
const FORMS: [(bool, bool); 4] = [(true, false), (false, false), (true, true), (false, true)];

/// What the bytes in view hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// The first `n` bytes are data: no boundary can be among them.
    Data(usize),
    /// The data ends after `at` bytes; a descriptor of `len` bytes follows.
    End {
        at: usize,
        len: usize,
        descriptor: Descriptor,
    },
}

/// Scans `window`, the bytes that follow the `count` data bytes already
/// read (whose CRC-32 state is `crc`). `at_eof`: nothing follows `window`.
/// `zip64`: the local header had a zip64 extra field.
///
/// Unless `at_eof`, only positions with [`LOOK_AHEAD`] bytes in view are
/// decided, so a window of at least that size always makes progress.
pub(super) fn scan(window: &[u8], at_eof: bool, count: u64, crc: &Crc32, zip64: bool) -> Scan {
    let decided = if at_eof {
        window.len()
    } else {
        (window.len() + 1).saturating_sub(LOOK_AHEAD)
    };
    let mut best: Option<(usize, usize, Descriptor)> = None;
    for pk in memchr::memmem::find_iter(window, b"PK") {
        let Some(signature) = window.get(pk..pk + 4) else {
            break;
        };
        if !follows_an_entry(signature) {
            continue;
        }
        // Descriptors are 12 to 24 bytes long: the boundary is 12..=24
        // bytes before the record that follows.
        if best.is_some_and(|(at, _, _)| pk.saturating_sub(24) > at) {
            break;
        }
        for (signed, wide) in FORMS {
            let len = header::descriptor_len(signed, wide);
            let Some(at) = pk.checked_sub(len) else { continue };
            if at >= decided || best.is_some_and(|(b, _, _)| at >= b) {
                continue;
            }
            if let Some(descriptor) = descriptor_at(window, at, signed, wide, count, crc, zip64) {
                best = Some((at, len, descriptor));
            }
        }
    }
    match best {
        Some((at, len, descriptor)) => Scan::End { at, len, descriptor },
        None => Scan::Data(decided),
    }
}

/// The records that can follow an entry's descriptor.
fn follows_an_entry(signature: &[u8]) -> bool {
    let word = u32::from_le_bytes([signature[0], signature[1], signature[2], signature[3]]);
    matches!(
        word,
        header::LOCAL_HEADER
            | header::CENTRAL_HEADER
            | header::END_OF_CENTRAL_DIRECTORY
            | header::ZIP64_END_OF_CENTRAL_DIRECTORY
    )
}

/// The descriptor of form (`signed`, `wide`) at `at`, if it describes
/// exactly the data before it.
fn descriptor_at(
    window: &[u8],
    at: usize,
    signed: bool,
    wide: bool,
    count: u64,
    crc: &Crc32,
    zip64: bool,
) -> Option<Descriptor> {
    let size = count + at as u64;
    // The width follows from the header and the size, as when reading a
    // descriptor whose position is known.
    if wide != (zip64 || size > u64::from(u32::MAX)) {
        return None;
    }
    let bytes = window.get(at..at + header::descriptor_len(signed, wide))?;
    let body = if signed {
        if header::signature_of([bytes[0], bytes[1], bytes[2], bytes[3]]) != header::DATA_DESCRIPTOR {
            return None;
        }
        &bytes[4..]
    } else {
        bytes
    };
    let crc32 = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    let descriptor = header::parse_descriptor_sizes(crc32, &body[4..]);
    if descriptor.compressed_size != size || descriptor.uncompressed_size != size {
        return None;
    }
    // Cheap checks first: the CRC of the bytes before is the costly one.
    let mut hasher = crc.clone();
    hasher.update(&window[..at]);
    (hasher.finalize() == crc32).then_some(descriptor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data`, its descriptor in the given form, then a local header.
    fn entry(data: &[u8], signed: bool, wide: bool) -> Vec<u8> {
        let mut out = data.to_vec();
        if signed {
            out.extend_from_slice(b"PK\x07\x08");
        }
        out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        for _ in 0..2 {
            if wide {
                out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            } else {
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(b"PK\x03\x04 next header");
        out
    }

    /// Feeds `bytes` through `scan` in windows of at most `window` bytes,
    /// as the body reader does; returns the data length and descriptor.
    fn delimit(bytes: &[u8], window: usize, zip64: bool) -> Option<(usize, Descriptor)> {
        let mut crc = Crc32::new();
        let mut at = 0usize;
        loop {
            let end = (at + window.max(LOOK_AHEAD)).min(bytes.len());
            match scan(&bytes[at..end], end == bytes.len(), at as u64, &crc, zip64) {
                Scan::End { at: n, descriptor, .. } => return Some((at + n, descriptor)),
                Scan::Data(0) => return None,
                Scan::Data(n) => {
                    crc.update(&bytes[at..at + n]);
                    at += n;
                }
            }
        }
    }

    fn noise(len: usize, seed: u32) -> Vec<u8> {
        crate::bundle::zip::test_bytes::xorshift_bytes(len, seed, 256)
    }

    #[test]
    fn every_descriptor_form_ends_the_data_whatever_the_window() {
        let data = noise(10_000, 7);
        for (signed, wide) in FORMS {
            let bytes = entry(&data, signed, wide);
            for window in [LOOK_AHEAD, 29, 100, 4096, 1 << 20] {
                let found = delimit(&bytes, window, wide);
                assert_eq!(
                    found.map(|(n, _)| n),
                    Some(data.len()),
                    "signed {signed} wide {wide} window {window}"
                );
            }
        }
    }

    #[test]
    fn empty_data_ends_at_once() {
        let bytes = entry(b"", true, false);
        assert_eq!(delimit(&bytes, 64, false).map(|(n, _)| n), Some(0));
    }

    #[test]
    fn a_descriptor_look_alike_with_the_wrong_crc_or_size_is_data() {
        // Data that contains a signature, a wrong CRC or a wrong count, and
        // a local header signature after it: none of them may end the data.
        let mut data = noise(3000, 3);
        let prefix = data[..1000].to_vec();
        let mut fake = entry(&prefix, true, false);
        fake.truncate(fake.len() - " next header".len());
        let (crc_at, size_at) = (1000 + 4, 1000 + 8);
        let mut wrong_crc = fake.clone();
        wrong_crc[crc_at] ^= 1;
        let mut wrong_size = fake.clone();
        wrong_size[size_at] ^= 1;
        for look_alike in [wrong_crc, wrong_size] {
            data.splice(..look_alike.len(), look_alike);
            let bytes = entry(&data, true, false);
            assert_eq!(delimit(&bytes, 4096, false).map(|(n, _)| n), Some(data.len()));
        }
    }

    #[test]
    fn a_descriptor_without_a_following_record_is_data() {
        let prefix = noise(500, 9);
        let mut data = entry(&prefix, true, false);
        // Break the record signature that follows the inner descriptor.
        let sig = prefix.len() + 16;
        data[sig + 2] = 0;
        data.extend_from_slice(&noise(700, 10));
        let bytes = entry(&data, true, false);
        assert_eq!(delimit(&bytes, 4096, false).map(|(n, _)| n), Some(data.len()));
    }

    #[test]
    fn truncated_data_has_no_end() {
        let bytes = entry(&noise(5000, 1), true, false);
        assert_eq!(delimit(&bytes[..4000], 1024, false), None);
        // Cut inside the descriptor or the next signature: no end either.
        for cut in [5001, 5010, 5017] {
            assert_eq!(delimit(&bytes[..cut], 1024, false), None, "cut at {cut}");
        }
    }

    #[test]
    fn the_first_complete_boundary_wins() {
        // A crafted entry whose data is itself "data + descriptor + local
        // header": the inner boundary is complete, so it is the end, as in
        // libarchive (the bytes after it then have to parse as a header).
        let inner = entry(b"inner", true, false);
        let bytes = entry(&inner, true, false);
        assert_eq!(delimit(&bytes, 4096, false).map(|(n, _)| n), Some(5));
    }
}
