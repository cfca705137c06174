//! Test helpers for the ZIP walker: a small ZIP writer that can produce the
//! layouts the walker must read (fwup's data-descriptor style, ordinary
//! sized entries, zip64 fields, stored entries) and a central-directory
//! reader used as an independent oracle for the corpus bundles.

#![allow(dead_code)] // each test file uses a different part

use std::io::{Read, Write};
use std::path::PathBuf;

use flate2::write::DeflateEncoder;
use flate2::Compression;
use loader::bundle::zip::ZipWalker;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fw")
        .join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// How a test entry is laid out.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub deflate: bool,
    /// Flag bit 3 and a trailing descriptor.
    pub descriptor: bool,
    /// Whether the descriptor starts with its optional signature.
    pub descriptor_signature: bool,
    /// Put the sizes in the local header even with a descriptor (libarchive
    /// does for stored entries).
    pub sizes_in_header: bool,
    /// Local zip64 extra field (sizes 0xffffffff in the fixed header) and,
    /// with a descriptor, 64-bit descriptor sizes.
    pub zip64: bool,
}

/// fwup/libarchive style: deflate, descriptor with signature, header sizes 0.
pub const FWUP: Layout = Layout {
    deflate: true,
    descriptor: true,
    descriptor_signature: true,
    sizes_in_header: false,
    zip64: false,
};
/// Python `zipfile` on a seekable file: sizes in the header, no descriptor.
pub const PLAIN_DEFLATE: Layout = Layout {
    deflate: true,
    descriptor: false,
    descriptor_signature: false,
    sizes_in_header: true,
    zip64: false,
};
pub const PLAIN_STORED: Layout = Layout {
    deflate: false,
    ..PLAIN_DEFLATE
};

/// Deterministic, poorly compressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap_or_else(|e| panic!("deflate: {e}"));
    enc.finish().unwrap_or_else(|e| panic!("deflate: {e}"))
}

struct Central {
    name: String,
    crc: u32,
    csize: u64,
    usize_: u64,
    offset: u64,
    method: u16,
}

#[derive(Default)]
pub struct ZipBuilder {
    pub bytes: Vec<u8>,
    central: Vec<Central>,
}

impl ZipBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry with a correct CRC.
    pub fn add(&mut self, name: &str, data: &[u8], layout: Layout) -> &mut Self {
        self.add_with_crc(name, data, layout, crc32fast::hash(data))
    }

    /// Adds an entry claiming `crc` (to make corrupt archives).
    pub fn add_with_crc(&mut self, name: &str, data: &[u8], layout: Layout, crc: u32) -> &mut Self {
        let payload = if layout.deflate { deflate(data) } else { data.to_vec() };
        let (csize, usize_) = (payload.len() as u64, data.len() as u64);
        let offset = self.bytes.len() as u64;
        let method: u16 = if layout.deflate { 8 } else { 0 };
        let flags: u16 = if layout.descriptor { 8 } else { 0 };
        let header_sizes = layout.sizes_in_header || !layout.descriptor;
        let b = &mut self.bytes;
        b.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        b.extend_from_slice(&20u16.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&method.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0x21, 0]); // time, date 1980-01-01
        b.extend_from_slice(&(if layout.descriptor { 0 } else { crc }).to_le_bytes());
        let mut extra = Vec::new();
        if layout.zip64 {
            b.extend_from_slice(&u32::MAX.to_le_bytes());
            b.extend_from_slice(&u32::MAX.to_le_bytes());
            extra.extend_from_slice(&[1, 0, 16, 0]);
            extra.extend_from_slice(&(if header_sizes { usize_ } else { 0 }).to_le_bytes());
            extra.extend_from_slice(&(if header_sizes { csize } else { 0 }).to_le_bytes());
        } else {
            let (c, u) = if header_sizes {
                (csize as u32, usize_ as u32)
            } else {
                (0, 0)
            };
            b.extend_from_slice(&c.to_le_bytes());
            b.extend_from_slice(&u.to_le_bytes());
        }
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&extra);
        b.extend_from_slice(&payload);
        if layout.descriptor {
            if layout.descriptor_signature {
                b.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
            }
            b.extend_from_slice(&crc.to_le_bytes());
            if layout.zip64 {
                b.extend_from_slice(&csize.to_le_bytes());
                b.extend_from_slice(&usize_.to_le_bytes());
            } else {
                b.extend_from_slice(&(csize as u32).to_le_bytes());
                b.extend_from_slice(&(usize_ as u32).to_le_bytes());
            }
        }
        self.central.push(Central {
            name: name.to_string(),
            crc,
            csize,
            usize_,
            offset,
            method,
        });
        self
    }

    /// Appends raw bytes (garbage between entries, for negative tests).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// Writes the central directory and end record; returns the archive.
    pub fn finish(&mut self) -> Vec<u8> {
        let cd_start = self.bytes.len() as u32;
        for c in &self.central {
            let b = &mut self.bytes;
            b.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            b.extend_from_slice(&[20, 3, 20, 0, 0, 0]);
            b.extend_from_slice(&c.method.to_le_bytes());
            b.extend_from_slice(&[0, 0, 0x21, 0]);
            b.extend_from_slice(&c.crc.to_le_bytes());
            b.extend_from_slice(&(c.csize as u32).to_le_bytes());
            b.extend_from_slice(&(c.usize_ as u32).to_le_bytes());
            b.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
            b.extend_from_slice(&[0; 12]); // extra, comment, disk, attrs
            b.extend_from_slice(&(c.offset as u32).to_le_bytes());
            b.extend_from_slice(c.name.as_bytes());
        }
        let cd_len = self.bytes.len() as u32 - cd_start;
        let n = self.central.len() as u16;
        let b = &mut self.bytes;
        b.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&cd_len.to_le_bytes());
        b.extend_from_slice(&cd_start.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        std::mem::take(&mut self.bytes)
    }
}

/// One central-directory record of an archive: what `unzip -l` lists.
#[derive(Debug, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub uncompressed: u64,
    pub crc: u32,
}

/// Reads the central directory of a complete archive held in memory
/// (independent of the walker: it starts from the end record).
pub fn central_directory(zip: &[u8]) -> Vec<Listed> {
    let eocd = (0..=zip.len().saturating_sub(22))
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .unwrap_or_else(|| panic!("no end of central directory record"));
    let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]);
    let count = u16_at(eocd + 10);
    let mut at = u32_at(eocd + 16) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50, "central directory record at {at}");
        let (name_len, extra_len, comment_len) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let name = String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).into_owned();
        out.push(Listed {
            name,
            uncompressed: u64::from(u32_at(at + 24)),
            crc: u32_at(at + 16),
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    out
}

/// Walks `zip` completely, reading every entry: names and contents, or the
/// first error as text.
pub fn walk_all(zip: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    walk_reader(zip)
}

pub fn walk_reader(reader: impl Read) -> Result<Vec<(String, Vec<u8>)>, String> {
    walk_with_buffer(reader, loader::bundle::zip::DEFAULT_BUFFER)
}

/// Like [`walk_reader`] with a read-ahead of `capacity` bytes (a small one
/// makes records straddle the buffer's end).
pub fn walk_with_buffer(reader: impl Read, capacity: usize) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut walker = ZipWalker::with_buffer(reader, capacity);
    let mut out = Vec::new();
    while let Some(mut entry) = walker.next_entry().map_err(|e| e.to_string())? {
        let name = entry.name().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
        out.push((name, data));
    }
    Ok(out)
}
