//! A bundle held in memory (memory mode): filled once from its source,
//! then read as often as the install needs, never changing in between.
//!
//! It is kept in 1 MiB chunks so that filling it never reallocates (a
//! growing `Vec` would briefly need twice the bundle), and [`Tap`] can
//! copy a stream into it while something else reads the stream.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

const CHUNK: usize = 1024 * 1024;

/// Bytes in memory, appended in order.
#[derive(Default)]
pub struct Spool {
    chunks: Vec<Vec<u8>>,
    len: u64,
}

impl Spool {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            let Some(chunk) = self.chunks.last_mut() else { return };
            let n = (CHUNK - chunk.len()).min(data.len());
            chunk.extend_from_slice(&data[..n]);
            self.len += n as u64;
            data = &data[n..];
        }
    }

    /// Reads `source` to its end into a spool of at most `limit` bytes;
    /// `progress` sees the bytes so far after each read.
    pub fn fill(source: &mut dyn Read, limit: u64, mut progress: impl FnMut(u64)) -> io::Result<Spool> {
        let mut spool = Spool::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => return Ok(spool),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if spool.len + n as u64 > limit {
                return Err(over_budget(limit));
            }
            spool.append(&buf[..n]);
            progress(spool.len);
        }
    }

    /// A reader from the first byte.
    pub fn reader(self: &Arc<Self>) -> SpoolReader {
        SpoolReader {
            spool: Arc::clone(self),
            chunk: 0,
            within: 0,
        }
    }
}

fn over_budget(limit: u64) -> io::Error {
    io::Error::other(format!(
        "the bundle is larger than the memory budget ({})",
        crate::report::console::human(limit)
    ))
}

/// Reads a shared [`Spool`] front to back.
pub struct SpoolReader {
    spool: Arc<Spool>,
    chunk: usize,
    within: usize,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some(chunk) = self.spool.chunks.get(self.chunk) else {
                break;
            };
            let k = (chunk.len() - self.within).min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&chunk[self.within..self.within + k]);
            n += k;
            self.within += k;
            if self.within == chunk.len() {
                self.chunk += 1;
                self.within = 0;
            }
        }
        Ok(n)
    }
}

/// Passes a stream through and keeps a copy of it, from its first byte,
/// until told to stop (or until the copy would pass its limit, which only
/// stops the copy). The install's first look reads the bundle's head
/// through it; memory mode then reads the rest through it and takes the
/// whole copy, the other modes stop it.
pub struct Tap<R> {
    inner: R,
    copy: Arc<Mutex<Copy>>,
}

/// Controls a [`Tap`] from outside the reader that owns it.
#[derive(Clone)]
pub struct TapHandle(Arc<Mutex<Copy>>);

struct Copy {
    spool: Option<Spool>,
    limit: u64,
    overflowed: bool,
}

impl<R: Read> Tap<R> {
    pub fn new(inner: R, limit: u64) -> (Tap<R>, TapHandle) {
        let copy = Arc::new(Mutex::new(Copy {
            spool: Some(Spool::default()),
            limit,
            overflowed: false,
        }));
        (
            Tap {
                inner,
                copy: Arc::clone(&copy),
            },
            TapHandle(copy),
        )
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        let limit = copy.limit;
        if let Some(spool) = copy.spool.as_mut() {
            if spool.len + n as u64 > limit {
                copy.spool = None;
                copy.overflowed = true;
            } else {
                spool.append(&buf[..n]);
            }
        }
        Ok(n)
    }
}

impl TapHandle {
    /// Bytes copied so far.
    pub fn copied(&self) -> u64 {
        let copy = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        copy.spool.as_ref().map_or(0, Spool::len)
    }

    /// Stops copying and frees the copy.
    pub fn stop(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).spool = None;
    }

    /// The copy so far, which stops the copying; an error when it passed
    /// its limit or was stopped.
    pub fn take(&self) -> io::Result<Spool> {
        let mut copy = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match copy.spool.take() {
            Some(spool) => Ok(spool),
            None if copy.overflowed => Err(over_budget(copy.limit)),
            None => Err(io::Error::other("the copy of the bundle was stopped")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_spool_reads_back_what_filled_it_across_chunks_any_number_of_times() {
        let data = pattern(3 * CHUNK + 12345);
        let mut seen = 0;
        let spool = Arc::new(Spool::fill(&mut &data[..], 4 * CHUNK as u64, |n| seen = n).unwrap());
        assert_eq!((spool.len(), seen), (data.len() as u64, data.len() as u64));
        for _ in 0..2 {
            let mut back = Vec::new();
            let mut reader = spool.reader();
            let mut small = [0u8; 999];
            loop {
                let n = reader.read(&mut small).unwrap();
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&small[..n]);
            }
            assert!(back == data);
        }
    }

    #[test]
    fn filling_past_the_limit_fails_naming_the_budget() {
        let data = pattern(5000);
        let err = Spool::fill(&mut &data[..], 4999, |_| {}).err().unwrap();
        assert!(err.to_string().contains("larger than the memory budget"), "{err}");
    }

    #[test]
    fn a_tap_copies_from_the_first_byte_until_taken_or_stopped() {
        let data = pattern(CHUNK + 10);
        let (mut tap, handle) = Tap::new(&data[..], u64::MAX);
        let mut head = [0u8; 100];
        tap.read_exact(&mut head).unwrap();
        io::copy(&mut tap, &mut io::sink()).unwrap();
        let spool = Arc::new(handle.take().unwrap());
        let mut back = Vec::new();
        spool.reader().read_to_end(&mut back).unwrap();
        assert!(back == data);
        assert!(handle.take().is_err(), "taken once");

        let (mut tap, handle) = Tap::new(&data[..], u64::MAX);
        tap.read_exact(&mut head).unwrap();
        handle.stop();
        io::copy(&mut tap, &mut io::sink()).unwrap();
        assert!(handle.take().err().unwrap().to_string().contains("stopped"));
    }

    #[test]
    fn a_tap_past_its_limit_stops_copying_but_keeps_reading() {
        let data = pattern(10_000);
        let (mut tap, handle) = Tap::new(&data[..], 4096);
        let mut out = Vec::new();
        tap.read_to_end(&mut out).unwrap();
        assert!(out == data, "the stream itself is unaffected");
        let err = handle.take().err().unwrap();
        assert!(err.to_string().contains("larger than the memory budget"), "{err}");
    }
}
