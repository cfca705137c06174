//! The kernel's `ip=` parameter (Documentation/admin-guide/nfs/nfsroot.rst):
//! `ip=<client>:<server>:<gw>:<netmask>:<host>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>`
//! or a single word (`dhcp`, `off`, …). The loader reads it so it can do
//! the same configuration itself when the kernel did not (drivers that come
//! up late, a kernel without `CONFIG_IP_PNP`).

use std::net::Ipv4Addr;

use super::route::{self, Route};

/// What `ip=` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpParam {
    /// `off`/`none`: no IPv4 configuration.
    Off,
    /// `dhcp` (or `on`, `any`, `bootp`, `both`), optionally on one device.
    Dhcp {
        iface: Option<String>,
    },
    Static(StaticIpv4),
}

/// A static IPv4 configuration from `ip=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIpv4 {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    /// The device to configure; `None` means the first wired interface
    /// with a link.
    pub iface: Option<String>,
    pub dns: Vec<Ipv4Addr>,
}

impl StaticIpv4 {
    /// The routes to install, including an on-link route to a gateway
    /// outside the subnet (see [`route::plan_routes`]).
    pub fn routes(&self) -> Vec<Route> {
        let wanted: Vec<Route> = self.gateway.map(Route::default_via).into_iter().collect();
        route::plan_routes(self.address, self.prefix_len, &wanted)
    }
}

/// An `ip=` value the loader cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ip={value}: {detail}")]
pub struct IpParamError {
    pub value: String,
    pub detail: String,
}

const FIELD_NAMES: [&str; 10] = [
    "client address",
    "server address",
    "gateway",
    "netmask",
    "hostname",
    "device",
    "autoconf",
    "dns0",
    "dns1",
    "ntp0",
];

/// Parses the value of `ip=` (without the `ip=` prefix).
pub fn parse_ip_param(value: &str) -> Result<IpParam, IpParamError> {
    let fail = |detail: String| IpParamError {
        value: value.to_owned(),
        detail,
    };
    if !value.contains(':') {
        if let Some(param) = autoconf_word(value, None) {
            return Ok(param);
        }
        if value.parse::<Ipv4Addr>().is_err() {
            return Err(fail(format!(
                "`{value}` is neither an IPv4 address nor off, none, dhcp, on, any, bootp, rarp or both"
            )));
        }
    }
    let fields: Vec<&str> = value.split(':').collect();
    if fields.len() > FIELD_NAMES.len() {
        return Err(fail(format!(
            "{} fields, at most {} are defined",
            fields.len(),
            FIELD_NAMES.len()
        )));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or("").trim();
    let ipv4 = |i: usize| -> Result<Option<Ipv4Addr>, IpParamError> {
        match field(i) {
            "" => Ok(None),
            text => text
                .parse::<Ipv4Addr>()
                .map(|a| (!a.is_unspecified()).then_some(a))
                .map_err(|_| fail(format!("{} `{text}` is not an IPv4 address", FIELD_NAMES[i]))),
        }
    };
    let iface = Some(field(5)).filter(|s| !s.is_empty()).map(str::to_owned);
    let client = ipv4(0)?;
    match (field(6), client) {
        ("", None) => return Ok(IpParam::Dhcp { iface }),
        ("off" | "none", None) => return Ok(IpParam::Off),
        ("" | "off" | "none", Some(_)) => {}
        (word, _) => {
            return autoconf_word(word, iface).ok_or_else(|| {
                fail(format!(
                    "autoconf `{word}` is not off, none, dhcp, on, any, bootp, rarp or both"
                ))
            });
        }
    }
    let Some(address) = client else {
        return Err(fail("no client address".into()));
    };
    let prefix_len = match field(3) {
        "" => classful_prefix(address),
        text => parse_netmask(text).ok_or_else(|| fail(format!("netmask `{text}` is not a contiguous mask")))?,
    };
    let dns = [ipv4(7)?, ipv4(8)?].into_iter().flatten().collect();
    Ok(IpParam::Static(StaticIpv4 {
        address,
        prefix_len,
        gateway: ipv4(2)?,
        hostname: Some(field(4)).filter(|s| !s.is_empty()).map(str::to_owned),
        iface,
        dns,
    }))
}

fn autoconf_word(word: &str, iface: Option<String>) -> Option<IpParam> {
    match word {
        "off" | "none" => Some(IpParam::Off),
        "on" | "any" | "dhcp" | "bootp" | "rarp" | "both" => Some(IpParam::Dhcp { iface }),
        _ => None,
    }
}

/// A dotted netmask, or a prefix length (`24`, `/24`) as dracut allows.
fn parse_netmask(text: &str) -> Option<u8> {
    if let Ok(mask) = text.parse::<Ipv4Addr>() {
        return route::prefix_from_mask(mask);
    }
    text.trim_start_matches('/').parse::<u8>().ok().filter(|&p| p <= 32)
}

/// The kernel's default when the netmask is left empty.
fn classful_prefix(address: Ipv4Addr) -> u8 {
    match address.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn parse_static(value: &str) -> StaticIpv4 {
        match parse_ip_param(value).unwrap() {
            IpParam::Static(s) => s,
            other => panic!("{value}: {other:?}"),
        }
    }

    #[test]
    fn single_words() {
        assert_eq!(parse_ip_param("dhcp"), Ok(IpParam::Dhcp { iface: None }));
        assert_eq!(parse_ip_param("any"), Ok(IpParam::Dhcp { iface: None }));
        assert_eq!(parse_ip_param("off"), Ok(IpParam::Off));
        let err = parse_ip_param("dhcp6").unwrap_err();
        assert!(err.to_string().starts_with("ip=dhcp6: `dhcp6` is neither"), "{err}");
    }

    #[test]
    fn full_static_form() {
        let s = parse_static("192.168.1.10::192.168.1.1:255.255.255.0:box:eth0:off:9.9.9.9:1.1.1.1");
        assert_eq!(s.address, ip("192.168.1.10"));
        assert_eq!(s.prefix_len, 24);
        assert_eq!(s.gateway, Some(ip("192.168.1.1")));
        assert_eq!(s.hostname.as_deref(), Some("box"));
        assert_eq!(s.iface.as_deref(), Some("eth0"));
        assert_eq!(s.dns, [ip("9.9.9.9"), ip("1.1.1.1")]);
        assert_eq!(s.routes(), [Route::default_via(ip("192.168.1.1"))]);
    }

    #[test]
    fn gateway_outside_the_subnet_gets_an_on_link_route() {
        let s = parse_static("203.0.113.7::198.51.100.1:255.255.255.0::eth0:off");
        assert_eq!(
            s.routes(),
            [
                Route::on_link_host(ip("198.51.100.1")),
                Route::default_via(ip("198.51.100.1"))
            ]
        );
    }

    #[test]
    fn a_32_address_routes_through_an_on_link_gateway() {
        let s = parse_static("203.0.113.7::172.31.1.1:255.255.255.255:::none");
        assert_eq!(s.prefix_len, 32);
        assert_eq!(s.iface, None);
        assert_eq!(
            s.routes(),
            [
                Route::on_link_host(ip("172.31.1.1")),
                Route::default_via(ip("172.31.1.1"))
            ]
        );
        assert_eq!(parse_static("203.0.113.7::172.31.1.1:/32:::off").prefix_len, 32);
    }

    #[test]
    fn defaults_follow_the_kernel() {
        // Empty netmask: classful; empty autoconf with an address: static.
        assert_eq!(parse_static("10.0.0.2::10.0.0.1:").prefix_len, 8);
        assert_eq!(parse_static("172.16.0.2").prefix_len, 16);
        // No address: autoconfiguration on the named device.
        assert_eq!(
            parse_ip_param(":::::eth1:"),
            Ok(IpParam::Dhcp {
                iface: Some("eth1".into())
            })
        );
        assert_eq!(parse_ip_param("10.0.0.2::::::dhcp"), Ok(IpParam::Dhcp { iface: None }));
        assert_eq!(parse_ip_param("::::::off"), Ok(IpParam::Off));
        assert_eq!(parse_static("10.0.0.2::0.0.0.0:24").gateway, None);
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = parse_ip_param("10.0.0.300::::").unwrap_err();
        assert!(err.detail.contains("client address `10.0.0.300`"), "{err}");
        let err = parse_ip_param("10.0.0.2:::255.0.255.0").unwrap_err();
        assert!(err.detail.contains("netmask"), "{err}");
        let err = parse_ip_param("10.0.0.2::::::off:dns").unwrap_err();
        assert!(err.detail.contains("dns0 `dns`"), "{err}");
        let err = parse_ip_param("10.0.0.2::::::sometimes").unwrap_err();
        assert!(err.detail.contains("autoconf `sometimes`"), "{err}");
        assert!(parse_ip_param("1:2:3:4:5:6:7:8:9:10:11").is_err());
        assert!(parse_ip_param("10.0.0.2:::33").is_err());
    }
}
