//! Streamed data to a block device without the page cache (`O_DIRECT`).
//!
//! Through the page cache, the CPU copies every byte into a cached page,
//! tracks the page dirty and later builds its writeback. On the one-vCPU
//! guest a new user's VPS is, that bookkeeping costs more than the copy:
//! in a one-vCPU TCG guest (`loader/examples/byte_costs_guest.sh`, 112 MB
//! to an NVMe disk) buffered writes and their `fdatasync` took 0.78 s,
//! direct writes from one aligned buffer 0.33 s (including copying each
//! byte into that buffer), and a direct write waits for the device
//! while the pipeline's reader and hasher use the CPU.
//!
//! Only whole sectors at sector-aligned offsets go this way, in writes of
//! at least [`MIN_DIRECT`] bytes; the rest (tables, FAT sectors, a
//! resource's last partial sector) goes through the page cache. The
//! kernel keeps the two coherent: a direct write first writes back cached
//! dirty pages in its range and then drops them, so a later buffered read
//! sees the device. Durability is unchanged: a direct write lands in the
//! device's volatile cache like writeback does, and the commit's `fsync`
//! of the device flushes that cache for both.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Smaller writes stay in the page cache, where neighbours coalesce: a
/// direct write is one synchronous round trip to the device.
pub const MIN_DIRECT: usize = 64 * 1024;

/// Bytes copied into the aligned buffer and written per system call.
const PIECE: usize = 1 << 20;

/// Every device's direct-I/O memory alignment divides a page: data that
/// starts on one is written as it is (the install pipeline's chunks).
pub const ALIGN: usize = 4096;

/// A second handle on the device, opened with `O_DIRECT`, and the aligned
/// buffer its writes of unaligned data are copied into.
#[derive(Debug)]
pub struct DirectWriter {
    file: File,
    /// `PIECE + ALIGN` bytes, of which the `PIECE` from the first page
    /// boundary on are used; made at the first unaligned write. The install pipeline's chunks
    /// are aligned, so an install usually never makes it: zeroing it at
    /// every open cost the boot's "disk:" step about 1 ms in a one-vCPU
    /// TCG guest (5.3-6.4 → 4.8-5.1 ms, first quartiles).
    buf: Vec<u8>,
}

impl DirectWriter {
    /// Opens `path` again for direct writes. Not exclusive: the caller's
    /// exclusive handle already holds the device. `None` when the device
    /// or filesystem refuses `O_DIRECT` (then every write is buffered).
    pub fn open(path: &Path) -> Option<DirectWriter> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_DIRECT)
            .open(path)
            .map_err(|e| tracing::debug!(path = %path.display(), error = %e, "no direct writes"))
            .ok()?;
        Some(DirectWriter { file, buf: Vec::new() })
    }

    /// Writes the whole sectors at the start of `data` to `offset` (a
    /// multiple of `sector`) and returns how many bytes that was; the
    /// caller writes the rest through the page cache.
    pub fn write_sectors(&mut self, offset: u64, data: &[u8], sector: usize) -> io::Result<usize> {
        let whole = data.len() / sector * sector;
        if data.as_ptr().align_offset(ALIGN) == 0 {
            self.file.write_all_at(&data[..whole], offset)?;
            return Ok(whole);
        }
        if self.buf.is_empty() {
            self.buf = vec![0; PIECE + ALIGN];
        }
        let skew = self.buf.as_ptr().align_offset(ALIGN);
        let mut done = 0;
        while done < whole {
            let len = (whole - done).min(PIECE);
            let aligned = &mut self.buf[skew..skew + len];
            aligned.copy_from_slice(&data[done..done + len]);
            self.file.write_all_at(aligned, offset + done as u64)?;
            done += len;
        }
        Ok(done)
    }
}

/// Whether a write of `len` bytes at `offset` starts on a sector and is
/// large enough to be written directly.
pub fn suits(offset: u64, len: usize, sector: u32) -> bool {
    len >= MIN_DIRECT && sector > 0 && offset.is_multiple_of(u64::from(sector))
}
