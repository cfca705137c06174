//! Starting an install over from byte 0 when the bundle changed on the
//! server during the download, or a broken download cannot be resumed.
//!
//! This is safe because nothing bootable is written before every resource
//! has verified: the failed attempt's held writes went with it, and the
//! bulk data it streamed is overwritten by the next attempt. The number of
//! restarts is bounded, so a file that keeps changing fails with a message
//! instead of downloading forever.

use super::error::ApplyError;
use super::events::{Event, Reporter};
use super::Summary;

/// Restarts from byte 0 allowed within one install.
pub const MAX_RESTARTS: u32 = 3;

/// The restarts of one install so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restarts {
    pub count: u32,
    /// Bytes downloaded by the abandoned attempts, downloaded again.
    pub refetched: u64,
}

impl Restarts {
    /// After a failed attempt that had downloaded `received` bytes: `Ok`
    /// (reported to `reporter`) when the install should start over, else
    /// the error to fail with.
    pub fn after_failure(
        &mut self,
        error: ApplyError,
        received: u64,
        reporter: &mut dyn Reporter,
    ) -> Result<(), ApplyError> {
        let ApplyError::Download {
            message,
            restart: Some(reason),
        } = error
        else {
            return Err(error);
        };
        if self.count >= MAX_RESTARTS {
            return Err(ApplyError::Download {
                message: format!(
                    "{message}; gave up after starting over from byte 0 {MAX_RESTARTS} times \
                     (publish each version of a bundle under a new name instead of replacing it, \
                     and serve it with an ETag or Last-Modified header)"
                ),
                restart: None,
            });
        }
        self.count += 1;
        self.refetched += received;
        reporter.event(&Event::Restart {
            reason,
            restart: self.count,
            limit: MAX_RESTARTS,
            refetch: received,
        });
        Ok(())
    }
}

impl Restarts {
    /// Puts the counts on the finished install's summary; `refetched` is
    /// what the last attempt's own resumes downloaded twice.
    pub fn record(&self, summary: &mut Summary, refetched: u64) {
        summary.restarts = self.count;
        summary.refetched_bytes = self.refetched + refetched;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::apply::events::Collect;

    fn changed() -> ApplyError {
        ApplyError::Download {
            message: "https://h/b.fw: the file changed on the server during the download (ETag was \"1\", now \"2\")"
                .into(),
            restart: Some("the file changed on the server (ETag was \"1\", now \"2\")".into()),
        }
    }

    #[test]
    fn restarts_are_reported_counted_and_bounded() {
        let mut restarts = Restarts::default();
        let mut seen = Collect::default();
        for n in 1..=MAX_RESTARTS {
            restarts.after_failure(changed(), 1000, &mut seen).unwrap();
            assert_eq!(restarts.count, n);
        }
        assert_eq!(restarts.refetched, 3000);
        let reported: Vec<_> = seen
            .0
            .iter()
            .filter_map(|e| match e {
                Event::Restart {
                    restart,
                    limit,
                    refetch,
                    reason,
                } => Some((*restart, *limit, *refetch, reason.starts_with("the file changed"))),
                _ => None,
            })
            .collect();
        assert_eq!(reported, [(1, 3, 1000, true), (2, 3, 1000, true), (3, 3, 1000, true)]);

        let err = restarts.after_failure(changed(), 1000, &mut seen).unwrap_err();
        assert!(
            matches!(&err, ApplyError::Download { restart: None, .. }),
            "the last error is final: {err:?}"
        );
        assert!(
            err.to_string()
                .contains("gave up after starting over from byte 0 3 times"),
            "{err}"
        );
        assert_eq!(err.class(), "network");
        assert_eq!(seen.0.len(), 3, "no restart reported for the give-up");
    }

    #[test]
    fn other_failures_are_returned_unchanged() {
        let mut restarts = Restarts::default();
        let mut seen = Collect::default();
        let err = restarts
            .after_failure(ApplyError::HashMismatch { name: "rootfs".into() }, 10, &mut seen)
            .unwrap_err();
        assert!(matches!(err, ApplyError::HashMismatch { .. }));
        let gave_up = ApplyError::Download {
            message: "gave up after 5 failed attempts".into(),
            restart: None,
        };
        assert!(restarts.after_failure(gave_up, 10, &mut seen).is_err());
        assert_eq!(restarts, Restarts::default());
        assert!(seen.0.is_empty());
    }
}
