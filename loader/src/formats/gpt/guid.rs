//! GUIDs as meta.conf writes them and as GPT stores them.

use std::fmt;
use std::str::FromStr;

/// A GUID, kept in the textual (big-endian) byte order of
/// `b1d4f5a0-0000-4c6f-8a6f-6c6f61646572`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// GPT's mixed-endian layout: the first three fields little-endian.
    pub fn to_gpt_bytes(self) -> [u8; 16] {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }

    pub fn from_gpt_bytes(raw: &[u8; 16]) -> Guid {
        let mut b = *raw;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Guid(b)
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

/// Why a GUID string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a GUID like 0fc63daf-8483-4772-8e79-3d69d8477de4")]
pub struct BadGuid(pub String);

impl FromStr for Guid {
    type Err = BadGuid;

    /// 32 hex digits in groups of 8-4-4-4-12, either case.
    fn from_str(s: &str) -> Result<Guid, BadGuid> {
        let bad = || BadGuid(s.to_string());
        let text = s.as_bytes();
        if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
            return Err(bad());
        }
        let digits: Vec<u32> = text
            .iter()
            .filter(|&&c| c != b'-')
            .map(|&c| char::from(c).to_digit(16))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        if digits.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (pair[0] * 16 + pair[1]) as u8;
        }
        Ok(Guid(out))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let text = "b1d4f5a0-0000-4c6f-8a6f-6c6f61646572";
        let guid: Guid = text.parse().unwrap();
        assert_eq!(guid.to_string(), text);
        assert_eq!("B1D4F5A0-0000-4C6F-8A6F-6C6F61646572".parse::<Guid>().unwrap(), guid);
    }

    #[test]
    fn gpt_layout_swaps_the_first_three_fields() {
        let guid: Guid = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b".parse().unwrap();
        let raw = guid.to_gpt_bytes();
        assert_eq!(
            raw,
            [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b]
        );
        assert_eq!(Guid::from_gpt_bytes(&raw), guid);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "b1d4f5a0-0000-4c6f-8a6f-6c6f6164657",
            "b1d4f5a0-0000-4c6f-8a6f-6c6f616465722",
            "b1d4f5a0+0000-4c6f-8a6f-6c6f61646572",
            "g1d4f5a0-0000-4c6f-8a6f-6c6f61646572",
            "b1d4f5a0-0000-4c6f-8a6f-6c6f6164657\u{e9}",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad:?} was accepted");
        }
    }
}
