//! What can go wrong while walking a bundle's ZIP stream.
//!
//! Every message names the entry (when there is one) and the byte offset in
//! the bundle, so a person at a serial console can tell a truncated download
//! from a corrupt file from a tool that wrote a ZIP feature we do not read.

use std::fmt;
use std::io;

/// An error from [`super::ZipWalker`] or from reading an [`super::Entry`].
///
/// `Entry`'s `Read` impl returns these wrapped in an [`io::Error`]; get the
/// typed error back with [`ZipError::from_io`].
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// The source produced no bytes at all.
    #[error("the bundle is empty (0 bytes)")]
    Empty,

    /// The first four bytes are not a ZIP local header: often an HTML error
    /// page or a file that is not a `.fw` at all.
    #[error("not a ZIP archive: the bundle starts with {found} instead of a ZIP local file header (`PK\\x03\\x04`)")]
    NotZip { found: Magic },

    /// The source ended early.
    #[error("the bundle is truncated: it ends at byte {offset}, {place}")]
    Truncated { offset: u64, place: Place },

    /// The data decompressed, but not to what was zipped.
    #[error("ZIP entry `{entry}`: bad CRC-32 {actual:#010x} (expected {expected:#010x}); the bundle is corrupt")]
    BadCrc { entry: String, actual: u32, expected: u32 },

    /// The data's length disagrees with the local header or the data
    /// descriptor.
    #[error("ZIP entry `{entry}`: {which} size is {actual} bytes, but the {source_of_truth} says {expected}; the bundle is corrupt")]
    SizeMismatch {
        entry: String,
        which: SizeKind,
        actual: u64,
        expected: u64,
        source_of_truth: &'static str,
    },

    /// The inflater rejected the compressed bytes.
    #[error("ZIP entry `{entry}`: corrupt deflate data near byte {offset} of the bundle ({detail})")]
    CorruptDeflate { entry: String, offset: u64, detail: String },

    /// A ZIP feature this streaming reader cannot or will not handle.
    #[error("ZIP entry `{entry}`: {feature} is not supported")]
    Unsupported { entry: String, feature: String },

    /// Bytes that are not any ZIP record where a record must start.
    #[error("corrupt ZIP stream at byte {offset}{after}: found {found} where a ZIP header should start")]
    BadSignature { offset: u64, found: Magic, after: After },

    /// Two entries with one name: the bundle is ambiguous (which one is
    /// `meta.conf`, which one the resource?).
    #[error("ZIP entry `{entry}` appears twice (local headers at bytes {first} and {again}); the bundle is ambiguous and is refused")]
    DuplicateEntry { entry: String, first: u64, again: u64 },

    /// A local header or data descriptor with impossible contents.
    #[error("corrupt ZIP header at byte {offset}{after}: {reason}")]
    BadHeader { offset: u64, after: After, reason: String },

    /// The source itself failed (disk, network).
    #[error("reading the bundle at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// A call after an earlier error: the position in the stream is unknown.
    #[error("the bundle can no longer be read after an earlier error")]
    AfterFailure,
}

impl ZipError {
    /// The typed error inside an `io::Error` returned by `Entry::read`, if
    /// it came from the walker.
    pub fn from_io(err: &io::Error) -> Option<&ZipError> {
        err.get_ref().and_then(|inner| inner.downcast_ref::<ZipError>())
    }

    /// Wraps this error for `Read`, with the closest `io::ErrorKind`.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            ZipError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            ZipError::Io { source, .. } => source.kind(),
            ZipError::Unsupported { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }

    /// True when the error means "the bundle ended early" (as opposed to
    /// "the bundle is corrupt"): a download may be resumed or retried.
    pub fn is_truncation(&self) -> bool {
        matches!(self, ZipError::Truncated { .. })
    }
}

/// Four bytes found where a signature was expected, shown as hex and as
/// text (an HTML page or a gzip file is recognisable at a glance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Magic(pub [u8; 4]);

impl fmt::Display for Magic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x} {b:02x} {c:02x} {d:02x} (`")?;
        for byte in self.0 {
            if byte.is_ascii_graphic() || byte == b' ' {
                write!(f, "{}", byte as char)?;
            } else {
                write!(f, ".")?;
            }
        }
        write!(f, "`)")
    }
}

/// Where in the stream the input ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Inside the local header of the entry that starts at `header_offset`.
    LocalHeader { header_offset: u64 },
    /// Inside the (compressed) data of an entry.
    EntryData { entry: String },
    /// Inside the data descriptor that follows an entry's data.
    Descriptor { entry: String },
    /// Where the next header should start, after `entry`; a complete ZIP
    /// always ends with a central directory.
    AfterEntry { entry: String },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::LocalHeader { header_offset } => {
                write!(f, "inside the ZIP local header that starts at byte {header_offset}")
            }
            Place::EntryData { entry } => write!(f, "inside the data of ZIP entry `{entry}`"),
            Place::Descriptor { entry } => write!(f, "inside the data descriptor of ZIP entry `{entry}`"),
            Place::AfterEntry { entry } => write!(
                f,
                "after ZIP entry `{entry}`, before the archive's central directory (entries may be missing)"
            ),
        }
    }
}

/// The entry before an offending header, for context in messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct After(pub Option<String>);

impl fmt::Display for After {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(entry) => write!(f, " (after ZIP entry `{entry}`)"),
            None => Ok(()),
        }
    }
}

/// Which of an entry's two sizes disagreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeKind {
    Compressed,
    Uncompressed,
}

impl fmt::Display for SizeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeKind::Compressed => "compressed",
            SizeKind::Uncompressed => "uncompressed",
        })
    }
}
