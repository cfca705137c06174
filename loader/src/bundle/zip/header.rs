//! ZIP record layouts (APPNOTE.TXT 4.3): signatures, the local file
//! header with its extra fields, and the data descriptor. Pure functions
//! over bytes, so they are tested without a stream.

use super::error::{After, ZipError};

pub(super) const LOCAL_HEADER: u32 = 0x0403_4b50;
pub(super) const CENTRAL_HEADER: u32 = 0x0201_4b50;
pub(super) const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
pub(super) const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
pub(super) const DATA_DESCRIPTOR: u32 = 0x0807_4b50;

/// The local header after its 4-byte signature, up to the name.
pub(super) const FIXED_LEN: usize = 26;

const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_MASKED_HEADER: u16 = 1 << 13;

const EXTRA_ZIP64: u16 = 0x0001;
/// A 32-bit size field with this value means "see the zip64 extra field".
const ZIP64_MARKER: u32 = u32::MAX;

/// How an entry's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Method 0: the bytes as they are.
    Stored,
    /// Method 8: raw deflate (RFC 1951).
    Deflated,
}

/// A parsed local file header.
#[derive(Debug, Clone)]
pub(super) struct LocalHeader {
    pub name: String,
    pub method: Method,
    /// Offset of the header's signature in the bundle.
    pub offset: u64,
    pub crc32: u32,
    /// Sizes as the header gives them (zip64 values already applied).
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Flag bit 3: CRC and sizes follow the data in a data descriptor.
    pub has_descriptor: bool,
    /// A zip64 extra field was present, so a descriptor uses 64-bit sizes.
    pub zip64: bool,
}

impl LocalHeader {
    /// The data's compressed length when the header alone delimits it.
    ///
    /// A stored entry has equal sizes, so either non-zero one will do
    /// (libarchive, and so fwup, writes both even with a descriptor). With a
    /// descriptor and both sizes 0 there is no length: `None`.
    pub fn stored_length(&self) -> Option<u64> {
        if !self.has_descriptor {
            return Some(self.compressed_size);
        }
        match (self.compressed_size, self.uncompressed_size) {
            (0, 0) => None,
            (0, n) | (n, _) => Some(n),
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(le)
}

pub(super) fn signature_of(bytes: [u8; 4]) -> u32 {
    u32::from_le_bytes(bytes)
}

/// Lengths of the variable parts that follow the fixed fields.
pub(super) fn name_and_extra_len(fixed: &[u8; FIXED_LEN]) -> (usize, usize) {
    (usize::from(u16_at(fixed, 22)), usize::from(u16_at(fixed, 24)))
}

/// Parses a local header from its fixed fields, name and extra field.
/// `offset` is where its signature started; `after` names the entry before
/// it, for messages.
pub(super) fn parse_local_header(
    offset: u64,
    after: &After,
    fixed: &[u8; FIXED_LEN],
    name: &[u8],
    extra: &[u8],
) -> Result<LocalHeader, ZipError> {
    let corrupt = |reason: String| ZipError::BadHeader {
        offset,
        after: after.clone(),
        reason,
    };
    let flags = u16_at(fixed, 2);
    let method_code = u16_at(fixed, 4);
    let crc32 = u32_at(fixed, 10);
    let compressed32 = u32_at(fixed, 14);
    let uncompressed32 = u32_at(fixed, 18);

    if name.is_empty() {
        return Err(corrupt("the local file header has an empty file name".into()));
    }
    // Names are ASCII in every fwup bundle; anything else is shown, never
    // trusted, so a lossy conversion is enough.
    let name = String::from_utf8_lossy(name).into_owned();
    let unsupported = |feature: String| ZipError::Unsupported {
        entry: name.clone(),
        feature,
    };

    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 || method_code == 99 {
        return Err(unsupported(
            "encryption (bundles must not be encrypted; they are signed instead)".into(),
        ));
    }
    if flags & FLAG_MASKED_HEADER != 0 {
        return Err(unsupported(
            "a masked local header (central directory encryption)".into(),
        ));
    }
    let method = match method_code {
        0 => Method::Stored,
        8 => Method::Deflated,
        other => {
            return Err(unsupported(format!(
                "compression method {other} ({})",
                method_name(other)
            )))
        }
    };

    let mut header = LocalHeader {
        name,
        method,
        offset,
        crc32,
        compressed_size: u64::from(compressed32),
        uncompressed_size: u64::from(uncompressed32),
        has_descriptor: flags & FLAG_DATA_DESCRIPTOR != 0,
        zip64: false,
    };
    apply_extra_fields(&mut header, extra, uncompressed32, compressed32).map_err(corrupt)?;
    if method == Method::Stored && !header.has_descriptor && header.compressed_size != header.uncompressed_size {
        return Err(corrupt(format!(
            "stored entry `{}` has compressed size {} but uncompressed size {}",
            header.name, header.compressed_size, header.uncompressed_size
        )));
    }
    if method == Method::Stored && header.has_descriptor {
        let (c, u) = (header.compressed_size, header.uncompressed_size);
        if c != 0 && u != 0 && c != u {
            return Err(corrupt(format!(
                "stored entry `{}` has compressed size {c} but uncompressed size {u}",
                header.name
            )));
        }
    }
    Ok(header)
}

/// Walks the extra field's `(id, len, data)` records; takes the zip64
/// sizes for the 32-bit fields that are `0xffffffff`, in the order the
/// specification gives (uncompressed, then compressed).
fn apply_extra_fields(
    header: &mut LocalHeader,
    extra: &[u8],
    uncompressed32: u32,
    compressed32: u32,
) -> Result<(), String> {
    let mut rest = extra;
    while rest.len() >= 4 {
        let id = u16_at(rest, 0);
        let len = usize::from(u16_at(rest, 2));
        let Some(data) = rest.get(4..4 + len) else {
            return Err(format!(
                "extra field 0x{id:04x} claims {len} bytes but only {} remain",
                rest.len() - 4
            ));
        };
        if id == EXTRA_ZIP64 {
            header.zip64 = true;
            let mut at = 0;
            for (field32, target) in [
                (uncompressed32, &mut header.uncompressed_size),
                (compressed32, &mut header.compressed_size),
            ] {
                if field32 != ZIP64_MARKER {
                    continue;
                }
                if data.len() < at + 8 {
                    return Err("the zip64 extra field is too short for the sizes it replaces".into());
                }
                *target = u64_at(data, at);
                at += 8;
            }
        }
        rest = &rest[4 + len..];
    }
    // A few trailing bytes that cannot hold a record are padding some
    // writers leave; they carry no meaning.
    Ok(())
}

fn method_name(code: u16) -> &'static str {
    match code {
        1 => "shrink",
        2..=5 => "reduce",
        6 => "implode",
        9 => "deflate64",
        12 => "bzip2",
        14 => "LZMA",
        93 => "zstd",
        95 => "xz",
        96 => "JPEG",
        97 => "WavPack",
        98 => "PPMd",
        _ => "unknown",
    }
}

/// CRC and sizes from a data descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Descriptor {
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
}

/// Bytes of a descriptor after its optional signature and CRC: two 32-bit
/// or two 64-bit sizes.
pub(super) fn descriptor_sizes_len(zip64: bool) -> usize {
    if zip64 {
        16
    } else {
        8
    }
}

/// Length of a whole descriptor: optional signature, CRC-32, two sizes.
pub(super) fn descriptor_len(signed: bool, zip64: bool) -> usize {
    let signature_and_crc = if signed { 8 } else { 4 };
    signature_and_crc + descriptor_sizes_len(zip64)
}

pub(super) fn parse_descriptor_sizes(crc32: u32, sizes: &[u8]) -> Descriptor {
    if sizes.len() >= 16 {
        Descriptor {
            crc32,
            compressed_size: u64_at(sizes, 0),
            uncompressed_size: u64_at(sizes, 8),
        }
    } else {
        Descriptor {
            crc32,
            compressed_size: u64::from(u32_at(sizes, 0)),
            uncompressed_size: u64::from(u32_at(sizes, 4)),
        }
    }
}
