//! DNS servers from IPv6 router advertisements (RDNSS, RFC 8106). The
//! kernel parses router advertisements itself and hands the options it
//! does not act on (RDNSS among them) to userspace as `RTM_NEWNDUSEROPT`
//! messages on the `RTNLGRP_ND_USEROPT` rtnetlink group, so no raw ICMPv6
//! socket is needed: this module decodes those messages and keeps the
//! servers with their lifetimes.
//!
//! Everything here comes from the network (any host on the link can send
//! an advertisement), so malformed input is ignored, never trusted.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// `RTM_NEWNDUSEROPT` in <linux/rtnetlink.h>.
pub(crate) const RTM_NEWNDUSEROPT: u16 = 68;
/// `RTNLGRP_ND_USEROPT` in <linux/rtnetlink.h>.
pub(crate) const RTNLGRP_ND_USEROPT: u32 = 20;

const AF_INET6: u8 = 10;
/// `sizeof(struct nduseroptmsg)`.
const USEROPT_HEADER_LEN: usize = 16;
const ICMPV6_ROUTER_ADVERTISEMENT: u8 = 134;
/// `NDUSEROPT_SRCADDR`: the router that sent the advertisement.
const NDUSEROPT_SRCADDR: u16 = 1;
const ND_OPT_RDNSS: u8 = 25;
/// RFC 8106 §5.1: all ones means "for ever".
const INFINITE_LIFETIME: u32 = u32::MAX;
/// Servers remembered at once; the resolver uses three, and a flood of
/// advertisements must not grow memory.
const MAX_SERVERS: usize = 8;

/// One RDNSS option as a router sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdnss {
    /// Interface the advertisement arrived on.
    pub index: u32,
    /// The advertising router's (link-local) address, when the kernel said.
    pub router: Option<Ipv6Addr>,
    /// `None`: no expiry. `Some(ZERO)`: the servers are withdrawn.
    pub lifetime: Option<Duration>,
    pub servers: Vec<Ipv6Addr>,
}

/// Decodes the payload of an `RTM_NEWNDUSEROPT` message (after the netlink
/// header): `struct nduseroptmsg`, the ND option, then attributes. Returns
/// `None` for anything but a well-formed RDNSS option from a router
/// advertisement.
pub fn parse_nd_user_option(payload: &[u8]) -> Option<Rdnss> {
    let header = payload.get(..USEROPT_HEADER_LEN)?;
    let options_len = usize::from(u16::from_ne_bytes([header[2], header[3]]));
    let index = i32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
    if header[0] != AF_INET6 || header[8] != ICMPV6_ROUTER_ADVERTISEMENT || index <= 0 {
        return None;
    }
    let options_end = USEROPT_HEADER_LEN.checked_add(options_len)?;
    let options = payload.get(USEROPT_HEADER_LEN..options_end)?;
    let (lifetime, servers) = parse_rdnss_option(options)?;
    let attributes = payload.get(options_end.next_multiple_of(4)..).unwrap_or_default();
    Some(Rdnss {
        index: index.unsigned_abs(),
        router: source_address(attributes),
        lifetime,
        servers,
    })
}

/// The lifetime and servers of an RDNSS option (type, length in units of
/// 8 bytes, 2 reserved, lifetime, addresses; all big-endian). RFC 8106
/// §5.1: the length is 3 + 2 per extra address, so it is odd and at least
/// 3; anything else, or an option longer than the bytes given, is ignored.
/// Addresses that cannot be a server (unspecified, loopback, multicast)
/// are dropped.
pub fn parse_rdnss_option(option: &[u8]) -> Option<(Option<Duration>, Vec<Ipv6Addr>)> {
    let (&kind, &units) = (option.first()?, option.get(1)?);
    let len = usize::from(units) * 8;
    if kind != ND_OPT_RDNSS || units < 3 || units % 2 == 0 || option.len() < len {
        return None;
    }
    let lifetime = u32::from_be_bytes([option[4], option[5], option[6], option[7]]);
    let lifetime = (lifetime != INFINITE_LIFETIME).then(|| Duration::from_secs(u64::from(lifetime)));
    let servers = option[8..len]
        .chunks_exact(16)
        .filter_map(|chunk| <[u8; 16]>::try_from(chunk).ok())
        .map(Ipv6Addr::from)
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback() && !ip.is_multicast())
        .collect();
    Some((lifetime, servers))
}

/// The `NDUSEROPT_SRCADDR` attribute, if present and well formed.
fn source_address(mut rest: &[u8]) -> Option<Ipv6Addr> {
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        let value = rest.get(4..len)?;
        if kind == NDUSEROPT_SRCADDR {
            return <[u8; 16]>::try_from(value).ok().map(Ipv6Addr::from);
        }
        rest = rest.get(len.next_multiple_of(4)..)?;
    }
    None
}

/// The RDNSS servers currently valid, per interface, in the order they
/// were first advertised.
#[derive(Debug, Default)]
pub struct RdnssTable {
    /// (interface, server, expiry; `None` never expires)
    entries: Vec<(u32, Ipv6Addr, Option<Instant>)>,
}

/// What an advertisement changed, for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdnssChange {
    Learned(Rdnss),
    /// Lifetime 0: the router withdrew these servers.
    Withdrawn {
        index: u32,
        servers: Vec<Ipv6Addr>,
    },
}

impl RdnssTable {
    /// Applies one option received at `now`. A lifetime of 0 removes the
    /// servers; any other lifetime sets (or refreshes) their expiry.
    /// Returns what changed: new servers, or withdrawn ones.
    pub fn update(&mut self, option: Rdnss, now: Instant) -> Option<RdnssChange> {
        if option.servers.is_empty() {
            return None;
        }
        if option.lifetime == Some(Duration::ZERO) {
            let before = self.entries.len();
            self.entries
                .retain(|(index, ip, _)| !(*index == option.index && option.servers.contains(ip)));
            return (self.entries.len() != before).then_some(RdnssChange::Withdrawn {
                index: option.index,
                servers: option.servers,
            });
        }
        let expires = option.lifetime.and_then(|lifetime| now.checked_add(lifetime));
        let mut added = false;
        for server in &option.servers {
            let known = self
                .entries
                .iter()
                .position(|(index, ip, _)| *index == option.index && ip == server);
            match known {
                Some(at) => self.entries[at].2 = expires,
                None if self.entries.len() < MAX_SERVERS => {
                    self.entries.push((option.index, *server, expires));
                    added = true;
                }
                None => {}
            }
        }
        // Routers repeat their advertisements: a refresh is not news.
        added.then_some(RdnssChange::Learned(option))
    }

    /// The servers still valid at `now`, as (interface, address).
    pub fn servers(&self, now: Instant) -> Vec<(u32, Ipv6Addr)> {
        self.entries
            .iter()
            .filter(|(_, _, expires)| expires.is_none_or(|t| t > now))
            .map(|&(index, ip, _)| (index, ip))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An RDNSS option as a router puts it on the wire.
    fn rdnss_option(lifetime: u32, servers: &[Ipv6Addr]) -> Vec<u8> {
        let units = 1 + 2 * servers.len() as u8;
        let mut out = vec![ND_OPT_RDNSS, units, 0, 0];
        out.extend_from_slice(&lifetime.to_be_bytes());
        for s in servers {
            out.extend_from_slice(&s.octets());
        }
        out
    }

    /// A `RTM_NEWNDUSEROPT` payload laid out as the kernel's
    /// `ndisc_ra_useropt()` builds it.
    fn user_option_payload(index: i32, icmp_type: u8, option: &[u8], router: Option<Ipv6Addr>) -> Vec<u8> {
        let mut out = vec![AF_INET6, 0];
        out.extend_from_slice(&(option.len() as u16).to_ne_bytes());
        out.extend_from_slice(&index.to_ne_bytes());
        out.extend_from_slice(&[icmp_type, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(option);
        if let Some(router) = router {
            out.extend_from_slice(&20u16.to_ne_bytes());
            out.extend_from_slice(&NDUSEROPT_SRCADDR.to_ne_bytes());
            out.extend_from_slice(&router.octets());
        }
        out
    }

    #[test]
    fn an_rdnss_message_from_the_kernel_decodes() {
        let servers = [ip("2001:db8::53"), ip("fd00::35")];
        let payload = user_option_payload(3, 134, &rdnss_option(600, &servers), Some(ip("fe80::1")));
        assert_eq!(
            parse_nd_user_option(&payload),
            Some(Rdnss {
                index: 3,
                router: Some(ip("fe80::1")),
                lifetime: Some(Duration::from_secs(600)),
                servers: servers.to_vec(),
            })
        );
        let forever = user_option_payload(3, 134, &rdnss_option(u32::MAX, &servers[..1]), None);
        let parsed = parse_nd_user_option(&forever).unwrap();
        assert_eq!((parsed.lifetime, parsed.router), (None, None));
    }

    #[test]
    fn other_messages_and_options_are_ignored() {
        let option = rdnss_option(600, &[ip("2001:db8::53")]);
        // Not from a router advertisement, not IPv6, no interface.
        assert_eq!(parse_nd_user_option(&user_option_payload(3, 135, &option, None)), None);
        let mut v4 = user_option_payload(3, 134, &option, None);
        v4[0] = 2;
        assert_eq!(parse_nd_user_option(&v4), None);
        assert_eq!(parse_nd_user_option(&user_option_payload(0, 134, &option, None)), None);
        // DNSSL (31) shares the layout but is not a server list.
        let mut dnssl = option.clone();
        dnssl[0] = 31;
        assert_eq!(parse_rdnss_option(&dnssl), None);
    }

    #[test]
    fn truncated_or_malformed_options_are_ignored_without_panic() {
        let good = rdnss_option(600, &[ip("2001:db8::53"), ip("2001:db8::54")]);
        // Every truncation of the option, and of a whole message.
        for cut in 0..good.len() {
            assert_eq!(parse_rdnss_option(&good[..cut]), None, "cut at {cut}");
        }
        let payload = user_option_payload(3, 134, &good, Some(ip("fe80::1")));
        for cut in 0..USEROPT_HEADER_LEN + good.len() {
            assert_eq!(parse_nd_user_option(&payload[..cut]), None, "cut at {cut}");
        }
        // A cut attribute loses only the router's address.
        let parsed = parse_nd_user_option(&payload[..payload.len() - 1]).unwrap();
        assert_eq!((parsed.router, parsed.servers.len()), (None, 2));
        // Even or too small lengths (RFC 8106: at least 3, odd).
        for units in [0u8, 1, 2, 4] {
            let mut bad = good.clone();
            bad[1] = units;
            assert_eq!(parse_rdnss_option(&bad), None, "length {units}");
        }
        // An option length beyond the message.
        let mut long = payload.clone();
        long[2..4].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert_eq!(parse_nd_user_option(&long), None);
        // Fuzz-ish: every single-byte corruption of a message.
        for at in 0..payload.len() {
            for value in [0u8, 1, 3, 0x7f, 0xff] {
                let mut bent = payload.clone();
                bent[at] = value;
                let _ = parse_nd_user_option(&bent);
            }
        }
    }

    #[test]
    fn addresses_that_cannot_be_servers_are_dropped() {
        let option = rdnss_option(60, &[Ipv6Addr::UNSPECIFIED, ip("ff02::1"), ip("::1"), ip("fe80::53")]);
        let (_, servers) = parse_rdnss_option(&option).unwrap();
        assert_eq!(servers, [ip("fe80::53")], "link-local servers are legal (RFC 8106)");
    }

    fn rdnss(index: u32, secs: u64, servers: &[&str]) -> Rdnss {
        Rdnss {
            index,
            router: None,
            lifetime: Some(Duration::from_secs(secs)),
            servers: servers.iter().map(|s| ip(s)).collect(),
        }
    }

    #[test]
    fn lifetimes_expire_refresh_and_zero_withdraws() {
        let t0 = Instant::now();
        let mut table = RdnssTable::default();
        let first = table.update(rdnss(2, 10, &["2001:db8::1", "2001:db8::2"]), t0);
        assert_eq!(
            first,
            Some(RdnssChange::Learned(rdnss(2, 10, &["2001:db8::1", "2001:db8::2"])))
        );
        table.update(rdnss(3, 100, &["2001:db8::3"]), t0);
        assert_eq!(table.servers(t0).len(), 3);
        // Expired after 10 s unless refreshed.
        let later = t0 + Duration::from_secs(11);
        assert_eq!(table.servers(later), [(3, ip("2001:db8::3"))]);
        let refresh = table.update(rdnss(2, 10, &["2001:db8::1"]), t0 + Duration::from_secs(5));
        assert_eq!(refresh, None, "a refresh is not reported as news");
        assert_eq!(table.servers(later), [(2, ip("2001:db8::1")), (3, ip("2001:db8::3"))]);
        // Lifetime 0 withdraws, but only on the interface it came from.
        let change = table.update(rdnss(3, 0, &["2001:db8::1", "2001:db8::3"]), t0);
        assert_eq!(
            change,
            Some(RdnssChange::Withdrawn {
                index: 3,
                servers: vec![ip("2001:db8::1"), ip("2001:db8::3")]
            })
        );
        assert_eq!(table.servers(t0), [(2, ip("2001:db8::1")), (2, ip("2001:db8::2"))]);
        // Withdrawing what is not known changes nothing.
        assert_eq!(table.update(rdnss(3, 0, &["2001:db8::9"]), t0), None);
    }

    #[test]
    fn a_flood_of_servers_is_bounded() {
        let t0 = Instant::now();
        let mut table = RdnssTable::default();
        for n in 0..100u16 {
            table.update(rdnss(2, 60, &[&format!("2001:db8::{n:x}")]), t0);
        }
        let kept = table.servers(t0);
        assert_eq!(kept.len(), MAX_SERVERS);
        assert_eq!(kept[0], (2, ip("2001:db8::0")), "the first advertised are kept");
    }
}
