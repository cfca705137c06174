//! Interfaces: which ones to use, bringing them up and waiting for a
//! carrier (e1000 and some virtual NICs report link seconds after being
//! set up), and writing an IPv4 configuration onto one.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::error::NetError;
use super::netlink::{Link, Netlink};
use super::route::Route;

/// The interfaces worth configuring: Ethernet-type ones other than
/// loopback, or exactly the one named by `ip=`.
pub fn candidates(links: &[Link], only: Option<&str>) -> Result<Vec<Link>, NetError> {
    let present = || {
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    };
    if let Some(name) = only {
        return match links.iter().find(|l| l.name == name) {
            Some(link) => Ok(vec![link.clone()]),
            None => Err(NetError::UnknownInterface {
                name: name.to_owned(),
                present: present(),
            }),
        };
    }
    let wired: Vec<Link> = links.iter().filter(|l| l.ethernet && l.name != "lo").cloned().collect();
    if wired.is_empty() {
        return Err(NetError::NoInterfaces { present: present() });
    }
    Ok(wired)
}

/// Sets `link` up and waits until it reports a carrier; returns how long
/// that took, or `None` at the deadline (or on `cancel`).
pub fn wait_for_carrier(
    nl: &mut Netlink,
    link: &Link,
    deadline: Instant,
    cancel: &AtomicBool,
) -> Result<Option<Duration>, NetError> {
    let started = Instant::now();
    nl.set_link(link.index, true, None)
        .map_err(|source| NetError::Configure {
            iface: link.name.clone(),
            action: "setting the link up".into(),
            source,
        })?;
    loop {
        let links = nl.links().map_err(|source| NetError::Netlink {
            action: "list links".into(),
            source,
        })?;
        if links.iter().any(|l| l.index == link.index && l.carrier) {
            return Ok(Some(started.elapsed()));
        }
        if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// An IPv4 configuration to write onto one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Setup {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// In installation order (on-link routes first).
    pub routes: Vec<Route>,
    pub mtu: Option<u16>,
    /// Route priority; lower wins when several interfaces have a default.
    pub metric: u32,
}

/// Writes `setup` onto `link`: MTU, address (with its prefix route), routes.
pub fn apply_ipv4(nl: &mut Netlink, link: &Link, setup: &Ipv4Setup) -> Result<(), NetError> {
    let fail = |action: String| {
        let iface = link.name.clone();
        move |source| NetError::Configure { iface, action, source }
    };
    nl.set_link(link.index, true, setup.mtu.map(u32::from))
        .map_err(fail(format!("setting MTU {:?}", setup.mtu)))?;
    nl.add_address(link.index, IpAddr::V4(setup.address), setup.prefix_len)
        .map_err(fail(format!("adding address {}/{}", setup.address, setup.prefix_len)))?;
    for route in &setup.routes {
        let what = match route.gateway {
            Some(gw) => format!("adding route {}/{} via {gw}", route.destination, route.prefix_len),
            None => format!("adding on-link route {}/{}", route.destination, route.prefix_len),
        };
        nl.add_route(link.index, route, setup.metric).map_err(fail(what))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, ethernet: bool) -> Link {
        Link {
            index,
            name: name.into(),
            mac: vec![2, 0, 0, 0, 0, index as u8],
            up: false,
            carrier: false,
            ethernet,
            mtu: Some(1500),
        }
    }

    #[test]
    fn wired_interfaces_are_chosen_and_a_named_one_must_exist() {
        let links = [
            link(1, "lo", false),
            link(2, "eth0", true),
            link(3, "sit0", false),
            link(4, "eth1", true),
        ];
        let names: Vec<String> = candidates(&links, None).unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["eth0", "eth1"]);
        assert_eq!(candidates(&links, Some("eth1")).unwrap()[0].index, 4);
        let err = candidates(&links, Some("eth9")).unwrap_err();
        assert!(
            err.to_string().contains("eth9") && err.to_string().contains("lo, eth0, sit0, eth1"),
            "{err}"
        );
        let err = candidates(&links[..1], None).unwrap_err();
        assert!(err.to_string().contains("driver"), "{err}");
    }
}
