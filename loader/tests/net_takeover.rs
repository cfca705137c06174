//! The network `loader takeover` carries over the jump, round trip in
//! network namespaces: a "provider" configuration without DHCP (a /32
//! address, its gateway on-link, a server behind the gateway, IPv6, a
//! smaller MTU) is read with rtnetlink, written as `loader.iface=` text,
//! wiped, the interface renamed (names differ between kernels), and the
//! text applied again by the boot flow's bring-up: the server behind the
//! gateway answers. Skipped, with a message, where namespaces are not
//! permitted.
#![allow(clippy::unwrap_used)]

mod net_support;

use std::time::Duration;

use loader::net::snapshot::{from_kernel, LinkKind};
use loader::net::{bring_up, Method, NetOptions, Netlink, StaticInterface};
use net_support::{echo_server, ping, Lab};

#[test]
fn a_static_network_survives_the_round_trip_by_mac_address() {
    let Some(lab) = Lab::new() else { return };
    lab.server_up();
    // The provider's side: the gateway 10.99.0.1 and a server behind it.
    lab.ip_in(&lab.server_ns, &["addr", "add", "198.51.100.1/32", "dev", "lo"]);
    lab.ip_in(
        &lab.server_ns,
        &["addr", "add", "2001:db8:99::1/64", "dev", &lab.server_if, "nodad"],
    );
    lab.ip_in(
        &lab.server_ns,
        &["route", "add", "203.0.113.7/32", "dev", &lab.server_if],
    );
    // The running system: a /32 address whose gateway is reached on-link.
    let c = &lab.client_if;
    for args in [
        vec!["link", "set", c, "mtu", "1400", "up"],
        vec!["addr", "add", "203.0.113.7/32", "dev", c],
        vec!["addr", "add", "2001:db8:99::7/64", "dev", c, "nodad"],
        vec!["route", "add", "10.99.0.1/32", "dev", c],
        vec!["route", "add", "default", "via", "10.99.0.1", "dev", c],
    ] {
        lab.ip_in(&lab.client_ns, &args);
    }

    let text = lab.in_client(|| {
        let mut nl = Netlink::open().unwrap();
        let (links, addresses, routes) = (nl.links().unwrap(), nl.addresses().unwrap(), nl.routes().unwrap());
        // veth has no `device` in sysfs; here it stands for the NIC.
        let snapshot = from_kernel(&links, &addresses, &routes, &|_| LinkKind::Hardware);
        assert_eq!(snapshot.interfaces.len(), 1, "{snapshot:?}");
        snapshot.interfaces[0].1.to_string()
    });
    assert!(text.contains(",mtu=1400,"), "{text}");
    assert!(text.contains("addr=203.0.113.7/32,addr=2001:db8:99::7/64"), "{text}");
    assert!(
        text.contains("route=10.99.0.1/32") && text.contains("route=0.0.0.0/0@10.99.0.1"),
        "{text}"
    );

    // The jump: a new kernel, a different name, nothing configured.
    lab.ip_in(&lab.client_ns, &["link", "set", c, "down"]);
    lab.ip_in(&lab.client_ns, &["addr", "flush", "dev", c]);
    lab.ip_in(&lab.client_ns, &["link", "set", c, "name", "eth7", "mtu", "1500"]);

    let listener = echo_server(&lab, "198.51.100.1:8097");
    let iface: StaticInterface = text.parse().unwrap();
    let options = NetOptions {
        interfaces: vec![iface],
        dns: vec!["10.99.0.53".parse().unwrap()],
        carrier_timeout: Duration::from_secs(5),
        ipv6: false,
        resolv_conf: lab.dir.path().join("resolv.conf"),
        pnp_path: lab.dir.path().join("no-pnp"),
        ..NetOptions::default()
    };
    let (summary, reply) = lab.in_client(|| {
        let summary = bring_up(&options, &|_| {}).unwrap();
        (summary, ping("198.51.100.1:8097"))
    });
    listener.join().unwrap();
    assert_eq!(reply, "pong");
    assert_eq!(summary.method, Method::Static);
    assert_eq!(
        summary.interfaces[0].name, "eth7",
        "found by MAC address under its new name"
    );
    let show = lab.ip_in(&lab.client_ns, &["addr", "show", "dev", "eth7"]);
    assert!(
        show.contains("mtu 1400") && show.contains("inet6 2001:db8:99::7/64"),
        "{show}"
    );
    let resolv = std::fs::read_to_string(lab.dir.path().join("resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.99.0.53"), "{resolv}");
}

#[test]
fn a_mac_address_no_interface_has_is_named_with_what_there_is() {
    let Some(lab) = Lab::new() else { return };
    let options = NetOptions {
        interfaces: vec!["mac=02:00:00:00:00:99,addr=192.0.2.1/24".parse().unwrap()],
        carrier_timeout: Duration::from_millis(300),
        resolv_conf: lab.dir.path().join("resolv.conf"),
        pnp_path: lab.dir.path().join("no-pnp"),
        ..NetOptions::default()
    };
    let err = lab.in_client(|| bring_up(&options, &|_| {}).unwrap_err().to_string());
    assert!(
        err.contains("loader.iface names MAC address 02:00:00:00:00:99, which no interface has"),
        "{err}"
    );
    assert!(err.contains(&lab.client_if), "{err}");
}
