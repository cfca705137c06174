//! The one error type of the partition-table and U-Boot environment codecs.
//!
//! Every message names what it is about (the meta.conf section and partition,
//! the block of an on-disk structure) so a person at a serial console knows
//! which bundle setting or which disk area to look at.

use std::io;

use crate::bundle::conf::ValueError;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A `mbr`, `gpt` or `uboot-environment` option that is missing or does
    /// not mean anything usable; names the section, partition and option.
    #[error("{0}")]
    Conf(#[from] ValueError),

    /// The partitions of a spec do not fit together or on the disk
    /// (overlap, past the end, too many). `table` is the section, e.g.
    /// `mbr "mbr-ext"`.
    #[error("{table}: {problem}")]
    Layout { table: String, problem: String },

    /// A partition table whose partitions reach past the end of the disk:
    /// fwup writes it anyway (a table that points past the end); the loader
    /// refuses, before anything is written.
    #[error(
        "{table} does not fit on the target: the disk is {}, the layout needs {}; the largest partition \
         that does not fit is {partition} ({} at blocks {start}..{end})",
        human_bytes(*disk_blocks * 512),
        human_bytes(*layout_blocks * 512),
        human_size((*end - *start) * 512)
    )]
    TooLarge {
        table: String,
        disk_blocks: u64,
        layout_blocks: u64,
        /// `partition "1"`.
        partition: String,
        start: u64,
        end: u64,
    },

    /// The variables do not fit into the environment's blocks.
    #[error(
        "uboot-environment \"{env}\": the variables need {needed} bytes but \
         {block_count} blocks hold at most {capacity}; remove variables or \
         enlarge block-count"
    )]
    EnvFull {
        env: String,
        block_count: u64,
        needed: u64,
        capacity: u64,
    },

    /// No usable environment on the disk: blank, CRC mismatch or malformed.
    /// Guards (`require-uboot-variable`) treat this as "variable not set";
    /// `uboot_recover` rewrites a clean environment.
    #[error("U-Boot environment at block {block}: {problem}")]
    InvalidEnv { block: u64, problem: String },

    /// An on-disk partition table that cannot be decoded.
    #[error("{what}: {problem}")]
    BadTable { what: String, problem: String },

    /// Reading or writing the medium failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl FormatError {
    /// True when the environment is blank or corrupt (as opposed to an I/O
    /// error): the case fwup's guards see as "variable not set".
    pub fn is_invalid_env(&self) -> bool {
        matches!(self, FormatError::InvalidEnv { .. })
    }

    pub(crate) fn layout(table: impl Into<String>, problem: impl Into<String>) -> Self {
        FormatError::Layout {
            table: table.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| FormatError::Io { what, source }
    }
}

/// `4.0 MiB (4194304 bytes)`.
fn human_bytes(bytes: u64) -> String {
    match human_size(bytes) {
        short if short.ends_with(" bytes") => short,
        short => format!("{short} ({bytes} bytes)"),
    }
}

/// `4.0 MiB`, or `300 bytes` below 1 KiB.
fn human_size(bytes: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match units.iter().find(|(_, size)| bytes >= *size) {
        Some((unit, size)) => format!("{:.1} {unit}", bytes as f64 / *size as f64),
        None => format!("{bytes} bytes"),
    }
}

/// A [`ValueError`] about an option of a subsection, e.g.
/// `mbr "mbr-ext" partition "3": option `block-count`: …`.
pub(crate) fn option_error(section: &str, key: &str, problem: impl Into<String>) -> FormatError {
    FormatError::Conf(ValueError {
        section: section.to_string(),
        key: key.to_string(),
        problem: problem.into(),
    })
}

/// A `partition "N"` section title as a slot number below `max`.
pub(crate) fn partition_index(table: &str, title: &str, max: usize) -> Result<usize, FormatError> {
    crate::bundle::conf::parse_u64(title)
        .and_then(|i| usize::try_from(i).ok())
        .filter(|&i| i < max)
        .ok_or_else(|| {
            FormatError::layout(
                table,
                format!("partition \"{title}\": partitions are numbered 0 through {}", max - 1),
            )
        })
}
