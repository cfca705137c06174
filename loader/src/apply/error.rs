//! Why an install failed, in words a person at a serial console can act on.

use super::events::Stage;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The ZIP container is damaged or cut short.
    #[error("the bundle is damaged or incomplete: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Signature(String),
    #[error("meta.conf: {0}")]
    Manifest(String),
    #[error("no task matches `{prefix}` (tasks in the bundle: {available}); a task's requirements may not be met by this disk")]
    NoTask { prefix: String, available: String },
    #[error("{what} requires --unsafe (the bundle runs host commands or writes host paths)")]
    NeedsUnsafe { what: String },
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("resource `{name}`: BLAKE2b-256 mismatch: the bundle is corrupt or was tampered with")]
    HashMismatch { name: String },
    #[error("resource `{name}`: got {got} bytes, meta.conf says {expected}: the bundle is corrupt or truncated")]
    LengthMismatch { name: String, got: u64, expected: u64 },
    #[error("resource `{name}` is used by task `{task}` but the bundle has no data for it")]
    MissingResource { name: String, task: String },
    #[error("resource `{name}`: {count} actions read its data; fwup allows one per on-resource (use fat_cp to copy)")]
    DataReadTwice { name: String, count: usize },
    /// The bundle's own `error()` action.
    #[error("{0}")]
    Requested(String),
    #[error("{stage}: {action}: {source}")]
    Action {
        stage: Stage,
        action: String,
        source: BoxError,
    },
    /// The caller's check of the task's planned writes refused it.
    #[error("{0}")]
    Refused(String),
    #[error("the install would hold back too much data: {0}")]
    HoldLimit(String),
    /// A partition table of the task reaches past the end of the target
    /// (refused before the first write; fwup would write it).
    #[error("{0}; nothing was written (a table pointing past the end of the disk would not boot)")]
    TooSmall(String),
    #[error("writing {target}: {source}")]
    Target { target: String, source: std::io::Error },
    /// Downloading the bundle failed part-way. `restart` says why starting
    /// over from byte 0 can still succeed (the file changed on the server,
    /// or the server cannot resume); nothing bootable has been written.
    #[error("{message}")]
    Download { message: String, restart: Option<String> },
    /// A later pass over the bundle read other bytes than the pass that
    /// verified it (a server that changes the file between requests).
    #[error("the bundle changed between two downloads: {0}")]
    Changed(String),
    /// No install mode keeps this install safe (see `install_mode`).
    #[error("{0}")]
    InstallMode(String),
    /// A thread of the install panicked: a bug, not the bundle's fault.
    #[error("internal error: {0} (a bug in the loader; please report this message)")]
    Internal(String),
}

impl ApplyError {
    /// A short, stable name for the kind of failure (JSON reports, tests).
    pub fn class(&self) -> &'static str {
        match self {
            ApplyError::Corrupt(_) => "corrupt",
            ApplyError::Signature(_) => "signature",
            ApplyError::Manifest(_) => "manifest",
            ApplyError::NoTask { .. } => "no-task",
            ApplyError::NeedsUnsafe { .. } => "needs-unsafe",
            ApplyError::Unsupported(_) => "unsupported",
            ApplyError::HashMismatch { .. } | ApplyError::LengthMismatch { .. } => "corrupt",
            ApplyError::MissingResource { .. } => "corrupt",
            ApplyError::DataReadTwice { .. } => "manifest",
            ApplyError::Requested(_) => "bundle-error",
            ApplyError::Action { .. } => "action",
            ApplyError::HoldLimit(_) => "hold-limit",
            ApplyError::TooSmall(_) => "too-small",
            ApplyError::Refused(_) => "refused",
            ApplyError::Target { .. } => "io",
            ApplyError::Download { .. } => "network",
            ApplyError::Changed(_) => "corrupt",
            ApplyError::InstallMode(_) => "install-mode",
            ApplyError::Internal(_) => "internal",
        }
    }

    /// Reading the bundle failed: a download failure keeps what it is (and
    /// whether starting over can fix it); anything else means the bundle is
    /// damaged or cut short.
    pub fn reading(err: &(dyn std::error::Error + 'static)) -> ApplyError {
        if let Some(panicked) = find::<WorkerPanicked>(err) {
            return ApplyError::Internal(panicked.to_string());
        }
        match SourceFailure::find_in(err) {
            Some(failure) => ApplyError::Download {
                message: failure.message.clone(),
                restart: failure.restart.clone(),
            },
            None => ApplyError::Corrupt(err.to_string()),
        }
    }
}

/// A failure of the byte source the engine reads (a download), as the
/// engine needs to know it: what happened, and why starting the whole
/// install over from byte 0 can still succeed, when it can. A source puts
/// it inside the `io::Error` its reader returns (the download's own error
/// type is converted where a source is opened for the engine,
/// `source::policy`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceFailure {
    pub message: String,
    pub restart: Option<String>,
}

impl SourceFailure {
    /// The `SourceFailure` anywhere in an error's chain: the ZIP walker and
    /// the install pipeline wrap the reader's `io::Error` in their own.
    pub fn find_in<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e SourceFailure> {
        find::<SourceFailure>(err)
    }
}

/// A stage of the install's reading (the bundle reader, the hasher, on a
/// thread of its own or inline) panicked; its message is the panic's.
#[derive(Debug, thiserror::Error)]
#[error("the {stage} panicked: {message}")]
pub struct WorkerPanicked {
    /// "bundle reader thread", "bundle hasher" (inline), …
    pub stage: &'static str,
    pub message: String,
}

/// The text a panic was raised with (`panic!("…")`), for messages.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The first error of type `E` in `err`'s chain, looking into `io::Error`s.
fn find<'e, E: std::error::Error + 'static>(mut err: &'e (dyn std::error::Error + 'static)) -> Option<&'e E> {
    loop {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        err = inner.or_else(|| err.source())?;
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{ApplyError, SourceFailure};
    use crate::bundle::zip::ZipError;

    /// A source failure as the engine sees it: returned by the reader's
    /// `read`, wrapped by the ZIP walker, turned back into an `io::Error` by
    /// the entry reader.
    fn through_the_walker(failure: SourceFailure) -> io::Error {
        let zip = ZipError::Io {
            offset: 4096,
            source: io::Error::other(failure),
        };
        io::Error::other(zip)
    }

    #[test]
    fn a_changed_file_deep_in_the_chain_is_a_download_to_restart() {
        let err = through_the_walker(SourceFailure {
            message: "https://h/b.fw: the file changed on the server during the download".into(),
            restart: Some("the file changed on the server (ETag was \"1\", now \"2\")".into()),
        });
        match ApplyError::reading(&err) {
            ApplyError::Download { message, restart } => {
                assert!(message.starts_with("https://h/b.fw: the file changed"), "{message}");
                assert_eq!(
                    restart.as_deref(),
                    Some("the file changed on the server (ETag was \"1\", now \"2\")")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_download_failures_are_final_and_other_read_errors_corrupt() {
        let err = through_the_walker(SourceFailure {
            message: "the download thread stopped without finishing".into(),
            restart: None,
        });
        let applied = ApplyError::reading(&err);
        assert!(
            matches!(applied, ApplyError::Download { restart: None, .. }),
            "{applied:?}"
        );
        assert_eq!(applied.class(), "network");

        let truncated = io::Error::other(ZipError::Io {
            offset: 10,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "short file"),
        });
        let applied = ApplyError::reading(&truncated);
        assert!(matches!(applied, ApplyError::Corrupt(_)), "{applied:?}");
        assert!(applied.to_string().contains("at byte 10"), "{applied}");
    }
}
