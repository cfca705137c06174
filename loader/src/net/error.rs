//! Errors of network bring-up, phrased for the operator at the console.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::ip_param::IpParamError;

/// Why the network could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("asking the kernel (netlink) to {action}: {source}")]
    Netlink {
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("no wired network interface found (the kernel has: {present}); is the NIC driver built into the kernel?")]
    NoInterfaces { present: String },
    #[error("ip= names interface {name}, which does not exist (found: {present})")]
    UnknownInterface { name: String, present: String },
    #[error("loader.iface names MAC address {mac}, which no interface has (found: {present})")]
    NoSuchMac { mac: String, present: String },
    #[error("no network link came up within {}s on {ifaces}: check the cable or the virtual NIC", .waited.as_secs())]
    NoCarrier { ifaces: String, waited: Duration },
    #[error("no DHCP lease: {}", .failures.join("; "))]
    NoLease { failures: Vec<String> },
    #[error("configuring {iface}: {action}: {source}")]
    Configure {
        iface: String,
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("writing {}: {source}", .path.display())]
    ResolvConf {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("enabling IPv6 autoconfiguration ({}): {source}", .path.display())]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {}: {source}", .path.display())]
    Pnp {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no usable address: {ipv4}; and IPv6: {ipv6}")]
    NoAddress { ipv4: Box<NetError>, ipv6: String },
    #[error("ip=off leaves only IPv6, and {ipv6}")]
    NoIpv6 { ipv6: String },
    #[error(transparent)]
    IpParam(#[from] IpParamError),
}
