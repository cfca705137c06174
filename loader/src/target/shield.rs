//! A target with one byte range that nothing reaches: the data partition
//! during a `loader.task=repair`.
//!
//! Writes into the range land in memory pages instead of the disk, and
//! reads of the range see those pages over the disk's bytes, so a task
//! that formats or labels the partition (`fat_mkfs`, `fat_setlabel`,
//! `raw_memset` of its first blocks, as Nerves `complete` tasks do) runs
//! to its end as it would on a blank disk, and the disk keeps every byte
//! of the partition. Discards inside the range are dropped. The pages are
//! bounded: a task that writes more than [`DEFAULT_LIMIT`] into the range
//! (a bulk image meant for it) fails instead of holding it all in memory.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;

use super::Target;
use crate::formats::Medium;

const PAGE: u64 = 4096;

/// Most bytes of shielded writes kept in memory (64 MiB).
pub const DEFAULT_LIMIT: u64 = 64 << 20;

pub struct Shield<'t> {
    inner: &'t mut dyn Target,
    range: Range<u64>,
    pages: BTreeMap<u64, Box<[u8]>>,
    limit: u64,
    /// Bytes of writes and discards that were kept off the disk.
    pub dropped: u64,
}

impl<'t> Shield<'t> {
    pub fn new(inner: &'t mut dyn Target, range: Range<u64>) -> Shield<'t> {
        Shield {
            inner,
            range,
            pages: BTreeMap::new(),
            limit: DEFAULT_LIMIT,
            dropped: 0,
        }
    }

    /// The part of `offset..offset+len` inside the range, if any.
    fn overlap(&self, offset: u64, len: u64) -> Option<Range<u64>> {
        let start = offset.max(self.range.start);
        let end = (offset + len).min(self.range.end);
        (start < end).then_some(start..end)
    }

    fn page(&mut self, index: u64) -> io::Result<&mut Box<[u8]>> {
        if !self.pages.contains_key(&index) {
            if (self.pages.len() as u64 + 1) * PAGE > self.limit {
                return Err(io::Error::other(format!(
                    "the task writes more than {} MiB into the kept partition (bytes {}..{}); a repair cannot \
                     keep it",
                    self.limit >> 20,
                    self.range.start,
                    self.range.end
                )));
            }
            let mut fresh = vec![0u8; PAGE as usize].into_boxed_slice();
            self.inner.read_at(index * PAGE, &mut fresh)?;
            self.pages.insert(index, fresh);
        }
        self.pages
            .get_mut(&index)
            .ok_or_else(|| io::Error::other("shield page vanished"))
    }
}

impl Medium for Shield<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)?;
        let Some(inside) = self.overlap(offset, buf.len() as u64) else {
            return Ok(());
        };
        let first = inside.start / PAGE;
        let last = (inside.end - 1) / PAGE;
        for (&index, page) in self.pages.range(first..=last) {
            let page_start = index * PAGE;
            let from = page_start.max(inside.start);
            let to = (page_start + PAGE).min(inside.end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Some(inside) = self.overlap(offset, data.len() as u64) else {
            return self.inner.write_at(offset, data);
        };
        if inside.start > offset {
            self.inner.write_at(offset, &data[..(inside.start - offset) as usize])?;
        }
        let mut at = inside.start;
        while at < inside.end {
            let index = at / PAGE;
            let page_start = index * PAGE;
            let to = (page_start + PAGE).min(inside.end);
            let src = &data[(at - offset) as usize..(to - offset) as usize];
            let page = self.page(index)?;
            page[(at - page_start) as usize..(to - page_start) as usize].copy_from_slice(src);
            at = to;
        }
        self.dropped += inside.end - inside.start;
        let end = offset + data.len() as u64;
        if inside.end < end {
            self.inner
                .write_at(inside.end, &data[(inside.end - offset) as usize..])?;
        }
        Ok(())
    }
}

impl Target for Shield<'_> {
    fn size(&self) -> Option<u64> {
        self.inner.size()
    }

    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let Some(inside) = self.overlap(offset, len) else {
            return self.inner.discard(offset, len);
        };
        if inside.start > offset {
            self.inner.discard(offset, inside.start - offset)?;
        }
        self.dropped += inside.end - inside.start;
        if inside.end < offset + len {
            self.inner.discard(inside.end, offset + len - inside.end)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A memory target that counts discards.
    struct Mem(Vec<u8>, Vec<Range<u64>>);
    impl Medium for Mem {
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.0.read_at(offset, buf)
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.0.write_at(offset, data)
        }
    }
    impl Target for Mem {
        fn size(&self) -> Option<u64> {
            Some(self.0.len() as u64)
        }
        fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
            self.1.push(offset..offset + len);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "mem".into()
        }
    }

    #[test]
    fn writes_across_the_range_reach_the_disk_only_outside_it() {
        let mut mem = Mem(vec![7u8; 64 * 1024], Vec::new());
        let mut shield = Shield::new(&mut mem, 10_000..20_000);
        shield.write_at(9_000, &[1u8; 12_000]).unwrap();
        let mut back = vec![0u8; 12_000];
        shield.read_at(9_000, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 1), "the task sees its own writes");
        assert_eq!(shield.dropped, 10_000);
        shield.discard(0, 64 * 1024).unwrap();
        drop(shield);
        assert!(mem.0[9_000..10_000].iter().all(|&b| b == 1));
        assert!(
            mem.0[10_000..20_000].iter().all(|&b| b == 7),
            "the kept range is untouched"
        );
        assert!(mem.0[20_000..21_000].iter().all(|&b| b == 1));
        assert_eq!(mem.1, [0..10_000, 20_000..64 * 1024], "discards skip the kept range");
    }

    #[test]
    fn more_shielded_data_than_the_limit_fails() {
        let mut mem = Mem(vec![0u8; 1 << 20], Vec::new());
        let mut shield = Shield::new(&mut mem, 0..1 << 20);
        shield.limit = 8192;
        shield.write_at(0, &[1u8; 8192]).unwrap();
        let err = shield.write_at(8192, &[1u8; 1]).unwrap_err();
        assert!(err.to_string().contains("a repair cannot keep it"), "{err}");
    }
}
