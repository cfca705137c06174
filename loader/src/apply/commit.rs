//! The commit: the held writes reach the disk in an order that a power cut
//! at any write cannot turn into a mix of the old install and the new one.
//!
//! Between two syncs a drive may land any subset of the pending writes and
//! tear a sector, so the order of writes alone promises nothing. What is
//! promised comes from syncs between steps, and from each step that
//! switches what boots being atomic on its own. The steps, each ended by a
//! sync:
//!
//! 0. A barrier: the streamed data (the new slot) is durable before
//!    anything can point at it. Where sector 0 boots nothing when the
//!    commit starts (a first install, or a disk switched off before the
//!    install streamed), nothing can point at it before the final sector 0,
//!    which goes after a sync anyway: the streamed data, the tables, the
//!    boot code and the environments then share one step, and such a
//!    commit syncs twice.
//! 1. What selects nothing: held data outside the boot structures, and FAT
//!    data in clusters the old FAT has free (no file of the disk as it is
//!    uses them). Only sectors whose bytes change are written at all: a
//!    write that leaves a sector as it was cannot matter, and cannot tear.
//!    (When sector 0 boots nothing at the start and the held sector 0 is
//!    what makes the disk boot, no sector can matter until that final
//!    sector 0: all held sectors are written, and the held ranges are not
//!    read back first.)
//! 2. The switch of what boots (partition tables, boot code in the first
//!    MiB, the rest of the FAT volumes the task used):
//!    - when it is one sector — an upgrade's `grubenv` is one sector of
//!      file data rewritten in place, whose `boot=` byte GRUB decides by —
//!      it is written alone, after the environments are locked (below);
//!    - when it is more (a new partition table, a FAT that `fat_mkfs`
//!      rewrote, new boot code), fwup's layout offers no single write that
//!      switches it, so the disk is switched off around it: sector 0 first
//!      loses its boot signature (a protective MBR also its 0xEE type,
//!      which UEFI firmware looks for without the signature), then
//!      everything is written, the U-Boot environments last, and the final
//!      sector 0 goes alone at the end. A cut in between leaves a disk
//!      that boots nothing (not a GRUB rescue prompt, not a half-written
//!      system); a complete install over a working system boots the old
//!      system until the switch-off lands. Both changed bytes of the
//!      switch-off decide alone, so a torn switch-off is one or the other;
//!      the boot signature ends sector 0, so a torn final sector 0 has
//!      none.
//! 3. U-Boot environments (`commit_env`) name the active slot: they must
//!    never name a slot other than the one that boots. While what boots
//!    switches, each environment that changes is unreadable, and it gets
//!    its final bytes once the switch is durable.
//!
//! The final bytes on the disk are exactly the held bytes: only the order,
//! the syncs and a few intermediate contents of sector 0 and of the
//! environments differ from writing the pages in offset order.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Range;

use super::commit_env::EnvChange;
use super::overlay::PAGE;
use crate::formats::fat::Fat;
use crate::formats::uboot_env::UbootEnvSpec;
use crate::formats::{Medium, BLOCK_SIZE};
use crate::target::Target;

const SECTOR: usize = BLOCK_SIZE as usize;
/// Sectors per held page.
const PER_PAGE: u64 = PAGE / BLOCK_SIZE;
/// Boot code lives in the first MiB (GRUB's core image, U-Boot SPLs).
const FIRST_MIB: u64 = 2048;
/// Largest run written in one call.
const MAX_RUN: usize = 4 << 20;

/// Where the structures that select what boots are, as the install found
/// them: the commit reads them to order its writes.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Bytes written by `mbr_write` and `gpt_write` (MBR, EBRs, GPT headers
    /// and entry arrays).
    pub tables: Vec<Range<u64>>,
    pub envs: Vec<UbootEnvSpec>,
    /// The FAT volumes the task used.
    pub fats: Vec<Range<u64>>,
}

/// What one sector of a step holds: its held (final) bytes, or bytes of
/// an intermediate state.
pub(super) type Content = Option<Box<[u8; SECTOR]>>;
/// Writes followed by a sync.
pub(super) type Step = BTreeMap<u64, Content>;

/// The held pages, sector by sector, against what the disk holds now.
pub(super) struct Held<'p> {
    pages: &'p BTreeMap<u64, Box<[u8]>>,
    /// Device size in sectors; sectors past it are never written.
    end: Option<u64>,
}

impl Held<'_> {
    /// The final bytes of a held sector.
    pub fn sector(&self, sector: u64) -> Option<&[u8]> {
        let page = self.pages.get(&(sector / PER_PAGE))?;
        let at = (sector % PER_PAGE) as usize * SECTOR;
        Some(&page[at..at + SECTOR])
    }

    /// The final bytes of `range` (held where held, else as on `disk`).
    pub fn final_bytes(&self, disk: &mut dyn Medium, range: Range<u64>) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; (range.end - range.start) as usize];
        disk.read_at(range.start, &mut out)?;
        for sector in range.start / BLOCK_SIZE..range.end.div_ceil(BLOCK_SIZE) {
            if let Some(data) = self.sector(sector) {
                let start = (sector * BLOCK_SIZE).max(range.start);
                let end = ((sector + 1) * BLOCK_SIZE).min(range.end);
                let from = (start - sector * BLOCK_SIZE) as usize;
                out[(start - range.start) as usize..(end - range.start) as usize]
                    .copy_from_slice(&data[from..from + (end - start) as usize]);
            }
        }
        Ok(out)
    }

    /// Sector 0 as the commit leaves it: held, or as it was (`old0`).
    fn final_sector0(&self, old0: &[u8; SECTOR]) -> [u8; SECTOR] {
        self.sector(0).and_then(|bytes| bytes.try_into().ok()).unwrap_or(*old0)
    }

    fn in_device(&self, sector: u64) -> bool {
        self.end.is_none_or(|end| sector < end)
    }
}

/// Writes the held pages to `target` in the order the module doc gives,
/// syncing after each step. Returns the held bytes now on the disk.
pub(super) fn commit(target: &mut dyn Target, pages: &BTreeMap<u64, Box<[u8]>>, layout: &Layout) -> io::Result<u64> {
    let size = target.size();
    let held = Held {
        pages,
        end: size.map(|s| s / BLOCK_SIZE),
    };
    let mut old0 = [0u8; SECTOR];
    target.read_at(0, &mut old0)?;
    let final0 = held.final_sector0(&old0);
    // Unchanged sectors are left alone so that they cannot tear while
    // something boots from the disk. Where the final sector 0 is what
    // makes the disk boot and the old one boots nothing, nothing can boot
    // before that sector lands last: writing them is harmless, and cheaper
    // than reading every held range back first. (A layout that boots
    // without sector 0, a U-Boot SPL at a fixed offset, keeps the diff.)
    if !is_armed(&old0) && is_armed(&final0) {
        first_boot(target, &held, final0)?;
    } else {
        let (changed, unchanged) = diff(target, &held)?;
        let plan = plan(target, &held, layout, &changed, unchanged, old0, final0)?;
        if plan.barrier {
            target.sync()?;
        }
        for step in plan.steps.iter().filter(|s| !s.is_empty()) {
            write_step(target, &held, step)?;
            target.sync()?;
        }
    }
    let held_bytes = pages.len() as u64 * PAGE;
    Ok(match size {
        Some(size) => pages.keys().map(|p| PAGE.min(size.saturating_sub(p * PAGE))).sum(),
        None => held_bytes,
    })
}

/// The commit where sector 0 boots nothing at the start and its final bytes
/// make the disk boot: every held byte but sector 0's, a sync, then the
/// final sector 0 and a sync. Until that sector lands nothing can boot,
/// whatever subset of the rest a cut leaves, so the held pages go out in
/// runs as they are, without the sorting of [`plan`] (which gives such a
/// disk the same two steps).
fn first_boot(target: &mut dyn Target, held: &Held, final0: [u8; SECTOR]) -> io::Result<()> {
    let end = held.end.map_or(u64::MAX, |sectors| sectors * BLOCK_SIZE);
    let pages: Vec<u64> = held.pages.keys().copied().collect();
    let mut run = Vec::new();
    for pages in pages.chunk_by(|a, b| b - a == 1) {
        for pages in pages.chunks(MAX_RUN / PAGE as usize) {
            let start = (pages[0] * PAGE).max(BLOCK_SIZE);
            let stop = ((pages[pages.len() - 1] + 1) * PAGE).min(end);
            if start >= stop {
                continue;
            }
            run.clear();
            for page in pages {
                run.extend_from_slice(&held.pages[page]);
            }
            let skip = (start - pages[0] * PAGE) as usize;
            target.write_at(start, &run[skip..skip + (stop - start) as usize])?;
        }
    }
    target.sync()?;
    target.write_at(0, &final0)?;
    target.sync()
}

/// Held sectors whose bytes differ from the disk's, and (for a target of
/// unknown size, an empty image file that grows as it is written) the
/// unchanged ones, which must still be written to give the file its length.
fn diff(target: &mut dyn Target, held: &Held) -> io::Result<(BTreeSet<u64>, Vec<u64>)> {
    let mut changed = BTreeSet::new();
    let mut unchanged = Vec::new();
    let mut old = Vec::new();
    let pages: Vec<u64> = held.pages.keys().copied().collect();
    // Consecutive held pages are read in one call (a FAT's tables, a
    // boot partition): one syscall and one device request per run
    // rather than per page.
    for run in pages.chunk_by(|a, b| b - a == 1) {
        for run in run.chunks(MAX_RUN / PAGE as usize) {
            let first = run[0] * PER_PAGE;
            let end = (run[run.len() - 1] + 1) * PER_PAGE;
            let sectors: Vec<u64> = (first..end).filter(|&s| held.in_device(s)).collect();
            let Some(&last) = sectors.last() else { continue };
            old.resize(((last + 1 - first) * BLOCK_SIZE) as usize, 0);
            target.read_at(first * BLOCK_SIZE, &mut old)?;
            for s in sectors {
                let at = ((s - first) * BLOCK_SIZE) as usize;
                if held.sector(s) != Some(&old[at..at + SECTOR]) {
                    changed.insert(s);
                } else if held.end.is_none() {
                    unchanged.push(s);
                }
            }
        }
    }
    Ok((changed, unchanged))
}

/// The commit's steps, and whether the streamed data needs a sync of its
/// own before the first of them (step 0 of the module doc).
struct Plan {
    barrier: bool,
    steps: Vec<Step>,
}

/// Orders the changed sectors into steps (see the module doc).
fn plan(
    target: &mut dyn Target,
    held: &Held,
    layout: &Layout,
    changed: &BTreeSet<u64>,
    unchanged: Vec<u64>,
    old0: [u8; SECTOR],
    final0: [u8; SECTOR],
) -> io::Result<Plan> {
    // The changed sectors in `ranges`, looked up by range: a FAT volume
    // spans tens of thousands of sectors of which few change.
    let sectors = |ranges: &[Range<u64>]| -> BTreeSet<u64> {
        ranges
            .iter()
            .map(|r| r.start / BLOCK_SIZE..r.end.div_ceil(BLOCK_SIZE).max(r.start / BLOCK_SIZE))
            .flat_map(|sectors| changed.range(sectors))
            .copied()
            .collect()
    };
    let env_ranges: Vec<Range<u64>> = layout.envs.iter().flat_map(UbootEnvSpec::byte_ranges).collect();
    let in_env = sectors(&env_ranges);
    let in_table = sectors(&layout.tables);
    let mut bulk: BTreeSet<u64> = unchanged.into_iter().collect();
    let mut switch: BTreeSet<u64> = in_table.clone();
    for fat in &layout.fats {
        let in_fat: BTreeSet<u64> = sectors(std::slice::from_ref(fat))
            .difference(&in_env)
            .copied()
            .collect();
        let (free, used) = split_free(target, fat.start, &in_fat);
        bulk.extend(free);
        switch.extend(used);
    }
    for &s in changed {
        if in_env.contains(&s) || switch.contains(&s) || bulk.contains(&s) {
            continue;
        }
        if s < FIRST_MIB {
            switch.insert(s);
        } else {
            bulk.insert(s);
        }
    }
    let mut envs = Vec::new();
    for spec in &layout.envs {
        if let Some(change) = EnvChange::read(target, held, spec)? {
            envs.push(change);
        }
    }

    let finals = |set: &BTreeSet<u64>| -> Step { set.iter().map(|&s| (s, None)).collect() };
    let mut steps = Vec::new();

    if switch.len() > 1 && is_armed(&final0) {
        // Switched off around a switch that is more than one sector.
        // (An unarmed old sector 0 took `first_boot`.)
        let mut everything = finals(&bulk);
        everything.extend(switch.iter().filter(|&&s| s != 0).map(|&s| (s, None)));
        steps.push(Step::from([(0, Some(Box::new(switched_off(&old0))))]));
        steps.push(everything);
        steps.push(finals(&in_env));
        // Re-armed even when sector 0 keeps its bytes.
        steps.push(Step::from([(0, Some(Box::new(final0)))]));
        return Ok(Plan { barrier: true, steps });
    }

    steps.push(finals(&bulk));
    let sole_env_switch = match (switch.is_empty(), envs.as_slice()) {
        (true, [only]) => only.switch(),
        _ => None,
    };
    if let Some(env_steps) = sole_env_switch {
        steps.extend(env_steps);
        return Ok(Plan { barrier: true, steps });
    }
    // Environments unreadable while what boots switches (in one sector,
    // or — a disk without a partition table has nothing to switch off —
    // in as few steps as fwup's layout allows).
    let mut unlocks = Vec::new();
    for env in &envs {
        let (lock, unlock) = env.lock_and_unlock();
        steps.extend(lock);
        unlocks.extend(unlock);
    }
    steps.push(finals(&switch));
    steps.extend(unlocks);
    Ok(Plan { barrier: true, steps })
}

/// Splits a FAT volume's changed sectors into data in clusters its FAT
/// (as on the disk now) has free, and the rest. A volume that does not
/// mount yet has nothing free to write into: all of it is the rest.
fn split_free(target: &mut dyn Target, offset: u64, sectors: &BTreeSet<u64>) -> (Vec<u64>, Vec<u64>) {
    let disk: &mut dyn Medium = target;
    let Ok(mut fat) = Fat::open(disk, offset) else {
        return (Vec::new(), sectors.iter().copied().collect());
    };
    sectors
        .iter()
        .partition(|&&s| fat.is_free_data(disk, s * BLOCK_SIZE).unwrap_or(false))
}

/// A boot signature and at least one used partition entry: something may
/// boot from this disk.
fn is_armed(sector0: &[u8; SECTOR]) -> bool {
    sector0[510..] == [0x55, 0xaa] && (0..4).any(|i| sector0[446 + 16 * i + 4] != 0)
}

/// Sector 0 that boots nothing, with each changed byte enough on its own
/// (so a torn write is either this or the old sector): no boot signature,
/// which BIOSes and Linux need, and no 0xEE type, which UEFI firmware looks
/// for in a protective MBR whether or not it is signed. An MBR keeps its
/// entries: clearing only some of them would leave a table pointing
/// elsewhere.
pub(crate) fn switched_off(old: &[u8; SECTOR]) -> [u8; SECTOR] {
    let mut off = *old;
    for i in 0..4 {
        if off[446 + 16 * i + 4] == 0xee {
            off[446 + 16 * i + 4] = 0;
        }
    }
    off[510] = 0;
    off[511] = 0;
    off
}

/// Writes a step's sectors, final ones in coalesced runs.
fn write_step(target: &mut dyn Target, held: &Held, step: &Step) -> io::Result<()> {
    let mut run: Vec<u8> = Vec::new();
    let mut run_start = 0u64;
    let flush = |target: &mut dyn Target, start: u64, run: &mut Vec<u8>| -> io::Result<()> {
        if !run.is_empty() {
            target.write_at(start * BLOCK_SIZE, run)?;
            run.clear();
        }
        Ok(())
    };
    for (&sector, content) in step {
        let bytes: &[u8] = match content {
            Some(bytes) => &bytes[..],
            None => held
                .sector(sector)
                .ok_or_else(|| io::Error::other(format!("commit: sector {sector} is not held")))?,
        };
        let contiguous = run_start + (run.len() / SECTOR) as u64 == sector;
        if run.is_empty() || !contiguous || run.len() >= MAX_RUN {
            flush(target, run_start, &mut run)?;
            run_start = sector;
        }
        run.extend_from_slice(bytes);
    }
    flush(target, run_start, &mut run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector0(types: [u8; 4]) -> [u8; SECTOR] {
        let mut s = [0u8; SECTOR];
        s[..3].copy_from_slice(&[0xeb, 0x63, 0x90]);
        for (i, t) in types.iter().enumerate() {
            s[446 + 16 * i + 4] = *t;
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    /// Every prefix of the switch-off written over the old sector: armed
    /// as before, or not at all (and an MBR keeps its partition entries).
    fn assert_tear_safe(old: [u8; SECTOR]) {
        let off = switched_off(&old);
        assert!(is_armed(&old) && !is_armed(&off));
        for prefix in 0..=SECTOR {
            let mut torn = old;
            torn[..prefix].copy_from_slice(&off[..prefix]);
            assert!(torn == old || !is_armed(&torn), "torn after {prefix} bytes boots");
        }
    }

    #[test]
    fn an_mbr_is_switched_off_by_its_signature_alone() {
        let old = sector0([0x0c, 0x83, 0x83, 0x0c]);
        let off = switched_off(&old);
        assert_eq!(
            off[..510],
            old[..510],
            "the entries stay: clearing some would point elsewhere"
        );
        assert_eq!(off[510..], [0, 0]);
        assert_tear_safe(old);
    }

    #[test]
    fn a_protective_mbr_also_loses_its_gpt_type() {
        let old = sector0([0xee, 0, 0, 0]);
        let off = switched_off(&old);
        assert_eq!(
            off[446 + 4],
            0,
            "UEFI firmware finds a GPT by the 0xEE type, signed or not"
        );
        assert_tear_safe(old);
    }

    /// A disk in memory that counts the bytes read and the sectors written.
    struct Counting {
        bytes: Vec<u8>,
        read: usize,
        written: BTreeSet<u64>,
    }
    impl Medium for Counting {
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.read += buf.len();
            self.bytes.read_at(offset, buf)
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
            let first = offset / BLOCK_SIZE;
            self.written.extend(first..first + data.len() as u64 / BLOCK_SIZE);
            self.bytes.write_at(offset, data)
        }
    }
    impl Target for Counting {
        fn size(&self) -> Option<u64> {
            Some(self.bytes.len() as u64)
        }
        fn discard(&mut self, _: u64, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    /// Held: sector 0 (an MBR) and a page 1 MiB in whose first sector
    /// changes; its other sectors hold what the disk holds.
    fn commit_onto(old0: [u8; SECTOR]) -> Counting {
        let mut disk = Counting {
            bytes: vec![0u8; 4 << 20],
            read: 0,
            written: BTreeSet::new(),
        };
        disk.bytes[..SECTOR].copy_from_slice(&old0);
        let mut first = vec![0u8; PAGE as usize].into_boxed_slice();
        first[..SECTOR].copy_from_slice(&sector0([0x0c, 0x83, 0, 0]));
        let mut data = vec![0u8; PAGE as usize].into_boxed_slice();
        data[..SECTOR].fill(0x5a);
        let pages = BTreeMap::from([(0, first.clone()), ((1 << 20) / PAGE, data.clone())]);
        commit(&mut disk, &pages, &Layout::default()).unwrap();
        assert!(disk.bytes[..SECTOR] == first[..SECTOR] && disk.bytes[1 << 20..(1 << 20) + PAGE as usize] == data[..]);
        disk
    }

    #[test]
    fn over_a_disk_that_boots_only_changed_sectors_are_written() {
        let disk = commit_onto(sector0([0x0c, 0x83, 0x83, 0x0c]));
        let page = (1 << 20) / BLOCK_SIZE;
        assert!(disk.written.contains(&page) && !disk.written.contains(&(page + 1)));
        assert!(disk.read >= 2 * PAGE as usize, "the held ranges were read back");
    }

    #[test]
    fn a_disk_that_boots_nothing_is_not_read_back_before_its_commit() {
        let disk = commit_onto([0u8; SECTOR]);
        let page = (1 << 20) / BLOCK_SIZE;
        assert!(
            (page..page + PER_PAGE).all(|s| disk.written.contains(&s)),
            "all of the page"
        );
        assert_eq!(disk.read, SECTOR, "sector 0 alone");
    }

    #[test]
    fn a_disk_that_sector_0_does_not_boot_keeps_the_diff() {
        // Held data only at 1 MiB, no sector 0 (U-Boot and its SPL at fixed
        // offsets boot without an MBR): only the changed sector is written.
        let mut disk = Counting {
            bytes: vec![0u8; 4 << 20],
            read: 0,
            written: BTreeSet::new(),
        };
        let mut data = vec![0u8; PAGE as usize].into_boxed_slice();
        data[..SECTOR].fill(0x5a);
        let page = (1 << 20) / BLOCK_SIZE;
        commit(
            &mut disk,
            &BTreeMap::from([((1 << 20) / PAGE, data)]),
            &Layout::default(),
        )
        .unwrap();
        assert!(disk.written.contains(&page) && !disk.written.contains(&(page + 1)));
    }

    #[test]
    fn a_blank_or_empty_table_is_not_armed() {
        assert!(!is_armed(&[0u8; SECTOR]));
        assert!(!is_armed(&sector0([0, 0, 0, 0])));
    }
}
