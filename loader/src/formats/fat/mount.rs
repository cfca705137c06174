//! Recognising a FAT volume and reading its geometry from the boot sector,
//! with the same checks (and the same tolerance) as FatFs's mount.

use super::error::{FatErrorKind, KindResult};
use super::volume::{io_error, AllocState, FatType, Geometry, Sector, SS, UNKNOWN};
use crate::formats::Medium;

const MAX_FAT12: u32 = 0xFF5;
const MAX_FAT16: u32 = 0xFFF5;
const MAX_FAT32: u32 = 0x0FFF_FFF5;

fn le16(s: &Sector, at: usize) -> u32 {
    u32::from(u16::from_le_bytes([s[at], s[at + 1]]))
}

fn le32(s: &Sector, at: usize) -> u32 {
    u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

fn read_sector(m: &mut dyn Medium, offset: u64, sector: u32) -> KindResult<Sector> {
    let mut s = [0u8; SS];
    let at = offset + u64::from(sector) * SS as u64;
    m.read_at(at, &mut s).map_err(|e| io_error(at, e))?;
    Ok(s)
}

enum BootKind {
    Fat,
    /// A boot sector with the 55 AA signature but no FAT (maybe an MBR).
    OtherBoot,
    Invalid,
}

/// FatFs's test for a FAT boot record, including early DOS volumes that
/// lack the signature and the type string.
fn boot_kind(s: &Sector) -> BootKind {
    let signed = s[510] == 0x55 && s[511] == 0xAA;
    if matches!(s[0], 0xEB | 0xE9 | 0xE8) {
        if signed && &s[82..90] == b"FAT32   " {
            return BootKind::Fat;
        }
        let bps = le16(s, 11);
        let spc = u32::from(s[13]);
        if bps == SS as u32
            && spc != 0
            && spc.is_power_of_two()
            && le16(s, 14) != 0
            && matches!(s[16], 1 | 2)
            && le16(s, 17) != 0
            && (le16(s, 19) >= 128 || le32(s, 32) >= 0x10000)
            && le16(s, 22) != 0
        {
            return BootKind::Fat;
        }
    }
    if signed {
        BootKind::OtherBoot
    } else {
        BootKind::Invalid
    }
}

fn not_fat(reason: impl Into<String>) -> FatErrorKind {
    FatErrorKind::NotFat { reason: reason.into() }
}

/// Finds the boot record: sector 0, or the first FAT partition of an MBR
/// found there (FatFs looks inside a partition table too).
fn find_volume(m: &mut dyn Medium, offset: u64) -> KindResult<(u32, Sector)> {
    let s = read_sector(m, offset, 0)?;
    match boot_kind(&s) {
        BootKind::Fat => return Ok((0, s)),
        BootKind::Invalid => return Err(not_fat("no FAT boot sector (no jump instruction or 55 AA signature)")),
        BootKind::OtherBoot => {}
    }
    for i in 0..4 {
        let start = le32(&s, 446 + i * 16 + 8);
        if start == 0 {
            continue;
        }
        let vbr = read_sector(m, offset, start)?;
        if let BootKind::Fat = boot_kind(&vbr) {
            return Ok((start, vbr));
        }
    }
    Err(not_fat("boot sector has a 55 AA signature but describes no FAT volume"))
}

/// Reads and checks the boot sector; returns the layout and the allocation
/// state a fresh FatFs mount starts with (hints from FSInfo on FAT32).
pub(crate) fn mount(m: &mut dyn Medium, offset: u64) -> KindResult<(Geometry, AllocState)> {
    let (volbase, s) = find_volume(m, offset)?;
    if le16(&s, 11) != SS as u32 {
        return Err(not_fat(format!("sector size {} is not 512", le16(&s, 11))));
    }
    let mut fsize = le16(&s, 22);
    if fsize == 0 {
        fsize = le32(&s, 36);
    }
    let n_fats = u32::from(s[16]);
    if n_fats != 1 && n_fats != 2 {
        return Err(not_fat(format!("{n_fats} FAT copies (must be 1 or 2)")));
    }
    let csize = u32::from(s[13]);
    if csize == 0 || !csize.is_power_of_two() {
        return Err(not_fat(format!("{csize} sectors per cluster is not a power of 2")));
    }
    let n_rootdir = le16(&s, 17);
    if !n_rootdir.is_multiple_of(SS as u32 / 32) {
        return Err(not_fat(format!("{n_rootdir} root entries do not fill whole sectors")));
    }
    let mut tsect = le16(&s, 19);
    if tsect == 0 {
        tsect = le32(&s, 32);
    }
    let nrsv = le16(&s, 14);
    if nrsv == 0 {
        return Err(not_fat("no reserved sectors"));
    }
    let sysect = u64::from(nrsv) + u64::from(fsize) * u64::from(n_fats) + u64::from(n_rootdir / 16);
    if u64::from(tsect) < sysect {
        return Err(not_fat(format!(
            "{tsect} sectors cannot hold the {sysect} system sectors"
        )));
    }
    let nclst = (tsect - sysect as u32) / csize;
    let fat_type = match nclst {
        0 => return Err(not_fat("no data clusters")),
        n if n <= MAX_FAT12 => FatType::Fat12,
        n if n <= MAX_FAT16 => FatType::Fat16,
        n if n <= MAX_FAT32 => FatType::Fat32,
        n => return Err(not_fat(format!("{n} clusters is too many for FAT32"))),
    };
    if volbase.checked_add(tsect).is_none() {
        return Err(not_fat("volume extends past sector 2^32"));
    }
    let n_fatent = nclst + 2;
    let fatbase = volbase + nrsv;
    let database = volbase + sysect as u32;
    let (dirbase, needed_bytes) = if fat_type == FatType::Fat32 {
        if le16(&s, 42) != 0 {
            return Err(not_fat("unknown FAT32 version"));
        }
        if n_rootdir != 0 {
            return Err(not_fat("FAT32 volume with a fixed root directory"));
        }
        (le32(&s, 44), u64::from(n_fatent) * 4)
    } else {
        if n_rootdir == 0 {
            return Err(not_fat("FAT12/16 volume without root directory entries"));
        }
        let bytes = if fat_type == FatType::Fat16 {
            u64::from(n_fatent) * 2
        } else {
            u64::from(n_fatent) * 3 / 2 + u64::from(n_fatent & 1)
        };
        (fatbase + fsize * n_fats, bytes)
    };
    if u64::from(fsize) < needed_bytes.div_ceil(SS as u64) {
        return Err(not_fat(format!(
            "FAT of {fsize} sectors is too small for {nclst} clusters"
        )));
    }
    let mut alloc = AllocState {
        last_clst: UNKNOWN,
        free_clst: UNKNOWN,
        fsinfo_enabled: false,
        fsinfo_dirty: false,
    };
    if fat_type == FatType::Fat32 && le16(&s, 48) == 1 {
        let fsi = read_sector(m, offset, volbase + 1)?;
        alloc.fsinfo_enabled = true;
        if fsi[510] == 0x55 && fsi[511] == 0xAA && le32(&fsi, 0) == 0x4161_5252 && le32(&fsi, 484) == 0x6141_7272 {
            alloc.free_clst = le32(&fsi, 488);
            alloc.last_clst = le32(&fsi, 492);
        }
    }
    let geo = Geometry {
        fat_type,
        volbase,
        total_sectors: tsect,
        csize,
        n_fats,
        fsize,
        fatbase,
        n_rootdir,
        dirbase,
        database,
        n_fatent,
    };
    Ok((geo, alloc))
}
