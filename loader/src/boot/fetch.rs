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
    // Written with resolv.conf rather than at start: an install from an
    // injected bundle resolves no name, and the write cost 1-4 ms of a
    // one-vCPU boot.
    if let Err(e) = super::pid1::write_hosts(std::path::Path::new("/"), None) {
        out.say(&format!("warning: writing /etc/hosts: {e}"));
    }
    let mut options = crate::net::NetOptions {
        interfaces: config.ifaces.clone(),
        dns: config.dns.clone(),
        ..crate::net::NetOptions::default()
    };
    config.net.apply_to(&mut options);
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

/// How requests reach the network: `loader.proxy=`, else the environment
/// the kernel passed (`HTTPS_PROXY=`, `NO_PROXY=` on the command line).
pub(super) fn proxy(config: &Config) -> crate::source::ProxySetting {
    match &config.proxy {
        Some(url) => crate::source::ProxySetting::Url(url.clone()),
        None => crate::source::ProxySetting::Environment,
    }
}

/// The status callback's transport: the same trust and proxy as the
/// download, and `loader.report_timeout=` after the result.
pub(super) fn callback_options(config: &Config, paths: &BootPaths) -> crate::report::callback::CallbackOptions {
    crate::report::callback::CallbackOptions {
        extra_roots: trust::ca_roots(config, paths),
        proxy: proxy(config),
        finish_within: config.report_timeout,
    }
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
        proxy: proxy(config),
        ..HttpOptions::default()
    };
    policy::fetch(&SourceSpec::Url(url.to_string()), &policy, http).map_err(|e| {
        fail(
            "fetching the bundle",
            "network",
            e,
            "check loader.url, loader.ca, loader.proxy and the clock",
        )
    })
}

/// `loader.metadata=URL`: provisioning variables from a metadata service
/// (the kinds and the plain-HTTP rule are in `source::metadata`).
pub(super) fn fetch_metadata(
    url: &str,
    config: &Config,
    paths: &BootPaths,
) -> Result<crate::source::metadata::Metadata, Failure> {
    use crate::source::metadata::{fetch, MetadataOptions};
    let options = MetadataOptions {
        kind: config.metadata_kind,
        insecure_http: config.metadata_insecure,
        extra_roots: trust::ca_roots(config, paths),
        proxy: proxy(config),
        ..MetadataOptions::default()
    };
    fetch(url, &options).map_err(|e| {
        fail(
            "fetching provisioning metadata",
            "metadata",
            e,
            "check loader.metadata, loader.metadata_kind and loader.metadata_insecure",
        )
    })
}
