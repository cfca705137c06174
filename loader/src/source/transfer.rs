//! The transfer thread: requests with retries and redirects, the body
//! pump, and resuming a broken body with `Range` from the exact byte where
//! it broke.

use std::io::{self, BufReader, Read};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use rustls::ClientConfig;

use super::connect::{self, ConnectError, Stream};
use super::error::HttpError;
use super::http::{HttpOptions, PlainHttp, StatsHandle, TransferEvent};
use super::http1::{self, Body, Head};
use super::retry::Backoff;
use super::tls;
use super::url::{HttpUrl, Scheme};
use super::validator::{judge_resume, ResumePlan, ResumeRejected, Validator};

/// Bytes read from the network per chunk handed to the reader: large, so
/// the threads trade a chunk (and wake each other) 800 times for 200 MiB.
const CHUNK: usize = 256 * 1024;
/// The response reader's buffer. Body reads bigger than this bypass it, so
/// keeping it small keeps the body from being copied twice.
const HEAD_BUFFER: usize = 16 * 1024;
const MAX_REDIRECTS: usize = 10;

/// What the transfer thread sends to the reader.
pub(crate) enum Message {
    Data(Vec<u8>),
    End,
    Failed(HttpError),
}

/// The reader's ends of the channels to the transfer thread.
pub(crate) struct Channels {
    /// The first response's validator, or the error that prevented it.
    pub(crate) head: mpsc::Receiver<Result<Validator, HttpError>>,
    /// The body in chunks (at most `queue_chunks` × 256 KiB buffered).
    pub(crate) data: mpsc::Receiver<Message>,
    /// Consumed chunks go back for reuse: allocating a buffer per
    /// chunk made musl's allocator mmap and munmap each one.
    pub(crate) recycle: mpsc::Sender<Vec<u8>>,
}

/// Starts the transfer thread.
pub(crate) fn spawn(
    url: HttpUrl,
    tls: Arc<ClientConfig>,
    options: HttpOptions,
    stats: &StatsHandle,
) -> Result<Channels, HttpError> {
    let (head_tx, head_rx) = mpsc::channel();
    let (data_tx, data_rx) = mpsc::sync_channel(options.queue_chunks.max(1));
    let (recycle_tx, recycle_rx) = mpsc::channel();
    let transfer = Transfer {
        spare: recycle_rx,
        shown_url: url.redacted(),
        url,
        tls,
        backoff: Backoff::new(options.retry.clone()),
        options,
        stats: stats.clone(),
    };
    thread::Builder::new()
        .name("https-fetch".into())
        .spawn(move || transfer.run(head_tx, data_tx))
        .map_err(HttpError::Thread)?;
    Ok(Channels {
        head: head_rx,
        data: data_rx,
        recycle: recycle_tx,
    })
}

struct Transfer {
    spare: mpsc::Receiver<Vec<u8>>,
    url: HttpUrl,
    shown_url: String,
    tls: Arc<ClientConfig>,
    options: HttpOptions,
    stats: StatsHandle,
    backoff: Backoff,
}

/// A response whose body has not been read yet.
struct Response {
    head: Head,
    body: Body<BufReader<Stream>>,
}

/// How one response's body ended.
enum BodyEnd {
    Complete,
    ConsumerGone,
    /// The body broke off; `progressed` says whether it delivered new bytes.
    Broken {
        cause: String,
        progressed: bool,
    },
}

/// A failed attempt: retried unless fatal.
enum Failure {
    Transient {
        cause: String,
        retry_after: Option<Duration>,
    },
    Fatal(HttpError),
}

impl Transfer {
    fn run(mut self, head_tx: mpsc::Sender<Result<Validator, HttpError>>, data_tx: mpsc::SyncSender<Message>) {
        let first = match self.request(None) {
            Ok(response) => response,
            Err(e) => {
                let _ = head_tx.send(Err(e));
                return;
            }
        };
        let validator = Validator::from_head(&first.head, first.head.content_length());
        if head_tx.send(Ok(validator.clone())).is_err() {
            return;
        }
        let last = match self.stream(first, &validator, &data_tx) {
            Ok(()) => Message::End,
            Err(e) => Message::Failed(e),
        };
        let _ = data_tx.send(last);
    }

    /// Pumps bodies to the consumer until the file is complete, resuming
    /// after every break.
    fn stream(
        &mut self,
        mut response: Response,
        validator: &Validator,
        tx: &mpsc::SyncSender<Message>,
    ) -> Result<(), HttpError> {
        let mut skip = 0u64;
        loop {
            let (cause, progressed) = match self.pump(&mut response, skip, validator, tx)? {
                BodyEnd::Complete | BodyEnd::ConsumerGone => return Ok(()),
                BodyEnd::Broken { cause, progressed } => (cause, progressed),
            };
            let offset = self.delivered();
            self.emit(TransferEvent::Interrupted {
                offset,
                cause: cause.clone(),
            });
            if !validator.can_resume() {
                return Err(HttpError::NotResumable {
                    url: self.shown_url.clone(),
                    offset,
                    cause,
                });
            }
            if !progressed {
                // A server that answers and then breaks off at once must
                // not cause a tight loop: count it as a failed attempt.
                self.wait_before_retry(&cause, None)?;
            }
            let resumed = self.request(Some((offset, validator.if_range())))?;
            let plan = judge_resume(validator, offset, &resumed.head).map_err(|rejected| match rejected {
                ResumeRejected::Changed(detail) => HttpError::SourceChanged {
                    url: self.shown_url.clone(),
                    detail,
                },
                ResumeRejected::Protocol(detail) => HttpError::Protocol {
                    url: self.shown_url.clone(),
                    detail,
                },
            })?;
            skip = match plan {
                ResumePlan::Continue { skip } | ResumePlan::FromStart { skip } => skip,
            };
            self.stats.0.resumes.fetch_add(1, Ordering::Relaxed);
            self.emit(TransferEvent::Resumed { offset, refetch: skip });
            response = resumed;
        }
    }

    /// Moves one response's body to the consumer, dropping the first `skip`
    /// bytes (already delivered earlier).
    fn pump(
        &mut self,
        response: &mut Response,
        mut skip: u64,
        validator: &Validator,
        tx: &mpsc::SyncSender<Message>,
    ) -> Result<BodyEnd, HttpError> {
        let mut progressed = false;
        loop {
            // Whole chunks in recycled buffers: fewer, larger hand-overs to
            // the reader thread and no allocation per chunk.
            let mut chunk = self.spare.try_recv().unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let (n, end) = fill(&mut response.body, &mut chunk);
            chunk.truncate(n);
            let counters = &self.stats.0;
            counters.received.fetch_add(n as u64, Ordering::Relaxed);
            // `dropped` ≤ n, so it fits in usize.
            let dropped = skip.min(n as u64) as usize;
            skip -= dropped as u64;
            counters.refetched.fetch_add(dropped as u64, Ordering::Relaxed);
            chunk.drain(..dropped);
            if !chunk.is_empty() {
                let delivered = self.delivered() + chunk.len() as u64;
                if let Some(length) = validator.length.filter(|&l| delivered > l) {
                    return Err(HttpError::TooLong {
                        url: self.shown_url.clone(),
                        length,
                    });
                }
                counters.delivered.store(delivered, Ordering::Relaxed);
                self.backoff.progressed();
                progressed = true;
                if tx.send(Message::Data(chunk)).is_err() {
                    return Ok(BodyEnd::ConsumerGone);
                }
            }
            match end {
                None => {}
                Some(Ok(())) => {
                    let delivered = self.delivered();
                    return Ok(match validator.length {
                        Some(length) if delivered < length => BodyEnd::Broken {
                            cause: format!("connection closed at byte {delivered} of {length}"),
                            progressed,
                        },
                        _ => BodyEnd::Complete,
                    });
                }
                Some(Err(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    let cause = format!("no data for {}s", self.options.read_timeout.as_secs_f32());
                    return Ok(BodyEnd::Broken { cause, progressed });
                }
                Some(Err(e)) => {
                    return Ok(BodyEnd::Broken {
                        cause: e.to_string(),
                        progressed,
                    })
                }
            }
        }
    }

    /// Sends the request (a range from `from`, with `If-Range`), following
    /// redirects, until an answer worth judging arrives; backs off between
    /// failures.
    fn request(&mut self, range: Option<(u64, Option<&str>)>) -> Result<Response, HttpError> {
        let mut url = self.url.clone();
        let mut redirects = 0;
        loop {
            if self.stats.0.cancelled.load(Ordering::Relaxed) {
                return Err(HttpError::ThreadGone);
            }
            let failure = match self.attempt(&url, range) {
                Err(failure) => failure,
                Ok(response) => {
                    let status = response.head.status;
                    let acceptable = match range {
                        None => status == 200,
                        Some(_) => matches!(status, 200 | 206 | 416),
                    };
                    if acceptable {
                        return Ok(response);
                    }
                    if matches!(status, 301 | 302 | 303 | 307 | 308) {
                        url = self.follow(&url, &response.head, &mut redirects)?;
                        continue;
                    }
                    if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
                        Failure::Transient {
                            cause: format!("the server answered {}", response.head.status_text()),
                            retry_after: retry_after(&response.head),
                        }
                    } else {
                        Failure::Fatal(HttpError::Status {
                            url: self.shown_url.clone(),
                            status: response.head.status_text(),
                        })
                    }
                }
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Transient { cause, retry_after } => self.wait_before_retry(&cause, retry_after)?,
            }
        }
    }

    /// One connection, one request, the response head.
    fn attempt(&self, url: &HttpUrl, range: Option<(u64, Option<&str>)>) -> Result<Response, Failure> {
        let options = &self.options;
        let stream =
            connect::connect(url, &self.tls, options.connect_timeout, options.read_timeout).map_err(|e| match e {
                ConnectError::Transient(cause) => Failure::Transient {
                    cause,
                    retry_after: None,
                },
                ConnectError::Tls(err) => self.classify_tls(url, &err),
            })?;
        let mut extra = Vec::new();
        if let Some((from, if_range)) = range {
            extra.push(("Range", format!("bytes={from}-")));
            if let Some(value) = if_range {
                extra.push(("If-Range", value.to_owned()));
            }
        }
        let mut reader = BufReader::with_capacity(HEAD_BUFFER, stream);
        let transient = |what: &str, e: io::Error| Failure::Transient {
            cause: format!("{what}: {e}"),
            retry_after: None,
        };
        http1::write_request(reader.get_mut(), url, &options.user_agent, &extra)
            .map_err(|e| transient("sending the request", e))?;
        let head = http1::read_head(&mut reader).map_err(|e| transient("reading the response", e))?;
        let body = Body::new(&head, reader);
        Ok(Response { head, body })
    }

    /// The next URL of a redirect, if allowed.
    fn follow(&self, from: &HttpUrl, head: &Head, redirects: &mut usize) -> Result<HttpUrl, HttpError> {
        let protocol = |detail: String| HttpError::Protocol {
            url: self.shown_url.clone(),
            detail,
        };
        *redirects += 1;
        if *redirects > MAX_REDIRECTS {
            return Err(protocol(format!("more than {MAX_REDIRECTS} redirects")));
        }
        let location = head
            .header("location")
            .ok_or_else(|| protocol(format!("{} without a Location", head.status_text())))?;
        let next = from
            .join(location)
            .map_err(|e| protocol(format!("redirect to an unusable URL `{location}`: {e:?}")))?;
        if next.scheme == Scheme::Http && self.options.plain_http == PlainHttp::Refuse {
            return Err(HttpError::RedirectToPlainHttp {
                url: self.shown_url.clone(),
                target: next.redacted(),
            });
        }
        Ok(next)
    }

    /// Counts a failure and sleeps the backoff, or gives up.
    fn wait_before_retry(&mut self, cause: &str, retry_after: Option<Duration>) -> Result<(), HttpError> {
        let Some(delay) = self.backoff.next_wait(retry_after) else {
            return Err(HttpError::GaveUp {
                url: self.shown_url.clone(),
                attempts: self.backoff.failures(),
                stalled: self.backoff.stalled_for(),
                last: cause.to_owned(),
            });
        };
        self.stats.0.retries.fetch_add(1, Ordering::Relaxed);
        self.emit(TransferEvent::Retrying {
            attempt: self.backoff.failures(),
            delay,
            cause: cause.to_owned(),
        });
        thread::sleep(delay);
        Ok(())
    }

    /// A handshake failure: permanent ones (trust, name, clock) are fatal
    /// with an explanation, others are retried.
    fn classify_tls(&self, url: &HttpUrl, err: &io::Error) -> Failure {
        match tls::find_tls_error(err) {
            Some(tls_err) if tls::is_permanent(tls_err) => Failure::Fatal(HttpError::Tls {
                url: self.shown_url.clone(),
                message: tls::explain(tls_err, &url.host.to_string()),
            }),
            _ => Failure::Transient {
                cause: format!("TLS handshake: {err}"),
                retry_after: None,
            },
        }
    }

    fn delivered(&self) -> u64 {
        self.stats.0.delivered.load(Ordering::Relaxed)
    }

    fn emit(&self, event: TransferEvent) {
        if let Some(sink) = &self.options.on_event {
            sink(&event);
        }
    }
}

/// Reads until `buf` is full (`None`), the body ends (`Some(Ok)`) or an
/// error; returns how much was read either way.
fn fill(body: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Result<()>>) {
    let mut filled = 0;
    while filled < buf.len() {
        match body.read(&mut buf[filled..]) {
            Ok(0) => return (filled, Some(Ok(()))),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(Err(e))),
        }
    }
    (filled, None)
}

/// `Retry-After` in its seconds form (the date form is ignored).
fn retry_after(head: &Head) -> Option<Duration> {
    head.header("retry-after")?.trim().parse().ok().map(Duration::from_secs)
}
