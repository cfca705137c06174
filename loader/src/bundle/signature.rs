//! fwup's Ed25519 keys and the `meta.conf.ed25519` signature.
//!
//! Only `meta.conf` is signed; it carries the BLAKE2b-256 of every
//! resource, so a verified `meta.conf` covers the whole bundle once each
//! resource's hash has been checked.
//!
//! File formats, as `fwup -g` writes them (no trailing newline):
//! * `.pub`: base64 of the 32-byte public key (44 characters);
//! * `.priv`: base64 of 64 bytes, the 32-byte seed followed by the public
//!   key (88 characters, libsodium's secret-key layout).
//!
//! The rule this module keeps: with any public key configured, a bundle is
//! accepted only if one of the keys verifies its signature. A missing
//! signature is then an error, never a quiet "unsigned" (fail closed).

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SECRET_KEY_LENGTH, SIGNATURE_LENGTH};

const PUBLIC_KEY_LEN: usize = ed25519_dalek::PUBLIC_KEY_LENGTH;
/// fwup's private key: seed ‖ public key.
const PRIVATE_KEY_LEN: usize = SECRET_KEY_LENGTH + PUBLIC_KEY_LEN;

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is not valid base64 ({0})")]
    Base64(base64::DecodeError),
    #[error("the key decodes to {got} bytes; an fwup {kind} key is {want} bytes ({chars} base64 characters){hint}")]
    WrongLength {
        kind: &'static str,
        got: usize,
        want: usize,
        chars: usize,
        hint: &'static str,
    },
    #[error("the public key is not a valid Ed25519 point")]
    InvalidPoint,
    #[error("the private key's public half does not match its seed; the .priv file is damaged")]
    Inconsistent,
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{arg}: no such file, and not a base64 public key either ({reason})")]
    NotFileNorKey { arg: String, reason: Box<KeyError> },
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// Why a bundle's signature is not acceptable. Only returned when at least
/// one public key is configured.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("meta.conf fails signature verification with all {keys} configured public key(s); the bundle was not made by a trusted key, or meta.conf was altered")]
    BadSignature { keys: usize },
    #[error("the bundle is not signed (no meta.conf.ed25519), but {keys} public key(s) are configured: refusing an unsigned bundle")]
    MissingSignature { keys: usize },
    #[error("meta.conf.ed25519 is {len} bytes; an Ed25519 signature is 64")]
    Malformed { len: usize },
}

/// What [`verify`] concluded about an acceptable bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The signature verified with `keys[key_index]`.
    Verified { key_index: usize },
    /// No signature and no keys: nothing was required.
    Unsigned,
    /// A signature is present but no key was given to check it with. The
    /// caller should say so loudly; fwup applies such bundles silently.
    SignedNotChecked,
}

impl fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureStatus::Verified { key_index } => {
                write!(f, "verified (public key #{})", key_index + 1)
            }
            SignatureStatus::Unsigned => f.write_str("unsigned"),
            SignatureStatus::SignedNotChecked => f.write_str("signed, NOT checked (no public key given)"),
        }
    }
}

/// An Ed25519 public key as fwup stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses the contents of a `.pub` file or a bare base64 string;
    /// surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = decode(text, "public", PUBLIC_KEY_LEN)?;
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(&bytes);
        ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map(PublicKey)
            .map_err(|_| KeyError::InvalidPoint)
    }

    /// For a command-line argument: a path to a `.pub` file if such a file
    /// exists, else the base64 key itself.
    pub fn from_file_or_base64(arg: &str) -> Result<Self, KeyError> {
        let path = Path::new(arg);
        if path.is_file() {
            return Self::from_file(path);
        }
        Self::parse(arg).map_err(|reason| KeyError::NotFileNorKey {
            arg: arg.to_string(),
            reason: Box::new(reason),
        })
    }

    /// Reads a `.pub` file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        Self::parse(&read_key_file(path)?)
    }

    /// The `.pub` file contents (base64, no newline), as `fwup -g` writes.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// An Ed25519 signing key as fwup stores it (seed ‖ public key). Its
/// `Debug` does not print the secret.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// Parses the contents of a `.priv` file; checks that the public half
    /// belongs to the seed.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = decode(text, "private", PRIVATE_KEY_LEN)?;
        let mut pair = [0u8; PRIVATE_KEY_LEN];
        pair.copy_from_slice(&bytes);
        ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
            .map(SigningKey)
            .map_err(|_| KeyError::Inconsistent)
    }

    /// Reads a `.priv` file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        Self::parse(&read_key_file(path)?)
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The `.priv` file contents (base64 of seed ‖ public key, no newline).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.to_keypair_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().to_base64())
    }
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn decode(text: &str, kind: &'static str, want: usize) -> Result<Vec<u8>, KeyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    let bytes = BASE64.decode(text).map_err(KeyError::Base64)?;
    if bytes.len() != want {
        let hint = match (kind, bytes.len()) {
            ("public", PRIVATE_KEY_LEN) => "; this looks like a private key (.priv): pass the .pub file",
            ("private", PUBLIC_KEY_LEN) => "; this looks like a public key (.pub)",
            _ => "",
        };
        let chars = want.div_ceil(3) * 4;
        return Err(KeyError::WrongLength {
            kind,
            got: bytes.len(),
            want,
            chars,
            hint,
        });
    }
    Ok(bytes)
}

/// Checks `meta_conf` against its detached signature and the configured
/// keys.
///
/// | keys | signature | result |
/// |---|---|---|
/// | none | none | `Unsigned` |
/// | none | present | `SignedNotChecked` |
/// | some | verifies with one | `Verified` (first key that does) |
/// | some | none | `MissingSignature` error |
/// | some | fails with all | `BadSignature` error |
pub fn verify(
    meta_conf: &[u8],
    signature: Option<&[u8]>,
    keys: &[PublicKey],
) -> Result<SignatureStatus, SignatureError> {
    let Some(signature) = signature else {
        return match keys.len() {
            0 => Ok(SignatureStatus::Unsigned),
            n => Err(SignatureError::MissingSignature { keys: n }),
        };
    };
    let bytes: &[u8; SIGNATURE_LENGTH] = signature
        .try_into()
        .map_err(|_| SignatureError::Malformed { len: signature.len() })?;
    if keys.is_empty() {
        return Ok(SignatureStatus::SignedNotChecked);
    }
    let signature = ed25519_dalek::Signature::from_bytes(bytes);
    // Strict verification (canonical S, no small-order keys or R), the same
    // checks libsodium's crypto_sign_verify_detached makes for fwup.
    keys.iter()
        .position(|key| key.0.verify_strict(meta_conf, &signature).is_ok())
        .map(|key_index| SignatureStatus::Verified { key_index })
        .ok_or(SignatureError::BadSignature { keys: keys.len() })
}

/// Signs `meta_conf` the way `fwup -S` does (Ed25519 is deterministic: the
/// same key and bytes always give the same signature).
pub fn sign(meta_conf: &[u8], key: &SigningKey) -> [u8; SIGNATURE_LENGTH] {
    key.0.sign(meta_conf).to_bytes()
}

/// A new key pair from the system's random number generator, like
/// `fwup -g`. Write `to_base64()` of each to `NAME.priv` / `NAME.pub`.
pub fn generate_keypair() -> Result<(SigningKey, PublicKey), KeyError> {
    let mut seed = [0u8; SECRET_KEY_LENGTH];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let signing = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed));
    let public = signing.public_key();
    Ok((signing, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 test 1: seed and public key.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    #[test]
    fn parses_base64_with_surrounding_whitespace() {
        let b64 = BASE64.encode(hex(PUBLIC));
        let key = PublicKey::parse(&format!("  {b64}\n")).ok();
        assert_eq!(key.map(|k| k.as_bytes().to_vec()), Some(hex(PUBLIC)));
    }

    #[test]
    fn rejects_bad_base64_and_wrong_lengths_with_hints() {
        let msg = |r: Result<PublicKey, KeyError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg(PublicKey::parse("not*base64")).contains("not valid base64"));
        assert!(msg(PublicKey::parse("   ")).contains("empty"));
        let short = msg(PublicKey::parse(&BASE64.encode([1u8; 16])));
        assert!(
            short.contains("16 bytes") && short.contains("32 bytes (44 base64 characters)"),
            "{short}"
        );
        let private = msg(PublicKey::parse(&BASE64.encode([1u8; 64])));
        assert!(private.contains("looks like a private key"), "{private}");
    }

    #[test]
    fn private_key_with_a_foreign_public_half_is_refused() {
        let mut pair = hex(SEED);
        pair.extend_from_slice(&[9u8; 32]);
        assert!(matches!(
            SigningKey::parse(&BASE64.encode(&pair)),
            Err(KeyError::Inconsistent)
        ));
        let mut good = hex(SEED);
        good.extend_from_slice(&hex(PUBLIC));
        let key = SigningKey::parse(&BASE64.encode(&good)).ok();
        assert_eq!(key.map(|k| k.public_key().as_bytes().to_vec()), Some(hex(PUBLIC)));
    }

    #[test]
    fn rfc8032_test_vector_signature() {
        let mut pair = hex(SEED);
        pair.extend_from_slice(&hex(PUBLIC));
        let Ok(key) = SigningKey::parse(&BASE64.encode(&pair)) else {
            panic!("RFC 8032 key must parse")
        };
        let expected = hex(concat!(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155",
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ));
        assert_eq!(sign(b"", &key).to_vec(), expected);
    }

    #[test]
    fn status_table() {
        let (priv_a, pub_a) = generate_keypair()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let sig = sign(b"meta", &priv_a);
        assert_eq!(verify(b"meta", None, &[]).ok(), Some(SignatureStatus::Unsigned));
        assert_eq!(
            verify(b"meta", Some(&sig), &[]).ok(),
            Some(SignatureStatus::SignedNotChecked)
        );
        assert!(matches!(
            verify(b"meta", None, std::slice::from_ref(&pub_a)),
            Err(SignatureError::MissingSignature { keys: 1 })
        ));
        assert!(matches!(
            verify(b"meta", Some(&sig[..63]), std::slice::from_ref(&pub_a)),
            Err(SignatureError::Malformed { len: 63 })
        ));
        assert_eq!(
            verify(b"meta", Some(&sig), &[pub_a]).ok(),
            Some(SignatureStatus::Verified { key_index: 0 })
        );
    }
}
