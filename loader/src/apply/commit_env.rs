//! The order of a U-Boot environment's writes in the commit.
//!
//! A copy that a power cut leaves half written fails its CRC, so a reader
//! sees each copy as it was, as it is written, or invalid. The order is
//! chosen by replaying those states through the real reader
//! (`uboot_env::read`, fwup's choice of copy) and keeping the first
//! candidate whose every state is allowed:
//!
//! - alone (nothing else that boots changes), a redundant environment
//!   switches atomically: the copy the reader will use goes first; when
//!   fwup's final bytes put the new environment into the copy read now, a
//!   copy of it first goes into the other one (the flag byte is outside the
//!   CRC). A single-copy environment cannot switch atomically — sixteen
//!   sectors under one CRC — so it is locked and unlocked like below: it
//!   reads invalid while it changes, never wrong;
//! - while what boots switches, it is locked: every copy's CRC poisoned
//!   (with its new data: the unlock then rewrites one sector), the copy the
//!   reader does not use first, so the reader never falls back to an
//!   older environment. The unlock writes the final copies, the one the
//!   reader will use first.

use std::io;
use std::ops::Range;

use super::commit::{Held, Step};
use crate::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};
use crate::formats::{Medium, BLOCK_SIZE};

/// An environment the commit changes: each copy's bytes now and after.
pub(super) struct EnvChange {
    spec: UbootEnvSpec,
    ranges: Vec<Range<u64>>,
    old: Vec<Vec<u8>>,
    new: Vec<Vec<u8>>,
}

/// One copy rewritten whole.
type CopyWrite = (usize, Vec<u8>);

impl EnvChange {
    /// `None` when the held writes leave the environment as it is.
    pub fn read(disk: &mut dyn Medium, held: &Held, spec: &UbootEnvSpec) -> io::Result<Option<EnvChange>> {
        let ranges = spec.byte_ranges();
        let mut old = Vec::new();
        let mut new = Vec::new();
        for r in &ranges {
            let mut bytes = vec![0u8; (r.end - r.start) as usize];
            disk.read_at(r.start, &mut bytes)?;
            old.push(bytes);
            new.push(held.final_bytes(disk, r.clone())?);
        }
        Ok((old != new).then(|| EnvChange {
            spec: spec.clone(),
            ranges,
            old,
            new,
        }))
    }

    /// An atomic switch from the old environment to the new one, if the
    /// copies allow one.
    pub fn switch(&self) -> Option<Vec<Step>> {
        let (old, new) = (self.env(&self.old), self.env(&self.new));
        let mut candidates = self.permutations(|i| self.new[i].clone());
        if self.new.len() == 2 {
            for j in 0..2 {
                candidates.push(vec![
                    (1 - j, self.new[j].clone()),
                    (j, self.new[j].clone()),
                    (1 - j, self.new[1 - j].clone()),
                ]);
            }
        }
        let order = self.first_allowed(&self.old, candidates, |e| *e == old || *e == new)?;
        Some(self.steps(&self.old, &order))
    }

    /// Steps that make the environment unreadable, and steps that then
    /// give it its final bytes.
    pub fn lock_and_unlock(&self) -> (Vec<Step>, Vec<Step>) {
        let old = self.env(&self.old);
        let new = self.env(&self.new);
        let locks = self.permutations(|i| poisoned(&self.new[i]));
        let lock = self
            .first_allowed(&self.old, locks.clone(), |e| e.is_none() || *e == old)
            .unwrap_or_else(|| locks[0].clone());
        let mut locked = self.old.clone();
        for (i, bytes) in &lock {
            locked[*i] = bytes.clone();
        }
        let unlocks = self.permutations(|i| self.new[i].clone());
        let unlock = self
            .first_allowed(&locked, unlocks.clone(), |e| e.is_none() || *e == new)
            .unwrap_or_else(|| unlocks[0].clone());
        (self.steps(&self.old, &lock), self.steps(&locked, &unlock))
    }

    /// Each copy written once, in every order (one or two copies).
    fn permutations(&self, content: impl Fn(usize) -> Vec<u8>) -> Vec<Vec<CopyWrite>> {
        match self.ranges.len() {
            1 => vec![vec![(0, content(0))]],
            _ => vec![
                vec![(0, content(0)), (1, content(1))],
                vec![(1, content(1)), (0, content(0))],
            ],
        }
    }

    /// The first candidate whose states, from `start`, all read as allowed
    /// (each copy as it was, invalid while written, then as written).
    fn first_allowed(
        &self,
        start: &[Vec<u8>],
        candidates: Vec<Vec<CopyWrite>>,
        allowed: impl Fn(&Option<UbootEnv>) -> bool,
    ) -> Option<Vec<CopyWrite>> {
        candidates.into_iter().find(|candidate| {
            let mut state = start.to_vec();
            candidate.iter().all(|(i, bytes)| {
                let mut torn = state.clone();
                torn[*i] = vec![0u8; bytes.len()];
                state[*i] = bytes.clone();
                allowed(&self.env(&torn)) && allowed(&self.env(&state))
            })
        })
    }

    /// What the reader makes of these copies.
    fn env(&self, copies: &[Vec<u8>]) -> Option<UbootEnv> {
        let mut medium = Copies {
            ranges: &self.ranges,
            copies,
        };
        uboot_env::read(&mut medium, &self.spec).ok()
    }

    /// One step per copy write, holding the sectors it changes.
    fn steps(&self, start: &[Vec<u8>], writes: &[CopyWrite]) -> Vec<Step> {
        let sector = BLOCK_SIZE as usize;
        let mut state = start.to_vec();
        writes
            .iter()
            .map(|(i, bytes)| {
                let base = self.ranges[*i].start / BLOCK_SIZE;
                let step = bytes
                    .chunks(sector)
                    .zip(state[*i].chunks(sector))
                    .enumerate()
                    .filter(|(_, (new, now))| new != now)
                    .map(|(n, (new, _))| {
                        let mut content = Box::new([0u8; BLOCK_SIZE as usize]);
                        content[..new.len()].copy_from_slice(new);
                        (base + n as u64, Some(content))
                    })
                    .collect();
                state[*i] = bytes.clone();
                step
            })
            .collect()
    }
}

/// A copy that fails its CRC: the stored CRC inverted.
fn poisoned(copy: &[u8]) -> Vec<u8> {
    let mut bad = copy.to_vec();
    for b in &mut bad[..4] {
        *b = !*b;
    }
    bad
}

/// The environment's copies as a medium the reader can read.
struct Copies<'a> {
    ranges: &'a [Range<u64>],
    copies: &'a [Vec<u8>],
}

impl Medium for Copies<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        let end = offset + buf.len() as u64;
        for (r, copy) in self.ranges.iter().zip(self.copies) {
            let (start, stop) = (r.start.max(offset), r.end.min(end));
            if start < stop {
                buf[(start - offset) as usize..(stop - offset) as usize]
                    .copy_from_slice(&copy[(start - r.start) as usize..(stop - r.start) as usize]);
            }
        }
        Ok(())
    }

    fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("the commit only simulates reading an environment"))
    }
}
