//! The loader binary's global allocator: `dlmalloc` for ordinary blocks,
//! and blocks of [`LARGE`] bytes or more mapped on their own.
//!
//! Static musl's `malloc` (mallocng) returns freed memory to the kernel
//! eagerly and pays system calls and page faults to get it back on every
//! boot step; dlmalloc keeps freed memory for reuse (phase of the one-vCPU
//! guest's 7.2 MB install, 16 alternating direct boots: 346 → 311 ms first
//! quartile; README "Where one vCPU's time goes").
//!
//! But the Rust port of dlmalloc gives nothing back: 500 MiB of 1 MiB
//! blocks freed left the process at 502 MiB resident. The loader decides
//! from the kernel's `MemAvailable` whether a bundle is held in memory and
//! whether a takeover fits, so a retry after a failed memory-mode attempt
//! would see the last bundle as still in use. Large blocks (a memory-mode
//! bundle's 1 MiB chunks, the pipeline's, a ZIP reader's buffer) are
//! therefore their own anonymous mappings, as musl and glibc make them:
//! freeing one returns it to the kernel at once, fresh pages read as zeros
//! without a `memset`, and a grown `Vec` is remapped instead of copied.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

use dlmalloc::GlobalDlmalloc;
use nix::libc;

/// Blocks from this size up are mapped on their own (musl's threshold is
/// about 128 KiB, glibc's starts there).
pub const LARGE: usize = 256 * 1024;
const PAGE: usize = 4096;

/// `#[global_allocator]` of the loader binary (`main.rs`).
pub struct Allocator;

/// Whether `layout` gets a mapping of its own: large, and aligned no more
/// strictly than the page a mapping starts on.
fn mapped(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

/// The length of the mapping for `size` bytes. A layout's size is at most
/// `isize::MAX` rounded down to its alignment, so this cannot overflow.
fn mapping_len(size: usize) -> usize {
    size.next_multiple_of(PAGE)
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // overlaps no memory the program holds; failure is MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            mapping_len(size),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: a mapped block is page-aligned (every `mapped` layout's alignment
// divides a page), at least `size` bytes long, zero-filled by the kernel,
// and unmapped exactly once, with the length `mapping_len` recomputes from
// the layout the caller must pass back (`mapped` of that layout says which
// allocator made the block). Every other block is dlmalloc's.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { GlobalDlmalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { GlobalDlmalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            // SAFETY: `ptr` is a mapping of this length (see above) that
            // the caller gives up here.
            unsafe { libc::munmap(ptr.cast(), mapping_len(layout.size())) };
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { GlobalDlmalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(&layout), mapped(&new_layout)) {
            (false, false) => {
                // SAFETY: the caller's contract, passed on.
                unsafe { GlobalDlmalloc.realloc(ptr, layout, new_size) }
            }
            (true, true) => {
                // SAFETY: `ptr` is a mapping of the old length (see above);
                // MREMAP_MAYMOVE moves its pages, and leaves it intact on
                // failure.
                let p = unsafe {
                    libc::mremap(
                        ptr.cast(),
                        mapping_len(layout.size()),
                        mapping_len(new_size),
                        libc::MREMAP_MAYMOVE,
                    )
                };
                if p == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    p.cast()
                }
            }
            _ => {
                // Across the threshold: a new block, the common prefix
                // copied, the old one freed (and kept if no new block).
                // SAFETY: `new_layout` has a non-zero size (the caller's
                // contract) and the old block holds `layout.size()` bytes.
                unsafe {
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident memory of this process, in bytes (`/proc/self/statm`).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("rss");
        pages * PAGE
    }

    #[test]
    fn freed_large_blocks_go_back_to_the_kernel() {
        const BLOCK: usize = 1 << 20;
        let layout = Layout::from_size_align(BLOCK, 8).unwrap();
        let small = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: each block is written within its size and freed once
        // with the layout it was made with.
        unsafe {
            let before = resident();
            // Small blocks live between the large ones, as in a boot (the
            // parsed meta.conf, the disk list): dlmalloc alone keeps every
            // segment that still holds one.
            let (blocks, smalls): (Vec<*mut u8>, Vec<*mut u8>) = (0..64)
                .map(|_| (Allocator.alloc(layout), Allocator.alloc(small)))
                .unzip();
            for &b in &blocks {
                assert!(!b.is_null());
                b.write_bytes(7, BLOCK);
            }
            let full = resident();
            assert!(full >= before + 60 * BLOCK, "{before} -> {full}");
            for b in blocks {
                Allocator.dealloc(b, layout);
            }
            let after = resident();
            for s in smalls {
                Allocator.dealloc(s, small);
            }
            assert!(
                after + 60 * BLOCK <= full,
                "still resident after free: {full} -> {after}"
            );
        }
    }

    #[test]
    fn large_blocks_are_page_aligned_zeroed_and_keep_their_bytes_across_sizes() {
        let a = Allocator;
        let layout = Layout::from_size_align(LARGE + 10, 8).unwrap();
        // SAFETY: every block is used within its size and freed once with
        // the layout it has at that moment.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % PAGE, 0);
            assert!(std::slice::from_raw_parts(p, layout.size()).iter().all(|&b| b == 0));
            p.write_bytes(7, layout.size());
            let grown = a.realloc(p, layout, 4 * LARGE);
            assert!(std::slice::from_raw_parts(grown, layout.size()).iter().all(|&b| b == 7));
            let shrunk = a.realloc(grown, Layout::from_size_align(4 * LARGE, 8).unwrap(), 100);
            assert!(std::slice::from_raw_parts(shrunk, 100).iter().all(|&b| b == 7));
            let regrown = a.realloc(shrunk, Layout::from_size_align(100, 8).unwrap(), LARGE);
            assert!(std::slice::from_raw_parts(regrown, 100).iter().all(|&b| b == 7));
            a.dealloc(regrown, Layout::from_size_align(LARGE, 8).unwrap());
        }
        assert!(!mapped(&Layout::from_size_align(LARGE - 1, 8).unwrap()));
        assert!(!mapped(&Layout::from_size_align(LARGE, 2 * PAGE).unwrap()));
    }
}
