//! A static network configuration matched to interfaces by MAC address:
//! `loader.iface=` (one per interface) and `loader.dns=`.
//!
//! `loader takeover` writes these from the running system's network
//! (addresses, routes, MTU), so a provider without DHCP keeps working
//! after the jump; interface names differ between the provider's kernel
//! and the loader's (`ens3` and `eth0`), MAC addresses do not. The text
//! form, one interface:
//!
//! ```text
//! loader.iface=mac=52:54:00:12:34:56,mtu=1400,addr=192.0.2.10/32,addr=2001:db8::10/64,route=192.0.2.1/32,route=0.0.0.0/0@192.0.2.1,route=::/0@fe80::1
//! loader.dns=192.0.2.53,2001:db8::53
//! ```
//!
//! `route=DEST/PREFIX@GATEWAY`, or `route=DEST/PREFIX` for a route on the
//! link. A gateway outside every prefix of the interface (a /32 address, a
//! provider's gateway in another network) gets an on-link host route first.
//! IPv6 addresses are added without duplicate address detection: they were
//! in use on this link a moment before.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::error::NetError;
use super::netlink::{Link, Netlink};
use super::resolv::{write_resolv_conf, Nameserver};
use super::route::{in_subnet, plan_routes, Route};
use super::{ConfiguredInterface, Method, NetEvent, NetOptions, NetSummary};

/// Route metric of the carried routes (as DHCP's first interface).
const METRIC: u32 = 100;

/// An address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub address: IpAddr,
    pub len: u8,
}

/// One route of a static interface; `gateway` `None`: on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    pub destination: Prefix,
    pub gateway: Option<IpAddr>,
}

/// One interface's configuration, found by its MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticInterface {
    pub mac: [u8; 6],
    pub mtu: Option<u32>,
    pub addresses: Vec<Prefix>,
    pub routes: Vec<StaticRoute>,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Prefix, String> {
        let (address, len) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}`: expected ADDRESS/PREFIX_LENGTH"))?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IP address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let len = len
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?;
        Ok(Prefix { address, len })
    }
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16).ok().filter(|_| part.len() == 2))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{text}` is not a MAC address (expected 52:54:00:12:34:56)"))?;
    <[u8; 6]>::try_from(bytes).map_err(|_| format!("`{text}` is not a MAC address (6 bytes)"))
}

impl fmt::Display for StaticInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mac={}", format_mac(&self.mac))?;
        if let Some(mtu) = self.mtu {
            write!(f, ",mtu={mtu}")?;
        }
        for address in &self.addresses {
            write!(f, ",addr={address}")?;
        }
        for route in &self.routes {
            write!(f, ",route={}", route.destination)?;
            if let Some(gateway) = route.gateway {
                write!(f, "@{gateway}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for StaticInterface {
    type Err = String;

    fn from_str(text: &str) -> Result<StaticInterface, String> {
        let mut mac = None;
        let mut iface = StaticInterface {
            mac: [0; 6],
            mtu: None,
            addresses: Vec::new(),
            routes: Vec::new(),
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected KEY=VALUE (mac=, mtu=, addr=, route=)"))?;
            match key {
                "mac" => mac = Some(parse_mac(value)?),
                "mtu" => {
                    let mtu = value.parse().ok().filter(|m| (68..=65535).contains(m));
                    iface.mtu = Some(mtu.ok_or_else(|| format!("mtu `{value}`: expected 68 to 65535"))?);
                }
                "addr" => iface.addresses.push(value.parse()?),
                "route" => {
                    let (destination, gateway) = match value.split_once('@') {
                        Some((d, g)) => (
                            d,
                            Some(g.parse().map_err(|_| format!("gateway `{g}` is not an IP address"))?),
                        ),
                        None => (value, None),
                    };
                    let destination: Prefix = destination.parse()?;
                    if gateway.is_some_and(|g: IpAddr| g.is_ipv4() != destination.address.is_ipv4()) {
                        return Err(format!("route `{value}`: the gateway is of the other IP version"));
                    }
                    iface.routes.push(StaticRoute { destination, gateway });
                }
                other => return Err(format!("unknown item `{other}` (expected mac=, mtu=, addr=, route=)")),
            }
        }
        iface.mac = mac.ok_or("no mac= (interfaces are matched by MAC address)")?;
        Ok(iface)
    }
}

/// Configures every interface of `options.interfaces` and writes
/// resolv.conf from `options.dns`. No DHCP: this is the network the
/// running system had.
pub fn configure(
    nl: &mut Netlink,
    options: &NetOptions,
    on_event: &(dyn Fn(&NetEvent) + Sync),
) -> Result<NetSummary, NetError> {
    let deadline = Instant::now() + options.carrier_timeout;
    let mut summary = NetSummary {
        method: Method::Static,
        interfaces: Vec::new(),
        ipv6: Vec::new(),
        nameservers: Vec::new(),
    };
    let mut configured = Vec::new();
    for iface in &options.interfaces {
        let link = wait_for_mac(nl, &iface.mac, deadline)?;
        apply(nl, &link, iface)?;
        for prefix in &iface.addresses {
            match prefix.address {
                IpAddr::V4(address) => {
                    on_event(&NetEvent::Configured {
                        iface: link.name.clone(),
                        address,
                        prefix_len: prefix.len,
                    });
                    summary.interfaces.push(ConfiguredInterface {
                        name: link.name.clone(),
                        address,
                        prefix_len: prefix.len,
                        routes: ipv4_routes(iface),
                        lease: None,
                    });
                }
                IpAddr::V6(address) => {
                    on_event(&NetEvent::Ipv6Address {
                        iface: link.name.clone(),
                        address,
                    });
                    summary.ipv6.push((link.name.clone(), address));
                }
            }
        }
        configured.push(link);
    }
    // Routes and addresses work without a carrier; the transfer does not.
    // Waiting here says which link stayed down, without failing: a slow
    // link may still come up before the first connection times out.
    for link in &configured {
        let started = Instant::now();
        let cancel = std::sync::atomic::AtomicBool::new(false);
        match super::link::wait_for_carrier(nl, link, deadline.max(Instant::now() + Duration::from_secs(1)), &cancel)? {
            Some(_) => on_event(&NetEvent::Carrier {
                iface: link.name.clone(),
                waited: started.elapsed(),
            }),
            None => on_event(&NetEvent::NoCarrier {
                iface: link.name.clone(),
                waited: started.elapsed(),
            }),
        }
    }
    let servers: Vec<Nameserver> = options.dns.iter().copied().map(Nameserver::from).collect();
    let written = write_resolv_conf(&options.resolv_conf, &servers, None)?;
    summary.nameservers = written.iter().map(|s| s.address).collect();
    if !summary.nameservers.is_empty() {
        on_event(&NetEvent::Resolvers {
            servers: summary.nameservers.clone(),
        });
    }
    Ok(summary)
}

/// The link with `mac`, waiting for its driver until `deadline`.
fn wait_for_mac(nl: &mut Netlink, mac: &[u8; 6], deadline: Instant) -> Result<Link, NetError> {
    loop {
        let links = nl.links().map_err(|source| NetError::Netlink {
            action: "list links".into(),
            source,
        })?;
        if let Some(link) = links.iter().find(|l| l.mac == mac) {
            return Ok(link.clone());
        }
        if Instant::now() >= deadline {
            let present: Vec<String> = links
                .iter()
                .filter(|l| l.ethernet)
                .map(|l| format!("{} ({})", l.name, format_mac(&l.mac)))
                .collect();
            return Err(NetError::NoSuchMac {
                mac: format_mac(mac),
                present: if present.is_empty() {
                    "none".into()
                } else {
                    present.join(", ")
                },
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// MTU and up, addresses, then routes: on-link ones first, so that a
/// gateway is reachable when its route is added.
fn apply(nl: &mut Netlink, link: &Link, iface: &StaticInterface) -> Result<(), NetError> {
    let fail = |action: String| {
        let name = link.name.clone();
        move |source| NetError::Configure {
            iface: name,
            action,
            source,
        }
    };
    nl.set_link(link.index, true, iface.mtu)
        .map_err(fail(format!("setting the link up (MTU {:?})", iface.mtu)))?;
    for prefix in &iface.addresses {
        nl.add_address_nodad(link.index, prefix.address, prefix.len)
            .map_err(fail(format!("adding address {prefix}")))?;
    }
    for route in planned_routes(iface) {
        let what = match route.gateway {
            Some(gw) => format!("adding route {} via {gw}", route.destination),
            None => format!("adding on-link route {}", route.destination),
        };
        nl.add_route_ip(
            link.index,
            route.destination.address,
            route.destination.len,
            route.gateway,
            METRIC,
        )
        .map_err(fail(what))?;
    }
    Ok(())
}

/// The IPv4 routes as [`plan_routes`] orders them for the first IPv4
/// address (on-link host routes for gateways outside its subnet first).
fn ipv4_routes(iface: &StaticInterface) -> Vec<Route> {
    let wanted: Vec<Route> = iface
        .routes
        .iter()
        .filter_map(|r| match (r.destination.address, r.gateway) {
            (IpAddr::V4(destination), None) => Some(Route {
                destination,
                prefix_len: r.destination.len,
                gateway: None,
            }),
            (IpAddr::V4(destination), Some(IpAddr::V4(gateway))) => Some(Route {
                destination,
                prefix_len: r.destination.len,
                gateway: Some(gateway),
            }),
            _ => None,
        })
        .collect();
    let first = iface.addresses.iter().find_map(|p| match p.address {
        IpAddr::V4(a) => Some((a, p.len)),
        IpAddr::V6(_) => None,
    });
    match first {
        Some((address, len)) => plan_routes(address, len, &wanted),
        None => plan_routes(Ipv4Addr::UNSPECIFIED, 32, &wanted),
    }
}

/// Every route to add, in order: IPv4 as [`ipv4_routes`]; IPv6 on-link
/// routes, an on-link host route for each global gateway outside every
/// prefix of the interface, then the routes through gateways.
pub fn planned_routes(iface: &StaticInterface) -> Vec<StaticRoute> {
    let mut out: Vec<StaticRoute> = ipv4_routes(iface)
        .into_iter()
        .map(|r| StaticRoute {
            destination: Prefix {
                address: IpAddr::V4(r.destination),
                len: r.prefix_len,
            },
            gateway: r.gateway.map(IpAddr::V4),
        })
        .collect();
    let v6 = |r: &&StaticRoute| r.destination.address.is_ipv6();
    out.extend(iface.routes.iter().filter(v6).filter(|r| r.gateway.is_none()).copied());
    for route in iface.routes.iter().filter(v6).filter(|r| r.gateway.is_some()) {
        if let Some(IpAddr::V6(gateway)) = route.gateway {
            let on_link = gateway.is_unicast_link_local()
                || iface
                    .addresses
                    .iter()
                    .chain(out.iter().filter(|r| r.gateway.is_none()).map(|r| &r.destination))
                    .any(|p| covers_v6(p, gateway));
            let host = StaticRoute {
                destination: Prefix {
                    address: IpAddr::V6(gateway),
                    len: 128,
                },
                gateway: None,
            };
            if !on_link && !out.contains(&host) {
                out.push(host);
            }
        }
        out.push(*route);
    }
    out
}

fn covers_v6(prefix: &Prefix, host: std::net::Ipv6Addr) -> bool {
    match prefix.address {
        IpAddr::V6(net) => {
            let bits = u32::from(prefix.len.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(net) & mask == u128::from(host) & mask
        }
        IpAddr::V4(net) => matches!(host.to_ipv4_mapped(), Some(v4) if in_subnet(net, prefix.len, v4)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = "mac=52:54:00:12:34:56,mtu=1400,addr=192.0.2.10/32,addr=2001:db8::10/64,\
                        route=0.0.0.0/0@192.0.2.1,route=::/0@2001:db8:ffff::1,route=10.9.0.0/16";

    #[test]
    fn the_text_form_round_trips() {
        let iface: StaticInterface = TEXT.parse().unwrap();
        assert_eq!(iface.mac, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(iface.mtu, Some(1400));
        assert_eq!(iface.addresses.len(), 2);
        assert_eq!(iface.routes.len(), 3);
        assert_eq!(iface.to_string(), TEXT);
        assert_eq!(iface.to_string().parse::<StaticInterface>().unwrap(), iface);
    }

    #[test]
    fn bad_items_are_named() {
        for (text, problem) in [
            ("addr=192.0.2.1/24", "no mac="),
            ("mac=52:54:00:12:34", "not a MAC address"),
            ("mac=52:54:00:12:34:56,addr=192.0.2.1", "expected ADDRESS/PREFIX_LENGTH"),
            ("mac=52:54:00:12:34:56,addr=192.0.2.1/33", "0 to 32"),
            ("mac=52:54:00:12:34:56,route=::/0@192.0.2.1", "other IP version"),
            ("mac=52:54:00:12:34:56,mtu=9", "68 to 65535"),
            ("mac=52:54:00:12:34:56,speed=10", "unknown item `speed`"),
        ] {
            let err = text.parse::<StaticInterface>().unwrap_err();
            assert!(err.contains(problem), "{text}: {err}");
        }
    }

    #[test]
    fn gateways_off_the_subnet_get_an_on_link_route_first() {
        let iface: StaticInterface = TEXT.parse().unwrap();
        let routes: Vec<String> = planned_routes(&iface)
            .iter()
            .map(|r| {
                format!(
                    "{}{}",
                    r.destination,
                    r.gateway.map(|g| format!("@{g}")).unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            routes,
            [
                "192.0.2.1/32",
                "10.9.0.0/16",
                "0.0.0.0/0@192.0.2.1",
                "2001:db8:ffff::1/128",
                "::/0@2001:db8:ffff::1"
            ]
        );
        let inside: StaticInterface = "mac=52:54:00:12:34:56,addr=2001:db8::10/32,route=::/0@2001:db8:ffff::1"
            .parse()
            .unwrap();
        assert_eq!(
            planned_routes(&inside).len(),
            1,
            "a gateway inside the prefix is on the link"
        );
        let link_local: StaticInterface = "mac=52:54:00:12:34:56,route=::/0@fe80::1".parse().unwrap();
        assert_eq!(planned_routes(&link_local).len(), 1);
    }
}
