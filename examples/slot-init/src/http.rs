//! A minimal HTTP/1.1 server for the status page (`GET /`) and the update
//! request (`POST /update`, see [`crate::update`]): one connection at a
//! time, every read and write under a deadline, `Connection: close`. Enough
//! for `curl` and a browser; nothing here can take PID 1 down.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How long a client may take to send its request or read the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Request heads larger than this are refused.
const MAX_HEAD: usize = 8 * 1024;
/// Request bodies (a bundle URL) larger than this are refused.
const MAX_BODY: usize = 4 * 1024;

/// A response: status line, content type and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
    /// `HEAD` requests get the headers only.
    pub head_only: bool,
}

/// What `POST /update` answers: a status line and a line of text.
pub type UpdateAnswer = (&'static str, String);

/// Answers a request head (`"GET / HTTP/1.1\r\n..."`) and body; `page`
/// renders the status JSON and is only called for `/`, `update` only for
/// `POST /update`.
pub fn respond(
    head: &str,
    body: &str,
    page: impl FnOnce() -> String,
    update: impl FnOnce(&str, &str) -> UpdateAnswer,
) -> Response {
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split(['?', '#']).next().unwrap_or("");
    let head_only = method == "HEAD";
    let plain = |status, body: &str| Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{body}\n"),
        head_only,
    };
    match (method, path) {
        ("GET" | "HEAD", "/") => Response {
            status: "200 OK",
            content_type: "application/json",
            body: page(),
            head_only,
        },
        ("POST", "/update") => {
            let (status, message) = update(head, body);
            plain(status, &message)
        }
        ("GET" | "HEAD", _) => plain("404 Not Found", "not found; the status page is at /"),
        ("", _) => plain("400 Bad Request", "bad request"),
        _ => plain(
            "405 Method Not Allowed",
            "only GET and HEAD are served, and POST /update",
        ),
    }
}

impl Response {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// Accepts connections forever. Errors of one connection are dropped: the
/// client sees a closed connection and may retry.
pub fn serve(listener: TcpListener, page: impl Fn() -> String, update: impl Fn(&str, &str) -> UpdateAnswer) -> ! {
    loop {
        if let Ok((stream, _peer)) = listener.accept() {
            let _ = handle(stream, &page, &update);
        }
    }
}

fn handle(
    mut stream: TcpStream,
    page: &impl Fn() -> String,
    update: &impl Fn(&str, &str) -> UpdateAnswer,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_DEADLINE))?;
    stream.set_write_timeout(Some(CLIENT_DEADLINE))?;
    let response = match read_request(&mut stream)? {
        Some((head, body)) => respond(&head, &body, page, update),
        None => respond("", "", String::new, |_, _| ("400 Bad Request", String::new())),
    };
    stream.write_all(&response.to_bytes())?;
    stream.flush()
}

/// Reads the request head up to its blank line, then a body of
/// `Content-Length` bytes; `None` when either is too large or not text.
fn read_request(stream: &mut impl Read) -> std::io::Result<Option<(String, String)>> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 1024];
    let head_end = loop {
        let end = find(&data, b"\r\n\r\n")
            .map(|i| i + 4)
            .or_else(|| find(&data, b"\n\n").map(|i| i + 2));
        if let Some(end) = end {
            break end;
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break data.len();
        }
        data.extend_from_slice(&buffer[..read]);
        if data.len() > MAX_HEAD {
            return Ok(None);
        }
    };
    let Ok(head) = String::from_utf8(data[..head_end].to_vec()) else {
        return Ok(None);
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    if length > MAX_BODY {
        return Ok(None);
    }
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..read]);
    }
    body.truncate(length);
    Ok(String::from_utf8(body).ok().map(|body| (head, body)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_update(_: &str, _: &str) -> UpdateAnswer {
        ("500 Internal Server Error", "not here".into())
    }

    fn page() -> String {
        "{\"slot\":\"a\"}\n".to_string()
    }

    #[test]
    fn get_root_serves_the_page_as_json() {
        let response = respond("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", page, no_update);
        assert_eq!((response.status, response.content_type), ("200 OK", "application/json"));
        assert_eq!(response.body, page());
        let query = respond("GET /?pretty HTTP/1.1\r\n\r\n", "", page, no_update);
        assert_eq!(query.status, "200 OK");
    }

    #[test]
    fn other_paths_and_methods_are_refused() {
        assert_eq!(
            respond("GET /etc/passwd HTTP/1.1\r\n\r\n", "", page, no_update).status,
            "404 Not Found"
        );
        assert_eq!(
            respond("POST / HTTP/1.1\r\n\r\n", "", page, no_update).status,
            "405 Method Not Allowed"
        );
        assert_eq!(respond("", "", page, no_update).status, "400 Bad Request");
    }

    #[test]
    fn head_sends_headers_with_the_real_length_and_no_body() {
        let bytes = respond("HEAD / HTTP/1.1\r\n\r\n", "", page, no_update).to_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("Content-Length: 13\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_real_client_gets_the_page_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, page, |_, body| ("202 Accepted", format!("got {body}"))));
        let mut client = TcpStream::connect(address).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n{\"slot\":\"a\"}\n"), "{answer}");

        let mut client = TcpStream::connect(address).unwrap();
        client
            .write_all(b"POST /update HTTP/1.1\r\nContent-Length: 20\r\n\r\nhttps://h/v2.fw")
            .unwrap();
        client.write_all(b"?a=1\n").unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 202 Accepted\r\n"), "{answer}");
        assert!(
            answer.ends_with("got https://h/v2.fw?a=1\n\n"),
            "the whole body, sent in two parts: {answer}"
        );
    }

    #[test]
    fn oversized_heads_are_bad_requests() {
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        let mut reader = huge.as_bytes();
        assert_eq!(read_request(&mut reader).unwrap(), None);
        let big_body = format!("POST /update HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert_eq!(read_request(&mut big_body.as_bytes()).unwrap(), None);
    }
}
