//! A small fault-injecting HTTP/1.1 file server on 127.0.0.1, over TLS
//! (rustls) or plain TCP. It serves one file at any path, honours
//! `Range`/`If-Range` like a real server, and can cut connections at given
//! byte offsets, answer error statuses first, stall, swap the file, flip
//! bytes (on every request or only a given one), ignore ranges or omit
//! validators. It records every request and every body byte
//! it sent, so tests can count what was fetched twice from its side too.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// What the server does wrong, and when.
#[derive(Default, Clone)]
pub struct Faults {
    /// Absolute file offsets at which a connection is cut (each used once,
    /// by the first response whose body crosses it).
    pub cuts: Vec<u64>,
    /// Statuses answered to the first requests, one per request.
    pub statuses_first: Vec<u16>,
    /// `Retry-After` seconds sent with those statuses.
    pub retry_after: Option<u32>,
    /// Once: after sending up to this offset, go silent for this long.
    pub stall: Option<(u64, Duration)>,
    /// From this request number on (1-based), serve `swapped` instead.
    pub swap_at_request: Option<usize>,
    pub swapped: Vec<u8>,
    /// Every request sees a new version of the file (ETag "v<request
    /// number>", same bytes): a file that never stops changing.
    pub new_version_every_request: bool,
    /// Answer every request with the whole file (no range support).
    pub ignore_range: bool,
    /// Serve a range even when `If-Range` does not match (a broken server).
    pub ignore_if_range: bool,
    pub no_etag: bool,
    pub no_last_modified: bool,
    /// Send the ETag weak (`W/"v1"`): "equivalent", not byte-identical.
    pub weak_etag: bool,
    /// Last-Modified equal to Date: modified within the second it was
    /// served, so not a strong validator.
    pub modified_now: bool,
    /// Answer ranges (206) without ETag or Last-Modified.
    pub no_validators_on_206: bool,
    /// Once (every time with `trickle_always`): from this offset on, send
    /// one byte per `trickle_every`.
    pub trickle_from: Option<u64>,
    pub trickle_every: Duration,
    pub trickle_always: bool,
    /// Answer with a redirect to this URL.
    pub redirect_to: Option<String>,
    /// Bytes sent inverted: (file offset, the request number it happens on,
    /// 1-based; every request when `None`). Validators stay the same: a
    /// server whose bytes go bad, or change only on a later request.
    pub corrupt: Vec<(u64, Option<usize>)>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub status: u16,
}

struct State {
    original: Vec<u8>,
    faults: Faults,
    statuses: VecDeque<u16>,
    requests: Vec<SeenRequest>,
    body_bytes_sent: u64,
}

pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Serves `content` over TLS with `tls`, or plain HTTP with `None`.
    pub fn start(content: Vec<u8>, faults: Faults, tls: Option<Arc<ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            original: content,
            statuses: faults.statuses_first.iter().copied().collect(),
            faults,
            requests: Vec::new(),
            body_bytes_sent: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let server = TestServer {
            addr,
            tls: tls.is_some(),
            state: Arc::clone(&state),
            stop: Arc::clone(&stop),
        };
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let state = Arc::clone(&state);
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    Some(config) => {
                        let Ok(conn) = ServerConnection::new(config) else {
                            return;
                        };
                        serve(StreamOwned::new(conn, tcp), &state);
                    }
                    None => serve(tcp, &state),
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/bundle.fw", self.addr)
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn body_bytes_sent(&self) -> u64 {
        self.state.lock().unwrap().body_bytes_sent
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// What one response will do.
struct Plan {
    head: String,
    body: Vec<u8>,
    start: u64,
    /// Stop after this absolute offset (cut), optionally after a stall.
    stop_at: Option<u64>,
    stall: Option<Duration>,
    /// From this absolute offset on, one byte at a time with this pause.
    trickle: Option<(u64, Duration)>,
}

fn serve<S: Read + Write>(stream: S, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    let mut range = None;
    let mut if_range = None;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if first {
            first = false;
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_owned()),
                "if-range" => if_range = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let plan = plan(state, range, if_range);
    let mut stream = reader.into_inner();
    if stream.write_all(plan.head.as_bytes()).is_err() {
        return;
    }
    let end = plan.start + plan.body.len() as u64;
    let stop = plan.stop_at.unwrap_or(end);
    let mut at = plan.start;
    while at < stop {
        let mut piece = (stop - at).min(64 * 1024);
        match plan.trickle {
            Some((from, pause)) if at >= from => {
                thread::sleep(pause);
                piece = 1;
            }
            Some((from, _)) => piece = piece.min(from - at),
            None => {}
        }
        let from = (at - plan.start) as usize;
        state.lock().unwrap().body_bytes_sent += piece;
        if stream.write_all(&plan.body[from..from + piece as usize]).is_err() {
            return;
        }
        if plan.trickle.is_some() && stream.flush().is_err() {
            return;
        }
        at += piece;
    }
    let _ = stream.flush();
    if let Some(pause) = plan.stall {
        thread::sleep(pause);
    }
}

fn plan(state: &Mutex<State>, range: Option<String>, if_range: Option<String>) -> Plan {
    let mut st = state.lock().unwrap();
    let number = st.requests.len() + 1;
    let mut seen = SeenRequest {
        range: range.clone(),
        if_range: if_range.clone(),
        status: 0,
    };
    let mut respond = |st: &mut State, status: u16, head: String| {
        seen.status = status;
        st.requests.push(seen.clone());
        head
    };
    if let Some(status) = st.statuses.pop_front() {
        let retry = st
            .faults
            .retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        let head = format!("HTTP/1.1 {status} Injected\r\n{retry}Content-Length: 0\r\nConnection: close\r\n\r\n");
        return empty(respond(&mut st, status, head));
    }
    if let Some(target) = st.faults.redirect_to.clone() {
        let head =
            format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return empty(respond(&mut st, 302, head));
    }
    let swapped = st.faults.swap_at_request.is_some_and(|n| number >= n);
    let (body, version) = if swapped {
        (st.faults.swapped.clone(), 2)
    } else if st.faults.new_version_every_request {
        (st.original.clone(), number)
    } else {
        (st.original.clone(), 1)
    };
    let weak = if st.faults.weak_etag { "W/" } else { "" };
    let etag = format!("{weak}\"v{version}\"");
    // Real servers date every answer; it is what makes Last-Modified a
    // strong validator (at least a second older than the Date).
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let modified = if st.faults.modified_now {
        date.clone()
    } else {
        format!("Mon, {version:02} Jan 2024 00:00:00 GMT")
    };
    let mut validators = String::new();
    if !st.faults.no_etag {
        validators += &format!("ETag: {etag}\r\n");
    }
    if !st.faults.no_last_modified {
        validators += &format!("Last-Modified: {modified}\r\n");
    }
    let len = body.len() as u64;
    let if_range_ok = st.faults.ignore_if_range
        || if_range
            .as_deref()
            .is_none_or(|v| (v == etag && !st.faults.no_etag) || v == modified);
    let start = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        Some(spec) if !st.faults.ignore_range && if_range_ok => spec.trim_end_matches('-').parse::<u64>().ok(),
        _ => None,
    };
    let (status, head, start) = match start {
        Some(s) if s >= len => {
            let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n{validators}Content-Length: 0\r\nConnection: close\r\n\r\n");
            return empty(respond(&mut st, 416, head));
        }
        Some(s) => (
            206,
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\n",
                len - 1,
                len - s
            ),
            s,
        ),
        None => (200, format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n"), 0),
    };
    let accept = if st.faults.ignore_range {
        ""
    } else {
        "Accept-Ranges: bytes\r\n"
    };
    if status == 206 && st.faults.no_validators_on_206 {
        validators.clear();
    }
    let head = format!("{head}{validators}{accept}Date: {date}\r\nConnection: close\r\n\r\n");
    let head = respond(&mut st, status, head);
    let faults = &mut st.faults;
    let mut stop_at = None;
    let mut stall = None;
    let trickle_from = if faults.trickle_always {
        faults.trickle_from.map(|at| at.max(start))
    } else {
        faults
            .trickle_from
            .filter(|at| *at > start)
            .inspect(|_| faults.trickle_from = None)
    };
    let trickle = trickle_from.map(|at| (at, faults.trickle_every));
    if let Some((at, pause)) = faults.stall.filter(|(at, _)| *at > start && *at < len) {
        faults.stall = None;
        stop_at = Some(at);
        stall = Some(pause);
    } else if let Some(i) = faults.cuts.iter().position(|&c| c > start && c < len) {
        stop_at = Some(faults.cuts.remove(i));
    }
    let mut body = body[start as usize..].to_vec();
    for &(offset, on) in &faults.corrupt {
        if on.is_none_or(|n| n == number) && offset >= start && offset < len {
            body[(offset - start) as usize] ^= 0xff;
        }
    }
    Plan {
        head,
        body,
        start,
        stop_at,
        stall,
        trickle,
    }
}

fn empty(head: String) -> Plan {
    Plan {
        head,
        body: Vec::new(),
        start: 0,
        stop_at: None,
        stall: None,
        trickle: None,
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failing seed can be
/// replayed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `count` distinct sorted offsets strictly inside `(0, len)`.
    pub fn offsets(&mut self, count: usize, len: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        while out.len() < count {
            let at = 1 + self.next() % (len - 1);
            if !out.contains(&at) {
                out.push(at);
            }
        }
        out.sort_unstable();
        out
    }
}
