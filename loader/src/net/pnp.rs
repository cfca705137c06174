//! What the kernel's own IP autoconfiguration (`ip=` handled by the kernel,
//! `CONFIG_IP_PNP`) left in `/proc/net/pnp`: the protocol it used and the
//! DNS servers, which the kernel cannot apply itself.

use std::net::IpAddr;

/// The parsed contents of `/proc/net/pnp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelAutoconfig {
    /// `DHCP`, `BOOTP` or `RARP` when the kernel obtained the configuration
    /// over the network; `None` for `#MANUALLY CONFIGURED`, which the kernel
    /// prints both for a static `ip=` and when it configured nothing.
    pub protocol: Option<String>,
    pub domain: Option<String>,
    pub nameservers: Vec<IpAddr>,
    pub bootserver: Option<IpAddr>,
}

/// Parses `/proc/net/pnp`. Unknown lines are ignored; so are `0.0.0.0`
/// placeholders the kernel prints for unset servers.
pub fn parse_pnp(text: &str) -> KernelAutoconfig {
    let mut out = KernelAutoconfig::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(proto) = line.strip_prefix("#PROTO:") {
            out.protocol = Some(proto.trim().to_owned());
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let addr = value.parse::<IpAddr>().ok().filter(|a| !a.is_unspecified());
        match key {
            "domain" => out.domain = Some(value.to_owned()),
            "nameserver" => out.nameservers.extend(addr),
            "bootserver" => out.bootserver = addr,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dhcp_result_is_read() {
        let text = "#PROTO: DHCP\ndomain example.net\nnameserver 10.0.2.3\nnameserver 0.0.0.0\n\
                    nameserver 9.9.9.9\nbootserver 10.0.2.2\n";
        let pnp = parse_pnp(text);
        assert_eq!(pnp.protocol.as_deref(), Some("DHCP"));
        assert_eq!(pnp.domain.as_deref(), Some("example.net"));
        let expected: Vec<IpAddr> = vec!["10.0.2.3".parse().unwrap(), "9.9.9.9".parse().unwrap()];
        assert_eq!(pnp.nameservers, expected);
        assert_eq!(pnp.bootserver, Some("10.0.2.2".parse().unwrap()));
    }

    #[test]
    fn manual_configuration_has_no_protocol() {
        let pnp = parse_pnp("#MANUALLY CONFIGURED\nnameserver 1.1.1.1\n");
        assert_eq!(pnp.protocol, None);
        assert_eq!(pnp.nameservers.len(), 1);
        assert_eq!(parse_pnp(""), KernelAutoconfig::default());
        assert!(parse_pnp("nameserver banana\n").nameservers.is_empty());
    }
}
