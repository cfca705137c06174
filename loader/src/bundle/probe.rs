//! Picks the fastest of interchangeable implementations (same results,
//! different speeds) by timing each on a small buffer: which one wins
//! depends on the CPU and on whether it is emulated (see the `blake2b` and
//! `crc32` modules). A wrong pick under load costs speed, never
//! correctness.

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
