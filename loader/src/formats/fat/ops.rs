//! The fwup operations (`fat_mkdir`, `fat_write`, `fat_rm`, `fat_mv`,
//! `fat_cp`, `fat_attrib`, `fat_touch`, `fat_setlabel`, the FAT guards) with
//! fwup's semantics: which cases succeed silently and which fail.

use std::str::FromStr;

use super::codepage::{oem_to_string, oem_to_unicode, to_upper, unicode_to_oem};
use super::dir::{
    entry_cluster, set_entry_cluster, DirPos, ATTR_ARC, ATTR_DIR, ATTR_HID, ATTR_RDO, ATTR_SYS, ATTR_VOL,
};
use super::error::{FatError, FatErrorKind, KindResult};
use super::file::{OpenFile, OpenMode};
use super::name::DELETED;
use super::volume::Volume;
use super::writer::COPY_CHUNK;
use super::{Fat, FAT_TIME};
use crate::formats::Medium;

/// The attributes `fat_attrib` sets (the others are left alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub read_only: bool,
    pub hidden: bool,
    pub system: bool,
}

/// An attribute string with a letter other than R, H or S.
#[derive(Debug, thiserror::Error)]
#[error("fat_attrib: invalid attributes `{0}`: only R, H and S are allowed")]
pub struct InvalidAttributes(pub String);

impl FromStr for Attributes {
    type Err = InvalidAttributes;

    /// Parses fwup's attribute string, e.g. `"RH"` (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut a = Attributes::default();
        for c in s.chars() {
            match c.to_ascii_uppercase() {
                'R' => a.read_only = true,
                'H' => a.hidden = true,
                'S' => a.system = true,
                _ => return Err(InvalidAttributes(s.to_string())),
            }
        }
        Ok(a)
    }
}

impl Attributes {
    fn bits(self) -> u8 {
        u8::from(self.read_only) * ATTR_RDO + u8::from(self.hidden) * ATTR_HID + u8::from(self.system) * ATTR_SYS
    }
}

impl Fat {
    pub(crate) fn err(&self, kind: FatErrorKind) -> FatError {
        FatError::new(self.offset, kind)
    }

    /// Runs one operation on a fresh cache and writes its changes back.
    pub(crate) fn run<T>(
        &mut self,
        m: &mut dyn Medium,
        op: impl FnOnce(&mut Volume, &mut dyn Medium) -> KindResult<T>,
    ) -> Result<T, FatError> {
        let offset = self.offset;
        let saved = self.alloc;
        let mut vol = Volume::new(self);
        let result = op(&mut vol, m).and_then(|v| vol.flush(m).map(|()| v));
        result.map_err(|k| {
            // The FAT changes are dropped with the cache: forget their hints.
            self.alloc = saved;
            FatError::new(offset, k)
        })
    }

    /// `fat_mkdir`: creates a directory; an existing directory is fine.
    pub fn mkdir(&mut self, m: &mut dyn Medium, path: &str) -> Result<(), FatError> {
        self.run(m, |vol, m| {
            let look = vol.follow_path(m, path)?;
            let exists = || FatErrorKind::AlreadyExists { path: path.into() };
            let Some(name) = look.name else {
                return Err(exists());
            };
            if let Some(found) = look.found {
                return if found.attr() & ATTR_DIR != 0 {
                    Ok(())
                } else {
                    Err(exists())
                };
            }
            let fat_type = vol.geo().fat_type;
            let dcl = vol.create_chain(m, 0)?.ok_or(FatErrorKind::VolumeFull)?;
            vol.dir_clear(dcl)?;
            let first = vol.clst2sect(dcl)?;
            let s = vol.sector_mut(m, first)?;
            s[..11].copy_from_slice(b".          ");
            s[11] = ATTR_DIR;
            s[22..26].copy_from_slice(&FAT_TIME.to_le_bytes());
            set_entry_cluster(fat_type, &mut s[..32], dcl);
            s.copy_within(0..32, 32);
            s[33] = b'.';
            set_entry_cluster(fat_type, &mut s[32..64], look.dir);
            match vol.dir_register(m, look.dir, &name, path) {
                Ok(pos) => {
                    let e = vol.entry_mut(m, &pos)?;
                    e[22..26].copy_from_slice(&FAT_TIME.to_le_bytes());
                    set_entry_cluster(fat_type, e, dcl);
                    e[11] = ATTR_DIR;
                    Ok(())
                }
                Err(e) => {
                    vol.remove_chain(m, dcl, 0)?;
                    Err(e)
                }
            }
        })
    }

    /// `fat_rm` (`must_exist` false) and `fat_rm!` (true). Removes a file or
    /// an empty directory.
    pub fn rm(&mut self, m: &mut dyn Medium, path: &str, must_exist: bool) -> Result<(), FatError> {
        self.run(m, |vol, m| {
            let look = match vol.follow_path(m, path) {
                Err(FatErrorKind::NoSuchDirectory { .. } | FatErrorKind::NotADirectory { .. }) if !must_exist => {
                    return Ok(())
                }
                other => other?,
            };
            if look.name.is_none() {
                return Err(FatErrorKind::InvalidName {
                    path: path.into(),
                    reason: "the root directory cannot be removed",
                });
            }
            let Some(found) = look.found else {
                return if must_exist {
                    Err(FatErrorKind::NotFound { path: path.into() })
                } else {
                    Ok(())
                };
            };
            if found.attr() & ATTR_RDO != 0 {
                return Err(FatErrorKind::ReadOnly { path: path.into() });
            }
            let cluster = entry_cluster(vol.geo().fat_type, &found.entry);
            if found.attr() & ATTR_DIR != 0 && vol.dir_walk(m, cluster, false, |_, _, _| true)?.is_some() {
                return Err(FatErrorKind::DirectoryNotEmpty { path: path.into() });
            }
            vol.dir_remove(m, &found)?;
            if cluster != 0 {
                vol.remove_chain(m, cluster, 0)?;
            }
            Ok(())
        })
    }

    /// `fat_mv` (`force` false: fails if `to` exists) and `fat_mv!` (true:
    /// removes `to` first, even if `from` then turns out to be missing).
    pub fn mv(&mut self, m: &mut dyn Medium, from: &str, to: &str, force: bool) -> Result<(), FatError> {
        if force {
            self.rm(m, to, false)?;
        }
        self.run(m, |vol, m| {
            let old = vol.follow_path(m, from)?;
            let invalid = |p: &str| FatErrorKind::InvalidName {
                path: p.into(),
                reason: "the root directory cannot be renamed",
            };
            if old.name.is_none() {
                return Err(invalid(from));
            }
            let src = old.found.ok_or_else(|| FatErrorKind::NotFound { path: from.into() })?;
            let new = vol.follow_path(m, to)?;
            let name = new.name.ok_or_else(|| invalid(to))?;
            if let Some(existing) = &new.found {
                if new.dir != old.dir || existing.pos.dptr != src.pos.dptr {
                    return Err(FatErrorKind::AlreadyExists { path: to.into() });
                }
            }
            let pos = vol.dir_register(m, new.dir, &name, to)?;
            let e = vol.entry_mut(m, &pos)?;
            e[13..].copy_from_slice(&src.entry[13..]);
            e[11] = src.entry[11];
            if e[11] & ATTR_DIR == 0 {
                e[11] |= ATTR_ARC;
            } else if old.dir != new.dir {
                let fat_type = vol.geo().fat_type;
                let sect = vol.clst2sect(entry_cluster(fat_type, &src.entry))?;
                if vol.sector(m, sect)?[33] == b'.' {
                    set_entry_cluster(fat_type, &mut vol.sector_mut(m, sect)?[32..64], new.dir);
                }
            }
            vol.dir_remove(m, &src)
        })
    }

    /// `fat_cp` within this volume; an existing `to` is overwritten.
    pub fn cp(&mut self, m: &mut dyn Medium, from: &str, to: &str) -> Result<(), FatError> {
        self.run(m, |vol, m| {
            let mut src = OpenFile::open(vol, m, from, OpenMode::Read)?;
            let mut dst = OpenFile::open(vol, m, to, OpenMode::CreateAlways)?;
            let mut buf = vec![0u8; COPY_CHUNK];
            loop {
                let n = src.read(vol, m, &mut buf)?;
                if n == 0 {
                    break;
                }
                dst.write(vol, m, &buf[..n])?;
            }
            dst.sync(vol, m)
        })
    }

    /// `fat_attrib`: sets R, H and S to exactly `attributes`.
    pub fn attrib(&mut self, m: &mut dyn Medium, path: &str, attributes: Attributes) -> Result<(), FatError> {
        self.run(m, |vol, m| {
            let found = existing(vol, m, path)?;
            let mask = ATTR_RDO | ATTR_HID | ATTR_SYS;
            let e = vol.entry_mut(m, &found)?;
            e[11] = (attributes.bits() & mask) | (e[11] & !mask);
            Ok(())
        })
    }

    /// `fat_touch`: creates an empty file if nothing has that name.
    pub fn touch(&mut self, m: &mut dyn Medium, path: &str) -> Result<(), FatError> {
        self.run(m, |vol, m| {
            OpenFile::open(vol, m, path, OpenMode::OpenAlways)?.sync(vol, m)
        })
    }

    /// `fat_setlabel`: like FatFs, only the root directory's label entry is
    /// written (the boot sector keeps "NO NAME"); "" removes the label.
    pub fn set_label(&mut self, m: &mut dyn Medium, label: &str) -> Result<(), FatError> {
        let field = label_field(label).map_err(|k| self.err(k))?;
        self.run(m, |vol, m| {
            let used = field.iter().rposition(|&b| b != b' ').is_some();
            if let Some((pos, _)) = vol.dir_walk(m, 0, true, |_, _, _| true)? {
                let e = vol.entry_mut(m, &pos)?;
                if used {
                    e[..11].copy_from_slice(&field);
                } else {
                    e[0] = DELETED;
                }
            } else if used {
                let pos = vol.dir_alloc(m, 0, 1, "/")?;
                let e = vol.entry_mut(m, &pos)?;
                e.fill(0);
                e[11] = ATTR_VOL;
                e[..11].copy_from_slice(&field);
            }
            Ok(())
        })
    }

    /// The label from the root directory (what FatFs reports), if any.
    pub fn label(&mut self, m: &mut dyn Medium) -> Result<Option<String>, FatError> {
        self.run(m, |vol, m| {
            Ok(vol
                .dir_walk(m, 0, true, |_, _, _| true)?
                .map(|(_, e)| oem_to_string(&e[..11]).trim_end().to_string()))
        })
    }
}

/// The short entry of an existing file or directory (not the root).
fn existing(vol: &mut Volume, m: &mut dyn Medium, path: &str) -> KindResult<DirPos> {
    let look = vol.follow_path(m, path)?;
    if look.name.is_none() {
        return Err(FatErrorKind::InvalidName {
            path: path.into(),
            reason: "the root directory has no attributes",
        });
    }
    look.found
        .map(|f| f.pos)
        .ok_or_else(|| FatErrorKind::NotFound { path: path.into() })
}

/// The 11-byte label entry name FatFs makes from `label`.
fn label_field(label: &str) -> KindResult<[u8; 11]> {
    let invalid = |reason| FatErrorKind::InvalidLabel {
        label: label.to_string(),
        reason,
    };
    let mut field = [b' '; 11];
    let bytes = label.as_bytes();
    let end = bytes.iter().position(|&b| b < 0x20).unwrap_or(bytes.len());
    for (i, &b) in bytes[..end].iter().enumerate() {
        let c = unicode_to_oem(to_upper(oem_to_unicode(b))).unwrap_or(0);
        if c == 0 || b"+.,;=[]/*:<>|\\\"?\x7F".contains(&c) {
            return Err(invalid("it contains one of + . , ; = [ ] / * : < > | \\ \" ?"));
        }
        if i >= 11 {
            return Err(invalid("longer than 11 characters"));
        }
        field[i] = c;
    }
    if field[0] == DELETED {
        return Err(invalid("it starts with byte 0xE5"));
    }
    Ok(field)
}
