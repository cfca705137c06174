//! IPv6 through router advertisements (SLAAC), done by the kernel once it
//! is allowed to: `accept_ra` = 2 (accept even if forwarding were on) and
//! `autoconf` = 1, set before the link comes up so its router solicitation
//! goes out. The kernel then adds the address and the default route itself.
//! The DNS servers the same advertisements carry (RDNSS) reach us through
//! a netlink subscription ([`RaWatch`], decoded in [`super::rdnss`]).
//!
//! Not covered: DHCPv6 (stateful addresses or DNS from a DHCPv6 server),
//! and following changes after bring-up (lifetimes are honoured while the
//! loader waits, not afterwards; an install takes minutes, RDNSS lifetimes
//! are usually far longer).

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::error::NetError;
use super::netlink::{Link, LinkAddress, Netlink, UserOptListener};
use super::rdnss::{parse_nd_user_option, RdnssChange, RdnssTable};
use super::resolv::Nameserver;
use super::NetEvent;

/// Allows SLAAC on `iface`. Returns `false` when the kernel has no IPv6
/// for it (no `net/ipv6/conf/<iface>` directory).
pub fn enable_slaac(proc_sys: &Path, iface: &str) -> Result<bool, NetError> {
    let dir = proc_sys.join("net/ipv6/conf").join(iface);
    if !dir.is_dir() {
        return Ok(false);
    }
    for (name, value) in [("disable_ipv6", "0"), ("accept_ra", "2"), ("autoconf", "1")] {
        let path = dir.join(name);
        match std::fs::write(&path, value) {
            Ok(()) => {}
            // Older kernels lack some knobs; the defaults are fine then.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(NetError::Sysctl { path, source }),
        }
    }
    Ok(true)
}

/// The usable global IPv6 addresses among `addresses` on `indices`.
pub fn global_ipv6(addresses: &[LinkAddress], indices: &[u32]) -> Vec<(u32, Ipv6Addr)> {
    addresses
        .iter()
        .filter(|a| a.global && !a.tentative && indices.contains(&a.index))
        .filter_map(|a| match a.address {
            IpAddr::V6(v6) => Some((a.index, v6)),
            IpAddr::V4(_) => None,
        })
        .collect()
}

/// Router advertisements being watched: the RDNSS listener and what it
/// learned so far.
pub struct RaWatch {
    listener: UserOptListener,
    table: RdnssTable,
}

/// What IPv6 gave after waiting.
#[derive(Debug, Default)]
pub struct Ipv6Outcome {
    /// Usable global addresses, by interface name.
    pub addresses: Vec<(String, Ipv6Addr)>,
    /// DNS servers from router advertisements, still valid.
    pub dns: Vec<Nameserver>,
    /// Why there is no global address, when there is none (for the
    /// operator: link-local only, tentative, no IPv6 at all).
    pub missing: Option<String>,
}

impl RaWatch {
    /// Subscribes to router-advertisement options; call before the links
    /// come up.
    pub fn start() -> Result<RaWatch, NetError> {
        let listener = UserOptListener::open().map_err(|source| NetError::Netlink {
            action: "subscribe to router advertisement options (RDNSS)".into(),
            source,
        })?;
        Ok(RaWatch {
            listener,
            table: RdnssTable::default(),
        })
    }

    /// Polls until an interface in `links` has a usable global IPv6 address
    /// or the deadline passes, reading RDNSS options meanwhile. A router
    /// sends the prefix and RDNSS in one advertisement, and the address
    /// appears only after duplicate address detection, so once there is an
    /// address its advertisement's DNS servers are already queued.
    pub fn wait(
        &mut self,
        nl: &mut Netlink,
        links: &[Link],
        deadline: Instant,
        on_event: &(dyn Fn(&NetEvent) + Sync),
    ) -> Result<Ipv6Outcome, NetError> {
        let started = Instant::now();
        let indices: Vec<u32> = links.iter().map(|l| l.index).collect();
        loop {
            let addresses = nl.addresses().map_err(|source| NetError::Netlink {
                action: "list addresses".into(),
                source,
            })?;
            self.read_options(&indices, links, on_event)
                .map_err(|source| NetError::Netlink {
                    action: "read router advertisement options".into(),
                    source,
                })?;
            let found = global_ipv6(&addresses, &indices);
            if !found.is_empty() || Instant::now() >= deadline {
                let missing = found
                    .is_empty()
                    .then(|| explain_missing(&addresses, links, started.elapsed()));
                return Ok(Ipv6Outcome {
                    addresses: found.into_iter().map(|(i, ip)| (name_of(links, i), ip)).collect(),
                    dns: self.dns(links, Instant::now()),
                    missing,
                });
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn read_options(
        &mut self,
        indices: &[u32],
        links: &[Link],
        on_event: &(dyn Fn(&NetEvent) + Sync),
    ) -> io::Result<()> {
        let table = &mut self.table;
        self.listener.drain(|payload| {
            let Some(option) = parse_nd_user_option(payload).filter(|o| indices.contains(&o.index)) else {
                return;
            };
            let event = match table.update(option, Instant::now()) {
                Some(RdnssChange::Learned(o)) => NetEvent::Ipv6Dns {
                    iface: name_of(links, o.index),
                    router: o.router,
                    servers: o.servers,
                    lifetime: o.lifetime,
                },
                Some(RdnssChange::Withdrawn { index, servers }) => NetEvent::Ipv6DnsWithdrawn {
                    iface: name_of(links, index),
                    servers,
                },
                None => return,
            };
            on_event(&event);
        })
    }

    fn dns(&self, links: &[Link], now: Instant) -> Vec<Nameserver> {
        self.table
            .servers(now)
            .into_iter()
            .map(|(index, address)| Nameserver {
                address: IpAddr::V6(address),
                iface: Some(name_of(links, index)),
            })
            .collect()
    }
}

/// Why none of `links` has a usable global address, one clause per link,
/// for an operator who expected SLAAC to work.
pub fn explain_missing(addresses: &[LinkAddress], links: &[Link], waited: Duration) -> String {
    let per_link: Vec<String> = links
        .iter()
        .map(|link| {
            let v6: Vec<(&LinkAddress, Ipv6Addr)> = addresses
                .iter()
                .filter(|a| a.index == link.index)
                .filter_map(|a| match a.address {
                    IpAddr::V6(v6) => Some((a, v6)),
                    IpAddr::V4(_) => None,
                })
                .collect();
            if let Some((_, ip)) = v6.iter().find(|(a, _)| a.global && a.tentative) {
                format!(
                    "{}: {ip} has not passed duplicate address detection (or failed it)",
                    link.name
                )
            } else if let Some((_, ip)) = v6.iter().find(|(_, ip)| ip.is_unicast_link_local()) {
                format!("{} has only its link-local address {ip}", link.name)
            } else {
                format!(
                    "{} has no IPv6 address at all (no carrier, or IPv6 disabled)",
                    link.name
                )
            }
        })
        .collect();
    format!(
        "{}; no router advertisement gave a global address within {}s \
         (is a router on this link sending advertisements with an autonomous prefix? \
         DHCPv6-only networks are not supported)",
        per_link.join(", "),
        waited.as_secs()
    )
}

fn name_of(links: &[Link], index: u32) -> String {
    links
        .iter()
        .find(|l| l.index == index)
        .map_or_else(|| format!("#{index}"), |l| l.name.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(index: u32, text: &str, global: bool, tentative: bool) -> LinkAddress {
        LinkAddress {
            index,
            address: text.parse().unwrap(),
            prefix_len: 64,
            global,
            tentative,
            temporary: false,
        }
    }

    #[test]
    fn only_settled_global_v6_addresses_count() {
        let list = [
            addr(2, "fe80::1", false, false),
            addr(2, "2001:db8::1", true, true),
            addr(2, "10.0.0.5", true, false),
            addr(3, "2001:db8::3", true, false),
            addr(2, "2001:db8::2", true, false),
        ];
        assert_eq!(global_ipv6(&list, &[2]), [(2, "2001:db8::2".parse().unwrap())]);
        assert_eq!(global_ipv6(&list, &[4]), []);
    }

    #[test]
    fn slaac_knobs_are_written_where_ipv6_exists() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("net/ipv6/conf/eth0");
        std::fs::create_dir_all(&conf).unwrap();
        for knob in ["disable_ipv6", "accept_ra", "autoconf"] {
            std::fs::write(conf.join(knob), "x").unwrap();
        }
        assert!(enable_slaac(dir.path(), "eth0").unwrap());
        assert_eq!(std::fs::read_to_string(conf.join("accept_ra")).unwrap(), "2");
        assert_eq!(std::fs::read_to_string(conf.join("disable_ipv6")).unwrap(), "0");
        assert!(!enable_slaac(dir.path(), "eth1").unwrap());
    }

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mac: Vec::new(),
            up: true,
            carrier: true,
            ethernet: true,
            mtu: None,
        }
    }

    #[test]
    fn a_missing_address_is_explained_per_link() {
        let links = [link(2, "eth0"), link(3, "eth1"), link(4, "eth2")];
        let list = [
            addr(2, "fe80::1", false, false),
            addr(3, "fe80::3", false, false),
            addr(3, "2001:db8::3", true, true),
            addr(4, "10.0.0.4", true, false),
        ];
        let text = explain_missing(&list, &links, Duration::from_secs(10));
        assert!(
            text.starts_with("eth0 has only its link-local address fe80::1, "),
            "{text}"
        );
        assert!(
            text.contains("eth1: 2001:db8::3 has not passed duplicate address detection"),
            "{text}"
        );
        assert!(text.contains("eth2 has no IPv6 address at all"), "{text}");
        assert!(text.contains("within 10s"), "{text}");
    }
}
