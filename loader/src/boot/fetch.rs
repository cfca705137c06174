//! The network steps of an attempt: bringing up interfaces for `loader.url=`,
//! fetching the bundle under the plain-HTTP policy, and the provisioning
//! metadata service.

use super::config::Config;
use super::reporter::BootReporter;
use super::run::{fail, BootPaths, Failure};
use super::trust;

/// Network for `loader.url=`: the kernel's `ip=` if it configured one,
/// else DHCP on every wired interface.
pub(super) fn bring_up_network(config: &Config, out: &mut BootReporter) -> Result<(), Failure> {
    out.stage("bringing up the network");
    let mut options = crate::net::NetOptions::default();
    if let Some(ip) = config.ip.last() {
        options.ip = Some(
            crate::net::parse_ip_param(ip).map_err(|e| fail("bringing up the network", "config", e, "check ip="))?,
        );
    }
    let summary = crate::net::bring_up(&options, &|event| println!("loader: network: {event:?}")).map_err(|e| {
        fail(
            "bringing up the network",
            "network",
            e,
            "check the cable/VLAN and the DHCP server",
        )
    })?;
    out.say(&format!("network up: {summary:?}"));
    Ok(())
}

pub(super) fn fetch_url(
    url: &str,
    config: &Config,
    paths: &BootPaths,
    keys_enforced: bool,
    out: &mut BootReporter,
) -> Result<crate::source::policy::Fetched, Failure> {
    let fetched = refetch_url(url, config, paths, keys_enforced)?;
    if let Some(reason) = &fetched.plain_http_reason {
        out.say(&format!("plain http:// allowed because {reason}"));
    }
    out.say(&format!("downloading {}", fetched.source.description));
    Ok(fetched)
}

/// [`fetch_url`] without its console lines: the second download of a
/// bundle (two-pass mode, restarts).
pub(super) fn refetch_url(
    url: &str,
    config: &Config,
    paths: &BootPaths,
    keys_enforced: bool,
) -> Result<crate::source::policy::Fetched, Failure> {
    use crate::source::{policy, HttpOptions, SourceSpec};
    let policy = policy::FetchPolicy {
        keys_enforced,
        sha256: config.sha256,
        insecure: config.insecure,
        ca: trust::ca_roots(config, paths)
            .into_iter()
            .map(|r| (r.origin, r.pem))
            .collect(),
    };
    let http = HttpOptions {
        on_event: Some(std::sync::Arc::new(|e: &crate::source::TransferEvent| {
            println!("loader: download: {e}")
        })),
        ..HttpOptions::default()
    };
    policy::fetch(&SourceSpec::Url(url.to_string()), &policy, http).map_err(|e| {
        fail(
            "fetching the bundle",
            "network",
            e,
            "check loader.url, loader.ca and the clock",
        )
    })
}

/// `loader.metadata=URL`: a JSON object whose string (and number/bool)
/// values become `${VAR}` provisioning variables.
pub(super) fn fetch_metadata(
    url: &str,
    config: &Config,
    paths: &BootPaths,
) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    use crate::source::{open as open_source, HttpOptions, PlainHttp, SourceSpec};
    use std::io::Read as _;
    let stage = "fetching provisioning metadata";
    let http = HttpOptions {
        // Metadata services are typically plain http on a link-local
        // address; the values are the operator's own, not the bundle.
        plain_http: PlainHttp::Allow {
            reason: "loader.metadata is the operator's own service".into(),
        },
        extra_roots: trust::ca_roots(config, paths),
        ..HttpOptions::default()
    };
    let source = open_source(&SourceSpec::Url(url.to_string()), http).map_err(|e| fail(stage, "network", e, ""))?;
    let mut text = String::new();
    source
        .reader
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| fail(stage, "network", e, ""))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(stage, "config", format!("{url}: not JSON: {e}"), ""))?;
    let object = value
        .as_object()
        .ok_or_else(|| fail(stage, "config", format!("{url}: expected a JSON object"), ""))?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
            _ => None,
        })
        .collect())
}
