//! A ZIP reader that walks a bundle strictly front to back.
//!
//! A `.fw` may arrive on stdin or as an HTTPS body that is never stored, so
//! this reader never seeks and never looks at the central directory: it
//! reads each local header, the entry's data, and (fwup always writes one)
//! the data descriptor after it, then stops at the central directory.
//!
//! ```no_run
//! # use std::io::Read;
//! # fn demo(file: std::fs::File) -> Result<(), Box<dyn std::error::Error>> {
//! use loader::bundle::zip::ZipWalker;
//! let mut walker = ZipWalker::new(file);
//! while let Some(mut entry) = walker.next_entry()? {
//!     let name = entry.name().to_string();
//!     let mut data = Vec::new();
//!     // An `Err` here names the entry: bad CRC, truncation, corrupt data.
//!     entry.read_to_end(&mut data)?;
//!     println!("{name}: {} bytes", data.len());
//! }
//! # Ok(()) }
//! ```
//!
//! What is checked: every entry's CRC-32 and both sizes against the data
//! descriptor or the local header (and against sizes the header gives even
//! when a descriptor follows). An entry dropped unread is still read and
//! checked by the next `next_entry`, so a walk that returns `Ok(None)` has
//! verified every entry, except those explicitly skipped with
//! [`Entry::skip`] (data not inflated, nothing checked). After any error
//! the walker refuses to go on.
//!
//! Stored entries whose sizes come only in the data descriptor (streaming
//! writers: Python's `zipfile` on a pipe, Perl's `IO::Compress::Zip`, Go)
//! end where a descriptor that matches the CRC-32 and length of everything
//! before it starts (see `descriptor_scan`); a look-alike inside the data
//! whose CRC or length does not match is data. The central directory is
//! never consulted: fwup (libarchive's streaming reader) does not read it
//! either, so an archive whose directory disagrees with its entries reads
//! the same in both.
//!
//! What is refused: encryption, methods other than stored and deflate, two
//! entries with the same name (which one would count?), and anything that
//! is not a ZIP record where one must start.

mod body;
mod deflate_skip;
mod descriptor_scan;
mod error;
mod header;
#[cfg(test)]
mod header_tests;
mod source;
#[cfg(test)]
mod test_bytes;

use std::collections::HashMap;
use std::io::{self, Read};

use flate2::Decompress;

pub use error::{After, Magic, Place, SizeKind, ZipError};
pub use header::Method;
pub use source::DEFAULT_BUFFER;

use body::Body;
use header::LocalHeader;
use source::Source;

/// Skipping an unread entry reads it in pieces of this size.
const SKIP_CHUNK: usize = 64 * 1024;

enum Phase {
    /// Positioned at a header (or the start).
    BetweenEntries,
    /// Inside the data of `body`.
    InEntry(Box<Body>),
    /// The central directory or end record was reached.
    Finished,
    /// An error happened; the stream position is meaningless now.
    Failed,
}

/// Walks the entries of a ZIP stream in order. See the module docs.
pub struct ZipWalker<R> {
    src: Source<R>,
    inflater: Decompress,
    phase: Phase,
    /// Name of the last entry started, for messages about what follows it.
    last_entry: Option<String>,
    /// Every name seen so far and where its header was.
    names: HashMap<String, u64>,
    scratch: Vec<u8>,
    /// See [`ZipWalker::waive_crc`].
    crc_waived: bool,
}

impl<R: Read> ZipWalker<R> {
    /// A walker over `reader` with a [`DEFAULT_BUFFER`] read-ahead.
    pub fn new(reader: R) -> Self {
        Self::with_buffer(reader, DEFAULT_BUFFER)
    }

    /// A walker with a read-ahead of `capacity` bytes (at least 4 KiB).
    pub fn with_buffer(reader: R, capacity: usize) -> Self {
        ZipWalker {
            src: Source::new(reader, capacity),
            inflater: Decompress::new(false),
            phase: Phase::BetweenEntries,
            last_entry: None,
            names: HashMap::new(),
            scratch: Vec::new(),
            crc_waived: false,
        }
    }

    /// From the next entry on, the caller checks every byte it reads
    /// against a stronger digest (the install's BLAKE2b-256 against
    /// meta.conf), so the CRC-32 is not computed where the entry's end is
    /// found without it (deflate data, or sizes in the local header); the
    /// sizes are still checked. The CRC cost a fifth of a one-vCPU guest's
    /// time per byte (0.171 of 0.912 s for 112 MB, `byte_costs_guest.sh`)
    /// and detects nothing BLAKE2b-256 would not.
    pub fn waive_crc(&mut self) {
        self.crc_waived = true;
    }

    /// Bytes of the source consumed so far: after `next_entry` returned,
    /// the offset where the entry's data starts; at the end of an entry's
    /// data, where the next header starts.
    pub fn bytes_consumed(&self) -> u64 {
        self.src.position()
    }

    /// Gives back the source (with whatever was read ahead lost).
    pub fn into_inner(self) -> R {
        self.src.into_inner()
    }

    /// Moves to the next entry, first reading and checking whatever is left
    /// of the current one. `Ok(None)` at the central directory: every
    /// entry has then been verified.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>, ZipError> {
        match std::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::Failed => return Err(ZipError::AfterFailure),
            Phase::Finished => {
                self.phase = Phase::Finished;
                return Ok(None);
            }
            Phase::InEntry(mut body) => {
                // `phase` stays `Failed` if the rest of the entry is bad.
                self.drain(&mut body)?;
            }
            Phase::BetweenEntries => {}
        }
        match self.read_header()? {
            Some(header) => {
                if let Some(&first) = self.names.get(&header.name) {
                    return Err(ZipError::DuplicateEntry {
                        entry: header.name,
                        first,
                        again: header.offset,
                    });
                }
                self.names.insert(header.name.clone(), header.offset);
                self.inflater.reset(false);
                self.last_entry = Some(header.name.clone());
                self.phase = Phase::InEntry(Box::new(Body::new(header, self.crc_waived)));
                Ok(Some(Entry { walker: self }))
            }
            None => {
                self.phase = Phase::Finished;
                Ok(None)
            }
        }
    }

    /// The entry [`ZipWalker::next_entry`] last returned (reading it gives
    /// `Ok(0)` once its data ended and checked out), for a caller that
    /// reads it across calls of its own; `None` between entries.
    pub fn current_entry(&mut self) -> Option<Entry<'_, R>> {
        matches!(self.phase, Phase::InEntry(_)).then_some(Entry { walker: self })
    }

    /// Passes over the rest of the current entry without inflating it.
    fn skip_current(&mut self) -> Result<(), ZipError> {
        let mut body = match std::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::InEntry(body) => body,
            Phase::Failed => return Err(ZipError::AfterFailure),
            other => {
                self.phase = other;
                return Ok(());
            }
        };
        if self.scratch.len() < SKIP_CHUNK {
            self.scratch.resize(SKIP_CHUNK, 0);
        }
        // `phase` stays `Failed` if the entry is bad.
        body.skip(&mut self.src, &mut self.inflater, &mut self.scratch)?;
        self.phase = Phase::BetweenEntries;
        Ok(())
    }

    /// Reads and checks the rest of an entry nobody read.
    fn drain(&mut self, body: &mut Body) -> Result<(), ZipError> {
        if self.scratch.len() < SKIP_CHUNK {
            self.scratch.resize(SKIP_CHUNK, 0);
        }
        while !body.is_verified() {
            body.read(&mut self.src, &mut self.inflater, &mut self.scratch)?;
        }
        Ok(())
    }

    /// Reads the next record's signature and, for a local header, the
    /// header. `None` at the central directory or end record.
    fn read_header(&mut self) -> Result<Option<LocalHeader>, ZipError> {
        let offset = self.src.position();
        let after = After(self.last_entry.clone());
        let truncated_place = match &self.last_entry {
            Some(entry) => Place::AfterEntry { entry: entry.clone() },
            None => Place::LocalHeader { header_offset: offset },
        };
        let mut magic = [0u8; 4];
        let got = self.src.read_up_to(&mut magic)?;
        if got == 0 && offset == 0 {
            return Err(ZipError::Empty);
        }
        if got < 4 {
            return Err(ZipError::Truncated {
                offset: self.src.position(),
                place: truncated_place,
            });
        }
        match header::signature_of(magic) {
            header::LOCAL_HEADER => {}
            header::CENTRAL_HEADER | header::END_OF_CENTRAL_DIRECTORY | header::ZIP64_END_OF_CENTRAL_DIRECTORY => {
                return Ok(None)
            }
            _ if offset == 0 => return Err(ZipError::NotZip { found: Magic(magic) }),
            _ => {
                return Err(ZipError::BadSignature {
                    offset,
                    found: Magic(magic),
                    after,
                })
            }
        }

        let in_header = |src: &Source<R>| ZipError::Truncated {
            offset: src.position(),
            place: Place::LocalHeader { header_offset: offset },
        };
        let mut fixed = [0u8; header::FIXED_LEN];
        if self.src.read_up_to(&mut fixed)? < fixed.len() {
            return Err(in_header(&self.src));
        }
        let (name_len, extra_len) = header::name_and_extra_len(&fixed);
        let mut variable = vec![0u8; name_len + extra_len];
        if self.src.read_up_to(&mut variable)? < variable.len() {
            return Err(in_header(&self.src));
        }
        let (name, extra) = variable.split_at(name_len);
        header::parse_local_header(offset, &after, &fixed, name, extra).map(Some)
    }

    fn read_current(&mut self, buf: &mut [u8]) -> Result<usize, ZipError> {
        let body = match &mut self.phase {
            Phase::InEntry(body) => body,
            Phase::Failed => return Err(ZipError::AfterFailure),
            Phase::BetweenEntries | Phase::Finished => return Ok(0),
        };
        match body.read(&mut self.src, &mut self.inflater, buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.phase = Phase::Failed;
                Err(e)
            }
        }
    }

    fn current(&self) -> Option<&LocalHeader> {
        match &self.phase {
            Phase::InEntry(body) => Some(&body.header),
            _ => None,
        }
    }
}

/// One entry of the walk; `Read` yields its uncompressed data.
///
/// The read that reaches the end of the data checks CRC-32 and sizes and
/// returns `Ok(0)` only when they match; otherwise an `io::Error` whose
/// inner error is a [`ZipError`] naming the entry.
pub struct Entry<'a, R: Read> {
    walker: &'a mut ZipWalker<R>,
}

impl<R: Read> Entry<'_, R> {
    /// The entry's path in the archive, e.g. `data/rootfs.img`.
    pub fn name(&self) -> &str {
        self.walker.current().map_or("", |h| h.name.as_str())
    }

    pub fn method(&self) -> Option<Method> {
        self.walker.current().map(|h| h.method)
    }

    /// The uncompressed size the local header declares, if it declares one
    /// (fwup's headers do). Checked when the data ends.
    pub fn uncompressed_size(&self) -> Option<u64> {
        self.walker.current().and_then(|h| declared(h, h.uncompressed_size))
    }

    /// The compressed size the local header declares, if any (fwup's
    /// deflated entries have none: the deflate stream marks the end).
    pub fn compressed_size(&self) -> Option<u64> {
        self.walker.current().and_then(|h| declared(h, h.compressed_size))
    }

    /// Offset of this entry's local header in the bundle.
    pub fn header_offset(&self) -> u64 {
        self.walker.current().map_or(0, |h| h.offset)
    }

    /// Passes over an entry nobody needs without inflating it: the work is
    /// proportional to its compressed size however large it would inflate
    /// (a ZIP bomb costs nothing). Neither its CRC-32 nor its sizes are
    /// checked, as fwup does not check them (except for a stored entry
    /// without sizes, whose end is found through them).
    pub fn skip(self) -> Result<(), ZipError> {
        self.walker.skip_current()
    }
}

/// A header size is a declaration unless a descriptor follows and the
/// field is 0 (the "see the descriptor" value).
fn declared(header: &LocalHeader, size: u64) -> Option<u64> {
    (!header.has_descriptor || size != 0).then_some(size)
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.walker.read_current(buf).map_err(ZipError::into_io)
    }
}
