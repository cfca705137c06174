//! One small JSON POST over the same TLS stack as the bundle download: the
//! status callback's transport.

use std::io::{BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use super::connect::{connect, ConnectError};
use super::http1::read_head;
use super::tls::client_config;
use super::url::HttpUrl;
use super::ExtraRoot;

/// Posts `body` as JSON; returns the HTTP status. Every wait is bounded by
/// `timeout`.
pub fn post_json(url: &str, body: &str, extra_roots: &[ExtraRoot], timeout: Duration) -> Result<u16, String> {
    let url = HttpUrl::parse(url).map_err(|e| format!("{e:?}"))?;
    let tls = Arc::new(client_config(extra_roots).map_err(|e| e.to_string())?);
    let mut stream = connect(&url, &tls, timeout, timeout).map_err(|e| match e {
        ConnectError::Transient(m) => m,
        ConnectError::Tls(e) => e.to_string(),
    })?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: loader/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.target,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let head = read_head(&mut BufReader::new(stream)).map_err(|e| e.to_string())?;
    Ok(head.status)
}
