//! GUID partition tables the way fwup 1.16's `gpt_write` writes them, and a
//! reader for the table on a disk.
//!
//! Layout (512-byte blocks, N = device size): protective MBR at 0, primary
//! header at 1, 128 entries of 128 bytes at 2..=33, the backup entries at
//! N-33..=N-2 and the backup header at N-1.

mod encode;
mod guid;
mod read;
mod spec;

pub use encode::encode;
pub use guid::{BadGuid, Guid};
pub use read::{read, GptPartitionEntry, GptTable};
pub use spec::{GptPartitionSpec, GptSpec};

/// fwup accepts partitions numbered 0..15.
pub const MAX_PARTITIONS: usize = 16;
/// Entries in the partition array (32 blocks of 4 entries).
pub const ENTRY_COUNT: usize = 128;
pub const ENTRY_SIZE: usize = 128;
/// Blocks of one GPT copy: the header plus the 32-block entry array.
pub const GPT_BLOCKS: u64 = 33;
/// Attribute bit 2: legacy BIOS bootable, what `boot = true` sets.
pub const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
