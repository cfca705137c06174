//! One mounted FAT volume during an operation: its geometry (from the boot
//! sector), the allocation hints FatFs keeps between operations, and a
//! write-back cache of the metadata sectors (FAT and directories) that is
//! written out, FAT changes to both copies, when the operation succeeds.

use std::collections::BTreeMap;

use super::error::{corrupt, FatErrorKind, KindResult};
use super::Fat;
use crate::formats::Medium;

/// Sector size; fwup's FatFs is built for 512-byte sectors only.
pub(crate) const SS: usize = 512;
pub(crate) type Sector = [u8; SS];

/// "Not known" marker for the free-cluster count and the allocation hint.
pub(crate) const UNKNOWN: u32 = 0xFFFF_FFFF;
/// Sectors read at once when a FAT sector is missing from the cache.
const FAT_READ_AHEAD: u32 = 64;

/// The three FAT variants, chosen by the number of clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

/// Layout of a mounted volume. Sector numbers count from the volume offset.
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    pub fat_type: FatType,
    /// Sector of the boot record (non-zero only for a partitioned volume).
    pub volbase: u32,
    pub total_sectors: u32,
    /// Sectors per cluster.
    pub csize: u32,
    pub n_fats: u32,
    /// Sectors per FAT copy.
    pub fsize: u32,
    pub fatbase: u32,
    pub n_rootdir: u32,
    /// FAT12/16: first sector of the root directory; FAT32: its cluster.
    pub dirbase: u32,
    pub database: u32,
    /// Number of FAT entries (clusters + 2).
    pub n_fatent: u32,
}

/// What FatFs remembers about allocation while a volume stays mounted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AllocState {
    /// Last allocated cluster: where the next search starts.
    pub last_clst: u32,
    /// Free cluster count, [`UNKNOWN`] unless the FAT32 FSInfo gave it.
    pub free_clst: u32,
    /// FAT32 volume whose FSInfo sector FatFs keeps up to date.
    pub fsinfo_enabled: bool,
    pub fsinfo_dirty: bool,
}

struct Cached {
    data: Box<Sector>,
    dirty: bool,
}

/// A volume during one operation: the mount state plus the sector cache.
pub(crate) struct Volume<'f> {
    pub fat: &'f mut Fat,
    cache: BTreeMap<u32, Cached>,
}

pub(crate) fn io_error(offset: u64, source: std::io::Error) -> FatErrorKind {
    FatErrorKind::Io { offset, source }
}

impl<'f> Volume<'f> {
    pub fn new(fat: &'f mut Fat) -> Self {
        Volume {
            fat,
            cache: BTreeMap::new(),
        }
    }

    pub fn geo(&self) -> &Geometry {
        &self.fat.geo
    }

    fn byte_offset(&self, sector: u32) -> u64 {
        self.fat.offset + u64::from(sector) * SS as u64
    }

    fn read_raw(&self, m: &mut dyn Medium, sector: u32, buf: &mut [u8]) -> KindResult<()> {
        let offset = self.byte_offset(sector);
        m.read_at(offset, buf).map_err(|e| io_error(offset, e))
    }

    fn write_raw(&self, m: &mut dyn Medium, sector: u32, data: &[u8]) -> KindResult<()> {
        let offset = self.byte_offset(sector);
        m.write_at(offset, data).map_err(|e| io_error(offset, e))
    }

    fn in_first_fat(&self, sector: u32) -> bool {
        let g = self.geo();
        sector >= g.fatbase && sector - g.fatbase < g.fsize
    }

    fn load(&mut self, m: &mut dyn Medium, sector: u32) -> KindResult<()> {
        if self.cache.contains_key(&sector) {
            return Ok(());
        }
        let count = if self.in_first_fat(sector) {
            let end = self.geo().fatbase + self.geo().fsize;
            FAT_READ_AHEAD.min(end - sector)
        } else {
            1
        };
        let mut buf = vec![0u8; count as usize * SS];
        self.read_raw(m, sector, &mut buf)?;
        for (i, chunk) in buf.chunks_exact(SS).enumerate() {
            let mut data = Box::new([0u8; SS]);
            data.copy_from_slice(chunk);
            let s = sector + i as u32;
            self.cache.entry(s).or_insert(Cached { data, dirty: false });
        }
        Ok(())
    }

    fn cached(&mut self, sector: u32) -> KindResult<&mut Cached> {
        self.cache
            .get_mut(&sector)
            .ok_or_else(|| corrupt(format!("sector {sector} vanished from the cache")))
    }

    /// A metadata sector (FAT or directory) for reading.
    pub fn sector(&mut self, m: &mut dyn Medium, sector: u32) -> KindResult<&Sector> {
        self.load(m, sector)?;
        Ok(&*self.cached(sector)?.data)
    }

    /// A metadata sector for changing; it is written back by [`Self::flush`].
    pub fn sector_mut(&mut self, m: &mut dyn Medium, sector: u32) -> KindResult<&mut Sector> {
        self.load(m, sector)?;
        let entry = self.cached(sector)?;
        entry.dirty = true;
        Ok(&mut *entry.data)
    }

    /// Replaces a sector by zeros without reading it (a new directory cluster).
    pub fn zero_sector(&mut self, sector: u32) {
        self.cache.insert(
            sector,
            Cached {
                data: Box::new([0u8; SS]),
                dirty: true,
            },
        );
    }

    /// Writes whole data sectors straight to the medium.
    pub fn write_data(&mut self, m: &mut dyn Medium, sector: u32, data: &[u8]) -> KindResult<()> {
        let count = (data.len() / SS) as u32;
        let stale: Vec<u32> = self
            .cache
            .range(sector..sector.saturating_add(count))
            .map(|(&s, _)| s)
            .collect();
        for s in stale {
            self.cache.remove(&s);
        }
        self.write_raw(m, sector, data)
    }

    /// Reads whole data sectors, seeing changes still held in the cache.
    pub fn read_data(&mut self, m: &mut dyn Medium, sector: u32, buf: &mut [u8]) -> KindResult<()> {
        self.read_raw(m, sector, buf)?;
        let count = (buf.len() / SS) as u32;
        for (&s, c) in self.cache.range(sector..sector.saturating_add(count)) {
            let at = (s - sector) as usize * SS;
            buf[at..at + SS].copy_from_slice(&*c.data);
        }
        Ok(())
    }

    /// First sector of a cluster.
    pub fn clst2sect(&self, clst: u32) -> KindResult<u32> {
        let g = self.geo();
        if clst < 2 || clst >= g.n_fatent {
            return Err(corrupt(format!("cluster {clst} is outside the volume")));
        }
        Ok(g.database + (clst - 2) * g.csize)
    }

    /// Writes back every changed sector (FAT changes to both copies) and the
    /// FAT32 FSInfo sector, like FatFs's sync.
    pub fn flush(&mut self, m: &mut dyn Medium) -> KindResult<()> {
        let dirty: Vec<u32> = self.cache.iter().filter(|(_, c)| c.dirty).map(|(&s, _)| s).collect();
        let mut i = 0;
        while i < dirty.len() {
            let mut j = i + 1;
            while j < dirty.len()
                && dirty[j] == dirty[j - 1] + 1
                && self.in_first_fat(dirty[j]) == self.in_first_fat(dirty[i])
            {
                j += 1;
            }
            let mut run = Vec::with_capacity((j - i) * SS);
            for s in &dirty[i..j] {
                run.extend_from_slice(&*self.cached(*s)?.data);
            }
            self.write_raw(m, dirty[i], &run)?;
            if self.in_first_fat(dirty[i]) && self.geo().n_fats == 2 {
                self.write_raw(m, dirty[i] + self.geo().fsize, &run)?;
            }
            i = j;
        }
        for c in self.cache.values_mut() {
            c.dirty = false;
        }
        let alloc = self.fat.alloc;
        if self.geo().fat_type == FatType::Fat32 && alloc.fsinfo_enabled && alloc.fsinfo_dirty {
            let mut s = [0u8; SS];
            s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
            s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
            s[488..492].copy_from_slice(&alloc.free_clst.to_le_bytes());
            s[492..496].copy_from_slice(&alloc.last_clst.to_le_bytes());
            s[510] = 0x55;
            s[511] = 0xAA;
            let fsinfo = self.geo().volbase + 1;
            self.cache.remove(&fsinfo);
            self.write_raw(m, fsinfo, &s)?;
            self.fat.alloc.fsinfo_dirty = false;
        }
        Ok(())
    }
}
