//! The HTTPS source: a `Read` over a remote file that survives a flaky
//! network.
//!
//! A dedicated thread runs the transfer (TLS, retries, `Range` resume) and
//! hands the body over in chunks through a bounded queue, so the network,
//! decryption and the consumer's inflate/hash/write overlap while memory
//! stays bounded (`queue_chunks` × 256 KiB). The consumer sees one seamless
//! byte stream; it only learns about interruptions through events and
//! [`StatsHandle`], or through a typed error when the file changed and the
//! install must start over ([`HttpError::restart_from_zero`]).
//!
//! HTTP itself is reqwest (hyper, HTTP/1.1) on a single-threaded tokio
//! runtime owned by the transfer thread (see `client.rs`); what reqwest
//! does not decide for us is here and in `transfer.rs`: which plain-HTTP
//! URLs are acceptable, redirects, retries, deadlines, and resuming only
//! what a strong validator proves to be the same file.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::client::{self, ClientSpec, ProxySetting};
use super::error::HttpError;
use super::retry::RetryPolicy;
use super::tls::ExtraRoot;
use super::transfer::{self, Message};
use super::url::{self, UrlError};
use super::validator::Validator;

/// Whether plain `http://` may be used. The policy (signed bundle with an
/// enforced key, a `sha256` pin, `insecure`) is the caller's; the reason is
/// reported in a [`TransferEvent::PlainHttpAllowed`] so it gets logged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PlainHttp {
    #[default]
    Refuse,
    Allow {
        reason: String,
    },
}

/// Something the operator may want to see while a transfer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// An `http://` URL is used; `reason` is the caller's rule that allowed it.
    PlainHttpAllowed { reason: String },
    /// An attempt failed; the next one starts after `delay`.
    Retrying {
        attempt: u32,
        delay: Duration,
        cause: String,
    },
    /// The body broke off after `offset` bytes.
    Interrupted { offset: u64, cause: String },
    /// The transfer continues at `offset`; `refetch` bytes of the new
    /// response repeat what was already delivered and are dropped (0 when
    /// the server honoured the range exactly).
    Resumed { offset: u64, refetch: u64 },
}

/// One line for a console: what happened and what happens next.
impl std::fmt::Display for TransferEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferEvent::PlainHttpAllowed { reason } => write!(f, "plain http:// allowed because {reason}"),
            TransferEvent::Retrying { attempt, delay, cause } => {
                write!(
                    f,
                    "attempt {attempt} failed ({cause}); retrying in {:.1} s",
                    delay.as_secs_f64()
                )
            }
            TransferEvent::Interrupted { offset, cause } => {
                write!(f, "the transfer broke after {offset} bytes ({cause})")
            }
            TransferEvent::Resumed { offset, refetch } => {
                write!(f, "resumed at byte {offset} ({refetch} bytes fetched twice)")
            }
        }
    }
}

/// Receives [`TransferEvent`]s, on the transfer thread.
pub type EventSink = Arc<dyn Fn(&TransferEvent) + Send + Sync>;

/// How to fetch.
#[derive(Clone)]
pub struct HttpOptions {
    /// CA certificates trusted besides the built-in Mozilla roots.
    pub extra_roots: Vec<ExtraRoot>,
    pub plain_http: PlainHttp,
    /// Deadline for DNS, TCP connect, a proxy's `CONNECT` and the TLS
    /// handshake.
    pub connect_timeout: Duration,
    /// Deadline for the response head after connecting (one overall
    /// deadline: endless `1xx` answers or a trickled head cannot extend
    /// it), and for each piece of the body: a body that stalls this long
    /// counts as a broken transfer.
    pub read_timeout: Duration,
    /// The slowest body accepted, in bytes per second, averaged over each
    /// `read_timeout` spent waiting for the network: a server trickling a
    /// byte per second ends the attempt (a broken transfer, resumed after
    /// a backoff) instead of holding it for days. 0 turns the check off.
    pub min_rate: u64,
    /// How requests reach the network.
    pub proxy: ProxySetting,
    pub retry: RetryPolicy,
    pub on_event: Option<EventSink>,
    pub user_agent: String,
    /// Body batches of about 256 KiB buffered ahead of the consumer (at
    /// least 1); the default 4 bounds the read-ahead at about 1 MiB.
    pub queue_chunks: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            extra_roots: Vec::new(),
            plain_http: PlainHttp::Refuse,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            min_rate: 1024,
            proxy: ProxySetting::Environment,
            retry: RetryPolicy::default(),
            on_event: None,
            user_agent: concat!("loader/", env!("CARGO_PKG_VERSION")).to_owned(),
            queue_chunks: 4,
        }
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("plain_http", &self.plain_http)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("min_rate", &self.min_rate)
            .field("proxy", &self.proxy)
            .field("retry", &self.retry)
            .field("on_event", &self.on_event.is_some())
            .field("queue_chunks", &self.queue_chunks)
            .finish()
    }
}

/// Counters of one transfer, readable while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Bytes handed to the consumer.
    pub delivered: u64,
    /// Body bytes received from the network, including refetched ones.
    pub received: u64,
    /// Bytes received twice and dropped (0 when every resume used `Range`).
    pub refetched: u64,
    /// Times the transfer continued after the body broke off.
    pub resumes: u32,
    /// Failed attempts that were retried.
    pub retries: u32,
}

/// A live view of a transfer's [`TransferStats`].
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(pub(crate) Arc<Counters>);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) refetched: AtomicU64,
    pub(crate) resumes: AtomicU32,
    pub(crate) retries: AtomicU32,
    /// Set when the reader is dropped, so the thread stops retrying.
    pub(crate) cancelled: AtomicBool,
}

impl StatsHandle {
    pub fn snapshot(&self) -> TransferStats {
        let c = &self.0;
        TransferStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            refetched: c.refetched.load(Ordering::Relaxed),
            resumes: c.resumes.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }
}

/// A remote file as a byte stream. See the module documentation.
pub struct HttpReader {
    rx: mpsc::Receiver<Message>,
    /// What is left of the batch being read, front first.
    current: VecDeque<Bytes>,
    state: ReadState,
    stats: StatsHandle,
    validator: Validator,
    shown_url: String,
}

enum ReadState {
    Streaming,
    Finished,
    Failed(String),
}

impl HttpReader {
    /// Starts the transfer and waits for the first response head (with
    /// retries), so a missing file, an untrusted certificate or a refused
    /// `http://` fail here, before the consumer reads anything.
    pub fn open(url: &str, options: HttpOptions) -> Result<HttpReader, HttpError> {
        let parsed = url::parse(url).map_err(|e| match e {
            UrlError::Scheme(scheme) => HttpError::UnsupportedScheme {
                url: url.to_owned(),
                scheme,
            },
            UrlError::Invalid(detail) => HttpError::BadUrl {
                url: url.to_owned(),
                detail,
            },
        })?;
        let shown_url = url::redacted(&parsed);
        if parsed.scheme() == "http" {
            match &options.plain_http {
                PlainHttp::Refuse => return Err(HttpError::PlainHttpRefused { url: shown_url }),
                PlainHttp::Allow { reason } => {
                    if let Some(sink) = &options.on_event {
                        sink(&TransferEvent::PlainHttpAllowed { reason: reason.clone() });
                    }
                }
            }
        }
        let client = client::build(&ClientSpec {
            extra_roots: &options.extra_roots,
            proxy: &options.proxy,
            connect_timeout: options.connect_timeout,
            user_agent: &options.user_agent,
            resolve: None,
        })?;
        let stats = StatsHandle::default();
        let channels = transfer::spawn(parsed, client, options, &stats)?;
        let validator = channels.head.recv().map_err(|_| HttpError::ThreadGone)??;
        Ok(HttpReader {
            rx: channels.data,
            current: VecDeque::new(),
            state: ReadState::Streaming,
            stats,
            validator,
            shown_url,
        })
    }

    /// The file's total length, when the server announced it.
    pub fn length(&self) -> Option<u64> {
        self.validator.length
    }

    /// What identifies the version being downloaded.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// Live counters (bytes refetched, resumes, retries).
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The URL as shown in messages (password and query hidden).
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }
}

impl Read for HttpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match &self.state {
                ReadState::Finished => return Ok(0),
                ReadState::Failed(msg) => {
                    return Err(io::Error::other(format!("the download already failed: {msg}")));
                }
                ReadState::Streaming => {}
            }
            match self.rx.recv() {
                Ok(Message::Data(batch)) => self.current = batch.into(),
                Ok(Message::End) => self.state = ReadState::Finished,
                Ok(Message::Failed(err)) => {
                    self.state = ReadState::Failed(err.to_string());
                    return Err(io::Error::other(err));
                }
                Err(mpsc::RecvError) => {
                    self.state = ReadState::Failed(HttpError::ThreadGone.to_string());
                    return Err(io::Error::other(HttpError::ThreadGone));
                }
            }
        }
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.current.front_mut() else { break };
            let take = (buf.len() - n).min(front.len());
            buf[n..n + take].copy_from_slice(&front[..take]);
            n += take;
            if take == front.len() {
                self.current.pop_front();
            } else {
                *front = front.slice(take..);
            }
        }
        Ok(n)
    }
}

impl Drop for HttpReader {
    fn drop(&mut self) {
        self.stats.0.cancelled.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_and_odd_schemes_are_refused_before_connecting() {
        let err = HttpReader::open("http://127.0.0.1:9/x.fw", HttpOptions::default())
            .err()
            .unwrap();
        assert!(matches!(err, HttpError::PlainHttpRefused { .. }), "{err}");
        assert!(err.to_string().contains("loader.sha256="), "{err}");
        let err = HttpReader::open("ftp://example.net/x.fw", HttpOptions::default())
            .err()
            .unwrap();
        assert!(matches!(err, HttpError::UnsupportedScheme { .. }), "{err}");
        let err = HttpReader::open("not a url", HttpOptions::default()).err().unwrap();
        assert!(matches!(err, HttpError::BadUrl { .. }), "{err}");
    }
}
