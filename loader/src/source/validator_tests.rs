use reqwest::header::{HeaderName, HeaderValue};

use super::*;

const DATE_NOW: &str = "Wed, 01 May 2024 12:00:00 GMT";
const MODIFIED: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

fn judge(delivered: u64, status: u16, pairs: &[(&str, &str)]) -> Result<ResumePlan, ResumeRejected> {
    judge_resume(
        &original(),
        delivered,
        StatusCode::from_u16(status).unwrap(),
        &headers(pairs),
    )
}

fn original() -> Validator {
    Validator {
        etag: Some("\"v1\"".into()),
        last_modified: Some(MODIFIED.into()),
        date: Some(DATE_NOW.into()),
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
fn exact_206_with_the_same_strong_etag_continues() {
    let h = [("content-range", "bytes 400-999/1000"), ("etag", "\"v1\"")];
    assert_eq!(judge(400, 206, &h), Ok(ResumePlan::Continue { skip: 0 }));
    let h = [("content-range", "bytes 0-999/1000"), ("etag", "\"v1\"")];
    assert_eq!(judge(400, 206, &h), Ok(ResumePlan::Continue { skip: 400 }));
}

#[test]
fn late_206_is_a_protocol_error() {
    let h = [("content-range", "bytes 500-999/1000"), ("etag", "\"v1\"")];
    assert!(matches!(judge(400, 206, &h), Err(ResumeRejected::Protocol(_))));
}

#[test]
fn a_206_without_a_validator_or_with_a_weak_one_proves_nothing() {
    let h = [("content-range", "bytes 400-999/1000")];
    assert!(matches!(judge(400, 206, &h), Err(ResumeRejected::Unproven(_))));
    let h = [("content-range", "bytes 400-999/1000"), ("etag", "W/\"v1\"")];
    assert!(matches!(judge(400, 206, &h), Err(ResumeRejected::Changed(_))));
    // The original's proof was its ETag; the same Last-Modified alone is
    // not the validator the range was made conditional on.
    let h = [("content-range", "bytes 400-999/1000"), ("last-modified", MODIFIED)];
    assert!(matches!(judge(400, 206, &h), Err(ResumeRejected::Unproven(_))));
}

#[test]
fn changed_etag_or_length_is_detected() {
    let h = [("content-range", "bytes 400-999/1000"), ("etag", "\"v2\"")];
    assert_eq!(
        judge(400, 206, &h).unwrap_err(),
        ResumeRejected::Changed("ETag was \"v1\", now \"v2\"".into())
    );
    let h = [("content-range", "bytes 400-1199/1200"), ("etag", "\"v1\"")];
    assert!(matches!(judge(400, 206, &h), Err(ResumeRejected::Changed(m)) if m.contains("1200")));
}

#[test]
fn full_200_with_same_validator_restarts_in_stream() {
    let h = [("etag", "\"v1\""), ("content-length", "1000")];
    assert_eq!(judge(400, 200, &h), Ok(ResumePlan::FromStart { skip: 400 }));
}

#[test]
fn full_200_without_proof_or_with_new_validator_is_rejected() {
    let h = [("content-length", "1000")];
    assert!(matches!(judge(400, 200, &h), Err(ResumeRejected::Unproven(_))));
    let h = [("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")];
    assert!(matches!(judge(400, 200, &h), Err(ResumeRejected::Changed(m)) if m.starts_with("Last-Modified")));
}

#[test]
fn unsatisfiable_range_means_the_file_shrank() {
    assert!(matches!(judge(400, 416, &[]), Err(ResumeRejected::Changed(_))));
}

#[test]
fn only_strong_validators_allow_a_resume() {
    assert_eq!(original().if_range(), Some("\"v1\""));
    let weak = Validator {
        etag: Some("W/\"v1\"".into()),
        ..original()
    };
    assert_eq!(weak.if_range(), Some(MODIFIED), "a weak ETag falls back to the date");
    let weak_only = Validator {
        last_modified: None,
        ..weak.clone()
    };
    assert!(!weak_only.can_resume());
    assert!(weak_only.why_not_resumable().contains("weak ETag (W/\"v1\")"));
    // Modified in the second it was served: may change again unnoticed.
    let same_second = Validator {
        etag: None,
        date: Some(MODIFIED.into()),
        ..original()
    };
    assert!(!same_second.can_resume());
    assert!(same_second.why_not_resumable().contains("not a second older"));
    let no_date = Validator {
        etag: None,
        date: None,
        ..original()
    };
    assert!(!no_date.can_resume());
    let dated = Validator {
        etag: None,
        ..original()
    };
    assert_eq!(dated.if_range(), Some(MODIFIED));
    assert!(!Validator::default().can_resume());
    assert!(Validator::default()
        .why_not_resumable()
        .contains("neither ETag nor Last-Modified"));
}
