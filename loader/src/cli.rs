//! The host command line: `loader apply|inspect|verify|…`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::apply::{self, ApplyOptions, Reporter};
use crate::bundle::signature::PublicKey;
use crate::report::{console, Console, JsonLines};
use crate::source::{self, policy::FetchPolicy, HttpOptions, SourceSpec};

#[derive(Parser)]
#[command(
    name = "loader",
    version,
    about = "Install fwup .fw bundles onto disks and image files"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Diagnostics on stderr: -v debug, -vv trace (RUST_LOG overrides).
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Install a bundle onto a disk or image file.
    Apply {
        /// Bundle path, `-` for stdin, or an https:// URL (streamed, resumed on breaks).
        bundle: String,
        #[command(flatten)]
        fetch: FetchArgs,
        /// Block device or image file to install onto (an image file is created if missing),
        /// or `auto`: the disk this system booted from, updated in place (writes into
        /// mounted partitions and the partition table are refused before the first write).
        #[arg(long, short = 'd')]
        device: String,
        /// Task name prefix: `complete` wipes, `upgrade` switches slots.
        #[arg(long, short = 't', default_value = "complete")]
        task: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// Allow the bundle to run host commands and write host paths.
        #[arg(long = "unsafe")]
        allow_unsafe: bool,
        /// Lift a disk safety rule, as loader.force= does: `mounted` (partitions in use;
        /// writes into them are still refused), `boot-disk`, `removable`, or `all`.
        #[arg(long, value_name = "RULE[,RULE]")]
        force: Vec<String>,
        /// Reboot once the install succeeded (sync, then restart at once).
        #[arg(long)]
        reboot: bool,
        /// Most boot-critical data held in memory until the commit, in bytes.
        #[arg(long, default_value_t = apply::overlay::DEFAULT_HOLD_LIMIT)]
        hold_limit: u64,
        /// `auto`, or force `memory` or `two-pass` (see the README, "Safety").
        #[arg(long, default_value = "auto")]
        install_mode: crate::install_mode::ModeRequest,
        #[arg(long, value_enum, default_value_t = Progress::Auto)]
        progress: Progress,
    },
    /// Replace this running Linux with the loader (kexec) and install a bundle over it:
    /// for clouds without iPXE. Everything is checked before the jump.
    Takeover(crate::takeover::TakeoverArgs),
    /// Show what a bundle contains.
    Inspect {
        /// Bundle path, `-` for stdin, or an https:// URL.
        bundle: String,
        #[command(flatten)]
        fetch: FetchArgs,
        #[arg(long)]
        json: bool,
    },
    /// Run the boot flow (what `/init` does in the initramfs) on this host:
    /// find the bundle, choose the disk, install. For rescue use and tests.
    Boot {
        /// Kernel command line file to read `loader.*` keys from.
        #[arg(long, default_value = "/proc/cmdline")]
        cmdline: PathBuf,
        /// Default configuration file.
        #[arg(long, default_value = crate::boot::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Directory of baked-in public keys (`*.pub`, always enforced).
        #[arg(long, default_value = "/etc/loader/keys")]
        keys_dir: PathBuf,
        /// Directory of baked-in CA certificates (`*.pem`) for HTTPS.
        #[arg(long, default_value = "/etc/loader/ca")]
        ca_dir: PathBuf,
        /// Where to look for an injected bundle.
        #[arg(long, default_value = "/root/install.fw")]
        default_bundle: PathBuf,
        /// sysfs block directory (a fake tree in tests).
        #[arg(long, default_value = "/sys/block")]
        sys_block: PathBuf,
        /// Carry out loader.on_success / on_error (reboot, poweroff) at the end.
        #[arg(long)]
        finish: bool,
    },
    /// List every disk: identity, what it holds, whether it can be the target and why not.
    Disks(crate::toolbox::DisksArgs),
    /// Show the disk, task and writes a bundle would get, writing nothing (like loader.dry_run=1).
    Plan(crate::toolbox::PlanArgs),
    /// Build the install initramfs (this static binary as /init, config, keys, CAs),
    /// or wrap a bundle as /root/install.fw for UEFI iPXE.
    #[cfg(feature = "host-tools")]
    Initramfs(crate::initramfs::cli::InitramfsArgs),
    /// Print the iPXE chain script that boots the loader.
    #[cfg(feature = "host-tools")]
    Ipxe(crate::ipxe_cli::IpxeArgs),
    /// Build a rescue ISO (BIOS and UEFI, CD or USB stick) that boots the loader.
    #[cfg(feature = "host-tools")]
    Iso(crate::iso::cli::IsoArgs),
    /// Check a bundle completely (signature, every resource) without writing anything.
    Verify {
        /// Bundle path, `-` for stdin, or an https:// URL.
        bundle: String,
        #[command(flatten)]
        fetch: FetchArgs,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Make a bundle from an fwup configuration (fwup.conf), without fwup.
    #[cfg(feature = "host-tools")]
    Pack(crate::pack::cli::PackArgs),
    /// Create an Ed25519 signing key pair in fwup's format.
    #[cfg(feature = "host-tools")]
    Keygen(crate::pack::cli::KeygenArgs),
    /// Sign (or re-sign) an existing bundle.
    #[cfg(feature = "host-tools")]
    Sign(crate::pack::cli::SignArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[cfg(feature = "host-tools")]
    Completions(crate::manual::CompletionsArgs),
    /// Write man pages (loader.1 and one per command) into a directory.
    #[cfg(feature = "host-tools")]
    Manpages(crate::manual::ManpagesArgs),
}

#[derive(clap::Args)]
pub(crate) struct FetchArgs {
    /// Extra CA certificate (PEM file) trusted for https:// bundles; repeatable.
    #[arg(long = "ca", value_name = "PEM_FILE")]
    ca: Vec<PathBuf>,
    /// The whole bundle's SHA-256: checked before anything boot-critical is written.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// Allow plain http:// without a public key or --sha256.
    #[arg(long)]
    insecure: bool,
    /// HTTP proxy for every request (https:// through CONNECT); without it,
    /// HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the environment apply.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
}

impl FetchArgs {
    pub(crate) fn policy(&self, keys_enforced: bool) -> Result<FetchPolicy, String> {
        let mut ca = Vec::new();
        for path in &self.ca {
            let pem = std::fs::read(path).map_err(|e| format!("--ca {}: {e}", path.display()))?;
            ca.push((path.display().to_string(), pem));
        }
        let sha256 = match &self.sha256 {
            Some(hex) => Some(crate::source::parse_sha256(hex).map_err(|e| format!("--sha256: {e}"))?),
            None => None,
        };
        Ok(FetchPolicy {
            keys_enforced,
            sha256,
            insecure: self.insecure,
            ca,
        })
    }

    fn http(&self, progress: Progress) -> HttpOptions {
        HttpOptions {
            on_event: transfer_events(progress),
            proxy: match &self.proxy {
                Some(url) => source::ProxySetting::Url(url.clone()),
                None => source::ProxySetting::Environment,
            },
            ..HttpOptions::default()
        }
    }

    /// Opens a path, `-` or URL under this policy (what `apply` reads).
    fn open(&self, bundle: &str, keys_enforced: bool, progress: Progress) -> Result<source::policy::Fetched, String> {
        let policy = self.policy(keys_enforced)?;
        source::policy::fetch(&SourceSpec::parse(bundle), &policy, self.http(progress)).map_err(|e| e.to_string())
    }
}

#[derive(clap::Args)]
pub(crate) struct KeyArgs {
    /// Public key (fwup `.pub` file or base64); repeatable. With any key, unsigned or
    /// badly signed bundles are refused.
    #[arg(long = "public-key", short = 'p', value_name = "FILE_OR_BASE64")]
    public_keys: Vec<String>,
}

impl KeyArgs {
    pub(crate) fn load(&self) -> Result<Vec<PublicKey>, String> {
        self.public_keys
            .iter()
            .map(|k| PublicKey::from_file_or_base64(k).map_err(|e| format!("public key `{k}`: {e}")))
            .collect()
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Progress {
    Auto,
    Bar,
    Plain,
    Json,
    None,
}

fn reporter(progress: Progress) -> Box<dyn Reporter> {
    match progress {
        Progress::Auto => Box::new(Console::stderr(console::Style::detect())),
        Progress::Bar => Box::new(Console::stderr(console::Style::Bar)),
        Progress::Plain => Box::new(Console::stderr(console::Style::Plain)),
        Progress::Json => Box::new(JsonLines::new(Box::new(std::io::stdout()))),
        Progress::None => Box::new(apply::events::Silent),
    }
}

/// Retries and resumes of a download, shown the way progress is.
fn transfer_events(progress: Progress) -> Option<source::EventSink> {
    match progress {
        Progress::None => None,
        Progress::Json => Some(std::sync::Arc::new(|e: &source::TransferEvent| {
            println!("{}", crate::report::json::download_line(e));
        })),
        _ => Some(std::sync::Arc::new(|e: &source::TransferEvent| {
            eprintln!("loader: download: {e}")
        })),
    }
}

/// Variables for `${VAR}`: the process environment, like fwup.
fn process_vars() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

pub fn main(cli: Cli) -> ExitCode {
    crate::diag::init_host(cli.verbose);
    if let Command::Plan(args) = cli.command {
        return crate::toolbox::plan::run(args);
    }
    if let Command::Boot {
        cmdline,
        config,
        keys_dir,
        ca_dir,
        default_bundle,
        sys_block,
        finish,
    } = cli.command
    {
        let mut paths = crate::boot::run::BootPaths::system();
        paths.cmdline = cmdline;
        paths.config = config;
        paths.keys_dir = keys_dir;
        paths.ca_dir = ca_dir;
        paths.default_bundle = default_bundle;
        paths.sys_block = sys_block;
        paths.manage_network = false;
        let mode = crate::boot::main_loop::BootMode {
            pid1: false,
            power_actions: finish,
        };
        return crate::boot::main_loop::boot_main(mode, &paths);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loader: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Boot { .. } | Command::Plan(_) => Err("internal: dispatched before".into()),
        Command::Disks(args) => crate::toolbox::disks::run(args),
        Command::Apply {
            bundle,
            fetch,
            device,
            task,
            keys,
            allow_unsafe,
            force,
            reboot,
            hold_limit,
            install_mode,
            progress,
        } => {
            let mut opts = ApplyOptions::new(&task);
            opts.public_keys = keys.load()?;
            opts.allow_unsafe = allow_unsafe;
            opts.vars = process_vars();
            opts.hold_limit = hold_limit;
            let mut reporter = reporter(progress);
            let policy = fetch.policy(!opts.public_keys.is_empty())?;
            let spec = SourceSpec::parse(&bundle);
            let started = std::time::Instant::now();
            let http = fetch.http(progress);
            let fetch = || source::policy::fetch(&spec, &policy, http.clone()).map_err(|e| e.to_string());
            let fetched = fetch()?;
            if let Some(reason) = &fetched.plain_http_reason {
                reporter.event(&apply::Event::Warning {
                    message: format!("plain http:// allowed because {reason}"),
                });
            }
            let mut target = crate::hostdisk::ApplyTarget::open(&device, &force.join(","))?;
            opts.check_writes = target.write_check();
            let settings = crate::install_mode::Settings {
                request: install_mode,
                budget: crate::install_mode::Budget::system(hold_limit),
                pin_only: policy.sha256.is_some() && opts.public_keys.is_empty(),
                origin: match spec {
                    SourceSpec::Stdin => crate::install_mode::Origin::STDIN,
                    SourceSpec::File(_) => crate::install_mode::Origin::file(false),
                    SourceSpec::Url(_) => crate::install_mode::Origin::NETWORK,
                },
            };
            let mut reopen = || {
                fetch()
                    .map(Into::into)
                    .map_err(|message| apply::ApplyError::Download { message, restart: None })
            };
            let first = fetched.into();
            let mut summary =
                crate::install_mode::install(first, &mut reopen, target.target(), &settings, &opts, reporter.as_mut())
                    .map_err(|e| e.to_string())?;
            summary.elapsed = started.elapsed();
            for note in target.finish() {
                reporter.event(&apply::Event::Info { message: note });
            }
            drop(reporter);
            if matches!(progress, Progress::Json) {
                println!("{}", crate::report::json::finished_line(&summary));
            } else if !matches!(progress, Progress::None) {
                eprintln!(
                    "installed {} {} (task {}) onto {} in {:.2} s{}",
                    summary.product,
                    summary.version,
                    summary.task,
                    device,
                    summary.elapsed.as_secs_f64(),
                    console::describe_restarts(&summary)
                );
            }
            if reboot {
                let never =
                    crate::boot::pid1::finish(crate::boot::config::OnSuccess::Reboot).map_err(|e| e.to_string())?;
                match never {}
            }
            Ok(())
        }
        Command::Takeover(args) => crate::takeover::run(args),
        Command::Inspect { bundle, fetch, json } => {
            let fetched = fetch.open(&bundle, false, Progress::Plain)?;
            match fetched.check {
                // Nothing is shown before the whole bundle matched its pin.
                Some(check) => {
                    let mut whole = Vec::new();
                    let mut reader = fetched.source.reader;
                    reader.read_to_end(&mut whole).map_err(|e| e.to_string())?;
                    check()?;
                    crate::inspect::run(std::io::Cursor::new(whole), json)
                }
                None => crate::inspect::run(fetched.source.reader, json),
            }
        }
        Command::Verify { bundle, fetch, keys } => {
            let mut opts = ApplyOptions::new("");
            opts.public_keys = keys.load()?;
            opts.vars = process_vars();
            let mut reporter = reporter(Progress::Auto);
            let fetched = fetch.open(&bundle, !opts.public_keys.is_empty(), Progress::Plain)?;
            let opened =
                apply::open_bundle(fetched.source.reader, &opts, reporter.as_mut()).map_err(|e| e.to_string())?;
            let signature = opened.signature.clone();
            let bytes = apply::verify_all(opened, reporter.as_mut()).map_err(|e| e.to_string())?;
            if let Some(check) = fetched.check {
                check()?;
            }
            drop(reporter);
            println!(
                "{bundle}: OK ({} of resources verified; signature: {signature})",
                console::human(bytes)
            );
            Ok(())
        }
        #[cfg(feature = "host-tools")]
        Command::Pack(args) => crate::pack::cli::pack(args),
        #[cfg(feature = "host-tools")]
        Command::Initramfs(args) => crate::initramfs::cli::run(args),
        #[cfg(feature = "host-tools")]
        Command::Ipxe(args) => crate::ipxe_cli::run(args),
        #[cfg(feature = "host-tools")]
        Command::Iso(args) => crate::iso::cli::run(args),
        #[cfg(feature = "host-tools")]
        Command::Keygen(args) => crate::pack::cli::keygen(args),
        #[cfg(feature = "host-tools")]
        Command::Sign(args) => crate::pack::cli::sign(args),
        #[cfg(feature = "host-tools")]
        Command::Completions(args) => crate::manual::completions(args),
        #[cfg(feature = "host-tools")]
        Command::Manpages(args) => crate::manual::manpages(args),
    }
}
