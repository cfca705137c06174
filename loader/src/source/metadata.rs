//! `loader.metadata=URL`: provisioning variables from a metadata service,
//! for `${VAR}` in the bundle's `meta.conf`.
//!
//! Each cloud's service speaks its own way; the kind comes from
//! `loader.metadata_kind=` or is detected from the URL (see
//! [`MetadataKind::detect`]):
//!
//! | kind | request | variables |
//! |---|---|---|
//! | `generic` | `GET URL` | a flat JSON object: its string, number and bool values by key |
//! | `json` | `GET URL` | any JSON, flattened to dotted names: `interfaces.0.ipv4.address` (Vultr's `/v1.json`, DigitalOcean's `/metadata/v1.json`) |
//! | `ec2` | `PUT /latest/api/token` (IMDSv2, `X-aws-ec2-metadata-token-ttl-seconds`), then `GET URL` with `X-aws-ec2-metadata-token` | a JSON document flattened (`…/instance-identity/document`: `region`, `instanceId`), or a directory URL ending in `/` walked (`…/meta-data/`: `instance-id`, `placement.region`) |
//! | `gcp` | `GET URL` with `Metadata-Flavor: Google` (`?recursive=true` added to a directory URL) | flattened: `id`, `hostname`, `networkInterfaces.0.ip`, `attributes.KEY` |
//! | `azure` | `GET URL` with `Metadata: true` (`api-version=2021-02-01` added when missing) | flattened: `compute.name`, `network.interface.0.ipv4.ipAddress.0.privateIpAddress` |
//!
//! Plain `http://` (how these services are reached) is used only for
//! link-local (169.254.0.0/16, fe80::/10) and loopback addresses, where
//! metadata services live, and never through a proxy: anywhere else a man
//! in the middle could choose the values a signed `meta.conf` expands.
//! `loader.metadata_insecure=1` lifts that rule (and only that rule).
//! A host name is resolved first, checked, and the connection pinned to
//! the checked addresses.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::client::ProxySetting;
use super::request::{SmallClient, SmallResponse};
use super::tls::ExtraRoot;
use super::url::{self, Url};

/// How a metadata service is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    Generic,
    Json,
    Ec2,
    Gcp,
    Azure,
}

impl MetadataKind {
    /// The names `loader.metadata_kind=` takes.
    pub const NAMES: &'static str = "generic, json, ec2, gcp, azure";

    pub fn parse(name: &str) -> Result<MetadataKind, String> {
        Ok(match name {
            "generic" => MetadataKind::Generic,
            "json" => MetadataKind::Json,
            "ec2" | "aws" => MetadataKind::Ec2,
            "gcp" | "google" => MetadataKind::Gcp,
            "azure" => MetadataKind::Azure,
            other => return Err(format!("unknown metadata kind `{other}` (one of {})", Self::NAMES)),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MetadataKind::Generic => "generic",
            MetadataKind::Json => "json",
            MetadataKind::Ec2 => "ec2",
            MetadataKind::Gcp => "gcp",
            MetadataKind::Azure => "azure",
        }
    }

    /// The kind a URL's shape says: `/latest/…` is EC2, `/computeMetadata/…`
    /// or `metadata.google.internal` Google, `/metadata/instance…` Azure,
    /// a path ending in `.json` nested JSON; anything else a flat object.
    pub fn detect(url: &Url) -> MetadataKind {
        let path = url.path();
        if url.host_str() == Some("metadata.google.internal") || path.starts_with("/computeMetadata/") {
            MetadataKind::Gcp
        } else if path.starts_with("/latest/") || path == "/latest" {
            MetadataKind::Ec2
        } else if path.starts_with("/metadata/instance") {
            MetadataKind::Azure
        } else if path.ends_with(".json") {
            MetadataKind::Json
        } else {
            MetadataKind::Generic
        }
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct MetadataOptions {
    /// `loader.metadata_kind=`; `None` detects it from the URL.
    pub kind: Option<MetadataKind>,
    /// `loader.metadata_insecure=1`: plain HTTP to any address.
    pub insecure_http: bool,
    pub extra_roots: Vec<ExtraRoot>,
    pub proxy: ProxySetting,
    /// For the whole exchange (token, documents, a walked tree).
    pub deadline: Duration,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            kind: None,
            insecure_http: false,
            extra_roots: Vec::new(),
            proxy: ProxySetting::Environment,
            deadline: Duration::from_secs(30),
        }
    }
}

/// What a metadata service provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: MetadataKind,
    pub vars: BTreeMap<String, String>,
}

/// Longest document accepted from a metadata service.
const MAX_DOCUMENT: usize = 1 << 20;
/// Most requests an EC2 directory walk makes.
const MAX_WALK: usize = 256;
const EC2_TOKEN_TTL: &str = "300";
const AZURE_API_VERSION: &str = "2021-02-01";

/// Fetches the variables at `target`. Errors are sentences naming the URL
/// (redacted) and the rule or answer at fault.
pub fn fetch(target: &str, options: &MetadataOptions) -> Result<Metadata, String> {
    let parsed = url::parse(target).map_err(|e| format!("{target}: not a usable URL: {e:?}"))?;
    let shown = url::redacted(&parsed);
    let kind = options.kind.unwrap_or_else(|| MetadataKind::detect(&parsed));
    let (proxy, pin) = route(&parsed, options).map_err(|e| format!("{shown}: {e}"))?;
    let client = SmallClient::new(&options.extra_roots, &proxy, MAX_DOCUMENT, pin).map_err(|e| e.to_string())?;
    let session = Session {
        client,
        deadline: Instant::now() + options.deadline,
    };
    let vars = match kind {
        MetadataKind::Generic => flat_object(&session.json(&parsed, &[])?, &shown)?,
        MetadataKind::Json => flatten(&session.json(&parsed, &[])?),
        MetadataKind::Gcp => {
            let mut url = parsed.clone();
            if url.path().ends_with('/') && !url.query_pairs().any(|(k, _)| k == "recursive") {
                url.query_pairs_mut().append_pair("recursive", "true");
            }
            let answer = session.get(&url, &[("Metadata-Flavor", "Google")])?;
            let flavor = answer.headers.get("metadata-flavor").and_then(|v| v.to_str().ok());
            if flavor != Some("Google") {
                return Err(format!(
                    "{shown}: the answer lacks `Metadata-Flavor: Google`: not a Google Cloud metadata server"
                ));
            }
            flatten(&parse_json(&answer.body, &shown)?)
        }
        MetadataKind::Azure => {
            let mut url = parsed.clone();
            if !url.query_pairs().any(|(k, _)| k == "api-version") {
                url.query_pairs_mut().append_pair("api-version", AZURE_API_VERSION);
            }
            flatten(&session.json(&url, &[("Metadata", "true")])?)
        }
        MetadataKind::Ec2 => ec2(&session, &parsed)?,
    };
    Ok(Metadata { kind, vars })
}

/// A host name and the checked addresses a connection to it is pinned to.
type Pin = Option<(String, Vec<SocketAddr>)>;

/// The proxy to use and the addresses to pin a host name to, under the
/// plain-HTTP rule.
fn route(url: &Url, options: &MetadataOptions) -> Result<(ProxySetting, Pin), String> {
    if url.scheme() == "https" {
        return Ok((options.proxy.clone(), None));
    }
    if options.insecure_http {
        return Ok((options.proxy.clone(), None));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let (addresses, pin) = match url::literal_ip(url) {
        Some(ip) => (vec![SocketAddr::new(ip, port)], None),
        None => {
            let host = url.host_str().unwrap_or_default().to_owned();
            let found: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("resolving {host}: {e}"))?
                .collect();
            (found.clone(), Some((host, found)))
        }
    };
    match addresses.iter().find(|a| !metadata_address(a.ip())) {
        None if !addresses.is_empty() => Ok((ProxySetting::Direct, pin)),
        other => Err(format!(
            "plain http:// metadata is fetched only from link-local (169.254.0.0/16, fe80::/10) or \
             loopback addresses, where cloud metadata services live, and {} is neither; use https://, \
             or allow it with loader.metadata_insecure=1 (its values fill ${{VAR}} in the bundle's meta.conf)",
            other.map_or("the host".to_owned(), |a| a.ip().to_string())
        )),
    }
}

/// Link-local or loopback: where plain-HTTP metadata may come from.
pub fn metadata_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_link_local() || v4.is_loopback())
        }
    }
}

/// Requests of one fetch, sharing its deadline.
struct Session {
    client: SmallClient,
    deadline: Instant,
}

impl Session {
    fn send(&self, method: Method, url: &Url, headers: &[(&str, &str)]) -> Result<SmallResponse, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let answer = self.client.send(method, url.as_str(), headers, None, left)?;
        if answer.status != 200 {
            return Err(format!("{}: the server answered {}", url::redacted(url), answer.status));
        }
        Ok(answer)
    }

    fn get(&self, url: &Url, headers: &[(&str, &str)]) -> Result<SmallResponse, String> {
        self.send(Method::GET, url, headers)
    }

    fn json(&self, url: &Url, headers: &[(&str, &str)]) -> Result<Value, String> {
        parse_json(&self.get(url, headers)?.body, &url::redacted(url))
    }
}

/// EC2's IMDSv2: a session token first, then the document or the tree.
fn ec2(session: &Session, url: &Url) -> Result<BTreeMap<String, String>, String> {
    let token_url = url.join("/latest/api/token").map_err(|e| e.to_string())?;
    let answer = session.send(
        Method::PUT,
        &token_url,
        &[("X-aws-ec2-metadata-token-ttl-seconds", EC2_TOKEN_TTL)],
    )?;
    let token = String::from_utf8(answer.body).map_err(|_| "the IMDSv2 token is not text".to_owned())?;
    let auth = [("X-aws-ec2-metadata-token", token.trim())];
    if !url.path().ends_with('/') {
        let body = session.get(url, &auth)?.body;
        return match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Ok(flatten(&value)),
            Err(_) => {
                let name = url.path().rsplit('/').next().unwrap_or_default().to_owned();
                Ok(BTreeMap::from([(name, text(&body, url)?)]))
            }
        };
    }
    let mut vars = BTreeMap::new();
    let mut pending = vec![(url.clone(), String::new())];
    let mut requests = 0;
    while let Some((dir, prefix)) = pending.pop() {
        requests += 1;
        let listing = text(&session.get(&dir, &auth)?.body, &dir)?;
        for entry in listing.lines().map(str::trim).filter(|l| !l.is_empty()) {
            requests += 1;
            if requests > MAX_WALK {
                return Err(format!(
                    "{}: more than {MAX_WALK} entries; name a smaller directory or a document",
                    url::redacted(url)
                ));
            }
            let child = dir.join(entry).map_err(|e| e.to_string())?;
            match entry.strip_suffix('/') {
                Some(sub) => pending.push((child, format!("{prefix}{sub}."))),
                None => {
                    let value = text(&session.get(&child, &auth)?.body, &child)?;
                    vars.insert(format!("{prefix}{entry}"), value);
                }
            }
        }
    }
    Ok(vars)
}

fn text(body: &[u8], url: &Url) -> Result<String, String> {
    String::from_utf8(body.to_vec()).map_err(|_| format!("{}: not text", url::redacted(url)))
}

fn parse_json(body: &[u8], shown: &str) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("{shown}: not JSON: {e}"))
}

/// The generic kind: a flat JSON object's scalar values.
fn flat_object(value: &Value, shown: &str) -> Result<BTreeMap<String, String>, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{shown}: expected a JSON object"))?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
        .collect())
}

/// Every scalar in a JSON tree under its dotted path (`a.0.b`); nulls are
/// left out.
pub fn flatten(value: &Value) -> BTreeMap<String, String> {
    fn walk(value: &Value, path: &str, out: &mut BTreeMap<String, String>) {
        let join = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, &join(k), out)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &join(&i.to_string()), out)),
            scalar_value => {
                if let Some(s) = scalar(scalar_value) {
                    out.insert(path.to_owned(), s);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(value, "", &mut out);
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_detected_from_the_url() {
        let kind = |u: &str| MetadataKind::detect(&url::parse(u).unwrap());
        assert_eq!(kind("http://169.254.169.254/v1.json"), MetadataKind::Json);
        assert_eq!(
            kind("http://169.254.169.254/latest/dynamic/instance-identity/document"),
            MetadataKind::Ec2
        );
        assert_eq!(
            kind("http://metadata.google.internal/computeMetadata/v1/instance/"),
            MetadataKind::Gcp
        );
        assert_eq!(kind("http://169.254.169.254/metadata/instance"), MetadataKind::Azure);
        assert_eq!(kind("http://127.0.0.1:8080/meta"), MetadataKind::Generic);
        assert_eq!(MetadataKind::parse("aws"), Ok(MetadataKind::Ec2));
        assert!(MetadataKind::parse("openstack").unwrap_err().contains("generic, json"));
    }

    #[test]
    fn nested_json_flattens_to_dotted_names() {
        let value: Value = serde_json::from_str(
            r#"{"hostname":"vps-1","interfaces":[{"ipv4":{"address":"192.0.2.7"},"mac":"56:00"}],
                "tags":[],"public":true,"id":42,"none":null}"#,
        )
        .unwrap();
        let vars = flatten(&value);
        assert_eq!(vars["hostname"], "vps-1");
        assert_eq!(vars["interfaces.0.ipv4.address"], "192.0.2.7");
        assert_eq!(vars["interfaces.0.mac"], "56:00");
        assert_eq!((vars["public"].as_str(), vars["id"].as_str()), ("true", "42"));
        assert!(!vars.contains_key("none") && !vars.contains_key("tags"));
    }

    #[test]
    fn plain_http_metadata_only_from_link_local_or_loopback() {
        for ok in [
            "169.254.169.254",
            "127.0.0.1",
            "::1",
            "fe80::a9fe:a9fe",
            "::ffff:169.254.169.254",
        ] {
            assert!(metadata_address(ok.parse().unwrap()), "{ok}");
        }
        for refused in ["10.0.2.2", "192.0.2.1", "fd00:ec2::254", "2001:db8::1", "169.255.0.1"] {
            assert!(!metadata_address(refused.parse().unwrap()), "{refused}");
        }
    }
}
