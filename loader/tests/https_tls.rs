//! Trust and transport rules of the HTTPS source: certificates from an
//! unknown CA, for another name, expired or not yet valid fail at once with
//! advice (the clock!); an operator's self-signed certificate can be
//! pinned; TLS 1.2 works; plain HTTP needs a reason, also after redirects.
#![allow(clippy::unwrap_used)]

mod https_support;

use https_support::pki::{loopback_cert, self_signed_loopback, server_config, TestCa};
use https_support::server::{Faults, TestServer};
use https_support::{fixture, open_err, options, read_all};
use loader::source::{ExtraRoot, HttpError, HttpReader, PlainHttp, TransferEvent};

#[test]
fn an_untrusted_certificate_is_refused_with_advice() {
    let f = fixture();
    let other = TestCa::new("someone else");
    let tls = server_config(loopback_cert(&other), false);
    let server = TestServer::start(f.content.clone(), Faults::default(), Some(tls));
    let (opts, events) = options(&f.ca.pem());
    let err = open_err(&server.url(), opts);
    assert!(matches!(err, HttpError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("not signed by a trusted CA"), "{err}");
    assert!(err.to_string().contains("loader.ca="), "{err}");
    assert!(events.lock().unwrap().is_empty(), "certificate errors are not retried");
}

#[test]
fn an_expired_certificate_mentions_the_clock() {
    let f = fixture();
    let tls = server_config(f.ca.issue(&["127.0.0.1"], 2001, 2002), false);
    let server = TestServer::start(f.content.clone(), Faults::default(), Some(tls));
    let (opts, _) = options(&f.ca.pem());
    let msg = open_err(&server.url(), opts).to_string();
    assert!(msg.contains("expired at 2002-01-01 00:00:00 UTC"), "{msg}");
    assert!(msg.contains("the system clock may be wrong: it reads 20"), "{msg}");

    let tls = server_config(f.ca.issue(&["127.0.0.1"], 2999, 3000), false);
    let server = TestServer::start(f.content.clone(), Faults::default(), Some(tls));
    let (opts, _) = options(&f.ca.pem());
    let msg = open_err(&server.url(), opts).to_string();
    assert!(msg.contains("valid only from 2999-01-01"), "{msg}");
    assert!(msg.contains("clock may be wrong"), "{msg}");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let f = fixture();
    let tls = server_config(f.ca.issue(&["other.example"], 2000, 4000), false);
    let server = TestServer::start(f.content.clone(), Faults::default(), Some(tls));
    let (opts, _) = options(&f.ca.pem());
    let msg = open_err(&server.url(), opts).to_string();
    assert!(msg.contains("is for other.example, not for 127.0.0.1"), "{msg}");
}

#[test]
fn tls_1_2_servers_work() {
    let f = fixture();
    let tls = server_config(loopback_cert(&f.ca), true);
    let server = TestServer::start(f.content.clone(), Faults::default(), Some(tls));
    let (opts, _) = options(&f.ca.pem());
    let (bytes, err) = read_all(HttpReader::open(&server.url(), opts).unwrap());
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
}

#[test]
fn plain_http_needs_a_reason() {
    let f = fixture();
    let server = TestServer::start(f.content.clone(), Faults::default(), None);
    let (opts, _) = options(&f.ca.pem());
    let err = open_err(&server.url(), opts);
    assert!(matches!(err, HttpError::PlainHttpRefused { .. }), "{err}");
    assert!(server.requests().is_empty(), "refused before connecting");

    let (mut opts, events) = options(&f.ca.pem());
    opts.plain_http = PlainHttp::Allow {
        reason: "loader.sha256= pins the bundle".into(),
    };
    let (bytes, err) = read_all(HttpReader::open(&server.url(), opts).unwrap());
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
    assert_eq!(
        events.lock().unwrap()[0],
        TransferEvent::PlainHttpAllowed {
            reason: "loader.sha256= pins the bundle".into()
        }
    );
}

#[test]
fn a_redirect_to_plain_http_is_refused() {
    let f = fixture();
    let plain = TestServer::start(f.content.clone(), Faults::default(), None);
    let server = f.serve(Faults {
        redirect_to: Some(plain.url()),
        ..Faults::default()
    });
    let (opts, _) = options(&f.ca.pem());
    let err = open_err(&server.url(), opts);
    assert!(matches!(err, HttpError::RedirectToPlainHttp { .. }), "{err}");
    assert!(plain.requests().is_empty());
}

#[test]
fn a_self_signed_server_certificate_can_be_pinned() {
    let f = fixture();
    let (pem, cert) = self_signed_loopback();
    let server = TestServer::start(f.content.clone(), Faults::default(), Some(server_config(cert, false)));
    let (opts, _) = options(&f.ca.pem());
    let err = open_err(&server.url(), opts);
    assert!(
        err.to_string().contains("pass that exact certificate with loader.ca="),
        "{err}"
    );

    let (mut opts, _) = options(&f.ca.pem());
    opts.extra_roots.push(ExtraRoot {
        origin: "loader.ca= #2".into(),
        pem: pem.into_bytes(),
    });
    let (bytes, err) = read_all(HttpReader::open(&server.url(), opts).unwrap());
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
}
