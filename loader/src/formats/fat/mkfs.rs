//! `fat_mkfs`: formats a volume exactly as fwup does, i.e. FatFs's `f_mkfs`
//! with fwup's parameters: no partition table (super-floppy), FAT12/16 or
//! FAT32 by cluster count, two FATs, 512 root entries, 512-byte clusters,
//! no alignment, serial = volume size + the fixed 1980-01-01 timestamp.

use super::error::{FatErrorKind, KindResult};
use super::volume::{io_error, FatType, SS};
use super::FAT_TIME;
use crate::formats::Medium;

const MAX_FAT12: u32 = 0xFF5;
const MAX_FAT16: u32 = 0xFFF5;
const MAX_FAT32: u32 = 0x0FFF_FFF5;
const N_FATS: u32 = 2;
const N_ROOT: u32 = 512;
/// Zeros written per call when clearing FATs.
const CLEAR_CHUNK_SECTORS: u32 = 128;

/// The layout `f_mkfs` settles on for a volume size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub fat_type: FatType,
    pub sectors: u32,
    pub reserved: u32,
    pub fat_sectors: u32,
    pub root_sectors: u32,
    pub clusters: u32,
}

fn cannot(blocks: u64, reason: impl Into<String>) -> FatErrorKind {
    FatErrorKind::CannotFormat {
        blocks,
        reason: reason.into(),
    }
}

/// Chooses FAT type and sizes. With fwup's fixed 1-sector cluster, FatFs
/// never retries with other cluster sizes: it either fits or aborts.
pub(crate) fn plan(blocks: u64) -> KindResult<Layout> {
    let sectors = u32::try_from(blocks).map_err(|_| cannot(blocks, "more than 2^32 - 1 blocks"))?;
    if sectors < 128 {
        return Err(cannot(blocks, "FatFs needs at least 128 blocks"));
    }
    if sectors > MAX_FAT32 {
        // With one-sector clusters even FAT32 cannot count them (FatFs
        // ends up refusing these sizes too).
        return Err(cannot(blocks, "too many 512-byte clusters for FAT32"));
    }
    let mut fat_type = FatType::Fat16;
    loop {
        let (reserved, fat_sectors, root_sectors) = if fat_type == FatType::Fat32 {
            if sectors <= MAX_FAT16 || sectors > MAX_FAT32 {
                return Err(cannot(blocks, "no valid FAT32 cluster count"));
            }
            (32, (sectors * 4 + 8).div_ceil(SS as u32), 0)
        } else {
            let fat_bytes = if sectors > MAX_FAT12 {
                sectors * 2 + 4
            } else {
                fat_type = FatType::Fat12;
                (sectors * 3).div_ceil(2) + 3
            };
            (1, fat_bytes.div_ceil(SS as u32), N_ROOT * 32 / SS as u32)
        };
        let system = reserved + fat_sectors * N_FATS + root_sectors;
        if sectors < system + 16 {
            return Err(cannot(blocks, "too small for 16 data clusters"));
        }
        let clusters = sectors - system;
        match fat_type {
            FatType::Fat32 if clusters <= MAX_FAT16 => {
                return Err(cannot(blocks, "too few clusters for FAT32 and too many for FAT16"))
            }
            FatType::Fat16 if clusters > MAX_FAT16 => {
                fat_type = FatType::Fat32;
                continue;
            }
            FatType::Fat16 if clusters <= MAX_FAT12 => {
                return Err(cannot(blocks, "too few clusters for FAT16 and too many for FAT12"))
            }
            FatType::Fat12 if clusters > MAX_FAT12 => return Err(cannot(blocks, "too many clusters for FAT12")),
            _ => {}
        }
        return Ok(Layout {
            fat_type,
            sectors,
            reserved,
            fat_sectors,
            root_sectors,
            clusters,
        });
    }
}

/// The boot sector FatFs writes (fwup's copy names FAT12 volumes "FAT12").
fn boot_sector(l: &Layout) -> [u8; SS] {
    let mut b = [0u8; SS];
    b[0..11].copy_from_slice(b"\xEB\xFE\x90MSDOS5.0");
    b[11..13].copy_from_slice(&(SS as u16).to_le_bytes());
    b[13] = 1;
    b[14..16].copy_from_slice(&(l.reserved as u16).to_le_bytes());
    b[16] = N_FATS as u8;
    let root_entries = if l.fat_type == FatType::Fat32 { 0 } else { N_ROOT as u16 };
    b[17..19].copy_from_slice(&root_entries.to_le_bytes());
    if l.sectors < 0x10000 {
        b[19..21].copy_from_slice(&(l.sectors as u16).to_le_bytes());
    } else {
        b[32..36].copy_from_slice(&l.sectors.to_le_bytes());
    }
    b[21] = 0xF8;
    b[24..26].copy_from_slice(&63u16.to_le_bytes());
    b[26..28].copy_from_slice(&255u16.to_le_bytes());
    let serial = l.sectors.wrapping_add(FAT_TIME);
    if l.fat_type == FatType::Fat32 {
        b[67..71].copy_from_slice(&serial.to_le_bytes());
        b[36..40].copy_from_slice(&l.fat_sectors.to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes());
        b[48..50].copy_from_slice(&1u16.to_le_bytes());
        b[50..52].copy_from_slice(&6u16.to_le_bytes());
        b[64] = 0x80;
        b[66] = 0x29;
        b[71..90].copy_from_slice(b"NO NAME    FAT32   ");
    } else {
        b[39..43].copy_from_slice(&serial.to_le_bytes());
        b[22..24].copy_from_slice(&(l.fat_sectors as u16).to_le_bytes());
        b[36] = 0x80;
        b[38] = 0x29;
        let label: &[u8; 19] = if l.fat_type == FatType::Fat12 {
            b"NO NAME    FAT12   "
        } else {
            b"NO NAME    FAT16   "
        };
        b[43..62].copy_from_slice(label);
    }
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

fn fsinfo_sector(l: &Layout) -> [u8; SS] {
    let mut b = [0u8; SS];
    b[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    b[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    b[488..492].copy_from_slice(&(l.clusters - 1).to_le_bytes());
    b[492..496].copy_from_slice(&2u32.to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

/// Writes a new, empty filesystem over `blocks` sectors at `offset`.
///
/// Like fwup, the last sector of the range is first filled with 0xFF (fwup
/// does this to check the range is writable and to size image files), then
/// the boot sector, FSInfo (FAT32), both FATs and the root directory are
/// written. The data area is left as it was: fwup trims it, which the caller
/// may mirror.
pub(crate) fn format(m: &mut dyn Medium, offset: u64, blocks: u64) -> KindResult<Layout> {
    let l = plan(blocks)?;
    let mut out = SectorWriter { m, offset };
    out.write(l.sectors - 1, &[0xFF; SS])?;
    let boot = boot_sector(&l);
    out.write(0, &boot)?;
    if l.fat_type == FatType::Fat32 {
        let fsinfo = fsinfo_sector(&l);
        out.write(6, &boot)?;
        out.write(7, &fsinfo)?;
        out.write(1, &fsinfo)?;
    }
    let mut first = [0u8; SS];
    match l.fat_type {
        FatType::Fat12 => first[0..4].copy_from_slice(&0x00FF_FFF8u32.to_le_bytes()),
        FatType::Fat16 => first[0..4].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes()),
        FatType::Fat32 => {
            first[0..4].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
            first[4..8].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
            first[8..12].copy_from_slice(&0x0FFF_FFFFu32.to_le_bytes());
        }
    }
    // FATs, then the root directory (FAT32: cluster 2, one sector), all zero
    // except the first FAT sector of each copy.
    let root = if l.fat_type == FatType::Fat32 {
        1
    } else {
        l.root_sectors
    };
    let mut sector = l.reserved;
    for _ in 0..N_FATS {
        out.write(sector, &first)?;
        sector = out.zero(sector + 1, l.fat_sectors - 1)?;
    }
    out.zero(sector, root)?;
    Ok(l)
}

/// Writes whole sectors of the volume being formatted.
struct SectorWriter<'a> {
    m: &'a mut dyn Medium,
    offset: u64,
}

impl SectorWriter<'_> {
    fn write(&mut self, sector: u32, data: &[u8]) -> KindResult<()> {
        let at = self.offset + u64::from(sector) * SS as u64;
        self.m.write_at(at, data).map_err(|e| io_error(at, e))
    }

    /// Zeros `count` sectors from `sector`; returns the sector after them.
    fn zero(&mut self, mut sector: u32, count: u32) -> KindResult<u32> {
        let zeros = vec![0u8; CLEAR_CHUNK_SECTORS.min(count) as usize * SS];
        let mut left = count;
        while left > 0 {
            let n = left.min(CLEAR_CHUNK_SECTORS);
            self.write(sector, &zeros[..n as usize * SS])?;
            sector += n;
            left -= n;
        }
        Ok(sector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_sizes_get_fwups_layouts() {
        // 02-complete's boot partition and 06's two volumes (checked
        // against the expected images' boot sectors).
        let l = plan(31232).expect("fits");
        assert_eq!((l.fat_type, l.fat_sectors, l.clusters), (FatType::Fat16, 123, 30953));
        let l = plan(8192).expect("fits");
        assert_eq!((l.fat_type, l.fat_sectors, l.clusters), (FatType::Fat16, 33, 8093));
    }

    #[test]
    fn small_and_large_volumes_switch_type() {
        assert_eq!(plan(2048).map(|l| l.fat_type).ok(), Some(FatType::Fat12));
        assert_eq!(plan(80_000).map(|l| l.fat_type).ok(), Some(FatType::Fat32));
    }

    #[test]
    fn sizes_between_types_are_refused_like_fatfs() {
        assert!(plan(127).is_err());
        // 4100 sectors: estimated FAT16, but fewer than 4086 clusters remain.
        let err = plan(4100).expect_err("FatFs aborts");
        assert!(err.to_string().contains("too few clusters for FAT16"), "{err}");
        // Just above the FAT16 limit, FAT32's overhead leaves too few.
        assert!(plan(66100).is_err());
        assert_eq!(plan(65600).map(|l| l.fat_type).ok(), Some(FatType::Fat16));
    }
}
