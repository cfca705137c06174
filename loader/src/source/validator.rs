//! Proving that a resumed transfer continues the same file.
//!
//! When a download breaks at byte N, the next request asks for `bytes=N-`
//! with `If-Range` carrying the first response's validator. The answer is
//! only used if it demonstrably belongs to the same version of the file
//! (same `ETag`/`Last-Modified`, same length); anything else is reported as
//! a changed source so the engine restarts from zero. Bytes from two
//! versions are never spliced together.

use super::http1::Head;

/// What identifies one version of the remote file, taken from the first
/// response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validator {
    /// The `ETag` header, verbatim (`"abc"` or `W/"abc"`).
    pub etag: Option<String>,
    /// The `Last-Modified` header, verbatim.
    pub last_modified: Option<String>,
    /// The full length of the file, when the server said.
    pub length: Option<u64>,
}

impl Validator {
    pub(crate) fn from_head(head: &Head, length: Option<u64>) -> Self {
        Validator {
            etag: head.header("etag").map(str::to_owned),
            last_modified: head.header("last-modified").map(str::to_owned),
            length,
        }
    }

    /// Whether a resumed response can be checked against this one at all.
    pub fn can_resume(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }

    /// The `If-Range` value: a strong `ETag`, else the `Last-Modified` date.
    pub(crate) fn if_range(&self) -> Option<&str> {
        match &self.etag {
            Some(tag) if !tag.starts_with("W/") => Some(tag),
            _ => self.last_modified.as_deref(),
        }
    }
}

/// How to continue after the server answered a resume request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumePlan {
    /// `206`: the body continues the file; drop `skip` leading bytes that
    /// were already delivered (0 when the server honoured the exact offset).
    Continue { skip: u64 },
    /// `200` with the same validator: the server ignores ranges and sent the
    /// whole file again; drop the `skip` bytes already delivered.
    FromStart { skip: u64 },
}

/// Why a resume answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResumeRejected {
    /// The file on the server is not the one the transfer started with.
    Changed(String),
    /// The server answered in a way HTTP does not allow.
    Protocol(String),
}

/// Judges the answer to `Range: bytes=<delivered>-`.
pub(crate) fn judge_resume(original: &Validator, delivered: u64, head: &Head) -> Result<ResumePlan, ResumeRejected> {
    match head.status {
        206 => {
            let range = head
                .header("content-range")
                .and_then(ContentRange::parse)
                .ok_or_else(|| ResumeRejected::Protocol("206 Partial Content without a valid Content-Range".into()))?;
            if range.start > delivered {
                return Err(ResumeRejected::Protocol(format!(
                    "asked for bytes from {delivered}, got bytes from {}",
                    range.start
                )));
            }
            let now = Validator::from_head(head, range.total);
            compare(original, &now, false)?;
            Ok(ResumePlan::Continue {
                skip: delivered - range.start,
            })
        }
        200 => {
            let now = Validator::from_head(head, head.content_length());
            compare(original, &now, true)?;
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

/// Compares the validators present on both sides. With `need_proof`, at
/// least one validator must be present on both sides and equal (a `200`
/// without one could be any file).
fn compare(original: &Validator, now: &Validator, need_proof: bool) -> Result<(), ResumeRejected> {
    let mut proven = false;
    let pairs = [
        ("ETag", &original.etag, &now.etag),
        ("Last-Modified", &original.last_modified, &now.last_modified),
    ];
    for (name, before, after) in pairs {
        if let (Some(before), Some(after)) = (before, after) {
            if before != after {
                return Err(ResumeRejected::Changed(format!("{name} was {before}, now {after}")));
            }
            proven = true;
        }
    }
    if let (Some(before), Some(after)) = (original.length, now.length) {
        if before != after {
            return Err(ResumeRejected::Changed(format!(
                "length was {before} bytes, now {after}"
            )));
        }
    }
    if need_proof && !proven {
        return Err(ResumeRejected::Changed(
            "the server sent the whole file again without an ETag or Last-Modified \
             to prove it is the same file"
                .into(),
        ));
    }
    Ok(())
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn with_status(status: u16, headers: &[(String, String)]) -> Head {
        Head {
            status,
            reason: String::new(),
            headers: headers.to_vec(),
        }
    }

    fn original() -> Validator {
        Validator {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Mon, 01 Jan 2024 00:00:00 GMT".into()),
            length: Some(1000),
        }
    }

    #[test]
    fn content_range_parses_and_rejects_nonsense() {
        assert_eq!(
            ContentRange::parse("bytes 100-999/1000"),
            Some(ContentRange {
                start: 100,
                end: 999,
                total: Some(1000)
            })
        );
        assert_eq!(ContentRange::parse("bytes 5-9/*").unwrap().total, None);
        assert_eq!(ContentRange::parse("bytes 9-5/1000"), None);
        assert_eq!(ContentRange::parse("bytes 0-1000/1000"), None);
        assert_eq!(ContentRange::parse("bytes */1000"), None);
        assert_eq!(ContentRange::parse("items 0-1/2"), None);
    }

    #[test]
    fn exact_206_continues_without_skipping() {
        let h = headers(&[("content-range", "bytes 400-999/1000"), ("etag", "\"v1\"")]);
        assert_eq!(
            judge_resume(&original(), 400, &with_status(206, &h)),
            Ok(ResumePlan::Continue { skip: 0 })
        );
    }

    #[test]
    fn early_206_skips_the_overlap() {
        let h = headers(&[("content-range", "bytes 0-999/1000")]);
        assert_eq!(
            judge_resume(&original(), 400, &with_status(206, &h)),
            Ok(ResumePlan::Continue { skip: 400 })
        );
    }

    #[test]
    fn late_206_is_a_protocol_error() {
        let h = headers(&[("content-range", "bytes 500-999/1000")]);
        assert!(matches!(
            judge_resume(&original(), 400, &with_status(206, &h)),
            Err(ResumeRejected::Protocol(_))
        ));
    }

    #[test]
    fn changed_etag_or_length_is_detected() {
        let h = headers(&[("content-range", "bytes 400-999/1000"), ("etag", "\"v2\"")]);
        let err = judge_resume(&original(), 400, &with_status(206, &h)).unwrap_err();
        assert_eq!(err, ResumeRejected::Changed("ETag was \"v1\", now \"v2\"".into()));
        let h = headers(&[("content-range", "bytes 400-1199/1200")]);
        assert!(matches!(
            judge_resume(&original(), 400, &with_status(206, &h)),
            Err(ResumeRejected::Changed(m)) if m.contains("1200")
        ));
    }

    #[test]
    fn full_200_with_same_validator_restarts_in_stream() {
        let h = headers(&[("etag", "\"v1\""), ("content-length", "1000")]);
        assert_eq!(
            judge_resume(&original(), 400, &with_status(200, &h)),
            Ok(ResumePlan::FromStart { skip: 400 })
        );
    }

    #[test]
    fn full_200_without_proof_or_with_new_validator_is_a_change() {
        let h = headers(&[("content-length", "1000")]);
        assert!(matches!(
            judge_resume(&original(), 400, &with_status(200, &h)),
            Err(ResumeRejected::Changed(_))
        ));
        let h = headers(&[("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        assert!(matches!(
            judge_resume(&original(), 400, &with_status(200, &h)),
            Err(ResumeRejected::Changed(m)) if m.starts_with("Last-Modified")
        ));
    }

    #[test]
    fn unsatisfiable_range_means_the_file_shrank() {
        assert!(matches!(
            judge_resume(&original(), 400, &with_status(416, &headers(&[]))),
            Err(ResumeRejected::Changed(_))
        ));
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        assert_eq!(original().if_range(), Some("\"v1\""));
        let weak = Validator {
            etag: Some("W/\"v1\"".into()),
            ..original()
        };
        assert_eq!(weak.if_range(), Some("Mon, 01 Jan 2024 00:00:00 GMT"));
        assert!(!Validator::default().can_resume());
    }
}
