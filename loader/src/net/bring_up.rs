//! The bring-up sequence: kernel's configuration if present, else static
//! `ip=` or DHCP, then IPv6 and resolv.conf. Reads as the list of steps.

use std::net::IpAddr;
use std::time::Instant;

use super::dhcp_all::dhcp_all;
use super::error::NetError;
use super::ip_param::{IpParam, StaticIpv4};
use super::ipv6;
use super::link::{self, apply_ipv4, Ipv4Setup};
use super::netlink::{Link, Netlink};
use super::pnp::parse_pnp;
use super::resolv::{write_resolv_conf, Nameserver};
use super::{ConfiguredInterface, Method, NetEvent, NetOptions, NetSummary};

/// Default-route metric of the first configured interface; later ones
/// get higher metrics so the first lease's router wins.
const BASE_METRIC: u32 = 100;

/// IPv4 result before IPv6 and DNS are added.
struct Ipv4Result {
    method: Method,
    interfaces: Vec<ConfiguredInterface>,
    dns: Vec<IpAddr>,
    domain: Option<String>,
}

/// Brings the network up as `options` say. See the module documentation.
pub fn bring_up(options: &NetOptions, on_event: &(dyn Fn(&NetEvent) + Sync)) -> Result<NetSummary, NetError> {
    let mut nl = Netlink::open().map_err(netlink("open a socket"))?;
    if !options.interfaces.is_empty() {
        return super::static_iface::configure(&mut nl, options, on_event);
    }
    let links = nl.links().map_err(netlink("list links"))?;
    let only = match &options.ip {
        Some(IpParam::Dhcp { iface }) => iface.as_deref(),
        Some(IpParam::Static(s)) => s.iface.as_deref(),
        _ => None,
    };
    let candidates = link::candidates(&links, only)?;
    let mut ra_watch = None;
    if options.ipv6 {
        // Before the links come up, so their router solicitations go out
        // and the answers' DNS options are caught.
        ra_watch = Some(ipv6::RaWatch::start()?);
        for link in &candidates {
            if ipv6::enable_slaac(&options.proc_sys, &link.name)? {
                on_event(&NetEvent::Ipv6Enabled {
                    iface: link.name.clone(),
                });
            }
        }
    }

    let ipv4 = match kernel_configuration(&mut nl, &candidates, options, on_event)? {
        Some(done) => Ok(done),
        None => match &options.ip {
            Some(IpParam::Off) => set_up_only(&mut nl, &candidates),
            Some(IpParam::Static(config)) => configure_static(&mut nl, &candidates, config, options, on_event),
            Some(IpParam::Dhcp { .. }) | None => configure_dhcp(&mut nl, &candidates, options, on_event),
        },
    };

    // IPv6 is waited for only when IPv4 gave no address or no DNS server;
    // otherwise what has arrived by now is taken.
    let ipv4_usable = ipv4
        .as_ref()
        .is_ok_and(|r| !r.interfaces.is_empty() || r.method != Method::None);
    let ipv4_dns = ipv4.as_ref().is_ok_and(|r| !r.dns.is_empty());
    let ipv6 = match &mut ra_watch {
        Some(watch) => {
            let deadline = if ipv4_usable && ipv4_dns {
                Instant::now()
            } else {
                Instant::now() + options.ipv6_timeout
            };
            watch.wait(&mut nl, &candidates, deadline, on_event)?
        }
        None => ipv6::Ipv6Outcome::default(),
    };
    for (iface, address) in &ipv6.addresses {
        on_event(&NetEvent::Ipv6Address {
            iface: iface.clone(),
            address: *address,
        });
    }

    let ipv4 = match (ipv4, ipv6.missing) {
        (Ok(_), Some(missing)) if !ipv4_usable => return Err(NetError::NoIpv6 { ipv6: missing }),
        (Ok(result), _) => result,
        // Without a carrier IPv6 cannot work either: no need to say more.
        (Err(err @ NetError::NoCarrier { .. }), Some(_)) => return Err(err),
        (Err(err), Some(missing)) => {
            return Err(NetError::NoAddress {
                ipv4: Box::new(err),
                ipv6: missing,
            })
        }
        (Err(err), None) if ipv6.addresses.is_empty() => return Err(err),
        (Err(err), None) => {
            on_event(&NetEvent::Ipv4Failed {
                message: format!("{err}; continuing with IPv6 only"),
            });
            Ipv4Result {
                method: Method::None,
                interfaces: Vec::new(),
                dns: Vec::new(),
                domain: None,
            }
        }
    };
    // IPv4 servers first: they are what the operator configured or DHCP
    // handed out; router-advertised ones follow (resolv.conf keeps three).
    let servers: Vec<Nameserver> = ipv4.dns.iter().copied().map(Nameserver::from).chain(ipv6.dns).collect();
    let written = write_resolv_conf(&options.resolv_conf, &servers, ipv4.domain.as_deref())?;
    let nameservers: Vec<IpAddr> = written.iter().map(|s| s.address).collect();
    if !nameservers.is_empty() {
        on_event(&NetEvent::Resolvers {
            servers: nameservers.clone(),
        });
    }
    Ok(NetSummary {
        method: ipv4.method,
        interfaces: ipv4.interfaces,
        ipv6: ipv6.addresses,
        nameservers,
    })
}

/// The kernel configured IPv4 itself when `/proc/net/pnp` names a protocol
/// (DHCP/BOOTP/RARP), or says "manually configured" while an interface
/// already has a global IPv4 address (a static `ip=` the kernel applied).
/// Only DNS is left to do then.
fn kernel_configuration(
    nl: &mut Netlink,
    candidates: &[Link],
    options: &NetOptions,
    on_event: &(dyn Fn(&NetEvent) + Sync),
) -> Result<Option<Ipv4Result>, NetError> {
    let text = match std::fs::read_to_string(&options.pnp_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NetError::Pnp {
                path: options.pnp_path.clone(),
                source,
            })
        }
    };
    let pnp = parse_pnp(&text);
    let addresses = nl.addresses().map_err(netlink("list addresses"))?;
    let interfaces: Vec<ConfiguredInterface> = addresses
        .iter()
        .filter(|a| a.global && candidates.iter().any(|l| l.index == a.index))
        .filter_map(|a| match a.address {
            IpAddr::V4(address) => Some(ConfiguredInterface {
                name: name_of(candidates, a.index),
                address,
                prefix_len: a.prefix_len,
                routes: Vec::new(),
                lease: None,
            }),
            IpAddr::V6(_) => None,
        })
        .collect();
    let protocol = match (&pnp.protocol, interfaces.is_empty()) {
        (Some(protocol), _) => protocol.clone(),
        (None, false) => "static".to_owned(),
        (None, true) => return Ok(None),
    };
    on_event(&NetEvent::KernelConfigured {
        protocol: protocol.clone(),
    });
    Ok(Some(Ipv4Result {
        method: Method::Kernel { protocol },
        interfaces,
        dns: pnp.nameservers,
        domain: pnp.domain,
    }))
}

/// `ip=off`: no IPv4, but links up so IPv6 can configure itself.
fn set_up_only(nl: &mut Netlink, candidates: &[Link]) -> Result<Ipv4Result, NetError> {
    links_up(nl, candidates)?;
    Ok(Ipv4Result {
        method: Method::None,
        interfaces: Vec::new(),
        dns: Vec::new(),
        domain: None,
    })
}

fn configure_static(
    nl: &mut Netlink,
    candidates: &[Link],
    config: &StaticIpv4,
    options: &NetOptions,
    on_event: &(dyn Fn(&NetEvent) + Sync),
) -> Result<Ipv4Result, NetError> {
    let link = first_with_carrier(nl, candidates, options, on_event)?;
    let setup = Ipv4Setup {
        address: config.address,
        prefix_len: config.prefix_len,
        routes: config.routes(),
        mtu: None,
        metric: BASE_METRIC,
    };
    apply_ipv4(nl, &link, &setup)?;
    on_event(&NetEvent::Configured {
        iface: link.name.clone(),
        address: setup.address,
        prefix_len: setup.prefix_len,
    });
    Ok(Ipv4Result {
        method: Method::Static,
        interfaces: vec![ConfiguredInterface {
            name: link.name,
            address: setup.address,
            prefix_len: setup.prefix_len,
            routes: setup.routes,
            lease: None,
        }],
        dns: config.dns.iter().copied().map(IpAddr::V4).collect(),
        domain: None,
    })
}

/// Sets every candidate up and returns the first to report a carrier.
fn first_with_carrier(
    nl: &mut Netlink,
    candidates: &[Link],
    options: &NetOptions,
    on_event: &(dyn Fn(&NetEvent) + Sync),
) -> Result<Link, NetError> {
    let started = Instant::now();
    let deadline = started + options.carrier_timeout;
    links_up(nl, candidates)?;
    loop {
        let links = nl.links().map_err(netlink("list links"))?;
        if let Some(link) = candidates
            .iter()
            .find(|c| links.iter().any(|l| l.index == c.index && l.carrier))
        {
            on_event(&NetEvent::Carrier {
                iface: link.name.clone(),
                waited: started.elapsed(),
            });
            return Ok(link.clone());
        }
        if Instant::now() >= deadline {
            return Err(NetError::NoCarrier {
                ifaces: names(candidates),
                waited: options.carrier_timeout,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn configure_dhcp(
    nl: &mut Netlink,
    candidates: &[Link],
    options: &NetOptions,
    on_event: &(dyn Fn(&NetEvent) + Sync),
) -> Result<Ipv4Result, NetError> {
    let outcome = dhcp_all(candidates, options, on_event);
    if outcome.leases.is_empty() {
        return Err(if outcome.all_without_carrier {
            NetError::NoCarrier {
                ifaces: names(candidates),
                waited: options.carrier_timeout,
            }
        } else {
            NetError::NoLease {
                failures: outcome.failures,
            }
        });
    }
    let mut result = Ipv4Result {
        method: Method::Dhcp,
        interfaces: Vec::new(),
        dns: Vec::new(),
        domain: None,
    };
    for (metric, (link, lease)) in (BASE_METRIC..).zip(outcome.leases) {
        let setup = Ipv4Setup {
            address: lease.address,
            prefix_len: lease.prefix_len,
            routes: lease.routes(),
            mtu: lease.mtu,
            metric,
        };
        apply_ipv4(nl, &link, &setup)?;
        on_event(&NetEvent::Configured {
            iface: link.name.clone(),
            address: setup.address,
            prefix_len: setup.prefix_len,
        });
        result.dns.extend(lease.dns.iter().copied().map(IpAddr::V4));
        if result.domain.is_none() {
            result.domain = lease.domain.clone();
        }
        result.interfaces.push(ConfiguredInterface {
            name: link.name,
            address: setup.address,
            prefix_len: setup.prefix_len,
            routes: setup.routes,
            lease: Some(lease),
        });
    }
    Ok(result)
}

fn netlink(action: &'static str) -> impl Fn(std::io::Error) -> NetError {
    move |source| NetError::Netlink {
        action: action.to_owned(),
        source,
    }
}

fn name_of(links: &[Link], index: u32) -> String {
    links
        .iter()
        .find(|l| l.index == index)
        .map_or_else(|| format!("#{index}"), |l| l.name.clone())
}

fn names(links: &[Link]) -> String {
    links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Sets every candidate link administratively up.
fn links_up(nl: &mut Netlink, candidates: &[Link]) -> Result<(), NetError> {
    for link in candidates {
        nl.set_link(link.index, true, None)
            .map_err(|source| NetError::Configure {
                iface: link.name.clone(),
                action: "setting the link up".into(),
                source,
            })?;
    }
    Ok(())
}
