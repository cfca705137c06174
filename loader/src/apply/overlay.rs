//! Held writes: the mechanism behind "nothing bootable until everything is
//! verified".
//!
//! Every write that can change what a machine boots — partition tables, the
//! first and last MiB of the disk, U-Boot environments, FAT volumes, the slot
//! switch — lands in this in-memory overlay instead of on the disk. Reads see
//! the overlay first, so later actions observe earlier held writes exactly as
//! fwup's cache would show them. Only after every resource has verified and
//! `on-finish` has run does [`Overlay::commit`] write the held pages, in the
//! order and with the syncs [`super::commit`] explains. If anything fails
//! before that, the overlay is dropped and the disk never sees a
//! boot-critical byte of the failed install.
//!
//! Streamed `raw_write` data outside the protected zones goes straight to the
//! target: it is the bulk of an install and cannot make the disk boot alone.

use std::collections::BTreeMap;
use std::io;
use std::ops::Range;

use super::commit::{self, Layout};
use crate::formats::uboot_env::UbootEnvSpec;
use crate::formats::Medium;
use crate::target::Target;

/// Granularity of held data. Pages are read-modify-written from the target.
pub const PAGE: u64 = 4096;
const MIB: u64 = 1024 * 1024;

/// Default bound on held data; see the README ("Memory bound of held writes").
pub const DEFAULT_HOLD_LIMIT: u64 = 64 * MIB;

pub struct Overlay<'t> {
    target: &'t mut dyn Target,
    pages: BTreeMap<u64, Box<[u8]>>,
    /// Byte ranges whose writes are always held, even streamed ones.
    protected: Vec<Range<u64>>,
    /// Byte ranges written by `mbr_write`/`gpt_write`.
    tables: Vec<Range<u64>>,
    limit: u64,
}

/// Held data would pass the configured bound.
#[derive(Debug, thiserror::Error)]
#[error("the install holds back more than {limit} bytes of boot-critical writes (limit); raise --hold-limit or shrink the FAT volumes the bundle writes")]
pub struct HoldLimitExceeded {
    pub limit: u64,
}

/// The first and last MiB (the last when the disk's size is known): held
/// from the start of every install.
fn edge_zones(size: Option<u64>) -> Vec<Range<u64>> {
    let mut zones = Vec::with_capacity(4);
    zones.push(0..MIB);
    if let Some(size) = size {
        zones.push(size.saturating_sub(MIB)..size);
    }
    zones
}

/// The declared U-Boot environments: held by every task of the bundle.
pub fn env_zones(manifest: &crate::bundle::manifest::Manifest) -> Vec<Range<u64>> {
    let specs = manifest.uboot_envs.iter();
    let specs = specs.filter_map(|section| crate::formats::uboot_env::UbootEnvSpec::from_section(section).ok());
    specs.flat_map(|spec| spec.byte_ranges()).collect()
}

/// Every range whose writes are held until the commit whatever the task:
/// [`edge_zones`] and [`env_zones`].
pub fn held_zones(manifest: &crate::bundle::manifest::Manifest, size: Option<u64>) -> Vec<Range<u64>> {
    let mut zones = edge_zones(size);
    zones.extend(env_zones(manifest));
    zones
}

impl<'t> Overlay<'t> {
    /// Wraps a target. The first and last MiB (when the size is known) are
    /// protected from the start: MBR, GPTs, boot loaders and EBR-free layouts
    /// all live there.
    pub fn new(target: &'t mut dyn Target, limit: u64) -> Self {
        let protected = edge_zones(target.size());
        Overlay {
            target,
            pages: BTreeMap::new(),
            protected,
            tables: Vec::new(),
            limit,
        }
    }

    /// Holds every later write to `range` (a U-Boot environment, a FAT
    /// volume, an EBR).
    pub fn protect(&mut self, range: Range<u64>) {
        if range.start < range.end
            && !self
                .protected
                .iter()
                .any(|r| r.start <= range.start && range.end <= r.end)
        {
            self.protected.push(range);
        }
    }

    pub fn target(&self) -> &dyn Target {
        &*self.target
    }

    pub fn held_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    fn is_protected(&self, page: u64) -> bool {
        let start = page * PAGE;
        let end = start + PAGE;
        self.protected.iter().any(|r| r.start < end && start < r.end)
    }

    /// The held page, loaded from the target on first touch.
    fn page_mut(&mut self, page: u64, fully_overwritten: bool) -> io::Result<&mut [u8]> {
        if !self.pages.contains_key(&page) {
            if self.held_bytes() + PAGE > self.limit {
                return Err(io::Error::other(HoldLimitExceeded { limit: self.limit }));
            }
            let mut buf = vec![0u8; PAGE as usize].into_boxed_slice();
            if !fully_overwritten {
                // A device whose size is not a page multiple (1 GiB + 3
                // sectors) ends inside its last page: read what exists; the
                // rest stays zeros and is never written (the commit clips).
                let start = page * PAGE;
                let len = match self.target.size() {
                    Some(size) => size.saturating_sub(start).min(PAGE),
                    None => PAGE,
                };
                self.target.read_at(start, &mut buf[..len as usize])?;
            }
            self.pages.insert(page, buf);
        }
        // The entry exists: inserted above or already present.
        self.pages
            .get_mut(&page)
            .map(|p| &mut p[..])
            .ok_or_else(|| io::Error::other("overlay page vanished"))
    }

    /// Writes into held pages for `[offset, offset+data.len())`.
    fn hold(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut pos = 0usize;
        while pos < data.len() {
            let abs = offset + pos as u64;
            let page = abs / PAGE;
            let in_page = (abs % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(data.len() - pos);
            let page_buf = self.page_mut(page, in_page == 0 && n == PAGE as usize)?;
            page_buf[in_page..in_page + n].copy_from_slice(&data[pos..pos + n]);
            pos += n;
        }
        Ok(())
    }

    /// A streamed write (resource data for `raw_write`): straight to the
    /// target unless it touches a protected zone or a page already held.
    pub fn write_streamed(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset + data.len() as u64;
        let first = offset / PAGE;
        let last = (end - 1) / PAGE;
        let touches_held = self.pages.range(first..=last).next().is_some();
        let touches_protected = self.protected.iter().any(|r| r.start < end && offset < r.end);
        if !touches_held && !touches_protected {
            return self.target.write_at(offset, data);
        }
        // Split page by page: held pages and protected zones stay in memory,
        // the rest goes through.
        let mut pos = 0usize;
        while pos < data.len() {
            let abs = offset + pos as u64;
            let page = abs / PAGE;
            let n = ((page + 1) * PAGE - abs).min((data.len() - pos) as u64) as usize;
            if self.pages.contains_key(&page) || self.is_protected(page) {
                self.hold(abs, &data[pos..pos + n])?;
            } else {
                self.target.write_at(abs, &data[pos..pos + n])?;
            }
            pos += n;
        }
        Ok(())
    }

    /// fwup's `trim`: held and protected parts become zeros in memory; the
    /// rest is discarded on the target right away (it is never boot-critical).
    pub fn trim(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let end = offset + len;
        if len == 0 {
            return Ok(());
        }
        // The parts of the range that must stay in memory, sorted and merged.
        let mut keep: Vec<Range<u64>> = self
            .pages
            .range(offset / PAGE..=(end - 1) / PAGE)
            .map(|(p, _)| (p * PAGE).max(offset)..((p + 1) * PAGE).min(end))
            .chain(
                self.protected
                    .iter()
                    .filter(|r| r.start < end && offset < r.end)
                    .map(|r| r.start.max(offset)..r.end.min(end)),
            )
            .collect();
        keep.sort_by_key(|r| r.start);
        let mut cursor = offset;
        for r in merge(keep) {
            if cursor < r.start {
                self.target.discard(cursor, r.start - cursor)?;
            }
            self.fill_held(r.start, r.end - r.start, 0)?;
            cursor = r.end;
        }
        if cursor < end {
            self.target.discard(cursor, end - cursor)?;
        }
        Ok(())
    }

    /// `raw_memset`: like a streamed write of `len` bytes of `value`.
    pub fn fill_streamed(&mut self, offset: u64, len: u64, value: u8) -> io::Result<()> {
        let chunk = vec![value; (len.min(MIB)) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len() as u64);
            self.write_streamed(offset + done, &chunk[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Sets a held range to one byte value without a range-sized buffer.
    pub fn fill_held(&mut self, offset: u64, len: u64, value: u8) -> io::Result<()> {
        let chunk = vec![value; PAGE as usize * 16];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len() as u64);
            self.hold(offset + done, &chunk[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Holds a partition table's bytes (`mbr_write`, `gpt_write`): the
    /// commit orders them as part of what boots.
    pub fn write_table(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let range = offset..offset + bytes.len() as u64;
        self.protect(range.clone());
        self.tables.push(range);
        self.hold(offset, bytes)
    }

    /// Writes the held pages to the target, ordered and synced so that a
    /// power cut at any write leaves the old selection, the new one, or
    /// nothing bootable (see [`super::commit`]). The commit point of an
    /// install. `envs` and `fats` are the U-Boot environments of the bundle
    /// and the FAT volumes the task used.
    pub fn commit(mut self, envs: Vec<UbootEnvSpec>, fats: Vec<Range<u64>>) -> io::Result<u64> {
        let pages = std::mem::take(&mut self.pages);
        let layout = Layout {
            tables: std::mem::take(&mut self.tables),
            envs,
            fats,
        };
        commit::commit(self.target, &pages, &layout)
    }
}

/// Reads see held pages; writes through `Medium` are always held (this is
/// the path every format encoder and FAT operation takes).
impl Medium for Overlay<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut pos = 0usize;
        while pos < buf.len() {
            let abs = offset + pos as u64;
            let page = abs / PAGE;
            let in_page = (abs % PAGE) as usize;
            match self.pages.get(&page) {
                Some(data) => {
                    let n = (PAGE as usize - in_page).min(buf.len() - pos);
                    buf[pos..pos + n].copy_from_slice(&data[in_page..in_page + n]);
                    pos += n;
                }
                None => {
                    // Read up to the next held page in one call.
                    let next_held = self.pages.range(page + 1..).next().map(|(p, _)| p * PAGE);
                    let until = next_held.unwrap_or(u64::MAX).min(offset + buf.len() as u64);
                    let n = (until - abs) as usize;
                    self.target.read_at(abs, &mut buf[pos..pos + n])?;
                    pos += n;
                }
            }
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.hold(offset, data)
    }
}

fn merge(sorted: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}
