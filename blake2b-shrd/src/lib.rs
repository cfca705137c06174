//! BLAKE2b for an emulated x86-64 CPU (QEMU's TCG), with a digest of 1 to
//! 64 bytes and an optional key: the block buffering and parameter block
//! here, the compression function and why it is written as it is in
//! `compress.rs`.
//!
//! A crate of its own so that it can be compiled at `opt-level = 3` while
//! the loader stays at "z": at "z" the compiler does not inline the helpers
//! and spills more, and the same code ran at 115-116 MB/s in a system-mode
//! guest against 166-169 at 3 (`loader/examples/byte_costs_guest.sh`, 7 MB
//! bundle, best of three, before the message words moved to XMM
//! registers).

mod compress;

use compress::compress;

/// The BLAKE2b initialization vector (SHA-512's).
const IV: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

const BLOCK: usize = 128;

/// A running BLAKE2b with a digest of 1 to 64 bytes and an optional key.
#[derive(Clone)]
pub struct State {
    h: [u64; 8],
    /// Bytes not compressed yet: a full block stays here until more input
    /// shows it is not the last one.
    buf: [u8; BLOCK],
    buffered: usize,
    counter: u128,
}

impl State {
    /// Panics unless `1 <= digest_len <= 64` and `key.len() <= 64`: the
    /// callers pass constants.
    pub fn new(digest_len: usize, key: &[u8]) -> State {
        assert!(
            (1..=64).contains(&digest_len) && key.len() <= 64,
            "BLAKE2b parameters out of range"
        );
        let mut h = IV;
        // The parameter block's first word: digest length, key length,
        // fanout 1, depth 1.
        h[0] ^= 0x0101_0000 ^ ((key.len() as u64) << 8) ^ digest_len as u64;
        let mut state = State {
            h,
            buf: [0; BLOCK],
            buffered: 0,
            counter: 0,
        };
        if !key.is_empty() {
            // The key, zero-padded, is the first block.
            state.buf[..key.len()].copy_from_slice(key);
            state.buffered = BLOCK;
        }
        state
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // Top up the buffered block; compress it only once more input
        // follows it.
        if self.buffered > 0 {
            let take = (BLOCK - self.buffered).min(data.len());
            self.buf[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if data.is_empty() {
                return;
            }
            self.counter += BLOCK as u128;
            compress(&mut self.h, &self.buf, self.counter, false);
            self.buffered = 0;
        }
        // Whole blocks straight from the input, keeping the last for later.
        while let Some((block, rest)) = data.split_first_chunk::<BLOCK>().filter(|(_, rest)| !rest.is_empty()) {
            self.counter += BLOCK as u128;
            compress(&mut self.h, block, self.counter, false);
            data = rest;
        }
        self.buf[..data.len()].copy_from_slice(data);
        self.buffered = data.len();
    }

    /// The digest in the first `digest_len` bytes (as given to `new`).
    pub fn finalize(mut self) -> [u8; 64] {
        self.counter += self.buffered as u128;
        self.buf[self.buffered..].fill(0);
        compress(&mut self.h, &self.buf, self.counter, true);
        let mut out = [0u8; 64];
        for (bytes, word) in out.chunks_exact_mut(8).zip(&self.h) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn digest(digest_len: usize, key: &[u8], data: &[u8]) -> String {
        let mut state = State::new(digest_len, key);
        state.update(data);
        hex(&state.finalize()[..digest_len])
    }

    #[test]
    fn official_vectors() {
        // RFC 7693 appendix A: BLAKE2b-512("abc").
        assert_eq!(
            digest(64, b"", b"abc"),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
             7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
        );
        // BLAKE2b-512("") (b2sum of an empty file).
        assert_eq!(
            digest(64, b"", b""),
            "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419\
             d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce"
        );
        // blake2b-kat.txt (the BLAKE2 reference's keyed answers): key
        // 00 01 .. 3f, input 00 01 .. (n-1).
        let key: Vec<u8> = (0..64).collect();
        let input: Vec<u8> = (0..=255).collect();
        for (n, expected) in [
            (
                0,
                "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786\
                 b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568",
            ),
            (
                1,
                "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4\
                 187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd",
            ),
            (
                2,
                "da2cfbe2d8409a0f38026113884f84b50156371ae304c4430173d08a99d9fb1b\
                 983164a3770706d537f49e0c916d9f32b95cc37a95b99d857436f0232c88a965",
            ),
        ] {
            assert_eq!(digest(64, &key, &input[..n]), expected, "{n} bytes");
        }
        // BLAKE2b-256, fwup's digest, of "abc" (b2sum -l 256).
        assert_eq!(
            digest(32, b"", b"abc"),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
    }

    fn reference(digest_len: usize, key: &[u8], data: &[u8]) -> String {
        hex(blake2b_simd::Params::new()
            .hash_length(digest_len)
            .key(key)
            .hash(data)
            .as_bytes())
    }

    proptest! {
        /// Any length, any chunking, any digest length and key: the same
        /// digest as `blake2b_simd`.
        #[test]
        fn matches_blake2b_simd(
            data in proptest::collection::vec(any::<u8>(), 0..1200),
            cuts in proptest::collection::vec(0usize..1200, 0..8),
            digest_len in prop_oneof![Just(32usize), 1usize..=64],
            key in prop_oneof![Just(Vec::new()), proptest::collection::vec(any::<u8>(), 1..=64)],
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut state = State::new(digest_len, &key);
            let mut from = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                state.update(&data[from..cut]);
                from = cut;
            }
            prop_assert_eq!(hex(&state.finalize()[..digest_len]), reference(digest_len, &key, &data));
        }
    }

    #[test]
    fn block_boundaries_match_blake2b_simd() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 31 % 253) as u8).collect();
        for n in [0, 1, 127, 128, 129, 255, 256, 257, 1024, 2000] {
            assert_eq!(digest(32, b"", &data[..n]), reference(32, b"", &data[..n]), "{n} bytes");
            assert_eq!(
                digest(64, b"k", &data[..n]),
                reference(64, b"k", &data[..n]),
                "{n} bytes, keyed"
            );
        }
    }
}
