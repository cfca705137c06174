//! A two-namespace network lab for the bring-up tests: a "client" and a
//! "server" network namespace joined by a veth pair, `dnsmasq` on the
//! server side when a test wants DHCP or router advertisements. The code
//! under test runs on a thread moved into the client namespace, so the
//! host's own network is never touched. Everything is deleted on drop,
//! also when the test fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub struct Lab {
    pub client_ns: String,
    pub server_ns: String,
    pub client_if: String,
    pub server_if: String,
    /// Extra veth pairs made by [`Lab::add_link`].
    extra: Vec<(String, String)>,
    dnsmasq: Vec<Child>,
    pub dir: tempfile::TempDir,
}

/// Runs `ip` with `args`, returning stdout; panics with stderr on failure.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Lab {
    /// A fresh lab, or `None` (after printing why) where network
    /// namespaces or dnsmasq are not available.
    pub fn new() -> Option<Lab> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 1_000_000);
        let client_ns = format!("loader-test-c{tag}");
        let server_ns = format!("loader-test-s{tag}");
        let probe = Command::new("ip").args(["netns", "add", &client_ns]).output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED: network namespaces are not permitted here (ip netns add: {})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run `ip` to make network namespaces: {e}");
                return None;
            }
        }
        let lab = Lab {
            client_if: format!("lc{tag}"),
            server_if: format!("ls{tag}"),
            client_ns,
            server_ns,
            extra: Vec::new(),
            dnsmasq: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        ip(&["netns", "add", &lab.server_ns]);
        ip(&["-n", &lab.server_ns, "link", "set", "lo", "up"]);
        lab.make_pair(&lab.client_if, &lab.server_if);
        ip(&[
            "-n",
            &lab.server_ns,
            "addr",
            "add",
            "10.99.0.1/24",
            "dev",
            &lab.server_if,
        ]);
        Some(lab)
    }

    fn make_pair(&self, client: &str, server: &str) {
        ip(&[
            "link",
            "add",
            client,
            "netns",
            &self.client_ns,
            "type",
            "veth",
            "peer",
            "name",
            server,
            "netns",
            &self.server_ns,
        ]);
    }

    /// Another veth pair; its server end is up but has no address.
    pub fn add_link(&mut self, suffix: &str) -> (String, String) {
        let pair = (
            format!("{}{suffix}", self.client_if),
            format!("{}{suffix}", self.server_if),
        );
        self.make_pair(&pair.0, &pair.1);
        ip(&["-n", &self.server_ns, "link", "set", &pair.1, "up"]);
        self.extra.push(pair.clone());
        pair
    }

    pub fn server_up(&self) {
        ip(&["-n", &self.server_ns, "link", "set", &self.server_if, "up"]);
    }

    /// `ip -n <ns> args…`
    pub fn ip_in(&self, ns: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Starts dnsmasq in the server namespace on `iface` with `args`
    /// (DNS off unless `args` give a `--port=`, no config files, leases in
    /// the lab directory).
    pub fn dnsmasq(&mut self, iface: &str, args: &[&str]) {
        let leases = self.dir.path().join(format!("leases-{iface}"));
        // dnsmasq refuses a repeated flag.
        let dns_port = if args.iter().any(|a| a.starts_with("--port=")) {
            None
        } else {
            Some("--port=0")
        };
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server_ns,
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
            ])
            .args(["--no-resolv", "--no-hosts", "--bind-interfaces", "--dhcp-authoritative"])
            .args(dns_port)
            .args(["--user=root", "--group=root", "--log-facility=-"])
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join(format!("pid-{iface}")).display()
            ))
            .arg(format!("--interface={iface}"))
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.dnsmasq.push(child);
    }

    /// Runs `f` on a thread inside namespace `ns`.
    pub fn run_in<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = PathBuf::from("/run/netns").join(ns);
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let file = File::open(&path).unwrap();
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap()
        })
    }

    pub fn in_client<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.run_in(&self.client_ns, f)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.dnsmasq {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespaces deletes the veth pairs in them.
        for ns in [&self.client_ns, &self.server_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Serves one TCP connection at `addr` in the server namespace, answering
/// "pong"; returns a handle to join.
pub fn echo_server(lab: &Lab, addr: &'static str) -> std::thread::JoinHandle<()> {
    let ns = PathBuf::from("/run/netns").join(&lab.server_ns);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let file = File::open(ns).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = TcpListener::bind(addr).unwrap();
        ready_tx.send(()).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"pong").unwrap();
    });
    ready_rx.recv().unwrap();
    handle
}

/// Connects to `addr` and returns what it says.
pub fn ping(addr: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5)).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}
