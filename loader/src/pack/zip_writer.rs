//! A streaming ZIP writer producing fwup's (libarchive's) layout.
//!
//! Every entry has flag bit 3 and a data descriptor after its data, so
//! nothing is seeked back and resources of any size stream through. The
//! local header carries the uncompressed size when known (libarchive does)
//! and zero CRC; the stored signature entry also carries its compressed
//! size. Extra fields as libarchive writes them: `UT` (modification time
//! when set) and `ux` (uid/gid 0). Entries of 3.75 GiB or more get a zip64
//! extra field in the local header and 64-bit sizes in their descriptor,
//! which is how the loader's walker (and unzip) tell the descriptor size;
//! the central directory gets zip64 fields and records as needed.

use std::io::{self, Write};

use flate2::write::DeflateEncoder;
use flate2::Compression;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const FLAG_DESCRIPTOR: u16 = 0x0008;
const MADE_BY_UNIX: u16 = 3 << 8;
/// `-rw-r--r--` regular file, in the high half of the external attributes.
const UNIX_MODE: u32 = 0o100_644 << 16;
/// Above this many input bytes an entry is written as zip64: deflate can
/// grow incompressible data a little, and the sizes are only known after.
const ZIP64_THRESHOLD: u64 = 0xF000_0000;
/// Encoder output is moved to the file in pieces of about this size.
const DRAIN_AT: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Stored = 0,
    Deflate = 8,
}

struct CentralRecord {
    name: String,
    method: Method,
    mtime: Option<u32>,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
    zip64: bool,
}

/// Writes a ZIP archive front to back into `out`.
pub(crate) struct ZipWriter<W: Write> {
    out: W,
    position: u64,
    central: Vec<CentralRecord>,
    level: u32,
    /// Entries at least this big are zip64 ([`ZIP64_THRESHOLD`]; lower in
    /// tests).
    zip64_from: u64,
}

impl<W: Write> ZipWriter<W> {
    /// `level` is the deflate level, 0 to 9 (fwup uses 9).
    pub fn new(out: W, level: u32) -> Self {
        ZipWriter {
            out,
            position: 0,
            central: Vec::new(),
            level: level.min(9),
            zip64_from: ZIP64_THRESHOLD,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// A stored entry (the signature), with its sizes in the local header.
    pub fn add_stored(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let offset = self.position;
        let crc = crc32fast::hash(data);
        let size = data.len() as u64;
        let zip64 = size >= self.zip64_from;
        self.local_header(name, Method::Stored, None, size, Some(size), zip64)?;
        self.write(data)?;
        self.descriptor(crc, size, size, zip64)?;
        self.central.push(CentralRecord {
            name: name.to_string(),
            method: Method::Stored,
            mtime: None,
            crc,
            compressed: size,
            uncompressed: size,
            offset,
            zip64,
        });
        Ok(())
    }

    /// Starts a deflated entry of `size` bytes (known in advance, as fwup
    /// knows it); write the data into the returned writer, then `finish`.
    pub fn begin_deflated(&mut self, name: &str, size: u64, mtime: Option<u32>) -> io::Result<EntryWriter<'_, W>> {
        let offset = self.position;
        let zip64 = size >= self.zip64_from;
        self.local_header(name, Method::Deflate, mtime, size, None, zip64)?;
        let level = Compression::new(self.level);
        Ok(EntryWriter {
            encoder: DeflateEncoder::new(Vec::with_capacity(DRAIN_AT * 2), level),
            crc: crc32fast::Hasher::new(),
            uncompressed: 0,
            compressed_start: self.position,
            record: CentralRecord {
                name: name.to_string(),
                method: Method::Deflate,
                mtime,
                crc: 0,
                compressed: 0,
                uncompressed: 0,
                offset,
                zip64,
            },
            zip: self,
        })
    }

    fn local_header(
        &mut self,
        name: &str,
        method: Method,
        mtime: Option<u32>,
        size: u64,
        compressed: Option<u64>,
        zip64: bool,
    ) -> io::Result<()> {
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
        self.write(&h)
    }

    fn descriptor(&mut self, crc: u32, compressed: u64, uncompressed: u64, zip64: bool) -> io::Result<()> {
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
        self.write(&d)
    }

    /// Writes the central directory and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let start = self.position;
        let records = std::mem::take(&mut self.central);
        for record in &records {
            let bytes = central_header(record)?;
            self.write(&bytes)?;
        }
        let size = self.position - start;
        let count = records.len() as u64;
        let needs_zip64 = start >= u64::from(u32::MAX) || size >= u64::from(u32::MAX) || count >= 0xffff;
        if needs_zip64 {
            let record_at = self.position;
            let mut z = Vec::with_capacity(76);
            z.extend_from_slice(&ZIP64_END_OF_CENTRAL.to_le_bytes());
            z.extend_from_slice(&44u64.to_le_bytes());
            z.extend_from_slice(&(MADE_BY_UNIX | 45).to_le_bytes());
            z.extend_from_slice(&45u16.to_le_bytes());
            z.extend_from_slice(&[0u8; 8]); // disk numbers
            z.extend_from_slice(&count.to_le_bytes());
            z.extend_from_slice(&count.to_le_bytes());
            z.extend_from_slice(&size.to_le_bytes());
            z.extend_from_slice(&start.to_le_bytes());
            z.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
            z.extend_from_slice(&0u32.to_le_bytes());
            z.extend_from_slice(&record_at.to_le_bytes());
            z.extend_from_slice(&1u32.to_le_bytes());
            self.write(&z)?;
        }
        let mut e = Vec::with_capacity(22);
        e.extend_from_slice(&END_OF_CENTRAL.to_le_bytes());
        e.extend_from_slice(&[0u8; 4]); // disk numbers
        let count16 = u16::try_from(count).unwrap_or(u16::MAX);
        e.extend_from_slice(&count16.to_le_bytes());
        e.extend_from_slice(&count16.to_le_bytes());
        e.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
        e.extend_from_slice(&u32::try_from(start).unwrap_or(u32::MAX).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.write(&e)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Receives one deflated entry's data.
pub(crate) struct EntryWriter<'a, W: Write> {
    zip: &'a mut ZipWriter<W>,
    encoder: DeflateEncoder<Vec<u8>>,
    crc: crc32fast::Hasher,
    uncompressed: u64,
    compressed_start: u64,
    record: CentralRecord,
}

impl<W: Write> EntryWriter<'_, W> {
    fn drain(&mut self) -> io::Result<()> {
        let pending = std::mem::take(self.encoder.get_mut());
        let result = self.zip.write(&pending);
        // Give the buffer back to the encoder to reuse its capacity.
        let mut buffer = pending;
        buffer.clear();
        *self.encoder.get_mut() = buffer;
        result
    }

    /// Ends the entry: flushes the deflate stream and writes the descriptor.
    pub fn finish(mut self) -> io::Result<()> {
        self.encoder.try_finish()?;
        self.drain()?;
        let EntryWriter {
            zip,
            crc,
            uncompressed,
            compressed_start,
            mut record,
            ..
        } = self;
        let compressed = zip.position - compressed_start;
        if !record.zip64 && (compressed >= u64::from(u32::MAX) || uncompressed >= u64::from(u32::MAX)) {
            return Err(io::Error::other(format!(
                "{}: more data than announced ({uncompressed} bytes); the entry cannot be finished",
                record.name
            )));
        }
        record.crc = crc.finalize();
        record.compressed = compressed;
        record.uncompressed = uncompressed;
        zip.descriptor(record.crc, compressed, uncompressed, record.zip64)?;
        zip.central.push(record);
        Ok(())
    }
}

impl<W: Write> Write for EntryWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        self.crc.update(&buf[..n]);
        self.uncompressed += n as u64;
        if self.encoder.get_ref().len() >= DRAIN_AT {
            self.drain()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

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

fn central_header(r: &CentralRecord) -> io::Result<Vec<u8>> {
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

    fn sample_archive(zip64_from: u64) -> (Vec<u8>, Vec<u8>) {
        let mut zip = ZipWriter::new(Vec::new(), 9);
        zip.zip64_from = zip64_from;
        zip.add_stored("sig", &[7u8; 64]).expect("stored");
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut entry = zip
            .begin_deflated("data/x", body.len() as u64, Some(1_700_000_000))
            .expect("begin");
        for piece in body.chunks(7000) {
            entry.write_all(piece).expect("write");
        }
        entry.finish().expect("finish");
        (zip.finish().expect("finish"), body)
    }

    fn read_back(bytes: &[u8], body: Vec<u8>) {
        use crate::bundle::zip::ZipWalker;
        use std::io::Read;
        let mut walker = ZipWalker::new(&bytes[..]);
        let mut seen = Vec::new();
        while let Some(mut e) = walker.next_entry().expect("entry") {
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            seen.push((e.name().to_string(), data));
        }
        assert_eq!(
            seen,
            vec![("sig".to_string(), vec![7u8; 64]), ("data/x".to_string(), body)]
        );
    }

    #[test]
    fn entries_read_back_with_the_loaders_walker() {
        let (bytes, body) = sample_archive(ZIP64_THRESHOLD);
        assert!(!bytes.windows(4).any(|w| w == ZIP64_END_OF_CENTRAL.to_le_bytes()));
        read_back(&bytes, body);
    }

    /// The zip64 layout (local extra field, 64-bit descriptors, central
    /// extra fields), forced on small entries.
    #[test]
    fn zip64_entries_read_back() {
        let (bytes, body) = sample_archive(0);
        let local_extra = [0x01, 0x00, 16, 0];
        assert!(bytes.windows(4).any(|w| w == local_extra), "no zip64 extra field");
        read_back(&bytes, body);
        // An independent reader: Info-ZIP's unzip, when installed.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("z.zip");
        std::fs::write(&path, &bytes).expect("write");
        match std::process::Command::new("unzip").arg("-tq").arg(&path).output() {
            Ok(out) => assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout)),
            Err(e) => eprintln!("unzip not available ({e}); skipped"),
        }
    }
}
