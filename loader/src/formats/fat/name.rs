//! File names as FatFs makes them: the long name (UTF-16), the 8.3 short
//! name with its lower-case flags, numbered `~N` short names for names that
//! do not fit 8.3, and the long-name directory entries.

use super::codepage::{oem_short_name_byte, oem_to_unicode, to_upper, unicode_to_oem};

/// Short name lost information: a numbered `~N` name is needed.
pub(crate) const NS_LOSS: u8 = 0x01;
/// Long-name entries are needed.
pub(crate) const NS_LFN: u8 = 0x02;
/// Body is all lower case (stored in byte 12 of the entry as 0x08).
pub(crate) const NS_BODY: u8 = 0x08;
/// Extension is all lower case (byte 12 flag 0x10).
pub(crate) const NS_EXT: u8 = 0x10;

/// Longest long name FatFs accepts, in UTF-16 units.
const MAX_LFN: usize = 255;
/// Byte offsets of the 13 UTF-16 characters in a long-name entry.
const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
/// Attribute value marking a long-name entry.
pub(crate) const ATTR_LFN: u8 = 0x0F;
/// First byte of a deleted entry.
pub(crate) const DELETED: u8 = 0xE5;

/// A path segment turned into directory-entry form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntryName {
    /// Long name (trailing dots and spaces removed).
    pub lfn: Vec<u16>,
    /// 8.3 name, space padded, upper case.
    pub sfn: [u8; 11],
    /// `NS_*` flags.
    pub flags: u8,
}

impl EntryName {
    /// Byte 12 of the short entry: lower-case flags, only for pure 8.3 names.
    pub fn case_flags(&self) -> u8 {
        self.flags & (NS_BODY | NS_EXT)
    }

    /// Number of long-name entries written before the short entry.
    pub fn lfn_entries(&self) -> usize {
        if self.flags & NS_LFN != 0 {
            self.lfn.len().div_ceil(13)
        } else {
            0
        }
    }
}

/// Splits a path the way FatFs follows it: `/` and `\` separate, repeated
/// and leading/trailing separators are ignored, a control character ends it.
pub(crate) fn split_path(path: &str) -> Vec<&[u8]> {
    let bytes = path.as_bytes();
    let end = bytes.iter().position(|&b| b < 0x20).unwrap_or(bytes.len());
    bytes[..end]
        .split(|&b| b == b'/' || b == b'\\')
        .filter(|s| !s.is_empty())
        .collect()
}

/// Makes the long and short names of one segment (FatFs `create_name`).
pub(crate) fn parse_name(segment: &[u8]) -> Result<EntryName, &'static str> {
    let mut lfn: Vec<u16> = Vec::with_capacity(segment.len());
    for &b in segment {
        let wc = oem_to_unicode(b);
        if wc < 0x80 && b"*:<>|\"?\x7F".contains(&(wc as u8)) {
            return Err("it contains one of * : < > | \" ?");
        }
        if lfn.len() >= MAX_LFN {
            return Err("longer than 255 characters");
        }
        lfn.push(wc);
    }
    while lfn
        .last()
        .is_some_and(|&c| c == u16::from(b' ') || c == u16::from(b'.'))
    {
        lfn.pop();
    }
    if lfn.is_empty() {
        return Err("empty (or only dots and spaces)");
    }

    let mut flags = 0u8;
    let mut si = lfn.iter().take_while(|&&c| c == u16::from(b' ')).count();
    if si > 0 || lfn[si] == u16::from(b'.') {
        flags |= NS_LOSS | NS_LFN;
    }
    // Position just after the last dot (0: no extension).
    let dot = lfn.iter().rposition(|&c| c == u16::from(b'.')).map_or(0, |p| p + 1);

    let mut sfn = [b' '; 11];
    let (mut i, mut ni, mut case) = (0usize, 8usize, 0u8);
    while si < lfn.len() {
        let mut wc = lfn[si];
        si += 1;
        if wc == u16::from(b' ') || (wc == u16::from(b'.') && si != dot) {
            flags |= NS_LOSS | NS_LFN;
            continue;
        }
        if i >= ni || si == dot {
            if ni == 11 {
                flags |= NS_LOSS | NS_LFN;
                break;
            }
            if si != dot {
                flags |= NS_LOSS | NS_LFN;
            }
            if si > dot {
                break;
            }
            si = dot;
            i = 8;
            ni = 11;
            case <<= 2;
            continue;
        }
        let byte = if wc >= 0x80 {
            flags |= NS_LFN;
            // Characters outside CP850 cannot come from a CP850 path.
            oem_short_name_byte(unicode_to_oem(wc).unwrap_or(b'_'))
        } else {
            if b"+,;=[]".contains(&(wc as u8)) {
                wc = u16::from(b'_');
                flags |= NS_LOSS | NS_LFN;
            } else if (wc as u8).is_ascii_uppercase() {
                case |= 2;
            } else if (wc as u8).is_ascii_lowercase() {
                case |= 1;
                wc -= 0x20;
            }
            wc as u8
        };
        sfn[i] = byte;
        i += 1;
    }
    if sfn[0] == DELETED {
        sfn[0] = 0x05;
    }
    if ni == 8 {
        case <<= 2;
    }
    if case & 0x0C == 0x0C || case & 0x03 == 0x03 {
        flags |= NS_LFN;
    }
    if flags & NS_LFN == 0 {
        if case & 0x01 != 0 {
            flags |= NS_EXT;
        }
        if case & 0x04 != 0 {
            flags |= NS_BODY;
        }
    }
    Ok(EntryName { lfn, sfn, flags })
}

/// The `seq`-th numbered short name (`NAME~1`, …; a hash after 5 tries).
pub(crate) fn numbered_name(sfn: &[u8; 11], lfn: &[u16], seq: u32) -> [u8; 11] {
    let mut dst = *sfn;
    let mut seq = seq;
    if seq > 5 {
        let mut sreg = seq;
        for &unit in lfn {
            let mut wc = unit;
            for _ in 0..16 {
                sreg = (sreg << 1) + u32::from(wc & 1);
                wc >>= 1;
                if sreg & 0x10000 != 0 {
                    sreg ^= 0x11021;
                }
            }
        }
        seq = sreg;
    }
    let mut suffix = [0u8; 8];
    let mut i = 7;
    loop {
        let mut c = (seq % 16) as u8 + b'0';
        seq /= 16;
        if c > b'9' {
            c += 7;
        }
        suffix[i] = c;
        i -= 1;
        if i == 0 || seq == 0 {
            break;
        }
    }
    suffix[i] = b'~';
    let mut j = 0;
    while j < i && dst[j] != b' ' {
        j += 1;
    }
    while j < 8 {
        dst[j] = if i < 8 {
            i += 1;
            suffix[i - 1]
        } else {
            b' '
        };
        j += 1;
    }
    dst
}

/// Checksum of a short name, stored in its long-name entries.
pub(crate) fn short_name_checksum(sfn: &[u8]) -> u8 {
    sfn.iter()
        .take(11)
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// The `ord`-th (1-based) long-name entry of `lfn`.
pub(crate) fn lfn_entry(lfn: &[u16], ord: usize, checksum: u8) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[11] = ATTR_LFN;
    e[13] = checksum;
    let mut i = (ord - 1) * 13;
    let mut wc = 0u16;
    for &at in &LFN_OFFSETS {
        if wc != 0xFFFF {
            wc = lfn.get(i).copied().unwrap_or(0);
            i += 1;
        }
        e[at..at + 2].copy_from_slice(&wc.to_le_bytes());
        if wc == 0 {
            wc = 0xFFFF;
        }
    }
    let last = wc == 0xFFFF || lfn.get(i).is_none();
    e[0] = ord as u8 | if last { 0x40 } else { 0 };
    e
}

/// The 13 characters of a long-name entry, if its cluster field is 0.
pub(crate) fn lfn_chars(entry: &[u8]) -> Option<[u16; 13]> {
    if entry[26] != 0 || entry[27] != 0 {
        return None;
    }
    let mut chars = [0u16; 13];
    for (c, &at) in chars.iter_mut().zip(&LFN_OFFSETS) {
        *c = u16::from_le_bytes([entry[at], entry[at + 1]]);
    }
    Some(chars)
}

/// Whether a long-name entry holds the matching part of `lfn` (case-blind).
pub(crate) fn lfn_part_matches(lfn: &[u16], entry: &[u8]) -> bool {
    let Some(chars) = lfn_chars(entry) else {
        return false;
    };
    let mut i = usize::from((entry[0] & 0x3F).saturating_sub(1)) * 13;
    let mut wc = 1u16;
    for &uc in &chars {
        if wc != 0 {
            let want = lfn.get(i).copied().unwrap_or(0);
            if i > MAX_LFN || to_upper(uc) != to_upper(want) {
                return false;
            }
            i += 1;
            wc = uc;
        } else if uc != 0xFFFF {
            return false;
        }
    }
    !(entry[0] & 0x40 != 0 && wc != 0 && lfn.get(i).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sfn(name: &str) -> (String, u8) {
        let n = parse_name(name.as_bytes()).expect("valid name");
        (String::from_utf8_lossy(&n.sfn).into_owned(), n.flags)
    }

    #[test]
    fn short_names_and_case_flags_match_fatfs() {
        assert_eq!(sfn("grub.cfg"), ("GRUB    CFG".into(), NS_BODY | NS_EXT));
        assert_eq!(sfn("boot"), ("BOOT       ".into(), NS_BODY));
        assert_eq!(sfn("BOOT"), ("BOOT       ".into(), 0));
        assert_eq!(sfn("Boot"), ("BOOT       ".into(), NS_LFN));
        assert_eq!(sfn("README.txt"), ("README  TXT".into(), NS_EXT));
        assert_eq!(sfn("config-copy.txt"), ("CONFIG-CTXT".into(), NS_LOSS | NS_LFN));
        assert_eq!(sfn("a.b.c"), ("AB      C  ".into(), NS_LOSS | NS_LFN));
        assert_eq!(sfn("x+y"), ("X_Y        ".into(), NS_LOSS | NS_LFN));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(parse_name(b"a:b").is_err());
        assert!(parse_name(b"...").is_err());
        assert!(parse_name(&[b'a'; 256]).is_err());
        assert!(parse_name(&[b'a'; 255]).is_ok());
    }

    #[test]
    fn numbered_names_follow_fatfs() {
        let n = parse_name(b"config-copy.txt").expect("valid");
        assert_eq!(&numbered_name(&n.sfn, &n.lfn, 1), b"CONFIG~1TXT");
        // From the 6th try on, a hash of the long name replaces the number.
        let hashed = numbered_name(&n.sfn, &n.lfn, 12);
        assert_eq!(&hashed[..3], b"CON");
        assert!(hashed[3..8].contains(&b'~'));
        assert_ne!(hashed, numbered_name(&n.sfn, &n.lfn, 13));
        let short = parse_name(b"a b").expect("valid");
        assert_eq!(&numbered_name(&short.sfn, &short.lfn, 2), b"AB~2       ");
    }

    #[test]
    fn long_name_entries_round_trip() {
        let n = parse_name(b"config-copy.txt").expect("valid");
        let sum = short_name_checksum(b"CONFIG~1TXT");
        let last = lfn_entry(&n.lfn, 2, sum);
        assert_eq!(last[0], 0x42);
        assert!(lfn_part_matches(&n.lfn, &last));
        assert!(lfn_part_matches(&n.lfn, &lfn_entry(&n.lfn, 1, sum)));
        let other = parse_name(b"config-copy.tx").expect("valid");
        assert!(!lfn_part_matches(&other.lfn, &last));
    }
}
