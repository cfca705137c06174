//! Data written through the page cache (on a block device, what is not
//! written `O_DIRECT`: see `direct`; on an image file, everything) starts
//! on its way to the medium while the install goes on, in batches of
//! [`BATCH`] bytes, instead of all at the sync before the commit. The bytes written and their order are unchanged: this only
//! moves the page cache's writeback earlier, so the sync waits for the
//! last batch rather than for the whole bundle (measured in
//! `scripts/bench`), and a small machine does not pile up dirty memory
//! until the kernel throttles the writer.

use std::os::fd::BorrowedFd;

use super::sys;

/// Bytes of one contiguous run handed to writeback at once. Small enough
/// that a 5 MB slot image written through the page cache is on its way
/// before the commit's first sync (with 8 MiB the whole of it waited for
/// that sync); each batch is one syscall.
pub const BATCH: u64 = 1 << 20;

/// The contiguous run written since the last batch was started.
#[derive(Debug, Default)]
pub struct Writeback {
    start: u64,
    end: u64,
}

impl Writeback {
    /// Records a write of `len` bytes at `offset`; starts the writeback of
    /// the current run once it reaches a batch. A write elsewhere starts a
    /// new run (what was pending waits for the sync).
    pub fn wrote(&mut self, fd: BorrowedFd<'_>, offset: u64, len: u64) {
        if offset != self.end {
            self.start = offset;
        }
        self.end = offset + len;
        if self.end - self.start >= BATCH {
            // Only a hint: an I/O error shows at the sync, which every
            // install ends with.
            let _ = sys::start_writeback(fd, self.start, self.end - self.start);
            self.start = self.end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn contiguous_writes_are_started_in_batches_and_a_jump_starts_a_new_run() {
        let file = tempfile::tempfile().expect("temp file");
        let mut wb = Writeback::default();
        wb.wrote(file.as_fd(), 0, BATCH - 1);
        assert_eq!((wb.start, wb.end), (0, BATCH - 1));
        wb.wrote(file.as_fd(), BATCH - 1, 1);
        assert_eq!((wb.start, wb.end), (BATCH, BATCH), "a full batch was started");
        wb.wrote(file.as_fd(), 5 * BATCH, 4096);
        assert_eq!((wb.start, wb.end), (5 * BATCH, 5 * BATCH + 4096));
    }
}
