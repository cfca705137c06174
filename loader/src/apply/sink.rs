//! Where a resource's bytes go: the data-consuming actions (`raw_write`,
//! `fat_write`, `path_write`, `pipe_write`), with sparse resources expanded.

use super::actions::{describe, Runner};
use super::error::{ApplyError, BoxError};
use super::events::Stage;
use super::exec::HostSink;
use super::overlay::Overlay;
use crate::bundle::manifest::{Action, Resource};
use crate::formats::{fat, BLOCK_SIZE};

pub struct DataSink {
    kind: Kind,
    runs: SparseRuns,
    label: String,
}

enum Kind {
    /// `raw_write`: bytes at `dest`, each data run padded to a whole block
    /// with zeros (fwup writes whole blocks however inflate chunks the data).
    Raw { dest: u64 },
    Fat { offset: u64, path: String },
    Host(HostSink),
}

impl DataSink {
    pub fn open(runner: &mut Runner<'_>, resource: &Resource, action: &Action) -> Result<Self, BoxError> {
        let kind = match action {
            Action::RawWrite { block_offset, cipher: None } => Kind::Raw { dest: block_offset * BLOCK_SIZE },
            Action::RawWrite { cipher: Some(_), .. } => {
                return Err(Box::new(ApplyError::Unsupported("raw_write with a dm-crypt cipher".into())))
            }
            Action::FatWrite { block_offset, path } => {
                let offset = block_offset * BLOCK_SIZE;
                // fwup truncates first: the file exists (empty) even if the
                // resource is empty.
                fat::Fat::open(&mut runner.overlay, offset)?.truncate(path)?;
                Kind::Fat { offset, path: path.clone() }
            }
            Action::PathWrite { path } => Kind::Host(HostSink::path(path)?),
            Action::PipeWrite { command } => Kind::Host(HostSink::pipe(command)?),
            other => return Err(format!("{} does not read resource data", describe(other)).into()),
        };
        Ok(DataSink { kind, runs: SparseRuns::new(&resource.sparse_map), label: describe(action) })
    }

    pub fn describe(&self) -> String {
        self.label.clone()
    }

    pub fn error(&self, source: BoxError) -> ApplyError {
        ApplyError::Action { stage: Stage::Resources, action: self.label.clone(), source }
    }

    pub fn write(&mut self, overlay: &mut Overlay<'_>, mut data: &[u8]) -> Result<(), BoxError> {
        while !data.is_empty() {
            let (offset, room, run_end) = self.runs.next_piece()?;
            let n = room.min(data.len() as u64) as usize;
            self.put(overlay, offset, &data[..n])?;
            self.runs.advance(n as u64);
            if n as u64 == room {
                self.run_ended(overlay, run_end)?;
            }
            data = &data[n..];
        }
        Ok(())
    }

    fn put(&mut self, overlay: &mut Overlay<'_>, offset: u64, data: &[u8]) -> Result<(), BoxError> {
        match &mut self.kind {
            Kind::Raw { dest } => overlay.write_streamed(*dest + offset, data)?,
            Kind::Fat { offset: vol, path } => fat::Fat::open(overlay, *vol)?.pwrite(path, offset, data)?,
            Kind::Host(sink) => sink.write_at(offset, data)?,
        }
        Ok(())
    }

    /// A data run ended at `end` (expanded offset): pad a raw write to the
    /// block boundary.
    fn run_ended(&mut self, overlay: &mut Overlay<'_>, end: u64) -> Result<(), BoxError> {
        if let Kind::Raw { dest } = self.kind {
            let pad = (BLOCK_SIZE - end % BLOCK_SIZE) % BLOCK_SIZE;
            if pad > 0 {
                overlay.write_streamed(dest + end, &vec![0u8; pad as usize])?;
            }
        }
        Ok(())
    }

    /// After the last byte: give a resource that ends in a hole its full
    /// length, as fwup does.
    pub fn finish(mut self, overlay: &mut Overlay<'_>) -> Result<(), BoxError> {
        let size = self.runs.expanded_len();
        let hole = self.runs.ending_hole();
        match &mut self.kind {
            Kind::Raw { dest } if hole > 0 => {
                let n = hole.min(BLOCK_SIZE);
                overlay.write_streamed(*dest + size - n, &vec![0u8; n as usize])?;
            }
            Kind::Raw { .. } => {}
            Kind::Fat { offset, path } => {
                if hole > 0 {
                    fat::Fat::open(overlay, *offset)?.pwrite(path, size, &[])?;
                }
            }
            Kind::Host(_) => {}
        }
        if let Kind::Host(mut sink) = self.kind {
            if hole > 0 {
                sink.write_at(size - 1, &[0])?;
            }
            sink.finish()?;
        }
        Ok(())
    }
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
        SparseRuns { runs, expanded: at, index: 0, within: 0 }
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

    fn expanded_len(&self) -> u64 {
        self.expanded
    }

    fn ending_hole(&self) -> u64 {
        match self.runs.last() {
            Some((start, len)) => self.expanded - start - len,
            None => self.expanded,
        }
    }
}
