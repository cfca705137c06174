//! A network without DHCP for the takeover scenarios: a network namespace
//! holding a tap device for the VM's NIC (QEMU runs inside the namespace)
//! and the test server, and nothing else. QEMU's user networking always
//! answers DHCP, so a provider image with a static configuration of its
//! own needs this instead.
//!
//! ```text
//!  guest eth0 192.0.2.10/32 ── tap0 192.0.2.1/24 (the gateway)
//!                              lo   198.51.100.1  (the server: HTTP :80, HTTPS :443)
//! ```
//!
//! The server sits behind the gateway, so reaching it needs the guest's
//! routes, not just its address. Every address is in the namespace, never
//! on the host; the namespace is deleted on drop, also when a test fails.

use std::fs::File;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::server::Server;

/// The guest's gateway (the tap device's address).
pub const GATEWAY: &str = "192.0.2.1";
/// The guest's static address (a /32: the gateway is reached on-link).
pub const GUEST: &str = "192.0.2.10";
pub const GUEST_V6: &str = "2001:db8:99::10";
/// The server's address, behind the gateway.
pub const SERVER: &str = "198.51.100.1";
/// The guest NIC's MAC address.
pub const GUEST_MAC: &str = "52:54:00:4c:44:01";

pub struct TapNetwork {
    pub netns: String,
    pub tap: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (scripts/setup installs iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl TapNetwork {
    /// A fresh namespace named after `tag` and this process, or `None`
    /// (after printing why) where network namespaces are not permitted.
    pub fn new(tag: &str) -> Option<TapNetwork> {
        let netns = format!("qt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        match Command::new("ip").args(["netns", "add", &netns]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED: network namespaces are not permitted here (ip netns add: {})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run `ip` to make a network namespace: {e}");
                return None;
            }
        }
        let net = TapNetwork {
            netns,
            tap: "tap0".into(),
        };
        let ns = net.netns.as_str();
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
        ip(&["-n", ns, "tuntap", "add", "dev", &net.tap, "mode", "tap"]);
        ip(&["-n", ns, "addr", "add", &format!("{GATEWAY}/24"), "dev", &net.tap]);
        ip(&["-n", ns, "addr", "add", "2001:db8:99::1/64", "dev", &net.tap, "nodad"]);
        ip(&["-n", ns, "link", "set", &net.tap, "up"]);
        Some(net)
    }

    /// The test server on the server address, HTTP on port 80 and HTTPS
    /// with `tls` on 443: bound by a thread that entered the namespace.
    pub fn server(&self, tls: Arc<ServerConfig>) -> Server {
        let path = format!("/run/netns/{}", self.netns);
        let (http, https) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns into the test namespace");
                    let bind = |port: u16| {
                        TcpListener::bind((SERVER, port)).unwrap_or_else(|e| panic!("bind {SERVER}:{port}: {e}"))
                    };
                    (bind(80), bind(443))
                })
                .join()
                .expect("binding in the namespace")
        });
        Server::start_on(SERVER, http, Some((https, tls)))
    }
}

impl Drop for TapNetwork {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
    }
}
