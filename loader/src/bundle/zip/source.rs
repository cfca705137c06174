//! The byte source under the walker: a large `BufReader` that counts what
//! has been consumed, so every error can say where in the bundle it
//! happened and a caller can report progress or resume from that byte.

use std::io::{self, BufRead, BufReader, Read};

use super::error::ZipError;

/// Default read-ahead. Large reads keep syscalls and inflate calls few; a
/// stored entry's data bypasses it (`BufReader` hands reads at least this
/// big straight to the inner reader).
pub const DEFAULT_BUFFER: usize = 256 * 1024;

pub(super) struct Source<R> {
    inner: BufReader<R>,
    /// Bytes handed out (consumed) so far: the offset of the next byte.
    position: u64,
}

impl<R: Read> Source<R> {
    pub(super) fn new(reader: R, capacity: usize) -> Self {
        Source {
            inner: BufReader::with_capacity(capacity.max(4096), reader),
            position: 0,
        }
    }

    pub(super) fn position(&self) -> u64 {
        self.position
    }

    pub(super) fn into_inner(self) -> R {
        self.inner.into_inner()
    }

    /// The buffered bytes (refilling when empty); empty only at the end of
    /// the source.
    pub(super) fn fill_buf(&mut self) -> Result<&[u8], ZipError> {
        let position = self.position;
        loop {
            match self.inner.fill_buf() {
                // Re-borrow through `buffer()` so the loop's borrow ends.
                Ok(_) => return Ok(self.inner.buffer()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ZipError::Io {
                        offset: position,
                        source,
                    })
                }
            }
        }
    }

    /// Marks `n` bytes of the last `fill_buf` as used.
    pub(super) fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.position += n as u64;
    }

    /// One read of up to `buf.len()` bytes; 0 only at the end of the source.
    pub(super) fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, ZipError> {
        loop {
            match self.inner.read(buf) {
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
}
