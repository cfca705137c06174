//! One mounted FAT volume: its geometry (from the boot sector), the
//! allocation hints FatFs keeps between operations, and a write-back cache of
//! the metadata sectors (FAT and directories) used during one operation.
//!
//! Cluster allocation follows FatFs exactly (next-fit from the last allocated
//! cluster, stretching in place when the following cluster is free), because
//! that decides which clusters a file gets and so every byte of the volume.

use std::collections::BTreeMap;

use super::error::{corrupt, FatErrorKind, KindResult};
use super::Fat;
use crate::formats::Medium;

/// Sector size; fwup's FatFs is built for 512-byte sectors only.
pub(crate) const SS: usize = 512;
pub(crate) type Sector = [u8; SS];

/// "Not known" marker for the free-cluster count and the allocation hint.
pub(crate) const UNKNOWN: u32 = 0xFFFF_FFFF;
/// End-of-chain value as FatFs passes it to the FAT writer.
const EOC: u32 = 0xFFFF_FFFF;
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

    fn fat_byte(&mut self, m: &mut dyn Medium, byte: u32) -> KindResult<u8> {
        let sector = self.geo().fatbase + byte / SS as u32;
        Ok(self.sector(m, sector)?[(byte % SS as u32) as usize])
    }

    fn set_fat_byte(&mut self, m: &mut dyn Medium, byte: u32, f: impl Fn(u8) -> u8) -> KindResult<()> {
        let sector = self.geo().fatbase + byte / SS as u32;
        let slot = &mut self.sector_mut(m, sector)?[(byte % SS as u32) as usize];
        *slot = f(*slot);
        Ok(())
    }

    /// The FAT entry of a cluster: 0 free, >= n_fatent end of chain.
    pub fn get_fat(&mut self, m: &mut dyn Medium, clst: u32) -> KindResult<u32> {
        if clst < 2 || clst >= self.geo().n_fatent {
            return Err(corrupt(format!("cluster chain points to cluster {clst}")));
        }
        match self.geo().fat_type {
            FatType::Fat12 => {
                let bc = clst + clst / 2;
                let word = u32::from(self.fat_byte(m, bc)?) | u32::from(self.fat_byte(m, bc + 1)?) << 8;
                Ok(if clst & 1 == 1 { word >> 4 } else { word & 0xFFF })
            }
            FatType::Fat16 => {
                let bc = clst * 2;
                let s = self.sector(m, self.geo().fatbase + bc / SS as u32)?;
                let at = (bc % SS as u32) as usize;
                Ok(u32::from(u16::from_le_bytes([s[at], s[at + 1]])))
            }
            FatType::Fat32 => {
                let bc = clst * 4;
                let s = self.sector(m, self.geo().fatbase + bc / SS as u32)?;
                let at = (bc % SS as u32) as usize;
                Ok(u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]) & 0x0FFF_FFFF)
            }
        }
    }

    pub fn put_fat(&mut self, m: &mut dyn Medium, clst: u32, val: u32) -> KindResult<()> {
        if clst < 2 || clst >= self.geo().n_fatent {
            return Err(corrupt(format!("cannot link cluster {clst}")));
        }
        match self.geo().fat_type {
            FatType::Fat12 => {
                let bc = clst + clst / 2;
                let odd = clst & 1 == 1;
                self.set_fat_byte(m, bc, |b| if odd { (b & 0x0F) | (val << 4) as u8 } else { val as u8 })?;
                self.set_fat_byte(m, bc + 1, |b| {
                    if odd {
                        (val >> 4) as u8
                    } else {
                        (b & 0xF0) | ((val >> 8) as u8 & 0x0F)
                    }
                })
            }
            FatType::Fat16 => {
                let bc = clst * 2;
                let sector = self.geo().fatbase + bc / SS as u32;
                let at = (bc % SS as u32) as usize;
                let s = self.sector_mut(m, sector)?;
                s[at..at + 2].copy_from_slice(&(val as u16).to_le_bytes());
                Ok(())
            }
            FatType::Fat32 => {
                let bc = clst * 4;
                let sector = self.geo().fatbase + bc / SS as u32;
                let at = (bc % SS as u32) as usize;
                let s = self.sector_mut(m, sector)?;
                let old = u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
                let new = (val & 0x0FFF_FFFF) | (old & 0xF000_0000);
                s[at..at + 4].copy_from_slice(&new.to_le_bytes());
                Ok(())
            }
        }
    }

    /// Adds a cluster after `clst` (0: starts a new chain), as FatFs does.
    /// `None` means the volume is full.
    pub fn create_chain(&mut self, m: &mut dyn Medium, clst: u32) -> KindResult<Option<u32>> {
        let n_fatent = self.geo().n_fatent;
        let mut scl;
        if clst == 0 {
            scl = self.fat.alloc.last_clst;
            if scl == 0 || scl >= n_fatent {
                scl = 1;
            }
        } else {
            let cs = self.get_fat(m, clst)?;
            if cs < 2 {
                return Err(corrupt(format!("cluster {clst} is in a chain but marked free")));
            }
            if cs < n_fatent {
                return Ok(Some(cs));
            }
            scl = clst;
        }
        if self.fat.alloc.free_clst == 0 {
            return Ok(None);
        }
        let mut ncl = 0;
        if scl == clst {
            ncl = if scl + 1 >= n_fatent { 2 } else { scl + 1 };
            if self.get_fat(m, ncl)? != 0 {
                let hint = self.fat.alloc.last_clst;
                if (2..n_fatent).contains(&hint) {
                    scl = hint;
                }
                ncl = 0;
            }
        }
        if ncl == 0 {
            ncl = scl;
            loop {
                ncl += 1;
                if ncl >= n_fatent {
                    ncl = 2;
                    if ncl > scl {
                        return Ok(None);
                    }
                }
                if self.get_fat(m, ncl)? == 0 {
                    break;
                }
                if ncl == scl {
                    return Ok(None);
                }
            }
        }
        self.put_fat(m, ncl, EOC)?;
        if clst != 0 {
            self.put_fat(m, clst, ncl)?;
        }
        let alloc = &mut self.fat.alloc;
        alloc.last_clst = ncl;
        if alloc.free_clst <= n_fatent - 2 {
            alloc.free_clst -= 1;
        }
        alloc.fsinfo_dirty = true;
        Ok(Some(ncl))
    }

    /// Frees the chain from `clst`; `pclst` (if not 0) becomes its new end.
    pub fn remove_chain(&mut self, m: &mut dyn Medium, mut clst: u32, pclst: u32) -> KindResult<()> {
        let n_fatent = self.geo().n_fatent;
        if clst < 2 || clst >= n_fatent {
            return Err(corrupt(format!("chain starts at invalid cluster {clst}")));
        }
        if pclst != 0 {
            self.put_fat(m, pclst, EOC)?;
        }
        loop {
            let nxt = self.get_fat(m, clst)?;
            if nxt == 0 {
                break;
            }
            if nxt == 1 {
                return Err(corrupt(format!("cluster {clst} links to reserved value 1")));
            }
            self.put_fat(m, clst, 0)?;
            let alloc = &mut self.fat.alloc;
            if alloc.free_clst < n_fatent - 2 {
                alloc.free_clst += 1;
                alloc.fsinfo_dirty = true;
            }
            clst = nxt;
            if clst >= n_fatent {
                break;
            }
        }
        Ok(())
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
