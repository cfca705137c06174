//! Where a resource's bytes go: the data-consuming actions (`raw_write`,
//! `fat_write`, `path_write`, `pipe_write`), with sparse resources expanded
//! the way fwup expands them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::actions::describe;
use super::error::{ApplyError, BoxError};
use super::exec::HostSink;
use super::overlay::Overlay;
use crate::bundle::manifest::{Action, Resource};
use crate::formats::{fat, BLOCK_SIZE};

/// A sink for one resource's data, borrowing the overlay for as long as the
/// data streams.
pub struct DataSink<'s, 'o> {
    kind: Kind<'s, 'o>,
    runs: SparseRuns,
    label: String,
}

enum Kind<'s, 'o> {
    /// `raw_write`: bytes at `dest` in whole blocks, zero-filled where the
    /// data does not reach (see [`DataSink::run_started`]).
    Raw {
        overlay: &'s mut Overlay<'o>,
        dest: u64,
        /// Expanded offset up to which whole blocks have been written.
        covered_to: u64,
    },
    Fat(fat::FileWriter<'s>),
    Host(HostSink),
}

impl<'s, 'o> DataSink<'s, 'o> {
    /// `fats` holds the install's FAT mounts; a `fat_write` borrows one.
    pub fn open(
        overlay: &'s mut Overlay<'o>,
        fats: &'s mut HashMap<u64, fat::Fat>,
        resource: &Resource,
        action: &Action,
    ) -> Result<Self, BoxError> {
        let kind = match action {
            Action::RawWrite {
                block_offset,
                cipher: None,
            } => Kind::Raw {
                overlay,
                dest: block_offset * BLOCK_SIZE,
                covered_to: 0,
            },
            Action::RawWrite { cipher: Some(_), .. } => {
                return Err(Box::new(ApplyError::Unsupported(
                    "raw_write with a dm-crypt cipher".into(),
                )))
            }
            Action::FatWrite { block_offset, path } => {
                // Created or truncated now: fwup leaves an empty file even
                // for an empty resource.
                let vol = match fats.entry(*block_offset) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(fat::Fat::open(overlay, block_offset * BLOCK_SIZE)?),
                };
                Kind::Fat(vol.write_file(overlay, path)?)
            }
            Action::PathWrite { path } => Kind::Host(HostSink::path(path)?),
            Action::PipeWrite { command } => Kind::Host(HostSink::pipe(command)?),
            other => return Err(format!("{} does not read resource data", describe(other)).into()),
        };
        Ok(DataSink {
            kind,
            runs: SparseRuns::new(&resource.sparse_map),
            label: describe(action),
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), BoxError> {
        while !data.is_empty() {
            let (offset, room, run_end) = self.runs.next_piece()?;
            let n = room.min(data.len() as u64) as usize;
            if self.runs.within == 0 {
                self.run_started(offset)?;
            }
            self.put(offset, &data[..n])?;
            self.runs.advance(n as u64);
            if n as u64 == room {
                self.run_ended(run_end)?;
            }
            data = &data[n..];
        }
        Ok(())
    }

    fn put(&mut self, offset: u64, data: &[u8]) -> Result<(), BoxError> {
        match &mut self.kind {
            Kind::Raw { overlay, dest, .. } => overlay.write_streamed(*dest + offset, data)?,
            Kind::Fat(writer) => writer.write_at(offset, data)?,
            Kind::Host(sink) => sink.write_at(offset, data)?,
        }
        Ok(())
    }

    /// A data run starts at `start` (expanded offset).
    ///
    /// fwup's `raw_write` goes through its pad-to-block writer: every block
    /// that any data byte falls in is written whole, zeros where the data
    /// does not reach, each block once. So a run that starts inside a block
    /// no earlier run reached zero-fills that block up to its first byte.
    fn run_started(&mut self, start: u64) -> Result<(), BoxError> {
        if let Kind::Raw {
            overlay,
            dest,
            covered_to,
        } = &mut self.kind
        {
            zero_fill(overlay, *dest, round_down(start).max(*covered_to), start)?;
        }
        Ok(())
    }

    /// A data run ended at `end` (expanded offset): pad a raw write to the
    /// block boundary.
    fn run_ended(&mut self, end: u64) -> Result<(), BoxError> {
        if let Kind::Raw {
            overlay,
            dest,
            covered_to,
        } = &mut self.kind
        {
            zero_fill(overlay, *dest, end, round_up(end))?;
            *covered_to = round_up(end);
        }
        Ok(())
    }

    /// After the last byte: give a resource that ends in a hole its full
    /// length, as fwup does, and close the file or pipe.
    pub fn finish(self) -> Result<(), BoxError> {
        let size = self.runs.expanded;
        let hole = self.runs.ending_hole();
        match self.kind {
            Kind::Raw {
                overlay,
                dest,
                covered_to,
            } => {
                // fwup writes min(hole, one block) of zeros that end where the
                // resource ends, through the same pad-to-block writer: whole
                // blocks from the one that zero run starts in to the one the
                // resource ends in, minus any block the last data run wrote.
                if hole > 0 {
                    let zeros_from = size - hole.min(BLOCK_SIZE);
                    zero_fill(overlay, dest, round_down(zeros_from).max(covered_to), round_up(size))?;
                }
            }
            Kind::Fat(mut writer) => {
                if hole > 0 {
                    writer.write_at(size, &[])?;
                }
                writer.finish()?;
            }
            Kind::Host(mut sink) => {
                if hole > 0 {
                    sink.write_at(size - 1, &[0])?;
                }
                sink.finish()?;
            }
        }
        Ok(())
    }
}

fn round_down(offset: u64) -> u64 {
    offset - offset % BLOCK_SIZE
}

fn round_up(offset: u64) -> u64 {
    offset.div_ceil(BLOCK_SIZE) * BLOCK_SIZE
}

/// Writes zeros over `[from, to)` of the resource's expanded extent.
fn zero_fill(overlay: &mut Overlay<'_>, dest: u64, from: u64, to: u64) -> Result<(), BoxError> {
    if from < to {
        overlay.write_streamed(dest + from, &vec![0u8; (to - from) as usize])?;
    }
    Ok(())
}

/// Walks a sparse map (`length={data, hole, data, …}`) as data arrives.
struct SparseRuns {
    /// (expanded offset, length) of each data run.
    runs: Vec<(u64, u64)>,
    expanded: u64,
    index: usize,
    within: u64,
}

impl SparseRuns {
    fn new(map: &[u64]) -> Self {
        let mut runs = Vec::new();
        let mut at = 0u64;
        for (i, len) in map.iter().enumerate() {
            if i % 2 == 0 && *len > 0 {
                runs.push((at, *len));
            }
            at += len;
        }
        SparseRuns {
            runs,
            expanded: at,
            index: 0,
            within: 0,
        }
    }

    /// (expanded offset, bytes left in this run, run end).
    fn next_piece(&self) -> Result<(u64, u64, u64), BoxError> {
        let (start, len) = self.runs.get(self.index).ok_or("more data than meta.conf declares")?;
        Ok((start + self.within, len - self.within, start + len))
    }

    fn advance(&mut self, n: u64) {
        self.within += n;
        if let Some((_, len)) = self.runs.get(self.index) {
            if self.within == *len {
                self.index += 1;
                self.within = 0;
            }
        }
    }

    fn ending_hole(&self) -> u64 {
        match self.runs.last() {
            Some((start, len)) => self.expanded - start - len,
            None => self.expanded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SparseRuns;

    #[test]
    fn sparse_runs_map_data_offsets_to_expanded_offsets() {
        let mut runs = SparseRuns::new(&[65536, 983040, 65536, 983040]);
        assert_eq!(runs.next_piece().unwrap(), (0, 65536, 65536));
        runs.advance(65536);
        assert_eq!(runs.next_piece().unwrap(), (1048576, 65536, 1114112));
        runs.advance(1000);
        assert_eq!(runs.next_piece().unwrap(), (1049576, 64536, 1114112));
        runs.advance(64536);
        assert!(runs.next_piece().is_err());
        assert_eq!(runs.ending_hole(), 983040);
        assert_eq!(runs.expanded, 2 << 20);
    }

    #[test]
    fn plain_resource_is_one_run_without_hole() {
        let runs = SparseRuns::new(&[100000]);
        assert_eq!(runs.next_piece().unwrap(), (0, 100000, 100000));
        assert_eq!(runs.ending_hole(), 0);
    }
}
