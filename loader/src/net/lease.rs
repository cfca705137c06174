//! What a DHCP server granted, read out of its ACK: the address and the
//! options the loader honours (router, DNS, domain, MTU, classless static
//! routes).

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, OptionCode};

use super::route::{self, Route};

/// A DHCPv4 lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub server: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// Option 26, only when it is a usable IPv4 MTU (576..=65535).
    pub mtu: Option<u16>,
    /// Option 121 as (destination, prefix length, gateway); a gateway of
    /// 0.0.0.0 means the destination is on the link.
    pub classless_routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    pub lease_time: Option<Duration>,
}

impl Lease {
    /// Reads a lease from a DHCPACK. Fails without an address.
    pub fn from_ack(ack: &Message) -> Result<Lease, String> {
        let address = ack.yiaddr();
        if address.is_unspecified() || address.is_broadcast() {
            return Err(format!("the ACK assigns no usable address ({address})"));
        }
        let opts = ack.opts();
        let prefix_len = match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => {
                route::prefix_from_mask(*mask).ok_or_else(|| format!("subnet mask {mask} is not contiguous"))?
            }
            _ => 32,
        };
        let addrs = |code| match opts.get(code) {
            Some(DhcpOption::Router(list) | DhcpOption::DomainNameServer(list)) => {
                list.iter().copied().filter(|a| !a.is_unspecified()).collect()
            }
            _ => Vec::new(),
        };
        let classless_routes = match opts.get(OptionCode::ClasslessStaticRoute) {
            Some(DhcpOption::ClasslessStaticRoute(routes)) => routes
                .iter()
                .map(|(net, gw)| (net.network(), net.prefix_len(), *gw))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Lease {
            address,
            prefix_len,
            server: match opts.get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(id)) => Some(*id),
                _ => None,
            },
            routers: addrs(OptionCode::Router),
            dns: addrs(OptionCode::DomainNameServer),
            domain: match opts.get(OptionCode::DomainName) {
                Some(DhcpOption::DomainName(d)) if !d.trim().is_empty() => Some(d.trim().to_owned()),
                _ => None,
            },
            mtu: match opts.get(OptionCode::InterfaceMtu) {
                Some(DhcpOption::InterfaceMtu(mtu)) if *mtu >= 576 => Some(*mtu),
                _ => None,
            },
            classless_routes,
            lease_time: match opts.get(OptionCode::AddressLeaseTime) {
                Some(DhcpOption::AddressLeaseTime(secs)) => Some(Duration::from_secs(u64::from(*secs))),
                _ => None,
            },
        })
    }

    /// The routes to install. With classless static routes the router
    /// option is ignored, as RFC 3442 requires; gateways outside the subnet
    /// get on-link host routes (see [`route::plan_routes`]).
    pub fn routes(&self) -> Vec<Route> {
        let wanted: Vec<Route> = if self.classless_routes.is_empty() {
            self.routers
                .first()
                .copied()
                .map(Route::default_via)
                .into_iter()
                .collect()
        } else {
            self.classless_routes
                .iter()
                .map(|&(destination, prefix_len, gateway)| Route {
                    destination,
                    prefix_len,
                    gateway: (!gateway.is_unspecified()).then_some(gateway),
                })
                .collect()
        };
        route::plan_routes(self.address, self.prefix_len, &wanted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use dhcproto::v4::MessageType;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn ack(options: Vec<DhcpOption>) -> Message {
        let unspec = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(7, unspec, ip("10.0.0.50"), unspec, unspec, &[2, 0, 0, 0, 0, 1]);
        msg.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        for option in options {
            msg.opts_mut().insert(option);
        }
        msg
    }

    #[test]
    fn ordinary_lease() {
        let lease = Lease::from_ack(&ack(vec![
            DhcpOption::SubnetMask(ip("255.255.255.0")),
            DhcpOption::Router(vec![ip("10.0.0.1"), ip("10.0.0.2")]),
            DhcpOption::DomainNameServer(vec![ip("10.0.0.53")]),
            DhcpOption::DomainName("lan.example".into()),
            DhcpOption::InterfaceMtu(1400),
            DhcpOption::AddressLeaseTime(3600),
            DhcpOption::ServerIdentifier(ip("10.0.0.1")),
        ]))
        .unwrap();
        assert_eq!((lease.address, lease.prefix_len), (ip("10.0.0.50"), 24));
        assert_eq!(lease.dns, [ip("10.0.0.53")]);
        assert_eq!(lease.domain.as_deref(), Some("lan.example"));
        assert_eq!(lease.mtu, Some(1400));
        assert_eq!(lease.lease_time, Some(Duration::from_secs(3600)));
        assert_eq!(lease.routes(), [Route::default_via(ip("10.0.0.1"))]);
    }

    #[test]
    fn classless_routes_replace_the_router_option() {
        let net = |s: &str| s.parse::<ipnet::Ipv4Net>().unwrap();
        let lease = Lease::from_ack(&ack(vec![
            DhcpOption::SubnetMask(ip("255.255.255.0")),
            DhcpOption::Router(vec![ip("10.0.0.1")]),
            DhcpOption::ClasslessStaticRoute(vec![
                (net("192.0.2.0/24"), ip("10.0.0.254")),
                (net("0.0.0.0/0"), ip("10.0.0.9")),
            ]),
        ]))
        .unwrap();
        let routes = lease.routes();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].destination, ip("192.0.2.0"));
        assert_eq!(routes[1], Route::default_via(ip("10.0.0.9")));
    }

    #[test]
    fn a_32_lease_reaches_its_router_on_link() {
        let lease = Lease::from_ack(&ack(vec![
            DhcpOption::SubnetMask(ip("255.255.255.255")),
            DhcpOption::Router(vec![ip("172.31.1.1")]),
            DhcpOption::InterfaceMtu(68),
        ]))
        .unwrap();
        assert_eq!(lease.mtu, None, "an MTU below 576 is ignored");
        assert_eq!(
            lease.routes(),
            [
                Route::on_link_host(ip("172.31.1.1")),
                Route::default_via(ip("172.31.1.1"))
            ]
        );
    }

    #[test]
    fn an_ack_without_address_or_with_a_bad_mask_is_refused() {
        let mut msg = ack(vec![]);
        msg.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        assert!(Lease::from_ack(&msg).unwrap_err().contains("no usable address"));
        let msg = ack(vec![DhcpOption::SubnetMask(ip("255.0.255.0"))]);
        assert!(Lease::from_ack(&msg).unwrap_err().contains("not contiguous"));
    }
}
