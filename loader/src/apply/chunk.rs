//! The pipeline's buffers: bytes that start on a page boundary, so a block
//! device writes them with `O_DIRECT` as they are (`target::direct`),
//! without first copying each byte into an aligned buffer of its own.

use std::ops::Deref;

use crate::target::DIRECT_ALIGN as ALIGN;

/// Up to `capacity` bytes, page-aligned, reused from chunk to chunk.
pub struct Chunk {
    /// `capacity + ALIGN` bytes, of which `[start..start + capacity]` is
    /// the chunk's space.
    buf: Vec<u8>,
    start: usize,
    capacity: usize,
    len: usize,
}

impl Chunk {
    pub fn new(capacity: usize) -> Chunk {
        let buf = vec![0; capacity + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Chunk {
            buf,
            start,
            capacity,
            len: 0,
        }
    }

    /// How many bytes the chunk can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The whole space, to fill; then [`Chunk::set_len`].
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.capacity]
    }

    /// How many bytes of the space hold data.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.capacity);
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_starts_on_a_page_and_holds_what_was_filled() {
        let mut chunk = Chunk::new(3 * ALIGN);
        assert_eq!(chunk.space().len(), 3 * ALIGN);
        assert_eq!(chunk.space().as_ptr() as usize % ALIGN, 0);
        chunk.space()[..5].copy_from_slice(b"hello");
        chunk.set_len(5);
        assert_eq!(&chunk[..], b"hello");
        assert_eq!(chunk.as_ptr() as usize % ALIGN, 0);
    }
}
