//! Encoding and decoding of the handful of rtnetlink messages the loader
//! uses (rtnetlink(7), <linux/rtnetlink.h>). Hand-written on purpose: the
//! general-purpose `netlink-packet-route` decodes every attribute the
//! kernel knows and cost ~450 KiB in the static binary; these few
//! structures cost a few KiB. Netlink uses the host's byte order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::netlink::{Link, LinkAddress, RouteEntry};

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_SETLINK: u16 = 19;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_GETROUTE: u16 = 26;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_CREATE: u16 = 0x400;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
pub(crate) const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;
const ARPHRD_ETHER: u16 = 1;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_TEMPORARY: u32 = 0x01;
pub(crate) const IFA_F_NODAD: u32 = 0x02;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;
const RT_SCOPE_UNIVERSE: u8 = 0;
pub(crate) const RT_SCOPE_LINK: u8 = 253;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
pub(crate) const RT_TABLE_MAIN_ID: u32 = RT_TABLE_MAIN as u32;
pub(crate) const RTPROT_KERNEL: u8 = 2;
pub(crate) const RTN_UNICAST_KIND: u8 = RTN_UNICAST;

const HEADER_LEN: usize = 16;

/// A netlink message being built: header, fixed part, attributes.
pub(crate) struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    pub(crate) fn new(kind: u16, flags: u16, sequence: u32) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish()
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&sequence.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it
        MessageBuilder { buf }
    }

    /// `struct ifinfomsg`.
    pub(crate) fn link_header(mut self, index: u32, flags: u32, change: u32) -> Self {
        self.buf.extend_from_slice(&[0, 0]); // family, padding
        self.buf.extend_from_slice(&0u16.to_ne_bytes()); // type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    /// `struct ifaddrmsg`.
    pub(crate) fn address_header(mut self, family: Option<IpAddr>, prefix_len: u8, index: u32) -> Self {
        self.buf
            .extend_from_slice(&[family.map_or(0, family_of), prefix_len, 0, RT_SCOPE_UNIVERSE]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    /// `struct rtmsg` for an IPv4 unicast route in the main table.
    pub(crate) fn route_header(self, prefix_len: u8, scope: u8) -> Self {
        self.route_header_in(AF_INET, prefix_len, scope)
    }

    /// `struct rtmsg` for a unicast route of `family`'s kind of `address`
    /// in the main table.
    pub(crate) fn route_header_for(self, address: IpAddr, prefix_len: u8, scope: u8) -> Self {
        self.route_header_in(family_of(address), prefix_len, scope)
    }

    fn route_header_in(mut self, family: u8, prefix_len: u8, scope: u8) -> Self {
        self.buf
            .extend_from_slice(&[family, prefix_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST]);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self
    }

    /// `struct rtmsg` of a dump request: every family, every table.
    pub(crate) fn route_header_dump(mut self) -> Self {
        self.buf.extend_from_slice(&[0; 12]);
        self
    }

    pub(crate) fn attribute(mut self, kind: u16, payload: &[u8]) -> Self {
        let len = 4 + payload.len();
        // Attributes here are a few bytes; the kernel limits them to u16.
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }

    pub(crate) fn mtu(self, mtu: u32) -> Self {
        self.attribute(IFLA_MTU, &mtu.to_ne_bytes())
    }

    pub(crate) fn local_address(self, address: IpAddr) -> Self {
        let bytes = ip_bytes(address);
        self.attribute(IFA_LOCAL, &bytes).attribute(IFA_ADDRESS, &bytes)
    }

    pub(crate) fn broadcast(self, address: Ipv4Addr) -> Self {
        self.attribute(IFA_BROADCAST, &address.octets())
    }

    /// `IFA_FLAGS` (e.g. `IFA_F_NODAD`: usable at once, no duplicate
    /// address detection for an address carried over from a running system).
    pub(crate) fn address_flags(self, flags: u32) -> Self {
        self.attribute(IFA_FLAGS, &flags.to_ne_bytes())
    }

    pub(crate) fn route_destination_ip(self, destination: IpAddr) -> Self {
        self.attribute(RTA_DST, &ip_bytes(destination))
    }

    pub(crate) fn route_gateway_ip(self, gateway: IpAddr) -> Self {
        self.attribute(RTA_GATEWAY, &ip_bytes(gateway))
    }

    pub(crate) fn route_destination(self, destination: Ipv4Addr) -> Self {
        self.attribute(RTA_DST, &destination.octets())
    }

    pub(crate) fn route_gateway(self, gateway: Ipv4Addr) -> Self {
        self.attribute(RTA_GATEWAY, &gateway.octets())
    }

    pub(crate) fn route_device(self, index: u32, metric: u32) -> Self {
        self.attribute(RTA_OIF, &index.to_ne_bytes())
            .attribute(RTA_PRIORITY, &metric.to_ne_bytes())
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn family_of(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn ip_bytes(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// One message out of a datagram from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Received<'a> {
    pub(crate) kind: u16,
    pub(crate) sequence: u32,
    pub(crate) payload: &'a [u8],
}

/// Splits a datagram into messages; stops at the first malformed one.
pub(crate) fn messages(datagram: &[u8]) -> Vec<Received<'_>> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= HEADER_LEN {
        let len = u32_at(rest, 0) as usize;
        if len < HEADER_LEN || len > rest.len() {
            break;
        }
        out.push(Received {
            kind: u16::from_ne_bytes([rest[4], rest[5]]),
            sequence: u32_at(rest, 8),
            payload: &rest[HEADER_LEN..len],
        });
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    out
}

/// The errno of an `NLMSG_ERROR` payload (0 for an ACK).
pub(crate) fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map_or(-libc_eproto(), |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

const fn libc_eproto() -> i32 {
    71 // EPROTO
}

/// Iterates `(type, payload)` over the attributes after a fixed header.
fn attributes(mut rest: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        if len < 4 || len > rest.len() {
            return None;
        }
        // The top bits of the type are flags (NLA_F_NESTED, …).
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        let payload = &rest[4..len];
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        Some((kind, payload))
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes an `RTM_NEWLINK` payload.
pub(crate) fn parse_link(payload: &[u8]) -> Option<Link> {
    if payload.len() < 16 {
        return None;
    }
    let flags = u32_at(payload, 8);
    let mut link = Link {
        index: u32_at(payload, 4),
        name: String::new(),
        mac: Vec::new(),
        up: flags & IFF_UP != 0,
        carrier: flags & IFF_LOWER_UP != 0,
        ethernet: u16::from_ne_bytes([payload[2], payload[3]]) == ARPHRD_ETHER,
        mtu: None,
    };
    for (kind, value) in attributes(&payload[16..]) {
        match kind {
            IFLA_IFNAME => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                link.name = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            IFLA_ADDRESS => link.mac = value.to_vec(),
            IFLA_MTU if value.len() == 4 => link.mtu = Some(u32_at(value, 0)),
            _ => {}
        }
    }
    Some(link)
}

/// Decodes an `RTM_NEWADDR` payload.
pub(crate) fn parse_address(payload: &[u8]) -> Option<LinkAddress> {
    if payload.len() < 8 {
        return None;
    }
    let family = payload[0];
    let mut flags = u32::from(payload[2]);
    let (mut local, mut address) = (None, None);
    for (kind, value) in attributes(&payload[8..]) {
        let ip = match (family, value.len()) {
            (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(value[0], value[1], value[2], value[3]))),
            (AF_INET6, 16) => <[u8; 16]>::try_from(value).ok().map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        };
        match kind {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            IFA_FLAGS if value.len() == 4 => flags = u32_at(value, 0),
            _ => {}
        }
    }
    Some(LinkAddress {
        index: u32_at(payload, 4),
        // IPv4 reports the interface's own address as IFA_LOCAL (IFA_ADDRESS
        // is the peer on point-to-point links); IPv6 sends only IFA_ADDRESS.
        address: local.or(address)?,
        prefix_len: payload[1],
        global: payload[3] == RT_SCOPE_UNIVERSE,
        tentative: flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0,
        temporary: flags & (IFA_F_TEMPORARY | IFA_F_DEPRECATED) != 0,
    })
}

/// Decodes an `RTM_NEWROUTE` payload (IPv4 or IPv6).
pub(crate) fn parse_route(payload: &[u8]) -> Option<RouteEntry> {
    if payload.len() < 12 {
        return None;
    }
    let family = payload[0];
    let unspecified = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut route = RouteEntry {
        destination: unspecified,
        prefix_len: payload[1],
        gateway: None,
        oif: None,
        table: u32::from(payload[4]),
        protocol: payload[5],
        scope: payload[6],
        kind: payload[7],
        metric: None,
    };
    for (kind, value) in attributes(&payload[12..]) {
        let ip = match (family, value.len()) {
            (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(value[0], value[1], value[2], value[3]))),
            (AF_INET6, 16) => <[u8; 16]>::try_from(value).ok().map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        };
        match kind {
            RTA_DST => route.destination = ip?,
            RTA_GATEWAY => route.gateway = ip,
            RTA_OIF if value.len() == 4 => route.oif = Some(u32_at(value, 0)),
            RTA_PRIORITY if value.len() == 4 => route.metric = Some(u32_at(value, 0)),
            RTA_TABLE if value.len() == 4 => route.table = u32_at(value, 0),
            _ => {}
        }
    }
    Some(route)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_route_request_has_the_kernel_layout() {
        let msg = MessageBuilder::new(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK, 7)
            .route_header(24, RT_SCOPE_LINK)
            .route_destination(Ipv4Addr::new(192, 0, 2, 0))
            .route_device(3, 100)
            .finish();
        // 16 header + 12 rtmsg + 3 attributes of 8 bytes.
        assert_eq!(msg.len(), 52);
        assert_eq!(u32_at(&msg, 0), 52);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), RTM_NEWROUTE);
        assert_eq!(u32_at(&msg, 8), 7);
        assert_eq!(&msg[16..28], &[AF_INET, 24, 0, 0, 254, 3, 253, 1, 0, 0, 0, 0]);
        let attrs: Vec<_> = attributes(&msg[28..]).collect();
        assert_eq!(attrs[0], (RTA_DST, &[192, 0, 2, 0][..]));
        assert_eq!(attrs[1], (RTA_OIF, &3u32.to_ne_bytes()[..]));
        assert_eq!(attrs[2], (RTA_PRIORITY, &100u32.to_ne_bytes()[..]));
    }

    #[test]
    fn odd_sized_attributes_are_padded() {
        let msg = MessageBuilder::new(RTM_SETLINK, 0, 1)
            .attribute(99, &[1, 2, 3, 4, 5])
            .finish();
        assert_eq!(msg.len(), 16 + 12);
        assert_eq!(
            u16::from_ne_bytes([msg[16], msg[17]]),
            9,
            "the length excludes the padding"
        );
    }

    fn link_payload(flags: u32, kind: u16, name: &[u8]) -> Vec<u8> {
        // Reuse the builder for the fixed part and attributes, then strip
        // the netlink header: a kernel reply has the same layout.
        let mut msg = MessageBuilder::new(RTM_NEWLINK, 0, 0)
            .link_header(5, flags, 0)
            .attribute(IFLA_IFNAME, name)
            .attribute(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 9])
            .attribute(IFLA_MTU, &1500u32.to_ne_bytes())
            .finish();
        msg[18..20].copy_from_slice(&kind.to_ne_bytes());
        msg.split_off(HEADER_LEN)
    }

    #[test]
    fn links_decode() {
        let link = parse_link(&link_payload(IFF_UP | IFF_LOWER_UP, ARPHRD_ETHER, b"eth0\0")).unwrap();
        assert_eq!(
            link,
            Link {
                index: 5,
                name: "eth0".into(),
                mac: vec![2, 0, 0, 0, 0, 9],
                up: true,
                carrier: true,
                ethernet: true,
                mtu: Some(1500),
            }
        );
        let lo = parse_link(&link_payload(IFF_UP, 772, b"lo\0")).unwrap();
        assert!(!lo.carrier && !lo.ethernet);
        assert_eq!(parse_link(&[0; 8]), None);
    }

    #[test]
    fn addresses_decode_with_flags() {
        let v6: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let payload = MessageBuilder::new(RTM_NEWADDR, 0, 0)
            .address_header(Some(IpAddr::V6(v6)), 64, 2)
            .attribute(IFA_ADDRESS, &v6.octets())
            .attribute(IFA_FLAGS, &IFA_F_TENTATIVE.to_ne_bytes())
            .finish()
            .split_off(HEADER_LEN);
        let record = parse_address(&payload).unwrap();
        assert_eq!(record.address, IpAddr::V6(v6));
        assert_eq!(
            (record.index, record.prefix_len, record.global, record.tentative),
            (2, 64, true, true)
        );

        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
        let payload = MessageBuilder::new(RTM_NEWADDR, 0, 0)
            .address_header(Some(v4), 24, 3)
            .local_address(v4)
            .finish()
            .split_off(HEADER_LEN);
        let record = parse_address(&payload).unwrap();
        assert_eq!((record.address, record.tentative), (v4, false));
    }

    #[test]
    fn datagrams_split_into_messages_and_errors_decode() {
        let mut datagram = MessageBuilder::new(NLMSG_ERROR, 0, 4).attribute(1, &[]).finish();
        // An NLMSG_ERROR payload starts with the negative errno.
        datagram[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        datagram.extend(MessageBuilder::new(NLMSG_DONE, 0, 4).finish());
        let msgs = messages(&datagram);
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].kind, msgs[0].sequence), (NLMSG_ERROR, 4));
        assert_eq!(error_code(msgs[0].payload), -17);
        assert_eq!(msgs[1].kind, NLMSG_DONE);
        // A truncated datagram yields what is complete.
        assert_eq!(messages(&datagram[..datagram.len() - 1]).len(), 1);
        assert!(messages(&[1, 2, 3]).is_empty());
    }
}
