//! Opening a connection for one request: resolve the host (bounded by the
//! connect deadline), connect to each address in turn (IPv6 and IPv4
//! alternating, each with a share of the deadline: "happy eyeballs" done
//! one at a time), and for `https` complete the TLS handshake. Reads then time out after the read
//! deadline, which is how a stalled body is noticed.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::url::{Host, HttpUrl, Scheme};

/// Socket read size under TLS: rustls asks for at most one record (16 KiB)
/// per read; reading ahead in large pieces makes a tenth of the `recv`
/// calls, and as many fewer ACK round trips through the TCP stack.
const TLS_READ_AHEAD: usize = 256 * 1024;

/// A connection to the server, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, ReadAhead>>),
}

/// A TCP stream read through a large buffer, written to directly.
pub(crate) struct ReadAhead(BufReader<TcpStream>);

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadAhead {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.get_mut().flush()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// What went wrong while connecting; the transfer decides what is fatal.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// DNS, TCP or a TLS problem that may be transient.
    Transient(String),
    /// The TLS handshake failed; the `io::Error` carries the rustls error.
    Tls(io::Error),
}

/// Connects to `url`'s host within `connect_timeout`; reads on the result
/// time out after `read_timeout`.
pub(crate) fn connect(
    url: &HttpUrl,
    tls: &Arc<ClientConfig>,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<Stream, ConnectError> {
    let deadline = Instant::now() + connect_timeout;
    let addresses = resolve(url, connect_timeout)?;
    let tcp = connect_any(&addresses, deadline)?;
    let transient = |what: &str, e: io::Error| ConnectError::Transient(format!("{what}: {e}"));
    tcp.set_nodelay(true).map_err(|e| transient("setting TCP_NODELAY", e))?;
    tcp.set_write_timeout(Some(read_timeout))
        .map_err(|e| transient("setting a write timeout", e))?;
    if url.scheme == Scheme::Http {
        tcp.set_read_timeout(Some(read_timeout))
            .map_err(|e| transient("setting a read timeout", e))?;
        return Ok(Stream::Plain(tcp));
    }
    let name = match &url.host {
        Host::Name(name) => ServerName::try_from(name.clone()),
        Host::V4(ip) => Ok(ServerName::from(std::net::IpAddr::V4(*ip))),
        Host::V6(ip) => Ok(ServerName::from(std::net::IpAddr::V6(*ip))),
    }
    .map_err(|e| ConnectError::Transient(format!("`{}` cannot be used for TLS: {e}", url.host)))?;
    let mut conn = ClientConnection::new(Arc::clone(tls), name)
        .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnectError::Transient("TLS handshake did not finish in time".into()));
        }
        tcp.set_read_timeout(Some(left))
            .map_err(|e| transient("setting a read timeout", e))?;
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
                return Err(ConnectError::Tls(e));
            }
            Err(e) => return Err(transient("TLS handshake", e)),
        }
    }
    tcp.set_read_timeout(Some(read_timeout))
        .map_err(|e| transient("setting a read timeout", e))?;
    let tcp = ReadAhead(BufReader::with_capacity(TLS_READ_AHEAD, tcp));
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

/// The host's addresses. Name lookups run on a helper thread so a
/// resolver that hangs cannot outlast the connect deadline.
fn resolve(url: &HttpUrl, timeout: Duration) -> Result<Vec<SocketAddr>, ConnectError> {
    let name = match &url.host {
        Host::V4(ip) => return Ok(vec![SocketAddr::from((*ip, url.port))]),
        Host::V6(ip) => return Ok(vec![SocketAddr::from((*ip, url.port))]),
        Host::Name(name) => name.clone(),
    };
    let port = url.port;
    let (tx, rx) = mpsc::channel();
    let lookup = name.clone();
    thread::Builder::new()
        .name("dns-lookup".into())
        .spawn(move || {
            let _ = tx.send((lookup.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|e| ConnectError::Transient(format!("starting a DNS lookup: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(addresses)) if !addresses.is_empty() => Ok(interleave_families(addresses)),
        Ok(Ok(_)) => Err(ConnectError::Transient(format!("resolving {name}: no addresses"))),
        Ok(Err(e)) => Err(ConnectError::Transient(format!(
            "resolving {name}: {e} (is /etc/resolv.conf set up?)"
        ))),
        Err(_) => Err(ConnectError::Transient(format!(
            "resolving {name}: no answer within {}s",
            timeout.as_secs()
        ))),
    }
}

/// The resolver's order (IPv6 first where there is an IPv6 route, as musl
/// and glibc sort by RFC 6724), with the families alternating from the
/// first one on (RFC 8305 §4): a name with several AAAA records and a
/// broken IPv6 path reaches its IPv4 address second, not last.
fn interleave_families(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_is_v6 = addresses.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut other): (VecDeque<_>, VecDeque<_>) =
        addresses.into_iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut out = Vec::with_capacity(first.len() + other.len());
    while !first.is_empty() || !other.is_empty() {
        out.extend(first.pop_front());
        out.extend(other.pop_front());
    }
    out
}

/// Tries the addresses in order, sharing the deadline: each gets at least
/// half a second or its fair part of what is left, so one black-holed
/// address cannot use up the whole deadline while others might answer.
fn connect_any(addresses: &[SocketAddr], deadline: Instant) -> Result<TcpStream, ConnectError> {
    let mut errors = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Leave the later addresses some of the time too.
        let share = left / u32::try_from(addresses.len() - i).unwrap_or(1);
        let budget = if i + 1 == addresses.len() {
            left
        } else {
            share.max(Duration::from_millis(500)).min(left)
        };
        match TcpStream::connect_timeout(address, budget) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => errors.push(format!("{address}: {e}")),
        }
    }
    if errors.is_empty() {
        errors.push("no time left to connect".into());
    }
    Err(ConnectError::Transient(format!("connecting: {}", errors.join("; "))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_resolvers_first_choice() {
        let sorted = addrs(&[
            "[2001:db8::1]:443",
            "[2001:db8::2]:443",
            "[2001:db8::3]:443",
            "192.0.2.1:443",
        ]);
        assert_eq!(
            interleave_families(sorted),
            addrs(&[
                "[2001:db8::1]:443",
                "192.0.2.1:443",
                "[2001:db8::2]:443",
                "[2001:db8::3]:443"
            ])
        );
        let v4_first = addrs(&["192.0.2.1:80", "192.0.2.2:80", "[2001:db8::1]:80"]);
        assert_eq!(
            interleave_families(v4_first),
            addrs(&["192.0.2.1:80", "[2001:db8::1]:80", "192.0.2.2:80"])
        );
        let v6_only = addrs(&["[2001:db8::1]:80", "[2001:db8::2]:80"]);
        assert_eq!(interleave_families(v6_only.clone()), v6_only);
        assert_eq!(interleave_families(Vec::new()), []);
    }

    #[test]
    fn a_dead_address_does_not_keep_the_next_one_from_being_tried() {
        // A listener on an ephemeral port, and a closed port before it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let open = listener.local_addr().unwrap();
        let tcp = connect_any(&[closed, open], Instant::now() + Duration::from_secs(5));
        assert_eq!(tcp.unwrap().peer_addr().unwrap(), open);
        let Err(ConnectError::Transient(msg)) = connect_any(&[closed], Instant::now() + Duration::from_secs(5)) else {
            panic!("connecting to a closed port succeeded");
        };
        assert!(msg.contains(&closed.to_string()), "{msg}");
    }
}
