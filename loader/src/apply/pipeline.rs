//! The reading half of the install pipeline.
//!
//! One thread walks the ZIP and inflates entries into 1 MiB chunks; the
//! engine thread hashes and writes them. Buffers travel back for reuse, so
//! memory stays at a few MiB however large the bundle is.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use crate::bundle::zip::ZipWalker;

const CHUNK: usize = 1024 * 1024;
/// Chunks in flight between the threads (bounds memory at ~4 MiB).
const DEPTH: usize = 3;

pub enum Msg {
    /// A new ZIP entry starts.
    Entry(String),
    Data(Vec<u8>),
    /// The current entry ended and its CRC and sizes checked out.
    EntryEnd,
    /// The archive ended cleanly.
    Done,
    Failed(io::Error),
}

pub struct EntryStream {
    rx: Receiver<Msg>,
    recycle: SyncSender<Vec<u8>>,
    handle: Option<JoinHandle<()>>,
}

impl EntryStream {
    pub fn spawn<R: Read + Send + 'static>(walker: ZipWalker<R>) -> io::Result<Self> {
        let (tx, rx) = sync_channel(DEPTH);
        let (recycle, spare) = sync_channel(DEPTH + 2);
        let handle = std::thread::Builder::new()
            .name("bundle-reader".into())
            .spawn(move || read_entries(walker, tx, spare))?;
        Ok(EntryStream {
            rx,
            recycle,
            handle: Some(handle),
        })
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
        // Unblock the reader (its sends fail once `rx` is gone) and wait, so
        // no thread outlives the install that started it.
        let (_, dead_rx) = sync_channel(0);
        let rx = std::mem::replace(&mut self.rx, dead_rx);
        drop(rx);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn read_entries<R: Read>(mut walker: ZipWalker<R>, tx: SyncSender<Msg>, spare: Receiver<Vec<u8>>) {
    let send = |m: Msg| tx.send(m).is_ok();
    loop {
        let mut entry = match walker.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => {
                // Read the central directory and anything after it too: a
                // whole-bundle SHA-256 pin covers every byte, and an HTTP
                // connection should end cleanly.
                let mut rest = walker.into_inner();
                match io::copy(&mut rest, &mut io::sink()) {
                    Ok(_) => send(Msg::Done),
                    Err(e) => send(Msg::Failed(e)),
                };
                return;
            }
            Err(e) => {
                send(Msg::Failed(io::Error::other(e)));
                return;
            }
        };
        if !send(Msg::Entry(entry.name().to_string())) {
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
                    if !send(Msg::Data(buf)) {
                        return;
                    }
                }
                Err(e) => {
                    send(Msg::Failed(e));
                    return;
                }
            }
        }
        if !send(Msg::EntryEnd) {
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
