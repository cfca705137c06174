//! The reading half of the install pipeline, as threads joined by bounded
//! queues:
//!
//! ```text
//! source (HTTPS: its own thread) ─► bundle-reader: walk the ZIP, inflate
//!   ─► bundle-hasher: BLAKE2b-256 ─► engine (the caller): write to the target
//! ```
//!
//! (The reader checks the ZIP CRC-32 only where the install does not hash:
//! see `ZipWalker::waive_crc`.)
//!
//! BLAKE2b is the most expensive step and cannot be split (one serial
//! stream per resource), so it gets a thread of its own: while the engine
//! writes chunk n, the hasher hashes chunk n+1 and the reader inflates
//! chunk n+2. Buffers travel back from the engine to the reader for reuse,
//! so memory stays at a few MiB however large the bundle is. A stage that
//! panics sends the panic on as the install's error.
//!
//! A bundle whose resource hashes an earlier pass proved on the very same,
//! immutable bytes (one held in memory) is streamed without the hasher:
//! the reader hands its chunks to the engine directly, and the ZIP CRC-32
//! still guards the inflate (see `ApplyOptions::hashes_proven`).

use std::collections::HashSet;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use super::chunk::Chunk;
use super::error::{panic_text, WorkerPanicked};
use super::sched::{self, BatchGuard};
use crate::bundle::blake2b::Blake2b256;
use crate::bundle::zip::ZipWalker;

const CHUNK: usize = 1024 * 1024;
/// Chunks queued between two stages. With one chunk in the hands of each
/// stage, at most 2 × DEPTH + 3 chunks (7 MiB) exist at once.
const DEPTH: usize = 2;

pub enum Msg {
    /// A new ZIP entry starts.
    Entry(String),
    /// An entry nobody asked for was passed over without inflating it.
    Skipped(String),
    Data(Chunk),
    /// The current entry ended and its CRC and sizes checked out; its
    /// uncompressed data had this length and BLAKE2b-256 (`None` when the
    /// stream was spawned without hashing).
    EntryEnd {
        length: u64,
        blake2b_256: Option<[u8; 32]>,
    },
    /// The archive ended cleanly.
    Done,
    Failed(io::Error),
}

/// What the reader hands the hasher: [`Msg`] before hashing.
enum Unhashed {
    Entry(String),
    Skipped(String),
    Data(Chunk),
    EntryEnd,
    Done,
    Failed(io::Error),
}

pub struct EntryStream {
    rx: Stages,
    recycle: SyncSender<Chunk>,
    threads: Vec<JoinHandle<()>>,
    /// Bytes of the current entry so far, when there is no hasher to count.
    length: u64,
    /// The engine's thread runs as batch work while the stream lives, as
    /// the stages' threads do (see `sched`).
    _batch: BatchGuard,
}

/// Where the engine receives from: the hasher, or the reader itself.
enum Stages {
    Hashed(Receiver<Msg>),
    Unhashed(Receiver<Unhashed>),
}

/// Which entries the reader inflates.
pub enum Wanted {
    /// Those named (archive paths); the others are skipped without
    /// inflating them.
    Named(HashSet<String>),
    /// Every entry (a pass that must not read meta.conf yet, so does not
    /// know which entries it declares).
    All,
}

impl Wanted {
    fn contains(&self, name: &str) -> bool {
        match self {
            Wanted::Named(names) => names.contains(name),
            Wanted::All => true,
        }
    }
}

impl EntryStream {
    /// Reads the entries `wanted` names and skips the others without
    /// inflating them; without `hash`, no hasher thread and no BLAKE2b-256
    /// in [`Msg::EntryEnd`].
    pub fn spawn<R: Read + Send + 'static>(walker: ZipWalker<R>, wanted: Wanted, hash: bool) -> io::Result<Self> {
        let batch = BatchGuard::new();
        let (read_tx, read_rx) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel(2 * DEPTH + 3);
        let reader = std::thread::Builder::new()
            .name("bundle-reader".into())
            .spawn(move || {
                let _ = sched::set_current(sched::BATCH);
                let failed = read_tx.clone();
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| read_entries(walker, &wanted, read_tx, spare))) {
                    let _ = failed.send(Unhashed::Failed(panicked("bundle reader", &*panic)));
                }
            })?;
        if !hash {
            return Ok(EntryStream {
                rx: Stages::Unhashed(read_rx),
                recycle,
                threads: vec![reader],
                length: 0,
                _batch: batch,
            });
        }
        let (hash_tx, hash_rx) = sync_channel(DEPTH);
        let hasher = std::thread::Builder::new().name("bundle-hasher".into()).spawn(move || {
            let _ = sched::set_current(sched::BATCH);
            let failed = hash_tx.clone();
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hash_entries(read_rx, hash_tx))) {
                let _ = failed.send(Msg::Failed(panicked("bundle hasher", &*panic)));
            }
        });
        let mut stream = EntryStream {
            rx: Stages::Hashed(hash_rx),
            recycle,
            threads: vec![reader],
            length: 0,
            _batch: batch,
        };
        // On failure, dropping `stream` stops and joins the reader.
        stream.threads.push(hasher?);
        Ok(stream)
    }

    pub fn next(&mut self) -> Msg {
        let stopped = || Msg::Failed(io::Error::other("the bundle reader stopped unexpectedly"));
        match &self.rx {
            Stages::Hashed(rx) => rx.recv().unwrap_or_else(|_| stopped()),
            Stages::Unhashed(rx) => match rx.recv() {
                Ok(Unhashed::Entry(name)) => {
                    self.length = 0;
                    Msg::Entry(name)
                }
                Ok(Unhashed::Data(buf)) => {
                    self.length += buf.len() as u64;
                    Msg::Data(buf)
                }
                Ok(Unhashed::EntryEnd) => Msg::EntryEnd {
                    length: self.length,
                    blake2b_256: None,
                },
                Ok(Unhashed::Skipped(name)) => Msg::Skipped(name),
                Ok(Unhashed::Done) => Msg::Done,
                Ok(Unhashed::Failed(e)) => Msg::Failed(e),
                Err(_) => stopped(),
            },
        }
    }

    /// Hands a consumed buffer back to the reader.
    pub fn recycle(&self, buf: Chunk) {
        let _ = self.recycle.try_send(buf);
    }
}

impl Drop for EntryStream {
    fn drop(&mut self) {
        // Unblock the stages (a send fails once the next stage's receiver
        // is gone, and each stage drops its own on the way out) and wait,
        // so no thread outlives the install that started it.
        let (_, dead_rx) = sync_channel(0);
        let rx = std::mem::replace(&mut self.rx, Stages::Hashed(dead_rx));
        drop(rx);
        for handle in self.threads.drain(..).rev() {
            let _ = handle.join();
        }
    }
}

fn read_entries<R: Read>(mut walker: ZipWalker<R>, wanted: &Wanted, tx: SyncSender<Unhashed>, spare: Receiver<Chunk>) {
    let send = |m: Unhashed| tx.send(m).is_ok();
    loop {
        let mut entry = match walker.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => {
                // Read the central directory and anything after it too: a
                // whole-bundle SHA-256 pin covers every byte, and an HTTP
                // connection should end cleanly.
                let mut rest = walker.into_inner();
                match io::copy(&mut rest, &mut io::sink()) {
                    Ok(_) => send(Unhashed::Done),
                    Err(e) => send(Unhashed::Failed(e)),
                };
                return;
            }
            Err(e) => {
                send(Unhashed::Failed(io::Error::other(e)));
                return;
            }
        };
        let name = entry.name().to_string();
        if !wanted.contains(&name) {
            match entry.skip() {
                Ok(()) if send(Unhashed::Skipped(name)) => continue,
                Ok(()) => return,
                Err(e) => {
                    send(Unhashed::Failed(io::Error::other(e)));
                    return;
                }
            }
        }
        if !send(Unhashed::Entry(name)) {
            return;
        }
        let declared = entry.uncompressed_size();
        let mut filled = 0u64;
        loop {
            let needed = declared.map_or(CHUNK, |size| chunk_for(size.saturating_sub(filled)));
            // A spare too small for what the entry still needs is dropped.
            let mut buf = match spare.try_recv() {
                Ok(b) if b.capacity() >= needed => b,
                Ok(_) | Err(TryRecvError::Empty | TryRecvError::Disconnected) => Chunk::new(needed),
            };
            match fill(&mut entry, buf.space()) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n as u64;
                    buf.set_len(n);
                    if !send(Unhashed::Data(buf)) {
                        return;
                    }
                }
                Err(e) => {
                    send(Unhashed::Failed(e));
                    return;
                }
            }
        }
        if !send(Unhashed::EntryEnd) {
            return;
        }
    }
}

/// The capacity of a new chunk for an entry that declares `remaining`
/// more bytes (fwup's local headers declare each entry's size): a new
/// chunk is zeroed memory, and zeroing 1 MiB for a 1 KiB `grubenv` was
/// most of what such a resource cost. At least a page, so a header that
/// understates the size still makes progress until the walker refuses the
/// entry at its end.
fn chunk_for(remaining: u64) -> usize {
    usize::try_from(remaining)
        .unwrap_or(CHUNK)
        .clamp(1, CHUNK)
        .next_multiple_of(crate::target::DIRECT_ALIGN)
}

/// Hashes each entry's data on its way to the engine.
fn hash_entries(rx: Receiver<Unhashed>, tx: SyncSender<Msg>) {
    let mut hasher = Blake2b256::new();
    let mut length = 0u64;
    while let Ok(msg) = rx.recv() {
        let msg = match msg {
            Unhashed::Entry(name) => {
                #[cfg(test)]
                assert!(name != tests::PANIC_IN_HASHER, "injected panic in the hasher");
                hasher = Blake2b256::new();
                length = 0;
                Msg::Entry(name)
            }
            Unhashed::Data(buf) => {
                hasher.update(&buf);
                length += buf.len() as u64;
                Msg::Data(buf)
            }
            Unhashed::EntryEnd => Msg::EntryEnd {
                length,
                blake2b_256: Some(std::mem::take(&mut hasher).finalize()),
            },
            Unhashed::Skipped(name) => Msg::Skipped(name),
            Unhashed::Done => Msg::Done,
            Unhashed::Failed(e) => Msg::Failed(e),
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// A stage panicked: the engine gets it as the install's error (an
/// [`ApplyError::Internal`](super::ApplyError)) instead of waiting on a
/// queue that never fills again.
fn panicked(thread: &'static str, payload: &(dyn std::any::Any + Send)) -> io::Error {
    io::Error::other(WorkerPanicked {
        thread,
        message: panic_text(payload),
    })
}

/// Reads until `buf` is full or the entry ends.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(all(test, feature = "host-tools"))]
#[path = "pipeline_tests.rs"]
mod tests;
