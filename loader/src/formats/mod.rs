//! Pure encoders and decoders for the on-disk structures a bundle writes:
//! partition tables, U-Boot environments, FAT filesystems.
//!
//! They work on bytes or on a [`Medium`], never on paths, so the boot flow can
//! read a disk's state before any task runs and tests can use plain buffers.

pub mod fat;

use std::io;

pub mod error;
pub mod gpt;
pub mod mbr;
pub mod uboot_env;
pub mod utc;

pub use error::FormatError;

/// Byte-addressed random-access storage: a disk, an image file, the engine's
/// overlay of held writes, or a `Vec<u8>` in tests.
///
/// Reads past the end of what exists return zeros (like a sparse file); how
/// writes past the end behave is the implementation's business.
pub trait Medium {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// A growable in-memory medium, for tests and for building small images.
impl Medium for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let end = start.saturating_add(buf.len()).min(self.len());
        buf[..end - start].copy_from_slice(&self[start..end]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let start =
            usize::try_from(offset).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        let end = start + data.len();
        if self.len() < end {
            self.resize(end, 0);
        }
        self[start..end].copy_from_slice(data);
        Ok(())
    }
}

impl<M: Medium + ?Sized> Medium for &mut M {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, data)
    }
}

/// Sector size fwup uses for every block offset and count in a bundle.
pub const BLOCK_SIZE: u64 = 512;
