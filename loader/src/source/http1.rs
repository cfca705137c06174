//! The HTTP/1.1 client side, small and strict: one GET per connection
//! (`Connection: close`), the response head parsed line by line, and the
//! body framed by `Content-Length`, `chunked`, or the end of the
//! connection. A body that ends early is an `UnexpectedEof` error, which
//! the transfer treats as a broken connection to resume.

use std::io::{self, BufRead, Read, Write};

use base64::Engine as _;

use super::url::HttpUrl;

/// Longest response head accepted (status line plus headers).
const MAX_HEAD: usize = 64 * 1024;

/// A response's status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) reason: String,
    /// Names in lowercase, in the order received.
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, unless the body is chunked.
    pub(crate) fn content_length(&self) -> Option<u64> {
        if self.is_chunked() {
            return None;
        }
        self.header("content-length")?.trim().parse().ok()
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    }

    /// `404 Not Found`
    pub(crate) fn status_text(&self) -> String {
        format!("{} {}", self.status, self.reason).trim_end().to_owned()
    }
}

/// Writes a GET request for `url` with the extra `headers`.
pub(crate) fn write_request(
    out: &mut impl Write,
    url: &HttpUrl,
    user_agent: &str,
    headers: &[(&str, String)],
) -> io::Result<()> {
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n",
        url.target,
        url.host_header()
    );
    if let Some(userinfo) = &url.userinfo {
        let token = base64::engine::general_purpose::STANDARD.encode(percent_decode(userinfo));
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    out.write_all(request.as_bytes())?;
    out.flush()
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn bad(detail: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail)
}

/// Reads the response head, skipping interim `1xx` responses.
pub(crate) fn read_head(input: &mut impl BufRead) -> io::Result<Head> {
    loop {
        let head = read_one_head(input)?;
        if !(100..200).contains(&head.status) {
            return Ok(head);
        }
    }
}

fn read_one_head(input: &mut impl BufRead) -> io::Result<Head> {
    let mut total = 0usize;
    let mut next_line = |input: &mut dyn BufRead| -> io::Result<String> {
        let mut line = Vec::new();
        let n = input.take((MAX_HEAD - total) as u64).read_until(b'\n', &mut line)?;
        total += n;
        if n == 0 || !line.ends_with(b"\n") {
            return Err(if total >= MAX_HEAD {
                bad(format!("response head longer than {MAX_HEAD} bytes"))
            } else {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the response head",
                )
            });
        }
        Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned())
    };
    let status_line = next_line(input)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP/1.x response: `{status_line}`")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| bad(format!("bad status line `{status_line}`")))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let line = next_line(input)?;
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: part of the previous header's value.
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line `{line}`")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Head {
        status,
        reason,
        headers,
    })
}

/// A response body, framed as the head says.
pub(crate) enum Body<R> {
    Empty,
    Length { inner: R, remaining: u64 },
    Chunked { inner: R, left_in_chunk: u64, done: bool },
    UntilClose(R),
}

impl<R: BufRead> Body<R> {
    pub(crate) fn new(head: &Head, inner: R) -> Body<R> {
        if matches!(head.status, 204 | 304) {
            Body::Empty
        } else if head.is_chunked() {
            Body::Chunked {
                inner,
                left_in_chunk: 0,
                done: false,
            }
        } else if let Some(remaining) = head.content_length() {
            Body::Length { inner, remaining }
        } else {
            Body::UntilClose(inner)
        }
    }
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Empty => Ok(0),
            Body::UntilClose(inner) => inner.read(buf),
            Body::Length { inner, remaining } => {
                if *remaining == 0 || buf.is_empty() {
                    return Ok(0);
                }
                let want = buf.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                let n = inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed with {remaining} bytes of the body missing"),
                    ));
                }
                *remaining -= n as u64;
                Ok(n)
            }
            Body::Chunked {
                inner,
                left_in_chunk,
                done,
            } => {
                if *done || buf.is_empty() {
                    return Ok(0);
                }
                if *left_in_chunk == 0 {
                    *left_in_chunk = next_chunk_size(inner)?;
                    if *left_in_chunk == 0 {
                        skip_trailers(inner)?;
                        *done = true;
                        return Ok(0);
                    }
                }
                let want = buf.len().min(usize::try_from(*left_in_chunk).unwrap_or(usize::MAX));
                let n = inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a chunk",
                    ));
                }
                *left_in_chunk -= n as u64;
                if *left_in_chunk == 0 {
                    expect_crlf(inner)?;
                }
                Ok(n)
            }
        }
    }
}

fn read_short_line(inner: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    inner.take(4096).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in chunk framing",
        ));
    }
    Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned())
}

fn next_chunk_size(inner: &mut impl BufRead) -> io::Result<u64> {
    let line = read_short_line(inner)?;
    let size = line.split(';').next().unwrap_or_default().trim();
    u64::from_str_radix(size, 16).map_err(|_| bad(format!("bad chunk size line `{line}`")))
}

fn expect_crlf(inner: &mut impl BufRead) -> io::Result<()> {
    let line = read_short_line(inner)?;
    if line.is_empty() {
        Ok(())
    } else {
        Err(bad("chunk not followed by CRLF".into()))
    }
}

fn skip_trailers(inner: &mut impl BufRead) -> io::Result<()> {
    while !read_short_line(inner)?.is_empty() {}
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Head, Vec<u8>, Option<io::Error>) {
        let mut input = io::BufReader::new(text.as_bytes());
        let head = read_head(&mut input).unwrap();
        let mut body = Body::new(&head, input);
        let mut out = Vec::new();
        let err = body.read_to_end(&mut out).err();
        (head, out, err)
    }

    #[test]
    fn content_length_bodies_and_headers() {
        let (head, body, err) = parse(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nETag:  \"v1\"\r\nX-Fold: a\r\n b\r\n\r\nhelloEXTRA",
        );
        assert_eq!((head.status, head.status_text().as_str()), (206, "206 Partial Content"));
        assert_eq!(head.header("etag"), Some("\"v1\""));
        assert_eq!(head.header("x-fold"), Some("a b"));
        assert_eq!((body.as_slice(), err.is_none()), (&b"hello"[..], true));
    }

    #[test]
    fn a_short_body_is_an_unexpected_eof() {
        let (_, body, err) = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
        assert_eq!(body, b"hello");
        assert_eq!(err.unwrap().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn chunked_bodies() {
        let (head, body, err) = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\n",
        );
        assert_eq!(head.content_length(), None);
        assert_eq!(body, b"hello world");
        assert!(err.is_none(), "{err:?}");
        let (_, _, err) = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
        assert_eq!(err.unwrap().kind(), io::ErrorKind::UnexpectedEof);
        let (_, _, err) = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn interim_responses_are_skipped_and_garbage_refused() {
        let (head, body, _) = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil close");
        assert_eq!((head.status, body.as_slice()), (200, &b"until close"[..]));
        let mut input = io::BufReader::new(&b"SSH-2.0-OpenSSH\r\n\r\n"[..]);
        assert_eq!(read_head(&mut input).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let mut input = io::BufReader::new(&b"HTTP/1.1 200 OK\r\nX: y"[..]);
        assert_eq!(read_head(&mut input).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn requests_carry_host_range_and_basic_auth() {
        let url = HttpUrl::parse("https://us%40r:p%3Aw@h.example:8443/a.fw").unwrap();
        let mut out = Vec::new();
        write_request(&mut out, &url, "loader/1", &[("Range", "bytes=5-".into())]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("GET /a.fw HTTP/1.1\r\nHost: h.example:8443\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nRange: bytes=5-\r\n"), "{text}");
        // base64("us@r:p:w")
        assert!(text.contains("Authorization: Basic dXNAcjpwOnc=\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
    }
}
