//! MBR partition tables the way fwup 1.16 writes them, and a reader for the
//! primaries and the EBR chain of whatever table a disk holds.
//!
//! An `mbr "NAME" { … }` section names up to 4 primary partitions
//! (`partition "0"`…`"3"`) and, when partition 3 is an extended partition
//! (type 0x0f or 0x05), logical partitions `"4"`…`"11"`, each described by an
//! EBR in the block right after the previous one, starting at the extended
//! partition's first block.

mod encode;
mod read;
mod spec;

pub use encode::encode;
pub use read::{read_partitions, read_primary_slots, PartitionEntry};
pub use spec::{MbrPartitionSpec, MbrSpec};

/// Partition slots 0..3 live in the MBR itself.
pub const PRIMARY_SLOTS: usize = 4;
/// fwup supports 8 logical partitions (slots 4..11).
pub const MAX_PARTITIONS: usize = 12;

/// Partition types that make a primary slot an extended partition.
pub fn is_extended_type(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f)
}
