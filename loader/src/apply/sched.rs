//! The install pipeline's threads as batch work for the scheduler
//! (`SCHED_BATCH`), and the only `unsafe` code for it.
//!
//! The pipeline's stages hand chunks to each other through bounded
//! channels. A send wakes the receiving thread while the sender still
//! holds the channel's waker lock; on one CPU an ordinary (`SCHED_OTHER`)
//! thread that is woken preempts the sender at once, finds the lock taken
//! and spins on it (std's mutex spins 100 times, and under QEMU's TCG each
//! `pause` leaves the translated code) before it sleeps and gives the CPU
//! back. Batch threads do not preempt on wakeup: the sender runs on until
//! it blocks, which on one CPU is also the fewest switches. Nothing else
//! changes: a batch thread has the same share of the CPU and its timeslice
//! still ends at the tick.
//!
//! musl's `sched_setscheduler` only returns `ENOSYS` (POSIX means the
//! process, Linux sets one thread), so the system call is made directly.

use std::marker::PhantomData;

use nix::errno::Errno;
use nix::libc;

/// A thread's scheduling policy (`SCHED_OTHER`, `SCHED_BATCH`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy(libc::c_int);

pub const BATCH: Policy = Policy(libc::SCHED_BATCH);

/// The calling thread's policy.
pub fn current() -> Result<Policy, Errno> {
    // SAFETY: sched_getscheduler(0) takes an integer and reads no memory.
    let rc = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) };
    Errno::result(rc).map(|p| Policy(p as libc::c_int))
}

/// Sets the calling thread's policy (priority 0, the only one the
/// non-real-time policies have).
pub fn set_current(policy: Policy) -> Result<(), Errno> {
    // The kernel's `struct sched_param` is one int (musl's adds fields
    // of its own).
    let priority: libc::c_int = 0;
    // SAFETY: `priority` is a live int, all of the kernel's `struct
    // sched_param`, which it only reads during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            policy.0,
            &priority as *const libc::c_int,
        )
    };
    Errno::result(rc).map(drop)
}

/// Runs the calling thread as batch work until dropped, then restores its
/// policy. A policy that cannot be read or set is left as it is: this is
/// about speed, never correctness. Not `Send`: it must be dropped on the
/// thread it changed.
pub struct BatchGuard {
    before: Option<Policy>,
    _this_thread: PhantomData<*const ()>,
}

impl BatchGuard {
    pub fn new() -> BatchGuard {
        let before = match current() {
            Ok(policy) if policy != BATCH && set_current(BATCH).is_ok() => Some(policy),
            _ => None,
        };
        BatchGuard {
            before,
            _this_thread: PhantomData,
        }
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        if let Some(before) = self.before {
            let _ = set_current(before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_makes_the_thread_batch_and_gives_its_policy_back() {
        std::thread::spawn(|| {
            // Whatever the test runner's policy, start from the ordinary one.
            set_current(Policy(libc::SCHED_OTHER)).unwrap();
            let before = current().unwrap();
            assert_ne!(before, BATCH);
            {
                let _batch = BatchGuard::new();
                assert_eq!(current().unwrap(), BATCH);
            }
            assert_eq!(current().unwrap(), before);
        })
        .join()
        .unwrap();
    }
}
