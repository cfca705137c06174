//! The `sha256` pin: a `Read` adapter that hashes everything passing
//! through, so the engine can compare the whole bundle's digest with
//! `loader.sha256=` before it commits the held boot writes.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// Hashes the bytes read through it. The running digest is shared with
/// [`Sha256Handle`]s, so it can be checked after the reader has been moved
/// into (and consumed by) the bundle walker.
pub struct Sha256Reader<R> {
    inner: R,
    state: Arc<Mutex<State>>,
}

/// A view of a [`Sha256Reader`]'s digest.
#[derive(Clone)]
pub struct Sha256Handle(Arc<Mutex<State>>);

#[derive(Clone, Default)]
struct State {
    hasher: Sha256,
    bytes: u64,
}

/// The whole bundle's SHA-256 did not match the pin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the bundle's SHA-256 is {actual} over {bytes} bytes, but loader.sha256= pins {expected}")]
pub struct Sha256Mismatch {
    pub expected: String,
    pub actual: String,
    pub bytes: u64,
}

/// A `loader.sha256=` value that is not 64 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sha256 pin `{0}` is not 64 hexadecimal digits")]
pub struct BadSha256(pub String);

impl<R: Read> Sha256Reader<R> {
    pub fn new(inner: R) -> Self {
        Sha256Reader {
            inner,
            state: Arc::default(),
        }
    }

    pub fn handle(&self) -> Sha256Handle {
        Sha256Handle(Arc::clone(&self.state))
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.hasher.update(&buf[..n]);
        state.bytes += n as u64;
        Ok(n)
    }
}

impl Sha256Handle {
    /// The digest of everything read so far.
    pub fn digest(&self) -> [u8; 32] {
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.hasher.clone().finalize().into()
    }

    /// How many bytes have been hashed.
    pub fn bytes(&self) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }

    /// Compares the digest so far with the pin.
    pub fn check(&self, expected: &[u8; 32]) -> Result<(), Sha256Mismatch> {
        let actual = self.digest();
        if &actual == expected {
            return Ok(());
        }
        Err(Sha256Mismatch {
            expected: to_hex(expected),
            actual: to_hex(&actual),
            bytes: self.bytes(),
        })
    }
}

/// Parses a pin given as 64 hex digits (either case).
pub fn parse_sha256(text: &str) -> Result<[u8; 32], BadSha256> {
    let text = text.trim();
    let bad = || BadSha256(text.to_owned());
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // SHA-256("abc") from FIPS 180-2, appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_what_passes_through_in_any_read_sizes() {
        let mut reader = Sha256Reader::new(&b"abc"[..]);
        let handle = reader.handle();
        let mut one = [0u8; 1];
        let mut out = Vec::new();
        while reader.read(&mut one).unwrap() == 1 {
            out.push(one[0]);
        }
        assert_eq!(out, b"abc");
        assert_eq!(to_hex(&handle.digest()), ABC);
        assert_eq!(handle.bytes(), 3);
        assert_eq!(handle.check(&parse_sha256(ABC).unwrap()), Ok(()));
    }

    #[test]
    fn a_wrong_pin_names_both_digests() {
        let mut reader = Sha256Reader::new(&b"abd"[..]);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let err = reader.handle().check(&parse_sha256(ABC).unwrap()).unwrap_err();
        assert_eq!(err.expected, ABC);
        assert_ne!(err.actual, ABC);
        assert!(err.to_string().contains("3 bytes"), "{err}");
    }

    #[test]
    fn pins_must_be_64_hex_digits() {
        assert!(parse_sha256(&ABC.to_uppercase()).is_ok());
        assert!(parse_sha256(&ABC[..63]).is_err());
        assert!(parse_sha256(&format!("{}g", &ABC[..63])).is_err());
        assert!(parse_sha256(&format!("{}é", &ABC[..62])).is_err());
    }
}
