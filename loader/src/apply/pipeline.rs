//! The reading half of the install pipeline, as threads joined by bounded
//! queues:
//!
//! ```text
//! source (HTTPS: its own thread) ─► bundle-reader: walk the ZIP, inflate, CRC-32
//!   ─► bundle-hasher: BLAKE2b-256 ─► engine (the caller): write to the target
//! ```
//!
//! BLAKE2b is the most expensive step and cannot be split (one serial
//! stream per resource), so it gets a thread of its own: while the engine
//! writes chunk n, the hasher hashes chunk n+1 and the reader inflates
//! chunk n+2. Buffers travel back from the engine to the reader for reuse,
//! so memory stays at a few MiB however large the bundle is.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

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
    Data(Vec<u8>),
    /// The current entry ended and its CRC and sizes checked out; its
    /// uncompressed data had this length and BLAKE2b-256.
    EntryEnd {
        length: u64,
        blake2b_256: [u8; 32],
    },
    /// The archive ended cleanly.
    Done,
    Failed(io::Error),
}

/// What the reader hands the hasher: [`Msg`] before hashing.
enum Unhashed {
    Entry(String),
    Skipped(String),
    Data(Vec<u8>),
    EntryEnd,
    Done,
    Failed(io::Error),
}

pub struct EntryStream {
    rx: Receiver<Msg>,
    recycle: SyncSender<Vec<u8>>,
    threads: Vec<JoinHandle<()>>,
}

impl EntryStream {
    /// Reads the entries named in `wanted` (archive paths) and skips the
    /// others without inflating them.
    pub fn spawn<R: Read + Send + 'static>(walker: ZipWalker<R>, wanted: HashSet<String>) -> io::Result<Self> {
        let (read_tx, read_rx) = sync_channel(DEPTH);
        let (hash_tx, hash_rx) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel(2 * DEPTH + 3);
        let reader = std::thread::Builder::new()
            .name("bundle-reader".into())
            .spawn(move || read_entries(walker, &wanted, read_tx, spare))?;
        let hasher = std::thread::Builder::new()
            .name("bundle-hasher".into())
            .spawn(move || hash_entries(read_rx, hash_tx));
        let mut stream = EntryStream {
            rx: hash_rx,
            recycle,
            threads: vec![reader],
        };
        // On failure, dropping `stream` stops and joins the reader.
        stream.threads.push(hasher?);
        Ok(stream)
    }

    pub fn next(&mut self) -> Msg {
        self.rx
            .recv()
            .unwrap_or_else(|_| Msg::Failed(io::Error::other("the bundle reader stopped unexpectedly")))
    }

    /// Hands a consumed buffer back to the reader.
    pub fn recycle(&self, buf: Vec<u8>) {
        let _ = self.recycle.try_send(buf);
    }
}

impl Drop for EntryStream {
    fn drop(&mut self) {
        // Unblock the stages (a send fails once the next stage's receiver
        // is gone, and each stage drops its own on the way out) and wait,
        // so no thread outlives the install that started it.
        let (_, dead_rx) = sync_channel(0);
        let rx = std::mem::replace(&mut self.rx, dead_rx);
        drop(rx);
        for handle in self.threads.drain(..).rev() {
            let _ = handle.join();
        }
    }
}

fn read_entries<R: Read>(
    mut walker: ZipWalker<R>,
    wanted: &HashSet<String>,
    tx: SyncSender<Unhashed>,
    spare: Receiver<Vec<u8>>,
) {
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
        loop {
            let mut buf = match spare.try_recv() {
                Ok(b) => b,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
            };
            buf.resize(CHUNK, 0);
            match fill(&mut entry, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
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

/// Hashes each entry's data on its way to the engine.
fn hash_entries(rx: Receiver<Unhashed>, tx: SyncSender<Msg>) {
    let mut hasher = Blake2b256::new();
    let mut length = 0u64;
    while let Ok(msg) = rx.recv() {
        let msg = match msg {
            Unhashed::Entry(name) => {
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
                blake2b_256: std::mem::take(&mut hasher).finalize(),
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
