//! The transfer thread: requests with retries and redirects, the body
//! pump, and resuming a broken body with `Range` from the exact byte where
//! it broke. It runs the async reqwest client on a single-threaded tokio
//! runtime of its own and hands the body to the reader in batches of
//! reqwest's own buffers (no copy) through a bounded queue, so TLS and the
//! consumer's inflate/hash/write run on two cores.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, IF_RANGE, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};

use super::client::{self, RequestFailure};
use super::error::HttpError;
use super::http::{HttpOptions, PlainHttp, StatsHandle, TransferEvent};
use super::retry::Backoff;
use super::url::redacted;
use super::validator::{judge_resume, ResumePlan, ResumeRejected, Validator};

/// Bytes handed to the reader per batch: large, so the threads trade a
/// batch (and wake each other) 800 times for 200 MiB.
const CHUNK: usize = 256 * 1024;
const MAX_REDIRECTS: usize = 10;

/// What the transfer thread sends to the reader.
pub(crate) enum Message {
    /// Body pieces as reqwest returned them, about [`CHUNK`] bytes in all.
    Data(Vec<Bytes>),
    End,
    Failed(HttpError),
}

/// The reader's ends of the channels to the transfer thread.
pub(crate) struct Channels {
    /// The first response's validator, or the error that prevented it.
    pub(crate) head: mpsc::Receiver<Result<Validator, HttpError>>,
    /// The body in batches (at most `queue_chunks` × 256 KiB buffered).
    pub(crate) data: mpsc::Receiver<Message>,
}

/// Starts the transfer thread.
pub(crate) fn spawn(
    url: Url,
    client: reqwest::Client,
    options: HttpOptions,
    stats: &StatsHandle,
) -> Result<Channels, HttpError> {
    let (head_tx, head_rx) = mpsc::channel();
    let (data_tx, data_rx) = mpsc::sync_channel(options.queue_chunks.max(1));
    // The diagnostics of this transfer, inside the caller's boot step.
    let span = tracing::info_span!("http", url = %redacted(&url));
    let transfer = Transfer {
        shown_url: redacted(&url),
        url,
        client,
        backoff: Backoff::new(options.retry.clone()),
        options,
        stats: stats.clone(),
    };
    thread::Builder::new()
        .name("https-fetch".into())
        .spawn(move || match client::runtime() {
            Ok(runtime) => {
                let _span = span.entered();
                runtime.block_on(transfer.run(head_tx, data_tx));
                // A DNS lookup stuck in the resolver must not keep this
                // thread alive after the transfer ended.
                runtime.shutdown_background();
            }
            Err(e) => {
                let _ = head_tx.send(Err(e));
            }
        })
        .map_err(HttpError::Thread)?;
    Ok(Channels {
        head: head_rx,
        data: data_rx,
    })
}

struct Transfer {
    url: Url,
    shown_url: String,
    client: reqwest::Client,
    options: HttpOptions,
    stats: StatsHandle,
    backoff: Backoff,
}

/// How one response's body ended.
enum BodyEnd {
    Complete,
    ConsumerGone,
    /// The body broke off; `progressed` says whether it delivered new
    /// bytes, `slow` that it was cut for being slower than `min_rate`.
    Broken {
        cause: String,
        progressed: bool,
        slow: bool,
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
    async fn run(mut self, head_tx: mpsc::Sender<Result<Validator, HttpError>>, data_tx: mpsc::SyncSender<Message>) {
        let first = match self.request(None).await {
            Ok(response) => response,
            Err(e) => {
                let _ = head_tx.send(Err(e));
                return;
            }
        };
        let validator = Validator::from_headers(first.headers(), first.content_length());
        if head_tx.send(Ok(validator.clone())).is_err() {
            return;
        }
        let last = match self.stream(first, &validator, &data_tx).await {
            Ok(()) => Message::End,
            Err(e) => Message::Failed(e),
        };
        let _ = data_tx.send(last);
    }

    /// Pumps bodies to the consumer until the file is complete, resuming
    /// after every break.
    async fn stream(
        &mut self,
        mut response: Response,
        validator: &Validator,
        tx: &mpsc::SyncSender<Message>,
    ) -> Result<(), HttpError> {
        let mut skip = 0u64;
        loop {
            let (cause, progressed, slow) = match self.pump(&mut response, skip, validator, tx).await? {
                BodyEnd::Complete | BodyEnd::ConsumerGone => return Ok(()),
                BodyEnd::Broken {
                    cause,
                    progressed,
                    slow,
                } => (cause, progressed, slow),
            };
            let offset = self.delivered();
            tracing::info!(offset, cause, slow, "the body broke off");
            self.emit(TransferEvent::Interrupted {
                offset,
                cause: cause.clone(),
            });
            let Some(if_range) = validator.if_range() else {
                return Err(HttpError::NotResumable {
                    url: self.shown_url.clone(),
                    offset,
                    cause,
                    why: validator.why_not_resumable(),
                });
            };
            if slow || !progressed {
                // A server that answers and then breaks off at once, or
                // trickles, must not cause a tight loop: count it as a
                // failed attempt.
                self.wait_before_retry(&cause, None).await?;
            }
            let resumed = self.request(Some((offset, if_range))).await?;
            let plan = judge_resume(validator, offset, resumed.status(), resumed.headers()).map_err(|rejected| {
                let url = self.shown_url.clone();
                match rejected {
                    ResumeRejected::Changed(detail) => HttpError::SourceChanged { url, detail },
                    ResumeRejected::Unproven(detail) => HttpError::ResumeUnproven { url, offset, detail },
                    ResumeRejected::Protocol(detail) => HttpError::Protocol { url, detail },
                }
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
    async fn pump(
        &mut self,
        response: &mut Response,
        mut skip: u64,
        validator: &Validator,
        tx: &mpsc::SyncSender<Message>,
    ) -> Result<BodyEnd, HttpError> {
        let mut progressed = false;
        let mut rate = RateWindow::new(self.options.min_rate, self.options.read_timeout);
        // Batches of about CHUNK bytes: fewer, larger hand-overs to the
        // reader thread, and reqwest's buffers move without a copy.
        let mut chunk = Vec::new();
        let mut chunk_len = 0usize;
        loop {
            let waiting = Instant::now();
            let next = tokio::time::timeout(self.options.read_timeout, response.chunk()).await;
            let (frame, mut end) = match next {
                Ok(Ok(Some(bytes))) => (Some(bytes), None),
                Ok(Ok(None)) => (None, Some(Ok(()))),
                Ok(Err(e)) => (None, Some(Err((client::chain(&e.without_url()), false)))),
                Err(_) => {
                    let cause = format!("no data for {}s", self.options.read_timeout.as_secs_f32());
                    (None, Some(Err((cause, false))))
                }
            };
            if let Some(bytes) = frame {
                let n = bytes.len() as u64;
                self.stats.0.received.fetch_add(n, Ordering::Relaxed);
                // `dropped` ≤ the frame's length, so it fits in usize.
                let dropped = skip.min(n) as usize;
                skip -= dropped as u64;
                self.stats.0.refetched.fetch_add(dropped as u64, Ordering::Relaxed);
                if dropped < bytes.len() {
                    chunk_len += bytes.len() - dropped;
                    chunk.push(bytes.slice(dropped..));
                }
                if let Some(cause) = rate.after(n, waiting.elapsed()) {
                    end = Some(Err((cause, true)));
                }
            }
            let complete = matches!(end, Some(Ok(())));
            if chunk_len >= CHUNK || (end.is_some() && chunk_len > 0) {
                let delivered = self.delivered() + chunk_len as u64;
                if let Some(length) = validator.length.filter(|&l| delivered > l) {
                    return Err(HttpError::TooLong {
                        url: self.shown_url.clone(),
                        length,
                    });
                }
                self.stats.0.delivered.store(delivered, Ordering::Relaxed);
                // Progress for the retry budget is a whole chunk (or the
                // end): a trickle that delivers a few bytes per attempt
                // does not keep the transfer alive forever.
                if chunk_len >= CHUNK || complete {
                    self.backoff.progressed();
                }
                progressed = true;
                chunk_len = 0;
                if tx.send(Message::Data(std::mem::take(&mut chunk))).is_err() {
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
                            slow: false,
                        },
                        _ => BodyEnd::Complete,
                    });
                }
                Some(Err((cause, slow))) => {
                    return Ok(BodyEnd::Broken {
                        cause,
                        progressed,
                        slow,
                    })
                }
            }
        }
    }

    /// Sends the request (a range from `from`, with `If-Range`), following
    /// redirects, until an answer worth judging arrives; backs off between
    /// failures.
    async fn request(&mut self, range: Option<(u64, &str)>) -> Result<Response, HttpError> {
        let mut url = self.url.clone();
        let mut redirects = 0;
        loop {
            if self.stats.0.cancelled.load(Ordering::Relaxed) {
                return Err(HttpError::ThreadGone);
            }
            let failure = match self.attempt(&url, range).await {
                Err(failure) => failure,
                Ok(response) => {
                    let status = response.status();
                    tracing::info!(
                        url = %redacted(&url),
                        from = range.map(|(from, _)| from),
                        %status,
                        length = response.content_length(),
                        "answer"
                    );
                    let acceptable = match range {
                        None => status == StatusCode::OK,
                        Some(_) => matches!(status.as_u16(), 200 | 206 | 416),
                    };
                    if acceptable {
                        return Ok(response);
                    }
                    if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                        url = self.follow(&url, status, response.headers(), &mut redirects)?;
                        continue;
                    }
                    if matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504) {
                        Failure::Transient {
                            cause: format!("the server answered {status}"),
                            retry_after: retry_after(response.headers()),
                        }
                    } else {
                        Failure::Fatal(HttpError::Status {
                            url: self.shown_url.clone(),
                            status: status.to_string(),
                        })
                    }
                }
            };
            match failure {
                Failure::Fatal(e) => {
                    tracing::debug!(error = %e, "giving up");
                    return Err(e);
                }
                Failure::Transient { cause, retry_after } => self.wait_before_retry(&cause, retry_after).await?,
            }
        }
    }

    /// One request and its response head, within one overall deadline.
    async fn attempt(&self, url: &Url, range: Option<(u64, &str)>) -> Result<Response, Failure> {
        let options = &self.options;
        let mut request = self.client.get(url.clone());
        if let Some((from, if_range)) = range {
            request = request
                .header(RANGE, format!("bytes={from}-"))
                .header(IF_RANGE, if_range);
        }
        let deadline = options.connect_timeout + options.read_timeout;
        tracing::debug!(url = %redacted(url), from = range.map(|(from, _)| from), "request");
        match tokio::time::timeout(deadline, request.send()).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(match client::classify(e, url.host_str().unwrap_or_default()) {
                RequestFailure::Transient(cause) => Failure::Transient {
                    cause,
                    retry_after: None,
                },
                RequestFailure::Tls(message) => Failure::Fatal(HttpError::Tls {
                    url: self.shown_url.clone(),
                    message,
                }),
            }),
            Err(_) => Err(Failure::Transient {
                cause: format!("no response within {}s", deadline.as_secs_f32()),
                retry_after: None,
            }),
        }
    }

    /// The next URL of a redirect, if allowed: never from https:// to
    /// http://, and to http:// only when plain HTTP is allowed at all.
    fn follow(
        &self,
        from: &Url,
        status: StatusCode,
        headers: &HeaderMap,
        redirects: &mut usize,
    ) -> Result<Url, HttpError> {
        let protocol = |detail: String| HttpError::Protocol {
            url: self.shown_url.clone(),
            detail,
        };
        *redirects += 1;
        if *redirects > MAX_REDIRECTS {
            return Err(protocol(format!("more than {MAX_REDIRECTS} redirects")));
        }
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| protocol(format!("{status} without a Location")))?;
        let mut next = from
            .join(location)
            .map_err(|e| protocol(format!("redirect to an unusable URL `{location}`: {e}")))?;
        match next.scheme() {
            "https" => {}
            "http" if from.scheme() == "http" && self.options.plain_http != PlainHttp::Refuse => {}
            "http" => {
                return Err(HttpError::RedirectToPlainHttp {
                    url: self.shown_url.clone(),
                    target: redacted(&next),
                })
            }
            other => return Err(protocol(format!("redirect to an unsupported scheme `{other}`"))),
        }
        tracing::debug!(%status, to = %redacted(&next), "redirect");
        if next.origin() != from.origin() {
            // Credentials are for the host they were given for.
            let _ = next.set_username("");
            let _ = next.set_password(None);
        }
        Ok(next)
    }

    /// Counts a failure and sleeps the backoff, or gives up.
    async fn wait_before_retry(&mut self, cause: &str, retry_after: Option<Duration>) -> Result<(), HttpError> {
        let Some(delay) = self.backoff.next_wait(retry_after) else {
            return Err(HttpError::GaveUp {
                url: self.shown_url.clone(),
                attempts: self.backoff.failures(),
                stalled: self.backoff.stalled_for(),
                last: cause.to_owned(),
            });
        };
        self.stats.0.retries.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            cause,
            attempt = self.backoff.failures(),
            delay_ms = delay.as_millis() as u64,
            "retrying"
        );
        self.emit(TransferEvent::Retrying {
            attempt: self.backoff.failures(),
            delay,
            cause: cause.to_owned(),
        });
        tokio::time::sleep(delay).await;
        Ok(())
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

/// The minimum-rate check: bytes received against the time spent waiting
/// for the network (time blocked on a slow consumer does not count), judged
/// once per window.
struct RateWindow {
    min_rate: u64,
    window: Duration,
    waited: Duration,
    bytes: u64,
}

impl RateWindow {
    fn new(min_rate: u64, window: Duration) -> Self {
        RateWindow {
            min_rate,
            window,
            waited: Duration::ZERO,
            bytes: 0,
        }
    }

    /// Records `bytes` that took `waited` to arrive; the cause when the
    /// window closed below the minimum rate.
    fn after(&mut self, bytes: u64, waited: Duration) -> Option<String> {
        self.bytes += bytes;
        self.waited += waited;
        if self.min_rate == 0 || self.waited < self.window {
            return None;
        }
        let rate = self.bytes as f64 / self.waited.as_secs_f64();
        let slow = rate < self.min_rate as f64;
        let cause = format!(
            "slower than {} bytes/s ({:.0} bytes/s over {:.1}s)",
            self.min_rate,
            rate,
            self.waited.as_secs_f64()
        );
        *self = RateWindow::new(self.min_rate, self.window);
        slow.then_some(cause)
    }
}

/// `Retry-After` in its seconds form (the date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_window_judges_network_time_only() {
        let second = Duration::from_secs(1);
        let mut window = RateWindow::new(1000, 2 * second);
        assert_eq!(window.after(10, second), None, "the window is not over yet");
        let cause = window.after(10, second).expect("20 bytes in 2 s is too slow");
        assert!(cause.starts_with("slower than 1000 bytes/s (10 bytes/s"), "{cause}");
        assert_eq!(window.after(5000, 2 * second), None, "a fresh window");
        assert_eq!(RateWindow::new(0, second).after(1, 10 * second), None, "0 turns it off");
    }
}
