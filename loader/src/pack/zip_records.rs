//! The byte layout of fwup's (libarchive's) ZIP records: local headers
//! with flag bit 3 and the uncompressed size when known, data descriptors
//! (64-bit sizes for zip64 entries), central directory entries, the end
//! records, libarchive's `UT`/`ux` extra fields and MS-DOS time stamps.

use std::io;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
pub(super) const ZIP64_END_OF_CENTRAL: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const FLAG_DESCRIPTOR: u16 = 0x0008;
const MADE_BY_UNIX: u16 = 3 << 8;
/// `-rw-r--r--` regular file, in the high half of the external attributes.
const UNIX_MODE: u32 = 0o100_644 << 16;

/// The two compression methods fwup writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Stored = 0,
    Deflate = 8,
}

/// What the central directory needs to know about an entry.
pub(super) struct CentralRecord {
    pub name: String,
    pub method: Method,
    pub mtime: Option<u32>,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    pub offset: u64,
    pub zip64: bool,
}

/// A local file header; `compressed` is only known for stored entries.
pub(super) fn local_header(
    name: &str,
    method: Method,
    mtime: Option<u32>,
    size: u64,
    compressed: Option<u64>,
    zip64: bool,
) -> io::Result<Vec<u8>> {
    let (time, date) = dos_time(mtime);
    let mut extra = libarchive_extras(mtime);
    let (csize32, usize32) = if zip64 {
        extra.extend_from_slice(&0x0001u16.to_le_bytes());
        extra.extend_from_slice(&16u16.to_le_bytes());
        extra.extend_from_slice(&size.to_le_bytes());
        extra.extend_from_slice(&compressed.unwrap_or(0).to_le_bytes());
        (u32::MAX, u32::MAX)
    } else {
        (compressed.unwrap_or(0) as u32, size as u32)
    };
    let mut h = Vec::with_capacity(30 + name.len() + extra.len());
    h.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
    h.extend_from_slice(&version_needed(method, zip64).to_le_bytes());
    h.extend_from_slice(&FLAG_DESCRIPTOR.to_le_bytes());
    h.extend_from_slice(&(method as u16).to_le_bytes());
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // CRC: in the descriptor
    h.extend_from_slice(&csize32.to_le_bytes());
    h.extend_from_slice(&usize32.to_le_bytes());
    h.extend_from_slice(&len16(name.len())?.to_le_bytes());
    h.extend_from_slice(&len16(extra.len())?.to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&extra);
    Ok(h)
}

/// The data descriptor after an entry's data.
pub(super) fn descriptor(crc: u32, compressed: u64, uncompressed: u64, zip64: bool) -> io::Result<Vec<u8>> {
    let mut d = Vec::with_capacity(24);
    d.extend_from_slice(&DESCRIPTOR.to_le_bytes());
    d.extend_from_slice(&crc.to_le_bytes());
    if zip64 {
        d.extend_from_slice(&compressed.to_le_bytes());
        d.extend_from_slice(&uncompressed.to_le_bytes());
    } else {
        let too_big = |_| io::Error::other("an entry needs zip64 but was not started as one");
        d.extend_from_slice(&u32::try_from(compressed).map_err(too_big)?.to_le_bytes());
        d.extend_from_slice(&u32::try_from(uncompressed).map_err(too_big)?.to_le_bytes());
    }
    Ok(d)
}

/// The end of central directory record, preceded by the zip64 record and
/// locator when offsets, sizes or the entry count need them. `position` is
/// where these records start.
pub(super) fn end_of_central(start: u64, size: u64, count: u64, position: u64) -> Vec<u8> {
    let mut e = Vec::with_capacity(98);
    if start >= u64::from(u32::MAX) || size >= u64::from(u32::MAX) || count >= 0xffff {
        e.extend_from_slice(&ZIP64_END_OF_CENTRAL.to_le_bytes());
        e.extend_from_slice(&44u64.to_le_bytes());
        e.extend_from_slice(&(MADE_BY_UNIX | 45).to_le_bytes());
        e.extend_from_slice(&45u16.to_le_bytes());
        e.extend_from_slice(&[0u8; 8]); // disk numbers
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&start.to_le_bytes());
        e.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&position.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
    }
    e.extend_from_slice(&END_OF_CENTRAL.to_le_bytes());
    e.extend_from_slice(&[0u8; 4]); // disk numbers
    let count16 = u16::try_from(count).unwrap_or(u16::MAX);
    e.extend_from_slice(&count16.to_le_bytes());
    e.extend_from_slice(&count16.to_le_bytes());
    e.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    e.extend_from_slice(&u32::try_from(start).unwrap_or(u32::MAX).to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes()); // comment length
    e
}

/// 2.0 for deflate, 1.0 for stored, 4.5 with zip64 fields.
fn version_needed(method: Method, zip64: bool) -> u16 {
    match (method, zip64) {
        (_, true) => 45,
        (Method::Deflate, false) => 20,
        (Method::Stored, false) => 10,
    }
}

fn len16(len: usize) -> io::Result<u16> {
    u16::try_from(len).map_err(|_| io::Error::other("a ZIP entry name is longer than 65535 bytes"))
}

/// libarchive's `UT` (flags, then the mtime when set) and `ux` (version 1,
/// 4-byte uid 0, 4-byte gid 0) extra fields.
fn libarchive_extras(mtime: Option<u32>) -> Vec<u8> {
    let mut extra = Vec::with_capacity(24);
    extra.extend_from_slice(&0x5455u16.to_le_bytes());
    match mtime {
        Some(t) => {
            extra.extend_from_slice(&5u16.to_le_bytes());
            extra.push(1);
            extra.extend_from_slice(&t.to_le_bytes());
        }
        None => {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.push(0);
        }
    }
    extra.extend_from_slice(&0x7875u16.to_le_bytes());
    extra.extend_from_slice(&11u16.to_le_bytes());
    extra.extend_from_slice(&[1, 4, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    extra
}

/// A central directory entry.
pub(super) fn central_header(r: &CentralRecord) -> io::Result<Vec<u8>> {
    let (time, date) = dos_time(r.mtime);
    let mut extra = libarchive_extras(r.mtime);
    let big_offset = r.offset >= u64::from(u32::MAX);
    let mut zip64 = Vec::new();
    if r.zip64 {
        zip64.extend_from_slice(&r.uncompressed.to_le_bytes());
        zip64.extend_from_slice(&r.compressed.to_le_bytes());
    }
    if big_offset {
        zip64.extend_from_slice(&r.offset.to_le_bytes());
    }
    if !zip64.is_empty() {
        extra.extend_from_slice(&0x0001u16.to_le_bytes());
        extra.extend_from_slice(&len16(zip64.len())?.to_le_bytes());
        extra.extend_from_slice(&zip64);
    }
    let (csize, usize_) = if r.zip64 {
        (u32::MAX, u32::MAX)
    } else {
        (r.compressed as u32, r.uncompressed as u32)
    };
    let offset = if big_offset { u32::MAX } else { r.offset as u32 };
    let needed = version_needed(r.method, r.zip64 || big_offset);
    let mut h = Vec::with_capacity(46 + r.name.len() + extra.len());
    h.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
    h.extend_from_slice(&(MADE_BY_UNIX | needed).to_le_bytes());
    h.extend_from_slice(&needed.to_le_bytes());
    h.extend_from_slice(&FLAG_DESCRIPTOR.to_le_bytes());
    h.extend_from_slice(&(r.method as u16).to_le_bytes());
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&r.crc.to_le_bytes());
    h.extend_from_slice(&csize.to_le_bytes());
    h.extend_from_slice(&usize_.to_le_bytes());
    h.extend_from_slice(&len16(r.name.len())?.to_le_bytes());
    h.extend_from_slice(&len16(extra.len())?.to_le_bytes());
    h.extend_from_slice(&[0u8; 6]); // comment length, disk, internal attributes
    h.extend_from_slice(&UNIX_MODE.to_le_bytes());
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(r.name.as_bytes());
    h.extend_from_slice(&extra);
    Ok(h)
}

/// MS-DOS time and date (UTC) of a Unix time; no time, or one before
/// 1980, is 1980-01-01 00:00 as libarchive writes it.
fn dos_time(mtime: Option<u32>) -> (u16, u16) {
    const MIN: (u16, u16) = (0, (1 << 5) | 1);
    let Some(t) = mtime else {
        return MIN;
    };
    let days = i64::from(t / 86_400);
    let secs = t % 86_400;
    let (year, month, day) = civil_from_days(days);
    if !(1980..=2107).contains(&year) {
        return MIN;
    }
    let time = ((secs / 3600) << 11) | (((secs % 3600) / 60) << 5) | ((secs % 60) / 2);
    let date = ((year - 1980) << 9) | (i64::from(month) << 5) | i64::from(day);
    (time as u16, date as u16)
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times_as_in_the_corpus() {
        // SOURCE_DATE_EPOCH=1700000000 is 2023-11-14 22:13:20 UTC.
        assert_eq!(dos_time(Some(1_700_000_000)), (0xb1aa, 0x576e));
        assert_eq!(dos_time(None), (0, 0x21));
        assert_eq!(dos_time(Some(0)), (0, 0x21));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
