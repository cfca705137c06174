//! Reading directories and following paths: FatFs's `dir_read` (listing,
//! emptiness, the volume label) and `follow_path`.

use super::dir::{entry_cluster, DirPos, Found, Step, ATTR_ARC, ATTR_DIR, ATTR_VOL};
use super::error::{FatErrorKind, KindResult};
use super::name::{lfn_chars, parse_name, short_name_checksum, split_path, EntryName, ATTR_LFN, DELETED};
use super::volume::Volume;
use crate::formats::Medium;

/// Result of following a path: the containing directory and what was found.
pub(crate) struct Lookup {
    /// First cluster of the containing directory (0: root).
    pub dir: u32,
    /// Name of the last segment; `None` for the root itself.
    pub name: Option<EntryName>,
    pub found: Option<Found>,
}

impl Volume<'_> {
    /// Walks a directory like FatFs's `dir_read`: calls `visit` with each
    /// file/directory entry (`labels`: volume labels instead) and its long
    /// name; stops when `visit` returns true. Returns the stopping entry.
    pub(crate) fn dir_walk(
        &mut self,
        m: &mut dyn Medium,
        sclust: u32,
        labels: bool,
        mut visit: impl FnMut(&DirPos, &[u8; 32], Option<&[u16]>) -> bool,
    ) -> KindResult<Option<(DirPos, [u8; 32])>> {
        let mut pos = self.dir_sdi(m, sclust, 0)?;
        let (mut ord, mut sum) = (0xFFu8, 0xFFu8);
        let mut lfn: Vec<u16> = Vec::new();
        loop {
            let e = self.entry(m, &pos)?;
            let mut b = e[0];
            if b == 0 {
                return Ok(None);
            }
            let attr = e[11] & 0x3F;
            let is_label = attr & !ATTR_ARC == ATTR_VOL;
            if b == DELETED || b == b'.' || is_label != labels {
                ord = 0xFF;
            } else if attr == ATTR_LFN {
                if b & 0x40 != 0 {
                    sum = e[13];
                    b &= !0x40;
                    ord = b;
                    lfn.clear();
                }
                let ok = b == ord && sum == e[13] && pick_lfn(&mut lfn, &e);
                ord = if ok { ord.wrapping_sub(1) } else { 0xFF };
            } else {
                let has_lfn = ord == 0 && sum == short_name_checksum(&e);
                if visit(&pos, &e, has_lfn.then_some(lfn.as_slice())) {
                    return Ok(Some((pos, e)));
                }
                ord = 0xFF;
            }
            if !matches!(self.dir_next(m, &mut pos, false)?, Step::Moved) {
                return Ok(None);
            }
        }
    }

    /// Follows `path` from the root (FatFs `follow_path`).
    pub(crate) fn follow_path(&mut self, m: &mut dyn Medium, path: &str) -> KindResult<Lookup> {
        let segments = split_path(path);
        let mut dir = 0u32;
        let mut walked = String::new();
        for (i, seg) in segments.iter().enumerate() {
            walked.push('/');
            walked.push_str(&String::from_utf8_lossy(seg));
            let name = parse_name(seg).map_err(|reason| FatErrorKind::InvalidName {
                path: path.to_string(),
                reason,
            })?;
            let found = self.dir_find(m, dir, &name, false)?;
            if i + 1 == segments.len() {
                return Ok(Lookup {
                    dir,
                    name: Some(name),
                    found,
                });
            }
            let Some(found) = found else {
                return Err(FatErrorKind::NoSuchDirectory { path: walked });
            };
            if found.attr() & ATTR_DIR == 0 {
                return Err(FatErrorKind::NotADirectory { path: walked });
            }
            dir = entry_cluster(self.geo().fat_type, &found.entry);
        }
        Ok(Lookup {
            dir,
            name: None,
            found: None,
        })
    }
}

/// Collects one long-name entry into `lfn` (entries come last part first).
fn pick_lfn(lfn: &mut Vec<u16>, e: &[u8]) -> bool {
    let Some(chars) = lfn_chars(e) else {
        return false;
    };
    let at = usize::from((e[0] & !0x40).saturating_sub(1)) * 13;
    let part: Vec<u16> = chars.iter().copied().take_while(|&c| c != 0).collect();
    if lfn.len() < at + part.len() {
        lfn.resize(at + part.len(), 0);
    }
    lfn[at..at + part.len()].copy_from_slice(&part);
    if e[0] & 0x40 != 0 {
        lfn.truncate(at + part.len());
    }
    true
}
