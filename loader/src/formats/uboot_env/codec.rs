//! One copy of an environment as bytes: pure encode and decode.

use super::{UbootEnv, UbootEnvSpec};
use crate::formats::error::FormatError;

/// Where the variables start: after the CRC, and after the flag byte of a
/// redundant copy. The CRC covers everything from here to the end.
fn data_offset(redundant: bool) -> usize {
    if redundant {
        5
    } else {
        4
    }
}

/// Encodes one copy of `spec.size()` bytes: 0xff fill, sorted
/// `name=value\0` pairs, a closing `\0`, the CRC-32 in bytes 0..4 and, for a
/// redundant environment, `flag` in byte 4 (which the CRC does not cover).
///
/// Like fwup, the pairs must end at least two bytes before the end of the
/// copy.
pub fn encode(spec: &UbootEnvSpec, env: &UbootEnv, flag: u8) -> Result<Vec<u8>, FormatError> {
    let size = spec.size();
    let start = data_offset(spec.is_redundant());
    if size < start + 2 {
        return Err(FormatError::layout(
            spec.label(),
            format!("{size} bytes is too small for an environment"),
        ));
    }
    let capacity = size - start - 2;

    for (name, _) in env.iter() {
        if name.is_empty() || name.contains(&b'=') || name.contains(&0) {
            return Err(FormatError::layout(
                spec.label(),
                format!(
                    "variable name `{}` must not be empty or contain '=' or NUL: U-Boot could not read it back",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
    }
    let needed: usize = env.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    if needed > capacity {
        return Err(FormatError::EnvFull {
            env: spec.name.clone(),
            block_count: spec.block_count,
            needed: needed as u64,
            capacity: capacity as u64,
        });
    }

    let mut buf = vec![0xffu8; size];
    let mut at = start;
    for (name, value) in env.iter() {
        for part in [name, b"=".as_slice(), value, b"\0".as_slice()] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }
    buf[at] = 0;
    let crc = crc32fast::hash(&buf[start..]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
    if spec.is_redundant() {
        buf[4] = flag;
    }
    Ok(buf)
}

/// Decodes one copy read from `block`. Fails with
/// [`FormatError::InvalidEnv`] when the copy is blank, its CRC does not
/// match, or the data is not `name=value` pairs. A name set twice keeps its
/// last value (fwup looks variables up that way).
pub fn decode(spec: &UbootEnvSpec, block: u64, buf: &[u8]) -> Result<UbootEnv, FormatError> {
    let invalid = |problem: String| FormatError::InvalidEnv { block, problem };
    let start = data_offset(spec.is_redundant());
    if buf.len() <= start {
        return Err(invalid(format!("{} bytes is too small for an environment", buf.len())));
    }
    let stored = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let actual = crc32fast::hash(&buf[start..]);
    if stored != actual {
        let blank = buf.iter().all(|&b| b == 0xff) || buf.iter().all(|&b| b == 0);
        return Err(invalid(if blank {
            "blank (never written)".to_string()
        } else {
            format!("CRC32 mismatch (stored {stored:#010x}, computed {actual:#010x}): corrupt")
        }));
    }

    let mut env = UbootEnv::new();
    let mut rest = &buf[start..];
    // Pairs run until an empty string (the closing NUL) or the end.
    while let Some(&first) = rest.first() {
        if first == 0 {
            break;
        }
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return Err(invalid("a variable runs past the end of the environment".to_string()));
        };
        let pair = &rest[..nul];
        // The name is at least one byte long, even if that byte is '='.
        let Some(eq) = pair[1..].iter().position(|&b| b == b'=').map(|i| i + 1) else {
            return Err(invalid(format!(
                "`{}` is not name=value",
                String::from_utf8_lossy(pair)
            )));
        };
        env.set(&pair[..eq], &pair[eq + 1..]);
        rest = &rest[nul + 1..];
    }
    Ok(env)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(block_count: u64, redundant: bool) -> UbootEnvSpec {
        UbootEnvSpec {
            name: "env".into(),
            block_offset: 0,
            block_count,
            redundant_block_offset: redundant.then_some(block_count),
        }
    }

    #[test]
    fn empty_env_is_a_crc_then_two_nuls_then_ff() {
        let buf = encode(&spec(1, false), &UbootEnv::new(), 0).unwrap();
        assert_eq!(buf.len(), 512);
        assert_eq!(buf[4], 0);
        assert!(buf[5..].iter().all(|&b| b == 0xff));
        assert_eq!(
            u32::from_le_bytes(buf[..4].try_into().unwrap()),
            crc32fast::hash(&buf[4..])
        );
    }

    #[test]
    fn pairs_are_sorted_and_round_trip() {
        let env: UbootEnv = [("zoo", "1"), ("b", ""), ("a.x", "y=z")].into_iter().collect();
        let buf = encode(&spec(1, true), &env, 7).unwrap();
        assert_eq!(buf[4], 7);
        assert_eq!(&buf[5..21], b"a.x=y=z\0b=\0zoo=1");
        assert_eq!(decode(&spec(1, true), 0, &buf).unwrap(), env);
    }

    #[test]
    fn exactly_full_fits_and_one_more_byte_does_not() {
        // 512 - 4 (crc) - 2 (reserved tail) = 506 bytes of pairs.
        let mut env = UbootEnv::new();
        env.set("v", vec![b'x'; 506 - 3]);
        let buf = encode(&spec(1, false), &env, 0).unwrap();
        assert_eq!(decode(&spec(1, false), 0, &buf).unwrap(), env);
        env.set("v", vec![b'x'; 506 - 2]);
        let err = encode(&spec(1, false), &env, 0).unwrap_err();
        assert!(
            matches!(
                err,
                FormatError::EnvFull {
                    needed: 507,
                    capacity: 506,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("uboot-environment \"env\""), "{err}");
    }

    #[test]
    fn blank_and_corrupt_copies_are_invalid_env() {
        let s = spec(1, false);
        let blank = decode(&s, 9, &[0xff; 512]).unwrap_err();
        assert!(
            blank.is_invalid_env() && blank.to_string().contains("block 9: blank"),
            "{blank}"
        );

        let mut buf = encode(&s, &[("a", "1")].into_iter().collect(), 0).unwrap();
        buf[6] = b'2';
        let corrupt = decode(&s, 9, &buf).unwrap_err();
        assert!(
            corrupt.is_invalid_env() && corrupt.to_string().contains("CRC32 mismatch"),
            "{corrupt}"
        );
    }

    #[test]
    fn malformed_pairs_are_invalid_env() {
        let s = spec(1, false);
        let mut buf = vec![0xffu8; 512];
        buf[4..12].copy_from_slice(b"novalue\0");
        buf[12] = 0;
        let crc = crc32fast::hash(&buf[4..]);
        buf[..4].copy_from_slice(&crc.to_le_bytes());
        let err = decode(&s, 0, &buf).unwrap_err();
        assert!(
            err.is_invalid_env() && err.to_string().contains("`novalue` is not name=value"),
            "{err}"
        );
    }

    #[test]
    fn last_duplicate_wins() {
        let s = spec(1, false);
        let mut buf = vec![0xffu8; 512];
        buf[4..13].copy_from_slice(b"a=1\0a=2\0\0");
        let crc = crc32fast::hash(&buf[4..]);
        buf[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&s, 0, &buf).unwrap().get("a"), Some("2"));
    }

    #[test]
    fn names_u_boot_cannot_read_back_are_refused() {
        for name in ["", "a=b"] {
            let env: UbootEnv = [(name, "v")].into_iter().collect();
            let err = encode(&spec(1, false), &env, 0).unwrap_err();
            assert!(err.to_string().contains("must not be empty or contain '='"), "{err}");
        }
    }
}
