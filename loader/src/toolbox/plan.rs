//! `loader plan`: the boot flow's decisions without its writes. Which disk
//! and task the loader would choose, which keys and policies apply, and
//! every action with the bytes it would write; exits 0 having written
//! nothing. The same as booting with `loader.dry_run=1`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::boot::cmdline;
use crate::boot::config::{Config, ConfigFile};
use crate::boot::run::BootPaths;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Bundle path or https:// URL.
    bundle: String,
    /// `loader.disk=` (a path, serial:, wwn:, model:, size:>=…, largest, smallest).
    #[arg(long)]
    disk: Option<String>,
    /// `loader.task=` (auto, repair or a task prefix).
    #[arg(long)]
    task: Option<String>,
    /// Any other boot option, as on the kernel command line without the
    /// `loader.` prefix (`allow_downgrade=1`, `env.SERIAL=42`); repeatable.
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// A configuration file to read first, like the initramfs's /etc/loader.conf.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of public keys (`*.pub`) enforced as if baked in.
    #[arg(long, default_value = "/etc/loader/keys")]
    keys_dir: PathBuf,
    /// sysfs block directory (a fake tree in tests).
    #[arg(long, default_value = "/sys/block")]
    sys_block: PathBuf,
}

pub fn run(args: PlanArgs) -> ExitCode {
    let mut words = vec![
        if args.bundle.starts_with("http://") || args.bundle.starts_with("https://") {
            format!("loader.url={}", args.bundle)
        } else {
            format!("loader.bundle={}", absolute(&args.bundle))
        },
    ];
    words.extend(args.disk.map(|d| format!("loader.disk={d}")));
    words.extend(args.task.map(|t| format!("loader.task={t}")));
    words.extend(
        args.options
            .iter()
            .map(|o| format!("loader.{}", o.trim_start_matches("loader."))),
    );
    // Last, so nothing above can turn it off; a refusal ends the run.
    words.extend(["loader.dry_run=1".to_string(), "loader.on_error=halt".to_string()]);
    let line = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");

    let file_text = match &args.config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path.display().to_string(), text)),
            Err(e) => {
                eprintln!("loader: reading {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let file = file_text.as_ref().map(|(path, text)| ConfigFile { path, text });
    let loaded = match Config::from_sources(file, &cmdline::parse(&line)) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("loader: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut paths = BootPaths::system();
    paths.keys_dir = args.keys_dir;
    paths.sys_block = args.sys_block;
    paths.manage_network = false;
    crate::boot::main_loop::run_host_with(&paths, loaded)
}

fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

/// Double quotes around a word with spaces, as the kernel reads them.
fn quote(word: &str) -> String {
    match word.split_once('=') {
        Some((key, value)) if value.contains(' ') => format!("{key}=\"{value}\""),
        _ => word.to_string(),
    }
}
