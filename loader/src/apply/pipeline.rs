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
//!
//! A bundle whose resources are small ([`INLINE_MAX`] in all) is read on
//! the engine's own thread, one step per [`EntryStream::next`]: the same
//! stages, same messages, same checks, without threads. Its few chunks
//! leave nothing to overlap, and starting, switching and stopping threads
//! was most of what reading such a bundle cost in a one-vCPU guest.

use std::collections::HashSet;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::chunk::Chunk;
use super::error::{panic_text, WorkerPanicked};
use super::sched::{self, BatchGuard};
use crate::bundle::blake2b::Blake2b256;
use crate::bundle::zip::ZipWalker;

const CHUNK: usize = 1024 * 1024;
/// Resources of at most this many bytes in all are read inline (see the
/// module doc): one chunk's worth.
pub const INLINE_MAX: u64 = CHUNK as u64;
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
    stages: Stages,
}

/// Where the engine's messages come from.
enum Stages {
    Threads(Threads),
    Inline(Inline),
}

/// The reader and the digest, run in [`EntryStream::next`].
struct Inline {
    /// `None` after a stage panicked.
    reader: Option<Box<dyn NextUnhashed>>,
    digest: Digest,
    spares: Vec<Chunk>,
}

impl Inline {
    /// One step of each stage; a panic in either ends the stream with it,
    /// as on threads.
    fn next(&mut self) -> Msg {
        let Some(reader) = self.reader.as_mut() else {
            return Msg::Failed(io::Error::other("the bundle reader stopped after a panic"));
        };
        let spares = &mut self.spares;
        let step = || reader.next_unhashed(&mut |needed| take_spare(spares.pop(), needed));
        let msg = match catch_unwind(AssertUnwindSafe(step)) {
            Ok(msg) => msg,
            Err(panic) => {
                self.reader = None;
                return Msg::Failed(panicked("bundle reader", &*panic));
            }
        };
        let digest = &mut self.digest;
        catch_unwind(AssertUnwindSafe(|| digest.pass(msg))).unwrap_or_else(|panic| {
            self.reader = None;
            Msg::Failed(panicked("bundle hasher", &*panic))
        })
    }
}

/// The reader and hasher threads, and the queues to and from them.
struct Threads {
    rx: ThreadsRx,
    /// Counts the lengths when there is no hasher to.
    counter: Digest,
    recycle: SyncSender<Chunk>,
    threads: Vec<JoinHandle<()>>,
    /// The engine's thread runs as batch work while the stream lives, as
    /// the stages' threads do (see `sched`).
    _batch: BatchGuard,
}

/// Where the engine receives from: the hasher, or the reader itself.
enum ThreadsRx {
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
    /// inflating them; without `hash`, no BLAKE2b-256 in
    /// [`Msg::EntryEnd`]. Inline when the resources to read are declared
    /// to be at most [`INLINE_MAX`] bytes in all, else on threads. A
    /// declaration that understates only costs speed: inline, nothing is
    /// held beyond the chunk being read.
    pub fn open<R: Read + Send + 'static>(
        walker: ZipWalker<R>,
        wanted: Wanted,
        hash: bool,
        declared_total: u64,
    ) -> io::Result<Self> {
        if declared_total <= INLINE_MAX {
            Ok(EntryStream::inline(walker, wanted, hash))
        } else {
            EntryStream::spawn(walker, wanted, hash)
        }
    }

    /// [`EntryStream::open`] on the engine's own thread.
    pub fn inline<R: Read + 'static>(walker: ZipWalker<R>, wanted: Wanted, hash: bool) -> Self {
        EntryStream {
            stages: Stages::Inline(Inline {
                reader: Some(Box::new(EntryReader::new(walker, wanted))),
                digest: Digest::new(hash),
                spares: Vec::new(),
            }),
        }
    }

    /// [`EntryStream::open`] on a reader thread and, with `hash`, a hasher
    /// thread.
    pub fn spawn<R: Read + Send + 'static>(walker: ZipWalker<R>, wanted: Wanted, hash: bool) -> io::Result<Self> {
        let batch = BatchGuard::new();
        let (read_tx, read_rx) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel(2 * DEPTH + 3);
        let reader = stage_thread(
            "bundle-reader",
            "bundle reader thread",
            read_tx,
            Unhashed::Failed,
            move |tx| read_entries(EntryReader::new(walker, wanted), tx, spare),
        )?;
        let (rx, threads) = if hash {
            let (hash_tx, hash_rx) = sync_channel(DEPTH);
            let hasher = stage_thread(
                "bundle-hasher",
                "bundle hasher thread",
                hash_tx,
                Msg::Failed,
                move |tx| hash_entries(read_rx, tx),
            );
            match hasher {
                Ok(hasher) => (ThreadsRx::Hashed(hash_rx), vec![reader, hasher]),
                Err(e) => {
                    // The reader's queue went with the thread that never
                    // started: its next send fails and it ends.
                    let _ = reader.join();
                    return Err(e);
                }
            }
        } else {
            (ThreadsRx::Unhashed(read_rx), vec![reader])
        };
        Ok(EntryStream {
            stages: Stages::Threads(Threads {
                rx,
                counter: Digest::new(false),
                recycle,
                threads,
                _batch: batch,
            }),
        })
    }

    pub fn next(&mut self) -> Msg {
        match &mut self.stages {
            Stages::Threads(threads) => {
                let stopped = || Msg::Failed(io::Error::other("the bundle reader stopped unexpectedly"));
                match &threads.rx {
                    ThreadsRx::Hashed(rx) => rx.recv().unwrap_or_else(|_| stopped()),
                    ThreadsRx::Unhashed(rx) => rx.recv().map_or_else(|_| stopped(), |m| threads.counter.pass(m)),
                }
            }
            Stages::Inline(inline) => inline.next(),
        }
    }

    /// Hands a consumed buffer back to the reader.
    pub fn recycle(&mut self, buf: Chunk) {
        match &mut self.stages {
            Stages::Threads(threads) => {
                let _ = threads.recycle.try_send(buf);
            }
            Stages::Inline(inline) => inline.spares.push(buf),
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        // Unblock the stages (a send fails once the next stage's receiver
        // is gone, and each stage drops its own on the way out) and wait,
        // so no thread outlives the install that started it.
        let (_, dead_rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, ThreadsRx::Hashed(dead_rx)));
        for handle in self.threads.drain(..).rev() {
            let _ = handle.join();
        }
    }
}

/// A stage's thread, run as batch work (see `sched`): `work` sends on
/// `tx`, and a panic in it goes on as `failed` ([`panicked`], named
/// `stage`).
fn stage_thread<M: Send + 'static>(
    thread: &str,
    stage: &'static str,
    tx: SyncSender<M>,
    failed: fn(io::Error) -> M,
    work: impl FnOnce(SyncSender<M>) + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(thread.into()).spawn(move || {
        let _ = sched::set_current(sched::BATCH);
        let on_panic = tx.clone();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| work(tx))) {
            let _ = on_panic.send(failed(panicked(stage, &*panic)));
        }
    })
}

/// `spare` if it can hold `needed` bytes, else a new chunk: a spare too
/// small for what the entry still needs is dropped.
fn take_spare(spare: Option<Chunk>, needed: usize) -> Chunk {
    match spare {
        Some(buf) if buf.capacity() >= needed => buf,
        _ => Chunk::new(needed),
    }
}

/// The reader thread: each step of the walk, queued for the next stage.
fn read_entries<R: Read>(mut reader: EntryReader<R>, tx: SyncSender<Unhashed>, spare: Receiver<Chunk>) {
    loop {
        let msg = reader.next_unhashed(&mut |needed| take_spare(spare.try_recv().ok(), needed));
        let last = matches!(msg, Unhashed::Done | Unhashed::Failed(_));
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

/// One step of the reading stage at a time, whatever drives it.
trait NextUnhashed {
    /// The next message; after [`Unhashed::Done`] or
    /// [`Unhashed::Failed`], only failures. `spare` gives a chunk of at
    /// least the size asked.
    fn next_unhashed(&mut self, spare: &mut dyn FnMut(usize) -> Chunk) -> Unhashed;
}

/// The reading stage: walks the ZIP, inflating the wanted entries a chunk
/// at a time and passing over the others.
struct EntryReader<R> {
    /// `None` once the walk ended or failed.
    walker: Option<ZipWalker<R>>,
    wanted: Wanted,
    /// While an entry is read: the size its header declares, and the bytes
    /// delivered so far.
    entry: Option<(Option<u64>, u64)>,
}

impl<R: Read> EntryReader<R> {
    fn new(walker: ZipWalker<R>, wanted: Wanted) -> Self {
        EntryReader {
            walker: Some(walker),
            wanted,
            entry: None,
        }
    }

    fn step(&mut self, spare: &mut dyn FnMut(usize) -> Chunk) -> io::Result<Unhashed> {
        let Some(walker) = self.walker.as_mut() else {
            return Err(io::Error::other("the bundle reader was asked to go on after its end"));
        };
        if let Some((declared, filled)) = &mut self.entry {
            let needed = declared.map_or(CHUNK, |size| chunk_for(size.saturating_sub(*filled)));
            let mut buf = spare(needed);
            let n = match walker.current_entry() {
                Some(mut entry) => fill(&mut entry, buf.space())?,
                None => 0,
            };
            if n == 0 {
                self.entry = None;
                return Ok(Unhashed::EntryEnd);
            }
            *filled += n as u64;
            buf.set_len(n);
            return Ok(Unhashed::Data(buf));
        }
        match walker.next_entry().map_err(io::Error::other)? {
            Some(entry) => {
                let name = entry.name().to_string();
                if !self.wanted.contains(&name) {
                    entry.skip().map_err(io::Error::other)?;
                    return Ok(Unhashed::Skipped(name));
                }
                self.entry = Some((entry.uncompressed_size(), 0));
                Ok(Unhashed::Entry(name))
            }
            None => {
                // Read the central directory and anything after it too: a
                // whole-bundle SHA-256 pin covers every byte, and an HTTP
                // connection should end cleanly.
                if let Some(walker) = self.walker.take() {
                    io::copy(&mut walker.into_inner(), &mut io::sink())?;
                }
                Ok(Unhashed::Done)
            }
        }
    }
}

impl<R: Read> NextUnhashed for EntryReader<R> {
    fn next_unhashed(&mut self, spare: &mut dyn FnMut(usize) -> Chunk) -> Unhashed {
        self.step(spare).unwrap_or_else(|e| {
            self.walker = None;
            Unhashed::Failed(e)
        })
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

/// The hasher thread: each message digested, queued for the engine.
fn hash_entries(rx: Receiver<Unhashed>, tx: SyncSender<Msg>) {
    let mut digest = Digest::new(true);
    while let Ok(msg) = rx.recv() {
        if tx.send(digest.pass(msg)).is_err() {
            return;
        }
    }
}

/// The hashing stage: counts each entry's bytes and, when asked to,
/// hashes them.
struct Digest {
    hasher: Option<Blake2b256>,
    length: u64,
}

impl Digest {
    fn new(hash: bool) -> Digest {
        Digest {
            hasher: hash.then(Blake2b256::new),
            length: 0,
        }
    }

    fn pass(&mut self, msg: Unhashed) -> Msg {
        match msg {
            Unhashed::Entry(name) => {
                #[cfg(test)]
                assert!(
                    !(self.hasher.is_some() && name == tests::PANIC_IN_HASHER),
                    "injected panic in the hasher"
                );
                if let Some(hasher) = &mut self.hasher {
                    *hasher = Blake2b256::new();
                }
                self.length = 0;
                Msg::Entry(name)
            }
            Unhashed::Data(buf) => {
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&buf);
                }
                self.length += buf.len() as u64;
                Msg::Data(buf)
            }
            Unhashed::EntryEnd => Msg::EntryEnd {
                length: self.length,
                blake2b_256: self.hasher.as_mut().map(|h| std::mem::take(h).finalize()),
            },
            Unhashed::Skipped(name) => Msg::Skipped(name),
            Unhashed::Done => Msg::Done,
            Unhashed::Failed(e) => Msg::Failed(e),
        }
    }
}

/// A stage panicked: the engine gets it as the install's error (an
/// [`ApplyError::Internal`](super::ApplyError)) instead of waiting on a
/// queue that never fills again.
fn panicked(stage: &'static str, payload: &(dyn std::any::Any + Send)) -> io::Error {
    io::Error::other(WorkerPanicked {
        stage,
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
