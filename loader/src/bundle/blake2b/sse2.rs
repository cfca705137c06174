//! BLAKE2b with the state in eight SSE2 registers, for an emulated CPU
//! without SSSE3 (QEMU's default `qemu64` model).
//!
//! Written after the BLAKE2 reference's SSE2 code (`sse/blake2b-round.h`):
//! each of the state's four rows is two registers of two words, so one
//! instruction mixes two columns. Rotations by 32 and 16 are word shuffles,
//! by 24 and 63 shifts and an `or` (`pshufb`, which rotates by 24 in one
//! instruction, is SSSE3). The diagonal step realigns rows 2 and 4 with
//! `shufpd` and swaps row 3's halves by renaming.
//!
//! SSE2 is part of x86-64, so every intrinsic used here is safe to call:
//! no `unsafe`. Other architectures get [`super::shrd`]'s portable code.

#[cfg(not(target_arch = "x86_64"))]
pub use super::shrd::compress;

#[cfg(target_arch = "x86_64")]
pub use x86::compress;

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use core::arch::x86_64::{
        _mm_add_epi64, _mm_castpd_si128, _mm_castsi128_pd, _mm_cvtsi128_si64, _mm_or_si128, _mm_set_epi64x,
        _mm_shuffle_epi32, _mm_shuffle_pd, _mm_shufflehi_epi16, _mm_shufflelo_epi16, _mm_slli_epi64, _mm_srli_epi64,
        _mm_unpackhi_epi64, _mm_unpacklo_epi64, _mm_xor_si128,
    };

    use crate::bundle::blake2b::blocks::{BLOCK, IV};

    // The helpers are macros, not functions: a function with
    // `#[target_feature]` cannot be `#[inline(always)]`, and at the loader's
    // opt-level "z" plain `#[inline]` ones stay calls that pass the state
    // through memory. Measurement knobs (bits of V): 1 rotates by 32 with
    // shifts instead of `pshufd`, 2 rotates by 16 with `pshuflw`/`pshufhw`
    // instead of shifts, 4 realigns with `punpck*qdq` instead of `shufpd`.

    macro_rules! rotr32 {
        ($V:ident, $x:expr) => {{
            let x = $x;
            if $V & 1 == 0 {
                _mm_shuffle_epi32::<0b10_11_00_01>(x)
            } else {
                _mm_or_si128(_mm_srli_epi64::<32>(x), _mm_slli_epi64::<32>(x))
            }
        }};
    }

    macro_rules! rotr24 {
        ($x:expr) => {{
            let x = $x;
            _mm_or_si128(_mm_srli_epi64::<24>(x), _mm_slli_epi64::<40>(x))
        }};
    }

    macro_rules! rotr16 {
        ($V:ident, $x:expr) => {{
            let x = $x;
            if $V & 2 != 0 {
                _mm_shufflehi_epi16::<0b00_11_10_01>(_mm_shufflelo_epi16::<0b00_11_10_01>(x))
            } else {
                _mm_or_si128(_mm_srli_epi64::<16>(x), _mm_slli_epi64::<48>(x))
            }
        }};
    }

    macro_rules! rotr63 {
        ($x:expr) => {{
            let x = $x;
            _mm_or_si128(_mm_srli_epi64::<63>(x), _mm_add_epi64(x, x))
        }};
    }

    /// `(a[1], b[0])`: SSSE3's `palignr` by 8 bytes.
    macro_rules! align {
        ($V:ident, $a:expr, $b:expr) => {{
            let (a, b) = ($a, $b);
            if $V & 4 == 0 {
                _mm_castpd_si128(_mm_shuffle_pd::<1>(_mm_castsi128_pd(a), _mm_castsi128_pd(b)))
            } else {
                _mm_unpackhi_epi64(a, _mm_unpacklo_epi64(b, b))
            }
        }};
    }

    /// G on two columns at once: half `$i` of every row (`$v` holds rows
    /// a, b, c, d as halves 0-1, 2-3, 4-5, 6-7: `$v[0]` is v0 and v1,
    /// `$v[1]` v2 and v3, `$v[2]` v4 and v5, and so on), message words in
    /// the lanes of `$x` and `$y`.
    macro_rules! g {
        ($V:ident, $v:ident, $i:literal, $x:expr, $y:expr) => {
            let (x, y) = ($x, $y);
            let (mut a, mut b, mut c, mut d) = ($v[$i], $v[2 + $i], $v[4 + $i], $v[6 + $i]);
            a = _mm_add_epi64(_mm_add_epi64(a, b), x);
            d = rotr32!($V, _mm_xor_si128(d, a));
            c = _mm_add_epi64(c, d);
            b = rotr24!(_mm_xor_si128(b, c));
            a = _mm_add_epi64(_mm_add_epi64(a, b), y);
            d = rotr16!($V, _mm_xor_si128(d, a));
            c = _mm_add_epi64(c, d);
            b = rotr63!(_mm_xor_si128(b, c));
            ($v[$i], $v[2 + $i], $v[4 + $i], $v[6 + $i]) = (a, b, c, d);
        };
    }

    /// Turns the diagonals into columns: row b moves one word left, row c
    /// two (its halves swap), row d three.
    macro_rules! diagonalize {
        ($V:ident, $v:ident) => {
            $v = [
                $v[0],
                $v[1],
                align!($V, $v[2], $v[3]),
                align!($V, $v[3], $v[2]),
                $v[5],
                $v[4],
                align!($V, $v[7], $v[6]),
                align!($V, $v[6], $v[7]),
            ];
        };
    }

    macro_rules! undiagonalize {
        ($V:ident, $v:ident) => {
            $v = [
                $v[0],
                $v[1],
                align!($V, $v[3], $v[2]),
                align!($V, $v[2], $v[3]),
                $v[5],
                $v[4],
                align!($V, $v[6], $v[7]),
                align!($V, $v[7], $v[6]),
            ];
        };
    }

    macro_rules! pair {
        ($lo:expr, $hi:expr) => {
            _mm_set_epi64x($hi as i64, $lo as i64)
        };
    }

    /// One round with that round's row of SIGMA: columns, then diagonals.
    macro_rules! round {
        ($v:ident, $m:ident, $V:ident, $s0:literal $s1:literal $s2:literal $s3:literal $s4:literal $s5:literal $s6:literal $s7:literal
         $s8:literal $s9:literal $s10:literal $s11:literal $s12:literal $s13:literal $s14:literal $s15:literal) => {
            g!($V, $v, 0, pair!($m[$s0], $m[$s2]), pair!($m[$s1], $m[$s3]));
            g!($V, $v, 1, pair!($m[$s4], $m[$s6]), pair!($m[$s5], $m[$s7]));
            diagonalize!($V, $v);
            g!($V, $v, 0, pair!($m[$s8], $m[$s10]), pair!($m[$s9], $m[$s11]));
            g!($V, $v, 1, pair!($m[$s12], $m[$s14]), pair!($m[$s13], $m[$s15]));
            undiagonalize!($V, $v);
        };
    }

    /// The low and high word of `x`.
    macro_rules! words {
        ($x:expr) => {{
            let x = $x;
            [
                _mm_cvtsi128_si64(x) as u64,
                _mm_cvtsi128_si64(_mm_unpackhi_epi64(x, x)) as u64,
            ]
        }};
    }

    pub fn compress(h: &mut [u64; 8], block: &[u8; BLOCK], counter: u128, last: bool) {
        compress_knob::<0>(h, block, counter, last)
    }

    pub fn compress_knob<const V: u32>(h: &mut [u64; 8], block: &[u8; BLOCK], counter: u128, last: bool) {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU
        // has it, so the target feature `compress_with` asks for is there.
        unsafe { compress_with::<V>(h, block, counter, last) }
    }

    #[inline(never)]
    #[target_feature(enable = "sse2")]
    pub fn compress_with<const V: u32>(h: &mut [u64; 8], block: &[u8; BLOCK], counter: u128, last: bool) {
        let mut m = [0u64; 16];
        for (word, bytes) in m.iter_mut().zip(block.as_chunks::<8>().0) {
            *word = u64::from_le_bytes(*bytes);
        }
        let last = if last { u64::MAX } else { 0 };
        let mut v = [
            pair!(h[0], h[1]),
            pair!(h[2], h[3]),
            pair!(h[4], h[5]),
            pair!(h[6], h[7]),
            pair!(IV[0], IV[1]),
            pair!(IV[2], IV[3]),
            pair!(IV[4] ^ counter as u64, IV[5] ^ (counter >> 64) as u64),
            pair!(IV[6] ^ last, IV[7]),
        ];
        round!(v, m, V, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        round!(v, m, V, 14 10 4 8 9 15 13 6 1 12 0 2 11 7 5 3);
        round!(v, m, V, 11 8 12 0 5 2 15 13 10 14 3 6 7 1 9 4);
        round!(v, m, V, 7 9 3 1 13 12 11 14 2 6 5 10 4 0 15 8);
        round!(v, m, V, 9 0 5 7 2 4 10 15 14 1 11 12 6 8 3 13);
        round!(v, m, V, 2 12 6 10 0 11 8 3 4 13 7 5 15 14 1 9);
        round!(v, m, V, 12 5 1 15 14 13 4 10 0 7 6 3 9 2 8 11);
        round!(v, m, V, 13 11 7 14 12 1 3 9 5 0 15 4 8 6 2 10);
        round!(v, m, V, 6 15 14 9 11 3 0 8 12 2 13 7 1 4 10 5);
        round!(v, m, V, 10 2 8 4 7 6 1 5 15 11 9 14 3 12 13 0);
        round!(v, m, V, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        round!(v, m, V, 14 10 4 8 9 15 13 6 1 12 0 2 11 7 5 3);
        // h[i] ^= v[i] ^ v[i + 8], two words at a time.
        let out = [
            words!(_mm_xor_si128(v[0], v[4])),
            words!(_mm_xor_si128(v[1], v[5])),
            words!(_mm_xor_si128(v[2], v[6])),
            words!(_mm_xor_si128(v[3], v[7])),
        ];
        for (word, new) in h.iter_mut().zip(out.as_flattened()) {
            *word ^= new;
        }
    }
}
