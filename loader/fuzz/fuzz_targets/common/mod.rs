//! Helpers shared by the fuzz targets (each target includes this file).

#![allow(dead_code)] // each target uses a different part

use std::collections::HashMap;
use std::io::{self, Read};

use loader::formats::{Medium, BLOCK_SIZE};

/// A disk whose first bytes are the fuzz input and whose other blocks read
/// as zeros until written; writes go to an overlay. Unlike `Vec<u8>` as a
/// medium it never grows to the offset of a write, so a table pointing at
/// block 2^32 costs one block, not 2 TiB. Writes past `size` fail like a
/// full disk, and the overlay is capped so that no input makes a target
/// hold more than [`OVERLAY_LIMIT`] bytes.
pub struct SparseDisk<'a> {
    base: &'a [u8],
    overlay: HashMap<u64, Box<[u8; BLOCK]>>,
    pub size: u64,
}

const BLOCK: usize = BLOCK_SIZE as usize;
pub const OVERLAY_LIMIT: usize = 64 << 20;

impl<'a> SparseDisk<'a> {
    pub fn new(base: &'a [u8], size: u64) -> Self {
        SparseDisk {
            base,
            overlay: HashMap::new(),
            size,
        }
    }

    fn block(&self, index: u64) -> [u8; BLOCK] {
        if let Some(b) = self.overlay.get(&index) {
            return **b;
        }
        let mut out = [0u8; BLOCK];
        let start = index.saturating_mul(BLOCK_SIZE);
        if start < self.base.len() as u64 {
            let start = start as usize;
            let end = (start + BLOCK).min(self.base.len());
            out[..end - start].copy_from_slice(&self.base[start..end]);
        }
        out
    }

    /// Bytes at `offset`, as the medium would read them.
    pub fn bytes(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf).expect("reads never fail");
        buf
    }
}

impl Medium for SparseDisk<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let (index, within) = (at / BLOCK_SIZE, (at % BLOCK_SIZE) as usize);
            let n = (BLOCK - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&self.block(index)[within..within + n]);
            done += n;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(io::Error::other("write past the end of the disk"));
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK_SIZE, (at % BLOCK_SIZE) as usize);
            let n = (BLOCK - within).min(data.len() - done);
            let mut block = self.block(index);
            block[within..within + n].copy_from_slice(&data[done..done + n]);
            if !self.overlay.contains_key(&index) && self.overlay.len() * BLOCK >= OVERLAY_LIMIT {
                return Err(io::Error::other("fuzz overlay full"));
            }
            self.overlay.insert(index, Box::new(block));
            done += n;
        }
        Ok(())
    }
}

/// A reader that hands out at most `chunk` bytes per call, as a network
/// stream does.
pub struct Trickle<'a> {
    pub data: &'a [u8],
    pub chunk: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
