//! The byte source under the walker: a large read-ahead buffer that counts
//! what has been consumed, so every error can say where in the bundle it
//! happened and a caller can report progress or resume from that byte.
//!
//! It works like `BufReader` (large reads bypass it) with one addition:
//! [`Source::fill_at_least`] keeps a few bytes of look-ahead available,
//! which delimiting a stored entry by its data descriptor needs.

use std::io::{self, Read};

use super::error::ZipError;

/// Default read-ahead. Large reads keep syscalls and inflate calls few; a
/// stored entry's data bypasses it (reads at least this big go straight to
/// the inner reader when nothing is buffered).
pub const DEFAULT_BUFFER: usize = 256 * 1024;

pub(super) struct Source<R> {
    inner: R,
    buf: Box<[u8]>,
    /// `buf[start..end]` holds bytes read but not yet consumed.
    start: usize,
    end: usize,
    /// Bytes handed out (consumed) so far: the offset of the next byte.
    position: u64,
}

impl<R: Read> Source<R> {
    pub(super) fn new(reader: R, capacity: usize) -> Self {
        Source {
            inner: reader,
            buf: vec![0u8; capacity.max(4096)].into_boxed_slice(),
            start: 0,
            end: 0,
            position: 0,
        }
    }

    pub(super) fn position(&self) -> u64 {
        self.position
    }

    pub(super) fn into_inner(self) -> R {
        self.inner
    }

    /// One read from the inner reader into `buf[end..]`, retrying on
    /// `Interrupted`; 0 at the end of the source.
    fn read_more(&mut self) -> Result<usize, ZipError> {
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ZipError::Io {
                        offset: self.position + (self.end - self.start) as u64,
                        source,
                    })
                }
            }
        }
    }

    /// The buffered bytes (refilling when empty); empty only at the end of
    /// the source.
    pub(super) fn fill_buf(&mut self) -> Result<&[u8], ZipError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.read_more()?;
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// At least `n` buffered bytes (at most the buffer's capacity), fewer
    /// only when the source ends first.
    pub(super) fn fill_at_least(&mut self, n: usize) -> Result<&[u8], ZipError> {
        let n = n.min(self.buf.len());
        while self.end - self.start < n {
            if self.buf.len() - self.start < n {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.read_more()? == 0 {
                break;
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// Marks `n` bytes of the last `fill_buf` as used.
    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.position += n as u64;
    }

    /// One read of up to `buf.len()` bytes; 0 only at the end of the source.
    pub(super) fn read_some(&mut self, out: &mut [u8]) -> Result<usize, ZipError> {
        if self.start == self.end && out.len() >= self.buf.len() {
            // Nothing buffered and a large read: skip the copy.
            loop {
                match self.inner.read(out) {
                    Ok(n) => {
                        self.position += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(ZipError::Io {
                            offset: self.position,
                            source,
                        })
                    }
                }
            }
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Fills `buf` unless the source ends first; returns how many bytes were
    /// read (less than `buf.len()` means the source ended).
    pub(super) fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, ZipError> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.read_some(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call and fails once with
    /// `Interrupted`, the worst case for the loops above.
    struct Dribble {
        data: Vec<u8>,
        at: usize,
        interrupted: bool,
    }

    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.at >= self.data.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[self.at];
            self.at += 1;
            Ok(1)
        }
    }

    #[test]
    fn read_up_to_collects_dribbled_bytes_and_counts_them() {
        let mut src = Source::new(
            Dribble {
                data: b"PK\x03\x04rest".to_vec(),
                at: 0,
                interrupted: false,
            },
            8,
        );
        let mut sig = [0u8; 4];
        assert_eq!(src.read_up_to(&mut sig).ok(), Some(4));
        assert_eq!(&sig, b"PK\x03\x04");
        assert_eq!(src.position(), 4);
        let mut rest = [0u8; 10];
        assert_eq!(
            src.read_up_to(&mut rest).ok(),
            Some(4),
            "short count at the end of the source"
        );
        assert_eq!(src.position(), 8);
    }

    #[test]
    fn source_errors_carry_the_offset() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "peer went away"))
            }
        }
        let mut src = Source::new(Broken, 4096);
        let err = src.fill_buf().err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("at byte 0") && text.contains("peer went away"), "{text}");
    }

    #[test]
    fn fill_at_least_keeps_look_ahead_across_the_buffer_end() {
        let data: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
        let mut src = Source::new(
            Dribble {
                data: data.clone(),
                at: 0,
                interrupted: false,
            },
            4096,
        );
        let mut at = 0usize;
        while at < data.len() {
            let window = src.fill_at_least(28).ok().map(<[u8]>::to_vec).unwrap_or_default();
            assert!(
                window.len() >= 28.min(data.len() - at),
                "at {at}: {} bytes",
                window.len()
            );
            assert_eq!(window[..], data[at..at + window.len()], "at {at}");
            // Consume an odd amount so the window wanders over the end.
            let step = window.len().min(37);
            src.consume(step);
            at += step;
            assert_eq!(src.position(), at as u64);
        }
        assert_eq!(src.fill_at_least(28).map(<[u8]>::len).ok(), Some(0));
    }
}
