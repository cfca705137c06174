//! A DHCPv4 client for one interface: DISCOVER → OFFER → REQUEST → ACK,
//! with retransmissions and a deadline. The `dhcproto` crate encodes and
//! decodes the messages.
//!
//! It uses a plain UDP socket bound to port 68 on the device
//! (`SO_BINDTODEVICE`) and sets the BROADCAST flag, so servers answer to
//! 255.255.255.255 and the reply arrives although the interface has no
//! address yet (RFC 2131 §4.1 requires servers to honour the flag). This
//! avoids raw packet sockets and their `unsafe`. Leases are not renewed:
//! an install takes minutes, leases last hours; the lease time is reported.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dhcproto::v4::{
    Decodable, Decoder, DhcpOption, Encodable, Encoder, Flags, Message, MessageType, Opcode, OptionCode,
};

use super::lease::Lease;
use super::netlink::Link;

/// Why no lease was obtained on an interface.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("opening the DHCP socket on {iface}: {source}")]
    Socket {
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error("sending a DHCP request on {iface}: {source}")]
    Send {
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error("{iface} has no usable hardware address for DHCP")]
    HardwareAddress { iface: String },
    #[error("no DHCP offer on {iface} after {}s ({discovers} DISCOVERs sent): is a DHCP server on that network?", .waited.as_secs())]
    NoOffer {
        iface: String,
        waited: Duration,
        discovers: u32,
    },
    #[error("the DHCP server {server} on {iface} sent an unusable lease: {detail}")]
    BadLease {
        iface: String,
        server: String,
        detail: String,
    },
    #[error("DHCP on {iface} stopped: another interface is configured")]
    Cancelled { iface: String },
}

/// Retransmission timing. The first DISCOVER waits `first_wait`, each
/// further one twice as long up to `max_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpTiming {
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl Default for DhcpTiming {
    fn default() -> Self {
        DhcpTiming {
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(4),
        }
    }
}

/// Progress of one interface's DHCP exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpStep {
    Discover { attempt: u32 },
    Offer { address: Ipv4Addr, server: Ipv4Addr },
    Nak { server: Ipv4Addr },
}

/// Runs DHCP on `link` until a lease, the `deadline`, or `cancel`.
pub fn obtain_lease(
    link: &Link,
    timing: DhcpTiming,
    deadline: Instant,
    cancel: &AtomicBool,
    on_step: &dyn Fn(DhcpStep),
) -> Result<Lease, DhcpError> {
    let iface = link.name.clone();
    let _span = tracing::info_span!("dhcp", iface = %iface).entered();
    if link.mac.is_empty() || link.mac.len() > 16 {
        return Err(DhcpError::HardwareAddress { iface });
    }
    let socket = dhcp_socket(&iface).map_err(|source| DhcpError::Socket {
        iface: iface.clone(),
        source,
    })?;
    let mut session = Session {
        socket,
        iface,
        mac: link.mac.clone(),
        xid: random_xid(),
        started: Instant::now(),
        cancel,
    };
    let mut discovers = 0u32;
    loop {
        let mut wait = timing.first_wait;
        let offer = loop {
            discovers += 1;
            on_step(DhcpStep::Discover { attempt: discovers });
            session.send(&session.discover())?;
            let until = deadline.min(Instant::now() + wait);
            if let Some(offer) = session.receive(MessageType::Offer, until)? {
                break offer;
            }
            tracing::debug!(discovers, waited_ms = wait.as_millis() as u64, "no offer yet");
            if Instant::now() >= deadline {
                return Err(DhcpError::NoOffer {
                    iface: session.iface.clone(),
                    waited: session.started.elapsed(),
                    discovers,
                });
            }
            wait = (wait * 2).min(timing.max_wait);
        };
        let server = server_id(&offer);
        on_step(DhcpStep::Offer {
            address: offer.yiaddr(),
            server,
        });
        let request = session.request(&offer);
        for _ in 0..3 {
            session.send(&request)?;
            let until = deadline.min(Instant::now() + timing.max_wait);
            match session.receive_ack(until)? {
                Some(reply) if reply.opts().has_msg_type(MessageType::Ack) => {
                    tracing::info!(address = %reply.yiaddr(), %server, "lease acknowledged");
                    return Lease::from_ack(&reply).map_err(|detail| DhcpError::BadLease {
                        iface: session.iface.clone(),
                        server: server.to_string(),
                        detail,
                    });
                }
                Some(_) => {
                    on_step(DhcpStep::Nak { server });
                    break;
                }
                None if Instant::now() >= deadline => break,
                None => tracing::debug!(%server, "no answer to the request; asking again"),
            }
        }
        // No ACK (or a NAK): start over with a new transaction.
        session.xid = random_xid();
        if Instant::now() >= deadline {
            return Err(DhcpError::NoOffer {
                iface: session.iface.clone(),
                waited: session.started.elapsed(),
                discovers,
            });
        }
    }
}

struct Session<'a> {
    socket: UdpSocket,
    iface: String,
    mac: Vec<u8>,
    xid: u32,
    started: Instant,
    cancel: &'a AtomicBool,
}

impl Session<'_> {
    fn base(&self, kind: MessageType) -> Message {
        let unspec = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(self.xid, unspec, unspec, unspec, unspec, &self.mac);
        msg.set_flags(Flags::default().set_broadcast());
        msg.set_secs(u16::try_from(self.started.elapsed().as_secs()).unwrap_or(u16::MAX));
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut client_id = vec![1u8];
        client_id.extend_from_slice(&self.mac);
        opts.insert(DhcpOption::ClientIdentifier(client_id));
        opts.insert(DhcpOption::MaxMessageSize(1500));
        opts.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::DomainName,
            OptionCode::InterfaceMtu,
            OptionCode::BroadcastAddr,
            OptionCode::ClasslessStaticRoute,
        ]));
        msg
    }

    fn discover(&self) -> Message {
        self.base(MessageType::Discover)
    }

    fn request(&self, offer: &Message) -> Message {
        let mut msg = self.base(MessageType::Request);
        msg.opts_mut().insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        msg.opts_mut().insert(DhcpOption::ServerIdentifier(server_id(offer)));
        msg
    }

    fn send(&self, msg: &Message) -> Result<(), DhcpError> {
        let failed = |source| DhcpError::Send {
            iface: self.iface.clone(),
            source,
        };
        tracing::debug!(kind = ?msg.opts().msg_type(), xid = msg.xid(), "sending");
        let mut bytes = Vec::with_capacity(576);
        msg.encode(&mut Encoder::new(&mut bytes))
            .map_err(|e| failed(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())))?;
        self.socket
            .send_to(&bytes, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67))
            .map_err(failed)?;
        Ok(())
    }

    fn receive_ack(&self, until: Instant) -> Result<Option<Message>, DhcpError> {
        self.receive_any(&[MessageType::Ack, MessageType::Nak], until)
    }

    fn receive(&self, kind: MessageType, until: Instant) -> Result<Option<Message>, DhcpError> {
        self.receive_any(&[kind], until)
    }

    /// Waits for a reply to this transaction of one of `kinds`, ignoring
    /// everything else on the wire.
    fn receive_any(&self, kinds: &[MessageType], until: Instant) -> Result<Option<Message>, DhcpError> {
        let mut buf = [0u8; 1500];
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(DhcpError::Cancelled {
                    iface: self.iface.clone(),
                });
            }
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            // Wake at least every 200 ms to notice cancellation.
            let slice = (until - now).min(Duration::from_millis(200));
            let _ = self.socket.set_read_timeout(Some(slice.max(Duration::from_millis(1))));
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(DhcpError::Socket {
                        iface: self.iface.clone(),
                        source,
                    })
                }
            };
            let Ok(msg) = Message::decode(&mut Decoder::new(&buf[..n])) else {
                tracing::trace!(bytes = n, "ignored an undecodable packet");
                continue;
            };
            let ours = msg.opcode() == Opcode::BootReply
                && msg.xid() == self.xid
                && msg.chaddr().get(..self.mac.len()) == Some(&self.mac[..]);
            let wanted = msg.opts().msg_type().is_some_and(|t| kinds.contains(&t));
            let kind = msg.opts().msg_type();
            if ours && wanted {
                tracing::debug!(?kind, address = %msg.yiaddr(), server = %server_id(&msg), "received");
                return Ok(Some(msg));
            }
            tracing::trace!(?kind, xid = msg.xid(), ours, "ignored a reply not for this exchange");
        }
    }
}

fn server_id(msg: &Message) -> Ipv4Addr {
    match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        _ => msg.siaddr(),
    }
}

fn random_xid() -> u32 {
    let mut bytes = [0u8; 4];
    // Without randomness a fixed xid still works; replies are also matched
    // on the hardware address.
    let _ = getrandom::fill(&mut bytes);
    u32::from_ne_bytes(bytes)
}

/// A UDP socket on 0.0.0.0:68 bound to `iface`, allowed to broadcast.
/// `SO_REUSEADDR` lets one socket per interface coexist.
fn dhcp_socket(iface: &str) -> io::Result<UdpSocket> {
    use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;

    let fd = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::Broadcast, &true)?;
    setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(iface))?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, 68))?;
    Ok(UdpSocket::from(fd))
}
