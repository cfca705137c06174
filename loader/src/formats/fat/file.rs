//! Open files: FatFs's `f_open` modes fwup uses, and reading and writing
//! with FatFs's one-sector buffer, so that even the unused tail of a file's
//! last sector holds the same bytes as in fwup's volume.
//!
//! Whole sectors are written straight to the medium in runs as long as the
//! allocated clusters are contiguous, so large files cost one write per run.

use super::dir::{entry_cluster, set_entry_cluster, DirPos, ATTR_ARC, ATTR_DIR, ATTR_RDO};
use super::error::{corrupt, FatErrorKind, KindResult};
use super::volume::{Sector, Volume, SS};
use super::FAT_TIME;
use crate::formats::Medium;

/// How a file is opened (the FatFs modes fwup uses).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Existing file, for reading.
    Read,
    /// Create, or truncate an existing file (fat_write, fat_cp destination).
    CreateAlways,
    /// Create if missing, else leave as is (fat_touch).
    OpenAlways,
}

/// An open file: where its entry is, its chain and FatFs's sector buffer.
pub(crate) struct OpenFile {
    entry: DirPos,
    sclust: u32,
    clust: u32,
    fptr: u32,
    objsize: u32,
    buf: Box<Sector>,
    buf_sect: Option<u32>,
    buf_dirty: bool,
    modified: bool,
}

impl OpenFile {
    pub fn open(vol: &mut Volume, m: &mut dyn Medium, path: &str, mode: OpenMode) -> KindResult<Self> {
        let look = vol.follow_path(m, path)?;
        let Some(name) = look.name else {
            return Err(FatErrorKind::IsADirectory { path: path.into() });
        };
        let mut modified = false;
        let pos = match (look.found, mode) {
            (None, OpenMode::Read) => return Err(FatErrorKind::NotFound { path: path.into() }),
            (Some(f), OpenMode::Read) => {
                if f.attr() & ATTR_DIR != 0 {
                    return Err(FatErrorKind::IsADirectory { path: path.into() });
                }
                f.pos
            }
            (found, _) => {
                let (pos, created) = match found {
                    None => (vol.dir_register(m, look.dir, &name, path)?, true),
                    Some(f) if f.attr() & ATTR_DIR != 0 => {
                        return Err(FatErrorKind::IsADirectory { path: path.into() })
                    }
                    Some(f) if f.attr() & ATTR_RDO != 0 => return Err(FatErrorKind::ReadOnly { path: path.into() }),
                    Some(f) => (f.pos, false),
                };
                if created || mode == OpenMode::CreateAlways {
                    let fat_type = vol.geo().fat_type;
                    let e = vol.entry_mut(m, &pos)?;
                    e[14..18].copy_from_slice(&FAT_TIME.to_le_bytes());
                    e[22..26].copy_from_slice(&FAT_TIME.to_le_bytes());
                    let old = entry_cluster(fat_type, e);
                    e[11] = ATTR_ARC;
                    set_entry_cluster(fat_type, e, 0);
                    e[28..32].fill(0);
                    if old != 0 {
                        vol.remove_chain(m, old, 0)?;
                        // FatFs reuses the hole the old contents leave.
                        vol.fat.alloc.last_clst = old - 1;
                    }
                    modified = true;
                }
                pos
            }
        };
        let e = vol.entry(m, &pos)?;
        Ok(OpenFile {
            entry: pos,
            sclust: entry_cluster(vol.geo().fat_type, &e),
            clust: 0,
            fptr: 0,
            objsize: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            buf: Box::new([0u8; SS]),
            buf_sect: None,
            buf_dirty: false,
            modified,
        })
    }

    pub fn len(&self) -> u32 {
        self.objsize
    }

    pub fn position(&self) -> u32 {
        self.fptr
    }

    fn cluster_bytes(vol: &Volume) -> u32 {
        vol.geo().csize * SS as u32
    }

    /// Reads up to `buf.len()` bytes at the file pointer; 0 at the end.
    pub fn read(&mut self, vol: &mut Volume, m: &mut dyn Medium, buf: &mut [u8]) -> KindResult<usize> {
        let want = buf.len().min((self.objsize - self.fptr) as usize);
        let cbytes = Self::cluster_bytes(vol);
        let mut done = 0usize;
        while done < want {
            if self.fptr.is_multiple_of(cbytes) {
                self.clust = if self.fptr == 0 {
                    self.sclust
                } else {
                    vol.get_fat(m, self.clust)?
                };
                if self.clust < 2 || self.clust >= vol.geo().n_fatent {
                    return Err(corrupt(format!("file chain ends before its size {}", self.objsize)));
                }
            }
            let within = self.fptr % cbytes;
            let sect = vol.clst2sect(self.clust)? + within / SS as u32;
            let mut avail = (cbytes - within) as usize;
            while avail < want - done {
                let next = vol.get_fat(m, self.clust)?;
                if next != self.clust + 1 {
                    break;
                }
                self.clust = next;
                avail += cbytes as usize;
            }
            let n = avail.min(want - done);
            let skip = (self.fptr % SS as u32) as usize;
            let mut tmp = vec![0u8; (skip + n).div_ceil(SS) * SS];
            vol.read_data(m, sect, &mut tmp)?;
            buf[done..done + n].copy_from_slice(&tmp[skip..skip + n]);
            self.fptr += n as u32;
            done += n;
        }
        Ok(done)
    }

    /// Appends at the file pointer (FatFs `f_write`). Returns `VolumeFull`
    /// after writing what fitted.
    pub fn write(&mut self, vol: &mut Volume, m: &mut dyn Medium, data: &[u8]) -> KindResult<()> {
        let csize = vol.geo().csize;
        let mut rem = data;
        let mut full = false;
        while !rem.is_empty() {
            if self.fptr.is_multiple_of(SS as u32) {
                let csect = (self.fptr / SS as u32) & (csize - 1);
                if csect == 0 {
                    let next = if self.fptr == 0 && self.sclust != 0 {
                        Some(self.sclust)
                    } else {
                        vol.create_chain(m, if self.fptr == 0 { 0 } else { self.clust })?
                    };
                    let Some(clst) = next else {
                        full = true;
                        break;
                    };
                    self.clust = clst;
                    if self.sclust == 0 {
                        self.sclust = clst;
                    }
                }
                self.write_back(vol, m)?;
                let sect = vol.clst2sect(self.clust)? + csect;
                let whole = (rem.len() / SS) as u32;
                if whole > 0 {
                    let mut n = whole.min(csize - csect);
                    // Extend the run over following clusters while they come
                    // out contiguous; a non-contiguous one stays linked and is
                    // picked up at the next cluster boundary, as in FatFs.
                    while n < whole {
                        match vol.create_chain(m, self.clust)? {
                            Some(c) if c == self.clust + 1 => {
                                self.clust = c;
                                n += csize.min(whole - n);
                            }
                            _ => break,
                        }
                    }
                    let bytes = n as usize * SS;
                    vol.write_data(m, sect, &rem[..bytes])?;
                    if let Some(bs) = self.buf_sect.filter(|&bs| bs >= sect && bs - sect < n) {
                        let at = (bs - sect) as usize * SS;
                        self.buf.copy_from_slice(&rem[at..at + SS]);
                        self.buf_dirty = false;
                    }
                    self.advance(bytes);
                    rem = &rem[bytes..];
                    continue;
                }
                if self.buf_sect != Some(sect) && self.fptr < self.objsize {
                    vol.read_data(m, sect, &mut self.buf[..])?;
                }
                self.buf_sect = Some(sect);
            }
            let at = (self.fptr % SS as u32) as usize;
            let n = (SS - at).min(rem.len());
            self.buf[at..at + n].copy_from_slice(&rem[..n]);
            self.buf_dirty = true;
            self.advance(n);
            rem = &rem[n..];
        }
        self.modified = true;
        if full {
            return Err(FatErrorKind::VolumeFull);
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.fptr += n as u32;
        self.objsize = self.objsize.max(self.fptr);
    }

    fn write_back(&mut self, vol: &mut Volume, m: &mut dyn Medium) -> KindResult<()> {
        if let (true, Some(sect)) = (self.buf_dirty, self.buf_sect) {
            vol.write_data(m, sect, &self.buf[..])?;
            self.buf_dirty = false;
        }
        Ok(())
    }

    /// Writes the buffer and the directory entry, then the FAT (`f_sync`).
    pub fn sync(&mut self, vol: &mut Volume, m: &mut dyn Medium) -> KindResult<()> {
        if self.modified {
            self.write_back(vol, m)?;
            let fat_type = vol.geo().fat_type;
            let (sclust, size) = (self.sclust, self.objsize);
            let e = vol.entry_mut(m, &self.entry)?;
            e[11] |= ATTR_ARC;
            set_entry_cluster(fat_type, e, sclust);
            e[28..32].copy_from_slice(&size.to_le_bytes());
            e[22..26].copy_from_slice(&FAT_TIME.to_le_bytes());
            e[18..20].fill(0);
            self.modified = false;
        }
        vol.flush(m)
    }
}
