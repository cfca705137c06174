//! Shared helpers for the HTTPS source tests: a fault-injecting server with
//! a throw-away CA, and client options with millisecond retries.
#![allow(dead_code, clippy::unwrap_used)]

pub mod pki;
pub mod proxy;
pub mod server;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loader::source::{ExtraRoot, HttpError, HttpOptions, HttpReader, RetryPolicy, TransferEvent};
use pki::{loopback_cert, server_config, TestCa};
use server::{random_bytes, Faults, Rng, TestServer};

/// The seed for this run: `LOADER_TEST_SEED` or the clock; printed so a
/// failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("LOADER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("LOADER_TEST_SEED={seed}");
    seed
}

/// Client options trusting `ca_pem`, with fast retries and generous
/// deadlines (the machine is shared; only the stall test tightens them).
pub fn options(ca_pem: &str) -> (HttpOptions, Arc<Mutex<Vec<TransferEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let options = HttpOptions {
        extra_roots: vec![ExtraRoot {
            origin: "test CA".into(),
            pem: ca_pem.as_bytes().to_vec(),
        }],
        connect_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(80),
            give_up_after: Duration::from_secs(20),
        },
        on_event: Some(Arc::new(move |e: &TransferEvent| sink.lock().unwrap().push(e.clone()))),
        ..HttpOptions::default()
    };
    (options, events)
}

/// Reads until EOF or the first error, returning what arrived and the error.
pub fn read_all(mut reader: impl Read) -> (Vec<u8>, Option<std::io::Error>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 100_000];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Runs the `loader` binary.
pub fn loader(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(args)
        .output()
        .unwrap()
}

/// Everything a run printed, stdout then stderr.
pub fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// `loader pack` of the fwup.conf `conf`, its `@VERSION@` set to `version`,
/// `@PATH@` to a file of `rootfs_len` random bytes from `seed`, and each
/// other `(pattern, text)` replaced: the bundle's bytes.
pub fn pack(
    dir: &std::path::Path,
    conf: &str,
    version: &str,
    seed: u64,
    rootfs_len: usize,
    replace: &[(&str, &str)],
) -> Vec<u8> {
    let rootfs = dir.join(format!("rootfs-{version}.img"));
    std::fs::write(&rootfs, random_bytes(rootfs_len, seed)).unwrap();
    let path = dir.join(format!("{version}.conf"));
    let mut source = conf
        .replace("@VERSION@", version)
        .replace("@PATH@", rootfs.to_str().unwrap());
    for (pattern, text) in replace {
        source = source.replace(pattern, text);
    }
    std::fs::write(&path, source).unwrap();
    let fw = dir.join(format!("{version}.fw"));
    let out = loader(&["pack", path.to_str().unwrap(), "-o", fw.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::read(fw).unwrap()
}

/// Two versions of a bundle packed from one fwup.conf (root filesystems of
/// random bytes from this run's seed), with a throw-away CA and its PEM file.
pub struct TwoVersions {
    pub dir: tempfile::TempDir,
    pub ca: TestCa,
    pub ca_file: std::path::PathBuf,
    pub v1: Vec<u8>,
    pub v2: Vec<u8>,
    pub seed: u64,
}

impl TwoVersions {
    pub fn pack(conf: &str, rootfs_len: usize, replace: &[(&str, &str)]) -> TwoVersions {
        let seed = seed();
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("loader test CA");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let v1 = pack(dir.path(), conf, "1.0.0", seed, rootfs_len, replace);
        let v2 = pack(
            dir.path(),
            conf,
            "2.0.0",
            seed.rotate_left(7) ^ 0x5555,
            rootfs_len,
            replace,
        );
        TwoVersions {
            dir,
            ca,
            ca_file,
            v1,
            v2,
            seed,
        }
    }

    /// Serves `content` over TLS with a certificate from the CA.
    pub fn serve(&self, content: &[u8], faults: Faults) -> TestServer {
        let tls = server_config(loopback_cert(&self.ca), false);
        TestServer::start(content.to_vec(), faults, Some(tls))
    }
}

pub const LEN: usize = 8 << 20;

/// A CA, an 8 MiB file and a random generator seeded for this run.
pub struct Fixture {
    pub ca: TestCa,
    pub content: Vec<u8>,
    pub rng: Rng,
}

pub fn fixture() -> Fixture {
    let seed = seed();
    Fixture {
        ca: TestCa::new("loader test CA"),
        content: random_bytes(LEN, seed),
        rng: Rng(seed.rotate_left(17) | 1),
    }
}

impl Fixture {
    /// Serves the file over TLS with a certificate from the CA.
    pub fn serve(&self, faults: Faults) -> TestServer {
        let tls = server_config(loopback_cert(&self.ca), false);
        TestServer::start(self.content.clone(), faults, Some(tls))
    }
}

/// The error of opening `url`, which must fail.
pub fn open_err(url: &str, opts: HttpOptions) -> HttpError {
    match HttpReader::open(url, opts) {
        Ok(_) => panic!("{url} opened but should have failed"),
        Err(e) => e,
    }
}
