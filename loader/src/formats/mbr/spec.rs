//! Reading an `mbr` section of meta.conf into an [`MbrSpec`], with fwup's
//! defaults and the checks fwup makes when it creates and applies a bundle.

use super::{is_extended_type, MAX_PARTITIONS, PRIMARY_SLOTS};
use crate::bundle::conf::{Section, ValueError};
use crate::formats::error::{option_error, partition_index, FormatError};

/// fwup reads `block-count` as a C `int`: counts must stay below 2^31 - 1.
const MAX_BLOCK_COUNT: u64 = i32::MAX as u64;

/// One `partition "N"` of an `mbr` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrPartitionSpec {
    /// The section title: 0..3 primary slots, 4..11 logical partitions
    /// (Linux numbers them `index + 1`).
    pub index: usize,
    /// Partition type byte (0x83 Linux, 0x0c FAT32 LBA, 0x0f extended…);
    /// 0 leaves the slot unused.
    pub kind: u8,
    pub boot: bool,
    pub block_offset: u32,
    /// For the extended partition: the minimum size (fwup grows it to the
    /// end of the disk, or of the last partition).
    pub block_count: u32,
    /// Grow to the end of the device when its size is known. Always set for
    /// the extended partition.
    pub expand: bool,
}

/// A whole `mbr "NAME" { … }` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrSpec {
    /// The section title, for messages: `mbr "NAME"`.
    pub name: String,
    /// The 440 bytes of boot code before the disk signature; zeros if absent.
    pub bootstrap_code: Option<Box<[u8; 440]>>,
    /// The 32-bit disk signature at byte 440.
    pub signature: u32,
    /// Sorted by index; at most one per index.
    pub partitions: Vec<MbrPartitionSpec>,
}

impl MbrSpec {
    /// Reads an `mbr` section as fwup's `meta.conf` stores it.
    pub fn from_section(section: &Section) -> Result<MbrSpec, FormatError> {
        let table = section.to_string();
        if section.bool("include-osip")?.unwrap_or(false) {
            return Err(option_error(
                &table,
                "include-osip",
                "Intel Edison OSIP headers are not supported by this loader",
            ));
        }

        let bootstrap_code = match section.str("bootstrap-code")? {
            None => None,
            Some(hex) => Some(Box::new(
                parse_bootstrap(hex).map_err(|problem| option_error(&table, "bootstrap-code", problem))?,
            )),
        };
        let signature = match section.u64("signature")? {
            None => 0,
            Some(v) => u32::try_from(v)
                .map_err(|_| option_error(&table, "signature", format!("{v:#x} does not fit in 32 bits")))?,
        };

        let mut partitions: Vec<MbrPartitionSpec> = Vec::new();
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
        check_logicals(&table, &partitions)?;
        if partitions.is_empty() {
            return Err(FormatError::layout(
                &table,
                "no partitions defined (empty partition table)",
            ));
        }

        Ok(MbrSpec {
            name: section.title.clone().unwrap_or_default(),
            bootstrap_code,
            signature,
            partitions,
        })
    }

    /// `mbr "NAME"`, as messages name the table.
    pub fn label(&self) -> String {
        format!("mbr \"{}\"", self.name)
    }

    /// The extended partition in slot 3, if there is one.
    pub fn extended(&self) -> Option<&MbrPartitionSpec> {
        self.partitions
            .iter()
            .find(|p| p.index == 3 && is_extended_type(p.kind))
    }

    /// The logical partitions (slots 4..), in order.
    pub fn logicals(&self) -> impl Iterator<Item = &MbrPartitionSpec> {
        self.partitions.iter().filter(|p| p.index >= PRIMARY_SLOTS)
    }
}

fn read_partition(table: &str, part: &Section) -> Result<MbrPartitionSpec, FormatError> {
    let title = part.title.as_deref().unwrap_or("");
    let path = format!("{table} partition \"{title}\"");
    let within = |e: ValueError| option_error(&path, &e.key, e.problem);

    let index = partition_index(table, title, MAX_PARTITIONS)?;

    let kind = part.u64("type").map_err(within)?.unwrap_or(0);
    let kind =
        u8::try_from(kind).map_err(|_| option_error(&path, "type", format!("{kind} is not between 0 and 255")))?;

    let block_offset = match part.u64("block-offset").map_err(within)? {
        None => return Err(option_error(&path, "block-offset", "is required")),
        Some(v) => u32::try_from(v).ok().filter(|&v| v != u32::MAX).ok_or_else(|| {
            option_error(
                &path,
                "block-offset",
                format!("{v} does not fit in an MBR (must be below 2^32 - 1)"),
            )
        })?,
    };
    let count = part.u64("block-count").map_err(within)?;

    if is_extended_type(kind) {
        if index != 3 {
            return Err(option_error(
                &path,
                "type",
                format!("{kind:#04x} is an extended partition type; only partition 3 may be the extended partition"),
            ));
        }
        // fwup: an extended partition without a usable count starts at one
        // block and always grows to cover the logical partitions.
        let block_count = count.filter(|&c| c < MAX_BLOCK_COUNT).unwrap_or(1) as u32;
        return Ok(MbrPartitionSpec {
            index,
            kind,
            boot: false,
            block_offset,
            block_count,
            expand: true,
        });
    }

    let block_count = match count {
        Some(c) if c < MAX_BLOCK_COUNT => c as u32,
        Some(c) => {
            return Err(option_error(
                &path,
                "block-count",
                format!("{c} is not less than 2^31 - 1"),
            ))
        }
        None => return Err(option_error(&path, "block-count", "is required")),
    };
    Ok(MbrPartitionSpec {
        index,
        kind,
        boot: part.bool("boot").map_err(within)?.unwrap_or(false),
        block_offset,
        block_count,
        expand: part.bool("expand").map_err(within)?.unwrap_or(false),
    })
}

/// Logical partitions need an extended partition 3 and, because fwup places
/// the EBR of the k-th logical at block `extended + k`, must be numbered
/// without gaps (fwup would write a stray EBR over block 0 otherwise).
fn check_logicals(table: &str, partitions: &[MbrPartitionSpec]) -> Result<(), FormatError> {
    let logicals: Vec<&MbrPartitionSpec> = partitions.iter().filter(|p| p.index >= PRIMARY_SLOTS).collect();
    let Some(last) = logicals.last() else {
        return Ok(());
    };
    if !partitions.iter().any(|p| p.index == 3 && is_extended_type(p.kind)) {
        return Err(FormatError::layout(
            table,
            format!(
                "partition \"{}\" needs an extended partition: to use more than 4 partitions, \
                 partition 3 must have type 0x0f or 0x05",
                last.index
            ),
        ));
    }
    for (expected, p) in (PRIMARY_SLOTS..).zip(&logicals) {
        if p.index != expected || p.kind == 0 {
            return Err(FormatError::layout(
                table,
                format!(
                    "logical partitions must be numbered 4, 5, 6… without gaps and have a type; \
                     partition \"{expected}\" is missing or has type 0"
                ),
            ));
        }
    }
    Ok(())
}

/// 880 hex digits → the 440 bytes of boot code.
fn parse_bootstrap(hex: &str) -> Result<[u8; 440], String> {
    let mut out = [0u8; 440];
    if hex.len() != out.len() * 2 {
        return Err(format!(
            "must be exactly 440 bytes (880 hex digits), found {} digits",
            hex.len()
        ));
    }
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let nibble = |c: u8| char::from(c).to_digit(16);
        *byte = match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => (hi * 16 + lo) as u8,
            _ => return Err(format!("`{}` is not a hex byte", String::from_utf8_lossy(pair))),
        };
    }
    Ok(out)
}
