//! The running system's network as static interfaces (`loader.iface=`) and
//! name servers (`loader.dns=`): what `loader takeover` carries over the
//! jump, read through rtnetlink and resolv.conf.
//!
//! What is carried: every interface backed by hardware (or a bridge, whose
//! MAC address is its port's), with its global addresses (not IPv6 privacy
//! or deprecated ones), its MTU and the main table's routes through it,
//! except the prefix routes the kernel derives from the addresses. Virtual
//! interfaces (containers, VPNs, VLANs, bonds) are named and left behind:
//! after the jump no device has their MAC address. Interfaces are matched by
//! MAC address after the jump, since names differ between kernels.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use super::netlink::{Link, LinkAddress, Netlink, RouteEntry};
use super::rtnl_codec::{RTN_UNICAST_KIND, RTPROT_KERNEL, RT_TABLE_MAIN_ID};
use super::static_iface::{format_mac, Prefix, StaticInterface, StaticRoute};

/// What was found, and what was left behind and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Interface name on the running system, and its configuration.
    pub interfaces: Vec<(String, StaticInterface)>,
    pub dns: Vec<IpAddr>,
    /// "docker0: virtual interface, not carried".
    pub notes: Vec<String>,
}

/// Where the files are (parameters for tests).
#[derive(Debug, Clone)]
pub struct SnapshotPaths {
    /// `/sys/class/net`: `NAME/device` marks hardware, `NAME/bridge` a bridge.
    pub sys_class_net: std::path::PathBuf,
    /// resolv.conf files in order of preference after the first usable one:
    /// `/etc/resolv.conf`, then systemd-resolved's list of upstream servers.
    pub resolv_confs: Vec<std::path::PathBuf>,
}

impl Default for SnapshotPaths {
    fn default() -> Self {
        SnapshotPaths {
            sys_class_net: "/sys/class/net".into(),
            resolv_confs: vec!["/etc/resolv.conf".into(), "/run/systemd/resolve/resolv.conf".into()],
        }
    }
}

/// Reads the network of the calling thread's namespace.
pub fn capture(paths: &SnapshotPaths) -> io::Result<Snapshot> {
    let mut nl = Netlink::open()?;
    let links = nl.links()?;
    let addresses = nl.addresses()?;
    let routes = nl.routes()?;
    let kind = |link: &Link| link_kind(&paths.sys_class_net, &link.name);
    let mut snapshot = from_kernel(&links, &addresses, &routes, &kind);
    snapshot.dns = name_servers(&paths.resolv_confs);
    Ok(snapshot)
}

/// What kind of interface a link is, as far as carrying it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Hardware,
    Bridge,
    Virtual,
}

fn link_kind(sys_class_net: &Path, name: &str) -> LinkKind {
    let dir = sys_class_net.join(name);
    if dir.join("device").exists() {
        LinkKind::Hardware
    } else if dir.join("bridge").is_dir() {
        LinkKind::Bridge
    } else {
        LinkKind::Virtual
    }
}

/// The snapshot of the kernel's answers (without name servers).
pub fn from_kernel(
    links: &[Link],
    addresses: &[LinkAddress],
    routes: &[RouteEntry],
    kind: &dyn Fn(&Link) -> LinkKind,
) -> Snapshot {
    let mut snapshot = Snapshot::default();
    // By MAC address: a bridge and its hardware port share one.
    let mut by_mac: BTreeMap<[u8; 6], (String, StaticInterface)> = BTreeMap::new();
    for link in links.iter().filter(|l| l.ethernet && l.name != "lo") {
        let carried: Vec<Prefix> = addresses
            .iter()
            // An address still in duplicate address detection is carried:
            // it is this system's configuration, only a second old.
            .filter(|a| a.index == link.index && a.global && !a.temporary)
            .map(|a| Prefix {
                address: a.address,
                len: a.prefix_len,
            })
            .collect();
        if carried.is_empty() {
            continue;
        }
        let Ok(mac) = <[u8; 6]>::try_from(link.mac.as_slice()) else {
            snapshot
                .notes
                .push(format!("{}: no Ethernet MAC address, not carried", link.name));
            continue;
        };
        if kind(link) == LinkKind::Virtual {
            let list: Vec<String> = carried.iter().map(Prefix::to_string).collect();
            snapshot.notes.push(format!(
                "{}: virtual interface ({}), not carried",
                link.name,
                list.join(", ")
            ));
            continue;
        }
        let entry = by_mac.entry(mac).or_insert_with(|| {
            (
                link.name.clone(),
                StaticInterface {
                    mac,
                    mtu: link.mtu,
                    addresses: Vec::new(),
                    routes: Vec::new(),
                },
            )
        });
        entry.1.addresses.extend(carried);
        entry.1.routes.extend(
            routes
                .iter()
                .filter(|r| r.oif == Some(link.index) && carried_route(r))
                .map(|r| StaticRoute {
                    destination: Prefix {
                        address: r.destination,
                        len: r.prefix_len,
                    },
                    gateway: r.gateway,
                }),
        );
    }
    snapshot.interfaces = by_mac.into_values().collect();
    snapshot
}

/// Main-table unicast routes someone configured: not the kernel's own
/// prefix routes, not IPv6 link-local or multicast ones.
fn carried_route(route: &RouteEntry) -> bool {
    let special_v6 = match route.destination {
        IpAddr::V6(v6) => v6.is_unicast_link_local() || v6.is_multicast(),
        IpAddr::V4(_) => false,
    };
    route.table == RT_TABLE_MAIN_ID && route.kind == RTN_UNICAST_KIND && route.protocol != RTPROT_KERNEL && !special_v6
}

/// The `nameserver` lines of the first file that names a server reachable
/// from another system: loopback stubs (systemd-resolved's 127.0.0.53,
/// a local dnsmasq) are skipped, and the next file is tried.
pub fn name_servers(files: &[std::path::PathBuf]) -> Vec<IpAddr> {
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let servers = parse_resolv_conf(&text);
        if !servers.is_empty() {
            return servers;
        }
    }
    Vec::new()
}

/// The non-loopback `nameserver` addresses of resolv.conf text (a zone
/// suffix such as `%eth0` dropped: the interface name changes).
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            let address = words.next()?.split('%').next()?;
            address.parse::<IpAddr>().ok().filter(|a| !a.is_loopback())
        })
        .collect()
}

impl Snapshot {
    /// For the console: one line per interface and the name servers.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .interfaces
            .iter()
            .map(|(name, iface)| {
                let addresses: Vec<String> = iface.addresses.iter().map(Prefix::to_string).collect();
                format!(
                    "{name} ({}): {}, {} route(s), MTU {}",
                    format_mac(&iface.mac),
                    addresses.join(" "),
                    iface.routes.len(),
                    iface.mtu.map_or("unchanged".into(), |m| m.to_string())
                )
            })
            .collect();
        if !self.dns.is_empty() {
            let dns: Vec<String> = self.dns.iter().map(IpAddr::to_string).collect();
            lines.push(format!("DNS: {}", dns.join(", ")));
        }
        lines.extend(self.notes.iter().cloned());
        lines
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, mac: u8) -> Link {
        Link {
            index,
            name: name.into(),
            mac: vec![0x52, 0x54, 0, 0, 0, mac],
            up: true,
            carrier: true,
            ethernet: true,
            mtu: Some(1400),
        }
    }

    fn address(index: u32, text: &str, len: u8, global: bool, temporary: bool) -> LinkAddress {
        LinkAddress {
            index,
            address: text.parse().unwrap(),
            prefix_len: len,
            global,
            tentative: false,
            temporary,
        }
    }

    fn route(dest: &str, len: u8, gateway: Option<&str>, oif: u32, protocol: u8) -> RouteEntry {
        RouteEntry {
            destination: dest.parse().unwrap(),
            prefix_len: len,
            gateway: gateway.map(|g| g.parse().unwrap()),
            oif: Some(oif),
            table: 254,
            protocol,
            scope: 0,
            kind: 1,
            metric: None,
        }
    }

    #[test]
    fn hardware_interfaces_are_carried_with_their_routes_by_mac() {
        let links = [link(1, "lo", 0), link(2, "ens3", 1), link(3, "docker0", 9)];
        let addresses = [
            address(2, "192.0.2.10", 32, true, false),
            address(2, "2001:db8::10", 64, true, false),
            address(2, "2001:db8::abcd", 64, true, true),
            address(2, "fe80::1", 64, false, false),
            address(3, "172.17.0.1", 16, true, false),
        ];
        let routes = [
            route("192.0.2.1", 32, None, 2, 4),
            route("0.0.0.0", 0, Some("192.0.2.1"), 2, 4),
            route("2001:db8::", 64, None, 2, RTPROT_KERNEL),
            route("fe80::", 64, None, 2, 4),
            route("::", 0, Some("fe80::1"), 2, 9),
            route("172.17.0.0", 16, None, 3, 4),
        ];
        let kind = |l: &Link| {
            if l.name == "docker0" {
                LinkKind::Virtual
            } else {
                LinkKind::Hardware
            }
        };
        let snapshot = from_kernel(&links, &addresses, &routes, &kind);
        assert_eq!(snapshot.interfaces.len(), 1);
        let (name, iface) = &snapshot.interfaces[0];
        assert_eq!(name, "ens3");
        assert_eq!(
            iface.to_string(),
            "mac=52:54:00:00:00:01,mtu=1400,addr=192.0.2.10/32,addr=2001:db8::10/64,\
             route=192.0.2.1/32,route=0.0.0.0/0@192.0.2.1,route=::/0@fe80::1"
        );
        assert_eq!(
            snapshot.notes,
            ["docker0: virtual interface (172.17.0.1/16), not carried"]
        );
    }

    #[test]
    fn a_bridge_is_carried_under_its_mac_address() {
        let links = [link(2, "eth0", 1), link(3, "br0", 1)];
        let addresses = [address(3, "198.51.100.7", 24, true, false)];
        let routes = [route("0.0.0.0", 0, Some("198.51.100.1"), 3, 16)];
        let kind = |l: &Link| {
            if l.name == "br0" {
                LinkKind::Bridge
            } else {
                LinkKind::Hardware
            }
        };
        let snapshot = from_kernel(&links, &addresses, &routes, &kind);
        assert_eq!(snapshot.interfaces.len(), 1);
        assert_eq!(snapshot.interfaces[0].1.mac, [0x52, 0x54, 0, 0, 0, 1]);
        assert_eq!(snapshot.interfaces[0].1.routes.len(), 1);
    }

    #[test]
    fn loopback_stub_resolvers_are_skipped_for_the_upstream_list() {
        assert_eq!(
            parse_resolv_conf("# stub\nnameserver 127.0.0.53\noptions edns0\n"),
            Vec::<IpAddr>::new()
        );
        let dir = tempfile::tempdir().unwrap();
        let stub = dir.path().join("resolv.conf");
        let upstream = dir.path().join("upstream.conf");
        std::fs::write(&stub, "nameserver 127.0.0.53\n").unwrap();
        std::fs::write(&upstream, "nameserver 192.0.2.53\nnameserver fe80::53%ens3\n").unwrap();
        assert_eq!(
            name_servers(&[stub, dir.path().join("missing"), upstream]),
            ["192.0.2.53".parse::<IpAddr>().unwrap(), "fe80::53".parse().unwrap()]
        );
    }
}
