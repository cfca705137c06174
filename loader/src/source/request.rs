//! Small requests with one overall deadline each: the status callback's
//! JSON POSTs and the metadata services' GETs and PUTs. Whatever the
//! server does (endless `1xx` answers, a trickled head or body, a silent
//! socket), the call returns within its deadline.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;

use super::client::{self, ClientSpec, ProxySetting, RequestFailure};
use super::error::HttpError;
use super::tls::ExtraRoot;
use super::url;

/// A client for small requests, with its own runtime (calls block).
pub struct SmallClient {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    client: reqwest::Client,
    /// The most a response body may hold.
    max_body: usize,
}

/// One answer, read whole.
#[derive(Debug)]
pub struct SmallResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl SmallClient {
    /// A client trusting `extra_roots` besides the built-in ones, reaching
    /// the network as `proxy` says, with bodies of at most `max_body`
    /// bytes; `pin` connects a host name only to the addresses given.
    pub fn new(
        extra_roots: &[ExtraRoot],
        proxy: &ProxySetting,
        max_body: usize,
        pin: Option<(String, Vec<SocketAddr>)>,
    ) -> Result<SmallClient, HttpError> {
        let client = client::build(&ClientSpec {
            extra_roots,
            proxy,
            connect_timeout: Duration::from_secs(15),
            user_agent: concat!("loader/", env!("CARGO_PKG_VERSION")),
            resolve: pin
                .as_ref()
                .map(|(host, addresses)| (host.as_str(), addresses.as_slice())),
        })?;
        Ok(SmallClient {
            runtime: Some(client::runtime()?),
            client,
            max_body,
        })
    }

    /// Sends one request and reads the answer, all within `deadline`.
    /// Errors are sentences naming the URL (redacted).
    pub fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
        deadline: Duration,
    ) -> Result<SmallResponse, String> {
        let parsed = url::parse(target).map_err(|e| format!("{target}: not a usable URL: {e:?}"))?;
        let shown = url::redacted(&parsed);
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let mut request = self.client.request(method, parsed);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let exchange = async {
            let mut response = request.send().await.map_err(|e| match client::classify(e, &host) {
                RequestFailure::Transient(cause) | RequestFailure::Tls(cause) => cause,
            })?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while let Some(piece) = response.chunk().await.map_err(|e| client::chain(&e.without_url()))? {
                if body.len() + piece.len() > self.max_body {
                    return Err(format!("the answer is longer than {} bytes", self.max_body));
                }
                body.extend_from_slice(&piece);
            }
            Ok(SmallResponse { status, headers, body })
        };
        let runtime = self.runtime.as_ref().ok_or("the client was shut down")?;
        match runtime.block_on(async { tokio::time::timeout(deadline, exchange).await }) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(cause)) => Err(format!("{shown}: {cause}")),
            Err(_) => Err(format!(
                "{shown}: no complete answer within {:.1}s",
                deadline.as_secs_f64()
            )),
        }
    }

    /// Posts `body` as JSON; returns the HTTP status.
    pub fn post_json(&self, target: &str, body: String, deadline: Duration) -> Result<u16, String> {
        self.send(Method::POST, target, &[], Some(("application/json", body)), deadline)
            .map(|r| r.status)
    }
}

impl Drop for SmallClient {
    fn drop(&mut self) {
        // A DNS lookup stuck in the resolver must not hold up the caller.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    use super::*;

    #[test]
    fn endless_1xx_answers_end_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            while stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let client = SmallClient::new(&[], &ProxySetting::Direct, 1024, None).unwrap();
        let started = Instant::now();
        let err = client
            .post_json(
                &format!("http://127.0.0.1:{port}/s"),
                "{}".into(),
                Duration::from_secs(1),
            )
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(err.contains("no complete answer within 1.0s"), "{err}");
    }
}
