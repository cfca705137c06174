//! Read-only questions about a volume: the FAT guards fwup evaluates
//! (`require-fat-file-exists`, `require-fat-file-match`), reading files,
//! listing directories.

use super::codepage::{oem_to_string, utf16_to_string};
use super::dir::{entry_cluster, DirPos, ATTR_DIR};
use super::error::{FatError, FatErrorKind};
use super::file::{OpenFile, OpenMode};
use super::name::DELETED;
use super::volume::{FatType, SS};
use super::Fat;
use crate::formats::Medium;

/// fwup scans files in reads of this size.
const SCAN_CHUNK: usize = 4096;

/// One file or directory as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Long name, or the short name with its lower-case flags applied.
    pub name: String,
    /// The 8.3 name as stored (`NAME.EXT`).
    pub short_name: String,
    /// Raw attribute byte (0x01 R, 0x02 H, 0x04 S, 0x10 directory, 0x20 A).
    pub attributes: u8,
    pub size: u32,
    pub first_cluster: u32,
}

impl DirEntry {
    pub fn is_dir(&self) -> bool {
        self.attributes & ATTR_DIR != 0
    }

    fn from_entry(fat_type: FatType, e: &[u8; 32], lfn: Option<&[u16]>) -> Self {
        let field = |r: std::ops::Range<usize>, lower: bool| {
            let mut bytes: Vec<u8> = e[r].iter().copied().filter(|&b| b != b' ').collect();
            if bytes.first() == Some(&0x05) {
                bytes[0] = DELETED;
            }
            let text = oem_to_string(&bytes);
            (if lower { text.to_ascii_lowercase() } else { text.clone() }, text)
        };
        let (body_lc, body) = field(0..8, e[12] & 0x08 != 0);
        let (ext_lc, ext) = field(8..11, e[12] & 0x10 != 0);
        let join = |b: &str, x: &str| {
            if x.is_empty() {
                b.to_string()
            } else {
                format!("{b}.{x}")
            }
        };
        DirEntry {
            name: lfn.map_or_else(|| join(&body_lc, &ext_lc), utf16_to_string),
            short_name: join(&body, &ext),
            attributes: e[11] & 0x3F,
            size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            first_cluster: entry_cluster(fat_type, e),
        }
    }
}

impl Fat {
    /// `require-fat-file-exists`: true for an existing file (a directory, a
    /// missing path or an invalid name count as absent, as in fwup).
    pub fn exists(&mut self, m: &mut dyn Medium, path: &str) -> Result<bool, FatError> {
        match self.run(m, |vol, m| OpenFile::open(vol, m, path, OpenMode::Read)) {
            Ok(_) => Ok(true),
            Err(e) => match e.kind {
                FatErrorKind::NotFound { .. }
                | FatErrorKind::NoSuchDirectory { .. }
                | FatErrorKind::NotADirectory { .. }
                | FatErrorKind::IsADirectory { .. }
                | FatErrorKind::InvalidName { .. } => Ok(false),
                _ => Err(e),
            },
        }
    }

    /// Reads at most `max_len` bytes from the start of a file.
    pub fn read_file(&mut self, m: &mut dyn Medium, path: &str, max_len: usize) -> Result<Vec<u8>, FatError> {
        self.run(m, |vol, m| {
            let mut f = OpenFile::open(vol, m, path, OpenMode::Read)?;
            let mut buf = vec![0u8; max_len.min(f.len() as usize)];
            let n = f.read(vol, m, &mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    /// `require-fat-file-match`: whether `pattern` occurs in the file, with
    /// fwup's scan (4 KiB reads; an empty pattern matches, one of 4 KiB or
    /// more never does). fwup's carry-over between reads is reproduced as is,
    /// so a match straddling two reads of a file over 4 KiB can be missed
    /// exactly where fwup misses it.
    pub fn file_contains(&mut self, m: &mut dyn Medium, path: &str, pattern: &[u8]) -> Result<bool, FatError> {
        self.run(m, |vol, m| {
            let mut f = OpenFile::open(vol, m, path, OpenMode::Read)?;
            if pattern.len() >= SCAN_CHUNK {
                return Ok(false);
            }
            if pattern.is_empty() {
                return Ok(true);
            }
            let mut buf = vec![0u8; SCAN_CHUNK];
            let mut carried = 0;
            loop {
                let n = f.read(vol, m, &mut buf[carried..])?;
                if n == 0 {
                    return Ok(false);
                }
                if buf[..n].windows(pattern.len()).any(|w| w == pattern) {
                    return Ok(true);
                }
                if n >= pattern.len() {
                    carried = pattern.len() - 1;
                    buf.copy_within(n - carried..n, 0);
                } else {
                    carried = n;
                }
            }
        })
    }

    /// The entries of a directory ("/" or "" for the root), in table order.
    pub fn list(&mut self, m: &mut dyn Medium, path: &str) -> Result<Vec<DirEntry>, FatError> {
        let fat_type = self.fat_type();
        self.run(m, |vol, m| {
            let look = vol.follow_path(m, path)?;
            let cluster = match (&look.name, look.found) {
                (None, _) => 0,
                (Some(_), None) => return Err(FatErrorKind::NoSuchDirectory { path: path.into() }),
                (Some(_), Some(f)) if f.attr() & ATTR_DIR == 0 => {
                    return Err(FatErrorKind::NotADirectory { path: path.into() })
                }
                (Some(_), Some(f)) => entry_cluster(vol.geo().fat_type, &f.entry),
            };
            let mut out = Vec::new();
            vol.dir_walk(m, cluster, false, |_, e, lfn| {
                out.push(DirEntry::from_entry(fat_type, e, lfn));
                false
            })?;
            Ok(out)
        })
    }

    /// The entry `path` names, or `None` if nothing has that name.
    pub fn stat(&mut self, m: &mut dyn Medium, path: &str) -> Result<Option<DirEntry>, FatError> {
        let fat_type = self.fat_type();
        self.run(m, |vol, m| {
            let look = vol.follow_path(m, path)?;
            let Some(found) = look.found else {
                return Ok(None);
            };
            let mut hit = None;
            vol.dir_walk(m, look.dir, false, |pos: &DirPos, e, lfn| {
                let same = pos.dptr == found.pos.dptr;
                if same {
                    hit = Some(DirEntry::from_entry(fat_type, e, lfn));
                }
                same
            })?;
            Ok(hit)
        })
    }

    /// Whether the byte at `offset` of the medium lies in a data cluster
    /// that the FAT marks free: writing there changes no file of the
    /// volume as it is now. False outside the data area.
    pub fn is_free_data(&mut self, m: &mut dyn Medium, offset: u64) -> Result<bool, FatError> {
        let Some(relative) = offset.checked_sub(self.offset) else {
            return Ok(false);
        };
        self.run(m, |vol, m| {
            let g = vol.geo();
            let sector = relative / SS as u64;
            let (database, csize) = (u64::from(g.database), u64::from(g.csize));
            if sector < database || sector >= u64::from(g.volbase) + u64::from(g.total_sectors) {
                return Ok(false);
            }
            let cluster = (sector - database) / csize + 2;
            match u32::try_from(cluster) {
                Ok(c) if c < g.n_fatent => Ok(vol.get_fat(m, c)? == 0),
                _ => Ok(false),
            }
        })
    }
}
