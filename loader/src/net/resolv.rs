//! `/etc/resolv.conf`, which musl's resolver reads on every lookup.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::Path;

use super::error::NetError;

/// A DNS server for resolv.conf. A link-local IPv6 server (legal in router
/// advertisements) is only reachable through its interface, written as
/// `fe80::1%eth0`, which both musl and glibc understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    pub address: IpAddr,
    /// The interface, used only for a link-local IPv6 address.
    pub iface: Option<String>,
}

impl From<IpAddr> for Nameserver {
    fn from(address: IpAddr) -> Self {
        Nameserver { address, iface: None }
    }
}

impl fmt::Display for Nameserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.address, &self.iface) {
            (IpAddr::V6(v6), Some(iface)) if v6.is_unicast_link_local() => write!(f, "{v6}%{iface}"),
            (address, _) => write!(f, "{address}"),
        }
    }
}

/// The servers the file names: up to three (the resolver ignores more),
/// duplicates dropped, in the order given.
pub fn chosen_servers(servers: &[Nameserver]) -> Vec<Nameserver> {
    let mut chosen: Vec<Nameserver> = Vec::new();
    for server in servers {
        let text = server.to_string();
        if chosen.len() < 3 && !chosen.iter().any(|c| c.to_string() == text) {
            chosen.push(server.clone());
        }
    }
    chosen
}

/// The file's text: the [`chosen_servers`] and the search domain.
pub fn render_resolv_conf(servers: &[Nameserver], domain: Option<&str>) -> String {
    let mut text = String::from("# written by loader\n");
    if let Some(domain) = domain {
        let _ = writeln!(text, "search {domain}");
    }
    for server in chosen_servers(servers) {
        let _ = writeln!(text, "nameserver {server}");
    }
    text
}

/// Writes the file and returns the servers it names, unless there is
/// nothing to say: then the file is left alone (an existing file, or a
/// URL with an address literal, may still work) and the list is empty.
pub fn write_resolv_conf(
    path: &Path,
    servers: &[Nameserver],
    domain: Option<&str>,
) -> Result<Vec<Nameserver>, NetError> {
    if servers.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::write(path, render_resolv_conf(servers, domain)).map_err(|source| NetError::ResolvConf {
        path: path.to_owned(),
        source,
    })?;
    Ok(chosen_servers(servers))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn at_most_three_distinct_servers_and_the_domain() {
        let ips: Vec<Nameserver> = ["10.0.0.53", "10.0.0.53", "2001:db8::53", "9.9.9.9", "1.1.1.1"]
            .iter()
            .map(|s| s.parse::<IpAddr>().unwrap().into())
            .collect();
        assert_eq!(
            render_resolv_conf(&ips, Some("lan.example")),
            "# written by loader\nsearch lan.example\nnameserver 10.0.0.53\nnameserver 2001:db8::53\nnameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn nothing_is_written_without_servers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        assert_eq!(write_resolv_conf(&path, &[], None).unwrap(), []);
        assert!(!path.exists());
        let server: Nameserver = "10.1.1.1".parse::<IpAddr>().unwrap().into();
        assert_eq!(
            write_resolv_conf(&path, &[server.clone(), server.clone()], None).unwrap(),
            [server]
        );
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("nameserver 10.1.1.1\n"));
    }

    #[test]
    fn link_local_servers_carry_their_interface() {
        let scoped = |ip: &str, iface: &str| Nameserver {
            address: ip.parse().unwrap(),
            iface: Some(iface.into()),
        };
        let servers = [
            scoped("fe80::53", "eth0"),
            scoped("fe80::53", "eth1"),
            // The interface matters only where the address needs it.
            scoped("2001:db8::53", "eth0"),
            scoped("fe80::53", "eth0"),
        ];
        assert_eq!(
            render_resolv_conf(&servers, None),
            "# written by loader\nnameserver fe80::53%eth0\nnameserver fe80::53%eth1\nnameserver 2001:db8::53\n"
        );
    }
}
