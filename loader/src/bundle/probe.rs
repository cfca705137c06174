//! Picks the fastest of interchangeable implementations (same results,
//! different speeds) by timing each on a small buffer: which one wins
//! depends on the CPU and on whether it is emulated (see the `blake2b` and
//! `crc32` modules). Under QEMU's TCG, which says so in CPUID
//! ([`qemu_tcg`]), BLAKE2b takes the implementation built for it without
//! timing (it wins there in every build measured; CRC-32's winner can
//! change with the code's layout). A wrong pick under load costs speed,
//! never correctness.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Bytes per timing run: large enough that the inner loop dominates, small
/// enough that choosing costs well under a millisecond on a real CPU (in
/// a TCG guest, translating every candidate makes it about 14 ms).
const PROBE_BYTES: usize = 32 * 1024;
const PROBE_RUNS: usize = 3;

/// The implementation in `all` for which `run` over a probe buffer takes
/// the least time; ties go to the earlier one.
pub(crate) fn fastest<T: Copy + Debug, const N: usize>(what: &str, all: [T; N], run: impl Fn(T, &[u8])) -> T {
    let probe = vec![0x5a; PROBE_BYTES];
    // Interleaved, best of a few: a context switch in one run does not
    // decide the choice.
    let mut best = [Duration::MAX; N];
    for _ in 0..PROBE_RUNS {
        for (best, implementation) in best.iter_mut().zip(all) {
            let started = Instant::now();
            run(implementation, &probe);
            *best = (*best).min(started.elapsed());
        }
    }
    let mut fastest = 0;
    for (i, time) in best.iter().enumerate() {
        if *time < best[fastest] {
            fastest = i;
        }
    }
    // With loader.log=debug: which one a guest's CPU got.
    tracing::debug!(picked = ?all[fastest], probe_ns = ?best.map(|t| t.as_nanos()), "{what} implementation");
    all[fastest]
}

/// Whether this CPU is QEMU's TCG emulator, which names itself in the
/// hypervisor CPUID leaf ("TCGTCGTCGTCG": QEMU's `tcg-cpuid`, on by
/// default; checked with QEMU 7.2). Real CPUs and other hypervisors (KVM
/// reports "KVMKVMKVM") never do. There BLAKE2b's implementation built for
/// emulation is taken without timing the others: a guest translates each
/// candidate it runs, which cost more than the timing (a `blake2` round
/// function is 1,903 guest instructions to translate, about 2.5 ms).
#[cfg(target_arch = "x86_64")]
pub(crate) fn qemu_tcg() -> bool {
    use std::arch::x86_64::__cpuid;
    let hypervisor_present = __cpuid(1).ecx & (1 << 31) != 0;
    if !hypervisor_present {
        return false;
    }
    let leaf = __cpuid(0x4000_0000);
    is_tcg_signature(leaf.ebx, leaf.ecx, leaf.edx)
}

/// SSE4.1, which `blake2b_simd`'s vector code needs.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_sse41() -> bool {
    std::arch::is_x86_feature_detected!("sse4.1")
}

// Other architectures: never TCG's x86 signature, and every candidate is
// timed.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn qemu_tcg() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn has_sse41() -> bool {
    true
}

/// The hypervisor leaf's vendor signature (EBX, ECX, EDX) is QEMU TCG's.
fn is_tcg_signature(ebx: u32, ecx: u32, edx: u32) -> bool {
    let mut signature = [0u8; 12];
    for (bytes, register) in signature.chunks_exact_mut(4).zip([ebx, ecx, edx]) {
        bytes.copy_from_slice(&register.to_le_bytes());
    }
    &signature == b"TCGTCGTCGTCG"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registers(signature: &[u8; 12]) -> (u32, u32, u32) {
        let word = |i: usize| u32::from_le_bytes([signature[i], signature[i + 1], signature[i + 2], signature[i + 3]]);
        (word(0), word(4), word(8))
    }

    #[test]
    fn only_qemus_tcg_signature_counts_as_emulated() {
        let (b, c, d) = registers(b"TCGTCGTCGTCG");
        assert!(is_tcg_signature(b, c, d));
        let (b, c, d) = registers(b"KVMKVMKVM\0\0\0");
        assert!(!is_tcg_signature(b, c, d));
        assert!(!is_tcg_signature(0, 0, 0));
    }
}
