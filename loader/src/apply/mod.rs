//! Applying a bundle to a target: the engine.
//!
//! The order of an install, and the rule each step keeps:
//!
//! 1. Read `meta.conf` and its signature first. With a key configured, an
//!    unsigned or badly signed bundle stops here: nothing has been written.
//! 2. Choose the task by prefix; its `require-*` guards read the disk.
//! 3. Validate the task (unsafe actions, unsupported features, held-data
//!    bound, and the caller's check of the regions it writes) before the
//!    first write.
//! 4. Run `on-init`, stream every resource through its handler while
//!    hashing it, run `on-finish`. Boot-critical writes go to the
//!    [`overlay::Overlay`]; bulk `raw_write` data goes to the disk.
//! 5. Only when every resource has verified: commit the held writes, in an
//!    order that survives a power cut at any write (`commit`).
//!
//! Any failure before step 5 runs `on-error`, drops the overlay and leaves a
//! disk that boots whatever it booted before (or nothing new). Whether bulk
//! data may stream onto the disk before step 5 at all, or the bundle is
//! verified whole first, is decided per install by `install_mode`.

mod actions;
pub(crate) mod chunk;
mod commit;
mod commit_env;
pub mod error;
pub mod events;
mod exec;
mod install;
pub mod overlay;
mod pipeline;
pub mod plan;
pub mod restart;
mod sched;
pub mod select;
mod sink;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

pub use actions::describe as describe_action;
pub(crate) use commit::switched_off;
pub use error::{ApplyError, SourceFailure};
pub use events::{Event, Reporter, Stage};
pub use install::{
    check_digests, check_head, collect_digests, open_bundle, verify_all, CheckedHead, EntryDigest, OpenedBundle,
};
pub use pipeline::Wanted;

use crate::bundle::signature::PublicKey;
use crate::target::Target;

/// Run before the commit: `Err` stops the install with nothing bootable
/// (the message says why).
pub type CommitCheck = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// How to apply a bundle.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Task name prefix (`complete`, `upgrade`, …).
    pub task: String,
    /// With any key here, only bundles signed by one of them are applied.
    pub public_keys: Vec<PublicKey>,
    /// Allow `execute`, `path_write`, `pipe_write` and `require-execute`.
    pub allow_unsafe: bool,
    /// Variables for `${VAR}` in meta.conf (the caller decides: process
    /// environment on a host, `loader.env.*` at boot).
    pub vars: BTreeMap<String, String>,
    /// Bound on boot-critical data held in memory until the commit.
    pub hold_limit: u64,
    /// A last check after every resource verified and before the commit
    /// (the whole-bundle SHA-256 pin); an error fails the install.
    pub before_commit: Option<CommitCheck>,
    /// The head (meta.conf and its signature) an earlier pass verified: a
    /// bundle whose head differs is refused before its meta.conf is read.
    pub expected_head: Option<std::sync::Arc<crate::bundle::open::BundleHead>>,
    /// An earlier pass proved every resource hash on these very bytes, and
    /// they cannot have changed since (a bundle held in memory): the
    /// install does not compute BLAKE2b again. The ZIP CRC-32 and the
    /// lengths are still checked.
    pub hashes_proven: bool,
    /// Bytes held from the start of the install as if already written
    /// (offset, bytes): the old boot records a two-pass install switched
    /// off on the disk, committed back unless the task rewrites them.
    pub preload: Vec<(u64, Vec<u8>)>,
    /// Sees every region the chosen task may write before the first write
    /// (see [`plan`]); an error refuses the install with nothing written.
    pub check_writes: Option<WriteCheck>,
}

/// A check of a task's planned writes: `Err` names what the task must not touch.
pub type WriteCheck = std::sync::Arc<dyn Fn(&[plan::PlannedWrite]) -> Result<(), String> + Send + Sync>;

impl ApplyOptions {
    pub fn new(task: &str) -> Self {
        ApplyOptions {
            task: task.to_string(),
            public_keys: Vec::new(),
            allow_unsafe: false,
            vars: BTreeMap::new(),
            hold_limit: overlay::DEFAULT_HOLD_LIMIT,
            before_commit: None,
            expected_head: None,
            hashes_proven: false,
            preload: Vec::new(),
            check_writes: None,
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub product: String,
    pub version: String,
    pub uuid: String,
    pub task: String,
    pub signature: String,
    /// Resource bytes processed (as stored in the bundle).
    pub resource_bytes: u64,
    /// Boot-critical bytes committed at the end.
    pub committed_bytes: u64,
    /// Times the install started over from byte 0 (the bundle changed on
    /// the server, or a broken download could not be resumed).
    pub restarts: u32,
    /// Bundle bytes downloaded more than once: by abandoned attempts, and
    /// by resumes from a server that ignored the range.
    pub refetched_bytes: u64,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Installs a bundle whose head [`open_bundle`] already read (the boot flow
/// looks at the manifest to choose the disk and task first).
pub fn apply_opened<R: Read + Send + 'static>(
    bundle: OpenedBundle<R>,
    target: &mut dyn Target,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ApplyError> {
    let started = Instant::now();
    let mut summary = install::run(bundle, target, opts, reporter)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Applies a bundle read front to back from `source` onto `target`.
pub fn apply<R: Read + Send + 'static>(
    source: R,
    target: &mut dyn Target,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ApplyError> {
    let started = Instant::now();
    let bundle = open_bundle(source, opts, reporter)?;
    let mut summary = install::run(bundle, target, opts, reporter)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}
