//! TLS for the HTTPS source: which certificates are trusted, and what to
//! tell the operator when the handshake fails.
//!
//! There is no system certificate store in an initramfs, so trust is the
//! Mozilla roots compiled in (`webpki-roots`) plus CA certificates the
//! operator passes (`loader.ca=`, `--ca`, files baked into the initramfs).
//! The crypto provider is `ring`; TLS 1.2 and 1.3 are allowed.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use super::error::HttpError;
use super::pinning::PinningVerifier;

/// A CA certificate (or several) in PEM form that is trusted in addition to
/// the built-in roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRoot {
    /// Where it came from, for error messages (`loader.ca= #1`, a path).
    pub origin: String,
    /// PEM text with one or more `CERTIFICATE` blocks.
    pub pem: Vec<u8>,
}

/// Builds the client configuration: ring, TLS 1.2 + 1.3, HTTP/1.1 only.
/// Extra certificates are trusted as CAs, and also as pinned server
/// certificates (see [`super::pinning`]).
pub(crate) fn client_config(extra: &[ExtraRoot]) -> Result<ClientConfig, HttpError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut pinned = Vec::new();
    for root in extra {
        let bad = |detail: String| HttpError::BadCaCertificate {
            origin: root.origin.clone(),
            detail,
        };
        let mut found = 0usize;
        for cert in CertificateDer::pem_slice_iter(&root.pem) {
            let cert = cert.map_err(|e| bad(format!("not valid PEM: {e}")))?;
            // A certificate that cannot be an anchor (e.g. an old v1
            // self-signed one) can still be pinned.
            let _ = roots.add(cert.clone());
            pinned.push(cert);
            found += 1;
        }
        if found == 0 {
            return Err(bad("no `BEGIN CERTIFICATE` block found".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|e| HttpError::TlsSetup(e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| HttpError::TlsSetup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinningVerifier { webpki, pinned }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Finds a rustls error in an error's source chain. `io::Error` hides its
/// payload from `source()` (and tokio-rustls nests one in another), so
/// io errors are unwrapped explicitly.
pub(crate) fn find_tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

/// Whether a TLS failure is about trust or compatibility (retrying cannot
/// help) rather than a damaged connection.
pub(crate) fn is_permanent(err: &rustls::Error) -> bool {
    matches!(
        err,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::AlertReceived(_)
            | rustls::Error::UnsupportedNameType
    )
}

/// A sentence an operator can act on, for a TLS failure talking to `host`.
pub(crate) fn explain(err: &rustls::Error, host: &str) -> String {
    let clock = || format!("the system clock may be wrong: it reads {}", format_utc(now_unix()));
    let rustls::Error::InvalidCertificate(cert) = err else {
        return format!("TLS handshake with {host} failed: {err}");
    };
    match cert {
        CertificateError::Expired => {
            format!("the certificate of {host} has expired, or {}", clock())
        }
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "the certificate of {host} expired at {}, or {}",
            format_utc(not_after.as_secs()),
            clock()
        ),
        CertificateError::NotValidYet => {
            format!("the certificate of {host} is not valid yet: {}", clock())
        }
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "the certificate of {host} is valid only from {}: {}",
            format_utc(not_before.as_secs()),
            clock()
        ),
        CertificateError::UnknownIssuer => format!(
            "the certificate of {host} is not signed by a trusted CA (built-in Mozilla roots, CAs \
             baked into the initramfs, loader.ca=/--ca); for a private CA bake it in with \
             `loader initramfs --ca-cert` or pass it with loader.ca= or --ca"
        ),
        CertificateError::NotValidForName => {
            format!("the certificate presented by {host} is not valid for that name")
        }
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the certificate presented by {host} is for {}, not for {host}",
            if presented.is_empty() {
                "no name".to_owned()
            } else {
                presented.iter().map(|p| plain_name(p)).collect::<Vec<_>>().join(", ")
            }
        ),
        CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => format!(
            "{host} presents a CA certificate as its own (typical of a self-signed `openssl req -x509` \
             certificate); to trust it, pass that exact certificate with loader.ca= or --ca"
        ),
        other => format!("the certificate of {host} was rejected: {other:?}"),
    }
}

/// rustls reports presented names as `DnsName("host")`; show just `host`.
fn plain_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DD hh:mm:ss UTC` for seconds since the epoch.
pub(crate) fn format_utc(secs: u64) -> String {
    let t = crate::formats::utc::Utc::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(format_utc(4_102_444_800), "2100-01-01 00:00:00 UTC");
    }

    #[test]
    fn clock_errors_mention_the_clock_and_the_time() {
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidYet);
        let msg = explain(&err, "example.net");
        assert!(msg.contains("clock may be wrong"), "{msg}");
        assert!(msg.contains(" UTC"), "{msg}");
        let err = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(!explain(&err, "example.net").contains("clock"));
    }

    #[test]
    fn presented_names_are_shown_plainly() {
        assert_eq!(plain_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(plain_name("a.example"), "a.example");
    }

    #[test]
    fn extra_roots_must_contain_certificates() {
        let err = client_config(&[ExtraRoot {
            origin: "loader.ca= #1".into(),
            pem: b"hello".to_vec(),
        }])
        .unwrap_err();
        assert!(err.to_string().contains("loader.ca= #1"), "{err}");
        assert!(client_config(&[]).is_ok());
    }
}
