//! DHCP on several interfaces at once: each gets its own thread (carrier
//! wait, then DISCOVER…ACK). The first lease starts a short grace period
//! for the others; then the rest are cancelled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::dhcp::{obtain_lease, DhcpError};
use super::error::NetError;
use super::lease::Lease;
use super::link::wait_for_carrier;
use super::netlink::{Link, Netlink};
use super::{NetEvent, NetOptions};

/// Why one interface produced no lease.
#[derive(Debug, thiserror::Error)]
enum LinkFailure {
    #[error("{iface}: no carrier after {}s", .waited.as_secs())]
    NoCarrier { iface: String, waited: Duration },
    #[error("{iface}: {source}")]
    Net { iface: String, source: NetError },
    #[error(transparent)]
    Dhcp(#[from] DhcpError),
}

/// Leases in the order they arrived, and a message per failed interface.
pub(crate) struct DhcpOutcome {
    pub(crate) leases: Vec<(Link, Lease)>,
    pub(crate) failures: Vec<String>,
    /// Every interface failed for lack of a carrier.
    pub(crate) all_without_carrier: bool,
}

pub(crate) fn dhcp_all(links: &[Link], options: &NetOptions, on_event: &(dyn Fn(&NetEvent) + Sync)) -> DhcpOutcome {
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let mut outcome = DhcpOutcome {
        leases: Vec::new(),
        failures: Vec::new(),
        all_without_carrier: true,
    };
    thread::scope(|scope| {
        for link in links {
            let tx = tx.clone();
            let cancel = &cancel;
            scope.spawn(move || {
                let result = lease_on(link, options, cancel, on_event);
                let _ = tx.send((link.clone(), result));
            });
        }
        drop(tx);
        let mut grace_ends: Option<Instant> = None;
        loop {
            let received = match grace_ends {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(end) => rx.recv_timeout(end.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok((link, Ok(lease))) => {
                    on_event(&NetEvent::Leased {
                        iface: link.name.clone(),
                        lease: lease.clone(),
                    });
                    grace_ends.get_or_insert_with(|| Instant::now() + options.lease_grace);
                    outcome.all_without_carrier = false;
                    outcome.leases.push((link, lease));
                }
                Ok((_, Err(failure))) => {
                    if !matches!(failure, LinkFailure::NoCarrier { .. }) {
                        outcome.all_without_carrier = false;
                    }
                    if !matches!(failure, LinkFailure::Dhcp(DhcpError::Cancelled { .. })) {
                        outcome.failures.push(failure.to_string());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    cancel.store(true, Ordering::Relaxed);
                    grace_ends = None;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    outcome
}

/// Carrier, then DHCP, on one interface (runs on its own thread with its
/// own netlink socket).
fn lease_on(
    link: &Link,
    options: &NetOptions,
    cancel: &AtomicBool,
    on_event: &(dyn Fn(&NetEvent) + Sync),
) -> Result<Lease, LinkFailure> {
    let iface = link.name.clone();
    let net = |source| LinkFailure::Net {
        iface: iface.clone(),
        source,
    };
    let mut nl = Netlink::open().map_err(|source| {
        net(NetError::Netlink {
            action: "open a socket".into(),
            source,
        })
    })?;
    let deadline = Instant::now() + options.carrier_timeout;
    match wait_for_carrier(&mut nl, link, deadline, cancel).map_err(net)? {
        Some(waited) => on_event(&NetEvent::Carrier {
            iface: iface.clone(),
            waited,
        }),
        None if cancel.load(Ordering::Relaxed) => {
            return Err(DhcpError::Cancelled { iface }.into());
        }
        None => {
            let waited = options.carrier_timeout;
            on_event(&NetEvent::NoCarrier {
                iface: iface.clone(),
                waited,
            });
            return Err(LinkFailure::NoCarrier { iface, waited });
        }
    }
    let deadline = Instant::now() + options.dhcp_timeout;
    let step = |step| {
        on_event(&NetEvent::Dhcp {
            iface: iface.clone(),
            step,
        })
    };
    Ok(obtain_lease(link, options.dhcp_timing, deadline, cancel, &step)?)
}
