//! IPv6 bring-up inside network namespaces made by the test: DNS servers
//! from router advertisements (RDNSS, sent by dnsmasq), alone and after
//! DHCPv4's, an IPv6-only
//! network where a bundle is fetched by name (AAAA from dnsmasq's DNS,
//! reached through the advertised server) and by `[v6]` literal, and the
//! message when a link only ever gets its link-local address. Skipped,
//! with a message, where namespaces are not permitted.
#![allow(clippy::unwrap_used)]

mod net_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv6Addr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loader::net::{bring_up, parse_ip_param, Method, NetError, NetEvent, NetOptions};
use loader::source::{open, HttpOptions, PlainHttp, SourceSpec};
use net_support::Lab;

const SERVER_V6: &str = "fd00:99::1";

/// IPv6 only (`ip=off`), SLAAC allowed.
fn v6_only_options(lab: &Lab, timeout: Duration) -> NetOptions {
    NetOptions {
        ip: Some(parse_ip_param("off").unwrap()),
        carrier_timeout: Duration::from_secs(5),
        ipv6: true,
        ipv6_timeout: timeout,
        pnp_path: lab.dir.path().join("no-pnp"),
        resolv_conf: lab.dir.path().join("resolv.conf"),
        ..NetOptions::default()
    }
}

/// The server end up with `fd00:99::1/64` (no duplicate address detection,
/// so dnsmasq can bind it at once) and dnsmasq advertising `fd00:99::/64`
/// with `extra` arguments.
fn advertise(lab: &mut Lab, extra: &[&str]) {
    lab.server_up();
    let server_if = lab.server_if.clone();
    lab.ip_in(
        &lab.server_ns,
        &["addr", "add", &format!("{SERVER_V6}/64"), "dev", &server_if, "nodad"],
    );
    let mut args = vec![
        "--enable-ra".to_owned(),
        format!("--dhcp-range=::,constructor:{server_if},ra-only,64,1h"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.dnsmasq(&server_if, &args);
}

#[test]
fn dns_servers_from_router_advertisements_reach_resolv_conf() {
    let Some(mut lab) = Lab::new() else { return };
    advertise(
        &mut lab,
        &["--dhcp-option=option6:dns-server,[fd00:99::53],[fd00:99::54]"],
    );
    let events = Mutex::new(Vec::new());
    let opts = v6_only_options(&lab, Duration::from_secs(30));
    let summary = lab.in_client(|| bring_up(&opts, &|e: &NetEvent| events.lock().unwrap().push(e.clone())).unwrap());

    let expected: Vec<IpAddr> = vec!["fd00:99::53".parse().unwrap(), "fd00:99::54".parse().unwrap()];
    assert_eq!(summary.method, Method::None);
    assert_eq!(summary.nameservers, expected);
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("resolv.conf")).unwrap(),
        "# written by loader\nnameserver fd00:99::53\nnameserver fd00:99::54\n"
    );
    let events = events.into_inner().unwrap();
    let advertised = events
        .iter()
        .find_map(|e| match e {
            NetEvent::Ipv6Dns {
                iface,
                router,
                servers,
                lifetime,
            } => Some((iface.clone(), *router, servers.clone(), *lifetime)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no RDNSS event: {events:?}"));
    assert_eq!(advertised.0, lab.client_if);
    assert!(
        advertised.1.is_some_and(|r| r.is_unicast_link_local()),
        "the router is named by its link-local address: {advertised:?}"
    );
    assert_eq!(advertised.2.len(), 2);
    assert!(advertised.3.is_some_and(|l| l > Duration::ZERO), "{advertised:?}");
}

#[test]
fn dual_stack_names_ipv4_dns_first_then_advertised_servers() {
    let Some(mut lab) = Lab::new() else { return };
    // DHCP answers late on purpose, so the advertisement has certainly
    // arrived when the lease does (the loader does not wait for IPv6 DNS
    // once DHCP gave a server).
    advertise(
        &mut lab,
        &[
            "--dhcp-range=10.99.0.50,10.99.0.60,255.255.255.0,1h",
            "--dhcp-option=option:dns-server,10.99.0.53",
            "--dhcp-reply-delay=4",
            "--dhcp-option=option6:dns-server,[fd00:99::53]",
        ],
    );
    let mut opts = v6_only_options(&lab, Duration::from_secs(30));
    opts.ip = None;
    let summary = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap());
    assert_eq!(summary.method, Method::Dhcp);
    let expected: Vec<IpAddr> = vec!["10.99.0.53".parse().unwrap(), "fd00:99::53".parse().unwrap()];
    assert_eq!(summary.nameservers, expected);
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("resolv.conf")).unwrap(),
        "# written by loader\nnameserver 10.99.0.53\nnameserver fd00:99::53\n"
    );
}

#[test]
fn advertisements_without_dns_leave_resolv_conf_alone() {
    let Some(mut lab) = Lab::new() else { return };
    advertise(&mut lab, &[]);
    let opts = v6_only_options(&lab, Duration::from_secs(30));
    let summary = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap());
    assert!(!summary.ipv6.is_empty(), "SLAAC still works: {summary:?}");
    assert!(summary.nameservers.is_empty(), "{summary:?}");
    assert!(!lab.dir.path().join("resolv.conf").exists());
}

#[test]
fn a_link_local_only_link_is_reported_clearly() {
    let Some(lab) = Lab::new() else { return };
    // A carrier, but nobody sends router advertisements.
    lab.server_up();
    let opts = v6_only_options(&lab, Duration::from_secs(4));
    let started = Instant::now();
    let err = lab.in_client(|| bring_up(&opts, &|_| {}).unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(matches!(err, NetError::NoIpv6 { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{} has only its link-local address fe80::", lab.client_if)),
        "{msg}"
    );
    assert!(msg.contains("no router advertisement"), "{msg}");
}

/// Serves `body` over plain HTTP at `[fd00:99::1]:8080` in the server
/// namespace for `requests` requests, then stops.
fn http_server(lab: &Lab, body: Vec<u8>, requests: usize) -> std::thread::JoinHandle<Vec<String>> {
    let ns = PathBuf::from("/run/netns").join(&lab.server_ns);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(ns).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = TcpListener::bind(format!("[{SERVER_V6}]:8080")).unwrap();
        ready_tx.send(()).unwrap();
        let mut seen = Vec::new();
        for _ in 0..requests {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            seen.push(head);
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
            stream.write_all(&body).unwrap();
        }
        seen
    });
    ready_rx.recv().unwrap();
    handle
}

/// Makes this thread's mount namespace its own and shows `resolv` at
/// /etc/resolv.conf in it, so the C library's resolver reads what the
/// loader wrote. Threads started from here inherit it; the host's mounts
/// are never touched (the namespace is made private before the bind).
fn private_resolv_conf(resolv: &Path) {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    mount(
        Some(resolv),
        "/etc/resolv.conf",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
}

fn fetch(url: &str) -> Vec<u8> {
    let http = HttpOptions {
        plain_http: PlainHttp::Allow {
            reason: "test server".into(),
        },
        connect_timeout: Duration::from_secs(10),
        ..HttpOptions::default()
    };
    let mut opened = open(&SourceSpec::Url(url.into()), http).unwrap();
    let mut bytes = Vec::new();
    opened.reader.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn an_ipv6_only_network_fetches_by_name_and_by_literal() {
    let Some(mut lab) = Lab::new() else { return };
    // dnsmasq is also the DNS server: it advertises itself and answers
    // bundle.test with an AAAA record only.
    advertise(
        &mut lab,
        &[
            "--port=53",
            "--dhcp-option=option6:dns-server,[fd00:99::1]",
            "--address=/bundle.test/fd00:99::1",
        ],
    );
    let body: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let server = http_server(&lab, body.clone(), 2);
    let opts = v6_only_options(&lab, Duration::from_secs(30));
    let resolv = opts.resolv_conf.clone();

    let (summary, resolved, by_name, by_literal) = lab.in_client(|| {
        let summary = bring_up(&opts, &|_| {}).unwrap();
        private_resolv_conf(&resolv);
        let resolved: Vec<IpAddr> = ("bundle.test", 8080)
            .to_socket_addrs()
            .unwrap()
            .map(|a| a.ip())
            .collect();
        let by_name = fetch("http://bundle.test:8080/install.fw");
        let by_literal = fetch(&format!("http://[{SERVER_V6}]:8080/install.fw"));
        (summary, resolved, by_name, by_literal)
    });
    let requests = server.join().unwrap();

    assert_eq!(summary.method, Method::None, "no IPv4 at all");
    assert!(summary.interfaces.is_empty());
    let server_v6: Ipv6Addr = SERVER_V6.parse().unwrap();
    assert_eq!(summary.nameservers, [IpAddr::V6(server_v6)]);
    assert!(resolved.contains(&IpAddr::V6(server_v6)), "{resolved:?}");
    assert!(resolved.iter().all(IpAddr::is_ipv6), "only AAAA: {resolved:?}");
    assert!(by_name == body, "fetched by name: {} bytes", by_name.len());
    assert!(by_literal == body, "fetched by literal: {} bytes", by_literal.len());
    assert!(requests[0].contains("Host: bundle.test:8080"), "{}", requests[0]);
    assert!(
        requests[1].contains(&format!("Host: [{SERVER_V6}]:8080")),
        "{}",
        requests[1]
    );
}
