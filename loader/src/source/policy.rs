//! Opening a bundle source for the engine under the loader's rules, shared
//! by `loader apply|verify|inspect` and the boot flow: which plain-HTTP
//! downloads are acceptable, extra CA roots, and the whole-bundle SHA-256
//! pin that is checked before anything boot-critical is committed.
//!
//! This is the edge between the source and the engine: the download's
//! errors reach the engine as its own [`SourceFailure`] (with whether a
//! restart from byte 0 can help), and the pin as its own [`CommitCheck`].

use std::io::{self, Read};
use std::sync::Arc;

use super::{
    open, EventSink, ExtraRoot, HttpError, HttpOptions, OpenedSource, PlainHttp, Sha256Reader, SourceError, SourceSpec,
    TransferEvent,
};
use crate::apply::{CommitCheck, SourceFailure};

/// What the operator said about trust for this download.
#[derive(Debug, Clone, Default)]
pub struct FetchPolicy {
    /// Public keys are enforced: a signed bundle protects plain HTTP.
    pub keys_enforced: bool,
    /// `--sha256` / `loader.sha256=`.
    pub sha256: Option<[u8; 32]>,
    /// `--insecure` / `loader.insecure=1`.
    pub insecure: bool,
    /// Extra CA certificates (PEM), with where each came from.
    pub ca: Vec<(String, Vec<u8>)>,
}

pub struct Fetched {
    pub source: OpenedSource,
    /// Present when a SHA-256 pin was given.
    pub check: Option<CommitCheck>,
    /// Why plain HTTP was allowed, if it was.
    pub plain_http_reason: Option<String>,
}

impl FetchPolicy {
    /// The rule that makes plain `http://` acceptable, if any.
    pub fn plain_http_reason(&self) -> Option<String> {
        if self.keys_enforced {
            Some("the bundle's signature is enforced with a public key".into())
        } else if self.sha256.is_some() {
            Some("the bundle's SHA-256 is pinned".into())
        } else if self.insecure {
            Some("insecure mode was requested".into())
        } else {
            None
        }
    }
}

pub fn fetch(spec: &SourceSpec, policy: &FetchPolicy, mut http: HttpOptions) -> Result<Fetched, SourceError> {
    let reason = policy.plain_http_reason();
    http.plain_http = match &reason {
        Some(r) => PlainHttp::Allow { reason: r.clone() },
        None => PlainHttp::Refuse,
    };
    // The allowance comes back as `Fetched::plain_http_reason` for the
    // caller to report once; its sink need not hear it again.
    http.on_event = http.on_event.take().map(|sink| {
        Arc::new(move |e: &TransferEvent| {
            if !matches!(e, TransferEvent::PlainHttpAllowed { .. }) {
                sink(e)
            }
        }) as EventSink
    });
    http.extra_roots = policy
        .ca
        .iter()
        .map(|(origin, pem)| ExtraRoot {
            origin: origin.clone(),
            pem: pem.clone(),
        })
        .collect();
    let mut source = open(spec, http)?;
    source.reader = Box::new(EngineReader(source.reader));
    let mut check = None;
    if let Some(expected) = policy.sha256 {
        let reader = Sha256Reader::new(source.reader);
        let handle = reader.handle();
        source.reader = Box::new(reader);
        check = Some(Arc::new(move || handle.check(&expected).map_err(|e| e.to_string())) as CommitCheck);
    }
    let plain = matches!(spec, SourceSpec::Url(u) if u.starts_with("http://"));
    Ok(Fetched {
        source,
        check,
        plain_http_reason: if plain { reason } else { None },
    })
}

/// Hands the engine download failures in its own terms.
struct EngineReader(Box<dyn Read + Send>);

impl Read for EngineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|err| match HttpError::from_io(&err) {
            Some(http) => io::Error::new(
                err.kind(),
                SourceFailure {
                    message: http.to_string(),
                    restart: http.restart_reason(),
                },
            ),
            None => err,
        })
    }
}
