//! `slot-init`: `/sbin/init` of the example A/B installed system.
//!
//! It shows, in the smallest honest way, what a real system installed by the
//! loader has to show: which slot booted, which version it runs, that the
//! application data survived an upgrade, and that it is reachable over the
//! network. Steps, in order:
//!
//! 1. mount `/proc`, `/sys`, `/dev` ([`early_mounts`]);
//! 2. open every active console ([`console`]);
//! 3. read the slot from `slot=` on the command line and the root partition,
//!    the version from `/etc/os-release` ([`identity`], [`disk`]);
//! 4. mount the data partition (partition 4 of the root disk) on `/data`,
//!    look for `/data/marker`, count this boot ([`data`]);
//! 5. listen on TCP port 80, print the marker line, serve the status page
//!    forever ([`http`], [`status`]), and `POST /update`, which runs the
//!    loader to update this system in place ([`update`]).
//!
//! Networking is the kernel's (`ip=dhcp`). As PID 1 it never exits: an exit
//! would panic the kernel. Failures are printed and the rest goes on.

mod console;
mod data;
mod disk;
mod early_mounts;
mod http;
mod identity;
mod network;
mod status;
mod update;

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use console::Consoles;
use identity::DATA_PARTITION;
use status::{DataStatus, SystemStatus, LINE_PREFIX};

const SYSFS: &str = "/sys";
const DEV: &str = "/dev";
const DATA_DIR: &str = "/data";
const HTTP_ADDRESS: &str = "0.0.0.0:80";

fn main() {
    if std::process::id() != 1 {
        // On a host it would mount and write partition 4 of the root disk.
        eprintln!("slot-init is /sbin/init of the example system and runs only as PID 1");
        std::process::exit(2);
    }
    // A panic has already been printed by the hook; PID 1 must not return.
    let _ = std::panic::catch_unwind(run);
    halt();
}

fn run() {
    let mount_errors = early_mounts::mount_all();
    let consoles = Consoles::open(Path::new(SYSFS), Path::new(DEV));
    std::panic::set_hook(Box::new(|info| {
        Consoles::open(Path::new(SYSFS), Path::new(DEV)).line(&format!("{LINE_PREFIX} crashed: {info}"));
    }));
    for error in &mount_errors {
        consoles.line(&format!("{LINE_PREFIX} {error}"));
    }

    let status = gather_status(&consoles);
    for line in status.detail_lines() {
        consoles.line(&line);
    }
    let listener = listen(&consoles);
    consoles.line(&status.up_line());
    let files = update::UpdateFiles::at(Path::new(DATA_DIR));
    http::serve(
        listener,
        || status.to_json(data::marker_present(Path::new(DATA_DIR))),
        |head, body| {
            let say =
                |line: String| Consoles::open(Path::new(SYSFS), Path::new(DEV)).line(&format!("{LINE_PREFIX} {line}"));
            let answer = update::handle(head, body, &files, say);
            (answer.status, answer.message)
        },
    );
}

/// Steps 3 and 4: who we are and what the data partition holds.
fn gather_status(consoles: &Consoles) -> SystemStatus {
    let say = |text: String| consoles.line(&format!("{LINE_PREFIX} {text}"));
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let version = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| identity::os_release_version(&text))
        .unwrap_or_else(|| {
            say("no VERSION_ID or VERSION in /etc/os-release".to_string());
            "unknown".to_string()
        });

    let root = match std::fs::metadata("/") {
        Ok(meta) => {
            let (major, minor) = (nix::sys::stat::major(meta.dev()), nix::sys::stat::minor(meta.dev()));
            disk::partition_by_devnum(Path::new(SYSFS), major, minor).unwrap_or_else(|error| {
                say(format!("cannot tell the root partition: {error}"));
                None
            })
        }
        Err(error) => {
            say(format!("cannot stat /: {error}"));
            None
        }
    };
    let finding = identity::booted_slot(&cmdline, root.as_ref().map(|partition| partition.number));
    if finding.cmdline_disagrees {
        say(
            "warning: slot= on the kernel command line does not match the root partition; trusting the partition"
                .into(),
        );
    }

    let data = match root.as_ref().map(|root| disk::sibling_partition(root, DATA_PARTITION)) {
        Some(Ok(partition)) => prepare_data(&partition.dev_path(), consoles),
        Some(Err(error)) => {
            say(format!("no data partition: {error}"));
            DataStatus::default()
        }
        None => DataStatus::default(),
    };

    SystemStatus {
        slot: finding.slot,
        version,
        root: root.map(|partition| partition.dev_path().display().to_string()),
        data,
        addresses: network::reachable_addresses(),
    }
}

fn prepare_data(device: &Path, consoles: &Consoles) -> DataStatus {
    let mut status = DataStatus {
        device: Some(device.display().to_string()),
        ..DataStatus::default()
    };
    let data_dir = Path::new(DATA_DIR);
    if let Err(error) = data::mount_data(device, data_dir) {
        consoles.line(&format!("{LINE_PREFIX} {error}"));
        return status;
    }
    status.mounted = true;
    status.marker = data::marker_present(data_dir);
    match data::bump_boot_count(data_dir) {
        Ok(count) => status.boot_count = Some(count),
        Err(error) => consoles.line(&format!("{LINE_PREFIX} {error}")),
    }
    status
}

/// Binds the HTTP port, retrying until it works: without it the system is
/// not "up", and giving up would mean exiting PID 1.
fn listen(consoles: &Consoles) -> TcpListener {
    loop {
        match TcpListener::bind(HTTP_ADDRESS) {
            Ok(listener) => return listener,
            Err(error) => {
                consoles.line(&format!(
                    "{LINE_PREFIX} listening on {HTTP_ADDRESS}: {error}; retrying in 5 s"
                ));
                std::thread::sleep(Duration::from_secs(5));
            }
        }
    }
}

/// Sleeps forever: what PID 1 does when it has nothing left to do.
fn halt() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
