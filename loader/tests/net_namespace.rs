//! Network bring-up inside network namespaces made by the test: DHCP
//! against dnsmasq (address, router, DNS, MTU, classless routes), static
//! `ip=` with a gateway outside the subnet, the kernel's own
//! configuration, IPv6 SLAAC, and the failures an operator must be told
//! about (no carrier, no DHCP server). Skipped, with a message, where
//! namespaces are not permitted.
#![allow(clippy::unwrap_used)]

mod net_support;

use std::time::{Duration, Instant};

use loader::net::{bring_up, parse_ip_param, Method, NetError, NetEvent, NetOptions};
use net_support::{echo_server, ping, Lab};

fn options(lab: &Lab) -> NetOptions {
    NetOptions {
        carrier_timeout: Duration::from_secs(5),
        dhcp_timeout: Duration::from_secs(20),
        lease_grace: Duration::from_millis(500),
        ipv6: false,
        pnp_path: lab.dir.path().join("no-pnp"),
        resolv_conf: lab.dir.path().join("resolv.conf"),
        ..NetOptions::default()
    }
}

fn resolv(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir.path().join("resolv.conf")).unwrap_or_default()
}

#[test]
fn dhcp_configures_address_router_dns_and_mtu() {
    let Some(mut lab) = Lab::new() else { return };
    lab.server_up();
    let server_if = lab.server_if.clone();
    lab.dnsmasq(
        &server_if,
        &[
            "--dhcp-range=10.99.0.50,10.99.0.60,255.255.255.0,1h",
            "--dhcp-option=option:router,10.99.0.1",
            "--dhcp-option=option:dns-server,10.99.0.53",
            "--dhcp-option=option:domain-name,lab.example",
            "--dhcp-option=option:mtu,1400",
        ],
    );
    let server = echo_server(&lab, "10.99.0.1:8099");
    let events = std::sync::Mutex::new(Vec::new());
    let (summary, reply) = lab.in_client(|| {
        let summary = bring_up(&options(&lab), &|e: &NetEvent| events.lock().unwrap().push(e.clone())).unwrap();
        (summary, ping("10.99.0.1:8099"))
    });
    server.join().unwrap();
    assert_eq!(reply, "pong");
    assert_eq!(summary.method, Method::Dhcp);
    let configured = &summary.interfaces[0];
    assert_eq!(configured.name, lab.client_if);
    let octets = configured.address.octets();
    assert!(
        octets[..3] == [10, 99, 0] && (50..=60).contains(&octets[3]),
        "{configured:?}"
    );
    assert_eq!(configured.prefix_len, 24);
    let addr = lab.ip_in(&lab.client_ns, &["-4", "addr", "show", "dev", &lab.client_if]);
    assert!(addr.contains(&format!("{}/24", configured.address)), "{addr}");
    let routes = lab.ip_in(&lab.client_ns, &["-4", "route"]);
    assert!(
        routes.contains(&format!("default via 10.99.0.1 dev {}", lab.client_if)),
        "{routes}"
    );
    let link = lab.ip_in(&lab.client_ns, &["link", "show", "dev", &lab.client_if]);
    assert!(link.contains("mtu 1400"), "{link}");
    assert_eq!(
        resolv(&lab),
        "# written by loader\nsearch lab.example\nnameserver 10.99.0.53\n"
    );
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, NetEvent::Carrier { .. })),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, NetEvent::Leased { .. })),
        "{events:?}"
    );
}

#[test]
fn dhcp_classless_static_routes_are_installed() {
    let Some(mut lab) = Lab::new() else { return };
    lab.server_up();
    let server_if = lab.server_if.clone();
    lab.dnsmasq(
        &server_if,
        &[
            "--dhcp-range=10.99.0.50,10.99.0.60,255.255.255.0,1h",
            "--dhcp-option=option:router,10.99.0.1",
            "--dhcp-option=121,192.0.2.0/24,10.99.0.254,0.0.0.0/0,10.99.0.2",
        ],
    );
    let summary = lab.in_client(|| bring_up(&options(&lab), &|_| {}).unwrap());
    let routes = lab.ip_in(&lab.client_ns, &["-4", "route"]);
    assert!(routes.contains("192.0.2.0/24 via 10.99.0.254"), "{routes}");
    // RFC 3442: with option 121 the router option is ignored.
    assert!(routes.contains("default via 10.99.0.2"), "{routes}");
    assert!(!routes.contains("via 10.99.0.1 "), "{routes}");
    assert_eq!(summary.interfaces[0].lease.as_ref().unwrap().classless_routes.len(), 2);
}

#[test]
fn static_ip_with_a_gateway_outside_the_subnet() {
    let Some(lab) = Lab::new() else { return };
    lab.server_up();
    // The server side routes the /32 back and owns an address beyond the
    // gateway, reachable only through the default route.
    lab.ip_in(
        &lab.server_ns,
        &["route", "add", "203.0.113.7/32", "dev", &lab.server_if],
    );
    lab.ip_in(&lab.server_ns, &["addr", "add", "198.51.100.1/32", "dev", "lo"]);
    let server = echo_server(&lab, "198.51.100.1:8099");
    let param = format!(
        "203.0.113.7::10.99.0.1:255.255.255.255::{}:off:10.99.0.53",
        lab.client_if
    );
    let mut opts = options(&lab);
    opts.ip = Some(parse_ip_param(&param).unwrap());
    let (summary, reply) = lab.in_client(|| {
        let summary = bring_up(&opts, &|_| {}).unwrap();
        (summary, ping("198.51.100.1:8099"))
    });
    server.join().unwrap();
    assert_eq!(reply, "pong");
    assert_eq!(summary.method, Method::Static);
    let routes = lab.ip_in(&lab.client_ns, &["-4", "route"]);
    assert!(
        routes.contains(&format!("10.99.0.1 dev {} scope link", lab.client_if)),
        "{routes}"
    );
    assert!(routes.contains("default via 10.99.0.1"), "{routes}");
    assert!(resolv(&lab).contains("nameserver 10.99.0.53\n"));
}

#[test]
fn no_carrier_fails_within_the_deadline_and_names_the_interface() {
    let Some(lab) = Lab::new() else { return };
    // The server end stays down: the client never sees a carrier.
    let mut opts = options(&lab);
    opts.carrier_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, NetError::NoCarrier { .. }), "{err}");
    assert!(err.to_string().contains(&lab.client_if), "{err}");
    assert!(resolv(&lab).is_empty(), "resolv.conf must not be written");
}

#[test]
fn no_dhcp_server_fails_within_the_deadline() {
    let Some(lab) = Lab::new() else { return };
    lab.server_up();
    let mut opts = options(&lab);
    opts.dhcp_timeout = Duration::from_secs(3);
    let started = Instant::now();
    let err = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    assert!(matches!(err, NetError::NoLease { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("no DHCP offer on {}", lab.client_if)), "{msg}");
}

#[test]
fn a_lease_on_any_interface_is_enough() {
    let Some(mut lab) = Lab::new() else { return };
    // The lab's first link has no DHCP server; a second one has.
    lab.server_up();
    let (client2, server2) = lab.add_link("b");
    lab.ip_in(&lab.server_ns, &["addr", "add", "10.98.0.1/24", "dev", &server2]);
    lab.dnsmasq(&server2, &["--dhcp-range=10.98.0.50,10.98.0.60,255.255.255.0,1h"]);
    let started = Instant::now();
    let summary = lab.in_client(|| bring_up(&options(&lab), &|_| {}).unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "waited for the silent interface"
    );
    assert_eq!(summary.interfaces.len(), 1);
    assert_eq!(summary.interfaces[0].name, client2);
    assert_eq!(summary.interfaces[0].address.octets()[..3], [10, 98, 0]);
}

#[test]
fn the_kernels_own_configuration_is_kept() {
    let Some(lab) = Lab::new() else { return };
    lab.server_up();
    lab.ip_in(&lab.client_ns, &["addr", "add", "10.99.0.9/24", "dev", &lab.client_if]);
    lab.ip_in(&lab.client_ns, &["link", "set", &lab.client_if, "up"]);
    let mut opts = options(&lab);
    opts.pnp_path = lab.dir.path().join("pnp");
    std::fs::write(
        &opts.pnp_path,
        "#PROTO: DHCP\ndomain k.example\nnameserver 10.99.0.53\n",
    )
    .unwrap();
    let summary = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap());
    assert_eq!(
        summary.method,
        Method::Kernel {
            protocol: "DHCP".into()
        }
    );
    assert_eq!(summary.interfaces[0].address.to_string(), "10.99.0.9");
    assert_eq!(
        resolv(&lab),
        "# written by loader\nsearch k.example\nnameserver 10.99.0.53\n"
    );
}

#[test]
fn ipv6_slaac_gives_a_global_address() {
    let Some(mut lab) = Lab::new() else { return };
    lab.server_up();
    lab.ip_in(&lab.server_ns, &["addr", "add", "fd00:99::1/64", "dev", &lab.server_if]);
    let server_if = lab.server_if.clone();
    lab.dnsmasq(
        &server_if,
        &[
            "--enable-ra",
            &format!("--dhcp-range=::,constructor:{server_if},ra-only,64,1h"),
        ],
    );
    let mut opts = options(&lab);
    opts.ip = Some(parse_ip_param("off").unwrap());
    opts.ipv6 = true;
    opts.ipv6_timeout = Duration::from_secs(30);
    let summary = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap());
    assert_eq!(summary.method, Method::None);
    let (iface, address) = &summary.ipv6[0];
    assert_eq!(iface, &lab.client_if);
    assert_eq!(address.segments()[..4], [0xfd00, 0x99, 0, 0], "{address}");
    let knob = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.client_ns, "cat"])
        .arg(format!("/proc/sys/net/ipv6/conf/{}/accept_ra", lab.client_if))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&knob.stdout).trim(), "2");
}
