//! Finding the end of a deflate stream without inflating it.
//!
//! An entry the bundle does not need (no `meta.conf` declares it) is
//! skipped. When its local header gives no compressed size (flag bit 3),
//! only the deflate stream itself says where it ends. Inflating it to find
//! out would cost as much as its uncompressed size, which a ZIP bomb makes
//! enormous (deflate reaches about 1000:1). This decoder walks the block
//! structure and Huffman codes of RFC 1951, counts the bytes each symbol
//! stands for and copies nothing, so skipping costs time in proportion to
//! the compressed bytes only.
//!
//! It refuses what zlib refuses (bad block types, stored lengths that do not
//! match their complement, over-subscribed or incomplete codes, symbols
//! outside the alphabet, distances before the start of the output), so a
//! stream zlib would reject is never skipped as if it were sound.

use std::io::Read;

use super::error::ZipError;
use super::source::Source;

/// Longest Huffman code in deflate.
const MAX_BITS: usize = 15;
/// Literal/length symbols a block may use (286 and 287 exist only in the
/// fixed code and are invalid).
const LENGTH_CODES: usize = 286;
const DISTANCE_CODES: usize = 30;

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];
/// The order in which a dynamic block lists the code-length code lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Sizes of a skipped stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Skipped {
    /// Bytes of the source the stream occupies (its last byte included).
    pub compressed: u64,
    /// Bytes it would inflate to.
    pub uncompressed: u64,
}

/// Why a stream could not be skipped.
#[derive(Debug)]
pub(super) enum SkipError {
    /// The source ended inside the stream.
    Truncated,
    /// The stream is not valid deflate; zlib's wording.
    Corrupt(&'static str),
    Source(ZipError),
}

impl From<ZipError> for SkipError {
    fn from(e: ZipError) -> Self {
        SkipError::Source(e)
    }
}

/// Reads one deflate stream from `src`, leaving it at the first byte after
/// the stream.
pub(super) fn skip_deflate<R: Read>(src: &mut Source<R>) -> Result<Skipped, SkipError> {
    let mut bits = Bits {
        src,
        buffer: 0,
        count: 0,
        consumed: 0,
    };
    let mut produced = 0u64;
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => produced += bits.stored_block()?,
            1 => {
                let (lengths, distances) = fixed_codes();
                produced = codes(&mut bits, &lengths, &distances, produced)?;
            }
            2 => {
                let (lengths, distances) = dynamic_codes(&mut bits)?;
                produced = codes(&mut bits, &lengths, &distances, produced)?;
            }
            _ => return Err(SkipError::Corrupt("invalid block type")),
        }
        if last {
            return Ok(Skipped {
                compressed: bits.consumed,
                uncompressed: produced,
            });
        }
    }
}

/// Least-significant-bit-first reader that takes bytes from the source
/// only when it needs their bits, so after the last block the source is at
/// the byte after the stream.
struct Bits<'s, R> {
    src: &'s mut Source<R>,
    buffer: u64,
    count: u32,
    consumed: u64,
}

impl<R: Read> Bits<'_, R> {
    fn take(&mut self, n: u32) -> Result<u32, SkipError> {
        while self.count < n {
            let byte = self.next_byte()?;
            self.buffer |= u64::from(byte) << self.count;
            self.count += 8;
        }
        let value = (self.buffer & ((1u64 << n) - 1)) as u32;
        self.buffer >>= n;
        self.count -= n;
        Ok(value)
    }

    fn next_byte(&mut self) -> Result<u8, SkipError> {
        let byte = *self.src.fill_buf()?.first().ok_or(SkipError::Truncated)?;
        self.src.consume(1);
        self.consumed += 1;
        Ok(byte)
    }

    /// A stored block: the rest of the current byte is padding, then LEN,
    /// its complement, and LEN bytes passed over.
    fn stored_block(&mut self) -> Result<u64, SkipError> {
        // `take` never holds a whole unused byte, so dropping the bits left
        // aligns to the next byte of the source.
        self.buffer = 0;
        self.count = 0;
        let len = self.take(16)?;
        let complement = self.take(16)?;
        if len != !complement & 0xffff {
            return Err(SkipError::Corrupt("invalid stored block lengths"));
        }
        let mut left = len as usize;
        while left > 0 {
            let available = self.src.fill_buf()?.len();
            if available == 0 {
                return Err(SkipError::Truncated);
            }
            let n = available.min(left);
            self.src.consume(n);
            self.consumed += n as u64;
            left -= n;
        }
        Ok(u64::from(len))
    }
}

/// A canonical Huffman code: how many codes each length has, and the
/// symbols in code order.
struct Huffman {
    counts: [u16; MAX_BITS + 1],
    symbols: Vec<u16>,
}

/// What a code describes; zlib tolerates an incomplete code only for
/// literals/lengths and distances, and only when it is a single 1-bit code.
#[derive(PartialEq)]
enum Alphabet {
    CodeLengths,
    Symbols,
}

impl Huffman {
    fn new(lengths: &[u8], alphabet: Alphabet) -> Result<Huffman, SkipError> {
        let mut counts = [0u16; MAX_BITS + 1];
        for &len in lengths {
            counts[usize::from(len)] += 1;
        }
        counts[0] = 0;
        let longest = (1..=MAX_BITS).rev().find(|&len| counts[len] > 0).unwrap_or(0);
        // Codes still unassigned after each length; negative is
        // over-subscribed.
        let mut left: i32 = 1;
        for &count in &counts[1..] {
            left = (left << 1) - i32::from(count);
            if left < 0 {
                return Err(SkipError::Corrupt("over-subscribed code"));
            }
        }
        let incomplete = longest > 0 && left > 0;
        if incomplete && (alphabet == Alphabet::CodeLengths || longest != 1) {
            return Err(SkipError::Corrupt("incomplete code"));
        }
        let mut symbols = Vec::with_capacity(lengths.len());
        for len in 1..=MAX_BITS {
            for (symbol, &l) in lengths.iter().enumerate() {
                if usize::from(l) == len {
                    symbols.push(symbol as u16);
                }
            }
        }
        Ok(Huffman { counts, symbols })
    }

    /// Reads one symbol, a bit at a time (codes are sent most significant
    /// bit first).
    fn decode<R: Read>(&self, bits: &mut Bits<'_, R>) -> Result<u16, SkipError> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for &count in &self.counts[1..] {
            code |= bits.take(1)? as i32;
            let count = i32::from(count);
            if code - first < count {
                return Ok(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(SkipError::Corrupt("invalid code"))
    }
}

fn fixed_codes() -> (Huffman, Huffman) {
    let mut lengths = [0u8; 288];
    for (symbol, len) in lengths.iter_mut().enumerate() {
        *len = match symbol {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    // Complete codes by construction: these cannot fail.
    let literal = Huffman::new(&lengths, Alphabet::Symbols).unwrap_or(Huffman {
        counts: [0; MAX_BITS + 1],
        symbols: Vec::new(),
    });
    let distance = Huffman::new(&[5u8; 32], Alphabet::Symbols).unwrap_or(Huffman {
        counts: [0; MAX_BITS + 1],
        symbols: Vec::new(),
    });
    (literal, distance)
}

fn dynamic_codes<R: Read>(bits: &mut Bits<'_, R>) -> Result<(Huffman, Huffman), SkipError> {
    let literals = bits.take(5)? as usize + 257;
    let distances = bits.take(5)? as usize + 1;
    let code_lengths = bits.take(4)? as usize + 4;
    if literals > LENGTH_CODES || distances > DISTANCE_CODES {
        return Err(SkipError::Corrupt("too many length or distance symbols"));
    }
    let mut order_lengths = [0u8; 19];
    for &symbol in &CODE_LENGTH_ORDER[..code_lengths] {
        order_lengths[symbol] = bits.take(3)? as u8;
    }
    let length_code = Huffman::new(&order_lengths, Alphabet::CodeLengths)?;

    let total = literals + distances;
    let mut lengths = Vec::with_capacity(total);
    while lengths.len() < total {
        let symbol = length_code.decode(bits)?;
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let previous = *lengths.last().ok_or(SkipError::Corrupt("invalid bit length repeat"))?;
                (previous, 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            _ => (0, 11 + bits.take(7)? as usize),
        };
        if lengths.len() + repeat > total {
            return Err(SkipError::Corrupt("invalid bit length repeat"));
        }
        lengths.extend(std::iter::repeat_n(value, repeat));
    }
    if lengths[256] == 0 {
        return Err(SkipError::Corrupt("invalid code -- missing end-of-block"));
    }
    let literal = Huffman::new(&lengths[..literals], Alphabet::Symbols)?;
    let distance = Huffman::new(&lengths[literals..], Alphabet::Symbols)?;
    Ok((literal, distance))
}

/// The symbols of one compressed block, up to end-of-block; returns the
/// output count after it.
fn codes<R: Read>(
    bits: &mut Bits<'_, R>,
    literal: &Huffman,
    distance: &Huffman,
    mut produced: u64,
) -> Result<u64, SkipError> {
    loop {
        let symbol = usize::from(literal.decode(bits)?);
        match symbol {
            0..=255 => produced += 1,
            256 => return Ok(produced),
            257..=285 => {
                let index = symbol - 257;
                let length = u64::from(LENGTH_BASE[index]) + u64::from(bits.take(u32::from(LENGTH_EXTRA[index]))?);
                let code = usize::from(distance.decode(bits)?);
                if code >= DISTANCE_CODES {
                    return Err(SkipError::Corrupt("invalid distance code"));
                }
                let back = u64::from(DISTANCE_BASE[code]) + u64::from(bits.take(u32::from(DISTANCE_EXTRA[code]))?);
                if back > produced {
                    return Err(SkipError::Corrupt("invalid distance too far back"));
                }
                produced += length;
            }
            _ => return Err(SkipError::Corrupt("invalid literal/length code")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::DeflateEncoder;
    use flate2::{Compression, Decompress, FlushDecompress, Status};

    use super::*;

    fn deflate(data: &[u8], level: u32) -> Vec<u8> {
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::new(level));
        enc.write_all(data).ok();
        enc.finish().unwrap_or_default()
    }

    /// zlib's view: (bytes consumed, bytes produced) or an error.
    fn zlib(stream: &[u8]) -> Result<(u64, u64), String> {
        let mut inflater = Decompress::new(false);
        let mut out = vec![0u8; 1 << 16];
        loop {
            let (at, made) = (inflater.total_in(), inflater.total_out());
            match inflater.decompress(&stream[at as usize..], &mut out, FlushDecompress::None) {
                Ok(Status::StreamEnd) => return Ok((inflater.total_in(), inflater.total_out())),
                Ok(_) if inflater.total_in() == at && inflater.total_out() == made => return Err("truncated".into()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn skip(stream: &[u8]) -> Result<(u64, u64), String> {
        let mut src = Source::new(stream, 4096);
        match skip_deflate(&mut src) {
            Ok(s) => {
                assert_eq!(src.position(), s.compressed, "left at the byte after the stream");
                Ok((s.compressed, s.uncompressed))
            }
            Err(SkipError::Truncated) => Err("truncated".into()),
            Err(SkipError::Corrupt(what)) => Err(what.into()),
            Err(SkipError::Source(e)) => Err(e.to_string()),
        }
    }

    fn sample(len: usize, seed: u32, alphabet: u8) -> Vec<u8> {
        crate::bundle::zip::test_bytes::xorshift_bytes(len, seed, u16::from(alphabet))
    }

    #[test]
    fn ends_where_zlib_ends_and_counts_what_it_would_produce() {
        let mut inputs = vec![Vec::new(), b"a".to_vec(), vec![0u8; 5_000_000]];
        for (i, alphabet) in [2u8, 16, 255].into_iter().enumerate() {
            for len in [10, 1000, 70_000, 300_000] {
                inputs.push(sample(len, i as u32 * 7 + len as u32, alphabet));
            }
        }
        for data in &inputs {
            for level in [0, 1, 6, 9] {
                let mut stream = deflate(data, level);
                stream.extend_from_slice(b"PK\x07\x08 what follows");
                let expected = zlib(&stream);
                assert_eq!(expected.as_ref().map(|r| r.1), Ok(data.len() as u64));
                assert_eq!(skip(&stream), expected, "{} bytes at level {level}", data.len());
            }
        }
    }

    #[test]
    fn a_bomb_is_skipped_by_its_compressed_size() {
        // 1 GiB of zeros deflates to about 1 MiB; inflating it would take
        // seconds, skipping it a fraction of that (no output is made).
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            enc.write_all(&zeros).ok();
        }
        let stream = enc.finish().unwrap_or_default();
        assert!(stream.len() < 2 << 20, "{}", stream.len());
        assert_eq!(skip(&stream), Ok((stream.len() as u64, 1 << 30)));
    }

    #[test]
    fn what_zlib_refuses_is_refused() {
        let data = sample(50_000, 5, 40);
        let good = deflate(&data, 6);
        // Every truncation is truncated, never a clean end.
        for cut in [0, 1, 2, good.len() / 2, good.len() - 1] {
            assert_eq!(skip(&good[..cut]).err().as_deref(), Some("truncated"), "cut {cut}");
        }
        // Flipped bits: wherever zlib fails, the skip fails too; wherever
        // zlib succeeds, both agree on where the stream ends.
        for at in (0..good.len()).step_by(97) {
            for bit in [0, 3, 7] {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                bad.extend_from_slice(&[0u8; 64]);
                match (zlib(&bad), skip(&bad)) {
                    (Ok(z), s) => assert_eq!(s, Ok(z), "byte {at} bit {bit}"),
                    (Err(z), s) => assert!(s.is_err(), "byte {at} bit {bit}: zlib says {z}, skip {s:?}"),
                }
            }
        }
        assert_eq!(skip(&[0b111]).err().as_deref(), Some("invalid block type"));
        assert_eq!(
            skip(&[0b001, 0x05, 0x00, 0x00, 0x00]).err().as_deref(),
            Some("invalid stored block lengths")
        );
    }
}
