//! The boot flow, as steps: configuration → bundle → verify → disk → task →
//! install → finish. Used by PID 1 in the initramfs and by `loader boot`.
//!
//! Every step prints a `loader: stage: …` line on the console before it
//! starts (the QEMU harness and people at a serial console follow these),
//! and a failure names the stage, the cause and what to do.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bundle_source::open_bundle_source;
use super::config::{Config, OnError, TaskRequest};
use super::disks::{self, DiscoverOptions, SelectRequest, WaitPolicy};
use super::fetch::{bring_up_network, fetch_metadata};
use super::inputs::load_keys;
pub use super::reporter::BootReporter;
use super::task_choice;
use crate::apply::restart::Restarts;
use crate::apply::{self, ApplyOptions};
use crate::formats::BLOCK_SIZE;
use crate::install_mode;
use crate::report::console;
use crate::source::StatsHandle;
use crate::target::blockdev::BlockDevice;
use crate::target::Target;

/// Where the boot flow looks for things; `/` in an initramfs, a temp tree
/// in tests.
#[derive(Debug, Clone)]
pub struct BootPaths {
    pub config: PathBuf,
    pub cmdline: PathBuf,
    pub sys_block: PathBuf,
    pub mountinfo: PathBuf,
    /// Public keys baked into the initramfs (`*.pub`): always enforced.
    pub keys_dir: PathBuf,
    /// CA certificates baked into the initramfs (`*.pem`), trusted for
    /// HTTPS besides the built-in roots and `loader.ca=`.
    pub ca_dir: PathBuf,
    /// Where iPXE's `initrd … /root/install.fw` puts the bundle.
    pub default_bundle: PathBuf,
    /// Configure interfaces for `loader.url=` (PID 1). `loader boot` on a
    /// host uses the host's network as it is.
    pub manage_network: bool,
}

impl BootPaths {
    pub fn system() -> Self {
        BootPaths {
            config: PathBuf::from(super::config::DEFAULT_CONFIG_PATH),
            cmdline: PathBuf::from("/proc/cmdline"),
            sys_block: PathBuf::from("/sys/block"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            keys_dir: PathBuf::from("/etc/loader/keys"),
            ca_dir: PathBuf::from("/etc/loader/ca"),
            default_bundle: PathBuf::from("/root/install.fw"),
            manage_network: true,
        }
    }
}

/// A failed attempt: the stage it failed in and why.
#[derive(Debug)]
pub struct Failure {
    pub stage: &'static str,
    pub class: String,
    pub message: String,
    pub hint: &'static str,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.stage, self.message)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

pub(super) fn fail(stage: &'static str, class: &str, message: impl ToString, hint: &'static str) -> Failure {
    Failure {
        stage,
        class: class.to_string(),
        message: message.to_string(),
        hint,
    }
}

/// What a successful attempt did.
pub struct Installed {
    pub summary: apply::Summary,
    pub disk: String,
    pub outcome: Outcome,
}

/// How an attempt ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    /// The bundle is already the disk's active install: nothing written.
    AlreadyActive,
    /// `loader.dry_run=1`: the plan was printed, nothing written.
    DryRun,
}

/// One install attempt, from reading the configuration to a synced disk.
/// `stays_up`: the machine does not reboot or power off after a success,
/// so the kernel is made to read the new partition table.
pub fn attempt(
    config: &Config,
    paths: &BootPaths,
    stays_up: bool,
    out: &mut BootReporter,
) -> Result<Installed, Failure> {
    let started = Instant::now();
    // Parsed so the command line stays valid, but not carried out yet:
    // say so instead of pretending.
    let keys = load_keys(config, paths)?;
    out.say(&format!(
        "{} public key(s) enforced{}",
        keys.len(),
        if keys.is_empty() {
            " (no key: signatures are not checked)"
        } else {
            ""
        }
    ));

    let mut opts = ApplyOptions::new("");
    opts.public_keys = keys;
    let needs_network = config.url.is_some() || config.metadata.is_some() || config.report.is_some();
    if needs_network && paths.manage_network {
        bring_up_network(config, out)?;
    }
    if let Some(url) = &config.metadata {
        out.stage("fetching provisioning metadata");
        let metadata = fetch_metadata(url, config, paths)?;
        opts.vars = metadata.vars;
        out.say(&format!(
            "metadata: {} variable(s) from {url} ({})",
            opts.vars.len(),
            metadata.kind.name()
        ));
    }
    // loader.env.* wins over the metadata service.
    opts.vars.extend(config.env.clone());

    // A bundle that changes on the server mid-download starts the pass
    // over from byte 0, a bounded number of times (see apply::restart).
    let mut restarts = Restarts::default();
    let (summary, dev) = loop {
        match install_pass(config, paths, stays_up, &mut opts, &mut restarts, out) {
            Ok(done) => break done,
            Err(Stop::Failed(failure)) => return Err(failure),
            Err(Stop::NothingWritten(done)) => return Ok(*done),
            Err(Stop::Download { stage, error, received }) => restarts
                .after_failure(error, received, out)
                .map_err(|e| apply_failure(stage, e))?,
        }
    };
    out.say(&format!(
        "installed {} {} ({}) with task {} onto {dev} in {:.1} s; {} of resources, signature: {}{}",
        summary.product,
        summary.version,
        summary.uuid,
        summary.task,
        started.elapsed().as_secs_f64(),
        console::human(summary.resource_bytes),
        summary.signature,
        console::describe_restarts(&summary)
    ));
    Ok(Installed {
        summary,
        disk: dev,
        outcome: Outcome::Installed,
    })
}

/// Why a pass from the bundle to the installed disk stopped.
enum Stop {
    Failed(Failure),
    /// Finished without writing (the bundle already active, a dry run).
    NothingWritten(Box<Installed>),
    /// The download must start over from byte 0; the pass had downloaded
    /// `received` bytes.
    Download {
        stage: &'static str,
        error: apply::ApplyError,
        received: u64,
    },
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Self {
        Stop::Failed(failure)
    }
}

/// An engine error in `stage`: a download to start over, or a failure.
fn engine_stop(stage: &'static str, error: apply::ApplyError, stats: Option<&StatsHandle>) -> Stop {
    match error {
        apply::ApplyError::Download { restart: Some(_), .. } => Stop::Download {
            stage,
            error,
            received: stats.map_or(0, |s| s.snapshot().received),
        },
        error => Stop::Failed(apply_failure(stage, error)),
    }
}

/// One attempt from the bundle to the installed disk: bundle → disk →
/// task → install mode → install. Returns the summary and the disk.
fn install_pass(
    config: &Config,
    paths: &BootPaths,
    stays_up: bool,
    opts: &mut ApplyOptions,
    restarts: &mut Restarts,
    out: &mut BootReporter,
) -> Result<(apply::Summary, String), Stop> {
    let (source, origin, mut reopen) = open_bundle_source(config, paths, !opts.public_keys.is_empty(), out)?;
    let stats = source.stats.clone();
    let settings = install_mode::Settings {
        request: config.install_mode,
        budget: install_mode::Budget::system(opts.hold_limit),
        pin_only: config.url.is_some() && config.sha256.is_some() && opts.public_keys.is_empty(),
        origin,
    };
    // Nothing is written until the install mode is chosen: an injected
    // bundle on a blank disk is then installed in one pass (its held boot
    // writes keep a bad one from booting), over a working system it is
    // verified whole first.
    out.stage("opening the bundle");
    let look = install_mode::first_look(source, &settings, opts, out)
        .map_err(|e| engine_stop("opening the bundle", e, stats.as_ref()))?;
    let manifest = look.manifest();

    out.stage("choosing the disk");
    let min_size = layout_size(manifest);
    let selected = choose_disk(config, paths, min_size, out)?;
    // The reason names the disk as `summary()` does.
    out.say(&format!("disk: {}", selected.reason));
    let dev = selected.disk.dev_path();
    let mut device = BlockDevice::open(Path::new(&dev), config.force.mounted).map_err(|e| {
        fail(
            "opening the disk",
            "disk",
            format!("{dev}: {e}"),
            "is another process using it?",
        )
    })?;

    out.stage("choosing the task");
    let policy = task_choice::Policy {
        allow_downgrade: config.allow_downgrade,
    };
    let size = device.size();
    let (choice, facts) = task_choice::choose_task_on(&config.task, policy, manifest, look.uuid(), &mut device, size)
        .map_err(|e| fail("choosing the task", "task", e, "see what the disk holds: loader disks"))?;
    out.say(&format!("disk holds: {}", facts.contents.summary()));
    out.say(&format!("task: {} ({})", choice.label(), choice.reason));
    if let Some(outcome) = super::plan::stop_before_writing(config, &choice, &look, &mut device, opts, out)? {
        let summary = super::plan::unwritten_summary(&look, &choice);
        return Err(Stop::NothingWritten(Box::new(Installed {
            summary,
            disk: dev,
            outcome,
        })));
    }

    out.stage("choosing the install mode");
    opts.task = choice.task.clone();
    let installing = Installing {
        settings: &settings,
        reopen: &mut reopen,
        restarts,
        stats: stats.as_ref(),
    };
    let summary = match &choice.keep {
        // loader.task=repair: the data partition is shielded (target::shield).
        Some(keep) => {
            let mut shielded = crate::target::shield::Shield::new(&mut device, keep.range.clone());
            let mut summary = installing.run(look, &mut shielded, opts, out)?;
            out.say(&format!(
                "repair: partition {} kept; {} of writes into it were dropped",
                keep.number,
                console::human(shielded.dropped)
            ));
            summary.task = format!("{} (repair, partition {} kept)", summary.task, keep.number);
            summary
        }
        None => installing.run(look, &mut device, opts, out)?,
    };

    // Before a reboot the kernel's view of the disk is moot, and re-reading
    // it cost 12-74 ms in a one-vCPU guest (the kernel drops the disk's
    // cached pages).
    if stays_up {
        out.stage("re-reading the partition table");
        if let Err(e) = device.reread_partitions() {
            out.say(&format!(
                "warning: the kernel did not re-read the partition table of {dev}: {e}"
            ));
        }
    }
    Ok((summary, dev))
}

/// What the install mode's choice and passes need besides the bundle and
/// the target.
struct Installing<'a, 'r> {
    settings: &'a install_mode::Settings,
    reopen: &'a mut install_mode::Reopen<'r>,
    restarts: &'a mut Restarts,
    stats: Option<&'a StatsHandle>,
}

impl Installing<'_, '_> {
    /// Chooses the install mode for `look` on `target` and installs.
    fn run(
        self,
        look: install_mode::Look,
        target: &mut dyn Target,
        opts: &ApplyOptions,
        out: &mut BootReporter,
    ) -> Result<apply::Summary, Stop> {
        let plan = install_mode::plan(&look, target, &opts.task, opts.allow_unsafe, self.settings, out)
            .map_err(|e| Stop::Failed(apply_failure("choosing the install mode", e)))?;
        out.stage("installing");
        install_mode::finish(
            look,
            &plan,
            target,
            self.settings,
            opts,
            self.reopen,
            self.restarts,
            out,
        )
        .map_err(|e| engine_stop("installing", e, self.stats))
    }
}

fn apply_failure(stage: &'static str, e: apply::ApplyError) -> Failure {
    let hint = match e.class() {
        "signature" => "sign the bundle with a key the loader trusts, or check loader.pubkey",
        "corrupt" => "the bundle is damaged: fetch or build it again",
        "no-task" | "bundle-error" => "check loader.task and what the disk holds",
        _ => "",
    };
    fail(stage, e.class(), e, hint)
}

/// Bytes the bundle's partition layout needs, for refusing too-small disks.
pub(crate) fn layout_size(manifest: &crate::bundle::manifest::Manifest) -> u64 {
    use crate::formats::{gpt, mbr};
    let mut blocks = 0u64;
    for s in &manifest.mbrs {
        if let Ok(spec) = mbr::MbrSpec::from_section(s) {
            for p in &spec.partitions {
                blocks = blocks.max(u64::from(p.block_offset) + u64::from(p.block_count));
            }
        }
    }
    for s in &manifest.gpts {
        if let Ok(spec) = gpt::GptSpec::from_section(s) {
            for p in &spec.partitions {
                blocks = blocks.max(p.block_offset + p.block_count + 33);
            }
        }
    }
    blocks * BLOCK_SIZE
}

fn choose_disk(
    config: &Config,
    paths: &BootPaths,
    min_size: u64,
    out: &mut BootReporter,
) -> Result<disks::Selected, Failure> {
    let mut selector = config.disk.clone();
    // /dev/disk/by-id/… links name a device: resolve them first.
    if let Some(disks::DiskSelector::Path(path)) = &selector {
        if let Ok(real) = std::fs::canonicalize(path) {
            selector = Some(disks::DiskSelector::Path(real));
        }
    }
    let include_virtual = selector.as_ref().is_some_and(|s| s.names_device());
    let options = DiscoverOptions {
        include_virtual,
        loader_exe: std::fs::read_link("/proc/self/exe").ok(),
        dev_dir: Some(PathBuf::from("/dev")),
    };
    let request = SelectRequest {
        selector,
        min_size,
        force: config.force,
    };
    let policy = WaitPolicy {
        timeout: config.disk_wait,
        ..WaitPolicy::default()
    };
    let mut clock = disks::SystemClock::default();
    let mut last_note = String::new();
    // The sysfs root holding /sys/block (a fake tree in tests).
    let sys_root = paths.sys_block.parent().unwrap_or(Path::new("/sys")).to_path_buf();
    let waited = disks::wait_for_disk(
        &mut clock,
        &policy,
        &request,
        || {
            let mounts = std::fs::read_to_string(&paths.mountinfo)
                .ok()
                .and_then(|t| disks::parse_mountinfo(&t).ok())
                .unwrap_or_default();
            disks::discover(&paths.sys_block, &mounts, &options)
        },
        |elapsed| disks::probe_state(&sys_root, elapsed),
        |note| {
            if note != last_note {
                out.say(&format!("waiting for a disk: {note}"));
                last_note = note.to_string();
            }
        },
    );
    let (selected, report) = waited.map_err(|e| {
        fail(
            "choosing the disk",
            "disk",
            e,
            "set loader.disk= (serial:, wwn:, model:, size:>=, a path)",
        )
    })?;
    out.say(&format!("disks: {report}"));
    Ok(selected)
}

/// How long to pause before attempt `n` (1-based) is retried, or `None`
/// when the policy says stop.
pub fn retry_delay(config: &Config, failed_attempts: u32) -> Option<Duration> {
    match config.on_error {
        OnError::Retry if failed_attempts <= config.on_error_retries => Some(config.on_error_delay),
        _ => None,
    }
}

/// `loader.task=` as the engine's prefix (for messages).
pub fn describe_task(task: &TaskRequest) -> String {
    match task {
        TaskRequest::Auto => "auto".into(),
        TaskRequest::Prefix(p) => p.clone(),
        TaskRequest::Repair => "repair".into(),
    }
}
