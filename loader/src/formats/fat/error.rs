//! Errors of the FAT module: where (which volume) and what went wrong.

use std::fmt;
use std::io;

/// A failed FAT operation on the volume at `offset` bytes into the medium.
#[derive(Debug)]
pub struct FatError {
    /// Byte offset of the volume on the medium.
    pub offset: u64,
    /// What went wrong.
    pub kind: FatErrorKind,
}

impl FatError {
    pub(crate) fn new(offset: u64, kind: FatErrorKind) -> Self {
        FatError { offset, kind }
    }
}

impl fmt::Display for FatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.offset.is_multiple_of(512) {
            write!(f, "FAT at block {}: {}", self.offset / 512, self.kind)
        } else {
            write!(f, "FAT at byte offset {}: {}", self.offset, self.kind)
        }
    }
}

impl std::error::Error for FatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            FatErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The cause of a [`FatError`]. Paths are shown as the bundle wrote them.
#[derive(Debug, thiserror::Error)]
pub enum FatErrorKind {
    #[error("not a FAT filesystem: {reason}")]
    NotFat { reason: String },
    #[error("I/O error at byte offset {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("filesystem is corrupt: {detail} (check it with fsck.fat)")]
    Corrupt { detail: String },
    #[error("cannot format {blocks} blocks as FAT: {reason}")]
    CannotFormat { blocks: u64, reason: String },
    #[error("{path}: no such file")]
    NotFound { path: String },
    #[error("{path}: no such directory")]
    NoSuchDirectory { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: is a directory")]
    IsADirectory { path: String },
    #[error("{path}: is read-only")]
    ReadOnly { path: String },
    #[error("{path}: directory is not empty")]
    DirectoryNotEmpty { path: String },
    #[error("{path}: no room for another entry in the directory")]
    DirectoryFull { path: String },
    #[error("volume full")]
    VolumeFull,
    #[error("{path}: too many similar names (short names ~1 to ~99 are all taken)")]
    ShortNameCollisions { path: String },
    #[error("{path}: invalid name: {reason}")]
    InvalidName { path: String, reason: &'static str },
    #[error("invalid volume label `{label}`: {reason}")]
    InvalidLabel { label: String, reason: &'static str },
    #[error("{path}: FAT files are limited to 4 GiB - 1 bytes")]
    FileTooLarge { path: String },
    #[error("{path}: write at byte {offset} goes back before byte {position} already written")]
    WriteBehind { path: String, offset: u64, position: u64 },
}

/// Result of internal steps that do not know the volume offset yet.
pub(crate) type KindResult<T> = Result<T, FatErrorKind>;

pub(crate) fn corrupt(detail: impl Into<String>) -> FatErrorKind {
    FatErrorKind::Corrupt { detail: detail.into() }
}
