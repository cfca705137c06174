//! FAT12/16/32 volumes as fwup makes and changes them.
//!
//! fwup runs its `fat_*` actions through FatFs (R0.15, LFN on, code page
//! 850, fixed timestamp 1980-01-01 00:00). This module reproduces FatFs's
//! decisions — format layout, cluster allocation order, directory slots,
//! short-name generation, even the sector buffer — so the volumes it writes
//! match fwup's byte for byte, without any host tool or external FAT crate.
//!
//! A [`Fat`] is a mounted volume at a byte offset of a [`Medium`]; it keeps
//! only the layout and FatFs's allocation hints, never cached sectors, so
//! the caller may write the medium in between. Every operation takes the
//! medium and writes all its changes back before returning. fwup keeps its
//! mounts for a whole apply, so keep one `Fat` per volume offset for the
//! whole run to get the same allocation order after deletions.
//!
//! ```no_run
//! # use loader::formats::fat::{self, Attributes};
//! # fn demo(disk: &mut Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! let mut boot = fat::mkfs(disk, 4096 * 512, 31232)?;
//! boot.mkdir(disk, "/boot")?;
//! let mut file = boot.write_file(disk, "/boot/grub.cfg")?;
//! file.write(b"set timeout=0\n")?;
//! file.finish()?;
//! boot.attrib(disk, "/boot/grub.cfg", "RH".parse::<Attributes>()?)?;
//! # Ok(()) }
//! ```

mod chain;
mod codepage;
mod dir;
mod error;
mod file;
mod lookup;
mod mkfs;
mod mount;
mod name;
mod ops;
mod query;
mod volume;
mod writer;

pub use error::{FatError, FatErrorKind};
pub use ops::{Attributes, InvalidAttributes};
pub use query::DirEntry;
pub use volume::FatType;
pub use writer::{copy_between, FileWriter};

use crate::formats::Medium;
use volume::{AllocState, Geometry};

/// The timestamp FatFs gets from fwup: 1980-01-01 00:00:00 in FAT format.
pub(crate) const FAT_TIME: u32 = 0x0021_0000;

/// A mounted FAT volume (FatFs's `FATFS` object): layout and allocation
/// hints. Cheap to keep; holds no borrowed medium and no cached sectors.
#[derive(Clone, Debug)]
pub struct Fat {
    offset: u64,
    geo: Geometry,
    alloc: AllocState,
}

impl Fat {
    /// Mounts the FAT volume whose boot sector is at `offset` bytes.
    pub fn open(m: &mut dyn Medium, offset: u64) -> Result<Fat, FatError> {
        let (geo, alloc) = mount::mount(m, offset).map_err(|k| FatError::new(offset, k))?;
        Ok(Fat { offset, geo, alloc })
    }

    /// Byte offset of the volume on its medium.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn fat_type(&self) -> FatType {
        self.geo.fat_type
    }

    /// Size of the volume in 512-byte sectors.
    pub fn total_sectors(&self) -> u32 {
        self.geo.total_sectors
    }

    /// Number of data clusters.
    pub fn cluster_count(&self) -> u32 {
        self.geo.n_fatent - 2
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u32 {
        self.geo.csize * volume::SS as u32
    }
}

/// `fat_mkfs`: formats `block_count` 512-byte blocks at `offset` bytes as
/// fwup does and mounts the result (a fresh mount, as FatFs does after
/// `f_mkfs`; replace any `Fat` kept for this offset).
///
/// Only the boot area, FATs, root directory and the volume's last sector
/// (0xFF, as fwup) are written; fwup trims the rest of the range, which the
/// caller may mirror (FatFs never reads data it did not write).
pub fn mkfs(m: &mut dyn Medium, offset: u64, block_count: u64) -> Result<Fat, FatError> {
    mkfs::format(m, offset, block_count).map_err(|k| FatError::new(offset, k))?;
    Fat::open(m, offset)
}
