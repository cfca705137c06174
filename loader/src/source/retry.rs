//! When to try again: exponential backoff with a cap and a time budget.
//!
//! The budget runs from the last moment the transfer made progress, not from
//! the start: a 1 GiB download over a flaky link may be interrupted many
//! times and still finish, while a server that stays down makes the install
//! fail after a bounded wait instead of hanging forever.

use std::time::{Duration, Instant};

/// How failed attempts are retried. All times are configurable so tests can
/// run with milliseconds; [`RetryPolicy::default`] is what an operator gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry; doubled after each further failure.
    pub initial_delay: Duration,
    /// Ceiling for the doubled wait (and for a server's `Retry-After`).
    pub max_delay: Duration,
    /// Give up when this much time has passed without a single new byte
    /// (or since the start, before the first byte).
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    /// 1 s doubling up to 30 s, giving up after 5 minutes without progress.
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            give_up_after: Duration::from_secs(300),
        }
    }
}

/// The running state of one transfer's retries.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    next_delay: Duration,
    last_progress: Instant,
    failures_since_progress: u32,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Backoff {
            next_delay: policy.initial_delay,
            policy,
            last_progress: Instant::now(),
            failures_since_progress: 0,
        }
    }

    /// New bytes arrived: the next failure starts again at the initial delay
    /// with a fresh budget.
    pub(crate) fn progressed(&mut self) {
        self.next_delay = self.policy.initial_delay;
        self.last_progress = Instant::now();
        self.failures_since_progress = 0;
    }

    /// Failures counted since the last progress.
    pub(crate) fn failures(&self) -> u32 {
        self.failures_since_progress
    }

    /// Time spent without progress so far.
    pub(crate) fn stalled_for(&self) -> Duration {
        self.last_progress.elapsed()
    }

    /// Records a failure and returns how long to wait before the next
    /// attempt, or `None` when waiting would exceed the budget.
    /// `server_hint` is a `Retry-After` value; it is honoured up to
    /// `max_delay` and never shortens the backoff.
    pub(crate) fn next_wait(&mut self, server_hint: Option<Duration>) -> Option<Duration> {
        self.failures_since_progress = self.failures_since_progress.saturating_add(1);
        let mut wait = self.next_delay;
        if let Some(hint) = server_hint {
            wait = wait.max(hint.min(self.policy.max_delay));
        }
        self.next_delay = self.next_delay.saturating_mul(2).min(self.policy.max_delay);
        let resume_at = self.last_progress.elapsed().saturating_add(wait);
        (resume_at <= self.policy.give_up_after).then_some(wait)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(initial: u64, max: u64, budget: u64) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_secs(initial),
            max_delay: Duration::from_secs(max),
            give_up_after: Duration::from_secs(budget),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut b = Backoff::new(policy(1, 8, 1000));
        let waits: Vec<u64> = (0..6).map(|_| b.next_wait(None).map_or(0, |d| d.as_secs())).collect();
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(b.failures(), 6);
    }

    #[test]
    fn progress_resets_the_delay() {
        let mut b = Backoff::new(policy(1, 8, 1000));
        b.next_wait(None);
        b.next_wait(None);
        b.progressed();
        assert_eq!(b.next_wait(None), Some(Duration::from_secs(1)));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn gives_up_when_the_wait_would_exceed_the_budget() {
        // The budget is compared with the real time elapsed since the last
        // progress plus the next wait; no time passes in this test.
        let mut b = Backoff::new(policy(4, 64, 10));
        assert_eq!(b.next_wait(None), Some(Duration::from_secs(4)));
        assert_eq!(b.next_wait(None), Some(Duration::from_secs(8)));
        assert_eq!(b.next_wait(None), None, "a 16 s wait exceeds 10 s");
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut b = Backoff::new(policy(1, 5, 1000));
        assert_eq!(b.next_wait(Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
        assert_eq!(
            b.next_wait(Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(5))
        );
        // A hint shorter than the backoff does not shorten it.
        assert_eq!(
            b.next_wait(Some(Duration::from_millis(1))),
            Some(Duration::from_secs(4))
        );
    }
}
