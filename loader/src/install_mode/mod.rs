//! How a bundle reaches the disk: one pass, through memory, or in two
//! passes. Chosen per install, printed on the console and in the events.
//!
//! The rule every mode keeps: **no state a failure or a power cut can leave
//! makes the machine boot unverified bytes, and a working system keeps
//! booting unless nothing else is possible.** Boot-critical writes are
//! always held until every resource verified (see `apply::overlay`); what
//! the modes decide is where bulk data may land before that.
//!
//! - **one pass**: the bundle streams onto the disk as it arrives. Safe
//!   when the disk holds nothing bootable (no partition table, boot code or
//!   environment: [`bootable`]), or when a streamed bundle's task writes
//!   only a slot the running system does not boot from ([`footprint`]).
//! - **memory**: the whole bundle is read into memory (or already is: the
//!   injected bundle of PID 1), every resource verified, then installed
//!   from memory without hashing it again. A refused bundle leaves the disk
//!   byte for byte as it was. Needs the bundle's size in RAM within the
//!   [`budget`].
//! - **two passes**: a first download verifies everything and writes
//!   nothing; then the disk's boot records are switched off and synced
//!   ([`switch_off`]), and a second download installs, refused unless its
//!   meta.conf is byte-identical to the first's and every resource hashes
//!   right. A second pass that fails leaves a disk that boots nothing,
//!   never one that boots unverified data; the old system is lost.
//!
//! With only a SHA-256 pin (no key), nothing of the bundle's meta.conf is
//! parsed before the pin matched: the first pass is the whole bundle into
//! memory, or a network pass that hashes the stream (and each ZIP entry)
//! without reading meta.conf until the end.

pub mod bootable;
pub mod budget;
pub mod footprint;
mod look;
mod passes;
mod plan;
pub mod spool;
pub mod switch_off;

pub use budget::Budget;
pub use look::{first_look, Look, Origin, Settings, Source};
pub use passes::{finish, install, Reopen};
pub use plan::{plan, Plan};

use std::fmt;

/// The ways a bundle can reach the disk (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    OnePass,
    Memory,
    TwoPass,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::OnePass => "one-pass",
            Mode::Memory => "memory",
            Mode::TwoPass => "two-pass",
        })
    }
}

/// `loader.install_mode=` / `--install-mode`: let the loader choose, or
/// force one of the modes that verify before writing (for tests, and for
/// operators who know their memory better). One pass cannot be forced: it
/// is only ever chosen where it is safe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModeRequest {
    #[default]
    Auto,
    Memory,
    TwoPass,
}

impl std::str::FromStr for ModeRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.replace('_', "-").as_str() {
            "auto" => Ok(ModeRequest::Auto),
            "memory" => Ok(ModeRequest::Memory),
            "two-pass" => Ok(ModeRequest::TwoPass),
            _ => Err("expected auto, memory or two-pass".into()),
        }
    }
}
