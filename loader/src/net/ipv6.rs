//! IPv6 through router advertisements (SLAAC), done by the kernel once it
//! is allowed to: `accept_ra` = 2 (accept even if forwarding were on) and
//! `autoconf` = 1, set before the link comes up so its router solicitation
//! goes out. The kernel then adds the address and the default route itself.
//!
//! Not covered: DNS servers from router advertisements (RDNSS, needs a
//! userspace listener) and DHCPv6. An IPv6-only network therefore needs an
//! address literal in the URL, or DNS from the IPv4 side.

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::error::NetError;
use super::netlink::{LinkAddress, Netlink};

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

/// Polls until an interface in `indices` has a usable global IPv6 address
/// or the deadline passes; returns what exists then.
pub fn wait_for_global(nl: &mut Netlink, indices: &[u32], deadline: Instant) -> Result<Vec<(u32, Ipv6Addr)>, NetError> {
    loop {
        let addresses = nl.addresses().map_err(|source| NetError::Netlink {
            action: "list addresses".into(),
            source,
        })?;
        let found = global_ipv6(&addresses, indices);
        if !found.is_empty() || Instant::now() >= deadline {
            return Ok(found);
        }
        thread::sleep(Duration::from_millis(200));
    }
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
}
