//! PID 1 duties other than the mount plan (see [`super::early`]): the
//! console, logging to the console and the kernel log, `/etc/hosts` and
//! `/etc/resolv.conf`, a panic hook that reports, re-executing `/init` for
//! a clean retry, and the final sync + reboot / power-off / halt.
//!
//! A panic or an exit in PID 1 is a kernel panic ("Attempted to kill
//! init"), which hides the reason behind a wall of kernel text. So the
//! hook prints the message first and lets the panic unwind (`panic =
//! "unwind"` in the release profile): a worker thread's panic becomes its
//! install's error, and the main loop catches the rest and follows
//! `loader.on_error` (see [`super::main_loop`]). PID 1 never returns from
//! `main`: it ends in [`finish`], [`reexec`] or a halt.

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::sys::reboot::RebootMode;

use super::config::OnSuccess;

/// Whether this process is the init process.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Opens `DEV/console` for reading and writing, without making it our
/// controlling terminal.
pub fn open_console(dev: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(dev.join("console"))
}

/// Points stdin, stdout and stderr at the console. The kernel does this
/// itself only when the initramfs contains `/dev/console`; after devtmpfs
/// is mounted it always exists.
pub fn attach_stdio(console: &File) -> nix::Result<()> {
    nix::unistd::dup2_stdin(console)?;
    nix::unistd::dup2_stdout(console)?;
    nix::unistd::dup2_stderr(console)
}

/// Kernel log levels for `/dev/kmsg` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

/// The longest record `/dev/kmsg` accepts is 1024 bytes; lines are cut
/// below that (at a character boundary) so none is rejected.
const KMSG_LINE_MAX: usize = 960;

/// Writes `loader: …` lines to the console and `<N>loader: …` records to
/// `/dev/kmsg`, so the message is on screen and in the kernel log (which
/// survives on a serial console and in `dmesg`).
///
/// The kernel rate-limits user writes to `/dev/kmsg` (10 lines per 5 s
/// unless `printk.devkmsg=on`), so stage messages belong here; progress
/// lines do not.
pub struct BootLog {
    console: Mutex<Option<Box<dyn Write + Send>>>,
    kmsg: Mutex<Option<Box<dyn Write + Send>>>,
}

impl BootLog {
    /// A log over any two writers; either may be absent.
    pub fn new(console: Option<Box<dyn Write + Send>>, kmsg: Option<Box<dyn Write + Send>>) -> BootLog {
        BootLog {
            console: Mutex::new(console),
            kmsg: Mutex::new(kmsg),
        }
    }

    /// Opens `DEV/console` and `DEV/kmsg`; whichever cannot be opened is
    /// left out (and stderr is used instead of a missing console).
    pub fn open(dev: &Path) -> BootLog {
        let console: Box<dyn Write + Send> = match open_console(dev) {
            Ok(file) => Box::new(file),
            Err(_) => Box::new(io::stderr()),
        };
        let kmsg = OpenOptions::new().write(true).open(dev.join("kmsg")).ok();
        BootLog::new(Some(console), kmsg.map(|f| Box::new(f) as Box<dyn Write + Send>))
    }

    /// Logs a message; write errors are ignored (there is nowhere left to
    /// report them).
    pub fn log(&self, level: Level, message: &str) {
        if let Ok(mut console) = self.console.lock() {
            if let Some(console) = console.as_mut() {
                let text: String = message.lines().map(|l| format!("loader: {l}\n")).collect();
                let _ = console.write_all(text.as_bytes()).and_then(|()| console.flush());
            }
        }
        if let Ok(mut kmsg) = self.kmsg.lock() {
            if let Some(kmsg) = kmsg.as_mut() {
                for line in message.lines() {
                    let record = format!("<{}>loader: {}\n", level as u8, cut(line, KMSG_LINE_MAX));
                    // One write per record: that is how /dev/kmsg delimits them.
                    let _ = kmsg.write(record.as_bytes());
                }
            }
        }
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warning, message);
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }
}

fn cut(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// What the panic hook calls after printing: the failure policy (wait and
/// retry, reboot, or halt). If it returns, the panic unwinds on to the
/// caller's `catch_unwind`.
pub type FailurePolicy = Arc<dyn Fn(&str) + Send + Sync>;

/// Replaces the default panic output with a report on `log` (console and
/// kernel log), then calls `on_failure` with the message.
pub fn install_panic_hook(log: Arc<BootLog>, on_failure: FailurePolicy) {
    std::panic::set_hook(Box::new(move |info| {
        let message = panic_message(info);
        log.error(&message);
        on_failure(&message);
    }));
}

/// "internal error at src/x.rs:12: message", for the console.
pub fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let text = crate::apply::error::panic_text(info.payload());
    match info.location() {
        Some(at) => format!("internal error at {}:{}: {text}", at.file(), at.line()),
        None => format!("internal error: {text}"),
    }
}

/// Carries the count of failed attempts across [`reexec`].
pub const FAILED_ATTEMPTS_ENV: &str = "LOADER_FAILED_ATTEMPTS";

/// Failed attempts before this process image (0 on the first start).
pub fn failed_attempts_before() -> u32 {
    std::env::var(FAILED_ATTEMPTS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Replaces this process with a fresh start of the same binary, same
/// arguments, with `failed_attempts` in the environment: after a panic,
/// the retry starts from a clean state (no threads, locks or half-built
/// values of the failed attempt) and stays PID 1. Returns only on failure.
pub fn reexec(failed_attempts: u32) -> io::Error {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(FAILED_ATTEMPTS_ENV, failed_attempts.to_string())
        .exec()
}

/// The end-of-run power action, behind a seam so tests can check the order.
pub trait PowerControl {
    /// Flush every filesystem and block device (`sync(2)`).
    fn sync(&mut self);
    fn reboot(&mut self, mode: RebootMode) -> nix::Result<Infallible>;
}

/// The kernel's `sync` and `reboot(2)`.
pub struct KernelPower;

impl PowerControl for KernelPower {
    fn sync(&mut self) {
        nix::unistd::sync();
    }
    fn reboot(&mut self, mode: RebootMode) -> nix::Result<Infallible> {
        nix::sys::reboot::reboot(mode)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{action} failed: {errno} (only PID 1 or a process with CAP_SYS_BOOT can {action})")]
pub struct FinishError {
    pub action: &'static str,
    pub errno: nix::errno::Errno,
}

/// Syncs, then reboots, powers off or halts. Returns only on failure.
pub fn finish(action: OnSuccess) -> Result<Infallible, FinishError> {
    finish_with(action, &mut KernelPower)
}

/// [`finish`] through a given [`PowerControl`].
pub fn finish_with(action: OnSuccess, power: &mut dyn PowerControl) -> Result<Infallible, FinishError> {
    let (mode, name) = match action {
        OnSuccess::Reboot => (RebootMode::RB_AUTOBOOT, "reboot"),
        OnSuccess::Poweroff => (RebootMode::RB_POWER_OFF, "power off"),
        OnSuccess::Halt => (RebootMode::RB_HALT_SYSTEM, "halt"),
    };
    power.sync();
    power.reboot(mode).map_err(|errno| FinishError { action: name, errno })
}

/// `/etc/hosts` for a machine named `hostname` (or only localhost).
pub fn hosts_text(hostname: Option<&str>) -> String {
    let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(name) = hostname.filter(|n| !n.is_empty()) {
        text.push_str(&format!("127.0.1.1\t{name}\n"));
    }
    text
}

/// Writes `ROOT/etc/hosts`: musl resolves even `localhost` only through it.
pub fn write_hosts(root: &Path, hostname: Option<&str>) -> io::Result<()> {
    write_atomically(&root.join("etc/hosts"), &hosts_text(hostname))
}

/// Writes `ROOT/etc/resolv.conf` with the caller's content (the network
/// setup knows the name servers).
pub fn write_resolv_conf(root: &Path, content: &str) -> io::Result<()> {
    write_atomically(&root.join("etc/resolv.conf"), content)
}

/// Replaces a file through a temporary name, so a reader never sees half.
fn write_atomically(path: &Path, content: &str) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[path = "pid1_tests.rs"]
mod tests;
