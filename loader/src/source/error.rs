//! Errors of the HTTP(S) source. The messages are what an operator reads on
//! a serial console, so each names the URL and what to do.

use std::io;
use std::time::Duration;

/// Why fetching a bundle over HTTP(S) failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "{url}: plain http:// is refused; use https://, or allow it by signing the bundle \
         with an enforced key, pinning it with loader.sha256= (--sha256), or loader.insecure=1 \
         (--insecure)"
    )]
    PlainHttpRefused { url: String },

    #[error("{url}: unsupported URL scheme `{scheme}`; use https://")]
    UnsupportedScheme { url: String, scheme: String },

    #[error("{url}: not a valid URL: {detail}")]
    BadUrl { url: String, detail: String },

    #[error("CA certificate from {origin}: {detail}")]
    BadCaCertificate { origin: String, detail: String },

    #[error("setting up TLS: {0}")]
    TlsSetup(String),

    /// The handshake failed for a reason retrying cannot fix; the message
    /// says which (untrusted CA, wrong name, clock).
    #[error("{url}: {message}")]
    Tls { url: String, message: String },

    /// The server answered with a status that is not worth retrying.
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: String },

    #[error(
        "{url}: gave up after {attempts} failed attempts over {}s without progress; \
         last error: {last}",
        .stalled.as_secs()
    )]
    GaveUp {
        url: String,
        attempts: u32,
        stalled: Duration,
        last: String,
    },

    /// The file on the server is not the one the transfer started with.
    /// The engine must restart from zero; nothing bootable has been written.
    #[error("{url}: the file changed on the server during the download ({detail})")]
    SourceChanged { url: String, detail: String },

    /// The transfer broke and the first response carried no strong
    /// validator (`why` says what it had), so no resumed answer could be
    /// proven to continue the same file. The engine must restart from zero.
    #[error("{url}: the download broke at byte {offset} ({cause}) and cannot be resumed: {why}")]
    NotResumable {
        url: String,
        offset: u64,
        cause: String,
        why: String,
    },

    /// The server answered a resume without proving it is the same file
    /// (no validator, or a weak one). The engine must restart from zero.
    #[error("{url}: resuming at byte {offset} is not safe: {detail}")]
    ResumeUnproven { url: String, offset: u64, detail: String },

    #[error("{url}: the server broke the HTTP protocol: {detail}")]
    Protocol { url: String, detail: String },

    #[error("{url}: redirected to plain http:// ({target}), which is not allowed")]
    RedirectToPlainHttp { url: String, target: String },

    #[error("{url}: the server sent more bytes than it announced ({length})")]
    TooLong { url: String, length: u64 },

    #[error("starting the download thread: {0}")]
    Thread(#[source] io::Error),

    #[error("proxy `{proxy}`: {detail}")]
    BadProxy { proxy: String, detail: String },

    #[error("setting up the HTTP client: {0}")]
    Client(String),

    #[error("the download thread stopped without finishing")]
    ThreadGone,
}

impl HttpError {
    /// Whether the engine should discard what it has and start the whole
    /// install again from byte 0 (the file changed, or cannot be resumed).
    pub fn restart_from_zero(&self) -> bool {
        self.restart_reason().is_some()
    }

    /// Why starting over from byte 0 can still succeed, when it can: the
    /// message without the URL and the "start over" addressed to the engine.
    pub fn restart_reason(&self) -> Option<String> {
        match self {
            HttpError::SourceChanged { detail, .. } => Some(format!("the file changed on the server ({detail})")),
            HttpError::NotResumable { offset, cause, why, .. } => Some(format!(
                "the download broke at byte {offset} ({cause}) and cannot be resumed: {why}"
            )),
            HttpError::ResumeUnproven { offset, detail, .. } => {
                Some(format!("resuming at byte {offset} is not safe: {detail}"))
            }
            _ => None,
        }
    }

    /// The `HttpError` inside an `io::Error` returned by the reader's
    /// `read`, if it is one.
    pub fn from_io(err: &io::Error) -> Option<&HttpError> {
        err.get_ref()?.downcast_ref::<HttpError>()
    }

    /// The `HttpError` anywhere in an error's chain: the ZIP walker and the
    /// install pipeline wrap the reader's `io::Error` in their own errors.
    pub fn find_in<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e HttpError> {
        let mut current = err;
        loop {
            if let Some(http) = current.downcast_ref::<HttpError>() {
                return Some(http);
            }
            // `io::Error::source` skips the error it wraps: look inside.
            current = match current.downcast_ref::<io::Error>() {
                Some(io) => io.get_ref()?,
                None => current.source()?,
            };
        }
    }
}
