//! One entry's data: stored bytes or a deflate stream, CRC-32 over what
//! comes out (unless the walker's caller waived it), and at the end the
//! check against the data descriptor or the local header.
//!
//! A deflated entry is delimited by the deflate stream itself: the inflater
//! is fed straight from the source's buffer and only the bytes it consumed
//! are marked used, so the data descriptor that follows is the next thing
//! read. This is what lets fwup's bundles (sizes only after the data) be
//! read front to back without seeking. A stored entry without sizes ends
//! where [`descriptor_scan`] finds the descriptor that describes it.
//!
//! An entry nobody needs can be skipped ([`Body::skip`]): stored data is
//! passed over, deflate data is walked by [`deflate_skip`] without being
//! inflated.

use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

use crate::bundle::crc32::Crc32;

use super::deflate_skip::{self, SkipError};
use super::descriptor_scan::{self, Scan};
use super::error::{Place, SizeKind, ZipError};
use super::header::{self, Descriptor, LocalHeader, Method};
use super::source::Source;

/// Reading progress through one entry.
pub(super) struct Body {
    pub header: LocalHeader,
    crc: Crc32,
    /// The caller checks the data against a stronger digest and the end is
    /// found without the CRC: it is neither computed nor compared.
    crc_waived: bool,
    /// Source bytes taken as this entry's data.
    compressed: u64,
    /// Bytes handed to the reader.
    uncompressed: u64,
    /// How many source bytes the data may take, when the header says.
    compressed_limit: Option<u64>,
    /// A stored entry without sizes: where its data ends (an offset within
    /// the entry) and the descriptor found there, once the scan found it.
    scanned_end: Option<(u64, usize, Descriptor)>,
    /// The data has ended and been checked.
    verified: bool,
}

impl Body {
    /// `waive_crc`: see [`super::ZipWalker::waive_crc`]. A stored entry
    /// sized only by its descriptor keeps its CRC, which finds its end.
    pub(super) fn new(header: LocalHeader, waive_crc: bool) -> Self {
        let compressed_limit = match (header.method, header.has_descriptor) {
            (Method::Stored, _) => header.stored_length(),
            (Method::Deflated, false) => Some(header.compressed_size),
            (Method::Deflated, true) => None,
        };
        let framed_by_crc = header.method == Method::Stored && compressed_limit.is_none();
        Body {
            header,
            crc: Crc32::new(),
            crc_waived: waive_crc && !framed_by_crc,
            compressed: 0,
            uncompressed: 0,
            compressed_limit,
            scanned_end: None,
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
            if !self.crc_waived {
                self.crc.update(&out[..produced]);
            }
            self.uncompressed += produced as u64;
            return Ok(produced);
        }
        self.finish(src)?;
        Ok(0)
    }

    fn read_stored<R: Read>(&mut self, src: &mut Source<R>, out: &mut [u8]) -> Result<usize, ZipError> {
        let Some(limit) = self.compressed_limit else {
            return self.read_until_descriptor(src, out);
        };
        let remaining = limit.saturating_sub(self.compressed);
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

    /// A stored entry sized only by its descriptor: the bytes up to the
    /// boundary [`descriptor_scan`] accepts; 0 once there.
    fn read_until_descriptor<R: Read>(&mut self, src: &mut Source<R>, out: &mut [u8]) -> Result<usize, ZipError> {
        let window = src.fill_at_least(descriptor_scan::LOOK_AHEAD)?;
        let data_left = match self.scanned_end {
            Some((end, _, _)) => usize::try_from(end - self.compressed).unwrap_or(usize::MAX),
            None => {
                let at_eof = window.len() < descriptor_scan::LOOK_AHEAD;
                // Look no further than this read can hand out, so that many
                // small reads do not scan the same bytes again and again.
                let view = &window[..window.len().min(out.len().saturating_add(descriptor_scan::LOOK_AHEAD))];
                match descriptor_scan::scan(view, at_eof, self.compressed, &self.crc, self.header.zip64) {
                    Scan::End { at, len, descriptor } => {
                        self.scanned_end = Some((self.compressed + at as u64, len, descriptor));
                        at
                    }
                    Scan::Data(0) => {
                        return Err(self.truncated(
                            src,
                            Place::EntryData {
                                entry: self.header.name.clone(),
                            },
                        ))
                    }
                    Scan::Data(n) => n,
                }
            }
        };
        let n = data_left.min(out.len()).min(window.len());
        out[..n].copy_from_slice(&window[..n]);
        src.consume(n);
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
        let (expected, source_of_truth) = if self.header.has_descriptor {
            let descriptor = match self.scanned_end {
                // Already read (and matched) by the scan; step over it.
                Some((_, len, descriptor)) => {
                    src.fill_at_least(len)?;
                    src.consume(len);
                    descriptor
                }
                None => self.read_descriptor(src)?,
            };
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
        let actual_crc = self.crc.clone().finalize();
        if !self.crc_waived && actual_crc != expected.crc32 {
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

    /// Passes over the rest of an entry without inflating it. A stored
    /// entry without sizes is read as usual, since its end is found through
    /// its CRC; `scratch` takes its bytes.
    pub(super) fn skip<R: Read>(
        &mut self,
        src: &mut Source<R>,
        inflater: &mut Decompress,
        scratch: &mut [u8],
    ) -> Result<(), ZipError> {
        let started = self.compressed > 0 || self.uncompressed > 0;
        match (self.header.method, self.compressed_limit) {
            (Method::Deflated, Some(limit)) if !started => {
                self.pass_over(src, limit)?;
                self.finish_skipped(src)
            }
            (Method::Deflated, None) if !started => {
                let skipped = deflate_skip::skip_deflate(src).map_err(|e| match e {
                    SkipError::Truncated => self.truncated(
                        src,
                        Place::EntryData {
                            entry: self.header.name.clone(),
                        },
                    ),
                    SkipError::Corrupt(detail) => ZipError::CorruptDeflate {
                        entry: self.header.name.clone(),
                        offset: src.position(),
                        detail: detail.to_string(),
                    },
                    SkipError::Source(e) => e,
                })?;
                self.compressed = skipped.compressed;
                self.uncompressed = skipped.uncompressed;
                self.finish_skipped(src)
            }
            (Method::Stored, Some(limit)) if !started => {
                self.pass_over(src, limit)?;
                self.uncompressed = self.compressed;
                self.finish_skipped(src)
            }
            _ => {
                while !self.verified {
                    self.read(src, inflater, scratch)?;
                }
                Ok(())
            }
        }
    }

    /// Consumes `len` source bytes of data.
    fn pass_over<R: Read>(&mut self, src: &mut Source<R>, len: u64) -> Result<(), ZipError> {
        while self.compressed < len {
            let available = src.fill_buf()?.len();
            if available == 0 {
                return Err(self.truncated(
                    src,
                    Place::EntryData {
                        entry: self.header.name.clone(),
                    },
                ));
            }
            let n = available.min(usize::try_from(len - self.compressed).unwrap_or(usize::MAX));
            src.consume(n);
            self.compressed += n as u64;
        }
        Ok(())
    }

    /// The end of a skipped entry: step over its descriptor. Neither sizes
    /// nor CRC are compared, as libarchive (fwup) does not compare them for
    /// an entry it skips: nothing of it is used.
    fn finish_skipped<R: Read>(&mut self, src: &mut Source<R>) -> Result<(), ZipError> {
        if self.header.has_descriptor {
            self.read_descriptor(src)?;
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
