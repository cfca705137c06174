//! CRC-32, which every ZIP entry carries for its uncompressed bytes, in
//! whichever of two implementations is faster on this CPU (timed once per
//! process, like [`super::blake2b`]).
//!
//! `crc32fast` folds with PCLMULQDQ where the CPU has it (about 20 GB/s
//! natively); without it (QEMU's default `qemu64` model, what a TCG guest
//! sees) it runs slice-by-16 tables, loading 12 of every 16 bytes one at a
//! time. The `crc32-slice16` crate loads them as two words, which a
//! system-mode guest, paying a software TLB lookup per load, runs faster:
//! 625-649 against 433-452 MB/s in a one-vCPU guest
//! (`loader/examples/byte_costs_guest.sh`, 112 MB bundle, three boots).
//! In user-mode TCG the two are close (849-1094 against 797-1163 MB/s),
//! natively `crc32fast` is 8 times as fast (20 against 2.4 GB/s): hence
//! the probe.

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
            // QEMU's TCG without PCLMULQDQ (its default `qemu64` model): the
            // table code loading words, untimed (see `probe::qemu_tcg`).
            if super::probe::qemu_tcg() && !super::probe::has_pclmulqdq() {
                return Implementation::Words;
            }
            super::probe::fastest("CRC-32", Implementation::ALL, |implementation, data| {
                let mut crc = Crc32::with(implementation);
                crc.update(data);
                std::hint::black_box(crc.finalize());
            })
        })
    }
}

/// A running CRC-32.
#[derive(Clone)]
pub struct Crc32(State);

#[derive(Clone)]
enum State {
    Fast(crc32fast::Hasher),
    Words(u32),
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A CRC using the faster implementation (see the module docs).
    pub fn new() -> Self {
        Self::with(Implementation::fastest())
    }

    pub fn with(implementation: Implementation) -> Self {
        Crc32(match implementation {
            Implementation::Fast => State::Fast(crc32fast::Hasher::new()),
            Implementation::Words => State::Words(0),
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Fast(hasher) => hasher.update(data),
            State::Words(crc) => *crc = crc32_slice16::update(*crc, data),
        }
    }

    pub fn finalize(self) -> u32 {
        match self.0 {
            State::Fast(hasher) => hasher.finalize(),
            State::Words(crc) => crc,
        }
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
