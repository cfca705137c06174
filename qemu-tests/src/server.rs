//! The loopback file server the VMs boot from: plain HTTP for iPXE (the
//! ROM's iPXE has no TLS), optionally HTTPS for the loader, on ephemeral
//! ports of 127.0.0.1 (the guest reaches them as 10.0.2.2). It serves files
//! by URL path with `Range`/`If-Range` like a real server, can cut a
//! transfer at given offsets (each cut used once), and records every
//! request and every POSTed body (the loader's status reports).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The guest's name for the host's loopback (QEMU user networking).
pub const HOST_FROM_GUEST: &str = "10.0.2.2";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub status: u16,
    /// Body bytes actually sent.
    pub sent: u64,
    pub tls: bool,
}

struct File {
    bytes: Arc<Vec<u8>>,
    /// Offsets at which a response body is cut; each used once.
    cuts: Vec<u64>,
    /// An offset at which a response goes silent for ten minutes; used once.
    stall: Option<u64>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, File>,
    seen: Vec<Seen>,
    posts: Vec<(String, String)>,
}

pub struct Server {
    pub http_port: u16,
    pub https_port: Option<u16>,
    /// The address the guest reaches the server at: 10.0.2.2 under user
    /// networking, an address in the test's network namespace otherwise.
    pub guest_host: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    /// Starts the HTTP listener, and an HTTPS one when `tls` is given.
    pub fn start(tls: Option<Arc<ServerConfig>>) -> Server {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Server::start_on(HOST_FROM_GUEST, bind(), tls.map(|config| (bind(), config)))
    }

    /// Serves on listeners the caller bound (inside a network namespace),
    /// reached by the guest at `guest_host`.
    pub fn start_on(guest_host: &str, http: TcpListener, https: Option<(TcpListener, Arc<ServerConfig>)>) -> Server {
        let state = Arc::new(Mutex::new(State::default()));
        let http_port = listen(http, Arc::clone(&state), None);
        let https_port = https.map(|(listener, config)| listen(listener, Arc::clone(&state), Some(config)));
        Server {
            http_port,
            https_port,
            guest_host: guest_host.to_string(),
            state,
        }
    }

    /// Serves the contents of `file` at `/name`.
    pub fn add_file(&self, name: &str, file: &std::path::Path) {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        self.add_bytes(name, bytes);
    }

    pub fn add_bytes(&self, name: &str, bytes: Vec<u8>) {
        let file = File {
            bytes: Arc::new(bytes),
            cuts: Vec::new(),
            stall: None,
        };
        self.lock().files.insert(format!("/{name}"), file);
    }

    /// Cuts the transfer of `/name` once at each of `offsets`.
    pub fn cut_at(&self, name: &str, offsets: &[u64]) {
        let mut state = self.lock();
        let file = state
            .files
            .get_mut(&format!("/{name}"))
            .expect("cut_at: file is served");
        file.cuts = offsets.to_vec();
    }

    /// Makes the next transfer of `/name` that crosses `offset` stop there
    /// and hang (a VM can then be cut off mid-install at a known point).
    pub fn stall_at(&self, name: &str, offset: u64) {
        let mut state = self.lock();
        let file = state
            .files
            .get_mut(&format!("/{name}"))
            .expect("stall_at: file is served");
        file.stall = Some(offset);
    }

    /// `http://10.0.2.2:PORT/name`: the URL of a served file for the guest.
    pub fn guest_url(&self, name: &str) -> String {
        format!("http://{}:{}/{name}", self.guest_host, self.http_port)
    }

    /// The HTTPS URL of a served file for the guest.
    pub fn guest_https_url(&self, name: &str) -> String {
        let port = self.https_port.expect("the server was started with TLS");
        format!("https://{}:{port}/{name}", self.guest_host)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Bodies POSTed to `/name`, in arrival order.
    pub fn posts(&self, name: &str) -> Vec<String> {
        let path = format!("/{name}");
        self.lock()
            .posts
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn listen(listener: TcpListener, state: Arc<Mutex<State>>, tls: Option<Arc<ServerConfig>>) -> u16 {
    let port = listener.local_addr().expect("local_addr").port();
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let state = Arc::clone(&state);
            let tls = tls.clone();
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
                match tls {
                    Some(config) => {
                        if let Ok(conn) = ServerConnection::new(config) {
                            serve(StreamOwned::new(conn, tcp), &state, true);
                        }
                    }
                    None => serve(tcp, &state, false),
                }
            });
        }
    });
    port
}

struct Request {
    method: String,
    path: String,
    range: Option<String>,
    if_range: Option<String>,
    body: Vec<u8>,
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_string();
    let path = words.next()?.split('?').next()?.to_string();
    let (mut range, mut if_range, mut length) = (None, None, 0usize);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "range" => range = Some(value),
            "if-range" => if_range = Some(value),
            "content-length" => length = value.parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        range,
        if_range,
        body,
    })
}

/// One request per connection (`Connection: close`): simple, and what
/// both iPXE and the loader handle.
fn serve<S: Read + Write>(stream: S, state: &Mutex<State>, tls: bool) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let mut stream = reader.into_inner();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen = Seen {
        method: request.method.clone(),
        path: request.path.clone(),
        range: request.range.clone(),
        status: 404,
        sent: 0,
        tls,
    };
    if request.method == "POST" {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        lock().posts.push((request.path.clone(), body));
        seen.status = 204;
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        lock().seen.push(seen);
        return;
    }
    let file = lock()
        .files
        .get(&request.path)
        .map(|f| (Arc::clone(&f.bytes), f.cuts.clone(), f.stall));
    let Some((bytes, cuts, stall)) = file else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        lock().seen.push(seen);
        return;
    };
    let etag = format!("\"{}-{:08x}\"", bytes.len(), fingerprint(&bytes));
    let start = requested_start(&request, &etag).filter(|&s| s < bytes.len() as u64);
    let (status, from) = match start {
        Some(s) => (206, s),
        None => (200, 0),
    };
    let total = bytes.len() as u64;
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        if status == 206 { "Partial Content" } else { "OK" },
        total - from
    );
    if status == 206 {
        head.push_str(&format!("Content-Range: bytes {from}-{}/{total}\r\n", total - 1));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    // The first unused cut inside this body ends it early (and is used up).
    let cut = cuts.iter().copied().filter(|&c| c > from && c < total).min();
    let end = cut.unwrap_or(total);
    if let Some(c) = cut {
        if let Some(f) = lock().files.get_mut(&request.path) {
            f.cuts.retain(|&x| x != c);
        }
    }
    let stall = stall.filter(|&o| o > from && o < end);
    if stall.is_some() {
        if let Some(f) = lock().files.get_mut(&request.path) {
            f.stall = None;
        }
    }
    let mut sent = 0u64;
    let pause = stall.map_or(0, |o| o - from);
    for chunk in bytes[from as usize..end as usize].chunks(64 * 1024) {
        if stall.is_some() && sent + chunk.len() as u64 > pause {
            let _ = stream.write_all(&chunk[..(pause - sent) as usize]);
            let _ = stream.flush();
            thread::sleep(Duration::from_secs(600));
            return;
        }
        if stream.write_all(chunk).is_err() {
            break;
        }
        sent += chunk.len() as u64;
    }
    let _ = stream.flush();
    seen.status = status;
    seen.sent = sent;
    lock().seen.push(seen);
    // Dropping the stream without a TLS close_notify: the client sees the
    // connection break, as when a network path fails mid-transfer.
}

/// The start offset of a `Range: bytes=N-` request that may be honoured
/// (no `If-Range`, or one that matches the current ETag).
fn requested_start(request: &Request, etag: &str) -> Option<u64> {
    let range = request.range.as_deref()?.strip_prefix("bytes=")?;
    if request.if_range.as_deref().is_some_and(|v| v != etag) {
        return None;
    }
    range.split('-').next()?.trim().parse().ok()
}

/// A cheap content fingerprint for the ETag (FNV-1a over a sample).
fn fingerprint(bytes: &[u8]) -> u32 {
    let step = (bytes.len() / 4096).max(1);
    bytes
        .iter()
        .step_by(step)
        .fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}
