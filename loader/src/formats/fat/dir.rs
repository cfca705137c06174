//! Directory tables: stepping through entries (growing a directory when it
//! is full), finding a name (long or short), registering a new name
//! (long-name entries + short entry) and removing one — in FatFs's order,
//! so entries land in the same slots as in fwup's volumes.

use super::error::{corrupt, FatErrorKind, KindResult};
use super::name::{
    lfn_entry, lfn_part_matches, numbered_name, short_name_checksum, EntryName, ATTR_LFN, DELETED, NS_LFN, NS_LOSS,
};
use super::volume::{FatType, Volume, SS};
use crate::formats::Medium;

pub(crate) const ATTR_RDO: u8 = 0x01;
pub(crate) const ATTR_HID: u8 = 0x02;
pub(crate) const ATTR_SYS: u8 = 0x04;
pub(crate) const ATTR_VOL: u8 = 0x08;
pub(crate) const ATTR_DIR: u8 = 0x10;
pub(crate) const ATTR_ARC: u8 = 0x20;
/// FatFs's limit on a directory's size in bytes (65536 entries).
const MAX_DIR: u32 = 0x20_0000;
const ENTRY: u32 = 32;

/// A position in a directory table (FatFs `DIR`): cluster 0 is the root.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirPos {
    pub sclust: u32,
    clust: u32,
    pub sect: u32,
    pub dptr: u32,
}

impl DirPos {
    pub fn index(&self) -> usize {
        (self.dptr % SS as u32) as usize
    }
}

/// Outcome of moving to the next entry.
pub(crate) enum Step {
    Moved,
    End,
    NoSpace,
}

/// An entry found by name.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub pos: DirPos,
    /// Offset of the first long-name entry that belongs to it, if any.
    pub blk_ofs: Option<u32>,
    pub entry: [u8; 32],
}

impl Found {
    pub fn attr(&self) -> u8 {
        self.entry[11] & 0x3F
    }
}

/// First cluster recorded in a short entry.
pub(crate) fn entry_cluster(fat_type: FatType, e: &[u8]) -> u32 {
    let lo = u32::from(u16::from_le_bytes([e[26], e[27]]));
    if fat_type == FatType::Fat32 {
        lo | u32::from(u16::from_le_bytes([e[20], e[21]])) << 16
    } else {
        lo
    }
}

pub(crate) fn set_entry_cluster(fat_type: FatType, e: &mut [u8], clst: u32) {
    e[26..28].copy_from_slice(&(clst as u16).to_le_bytes());
    if fat_type == FatType::Fat32 {
        e[20..22].copy_from_slice(&((clst >> 16) as u16).to_le_bytes());
    }
}

impl Volume<'_> {
    pub(crate) fn dir_sdi(&mut self, m: &mut dyn Medium, sclust: u32, ofs: u32) -> KindResult<DirPos> {
        if ofs >= MAX_DIR || !ofs.is_multiple_of(ENTRY) {
            return Err(corrupt(format!("directory offset {ofs} out of range")));
        }
        let mut clst = sclust;
        if clst == 0 && self.geo().fat_type == FatType::Fat32 {
            clst = self.geo().dirbase;
        }
        let (clust, sect) = if clst == 0 {
            if ofs / ENTRY >= self.geo().n_rootdir {
                return Err(corrupt("root directory offset out of range"));
            }
            (0, self.geo().dirbase + ofs / SS as u32)
        } else {
            let csz = self.geo().csize * SS as u32;
            let mut left = ofs;
            while left >= csz {
                clst = self.get_fat(m, clst)?;
                if clst < 2 || clst >= self.geo().n_fatent {
                    return Err(corrupt("directory chain ends early"));
                }
                left -= csz;
            }
            (clst, self.clst2sect(clst)? + left / SS as u32)
        };
        Ok(DirPos {
            sclust,
            clust,
            sect,
            dptr: ofs,
        })
    }

    pub(crate) fn dir_next(&mut self, m: &mut dyn Medium, pos: &mut DirPos, stretch: bool) -> KindResult<Step> {
        let ofs = pos.dptr + ENTRY;
        if ofs >= MAX_DIR {
            return Ok(Step::End);
        }
        if ofs.is_multiple_of(SS as u32) {
            let mut sect = pos.sect + 1;
            if pos.clust == 0 {
                if ofs / ENTRY >= self.geo().n_rootdir {
                    return Ok(Step::End);
                }
            } else if (ofs / SS as u32) & (self.geo().csize - 1) == 0 {
                let mut clst = self.get_fat(m, pos.clust)?;
                if clst < 2 {
                    return Err(corrupt(format!("directory cluster {} links to {clst}", pos.clust)));
                }
                if clst >= self.geo().n_fatent {
                    if !stretch {
                        return Ok(Step::End);
                    }
                    match self.create_chain(m, pos.clust)? {
                        Some(c) => clst = c,
                        None => return Ok(Step::NoSpace),
                    }
                    self.dir_clear(clst)?;
                }
                pos.clust = clst;
                sect = self.clst2sect(clst)?;
            }
            pos.sect = sect;
        }
        pos.dptr = ofs;
        Ok(Step::Moved)
    }

    /// Zeros a new directory cluster.
    pub(crate) fn dir_clear(&mut self, clst: u32) -> KindResult<()> {
        let first = self.clst2sect(clst)?;
        for s in first..first + self.geo().csize {
            self.zero_sector(s);
        }
        Ok(())
    }

    pub(crate) fn entry(&mut self, m: &mut dyn Medium, pos: &DirPos) -> KindResult<[u8; 32]> {
        let s = self.sector(m, pos.sect)?;
        let mut e = [0u8; 32];
        e.copy_from_slice(&s[pos.index()..pos.index() + 32]);
        Ok(e)
    }

    pub(crate) fn entry_mut(&mut self, m: &mut dyn Medium, pos: &DirPos) -> KindResult<&mut [u8]> {
        let at = pos.index();
        Ok(&mut self.sector_mut(m, pos.sect)?[at..at + 32])
    }

    /// Finds `name` in a directory; `short_only` ignores long names.
    pub(crate) fn dir_find(
        &mut self,
        m: &mut dyn Medium,
        sclust: u32,
        name: &EntryName,
        short_only: bool,
    ) -> KindResult<Option<Found>> {
        let mut pos = self.dir_sdi(m, sclust, 0)?;
        let (mut ord, mut sum, mut blk_ofs) = (0xFFu8, 0xFFu8, None);
        loop {
            let e = self.entry(m, &pos)?;
            let mut c = e[0];
            if c == 0 {
                return Ok(None);
            }
            let a = e[11] & 0x3F;
            if c == DELETED || (a & ATTR_VOL != 0 && a != ATTR_LFN) {
                ord = 0xFF;
                blk_ofs = None;
            } else if a == ATTR_LFN {
                if !short_only {
                    if c & 0x40 != 0 {
                        sum = e[13];
                        c &= !0x40;
                        ord = c;
                        blk_ofs = Some(pos.dptr);
                    }
                    ord = if c == ord && sum == e[13] && lfn_part_matches(&name.lfn, &e) {
                        ord.wrapping_sub(1)
                    } else {
                        0xFF
                    };
                }
            } else {
                let by_long = ord == 0 && sum == short_name_checksum(&e);
                let by_short = name.flags & NS_LOSS == 0 && e[..11] == name.sfn;
                if by_long || by_short {
                    return Ok(Some(Found { pos, blk_ofs, entry: e }));
                }
                ord = 0xFF;
                blk_ofs = None;
            }
            if let Step::End | Step::NoSpace = self.dir_next(m, &mut pos, false)? {
                return Ok(None);
            }
        }
    }

    /// Finds `n` free consecutive entries, growing the directory if needed.
    pub(crate) fn dir_alloc(&mut self, m: &mut dyn Medium, sclust: u32, n: u32, path: &str) -> KindResult<DirPos> {
        let mut pos = self.dir_sdi(m, sclust, 0)?;
        let mut free = 0;
        loop {
            let first = self.sector(m, pos.sect)?[pos.index()];
            if first == DELETED || first == 0 {
                free += 1;
                if free == n {
                    return Ok(pos);
                }
            } else {
                free = 0;
            }
            match self.dir_next(m, &mut pos, true)? {
                Step::Moved => {}
                Step::End => return Err(FatErrorKind::DirectoryFull { path: path.into() }),
                Step::NoSpace => return Err(FatErrorKind::VolumeFull),
            }
        }
    }

    /// Creates the entries for `name` (numbered short name if needed);
    /// returns the position of the zeroed short entry.
    pub(crate) fn dir_register(
        &mut self,
        m: &mut dyn Medium,
        sclust: u32,
        name: &EntryName,
        path: &str,
    ) -> KindResult<DirPos> {
        let mut sfn = name.sfn;
        if name.flags & NS_LOSS != 0 {
            let mut chosen = None;
            for seq in 1..100 {
                let candidate = EntryName {
                    lfn: name.lfn.clone(),
                    sfn: numbered_name(&name.sfn, &name.lfn, seq),
                    flags: 0,
                };
                if self.dir_find(m, sclust, &candidate, true)?.is_none() {
                    chosen = Some(candidate.sfn);
                    break;
                }
            }
            sfn = chosen.ok_or_else(|| FatErrorKind::ShortNameCollisions { path: path.into() })?;
        }
        let n_lfn = if name.flags & NS_LFN != 0 {
            name.lfn_entries()
        } else {
            0
        };
        let pos = self.dir_alloc(m, sclust, n_lfn as u32 + 1, path)?;
        if n_lfn > 0 {
            let sum = short_name_checksum(&sfn);
            let mut p = self.dir_sdi(m, sclust, pos.dptr - n_lfn as u32 * ENTRY)?;
            for ord in (1..=n_lfn).rev() {
                let e = lfn_entry(&name.lfn, ord, sum);
                self.entry_mut(m, &p)?.copy_from_slice(&e);
                self.dir_next(m, &mut p, false)?;
            }
        }
        let e = self.entry_mut(m, &pos)?;
        e.fill(0);
        e[..11].copy_from_slice(&sfn);
        e[12] = name.case_flags();
        Ok(pos)
    }

    /// Marks an entry and its long-name entries deleted.
    pub(crate) fn dir_remove(&mut self, m: &mut dyn Medium, found: &Found) -> KindResult<()> {
        let last = found.pos.dptr;
        let mut p = match found.blk_ofs {
            Some(ofs) => self.dir_sdi(m, found.pos.sclust, ofs)?,
            None => found.pos,
        };
        loop {
            self.entry_mut(m, &p)?[0] = DELETED;
            if p.dptr >= last {
                return Ok(());
            }
            if !matches!(self.dir_next(m, &mut p, false)?, Step::Moved) {
                return Err(corrupt("long-name entries run past the directory end"));
            }
        }
    }
}
