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

use super::zip_records::{central_header, descriptor, end_of_central, local_header, CentralRecord, Method};

/// Above this many input bytes an entry is written as zip64: deflate can
/// grow incompressible data a little, and the sizes are only known after.
const ZIP64_THRESHOLD: u64 = 0xF000_0000;
/// Encoder output is moved to the file in pieces of about this size.
const DRAIN_AT: usize = 256 * 1024;

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
        self.write(&local_header(name, Method::Stored, None, size, Some(size), zip64)?)?;
        self.write(data)?;
        self.write(&descriptor(crc, size, size, zip64)?)?;
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
        self.write(&local_header(name, Method::Deflate, mtime, size, None, zip64)?)?;
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
        let end = end_of_central(start, size, count, self.position);
        self.write(&end)?;
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
        zip.write(&descriptor(record.crc, compressed, uncompressed, record.zip64)?)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut walker = ZipWalker::new(bytes);
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
        let zip64_end = crate::pack::zip_records::ZIP64_END_OF_CENTRAL.to_le_bytes();
        assert!(!bytes.windows(4).any(|w| w == zip64_end));
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
