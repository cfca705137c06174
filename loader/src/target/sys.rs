//! Every block-device ioctl the loader issues, and `sync_file_range`, and
//! the only `unsafe` code for them: each wrapper borrows an open
//! descriptor, passes a pointer to a local of the size the kernel expects
//! (or none), and returns a typed value.
//!
//! Request numbers are from `<linux/fs.h>`: `BLKGETSIZE64 = _IOR(0x12, 114,
//! size_t)` (the kernel writes a u64 whatever `size_t` is), `BLKSSZGET =
//! _IO(0x12, 104)` (writes an int), `BLKDISCARD = _IO(0x12, 119)` (reads
//! two u64: start and length in bytes), `BLKRRPART = _IO(0x12, 95)`,
//! `BLKPG = _IO(0x12, 105)` (reads a `struct blkpg_ioctl_arg` from
//! `<linux/blkpg.h>` whose `data` points at a `struct blkpg_partition`).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

mod raw {
    nix::ioctl_read_bad!(
        blk_getsize64,
        nix::request_code_read!(0x12, 114, std::mem::size_of::<usize>()),
        u64
    );
    nix::ioctl_read_bad!(blk_sszget, nix::request_code_none!(0x12, 104), nix::libc::c_int);
    nix::ioctl_write_ptr_bad!(blk_discard, nix::request_code_none!(0x12, 119), [u64; 2]);
    nix::ioctl_none!(blk_rrpart, 0x12, 95);
    nix::ioctl_write_ptr_bad!(blk_pg, nix::request_code_none!(0x12, 105), super::BlkpgArg);
}

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
struct BlkpgArg {
    op: nix::libc::c_int,
    flags: nix::libc::c_int,
    datalen: nix::libc::c_int,
    data: *mut BlkpgPartition,
}

/// `struct blkpg_partition`: start and length in bytes.
#[repr(C)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: nix::libc::c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

const BLKPG_ADD_PARTITION: nix::libc::c_int = 1;
const BLKPG_DEL_PARTITION: nix::libc::c_int = 2;

/// A partition change for [`partition_op`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionOp {
    /// Add partition `number` at `start` bytes, `length` bytes long.
    Add { number: u32, start: u64, length: u64 },
    /// Remove partition `number` from the kernel's view (`EBUSY` while open).
    Delete { number: u32 },
}

/// Changes one partition in the kernel's view of the disk without
/// re-reading the whole table (`BLKPG`), which works while other
/// partitions of the disk are in use.
pub fn partition_op(fd: BorrowedFd<'_>, op: PartitionOp) -> Result<(), Errno> {
    let too_big = |n: u64| i64::try_from(n).map_err(|_| Errno::EINVAL);
    let (code, number, start, length) = match op {
        PartitionOp::Add { number, start, length } => (BLKPG_ADD_PARTITION, number, too_big(start)?, too_big(length)?),
        PartitionOp::Delete { number } => (BLKPG_DEL_PARTITION, number, 0, 0),
    };
    let mut partition = BlkpgPartition {
        start,
        length,
        pno: nix::libc::c_int::try_from(number).map_err(|_| Errno::EINVAL)?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgArg {
        op: code,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as nix::libc::c_int,
        data: &mut partition,
    };
    // SAFETY: `fd` is live for the borrow; BLKPG reads `arg` and, through
    // `arg.data`, `datalen` bytes of `partition`: both are locals that
    // outlive the call, laid out as <linux/blkpg.h> declares them (repr(C)).
    unsafe { raw::blk_pg(fd.as_raw_fd(), &arg) }?;
    Ok(())
}

/// The device size in bytes (`BLKGETSIZE64`).
pub fn device_size(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut size: u64 = 0;
    // SAFETY: `fd` is a live descriptor for the borrow's duration, and
    // BLKGETSIZE64 writes exactly one u64 through the pointer, which points
    // at `size`, a valid, aligned, writable u64 on this stack frame.
    unsafe { raw::blk_getsize64(fd.as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// The logical sector size in bytes (`BLKSSZGET`).
pub fn logical_sector_size(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut size: nix::libc::c_int = 0;
    // SAFETY: `fd` is live for the borrow; BLKSSZGET writes one int through
    // the pointer, which points at `size`, a valid writable c_int.
    unsafe { raw::blk_sszget(fd.as_raw_fd(), &mut size) }?;
    u32::try_from(size).map_err(|_| Errno::EINVAL)
}

/// Discards `len` bytes at `offset` (`BLKDISCARD`); both must be multiples
/// of the logical sector size. `EOPNOTSUPP` when the device cannot discard.
pub fn discard(fd: BorrowedFd<'_>, offset: u64, len: u64) -> Result<(), Errno> {
    let range: [u64; 2] = [offset, len];
    // SAFETY: `fd` is live for the borrow; BLKDISCARD only reads two u64
    // through the pointer, which points at `range`, valid for the call.
    unsafe { raw::blk_discard(fd.as_raw_fd(), &range) }?;
    Ok(())
}

/// Asks the kernel to re-read the partition table (`BLKRRPART`); `EBUSY`
/// while a partition is open.
pub fn reread_partition_table(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: `fd` is live for the borrow and BLKRRPART takes no argument,
    // so no memory is shared with the kernel.
    unsafe { raw::blk_rrpart(fd.as_raw_fd()) }?;
    Ok(())
}

/// Starts writing `len` bytes at `offset` back to the medium without
/// waiting for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`).
pub fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) -> Result<(), Errno> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(Errno::EINVAL);
    };
    // SAFETY: `fd` is live for the borrow and sync_file_range takes only
    // integers, so no memory is shared with the kernel.
    let rc = unsafe { nix::libc::sync_file_range(fd.as_raw_fd(), offset, len, nix::libc::SYNC_FILE_RANGE_WRITE) };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// On a regular file every block ioctl fails with ENOTTY instead of
    /// touching memory it should not: the request numbers are block ones.
    #[test]
    fn block_ioctls_on_a_regular_file_are_refused() {
        let file = tempfile::tempfile().expect("temp file");
        assert_eq!(device_size(file.as_fd()), Err(Errno::ENOTTY));
        assert_eq!(logical_sector_size(file.as_fd()), Err(Errno::ENOTTY));
        assert_eq!(discard(file.as_fd(), 0, 512), Err(Errno::ENOTTY));
        assert_eq!(reread_partition_table(file.as_fd()), Err(Errno::ENOTTY));
        assert_eq!(
            partition_op(file.as_fd(), PartitionOp::Delete { number: 1 }),
            Err(Errno::ENOTTY)
        );
    }
}
