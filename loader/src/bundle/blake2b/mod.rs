//! BLAKE2b-256, the hash `meta.conf` gives for every resource, in whichever
//! of three implementations is fastest on this CPU.
//!
//! An install is bound by this hash: each resource is one serial BLAKE2b
//! stream, so it cannot be spread over cores. `blake2b_simd`'s AVX2 code is
//! the faster one on many Intel CPUs, but on AMD Zen 5 (measured on an EPYC,
//! CPU family 26) the plain 64-bit code of the `blake2` crate runs 1.8 times
//! as fast (1.54 against 0.85 GB/s). Both compute the same digest, so the
//! choice is made once per process by timing each on a small buffer (`probe`); a
//! wrong guess under load costs speed, never correctness.
//!
//! On a CPU without SSE4.1 (QEMU's default `qemu64` model, what a TCG guest
//! sees) `blake2b_simd` runs its portable code, and every Rust BLAKE2b
//! measured there ran at 100-151 MB/s (`blake2b_simd`, `blake2b-ref`,
//! `blake2-rfc`, `blake2`, a Monocypher-like loop): all of them rotate with
//! `ror`/`rol`, which QEMU's TCG translates with a flags helper call half
//! the time. The `blake2b-shrd` crate rotates with `shrd` instead, keeps the
//! message words in XMM registers (no memory loads, which a system-mode
//! guest pays a software TLB lookup for) and is built at opt-level 3 (the
//! loader's "z" cost it a third of its speed); it runs at half `ror`'s
//! speed on real CPUs, so the probe finds it when the CPU is
//! emulated (`examples/byte_costs.rs` prints all three side by side).
//!
//! Measured in a one-vCPU system-mode guest, the view the install race
//! sees (`loader/examples/byte_costs_guest.sh BUNDLE.fw`: q35, TCG, QEMU
//! 7.2, `qemu64`; CPU seconds, best of three interleaved runs, two boots
//! each, on a shared host), MB/s:
//!
//! | bundle         | blake2b_simd | blake2 | shrd before | blake2b-shrd |
//! |----------------|-------------:|-------:|------------:|-------------:|
//! | 7.6 MB (ab-v1) | 77-102       | 62-72  | 116-133     | 199-208      |
//! | 112 MB (large) | 97-98        | 61-73  | 114-115     | 170-185      |
//!
//! ("shrd before": the same rounds inside the loader at opt-level "z",
//! message words reloaded from memory, as on `main` before this crate.)
//! Under `qemu-x86_64 -cpu qemu64` (user mode, 112 MB): 250-259 MB/s
//! against 209-220 before and 141-151 for `blake2b_simd`. Natively (AMD
//! EPYC, family 25): `blake2b_simd` 1192-1196, `blake2` 1128-1134,
//! blake2b-shrd 491-492: the probe keeps picking `blake2b_simd` there.
//!
//! Tried and dropped: an SSE2 compress after the BLAKE2 reference's
//! `sse/blake2b-round.h` (state rows in 8 XMM registers, rotations by
//! shifts or `pshufd`/`pshuflw`, diagonals by `shufpd` or `punpck*qdq`)
//! ran at 31-38 MB/s in both the system-mode guest and user mode, every
//! variant. QEMU 7.2 keeps XMM registers in its CPU state in memory, so
//! each vector op is a load, the op and a store on a dependency chain
//! (`-d op` shows `ld_vec`/`add_vec`/`st_vec` per `paddq`), and the
//! shuffles (`pshufd`, `punpcklqdq`, `shufpd`) are helper calls, while
//! scalar code keeps the guest's registers in host registers.

use std::sync::OnceLock;

use blake2::digest::consts::U32;
use blake2::Digest;

/// The two implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// `blake2b_simd` (AVX2 or SSE4.1 when the CPU has them).
    Vector,
    /// The `blake2` crate's portable 64-bit code.
    Scalar,
    /// The `blake2b-shrd` crate: unrolled rounds with `shrd` rotations
    /// and the message words in XMM registers (emulated CPUs).
    Shrd,
}

impl Implementation {
    pub const ALL: [Implementation; 3] = [Implementation::Vector, Implementation::Scalar, Implementation::Shrd];
}

impl Implementation {
    /// The fastest implementation on this machine, measured on first use
    /// (ties go to the earlier one: Vector, then Scalar).
    ///
    /// Without SSE4.1, `blake2b_simd` runs portable code: within 6% of the
    /// `blake2` crate on a real CPU (1192 against 1128 MB/s on an EPYC),
    /// at half `blake2b-shrd`'s speed in a TCG guest (table above). It is
    /// left out of the race there, because an emulated CPU translates
    /// every candidate it times, and its unrolled rounds are the largest:
    /// 3,962 guest instructions translated against 1,903 (`blake2`) and
    /// 1,798 (`blake2b-shrd`), counted with QEMU's `-d in_asm`. Under
    /// QEMU's TCG (`probe::qemu_tcg`), `blake2b-shrd` is taken untimed.
    pub fn fastest() -> Implementation {
        static CHOICE: OnceLock<Implementation> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            let run = |implementation, data: &[u8]| {
                let mut hasher = Blake2b256::with(implementation);
                hasher.update(data);
                std::hint::black_box(hasher.finalize());
            };
            if super::probe::qemu_tcg() {
                Implementation::Shrd
            } else if super::probe::has_sse41() {
                super::probe::fastest("BLAKE2b", Implementation::ALL, run)
            } else {
                super::probe::fastest("BLAKE2b", [Implementation::Scalar, Implementation::Shrd], run)
            }
        })
    }
}

/// A running BLAKE2b-256 (unkeyed, no salt or personalization: fwup's).
#[derive(Clone)]
pub struct Blake2b256(State);

#[derive(Clone)]
enum State {
    Vector(blake2b_simd::State),
    Scalar(blake2::Blake2b<U32>),
    Shrd(blake2b_shrd::State),
}

impl Default for Blake2b256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Blake2b256 {
    /// A hasher using the faster implementation (see the module docs).
    pub fn new() -> Self {
        Self::with(Implementation::fastest())
    }

    pub fn with(implementation: Implementation) -> Self {
        Blake2b256(match implementation {
            Implementation::Vector => State::Vector(blake2b_simd::Params::new().hash_length(32).to_state()),
            Implementation::Scalar => State::Scalar(blake2::Blake2b::<U32>::new()),
            Implementation::Shrd => State::Shrd(blake2b_shrd::State::new(32, &[])),
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Vector(state) => {
                state.update(data);
            }
            State::Scalar(state) => state.update(data),
            State::Shrd(state) => state.update(data),
        }
    }

    pub fn finalize(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        match self.0 {
            State::Vector(state) => out.copy_from_slice(state.finalize().as_bytes()),
            State::Scalar(state) => out.copy_from_slice(&state.finalize()),
            State::Shrd(state) => out.copy_from_slice(&state.finalize()[..32]),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(digest: [u8; 32]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_implementation_gives_the_reference_digests() {
        // BLAKE2b-256 of "" and "abc" (b2sum -l 256).
        for implementation in Implementation::ALL {
            let empty = Blake2b256::with(implementation).finalize();
            assert_eq!(
                hex(empty),
                "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
                "{implementation:?}"
            );
            let mut abc = Blake2b256::with(implementation);
            abc.update(b"abc");
            assert_eq!(
                hex(abc.finalize()),
                "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
                "{implementation:?}"
            );
        }
    }

    #[test]
    fn chunking_does_not_change_the_digest() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Blake2b256::with(Implementation::Vector);
        whole.update(&data);
        let expected = whole.finalize();
        for implementation in Implementation::ALL {
            // Pieces that straddle the 128-byte block size in odd ways.
            let mut pieces = Blake2b256::with(implementation);
            for chunk in data.chunks(1000).chain(std::iter::once(&[][..])) {
                pieces.update(chunk);
            }
            assert_eq!(pieces.finalize(), expected, "{implementation:?}");
        }
        assert_eq!(
            {
                let mut h = Blake2b256::new();
                h.update(&data);
                h.finalize()
            },
            expected
        );
    }
}
