//! The reqwest client every request of the loader goes through (bundle
//! downloads, the status callback, metadata services): our rustls
//! configuration (ring, Mozilla roots plus the operator's CAs, pinned
//! self-signed certificates), HTTP/1.1 only, no automatic redirects (the
//! transfer follows them under its own rules), the proxy setting, and a
//! connect deadline that covers DNS, TCP, a proxy's `CONNECT` and the TLS
//! handshake. Each transfer runs it on a single-threaded tokio runtime of
//! its own thread.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::HttpError;
use super::tls::{self, ExtraRoot};

/// How requests reach the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxySetting {
    /// `HTTPS_PROXY`/`https_proxy` (for https://), `HTTP_PROXY`/`http_proxy`
    /// (for http://), `ALL_PROXY` and `NO_PROXY` from the environment. In
    /// the initramfs the environment is what the kernel passes to `/init`:
    /// `KEY=value` words of the command line that are not kernel
    /// parameters (`HTTPS_PROXY=http://10.0.0.1:3128`).
    #[default]
    Environment,
    /// Every request through this proxy (`loader.proxy=`, `--proxy`),
    /// except hosts `NO_PROXY` names; https:// goes through a `CONNECT`
    /// tunnel, so the proxy never sees the bundle's bytes in clear.
    Url(String),
    /// No proxy, whatever the environment says.
    Direct,
}

/// What a client is built from.
pub(crate) struct ClientSpec<'a> {
    pub(crate) extra_roots: &'a [ExtraRoot],
    pub(crate) proxy: &'a ProxySetting,
    pub(crate) connect_timeout: Duration,
    pub(crate) user_agent: &'a str,
    /// A host name pinned to addresses checked beforehand (no second DNS
    /// answer can move the connection elsewhere).
    pub(crate) resolve: Option<(&'a str, &'a [SocketAddr])>,
}

/// A client for `spec`.
pub(crate) fn build(spec: &ClientSpec<'_>) -> Result<reqwest::Client, HttpError> {
    let mut tls = tls::client_config(spec.extra_roots)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        // `Host:`, not `host:`, as curl writes them: some old servers and
        // appliances compare header names case-sensitively.
        .http1_title_case_headers()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(spec.connect_timeout)
        .tcp_nodelay(true)
        .user_agent(spec.user_agent);
    if let Some((host, addresses)) = spec.resolve {
        builder = builder.resolve_to_addrs(host, addresses);
    }
    builder = match spec.proxy {
        ProxySetting::Environment => builder,
        ProxySetting::Direct => builder.no_proxy(),
        ProxySetting::Url(url) => {
            let bad = |detail: String| HttpError::BadProxy {
                proxy: url.clone(),
                detail,
            };
            let parsed = super::url::parse(url).map_err(|e| bad(format!("{e:?}")))?;
            let proxy = reqwest::Proxy::all(parsed)
                .map_err(|e| bad(e.to_string()))?
                .no_proxy(reqwest::NoProxy::from_env());
            builder.proxy(proxy)
        }
    };
    builder.build().map_err(|e| HttpError::Client(chain(&e)))
}

/// A runtime for one transfer thread: single-threaded (the thread is the
/// transfer), with timers and sockets.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, HttpError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HttpError::Client(format!("starting the network runtime: {e}")))
}

/// What went wrong with a request, classified for the retry loop.
pub(crate) enum RequestFailure {
    /// Worth another attempt (refused connection, reset, timeout).
    Transient(String),
    /// The TLS handshake failed for a reason retrying cannot fix; the
    /// message says which (untrusted CA, wrong name, clock).
    Tls(String),
}

/// Classifies a reqwest error for a request to `host`. The URL is left
/// out of the message: it may carry secrets (the caller names it redacted).
pub(crate) fn classify(err: reqwest::Error, host: &str) -> RequestFailure {
    let err = err.without_url();
    match tls::find_tls_error(&err) {
        Some(tls_err) if tls::is_permanent(tls_err) => RequestFailure::Tls(tls::explain(tls_err, host)),
        _ => RequestFailure::Transient(chain(&err)),
    }
}

/// An error with its causes, `a: b: c`, without repeating a cause that
/// its parent's message already contains (reqwest's errors say little on
/// their own: "error sending request").
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(cause) = current {
        let part = cause.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        current = cause.source();
    }
    text
}
