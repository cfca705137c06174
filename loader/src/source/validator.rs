//! Proving that a resumed transfer continues the same file.
//!
//! When a download breaks at byte N, the next request asks for `bytes=N-`
//! with `If-Range` carrying the first response's *strong* validator: a
//! strong `ETag`, or a `Last-Modified` date at least one second older than
//! that response's `Date` (RFC 9110 §8.8.2.2: a file modified within the
//! second it was served may change again under the same date). A weak
//! `ETag` (`W/"…"`) only says "equivalent", not "byte-identical", so it
//! proves nothing for splicing bytes. Without a strong validator the
//! transfer cannot be resumed and the engine starts over from byte 0.
//!
//! The answer is only used if it carries the same strong validator (and
//! the same length); anything else is reported as a changed or unproven
//! source so the engine restarts from zero. Bytes from two versions are
//! never spliced together.

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_RANGE, DATE, ETAG, LAST_MODIFIED};
use reqwest::StatusCode;

/// What identifies one version of the remote file, taken from the first
/// response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validator {
    /// The `ETag` header, verbatim (`"abc"` or `W/"abc"`).
    pub etag: Option<String>,
    /// The `Last-Modified` header, verbatim.
    pub last_modified: Option<String>,
    /// The `Date` header, verbatim: it decides whether `Last-Modified` is
    /// strong.
    pub date: Option<String>,
    /// The full length of the file, when the server said.
    pub length: Option<u64>,
}

/// The strong validator a resume is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strong<'a> {
    ETag(&'a str),
    LastModified(&'a str),
}

impl Validator {
    pub(crate) fn from_headers(headers: &HeaderMap, length: Option<u64>) -> Self {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Validator {
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
            date: text(DATE),
            length,
        }
    }

    fn strong(&self) -> Option<Strong<'_>> {
        if let Some(tag) = self.etag.as_deref().filter(|t| !t.starts_with("W/")) {
            return Some(Strong::ETag(tag));
        }
        let modified = httpdate::parse_http_date(self.last_modified.as_deref()?).ok()?;
        let date = httpdate::parse_http_date(self.date.as_deref()?).ok()?;
        let strong = date.duration_since(modified).is_ok_and(|d| d >= Duration::from_secs(1));
        strong.then_some(Strong::LastModified(self.last_modified.as_deref()?))
    }

    /// Whether a broken transfer can be resumed: the first response carried
    /// a strong validator.
    pub fn can_resume(&self) -> bool {
        self.strong().is_some()
    }

    /// The `If-Range` value: the strong `ETag`, else a strong
    /// `Last-Modified` date.
    pub(crate) fn if_range(&self) -> Option<&str> {
        match self.strong()? {
            Strong::ETag(v) | Strong::LastModified(v) => Some(v),
        }
    }

    /// Why the transfer cannot be resumed, for the restart's reason.
    pub(crate) fn why_not_resumable(&self) -> String {
        match (&self.etag, &self.last_modified) {
            (None, None) => "the server sends neither ETag nor Last-Modified".into(),
            (Some(tag), None) => format!("the server's only validator is a weak ETag ({tag})"),
            (etag, Some(modified)) => {
                let etag = etag
                    .as_deref()
                    .map(|t| format!("a weak ETag ({t}) and "))
                    .unwrap_or_default();
                match &self.date {
                    Some(date) => format!(
                        "the server sends {etag}Last-Modified {modified}, not a second older than its Date {date}"
                    ),
                    None => format!("the server sends {etag}Last-Modified {modified} without a Date to judge it by"),
                }
            }
        }
    }
}

/// How to continue after the server answered a resume request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumePlan {
    /// `206`: the body continues the file; drop `skip` leading bytes that
    /// were already delivered (0 when the server honoured the exact offset).
    Continue { skip: u64 },
    /// `200` with the same strong validator: the server ignores ranges and
    /// sent the whole file again; drop the `skip` bytes already delivered.
    FromStart { skip: u64 },
}

/// Why a resume answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResumeRejected {
    /// The file on the server is not the one the transfer started with.
    Changed(String),
    /// The answer does not prove it is the same file (no validator, or a
    /// weak one): starting over is the only safe way on.
    Unproven(String),
    /// The server answered in a way HTTP does not allow.
    Protocol(String),
}

/// Judges the answer to `Range: bytes=<delivered>-` with `If-Range`.
pub(crate) fn judge_resume(
    original: &Validator,
    delivered: u64,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<ResumePlan, ResumeRejected> {
    let content_length = || {
        headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
    };
    match status.as_u16() {
        206 => {
            let range = headers
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(ContentRange::parse)
                .ok_or_else(|| ResumeRejected::Protocol("206 Partial Content without a valid Content-Range".into()))?;
            if range.start > delivered {
                return Err(ResumeRejected::Protocol(format!(
                    "asked for bytes from {delivered}, got bytes from {}",
                    range.start
                )));
            }
            compare(original, &Validator::from_headers(headers, range.total))?;
            Ok(ResumePlan::Continue {
                skip: delivered - range.start,
            })
        }
        200 => {
            compare(original, &Validator::from_headers(headers, content_length()))?;
            Ok(ResumePlan::FromStart { skip: delivered })
        }
        416 => Err(ResumeRejected::Changed(format!(
            "the server says byte {delivered} is past the end: the file got shorter"
        ))),
        other => Err(ResumeRejected::Protocol(format!(
            "unexpected status {other} to a range request"
        ))),
    }
}

/// Compares the validators present on both sides; the answer must carry
/// the original's strong validator, unchanged.
fn compare(original: &Validator, now: &Validator) -> Result<(), ResumeRejected> {
    let pairs = [
        ("ETag", &original.etag, &now.etag),
        ("Last-Modified", &original.last_modified, &now.last_modified),
    ];
    for (name, before, after) in pairs {
        if let (Some(before), Some(after)) = (before, after) {
            if before != after {
                return Err(ResumeRejected::Changed(format!("{name} was {before}, now {after}")));
            }
        }
    }
    if let (Some(before), Some(after)) = (original.length, now.length) {
        if before != after {
            return Err(ResumeRejected::Changed(format!(
                "length was {before} bytes, now {after}"
            )));
        }
    }
    let proven = match original.strong() {
        Some(Strong::ETag(tag)) => now.etag.as_deref() == Some(tag),
        Some(Strong::LastModified(date)) => now.last_modified.as_deref() == Some(date),
        None => false,
    };
    if proven {
        return Ok(());
    }
    let shown = |v: &Option<String>| v.as_deref().unwrap_or("none").to_owned();
    Err(ResumeRejected::Unproven(format!(
        "the answer to the resume carries no strong validator to prove it is the same file \
         (ETag: {}, Last-Modified: {})",
        shown(&now.etag),
        shown(&now.last_modified)
    )))
}

/// A parsed `Content-Range: bytes <start>-<end>/<total|*>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) total: Option<u64>,
}

impl ContentRange {
    pub(crate) fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes")?.trim_start();
        let (span, total) = rest.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        let start: u64 = start.trim().parse().ok()?;
        let end: u64 = end.trim().parse().ok()?;
        let total = match total.trim() {
            "*" => None,
            n => Some(n.parse().ok()?),
        };
        let fits = total.is_none_or(|t| end < t);
        (start <= end && fits).then_some(ContentRange { start, end, total })
    }
}

#[cfg(test)]
#[path = "validator_tests.rs"]
mod tests;
