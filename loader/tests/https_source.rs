//! The HTTPS source against a fault-injecting server on loopback with a
//! throw-away CA: every byte arrives exactly once through cuts, stalls and
//! error statuses, with the bytes fetched twice counted; a changed file or
//! a server that stays down fails with a message an operator can act on.
//! Trust and plain-HTTP rules are in `https_tls.rs`.
#![allow(clippy::unwrap_used)]

mod https_support;

use std::time::Duration;

use https_support::server::{random_bytes, Faults, TestServer};
use https_support::{fixture, open_err, options, read_all, Fixture, LEN};
use loader::source::{self, HttpError, HttpReader, Sha256Reader, SourceSpec, TransferEvent};
use sha2::{Digest, Sha256};

#[test]
fn normal_transfer_delivers_every_byte_once() {
    let f = fixture();
    let server = f.serve(Faults::default());
    let (opts, events) = options(&f.ca.pem());
    let spec = SourceSpec::parse(&server.url());
    let opened = source::open(&spec, opts).unwrap();
    assert_eq!(opened.length, Some(LEN as u64));
    assert_eq!(opened.description, server.url());
    let stats = opened.http_stats.clone().unwrap();
    let mut hashed = Sha256Reader::new(opened.reader);
    let pin = hashed.handle();
    let (bytes, err) = read_all(&mut hashed);
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content, "bytes differ from the served file");
    assert_eq!(pin.digest(), <[u8; 32]>::from(Sha256::digest(&f.content)));
    let s = stats.snapshot();
    assert_eq!(
        (s.delivered, s.received, s.refetched, s.resumes, s.retries),
        (LEN as u64, LEN as u64, 0, 0, 0)
    );
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.body_bytes_sent(), LEN as u64);
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn cut_connections_resume_at_the_exact_byte() {
    let mut f = fixture();
    let cuts = f.rng.offsets(5, LEN as u64);
    let server = f.serve(Faults {
        cuts: cuts.clone(),
        ..Faults::default()
    });
    let (opts, events) = options(&f.ca.pem());
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let stats = reader.stats();
    let (bytes, err) = read_all(reader);
    assert!(err.is_none(), "cuts at {cuts:?}: {err:?}");
    assert!(
        bytes == f.content,
        "bytes differ from the served file (cuts at {cuts:?})"
    );
    let s = stats.snapshot();
    assert_eq!(s.resumes, 5);
    assert_eq!(s.refetched, 0, "Range resume must not fetch any byte twice");
    assert_eq!(server.body_bytes_sent(), LEN as u64, "the server sent bytes twice");
    let ranges: Vec<_> = server
        .requests()
        .iter()
        .skip(1)
        .map(|r| r.range.clone().unwrap())
        .collect();
    let expected: Vec<_> = cuts.iter().map(|c| format!("bytes={c}-")).collect();
    assert_eq!(ranges, expected);
    assert!(server
        .requests()
        .iter()
        .skip(1)
        .all(|r| r.if_range.as_deref() == Some("\"v1\"") && r.status == 206));
    let resumed: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TransferEvent::Resumed { offset, refetch } => Some((*offset, *refetch)),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, cuts.iter().map(|&c| (c, 0)).collect::<Vec<_>>());
}

#[test]
fn error_statuses_are_retried_with_backoff() {
    let f = fixture();
    let server = f.serve(Faults {
        statuses_first: vec![503, 502, 429],
        retry_after: Some(1),
        ..Faults::default()
    });
    let (opts, events) = options(&f.ca.pem());
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let stats = reader.stats();
    let (bytes, err) = read_all(reader);
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
    assert_eq!(stats.snapshot().retries, 3);
    assert_eq!(stats.snapshot().refetched, 0);
    let delays: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TransferEvent::Retrying { delay, cause, .. } => Some((delay.as_millis(), cause.clone())),
            _ => None,
        })
        .collect();
    // Retry-After: 1 s is capped at max_delay (80 ms) in every case.
    assert_eq!(delays.iter().map(|d| d.0).collect::<Vec<_>>(), [80, 80, 80]);
    assert!(delays[0].1.contains("503"), "{delays:?}");
    assert!(delays[2].1.contains("429"), "{delays:?}");
}

#[test]
fn backoff_doubles_and_a_server_that_stays_down_fails_in_bounded_time() {
    let f = fixture();
    let server = f.serve(Faults {
        statuses_first: vec![503; 1000],
        ..Faults::default()
    });
    let (mut opts, events) = options(&f.ca.pem());
    opts.retry.give_up_after = Duration::from_millis(400);
    let started = std::time::Instant::now();
    let err = open_err(&server.url(), opts);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, HttpError::GaveUp { .. }), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    let delays: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TransferEvent::Retrying { delay, .. } => Some(delay.as_millis()),
            _ => None,
        })
        .collect();
    assert_eq!(delays[..3], [20, 40, 80]);
    assert!(delays[3..].iter().all(|&d| d == 80), "{delays:?}");
}

#[test]
fn missing_file_fails_at_once() {
    let f = fixture();
    let server = f.serve(Faults {
        statuses_first: vec![404],
        ..Faults::default()
    });
    let (opts, events) = options(&f.ca.pem());
    let err = open_err(&server.url(), opts);
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(server.requests().len(), 1);
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn a_stalled_body_is_abandoned_and_resumed() {
    let mut f = fixture();
    let at = f.rng.offsets(1, LEN as u64)[0];
    let server = f.serve(Faults {
        stall: Some((at, Duration::from_secs(4))),
        ..Faults::default()
    });
    let (mut opts, events) = options(&f.ca.pem());
    opts.read_timeout = Duration::from_millis(700);
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let stats = reader.stats();
    let started = std::time::Instant::now();
    let (bytes, err) = read_all(reader);
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for the stalled server"
    );
    assert!(stats.snapshot().resumes >= 1);
    assert_eq!(stats.snapshot().refetched, 0);
    assert_eq!(
        server.requests()[1].range.as_deref(),
        Some(format!("bytes={at}-").as_str())
    );
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(
            |e| matches!(e, TransferEvent::Interrupted { offset, cause } if *offset == at && cause.contains("no data"))
        ),
        "{events:?}"
    );
}

/// Reads until the error and checks it says "start over", and that only
/// bytes of the original file came before it.
fn expect_source_changed(f: &Fixture, server: &TestServer, cut: u64) {
    let (opts, _) = options(&f.ca.pem());
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let (bytes, err) = read_all(reader);
    let err = err.expect("a changed file must fail the transfer");
    let http = HttpError::from_io(&err).expect("the error is typed");
    assert!(matches!(http, HttpError::SourceChanged { .. }), "{http}");
    assert!(http.restart_from_zero());
    assert!(http.to_string().contains("the file changed on the server"), "{http}");
    assert_eq!(bytes.len() as u64, cut);
    assert!(
        bytes[..] == f.content[..cut as usize],
        "bytes of two versions were mixed"
    );
}

#[test]
fn a_file_changed_between_attempts_is_detected() {
    let mut f = fixture();
    let cut = f.rng.offsets(1, LEN as u64)[0];
    let swapped = random_bytes(LEN, 99);
    let server = f.serve(Faults {
        cuts: vec![cut],
        swap_at_request: Some(2),
        swapped: swapped.clone(),
        ..Faults::default()
    });
    expect_source_changed(&f, &server, cut);
    // The server saw If-Range "v1", did not match it and sent the new file.
    assert_eq!(server.requests()[1].status, 200);

    // A server that ignores If-Range and serves the range of the new file.
    let server = f.serve(Faults {
        cuts: vec![cut],
        swap_at_request: Some(2),
        swapped: swapped.clone(),
        ignore_if_range: true,
        ..Faults::default()
    });
    expect_source_changed(&f, &server, cut);
    assert_eq!(server.requests()[1].status, 206);

    // Only Last-Modified to go by.
    let server = f.serve(Faults {
        cuts: vec![cut],
        swap_at_request: Some(2),
        swapped,
        ignore_if_range: true,
        no_etag: true,
        ..Faults::default()
    });
    expect_source_changed(&f, &server, cut);
}

#[test]
fn a_server_ignoring_range_restarts_in_stream_and_counts_refetched_bytes() {
    let mut f = fixture();
    let cuts = f.rng.offsets(3, LEN as u64);
    let server = f.serve(Faults {
        cuts: cuts.clone(),
        ignore_range: true,
        ..Faults::default()
    });
    let (opts, events) = options(&f.ca.pem());
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let stats = reader.stats();
    let (bytes, err) = read_all(reader);
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content, "the consumer must see one seamless stream");
    let s = stats.snapshot();
    assert_eq!(s.refetched, cuts.iter().sum::<u64>());
    assert_eq!(server.body_bytes_sent() - LEN as u64, s.refetched);
    assert_eq!(s.delivered, LEN as u64);
    let refetches: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TransferEvent::Resumed { refetch, .. } => Some(*refetch),
            _ => None,
        })
        .collect();
    assert_eq!(refetches, cuts);
}

#[test]
fn without_validators_a_broken_transfer_must_start_over() {
    let mut f = fixture();
    let cut = f.rng.offsets(1, LEN as u64)[0];
    let server = f.serve(Faults {
        cuts: vec![cut],
        no_etag: true,
        no_last_modified: true,
        ..Faults::default()
    });
    let (opts, _) = options(&f.ca.pem());
    let (bytes, err) = read_all(HttpReader::open(&server.url(), opts).unwrap());
    let err = err.unwrap();
    let http = HttpError::from_io(&err).unwrap();
    assert!(
        matches!(http, HttpError::NotResumable { offset, .. } if *offset == cut),
        "{http}"
    );
    assert!(http.restart_from_zero());
    assert_eq!(bytes[..], f.content[..cut as usize]);
    assert_eq!(server.requests().len(), 1, "no blind resume attempt");
}

#[test]
fn an_unreachable_server_is_retried_then_given_up() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = fixture();
    let (mut opts, events) = options(&f.ca.pem());
    opts.retry.give_up_after = Duration::from_millis(300);
    let err = open_err(&format!("https://127.0.0.1:{port}/x.fw"), opts);
    assert!(matches!(err, HttpError::GaveUp { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
    assert!(!events.lock().unwrap().is_empty());
}

/// Reads until the error, which must send the install back to byte 0, and
/// checks that only bytes of the served file came before it.
fn expect_restart(f: &Fixture, server: &TestServer, cut: u64) -> String {
    let (opts, _) = options(&f.ca.pem());
    let (bytes, err) = read_all(HttpReader::open(&server.url(), opts).unwrap());
    let err = err.expect("the transfer must fail");
    let http = HttpError::from_io(&err).expect("the error is typed");
    assert!(http.restart_from_zero(), "{http}");
    assert_eq!(bytes.len() as u64, cut);
    assert!(bytes[..] == f.content[..cut as usize], "bytes were spliced");
    http.restart_reason().unwrap()
}

#[test]
fn a_weak_etag_proves_nothing_so_a_break_starts_over() {
    let mut f = fixture();
    let cut = f.rng.offsets(1, LEN as u64)[0];
    let server = f.serve(Faults {
        cuts: vec![cut],
        weak_etag: true,
        no_last_modified: true,
        ..Faults::default()
    });
    let reason = expect_restart(&f, &server, cut);
    assert!(reason.contains("weak ETag (W/\"v1\")"), "{reason}");
    assert_eq!(server.requests().len(), 1, "no resume on a weak validator");
}

#[test]
fn last_modified_in_the_second_it_was_served_proves_nothing() {
    let mut f = fixture();
    let cut = f.rng.offsets(1, LEN as u64)[0];
    let server = f.serve(Faults {
        cuts: vec![cut],
        no_etag: true,
        modified_now: true,
        ..Faults::default()
    });
    let reason = expect_restart(&f, &server, cut);
    assert!(reason.contains("not a second older than its Date"), "{reason}");
    assert_eq!(server.requests().len(), 1, "no resume on a weak validator");
}

#[test]
fn a_206_without_a_validator_is_not_spliced() {
    let mut f = fixture();
    let cut = f.rng.offsets(1, LEN as u64)[0];
    let server = f.serve(Faults {
        cuts: vec![cut],
        no_validators_on_206: true,
        ..Faults::default()
    });
    let reason = expect_restart(&f, &server, cut);
    assert!(reason.contains("no strong validator"), "{reason}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[1].status, requests[1].if_range.as_deref()),
        (206, Some("\"v1\""))
    );
}

/// Runs `read_all` on another thread and gives it `limit`: a client that
/// waits for a trickling server fails the test instead of hanging it.
fn read_within(reader: HttpReader, limit: Duration) -> (Vec<u8>, Option<std::io::Error>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read_all(reader));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the transfer was still running after {limit:?}"))
}

#[test]
fn a_trickling_server_is_cut_and_the_transfer_resumes() {
    let mut f = fixture();
    let at = f.rng.offsets(1, LEN as u64)[0];
    let server = f.serve(Faults {
        trickle_from: Some(at),
        trickle_every: Duration::from_millis(20),
        ..Faults::default()
    });
    let (mut opts, events) = options(&f.ca.pem());
    opts.read_timeout = Duration::from_millis(600);
    opts.min_rate = 64 * 1024;
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let stats = reader.stats();
    let (bytes, err) = read_within(reader, Duration::from_secs(30));
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
    assert!(stats.snapshot().resumes >= 1);
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(
            |e| matches!(e, TransferEvent::Interrupted { cause, .. } if cause.starts_with("slower than 65536 bytes/s"))
        ),
        "{events:?}"
    );
}

#[test]
fn a_server_that_always_trickles_fails_in_bounded_time() {
    let mut f = fixture();
    let at = f.rng.offsets(1, LEN as u64 / 2)[0];
    let server = f.serve(Faults {
        trickle_from: Some(at),
        trickle_every: Duration::from_millis(20),
        trickle_always: true,
        ..Faults::default()
    });
    let (mut opts, _) = options(&f.ca.pem());
    opts.read_timeout = Duration::from_millis(500);
    opts.min_rate = 64 * 1024;
    opts.retry.give_up_after = Duration::from_secs(3);
    let reader = HttpReader::open(&server.url(), opts).unwrap();
    let (_, err) = read_within(reader, Duration::from_secs(30));
    let err = err.expect("a server that always trickles must fail the transfer");
    let http = HttpError::from_io(&err).expect("the error is typed");
    assert!(matches!(http, HttpError::GaveUp { .. }), "{http}");
    assert!(http.to_string().contains("slower than"), "{http}");
}
