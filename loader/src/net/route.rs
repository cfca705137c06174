//! IPv4 routes and the rule that makes odd gateways work: a gateway outside
//! the address's subnet (a /32 address, or a VPS provider's gateway in
//! another network) is reached through an on-link host route added first.

use std::net::Ipv4Addr;

/// One IPv4 route on the configured interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix_len: u8,
    /// `None`: the destination is on the link (scope link, no next hop).
    pub gateway: Option<Ipv4Addr>,
}

impl Route {
    pub fn default_via(gateway: Ipv4Addr) -> Route {
        Route {
            destination: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            gateway: Some(gateway),
        }
    }

    pub fn on_link_host(host: Ipv4Addr) -> Route {
        Route {
            destination: host,
            prefix_len: 32,
            gateway: None,
        }
    }

    fn covers(&self, host: Ipv4Addr) -> bool {
        in_subnet(self.destination, self.prefix_len, host)
    }
}

/// The netmask for a prefix length (0..=32).
pub fn mask(prefix_len: u8) -> Ipv4Addr {
    let bits = u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32))).unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// The prefix length of a contiguous netmask, `None` for masks like
/// `255.0.255.0`.
pub fn prefix_from_mask(netmask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(netmask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// Whether `host` is inside `network/prefix_len`.
pub fn in_subnet(network: Ipv4Addr, prefix_len: u8, host: Ipv4Addr) -> bool {
    let m = u32::from(mask(prefix_len));
    u32::from(network) & m == u32::from(host) & m
}

/// The routes to install, in order, for `address/prefix_len` and the
/// `wanted` routes: each gateway that is neither inside the subnet nor
/// covered by an earlier on-link route gets an on-link host route first.
pub fn plan_routes(address: Ipv4Addr, prefix_len: u8, wanted: &[Route]) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for route in wanted {
        if let Some(gateway) = route.gateway {
            let reachable = in_subnet(address, prefix_len, gateway)
                || out
                    .iter()
                    .chain(wanted)
                    .any(|r| r.gateway.is_none() && r.covers(gateway));
            let host = Route::on_link_host(gateway);
            if !reachable && !out.contains(&host) {
                out.push(host);
            }
        }
        if !out.contains(route) {
            out.push(*route);
        }
    }
    // On-link routes first: the kernel refuses a gateway it cannot reach.
    out.sort_by_key(|r| r.gateway.is_some());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn masks_and_prefixes_round_trip() {
        for p in 0..=32 {
            assert_eq!(prefix_from_mask(mask(p)), Some(p));
        }
        assert_eq!(mask(24), ip("255.255.255.0"));
        assert_eq!(prefix_from_mask(ip("255.0.255.0")), None);
        assert_eq!(prefix_from_mask(ip("0.0.0.255")), None);
    }

    #[test]
    fn gateway_inside_the_subnet_needs_no_extra_route() {
        let routes = plan_routes(ip("192.168.1.10"), 24, &[Route::default_via(ip("192.168.1.1"))]);
        assert_eq!(routes, [Route::default_via(ip("192.168.1.1"))]);
    }

    #[test]
    fn gateway_outside_the_subnet_gets_an_on_link_route_first() {
        // A VPS-style /32 with the gateway in another network.
        let routes = plan_routes(ip("203.0.113.7"), 32, &[Route::default_via(ip("169.254.0.1"))]);
        assert_eq!(
            routes,
            [
                Route::on_link_host(ip("169.254.0.1")),
                Route::default_via(ip("169.254.0.1"))
            ]
        );
    }

    #[test]
    fn an_explicit_on_link_route_covers_the_gateway() {
        let on_link = Route {
            destination: ip("10.1.0.0"),
            prefix_len: 16,
            gateway: None,
        };
        let wanted = [Route::default_via(ip("10.1.2.3")), on_link];
        assert_eq!(
            plan_routes(ip("192.0.2.5"), 32, &wanted),
            [on_link, Route::default_via(ip("10.1.2.3"))]
        );
    }
}
