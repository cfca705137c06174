//! The FAT itself: reading and changing entries (12-, 16- and 32-bit),
//! and growing and freeing cluster chains with FatFs's allocation policy
//! (next-fit from the last allocated cluster, stretching in place when the
//! following cluster is free), which decides where every file's data lands.

use super::error::{corrupt, KindResult};
use super::volume::{FatType, Volume, SS};
use crate::formats::Medium;

/// End-of-chain value as FatFs passes it to the FAT writer.
const EOC: u32 = 0xFFFF_FFFF;

impl Volume<'_> {
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
}
