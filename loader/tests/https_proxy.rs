//! Networks that reach out only through a proxy: downloads go through an
//! HTTP `CONNECT` proxy named by `--proxy`, `loader.proxy=` or
//! `HTTPS_PROXY` (with `NO_PROXY` honoured), and TLS still ends at the
//! server, checked against the CA as without a proxy. Also `loader
//! inspect|verify URL`, which fetch like `apply`.
#![allow(clippy::unwrap_used)]

mod https_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use https_support::proxy::ConnectProxy;
use https_support::server::{Faults, TestServer};
use https_support::{fixture, options, read_all};
use loader::source::{HttpReader, ProxySetting};

const PROXY_VARS: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

fn bundle() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fw/01-minimal-raw.fw")).unwrap()
}

/// `loader ARGS` with the proxy variables of this process removed and
/// `env` set.
fn loader(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loader"));
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    command.args(args).envs(env.iter().copied()).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// The `host:port` a tunnel to `url` is asked for.
fn authority(url: &str) -> String {
    url.split('/').nth(2).unwrap().to_owned()
}

#[test]
fn a_download_goes_through_a_connect_proxy() {
    let f = fixture();
    let server = f.serve(Faults::default());
    let proxy = ConnectProxy::start();
    let (mut opts, _) = options(&f.ca.pem());
    opts.proxy = ProxySetting::Url(proxy.url().to_owned());
    let (bytes, err) = read_all(HttpReader::open(&server.url(), opts).unwrap());
    assert!(err.is_none(), "{err:?}");
    assert!(bytes == f.content);
    assert_eq!(proxy.targets(), [authority(&server.url())]);
}

struct Served {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    server: TestServer,
}

fn serve_bundle() -> Served {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, f.ca.pem()).unwrap();
    let tls = https_support::pki::server_config(https_support::pki::loopback_cert(&f.ca), false);
    let server = TestServer::start(bundle(), Faults::default(), Some(tls));
    Served {
        _dir: dir,
        ca_file,
        server,
    }
}

#[test]
fn verify_and_inspect_take_urls_and_a_proxy_from_the_flag_or_the_environment() {
    let s = serve_bundle();
    let url = s.server.url();
    let ca = s.ca_file.to_str().unwrap();
    let proxy = ConnectProxy::start();

    let out = loader(&["verify", &url, "--ca", ca, "--proxy", proxy.url()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("{url}: OK")), "{}", text(&out));
    assert_eq!(proxy.targets(), [authority(&url)], "--proxy");

    let out = loader(&["inspect", &url, "--ca", ca], &[("HTTPS_PROXY", proxy.url())]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("product:"), "{}", text(&out));
    assert_eq!(proxy.targets().len(), 2, "HTTPS_PROXY");

    let out = loader(
        &["inspect", &url, "--ca", ca],
        &[("HTTPS_PROXY", proxy.url()), ("NO_PROXY", "127.0.0.1")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(proxy.targets().len(), 2, "NO_PROXY bypasses the proxy");
}

#[test]
fn verify_and_inspect_follow_the_plain_http_policy_and_the_pin() {
    let bytes = bundle();
    let server = TestServer::start(bytes.clone(), Faults::default(), None);
    let url = server.url();
    let out = loader(&["inspect", &url], &[]);
    assert!(
        !out.status.success() && text(&out).contains("plain http:// is refused"),
        "{}",
        text(&out)
    );
    assert!(server.requests().is_empty(), "refused before connecting");

    let sha = {
        use sha2::Digest;
        loader::source::to_hex(&sha2::Sha256::digest(&bytes))
    };
    let out = loader(&["verify", &url, "--sha256", &sha], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = loader(&["inspect", &url, "--sha256", &sha], &[]);
    assert!(
        out.status.success() && text(&out).contains("product:"),
        "{}",
        text(&out)
    );

    let wrong = "0".repeat(64);
    for command in ["verify", "inspect"] {
        let out = loader(&[command, &url, "--sha256", &wrong], &[]);
        assert!(!out.status.success(), "{command}: {}", text(&out));
        assert!(
            text(&out).contains("but loader.sha256= pins"),
            "{command}: {}",
            text(&out)
        );
        if command == "inspect" {
            assert!(!text(&out).contains("product:"), "shown before the pin matched");
        }
    }
}

#[test]
fn the_boot_flow_fetches_through_loader_proxy() {
    use base64::Engine as _;
    let f = fixture();
    let tls = https_support::pki::server_config(https_support::pki::loopback_cert(&f.ca), false);
    let server = TestServer::start(bundle(), Faults::default(), Some(tls));
    let proxy = ConnectProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let cmdline = dir.path().join("cmdline");
    let ca = base64::engine::general_purpose::STANDARD.encode(f.ca.pem());
    std::fs::write(
        &cmdline,
        format!(
            "loader.url={} loader.ca={ca} loader.proxy={} loader.on_error=halt loader.console=plain",
            server.url(),
            proxy.url()
        ),
    )
    .unwrap();
    let cmdline = cmdline.to_str().unwrap();
    let args = [
        "boot",
        "--cmdline",
        cmdline,
        "--config",
        "/nonexistent",
        "--keys-dir",
        "/nonexistent",
        "--sys-block",
        "/nonexistent",
    ];
    // No disk here: the flow stops at choosing one, after the bundle's
    // head came through the proxy.
    let out = loader(&args, &[]);
    let log = text(&out);
    assert!(log.contains("stage: choosing the disk"), "{log}");
    assert_eq!(proxy.targets(), [authority(&server.url())], "{log}");
}
