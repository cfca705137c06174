//! `loader takeover`: from a running x86_64 Linux (a cloud provider's
//! stock image), start the loader with `kexec_file_load` and install a
//! bundle over that system, on clouds that offer no iPXE.
//!
//! The order keeps the server safe: everything that can fail is done
//! before the jump, while the running system can still say why:
//!
//! 1. Can this machine jump at all ([`preflight`]: Xen PV, no kexec,
//!    kexec disabled, not root)? Lockdown and Secure Boot are named.
//! 2. What crosses the jump ([`carry`]): the network as it is now, matched
//!    by MAC address (`--keep-network=no` for DHCP), the disk this system
//!    runs from pinned by serial/WWN/path, the task (`complete` unless
//!    `--task`), keys, CA certificates, provisioning variables. The
//!    configuration is parsed by the loader's own rules now.
//! 3. The images ([`image`]): the loader's kernel and initramfs (given,
//!    found next to this binary, or the initramfs built from this static
//!    binary), and with `--bundle` the bundle, read back from memory and
//!    verified completely. With `--fetch-bundle` its signature and task
//!    are checked now and the loader streams it after the jump.
//! 4. Memory: what the jump needs, printed, and refused when short.
//! 5. `kexec_file_load` ([`sys`]); a refusal is explained ([`preflight`]).
//! 6. The jump (`reboot(RB_KEXEC)` after a sync), unless `--load-only`.
//!
//! `--dry-run` does 1–4 and prints the kernel command line and every
//! carried file instead of loading.

pub mod carry;
pub mod image;
pub mod preflight;
mod sys;

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use crate::apply::{self, events::Silent, ApplyOptions};
use crate::boot::disks::DiskSelector;
use crate::bundle::signature::PublicKey;
use crate::hostdisk::Paths;
use crate::net::snapshot::{self, SnapshotPaths};
use crate::report::console::human;
use crate::source::policy::FetchPolicy;
use carry::Carried;
use image::{Image, Initrd};
use preflight::{Environment, SystemRoot};

const MIB: u64 = 1 << 20;
/// Where the kernel and initramfs are looked for without --kernel and
/// --initramfs, after the directory of this binary.
pub const DEFAULT_DIR: &str = "/usr/lib/loader";

#[derive(clap::Args)]
pub struct TakeoverArgs {
    /// Bundle (file or URL) to carry in the loader's initramfs; fetched and verified
    /// completely before the jump.
    #[arg(
        long,
        value_name = "FILE|URL",
        conflicts_with = "fetch_bundle",
        required_unless_present = "fetch_bundle"
    )]
    bundle: Option<String>,
    /// Or: the URL the loader streams the bundle from after the jump (its signature and
    /// task are checked now).
    #[arg(long, value_name = "URL")]
    fetch_bundle: Option<String>,
    /// The loader's kernel (default: bzImage next to this binary, then /usr/lib/loader/bzImage).
    #[arg(long, value_name = "FILE|URL")]
    kernel: Option<String>,
    /// The loader's initramfs (default: initramfs next to this binary, then
    /// /usr/lib/loader/initramfs, else one built from this static binary).
    #[arg(long, value_name = "FILE|URL")]
    initramfs: Option<String>,
    // Keys are checked now and baked into the initramfs, where the loader enforces them.
    #[command(flatten)]
    keys: crate::cli::KeyArgs,
    // CA certificates are trusted now and baked in for the loader; --insecure also
    // allows plain http:// for --kernel and --initramfs.
    #[command(flatten)]
    fetch: crate::cli::FetchArgs,
    /// The disk to install on, as loader.disk= takes it (default: the disk this system runs
    /// from, by serial number, WWN or path).
    #[arg(long, value_name = "SELECTOR")]
    disk: Option<String>,
    /// Task prefix for the loader (default: complete, a new install over this system).
    #[arg(long, default_value = "complete")]
    task: String,
    /// Carry this system's addresses, routes, MTU and DNS servers (yes), or let the loader
    /// use DHCP (no).
    #[arg(long, value_name = "yes|no", default_value = "yes")]
    keep_network: String,
    /// A provisioning variable for the bundle's ${NAME}; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The metadata service the loader reads provisioning variables from (loader.metadata=).
    #[arg(long, value_name = "URL")]
    metadata: Option<String>,
    /// Any other loader setting for after the jump (loader.on_error=halt,
    /// loader.metadata_kind=ec2, …); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Extra kernel command line words (default line: this kernel's console= and panic=30).
    #[arg(long, value_name = "WORDS")]
    append: Option<String>,
    /// Check everything and print what would be carried, without loading.
    #[arg(long)]
    dry_run: bool,
    /// Load the loader but do not jump: `systemctl kexec` then shuts down cleanly into it.
    #[arg(long)]
    load_only: bool,
}

fn say(text: &str) {
    eprintln!("loader: takeover: {text}");
}

pub fn run(args: TakeoverArgs) -> Result<(), String> {
    let root = SystemRoot::default();
    let env = Environment::read(&root);
    let blocker = env.blocker();
    match (&blocker, args.dry_run) {
        (Some(reason), false) => return Err(format!("cannot take over this system: {reason}")),
        (Some(reason), true) => say(&format!("the jump would be refused: {reason}")),
        (None, _) => {}
    }
    if let Some(warning) = env.signature_policy() {
        say(&format!("note: {warning}"));
    }

    let keys = args.keys.load()?;
    let policy = args.fetch.policy(!keys.is_empty())?;
    let image_policy = FetchPolicy {
        keys_enforced: false,
        sha256: None,
        ..policy.clone()
    };

    let cmdline = kernel_cmdline(&root, args.append.as_deref());
    let (carried, disk_size) = carry(&args, &keys, &policy)?;
    let (config, warnings) = carried.validate(&cmdline)?;
    for warning in warnings {
        say(&format!("warning: {warning}"));
    }

    let kernel = find_image(args.kernel.as_deref(), "bzImage", "kernel", &image_policy)?.ok_or_else(|| {
        format!("no loader kernel: give --kernel FILE|URL, or put bzImage next to this binary or in {DEFAULT_DIR}")
    })?;
    image::check_bzimage(&kernel)?;
    say(&format!("kernel: {} ({})", kernel.origin, human(kernel.len)));

    let mut initrd = base_initramfs(args.initramfs.as_deref(), &image_policy)?;
    initrd.append(&carried.archive().map_err(|e| e.to_string())?)?;

    let opts = ApplyOptions {
        public_keys: keys,
        vars: config.env.clone(),
        ..ApplyOptions::new(&args.task)
    };
    if let Some(bundle) = &args.bundle {
        carry_bundle(bundle, &policy, &opts, disk_size, &mut initrd)?;
    } else if let Some(url) = &args.fetch_bundle {
        check_head(url, &policy, &opts)?;
    }
    say(&format!(
        "initramfs: {} ({}), with {}",
        initrd.image.origin,
        human(initrd.image.len),
        carried.describe_files().join(", ")
    ));

    let memory = memory_plan(&root.proc, kernel.len, initrd.image.len)?;
    say(&memory.0);
    say(&format!("kernel command line: {cmdline}"));
    for line in carried.config_text().lines().skip(1) {
        say(&format!("  {line}"));
    }
    if args.dry_run {
        return match blocker.or(memory.1) {
            Some(reason) => Err(format!("dry run: the jump would be refused: {reason}")),
            None => {
                say("dry run: everything checked; nothing loaded");
                Ok(())
            }
        };
    }
    if let Some(short) = memory.1 {
        return Err(short);
    }

    sys::kexec_file_load(kernel.file.as_fd(), initrd.image.file.as_fd(), &cmdline).map_err(|e| env.explain(e))?;
    drop((kernel, initrd));
    if args.load_only {
        say("loaded; `systemctl kexec` (a clean shutdown) or `kexec -e` starts the loader, a reboot cancels");
        return Ok(());
    }
    say("loaded; jumping into the loader now (this system stops here)");
    let errno = sys::jump();
    Err(format!("the jump failed: reboot(RB_KEXEC): {errno}"))
}

/// This kernel's `console=` words (so the loader talks where the operator
/// looks), `panic=30` (a crash reboots into this system's disk, which is
/// untouched until the install verified), and `--append`.
fn kernel_cmdline(root: &SystemRoot, append: Option<&str>) -> String {
    let current = std::fs::read_to_string(root.proc.join("cmdline")).unwrap_or_default();
    let mut words: Vec<&str> = current
        .split_whitespace()
        .filter(|w| w.starts_with("console="))
        .collect();
    words.push("panic=30");
    words.extend(append.unwrap_or_default().split_whitespace());
    words.join(" ")
}

/// The loader configuration for after the jump, and the size of the disk
/// it installs on when this system can tell (to refuse a bundle whose
/// layout does not fit before the jump).
fn carry(args: &TakeoverArgs, keys: &[PublicKey], policy: &FetchPolicy) -> Result<(Carried, Option<u64>), String> {
    let mut carried = Carried::default();
    let mut disk_size = None;
    carried.set("loader.task", &args.task);
    match &args.disk {
        Some(selector) => {
            DiskSelector::parse(selector).map_err(|e| format!("--disk: {e}"))?;
            say(&format!("disk: {selector} (--disk)"));
            carried.set("loader.disk", selector);
        }
        None => {
            let pinned = carry::pin_running_disk(&Paths::default())?;
            say(&format!(
                "disk: {} (the disk this system runs from), named {} {}",
                pinned.disk.summary(),
                pinned.selector,
                pinned.how
            ));
            carried.set("loader.disk", pinned.selector.to_string());
            disk_size = Some(pinned.disk.size);
        }
    }
    // A failure after the jump reboots into this system's disk, which the
    // loader leaves untouched until the bundle verified: the server comes
    // back instead of halting at a console nobody watches.
    carried.set("loader.on_error", "reboot");
    if let Some(url) = &args.fetch_bundle {
        carried.set("loader.url", url);
        if let Some(sha) = &policy.sha256 {
            carried.set("loader.sha256", crate::source::to_hex(sha));
        }
        if policy.insecure {
            carried.set("loader.insecure", "1");
        }
    }
    match args.keep_network.as_str() {
        "yes" => {
            let snapshot = snapshot::capture(&SnapshotPaths::default())
                .map_err(|e| format!("reading this system's network (rtnetlink): {e}"))?;
            for line in snapshot.describe() {
                say(&format!("network: {line}"));
            }
            if snapshot.interfaces.is_empty() {
                say("network: nothing to carry; the loader will use DHCP");
            }
            for (_, iface) in &snapshot.interfaces {
                carried.set("loader.iface", iface.to_string());
            }
            let dns: Vec<String> = snapshot.dns.iter().map(ToString::to_string).collect();
            if !dns.is_empty() {
                carried.set("loader.dns", dns.join(","));
            }
        }
        "no" => say("network: not carried (--keep-network=no); the loader will use DHCP"),
        other => return Err(format!("--keep-network={other}: expected yes or no")),
    }
    for pair in &args.env {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--env {pair}: expected NAME=VALUE"))?;
        carried.set(&format!("loader.env.{name}"), value);
    }
    if let Some(url) = &args.metadata {
        carried.set("loader.metadata", url);
    }
    for setting in &args.settings {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("--set {setting}: expected KEY=VALUE"))?;
        carried.set(key.trim(), value);
    }
    carried.keys = keys.iter().map(PublicKey::to_base64).collect();
    carried.ca.clone_from(&policy.ca);
    Ok((carried, disk_size))
}

/// `--kernel`/`--initramfs`, else `NAME` next to this binary, else in
/// [`DEFAULT_DIR`]; `None` when none exists.
fn find_image(given: Option<&str>, name: &str, what: &str, policy: &FetchPolicy) -> Result<Option<Image>, String> {
    if let Some(spec) = given {
        return image::load(spec, what, policy).map(Some);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)));
    for candidate in beside.into_iter().chain([Path::new(DEFAULT_DIR).join(name)]) {
        if candidate.is_file() {
            let path = candidate.display().to_string();
            return image::load(&path, what, policy).map(Some);
        }
    }
    Ok(None)
}

fn base_initramfs(given: Option<&str>, policy: &FetchPolicy) -> Result<Initrd, String> {
    if let Some(found) = find_image(given, "initramfs", "initramfs", policy)? {
        let mut file = found.file;
        std::io::Seek::rewind(&mut file).map_err(|e| e.to_string())?;
        return Initrd::new(&mut file, &found.origin);
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?;
    let built = image::initramfs_from(&exe)?;
    Initrd::new(&mut built.as_slice(), &format!("built from {}", exe.display()))
}

/// `--bundle`: into the initramfs, then read back and verified completely.
fn carry_bundle(
    spec: &str,
    policy: &FetchPolicy,
    opts: &ApplyOptions,
    disk_size: Option<u64>,
    initrd: &mut Initrd,
) -> Result<(), String> {
    let mut fetched = image::open_source(spec, policy)?;
    if let Some(reason) = &fetched.plain_http_reason {
        say(&format!("plain http:// allowed because {reason}"));
    }
    let description = fetched.source.description.clone();
    match fetched.source.length {
        Some(len) => initrd.append_bundle(&mut fetched.source.reader, len)?,
        None => {
            let (mut file, len) = image::spool(&mut fetched.source.reader, "bundle")?;
            initrd.append_bundle(&mut file, len)?;
        }
    }
    let refused = |e: String| format!("the bundle {description} is refused, nothing was loaded: {e}");
    if let Some(check) = &fetched.check {
        check().map_err(refused)?;
    }
    let opened = apply::open_bundle(initrd.bundle_reader()?, opts, &mut Silent).map_err(|e| refused(e.to_string()))?;
    let manifest = &opened.manifest;
    if !manifest.tasks.iter().any(|t| t.name.starts_with(&opts.task)) {
        let names: Vec<&str> = manifest.tasks.iter().map(|t| t.name.as_str()).collect();
        return Err(refused(format!(
            "it has no task `{}` (tasks: {})",
            opts.task,
            names.join(", ")
        )));
    }
    let needed = crate::boot::run::layout_size(manifest);
    if let Some(size) = disk_size.filter(|s| needed > *s) {
        return Err(refused(format!(
            "its layout needs {}, the disk has {}",
            human(needed),
            human(size)
        )));
    }
    let what = format!(
        "{} {}, signature: {}",
        manifest.meta.product.clone().unwrap_or_default(),
        manifest.meta.version.clone().unwrap_or_default(),
        opened.signature
    );
    let bytes = apply::verify_all(opened, &mut Silent).map_err(|e| refused(e.to_string()))?;
    say(&format!(
        "bundle: {description} verified ({what}; {} of resources, {} in the initramfs)",
        human(bytes),
        human(initrd.bundle_len().unwrap_or(0))
    ));
    Ok(())
}

/// `--fetch-bundle`: the signature and the task now; the resources are
/// verified by the loader as they stream.
fn check_head(url: &str, policy: &FetchPolicy, opts: &ApplyOptions) -> Result<(), String> {
    let fetched = image::open_source(url, policy)?;
    let refused = |e: String| format!("the bundle {url} is refused, nothing was loaded: {e}");
    let reader: Box<dyn Read + Send> = fetched.source.reader;
    let opened = apply::open_bundle(reader, opts, &mut Silent).map_err(|e| refused(e.to_string()))?;
    if !opened.manifest.tasks.iter().any(|t| t.name.starts_with(&opts.task)) {
        return Err(refused(format!("it has no task `{}`", opts.task)));
    }
    say(&format!(
        "bundle: {url}: {} {}, signature: {}; the loader streams and verifies it after the jump",
        opened.manifest.meta.product.clone().unwrap_or_default(),
        opened.manifest.meta.version.clone().unwrap_or_default(),
        opened.signature
    ));
    Ok(())
}

/// The memory line to print, and the refusal when memory is short.
///
/// Now: `kexec_file_load` copies the kernel and the initramfs into kernel
/// memory while both are still in memory files here. After the jump: the
/// kernel unpacked (about 4 times the bzImage), the initramfs and its
/// unpacked copy, and the loader's own working memory (buffers and the
/// boot-critical writes it holds back, bounded by 64 MiB).
fn memory_plan(proc: &Path, kernel: u64, initrd: u64) -> Result<(String, Option<String>), String> {
    let now = kernel + initrd + 16 * MIB;
    let after = 4 * kernel + 2 * initrd + 96 * MIB;
    let Some((available, total)) = preflight::memory(proc) else {
        return Ok((
            format!(
                "memory: the jump needs {} free now and {} of RAM after it (no /proc/meminfo to compare)",
                human(now),
                human(after)
            ),
            None,
        ));
    };
    let line = format!(
        "memory: the jump needs {} free now (MemAvailable {}) and {} of RAM after it (MemTotal {}): \
         kernel {}, initramfs {}",
        human(now),
        human(available),
        human(after),
        human(total),
        human(kernel),
        human(initrd)
    );
    let short = if available < now {
        Some(format!(
            "not enough free memory for the jump: {} needed, {} available; stop services or use \
             --fetch-bundle (the bundle then stays out of memory)",
            human(now),
            human(available)
        ))
    } else if total < after {
        Some(format!(
            "this machine has {} of RAM; the loader needs {} after the jump with this initramfs; use \
             --fetch-bundle (the bundle then streams to the disk)",
            human(total),
            human(after)
        ))
    } else {
        None
    };
    Ok((line, short))
}
