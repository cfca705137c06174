//! `/etc/resolv.conf`, which musl's resolver reads on every lookup.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use super::error::NetError;

/// The file's text: up to three nameservers (the resolver ignores more),
/// duplicates dropped, and the search domain.
pub fn render_resolv_conf(servers: &[IpAddr], domain: Option<&str>) -> String {
    let mut text = String::from("# written by loader\n");
    if let Some(domain) = domain {
        let _ = writeln!(text, "search {domain}");
    }
    let mut seen: Vec<IpAddr> = Vec::new();
    for server in servers {
        if !seen.contains(server) && seen.len() < 3 {
            seen.push(*server);
            let _ = writeln!(text, "nameserver {server}");
        }
    }
    text
}

/// Writes the file, unless there is nothing to say (an existing file, or
/// a URL with an address literal, may still work then).
pub fn write_resolv_conf(path: &Path, servers: &[IpAddr], domain: Option<&str>) -> Result<bool, NetError> {
    if servers.is_empty() {
        return Ok(false);
    }
    std::fs::write(path, render_resolv_conf(servers, domain)).map_err(|source| NetError::ResolvConf {
        path: path.to_owned(),
        source,
    })?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn at_most_three_distinct_servers_and_the_domain() {
        let ips: Vec<IpAddr> = ["10.0.0.53", "10.0.0.53", "2001:db8::53", "9.9.9.9", "1.1.1.1"]
            .iter()
            .map(|s| s.parse().unwrap())
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
        assert!(!write_resolv_conf(&path, &[], None).unwrap());
        assert!(!path.exists());
        assert!(write_resolv_conf(&path, &["10.1.1.1".parse().unwrap()], None).unwrap());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("nameserver 10.1.1.1\n"));
    }
}
