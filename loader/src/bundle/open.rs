//! The head of a bundle: optional `meta.conf.ed25519`, then `meta.conf`.
//!
//! Read before anything else so the signature is checked before a single
//! byte of resource data is looked at.

use std::io::Read;

use super::zip::{ZipError, ZipWalker};

/// meta.conf is configuration text; anything bigger is not a real bundle.
const MAX_META_CONF: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleHead {
    pub meta_conf: Vec<u8>,
    pub signature: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{0}")]
    Zip(#[source] ZipError),
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("the bundle is empty or not a ZIP archive")]
    Empty,
    #[error("expected `meta.conf` at the start of the bundle, found `{0}`")]
    NoMetaConf(String),
    #[error("meta.conf.ed25519 is {0} bytes; an Ed25519 signature is 64")]
    BadSignatureSize(usize),
    #[error("meta.conf is larger than {MAX_META_CONF} bytes")]
    MetaTooLarge,
    #[error("meta.conf is empty")]
    EmptyMeta,
}

/// Reads the signature and meta.conf; the walker is left at the first
/// resource entry.
pub fn read_head<R: Read>(walker: &mut ZipWalker<R>) -> Result<BundleHead, HeadError> {
    let mut signature = None;
    let mut entry = walker.next_entry().map_err(HeadError::Zip)?.ok_or(HeadError::Empty)?;
    if entry.name() == "meta.conf.ed25519" {
        let mut sig = Vec::new();
        entry.by_ref().take(65).read_to_end(&mut sig).map_err(HeadError::Read)?;
        if sig.len() != 64 {
            return Err(HeadError::BadSignatureSize(sig.len()));
        }
        signature = Some(sig);
        entry = walker
            .next_entry()
            .map_err(HeadError::Zip)?
            .ok_or(HeadError::EmptyMeta)?;
    }
    if entry.name() != "meta.conf" {
        return Err(HeadError::NoMetaConf(entry.name().to_string()));
    }
    let mut meta_conf = Vec::new();
    entry
        .by_ref()
        .take(MAX_META_CONF + 1)
        .read_to_end(&mut meta_conf)
        .map_err(HeadError::Read)?;
    if meta_conf.len() as u64 > MAX_META_CONF {
        return Err(HeadError::MetaTooLarge);
    }
    if meta_conf.is_empty() {
        return Err(HeadError::EmptyMeta);
    }
    Ok(BundleHead { meta_conf, signature })
}
