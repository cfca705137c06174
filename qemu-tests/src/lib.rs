//! The QEMU end-to-end harness: boots the real artifacts the way a server
//! boots them (QEMU's iPXE ROM → boot.ipxe from a loopback server → the
//! loader kernel and initramfs → the install → a reboot into the installed
//! system) and lets scenarios judge the result from the serial console and
//! the disk, never from QEMU's exit code.
//!
//! Nothing but 127.0.0.1 (host side) and 10.0.2.2 (QEMU's user-network name
//! for the host) is ever addressed; QEMU runs under TCG only.
//!
//! The scenarios are in `tests/scenarios/`; run one by name with
//! `cargo test -p qemu-tests --test scenarios -- NAME`.

pub mod artifacts;
pub mod cut;
pub mod disk;
pub mod netns;
pub mod provider;
pub mod reference;
pub mod scenario;
pub mod server;
pub mod timing;
pub mod vm;

/// Throw-away CAs and server certificates, shared with the loader's own
/// HTTPS tests.
#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../loader/tests/https_support/pki.rs"]
pub mod pki;

/// The power-cut matrix's recording target and sync intervals, shared with
/// the loader's own tests (`loader/tests/power_cut.rs`).
#[path = "../../loader/tests/power_cut_support/mod.rs"]
pub mod power_cut;
