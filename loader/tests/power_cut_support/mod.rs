//! The power-cut matrix: a fault-injecting [`Target`] that records what an
//! install's commit writes and where it syncs, and a replay of every state
//! a power cut inside the commit can leave.
//!
//! The model of the disk (what the test assumes a drive may do):
//! - between two syncs, any subset of the pending writes may reach the
//!   medium, in any order, 512-byte sector by sector;
//! - one sector that did not land whole may be torn: it holds a prefix of
//!   its new bytes and the old bytes after it;
//! - a sync is a barrier: everything before it is on the medium.
//!
//! [`selection`] reads back what a state boots; [`matrix`] lands the
//! subsets, tears the sectors and judges each outcome.

#![allow(dead_code)] // each test file uses a different part

pub mod judge;
pub mod matrix;
pub mod selection;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use loader::apply::events::{Event, Reporter, Stage};
use loader::formats::Medium;
use loader::target::file::ImageFile;
use loader::target::Target;

pub const SECTOR: u64 = 512;
pub type Sector = [u8; SECTOR as usize];

/// One write of the commit, with the bytes it replaced.
#[derive(Debug, Clone)]
pub struct Write {
    pub offset: u64,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// What the commit did: its writes, and after which of them it synced.
#[derive(Debug, Default)]
pub struct CommitLog {
    pub writes: Vec<Write>,
    /// `writes.len()` at each sync.
    pub syncs: Vec<usize>,
    pub started: bool,
    /// The task the engine chose (`upgrade.b`).
    pub task: Option<String>,
}

/// Wraps an image file: every write goes through, and once the commit has
/// started (the engine reported [`Stage::Commit`]) writes and syncs are
/// also recorded.
pub struct Recorder {
    inner: ImageFile,
    log: Arc<Mutex<CommitLog>>,
}

impl Recorder {
    pub fn open(path: &Path) -> (Recorder, Watch) {
        let log = Arc::new(Mutex::new(CommitLog::default()));
        let inner = ImageFile::open(path).expect("open image");
        (
            Recorder {
                inner,
                log: log.clone(),
            },
            Watch {
                log,
                committing: Arc::new(AtomicBool::new(false)),
            },
        )
    }

    fn recording(&self) -> bool {
        self.log.lock().expect("log").started
    }
}

impl Medium for Recorder {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.recording() {
            let mut old = vec![0u8; data.len()];
            self.inner.read_at(offset, &mut old)?;
            self.log.lock().expect("log").writes.push(Write {
                offset,
                old,
                new: data.to_vec(),
            });
        }
        self.inner.write_at(offset, data)
    }
}

impl Target for Recorder {
    fn size(&self) -> Option<u64> {
        self.inner.size()
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        assert!(!self.recording(), "the commit discarded {len} bytes at {offset}");
        self.inner.discard(offset, len)
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut log = self.log.lock().expect("log");
        if log.started {
            let n = log.writes.len();
            log.syncs.push(n);
        }
        drop(log);
        self.inner.sync()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// The reporter that tells the [`Recorder`] when the commit starts, and
/// remembers the task.
pub struct Watch {
    log: Arc<Mutex<CommitLog>>,
    committing: Arc<AtomicBool>,
}

impl Watch {
    pub fn take(&self) -> CommitLog {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }
}

impl Reporter for Watch {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Stage { stage: Stage::Commit } => {
                self.committing.store(true, Ordering::SeqCst);
                self.log.lock().expect("log").started = true;
            }
            Event::Task { task } => self.log.lock().expect("log").task = Some(task.clone()),
            _ => {}
        }
    }
}

/// A sector the commit changes in one sync interval: its content when the
/// interval starts and the content the interval's write leaves.
#[derive(Debug, Clone)]
pub struct Unit {
    pub sector: u64,
    pub before: Sector,
    pub after: Sector,
}

impl Unit {
    /// Byte positions where the write changes the sector.
    pub fn changed_bytes(&self) -> Vec<usize> {
        (0..SECTOR as usize)
            .filter(|&i| self.before[i] != self.after[i])
            .collect()
    }

    /// The sector torn after `prefix` bytes: new bytes before, old after.
    pub fn torn(&self, prefix: usize) -> Sector {
        let mut s = self.before;
        s[..prefix].copy_from_slice(&self.after[..prefix]);
        s
    }
}

/// The commit cut into sync intervals of changed sectors (writes that
/// leave a sector as it was cannot matter and are dropped), plus the
/// content of every sector it touches before it starts.
pub struct Intervals {
    pub before_commit: BTreeMap<u64, Sector>,
    pub intervals: Vec<Vec<Unit>>,
}

impl Intervals {
    pub fn from_log(log: &CommitLog) -> Intervals {
        let mut current: BTreeMap<u64, Sector> = BTreeMap::new();
        let mut before_commit: BTreeMap<u64, Sector> = BTreeMap::new();
        let mut intervals = Vec::new();
        let mut unit_list: Vec<Unit> = Vec::new();
        let mut start_state: BTreeMap<u64, Sector> = BTreeMap::new();
        let mut bounds = log.syncs.clone();
        bounds.push(log.writes.len());
        let mut at = 0;
        for end in bounds {
            for write in &log.writes[at..end.max(at)] {
                for (i, (old, new)) in write
                    .old
                    .chunks(SECTOR as usize)
                    .zip(write.new.chunks(SECTOR as usize))
                    .enumerate()
                {
                    let sector = write.offset / SECTOR + i as u64;
                    assert_eq!(write.offset % SECTOR, 0, "unaligned commit write at {}", write.offset);
                    let mut old_sector = [0u8; SECTOR as usize];
                    old_sector[..old.len()].copy_from_slice(old);
                    let prior = *current.entry(sector).or_insert(old_sector);
                    before_commit.entry(sector).or_insert(old_sector);
                    start_state.entry(sector).or_insert(prior);
                    let mut after = prior;
                    after[..new.len()].copy_from_slice(new);
                    current.insert(sector, after);
                    let start = start_state[&sector];
                    if after != prior && after != start {
                        unit_list.push(Unit {
                            sector,
                            before: start,
                            after,
                        });
                    }
                }
            }
            at = end.max(at);
            if !unit_list.is_empty() {
                intervals.push(std::mem::take(&mut unit_list));
            }
            start_state.clear();
        }
        Intervals {
            before_commit,
            intervals,
        }
    }

    /// Every touched sector's content once intervals `..k` have landed.
    pub fn state_before(&self, k: usize) -> BTreeMap<u64, Sector> {
        let mut state = self.before_commit.clone();
        for interval in &self.intervals[..k] {
            for unit in interval {
                state.insert(unit.sector, unit.after);
            }
        }
        state
    }
}

/// A disk in a simulated state: the final image with the commit's sectors
/// replaced by `base`, then by `landed`.
pub struct Disk<'a> {
    pub image: &'a std::fs::File,
    pub base: &'a BTreeMap<u64, Sector>,
    pub landed: BTreeMap<u64, Sector>,
}

impl Medium for Disk<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut pos = 0usize;
        while pos < buf.len() {
            let abs = offset + pos as u64;
            let sector = abs / SECTOR;
            let within = (abs % SECTOR) as usize;
            let n = (SECTOR as usize - within).min(buf.len() - pos);
            match self.landed.get(&sector).or_else(|| self.base.get(&sector)) {
                Some(data) => buf[pos..pos + n].copy_from_slice(&data[within..within + n]),
                None => {
                    // Read the untouched run up to the next touched sector in one call.
                    let next = [
                        self.landed.range(sector + 1..).next(),
                        self.base.range(sector + 1..).next(),
                    ]
                    .into_iter()
                    .flatten()
                    .map(|(s, _)| s * SECTOR)
                    .min()
                    .unwrap_or(u64::MAX);
                    let n = ((next - abs) as usize).min(buf.len() - pos);
                    let chunk = &mut buf[pos..pos + n];
                    chunk.fill(0);
                    let mut done = 0;
                    while done < n {
                        match self.image.read_at(&mut chunk[done..], abs + done as u64)? {
                            0 => break,
                            k => done += k,
                        }
                    }
                    pos += n;
                    continue;
                }
            }
            pos += n;
        }
        Ok(())
    }

    fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("a simulated disk is read-only"))
    }
}
