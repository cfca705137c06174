//! The transfer thread: requests with retries, the body pump, and resuming
//! a broken body with `Range` from the exact byte where it broke.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use reqwest::header::{HeaderMap, IF_RANGE, RANGE, RETRY_AFTER};
use reqwest::{Response, Url};

use super::error::HttpError;
use super::http::{HttpOptions, StatsHandle, TransferEvent};
use super::retry::Backoff;
use super::tls;
use super::validator::{judge_resume, ResumePlan, ResumeRejected, Validator};

/// What the transfer thread sends to the reader.
pub(crate) enum Message {
    Data(Bytes),
    End,
    Failed(HttpError),
}

/// The redirect policy's error for a redirect to `http://`.
#[derive(Debug, thiserror::Error)]
#[error("redirect to plain http:// ({0})")]
pub(crate) struct PlainRedirect(pub(crate) String);

type HeadReceiver = mpsc::Receiver<Result<Validator, HttpError>>;

/// Starts the transfer thread. The first receiver yields the first
/// response's validator (or the error that prevented it), the second the
/// body.
pub(crate) fn spawn(
    client: reqwest::Client,
    url: Url,
    shown_url: String,
    options: HttpOptions,
    stats: &StatsHandle,
) -> Result<(HeadReceiver, mpsc::Receiver<Message>), HttpError> {
    let (head_tx, head_rx) = mpsc::channel();
    let (data_tx, data_rx) = mpsc::sync_channel(options.queue_chunks.max(1));
    let transfer = Transfer {
        client,
        url,
        backoff: Backoff::new(options.retry.clone()),
        shown_url,
        options,
        stats: stats.clone(),
    };
    std::thread::Builder::new()
        .name("https-fetch".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(transfer.run(head_tx, data_tx)),
                Err(e) => {
                    let _ = head_tx.send(Err(HttpError::ClientSetup(format!(
                        "starting the network runtime: {e}"
                    ))));
                }
            }
        })
        .map_err(HttpError::Thread)?;
    Ok((head_rx, data_rx))
}

struct Transfer {
    client: reqwest::Client,
    url: Url,
    shown_url: String,
    options: HttpOptions,
    stats: StatsHandle,
    backoff: Backoff,
}

/// How one response's body ended.
enum BodyEnd {
    /// All bytes delivered.
    Complete,
    /// The reader was dropped.
    ConsumerGone,
    /// The body broke off; `progressed` says whether it delivered new bytes.
    Broken { cause: String, progressed: bool },
}

/// A failed attempt: retried unless `fatal`.
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
            let (cause, progressed) = match self.pump(&mut response, skip, validator, tx).await? {
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
                // A server that answers and then breaks off immediately must
                // not cause a tight loop: treat it like a failed attempt.
                self.wait_before_retry(&cause, None).await?;
            }
            let resumed = self.request(Some((offset, validator.if_range()))).await?;
            let plan = judge_resume(
                validator,
                offset,
                resumed.status().as_u16(),
                resumed.headers(),
                resumed.content_length(),
            )
            .map_err(|rejected| match rejected {
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
    async fn pump(
        &mut self,
        response: &mut Response,
        mut skip: u64,
        validator: &Validator,
        tx: &mpsc::SyncSender<Message>,
    ) -> Result<BodyEnd, HttpError> {
        let counters = &self.stats.0;
        let mut progressed = false;
        loop {
            let chunk = match tokio::time::timeout(self.options.read_timeout, response.chunk()).await {
                Err(_) => {
                    let cause = format!("no data for {:?}", self.options.read_timeout);
                    return Ok(BodyEnd::Broken { cause, progressed });
                }
                Ok(Err(e)) => {
                    let cause = describe(&e);
                    return Ok(BodyEnd::Broken { cause, progressed });
                }
                Ok(Ok(None)) => {
                    let delivered = self.delivered();
                    return Ok(match validator.length {
                        Some(length) if delivered < length => BodyEnd::Broken {
                            cause: format!("connection closed at byte {delivered} of {length}"),
                            progressed,
                        },
                        _ => BodyEnd::Complete,
                    });
                }
                Ok(Ok(Some(chunk))) => chunk,
            };
            let mut chunk = chunk;
            counters.received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if skip > 0 {
                let dropped = skip.min(chunk.len() as u64);
                // `dropped` ≤ chunk.len(), so it fits in usize.
                chunk.advance(dropped as usize);
                skip -= dropped;
                counters.refetched.fetch_add(dropped, Ordering::Relaxed);
            }
            if chunk.is_empty() {
                continue;
            }
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
    }

    /// Sends the request (a range from `from`, with `If-Range`) until an
    /// answer worth judging arrives, backing off between failures.
    async fn request(&mut self, range: Option<(u64, Option<&str>)>) -> Result<Response, HttpError> {
        let deadline = self.options.connect_timeout + self.options.read_timeout;
        loop {
            if self.stats.0.cancelled.load(Ordering::Relaxed) {
                return Err(HttpError::ThreadGone);
            }
            let mut request = self.client.get(self.url.clone());
            if let Some((from, if_range)) = range {
                request = request.header(RANGE, format!("bytes={from}-"));
                if let Some(value) = if_range {
                    request = request.header(IF_RANGE, value);
                }
            }
            let failure = match tokio::time::timeout(deadline, request.send()).await {
                Err(_) => Failure::Transient {
                    cause: format!("no response within {deadline:?}"),
                    retry_after: None,
                },
                Ok(Err(e)) => self.classify(&e),
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let acceptable = match range {
                        None => status == 200,
                        Some(_) => matches!(status, 200 | 206 | 416),
                    };
                    if acceptable {
                        return Ok(response);
                    }
                    if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) {
                        Failure::Transient {
                            cause: format!("the server answered {}", response.status()),
                            retry_after: retry_after(response.headers()),
                        }
                    } else {
                        Failure::Fatal(HttpError::Status {
                            url: self.shown_url.clone(),
                            status: response.status().to_string(),
                        })
                    }
                }
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Transient { cause, retry_after } => {
                    self.wait_before_retry(&cause, retry_after).await?;
                }
            }
        }
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
        self.emit(TransferEvent::Retrying {
            attempt: self.backoff.failures(),
            delay,
            cause: cause.to_owned(),
        });
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Sorts a request error into retryable or not.
    fn classify(&self, err: &reqwest::Error) -> Failure {
        if let Some(tls_err) = tls::find_tls_error(err).filter(|t| tls::is_permanent(t)) {
            let host = self.url.host_str().unwrap_or("the server");
            return Failure::Fatal(HttpError::Tls {
                url: self.shown_url.clone(),
                message: tls::explain(tls_err, host),
            });
        }
        if let Some(PlainRedirect(target)) = find_in_chain::<PlainRedirect>(err) {
            return Failure::Fatal(HttpError::RedirectToPlainHttp {
                url: self.shown_url.clone(),
                target: target.clone(),
            });
        }
        if err.is_redirect() || err.is_builder() {
            return Failure::Fatal(HttpError::Protocol {
                url: self.shown_url.clone(),
                detail: describe(err),
            });
        }
        Failure::Transient {
            cause: describe(err),
            retry_after: None,
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

/// `Retry-After` in its seconds form (the date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse().ok().map(Duration::from_secs)
}

fn find_in_chain<'a, T: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The cause of a request error without reqwest's "error sending request
/// for url (…)" wrapper: the innermost messages, joined.
fn describe(err: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut current = std::error::Error::source(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}
