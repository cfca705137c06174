//! One entry's data: stored bytes or a deflate stream, CRC-32 over what
//! comes out, and at the end the check against the data descriptor or the
//! local header.
//!
//! A deflated entry is delimited by the deflate stream itself: the inflater
//! is fed straight from the source's buffer and only the bytes it consumed
//! are marked used, so the data descriptor that follows is the next thing
//! read. This is what lets fwup's bundles (sizes only after the data) be
//! read front to back without seeking.

use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

use super::error::{Place, SizeKind, ZipError};
use super::header::{self, Descriptor, LocalHeader, Method};
use super::source::Source;

/// Reading progress through one entry.
pub(super) struct Body {
    pub header: LocalHeader,
    crc: crc32fast::Hasher,
    /// Source bytes taken as this entry's data.
    compressed: u64,
    /// Bytes handed to the reader.
    uncompressed: u64,
    /// How many source bytes the data may take, when the header says.
    compressed_limit: Option<u64>,
    /// The data has ended and been checked.
    verified: bool,
}

impl Body {
    pub(super) fn new(header: LocalHeader) -> Self {
        let compressed_limit = match (header.method, header.has_descriptor) {
            (Method::Stored, _) => header.stored_length(),
            (Method::Deflated, false) => Some(header.compressed_size),
            (Method::Deflated, true) => None,
        };
        Body {
            header,
            crc: crc32fast::Hasher::new(),
            compressed: 0,
            uncompressed: 0,
            compressed_limit,
            verified: false,
        }
    }

    pub(super) fn is_verified(&self) -> bool {
        self.verified
    }

    /// Reads the next uncompressed bytes into `out`. Returns 0 only after
    /// the data ended and its CRC and sizes checked out.
    pub(super) fn read<R: Read>(
        &mut self,
        src: &mut Source<R>,
        inflater: &mut Decompress,
        out: &mut [u8],
    ) -> Result<usize, ZipError> {
        if self.verified || out.is_empty() {
            return Ok(0);
        }
        let produced = match self.header.method {
            Method::Stored => self.read_stored(src, out)?,
            Method::Deflated => self.inflate(src, inflater, out)?,
        };
        if produced > 0 {
            self.crc.update(&out[..produced]);
            self.uncompressed += produced as u64;
            return Ok(produced);
        }
        self.finish(src)?;
        Ok(0)
    }

    fn read_stored<R: Read>(&mut self, src: &mut Source<R>, out: &mut [u8]) -> Result<usize, ZipError> {
        // Without a length (descriptor, both header sizes 0) the entry is
        // either empty or cannot be delimited; `finish` tells which.
        let remaining = self.compressed_limit.unwrap_or(0).saturating_sub(self.compressed);
        if remaining == 0 {
            return Ok(0);
        }
        let want = out.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = src.read_some(&mut out[..want])?;
        if n == 0 {
            return Err(self.truncated(
                src,
                Place::EntryData {
                    entry: self.header.name.clone(),
                },
            ));
        }
        self.compressed += n as u64;
        Ok(n)
    }

    /// Inflates into `out`; 0 means the deflate stream has ended.
    fn inflate<R: Read>(
        &mut self,
        src: &mut Source<R>,
        inflater: &mut Decompress,
        out: &mut [u8],
    ) -> Result<usize, ZipError> {
        loop {
            let chunk_at = src.position();
            let allowed = match self.compressed_limit {
                Some(limit) => usize::try_from(limit.saturating_sub(self.compressed)).unwrap_or(usize::MAX),
                None => usize::MAX,
            };
            let available = src.fill_buf()?;
            let at_eof = available.is_empty();
            let input = &available[..available.len().min(allowed)];
            let input_was_empty = input.is_empty();
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let status =
                inflater
                    .decompress(input, out, FlushDecompress::None)
                    .map_err(|e| ZipError::CorruptDeflate {
                        entry: self.header.name.clone(),
                        offset: chunk_at,
                        detail: e.to_string(),
                    })?;
            let consumed = usize::try_from(inflater.total_in() - in_before).unwrap_or(0);
            let produced = usize::try_from(inflater.total_out() - out_before).unwrap_or(0);
            src.consume(consumed);
            self.compressed += consumed as u64;

            if produced > 0 || status == Status::StreamEnd {
                return Ok(produced);
            }
            if consumed == 0 {
                if at_eof {
                    return Err(self.truncated(
                        src,
                        Place::EntryData {
                            entry: self.header.name.clone(),
                        },
                    ));
                }
                let detail = if input_was_empty {
                    format!(
                        "the deflate stream does not end within the {} compressed bytes the local header gives",
                        self.compressed
                    )
                } else {
                    "the inflater made no progress".to_string()
                };
                return Err(ZipError::CorruptDeflate {
                    entry: self.header.name.clone(),
                    offset: chunk_at,
                    detail,
                });
            }
        }
    }

    /// The data has ended: read the descriptor if there is one and compare
    /// CRC and sizes.
    fn finish<R: Read>(&mut self, src: &mut Source<R>) -> Result<(), ZipError> {
        let entry = &self.header.name;
        let actual_crc = self.crc.clone().finalize();
        let (expected, source_of_truth) = if self.header.has_descriptor {
            let descriptor = self.read_descriptor(src)?;
            let unsized_stored = self.compressed_limit.is_none() && self.header.method == Method::Stored;
            if unsized_stored
                && descriptor
                    != (Descriptor {
                        crc32: 0,
                        compressed_size: 0,
                        uncompressed_size: 0,
                    })
            {
                return Err(ZipError::Unsupported {
                    entry: entry.clone(),
                    feature: "a stored entry whose size is given only after its data (it cannot be \
                              delimited while streaming; re-create the bundle with fwup or with deflate)"
                        .into(),
                });
            }
            (descriptor, "data descriptor")
        } else {
            let h = &self.header;
            (
                Descriptor {
                    crc32: h.crc32,
                    compressed_size: h.compressed_size,
                    uncompressed_size: h.uncompressed_size,
                },
                "local header",
            )
        };
        if actual_crc != expected.crc32 {
            return Err(ZipError::BadCrc {
                entry: entry.clone(),
                actual: actual_crc,
                expected: expected.crc32,
            });
        }
        let mut checks = vec![
            (
                SizeKind::Compressed,
                self.compressed,
                expected.compressed_size,
                source_of_truth,
            ),
            (
                SizeKind::Uncompressed,
                self.uncompressed,
                expected.uncompressed_size,
                source_of_truth,
            ),
        ];
        // With a descriptor, sizes the header does give (libarchive writes
        // the uncompressed size) must agree too.
        if self.header.has_descriptor {
            if self.header.compressed_size != 0 {
                checks.push((
                    SizeKind::Compressed,
                    self.compressed,
                    self.header.compressed_size,
                    "local header",
                ));
            }
            if self.header.uncompressed_size != 0 {
                checks.push((
                    SizeKind::Uncompressed,
                    self.uncompressed,
                    self.header.uncompressed_size,
                    "local header",
                ));
            }
        }
        for (which, actual, expected, source_of_truth) in checks {
            if actual != expected {
                return Err(ZipError::SizeMismatch {
                    entry: entry.clone(),
                    which,
                    actual,
                    expected,
                    source_of_truth,
                });
            }
        }
        self.verified = true;
        Ok(())
    }

    /// Reads a data descriptor: optional signature, CRC-32, then 32-bit or
    /// (zip64) 64-bit sizes.
    fn read_descriptor<R: Read>(&self, src: &mut Source<R>) -> Result<Descriptor, ZipError> {
        let place = || Place::Descriptor {
            entry: self.header.name.clone(),
        };
        let mut word = [0u8; 4];
        if src.read_up_to(&mut word)? < 4 {
            return Err(self.truncated(src, place()));
        }
        if header::signature_of(word) == header::DATA_DESCRIPTOR && src.read_up_to(&mut word)? < 4 {
            return Err(self.truncated(src, place()));
        }
        let crc32 = u32::from_le_bytes(word);
        // Writers switch to 64-bit sizes when the local header had a zip64
        // field, or (some) when a size no longer fits 32 bits.
        let zip64 =
            self.header.zip64 || self.compressed > u64::from(u32::MAX) || self.uncompressed > u64::from(u32::MAX);
        let mut sizes = [0u8; 16];
        let sizes = &mut sizes[..header::descriptor_sizes_len(zip64)];
        if src.read_up_to(sizes)? < sizes.len() {
            return Err(self.truncated(src, place()));
        }
        Ok(header::parse_descriptor_sizes(crc32, sizes))
    }

    fn truncated<R: Read>(&self, src: &Source<R>, place: Place) -> ZipError {
        ZipError::Truncated {
            offset: src.position(),
            place,
        }
    }
}
