//! The few rtnetlink requests the loader needs: list links and addresses,
//! set a link up or its MTU, add an address, add a route; and a listener
//! for the router-advertisement options the kernel passes on (RDNSS). The
//! socket is
//! `netlink-sys`'s blocking one; the messages are encoded by
//! [`super::rtnl_codec`].
//!
//! Netlink, not `/sys/class/net`: sysfs shows the network namespace of
//! whoever mounted it, netlink the one of the calling thread, which is
//! what the namespace tests (and any future container use) need.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::rdnss::{RTM_NEWNDUSEROPT, RTNLGRP_ND_USEROPT};
use super::route::{mask, Route};
use super::rtnl_codec::{self as codec, MessageBuilder};

/// A network interface as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Vec<u8>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The driver reports a carrier (`IFF_LOWER_UP`).
    pub carrier: bool,
    /// An Ethernet-type interface (not loopback, tunnel, …).
    pub ethernet: bool,
    pub mtu: Option<u32>,
}

/// An address assigned to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddress {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
    /// Global scope (not link-local, not host).
    pub global: bool,
    /// Still doing duplicate address detection, or failed it.
    pub tentative: bool,
    /// A temporary (privacy) or deprecated IPv6 address.
    pub temporary: bool,
}

/// A route from the kernel's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// The network (`0.0.0.0` or `::` with prefix 0 for a default route).
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    /// The output interface's index.
    pub oif: Option<u32>,
    /// Routing table (254 = main).
    pub table: u32,
    /// Who added it (2 = the kernel, for an address's own prefix).
    pub protocol: u8,
    pub scope: u8,
    /// Route type (1 = unicast).
    pub kind: u8,
    pub metric: Option<u32>,
}

/// A route-netlink connection of the calling thread's network namespace.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, sequence: 0 })
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let seq = self.next_sequence();
        let request = MessageBuilder::new(codec::RTM_GETLINK, codec::NLM_F_REQUEST | codec::NLM_F_DUMP, seq)
            .link_header(0, 0, 0)
            .finish();
        let mut links = Vec::new();
        self.exchange(&request, seq, |kind, payload| {
            if kind == codec::RTM_NEWLINK {
                links.extend(codec::parse_link(payload));
            }
        })?;
        Ok(links)
    }

    pub fn addresses(&mut self) -> io::Result<Vec<LinkAddress>> {
        let seq = self.next_sequence();
        let request = MessageBuilder::new(codec::RTM_GETADDR, codec::NLM_F_REQUEST | codec::NLM_F_DUMP, seq)
            .address_header(None, 0, 0)
            .finish();
        let mut addresses = Vec::new();
        self.exchange(&request, seq, |kind, payload| {
            if kind == codec::RTM_NEWADDR {
                addresses.extend(codec::parse_address(payload));
            }
        })?;
        Ok(addresses)
    }

    /// Every route of every table, IPv4 and IPv6.
    pub fn routes(&mut self) -> io::Result<Vec<RouteEntry>> {
        let seq = self.next_sequence();
        let request = MessageBuilder::new(codec::RTM_GETROUTE, codec::NLM_F_REQUEST | codec::NLM_F_DUMP, seq)
            .route_header_dump()
            .finish();
        let mut routes = Vec::new();
        self.exchange(&request, seq, |kind, payload| {
            if kind == codec::RTM_NEWROUTE {
                routes.extend(codec::parse_route(payload));
            }
        })?;
        Ok(routes)
    }

    /// Sets the link administratively up, and its MTU when given.
    pub fn set_link(&mut self, index: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        let seq = self.next_sequence();
        let (flags, change) = if up { (codec::IFF_UP, codec::IFF_UP) } else { (0, 0) };
        let mut request = MessageBuilder::new(codec::RTM_SETLINK, codec::NLM_F_REQUEST | codec::NLM_F_ACK, seq)
            .link_header(index, flags, change);
        if let Some(mtu) = mtu {
            request = request.mtu(mtu);
        }
        self.exchange(&request.finish(), seq, |_, _| {})
    }

    /// Adds (or refreshes) an address with its prefix route.
    pub fn add_address(&mut self, index: u32, address: IpAddr, prefix_len: u8) -> io::Result<()> {
        let seq = self.next_sequence();
        let flags = codec::NLM_F_REQUEST | codec::NLM_F_ACK | codec::NLM_F_CREATE | codec::NLM_F_REPLACE;
        let mut request = MessageBuilder::new(codec::RTM_NEWADDR, flags, seq)
            .address_header(Some(address), prefix_len, index)
            .local_address(address);
        if let IpAddr::V4(v4) = address {
            if prefix_len < 31 {
                request = request.broadcast(Ipv4Addr::from(u32::from(v4) | !u32::from(mask(prefix_len))));
            }
        }
        self.exchange(&request.finish(), seq, |_, _| {})
    }

    /// Adds (or refreshes) an address that is usable at once: no duplicate
    /// address detection for IPv6 (an address carried over from the
    /// system this one replaces, on the same link).
    pub fn add_address_nodad(&mut self, index: u32, address: IpAddr, prefix_len: u8) -> io::Result<()> {
        let seq = self.next_sequence();
        let flags = codec::NLM_F_REQUEST | codec::NLM_F_ACK | codec::NLM_F_CREATE | codec::NLM_F_REPLACE;
        let mut request = MessageBuilder::new(codec::RTM_NEWADDR, flags, seq)
            .address_header(Some(address), prefix_len, index)
            .local_address(address)
            .address_flags(codec::IFA_F_NODAD);
        if let IpAddr::V4(v4) = address {
            if prefix_len < 31 {
                request = request.broadcast(Ipv4Addr::from(u32::from(v4) | !u32::from(mask(prefix_len))));
            }
        }
        self.exchange(&request.finish(), seq, |_, _| {})
    }

    /// Adds (or replaces) an IPv4 or IPv6 route through interface `index`:
    /// on-link without a gateway.
    pub fn add_route_ip(
        &mut self,
        index: u32,
        destination: IpAddr,
        prefix_len: u8,
        gateway: Option<IpAddr>,
        metric: u32,
    ) -> io::Result<()> {
        let seq = self.next_sequence();
        let flags = codec::NLM_F_REQUEST | codec::NLM_F_ACK | codec::NLM_F_CREATE | codec::NLM_F_REPLACE;
        let scope = if gateway.is_some() { 0 } else { codec::RT_SCOPE_LINK };
        let mut request =
            MessageBuilder::new(codec::RTM_NEWROUTE, flags, seq).route_header_for(destination, prefix_len, scope);
        if prefix_len > 0 {
            request = request.route_destination_ip(destination);
        }
        if let Some(gateway) = gateway {
            request = request.route_gateway_ip(gateway);
        }
        self.exchange(&request.route_device(index, metric).finish(), seq, |_, _| {})
    }

    /// Adds (or replaces) an IPv4 route through interface `index`.
    pub fn add_route(&mut self, index: u32, route: &Route, metric: u32) -> io::Result<()> {
        let seq = self.next_sequence();
        let flags = codec::NLM_F_REQUEST | codec::NLM_F_ACK | codec::NLM_F_CREATE | codec::NLM_F_REPLACE;
        let scope = if route.gateway.is_some() {
            0
        } else {
            codec::RT_SCOPE_LINK
        };
        let mut request = MessageBuilder::new(codec::RTM_NEWROUTE, flags, seq).route_header(route.prefix_len, scope);
        if route.prefix_len > 0 {
            request = request.route_destination(route.destination);
        }
        if let Some(gateway) = route.gateway {
            request = request.route_gateway(gateway);
        }
        self.exchange(&request.route_device(index, metric).finish(), seq, |_, _| {})
    }

    fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// Sends `request` and hands every reply of sequence `seq` to `each`
    /// until the ACK or the end of a dump. A kernel error becomes the
    /// matching `io::Error` (e.g. EEXIST, EPERM).
    fn exchange(&mut self, request: &[u8], seq: u32, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.socket.send(request, 0)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let size = self.socket.recv(&mut &mut buf[..], 0)?;
            for msg in codec::messages(&buf[..size]) {
                if msg.sequence != seq {
                    continue;
                }
                match msg.kind {
                    codec::NLMSG_DONE => return Ok(()),
                    codec::NLMSG_ERROR => {
                        return match codec::error_code(msg.payload) {
                            0 => Ok(()),
                            code => Err(io::Error::from_raw_os_error(code.saturating_neg())),
                        };
                    }
                    kind => each(kind, msg.payload),
                }
            }
        }
    }
}

/// A socket subscribed to `RTNLGRP_ND_USEROPT`: the kernel sends it the
/// options of every router advertisement it does not handle itself. Its
/// own socket, so these messages never mix with request replies; opened
/// before the links come up so the first advertisement is not missed (the
/// kernel queues messages until they are read).
pub struct UserOptListener {
    socket: Socket,
}

impl UserOptListener {
    pub fn open() -> io::Result<UserOptListener> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.add_membership(RTNLGRP_ND_USEROPT)?;
        socket.set_non_blocking(true)?;
        Ok(UserOptListener { socket })
    }

    /// Hands the payload of every queued `RTM_NEWNDUSEROPT` message to
    /// `each`, without waiting for more.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.socket.recv(&mut &mut buf[..], 0) {
                Ok(size) => {
                    for msg in codec::messages(&buf[..size]) {
                        if msg.kind == RTM_NEWNDUSEROPT {
                            each(msg.payload);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // The queue overflowed and messages were dropped; what is
                // queued after that is still worth reading, and routers
                // repeat their advertisements.
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
