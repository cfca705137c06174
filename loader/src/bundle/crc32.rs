//! CRC-32, which every ZIP entry carries for its uncompressed bytes, in
//! whichever of two implementations is faster on this CPU (timed once per
//! process, like [`super::blake2b`], and only once a piece large enough
//! to be worth it comes: reading `meta.conf` does not time them).
//!
//! `crc32fast` folds with PCLMULQDQ where the CPU has it (about 20 GB/s
//! natively); without it (QEMU's default `qemu64` model, what a TCG guest
//! sees) it runs slice-by-16 tables, loading 12 of every 16 bytes one at a
//! time. The `crc32-slice16` crate loads them as two words, which a
//! system-mode guest pays a software TLB lookup less for: 566-648 against
//! 513-528 MB/s in a one-vCPU guest (`loader/examples/byte_costs_guest.sh`,
//! 112 MB bundle). But a build whose layout put its 273-byte loop across a
//! page boundary ran it at 307-368 MB/s (QEMU ends a translation block at
//! a guest page, so each iteration ran as two), against `crc32fast`'s
//! 471-525: which one wins under TCG depends on where the linker put the
//! code, so it is timed there too (unlike BLAKE2b, where `blake2b-shrd`
//! wins by 1.6× or more). Natively `crc32fast` is 8 times as fast (20
//! against 2.4 GB/s).

use std::sync::OnceLock;

/// The two implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// `crc32fast` (PCLMULQDQ when the CPU has it).
    Fast,
    /// The `crc32-slice16` crate (emulated CPUs).
    Words,
}

impl Implementation {
    pub const ALL: [Implementation; 2] = [Implementation::Fast, Implementation::Words];

    /// The faster implementation on this machine, measured on first use
    /// (a tie goes to `crc32fast`).
    pub fn fastest() -> Implementation {
        static CHOICE: OnceLock<Implementation> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            super::probe::fastest("CRC-32", Implementation::ALL, |implementation, data| {
                let mut crc = Crc32::with(implementation);
                crc.update(data);
                std::hint::black_box(crc.finalize());
            })
        })
    }
}

/// Pieces smaller than this are not worth timing the implementations for
/// (`meta.conf`, a descriptor scan's candidates): `crc32fast` takes them.
/// The ZIP walker's reads of a resource are larger.
const TIMED_PIECE: usize = 64 * 1024;

/// A running CRC-32. Both implementations continue the same value, so
/// each piece may take either.
#[derive(Clone)]
pub struct Crc32 {
    crc: u32,
    /// Forced by [`Crc32::with`]; otherwise chosen per piece.
    implementation: Option<Implementation>,
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A CRC whose large pieces go to the faster implementation (timed on
    /// the first one, see the module docs).
    pub fn new() -> Self {
        Crc32 {
            crc: 0,
            implementation: None,
        }
    }

    pub fn with(implementation: Implementation) -> Self {
        Crc32 {
            crc: 0,
            implementation: Some(implementation),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        let implementation = self.implementation.unwrap_or_else(|| {
            if data.len() >= TIMED_PIECE {
                Implementation::fastest()
            } else {
                Implementation::Fast
            }
        });
        self.crc = match implementation {
            Implementation::Fast => {
                let mut hasher = crc32fast::Hasher::new_with_initial(self.crc);
                hasher.update(data);
                hasher.finalize()
            }
            Implementation::Words => crc32_slice16::update(self.crc, data),
        };
    }

    pub fn finalize(self) -> u32 {
        self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_implementations_agree_in_any_chunking() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expected = crc32fast::hash(&data);
        // CRC-32/ISO-HDLC's catalogue check value.
        assert_eq!(
            {
                let mut crc = Crc32::new();
                crc.update(b"123456789");
                crc.finalize()
            },
            0xcbf4_3926
        );
        // An unforced CRC may take either implementation for each piece:
        // each continues the other's value.
        for (first, second) in [
            (Implementation::Fast, Implementation::Words),
            (Implementation::Words, Implementation::Fast),
        ] {
            let mut crc = Crc32::with(first);
            crc.update(&data[..TIMED_PIECE / 3]);
            crc.implementation = Some(second);
            crc.update(&data[TIMED_PIECE / 3..]);
            assert_eq!(crc.finalize(), expected, "{first:?} then {second:?}");
        }
        for implementation in Implementation::ALL {
            let mut pieces = Crc32::with(implementation);
            for chunk in data.chunks(1000 + 3).chain(std::iter::once(&[][..])) {
                pieces.update(chunk);
            }
            // A clone carries the state so far (the descriptor scan's use).
            assert_eq!(pieces.clone().finalize(), expected, "{implementation:?}");
            assert_eq!(pieces.finalize(), expected, "{implementation:?}");
        }
    }
}
