//! U-Boot environment blocks the way fwup 1.16 reads and writes them.
//!
//! One copy is `block-count` blocks: a little-endian CRC-32 of the data, for
//! a redundant pair a flag byte (a counter: the higher one is newer), then
//! `name=value\0` pairs sorted by name, an extra `\0`, and 0xff fill.

mod codec;
mod store;

use std::collections::BTreeMap;
use std::ops::Range;

pub use codec::{decode, encode};
pub use store::{clear, read, recover, setenv, unsetenv, write};

use crate::bundle::conf::Section;
use crate::formats::error::{option_error, FormatError};
use crate::formats::BLOCK_SIZE;

/// A `uboot-environment "NAME" { … }` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UbootEnvSpec {
    pub name: String,
    pub block_offset: u64,
    /// Blocks of one copy (1..=65534).
    pub block_count: u64,
    /// Where the second copy of a redundant environment starts.
    pub redundant_block_offset: Option<u64>,
}

impl UbootEnvSpec {
    /// Reads the section with fwup's limits: `block-offset` and
    /// `block-count` required, the count below 2^16 - 1, offsets below
    /// 2^31 - 1, and a redundant copy that does not overlap the first.
    pub fn from_section(section: &Section) -> Result<UbootEnvSpec, FormatError> {
        let path = section.to_string();
        let limited = |key: &str, max: u64| -> Result<Option<u64>, FormatError> {
            match section.u64(key)? {
                Some(v) if v >= max => Err(option_error(&path, key, format!("{v} must be below {max}"))),
                other => Ok(other),
            }
        };
        let block_offset = limited("block-offset", i32::MAX as u64)?
            .ok_or_else(|| option_error(&path, "block-offset", "is required"))?;
        let block_count = limited("block-count", u64::from(u16::MAX))?
            .filter(|&c| c > 0)
            .ok_or_else(|| option_error(&path, "block-count", "is required and must be at least 1"))?;
        let redundant_block_offset = limited("block-offset-redund", i32::MAX as u64)?;
        if let Some(r) = redundant_block_offset {
            if r < block_offset + block_count && block_offset < r + block_count {
                return Err(option_error(
                    &path,
                    "block-offset-redund",
                    format!(
                        "the copy at blocks {r}..{} overlaps the first at {block_offset}..{}",
                        r + block_count,
                        block_offset + block_count
                    ),
                ));
            }
        }
        Ok(UbootEnvSpec {
            name: section.title.clone().unwrap_or_default(),
            block_offset,
            block_count,
            redundant_block_offset,
        })
    }

    /// `uboot-environment "NAME"`, as messages name it.
    pub fn label(&self) -> String {
        format!("uboot-environment \"{}\"", self.name)
    }

    /// Bytes of one copy.
    pub fn size(&self) -> usize {
        (self.block_count * BLOCK_SIZE) as usize
    }

    pub fn is_redundant(&self) -> bool {
        self.redundant_block_offset.is_some()
    }

    /// The bytes of each copy on the disk: what the engine holds back until
    /// everything else is verified.
    pub fn byte_ranges(&self) -> Vec<Range<u64>> {
        let len = self.size() as u64;
        std::iter::once(self.block_offset)
            .chain(self.redundant_block_offset)
            .map(|block| block * BLOCK_SIZE..block * BLOCK_SIZE + len)
            .collect()
    }
}

/// The variables of an environment, sorted by name (byte order, like C's
/// `strcmp`, which is the order fwup writes them in).
///
/// Names and values are bytes: an environment written by the device may
/// hold anything but NUL, and rewriting it must not change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UbootEnv {
    vars: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl UbootEnv {
    pub fn new() -> UbootEnv {
        UbootEnv::default()
    }

    /// The value as text; `None` if unset or not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value as stored.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.vars.get(name.as_bytes()).map(Vec::as_slice)
    }

    /// Sets or replaces a variable (fwup's `uboot_setenv`).
    pub fn set(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.vars.insert(name.as_ref().to_vec(), value.as_ref().to_vec());
    }

    /// Removes a variable; false if it was not set (not an error in fwup).
    pub fn unset(&mut self, name: &str) -> bool {
        self.vars.remove(name.as_bytes()).is_some()
    }

    /// `(name, value)` pairs in the order they are stored.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

impl<K: Into<Vec<u8>>, V: Into<Vec<u8>>> FromIterator<(K, V)> for UbootEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> UbootEnv {
        UbootEnv {
            vars: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }
}
