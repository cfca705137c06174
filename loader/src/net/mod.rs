//! Network bring-up in the initramfs, without external programs: a static
//! configuration matched by MAC address (`loader.iface=`, what `loader
//! takeover` carries over from the system it replaces), else what
//! the kernel already configured (`ip=` handled by `CONFIG_IP_PNP`), else a
//! static `ip=` configuration or DHCPv4 on every wired interface in
//! parallel, plus IPv6 SLAAC with DNS servers from router advertisements;
//! then `/etc/resolv.conf`. All `/proc` paths
//! and files are parameters so tests can point them elsewhere.

mod bring_up;
mod dhcp;
mod dhcp_all;
mod error;
mod ip_param;
mod ipv6;
mod lease;
mod link;
mod netlink;
mod pnp;
mod rdnss;
mod resolv;
mod route;
mod rtnl_codec;
pub mod snapshot;
pub mod static_iface;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

pub use bring_up::bring_up;
pub use dhcp::{DhcpError, DhcpStep, DhcpTiming};
pub use error::NetError;
pub use ip_param::{parse_ip_param, IpParam, IpParamError, StaticIpv4};
pub use ipv6::enable_slaac;
pub use lease::Lease;
pub use netlink::{Link, LinkAddress, Netlink, RouteEntry};
pub use pnp::{parse_pnp, KernelAutoconfig};
pub use rdnss::{parse_nd_user_option, parse_rdnss_option, Rdnss};
pub use resolv::{chosen_servers, render_resolv_conf, write_resolv_conf, Nameserver};
pub use route::{plan_routes, prefix_from_mask, Route};
pub use static_iface::StaticInterface;

/// How to bring the network up.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// The kernel command line's `ip=`, parsed; `None` means DHCP on every
    /// wired interface.
    pub ip: Option<IpParam>,
    /// `loader.iface=`: static interfaces found by MAC address; when any is
    /// given, they are the whole configuration (no DHCP, no `ip=`).
    pub interfaces: Vec<StaticInterface>,
    /// `loader.dns=`: the name servers for the static interfaces.
    pub dns: Vec<IpAddr>,
    /// How long a link may take to report a carrier after being set up.
    pub carrier_timeout: Duration,
    /// How long DHCP may take on one interface (after its carrier).
    pub dhcp_timeout: Duration,
    pub dhcp_timing: DhcpTiming,
    /// After the first lease, how long slower interfaces may still finish.
    pub lease_grace: Duration,
    /// Allow SLAAC on the interfaces used.
    pub ipv6: bool,
    /// How long to wait for a global IPv6 address (and the DNS servers its
    /// router advertises) when IPv4 gave no address or no DNS server.
    pub ipv6_timeout: Duration,
    pub pnp_path: PathBuf,
    pub proc_sys: PathBuf,
    pub resolv_conf: PathBuf,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            ip: None,
            interfaces: Vec::new(),
            dns: Vec::new(),
            carrier_timeout: Duration::from_secs(15),
            dhcp_timeout: Duration::from_secs(30),
            dhcp_timing: DhcpTiming::default(),
            lease_grace: Duration::from_secs(2),
            ipv6: true,
            ipv6_timeout: Duration::from_secs(10),
            pnp_path: PathBuf::from("/proc/net/pnp"),
            proc_sys: PathBuf::from("/proc/sys"),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// What happened during bring-up, for the console and the status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// The kernel had configured the network already (`protocol` as in
    /// `/proc/net/pnp`, or "static").
    KernelConfigured {
        protocol: String,
    },
    Carrier {
        iface: String,
        waited: Duration,
    },
    NoCarrier {
        iface: String,
        waited: Duration,
    },
    Dhcp {
        iface: String,
        step: DhcpStep,
    },
    Leased {
        iface: String,
        lease: Lease,
    },
    Configured {
        iface: String,
        address: Ipv4Addr,
        prefix_len: u8,
    },
    Ipv6Enabled {
        iface: String,
    },
    Ipv6Address {
        iface: String,
        address: Ipv6Addr,
    },
    /// A router advertisement named DNS servers (RDNSS); `lifetime` `None`
    /// means no expiry.
    Ipv6Dns {
        iface: String,
        router: Option<Ipv6Addr>,
        servers: Vec<Ipv6Addr>,
        lifetime: Option<Duration>,
    },
    /// A router withdrew DNS servers it had advertised (lifetime 0).
    Ipv6DnsWithdrawn {
        iface: String,
        servers: Vec<Ipv6Addr>,
    },
    /// What was written to resolv.conf: IPv4 servers first, then IPv6 ones
    /// from router advertisements.
    Resolvers {
        servers: Vec<IpAddr>,
    },
    /// IPv4 configuration failed but IPv6 works; `message` says why.
    Ipv4Failed {
        message: String,
    },
}

/// How IPv4 was configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Kernel {
        protocol: String,
    },
    Static,
    Dhcp,
    /// `ip=off`, or nothing worked and IPv6 is all there is.
    None,
}

/// An interface the loader configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredInterface {
    pub name: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub routes: Vec<Route>,
    pub lease: Option<Lease>,
}

/// The outcome of [`bring_up`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSummary {
    pub method: Method,
    pub interfaces: Vec<ConfiguredInterface>,
    pub ipv6: Vec<(String, Ipv6Addr)>,
    /// What was written to resolv.conf (empty: the file was left alone).
    pub nameservers: Vec<IpAddr>,
}
