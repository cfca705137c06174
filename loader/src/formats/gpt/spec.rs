//! Reading a `gpt` section of meta.conf into a [`GptSpec`].

use super::{Guid, LEGACY_BIOS_BOOTABLE, MAX_PARTITIONS};
use crate::bundle::conf::{Section, ValueError};
use crate::formats::error::{option_error, partition_index, FormatError};

/// fwup reads `block-count` as a C `int`.
const MAX_BLOCK_COUNT: u64 = i32::MAX as u64;

/// One `partition "N"` of a `gpt` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartitionSpec {
    /// The section title, 0..15: the entry slot (Linux numbers it + 1).
    pub index: usize,
    pub type_guid: Guid,
    pub guid: Guid,
    /// As given; the entry stores its first 36 UTF-16 code units (fwup cuts
    /// longer names the same way).
    pub name: String,
    /// The 64-bit attribute field; `boot = true` adds bit 2.
    pub flags: u64,
    pub block_offset: u64,
    pub block_count: u64,
    /// Grow to the last usable block when the device size is known.
    pub expand: bool,
}

/// A whole `gpt "NAME" { … }` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptSpec {
    pub name: String,
    pub disk_guid: Guid,
    /// Sorted by index.
    pub partitions: Vec<GptPartitionSpec>,
}

impl GptSpec {
    /// Reads a `gpt` section as fwup's `meta.conf` stores it (where fwup has
    /// already turned `boot = true` into `flags`). Checks what fwup checks
    /// when it creates a bundle: no overlaps, `expand` only on the last
    /// partition.
    pub fn from_section(section: &Section) -> Result<GptSpec, FormatError> {
        let table = section.to_string();
        let disk_guid = parse_guid(&table, section, "guid")?;

        let mut partitions: Vec<GptPartitionSpec> = Vec::new();
        for part in section.children("partition") {
            let spec = read_partition(&table, part)?;
            if partitions.iter().any(|p| p.index == spec.index) {
                return Err(FormatError::layout(
                    &table,
                    format!("partition \"{}\" is defined twice", spec.index),
                ));
            }
            partitions.push(spec);
        }
        partitions.sort_by_key(|p| p.index);
        if partitions.is_empty() {
            return Err(FormatError::layout(
                &table,
                "no partitions defined (empty partition table)",
            ));
        }
        check_layout(&table, &partitions)?;
        Ok(GptSpec {
            name: section.title.clone().unwrap_or_default(),
            disk_guid,
            partitions,
        })
    }

    /// `gpt "NAME"`, as messages name the table.
    pub fn label(&self) -> String {
        format!("gpt \"{}\"", self.name)
    }
}

fn read_partition(table: &str, part: &Section) -> Result<GptPartitionSpec, FormatError> {
    let title = part.title.as_deref().unwrap_or("");
    let path = format!("{table} partition \"{title}\"");
    let within = |e: ValueError| option_error(&path, &e.key, e.problem);

    let index = partition_index(table, title, MAX_PARTITIONS)?;

    let type_guid = parse_guid(&path, part, "type")?;
    let guid = parse_guid(&path, part, "guid")?;
    let name = part.str("name").map_err(within)?.unwrap_or("").to_string();

    let block_offset = match part.u64("block-offset").map_err(within)? {
        None => return Err(option_error(&path, "block-offset", "is required")),
        Some(v) if v >= u64::from(u32::MAX) => {
            return Err(option_error(
                &path,
                "block-offset",
                format!("{v} must be below 2^32 - 1"),
            ))
        }
        Some(v) => v,
    };
    let block_count = match part.u64("block-count").map_err(within)? {
        None => return Err(option_error(&path, "block-count", "is required")),
        Some(c) if c >= MAX_BLOCK_COUNT => {
            return Err(option_error(
                &path,
                "block-count",
                format!("{c} is not less than 2^31 - 1"),
            ))
        }
        Some(c) => c,
    };

    let mut flags = part.u64("flags").map_err(within)?.unwrap_or(0);
    if part.bool("boot").map_err(within)?.unwrap_or(false) {
        flags |= LEGACY_BIOS_BOOTABLE;
    }
    let expand = part.bool("expand").map_err(within)?.unwrap_or(false);
    Ok(GptPartitionSpec {
        index,
        type_guid,
        guid,
        name,
        flags,
        block_offset,
        block_count,
        expand,
    })
}

fn parse_guid(path: &str, section: &Section, key: &str) -> Result<Guid, FormatError> {
    let within = |e: ValueError| option_error(path, &e.key, e.problem);
    match section.str(key).map_err(within)? {
        None => Err(option_error(path, key, "is required (a GUID)")),
        Some(text) => text
            .parse()
            .map_err(|e: super::BadGuid| option_error(path, key, e.to_string())),
    }
}

/// fwup's creation-time rules: partitions (by index) after one with
/// `expand` are not allowed, and no two partitions overlap.
fn check_layout(table: &str, partitions: &[GptPartitionSpec]) -> Result<(), FormatError> {
    let mut expanding: Option<usize> = None;
    for (n, a) in partitions.iter().enumerate() {
        if a.block_count == 0 && !a.expand {
            continue;
        }
        if let Some(e) = expanding {
            return Err(FormatError::layout(
                table,
                format!("partition \"{}\" comes after partition \"{e}\", which has expand = true; only the last partition may expand", a.index),
            ));
        }
        if a.expand {
            expanding = Some(a.index);
        }
        let a_end = a.block_offset + a.block_count;
        for b in &partitions[n + 1..] {
            let b_end = b.block_offset + b.block_count;
            if a.block_offset < b_end && b.block_offset < a_end {
                return Err(FormatError::layout(
                    table,
                    format!(
                        "partitions \"{}\" (blocks {}..{a_end}) and \"{}\" (blocks {}..{b_end}) overlap",
                        a.index, a.block_offset, b.index, b.block_offset
                    ),
                ));
            }
        }
    }
    Ok(())
}
