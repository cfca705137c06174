//! Where an install goes: a regular image file or a block device.
//!
//! A `Target` is the narrow seam between the engine and hardware: positioned
//! reads and writes plus size, discard and sync. Tests use sparse temp files.

pub mod blockdev;
mod direct;
pub use direct::ALIGN as DIRECT_ALIGN;
pub mod file;
pub mod shield;
pub(crate) mod sys;
mod writeback;

use std::io;

use crate::formats::Medium;

/// A disk or image file the engine writes to.
pub trait Target: Medium + Send {
    /// Size in bytes, or `None` when unknown (an empty image file: fwup then
    /// sizes GPTs from their partitions and never expands).
    fn size(&self) -> Option<u64>;
    /// Logical sector size in bytes (512 for image files).
    fn sector_size(&self) -> u32 {
        512
    }
    /// Forget the contents of a range (fwup's `trim`): BLKDISCARD on a block
    /// device, a punched hole on a file. Afterwards the range reads as zeros
    /// on files; block devices promise nothing.
    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()>;
    /// Make every write durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Human-readable name for messages ("disk.img", "/dev/vda").
    fn describe(&self) -> String;
}
