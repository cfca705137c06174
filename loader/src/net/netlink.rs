//! The few rtnetlink requests the loader needs: list links and addresses,
//! set a link up or its MTU, add an address, add a route. Messages come
//! from `netlink-packet-route`; the socket is `netlink-sys`'s blocking one.
//!
//! Netlink, not `/sys/class/net`: sysfs shows the network namespace of
//! whoever mounted it, netlink the one of the calling thread, which is
//! what the namespace tests (and any future container use) need.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::route::{mask, Route};

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
        let replies = self.exchange(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(msg) => Some(link_from(msg)),
                _ => None,
            })
            .collect())
    }

    pub fn addresses(&mut self) -> io::Result<Vec<LinkAddress>> {
        let replies = self.exchange(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(msg) => address_from(msg),
                _ => None,
            })
            .collect())
    }

    /// Sets the link administratively up, and its MTU when given.
    pub fn set_link(&mut self, index: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        self.exchange(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK).map(drop)
    }

    /// Adds (or refreshes) an address with its prefix route.
    pub fn add_address(&mut self, index: u32, address: IpAddr, prefix_len: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix_len;
        msg.header.family = family(address);
        msg.attributes.push(AddressAttribute::Local(address));
        msg.attributes.push(AddressAttribute::Address(address));
        if let IpAddr::V4(v4) = address {
            if prefix_len < 31 {
                let broadcast = u32::from(v4) | !u32::from(mask(prefix_len));
                msg.attributes
                    .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
            }
        }
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.exchange(RouteNetlinkMessage::NewAddress(msg), flags).map(drop)
    }

    /// Adds (or replaces) an IPv4 route through interface `index`.
    pub fn add_route(&mut self, index: u32, route: &Route, metric: u32) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = route.prefix_len;
        msg.header.table = RouteMessage::default().header.table.max(254);
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if route.gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if route.prefix_len > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(route.destination)));
        }
        if let Some(gateway) = route.gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        }
        msg.attributes.push(RouteAttribute::Oif(index));
        msg.attributes.push(RouteAttribute::Priority(metric));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.exchange(RouteNetlinkMessage::NewRoute(msg), flags).map(drop)
    }

    /// Sends one request and collects the replies until the ACK (or the end
    /// of a dump). A kernel error becomes the matching `io::Error`.
    fn exchange(&mut self, request: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(request));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;

        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let size = self.socket.recv(&mut &mut buf[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..size])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad netlink reply: {e}")))?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number == self.sequence {
                    match reply.payload {
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(err) if err.code.is_none() => return Ok(replies),
                        NetlinkPayload::Error(err) => return Err(err.to_io()),
                        NetlinkPayload::InnerMessage(msg) => replies.push(msg),
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

fn family(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn link_from(msg: LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: Vec::new(),
        up: msg.header.flags.contains(LinkFlags::Up),
        carrier: msg.header.flags.contains(LinkFlags::LowerUp),
        ethernet: msg.header.link_layer_type == LinkLayerType::Ether,
        mtu: None,
    };
    for attribute in msg.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(mac) => link.mac = mac,
            LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
            _ => {}
        }
    }
    link
}

fn address_from(msg: AddressMessage) -> Option<LinkAddress> {
    let mut address = None;
    let mut flags = AddressFlags::from_bits_truncate(u32::from(msg.header.flags.bits()));
    for attribute in msg.attributes {
        match attribute {
            // For IPv4 `Local` is the interface's own address; for IPv6
            // only `Address` is sent.
            AddressAttribute::Local(a) => address = Some(a),
            AddressAttribute::Address(a) if address.is_none() => address = Some(a),
            AddressAttribute::Flags(f) => flags = f,
            _ => {}
        }
    }
    Some(LinkAddress {
        index: msg.header.index,
        address: address?,
        prefix_len: msg.header.prefix_len,
        global: msg.header.scope == AddressScope::Universe,
        tentative: flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed),
    })
}
