//! The top of the boot flow: PID 1 duties, then attempts until one succeeds
//! or the failure policy says stop. As PID 1 this never returns: a PID 1
//! that exits is a kernel panic, so "halt" means waiting with the message
//! on screen.
//!
//! A panic follows `loader.on_error` like any failure: it is reported as a
//! failed attempt of class `internal`, and a retry after it re-executes
//! `/init` (as PID 1), so nothing of the failed attempt — threads, locks,
//! half-built state — carries into the next one.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Config, ConsoleMode, OnError, OnSuccess};
use super::early::{self, RunMode};
use super::pid1::{self, BootLog};
use super::reaper::{self, ChildRegistry};
use super::run::{self, BootPaths, BootReporter};

/// How `loader boot` was started.
pub struct BootMode {
    /// Really PID 1: mount, own the console, reboot at the end.
    pub pid1: bool,
    /// Carry out `loader.on_success`/`on_error` power actions (always as
    /// PID 1; `loader boot --finish` on a host).
    pub power_actions: bool,
}

pub fn boot_main(mode: BootMode, paths: &BootPaths) -> ExitCode {
    let log = Arc::new(if mode.pid1 {
        early_boot()
    } else {
        BootLog::new(Some(Box::new(std::io::stdout())), None)
    });
    if mode.pid1 {
        // The hook reports; the panic then unwinds: a worker thread's panic
        // becomes its install's error, the main thread's is caught below
        // or in `attempts`, and `loader.on_error` decides what follows.
        pid1::install_panic_hook(log.clone(), Arc::new(|_: &str| {}));
    }
    let first_failed = if mode.pid1 { pid1::failed_attempts_before() } else { 0 };
    let restart = |failed: u32| restart_clean(&log, failed);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        attempts(&mode, paths, &log, first_failed, &restart)
    }));
    match outcome {
        Ok(code) => code,
        Err(_) if mode.pid1 => {
            // Outside an install attempt (the configuration, the console):
            // the policy still applies if the configuration reads.
            let follow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let config = Config::load(&paths.config, &paths.cmdline).ok()?.config;
                let failed = first_failed + 1;
                log.error("result: failed class=internal stage=boot flow: internal error (see the message above)");
                Some(after_failure(&mode, &log, &config, failed, true, &restart).unwrap_or_else(|| restart(failed)))
            }));
            match follow {
                Ok(Some(code)) => code,
                _ => halt_forever(&log, "the loader crashed; see the message above"),
            }
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// PID 1 set-up: mounts and directories, the console, the child reaper
/// (when there are children to reap).
fn early_boot() -> BootLog {
    let reports = early::run_plan(Path::new("/"), &early::early_plan(), RunMode::Apply);
    if let Ok(console) = pid1::open_console(Path::new("/dev/console")) {
        let _ = pid1::attach_stdio(&console);
    }
    let log = BootLog::open(Path::new("/dev/console"));
    for report in &reports {
        if matches!(report.outcome, early::Outcome::Failed(_)) {
            log.warn(&report.to_string());
        }
    }
    // Reap orphans (PID 1 inherits every child) without stealing the exit
    // status of children the loader waits for itself; none can exist unless
    // PID 1 has children already (see `reaper`).
    if let Err(e) = reaper::start_if_needed("/proc".into(), ChildRegistry::default()) {
        log.warn(&format!("cannot start the child reaper: {e}"));
    }
    log
}

/// Attempts until one succeeds or the failure policy says stop.
/// `first_failed` counts the attempts that failed before a [`pid1::reexec`];
/// `restart` is that re-exec (a retry after a panic starts from scratch).
fn attempts(
    mode: &BootMode,
    paths: &BootPaths,
    log: &Arc<BootLog>,
    first_failed: u32,
    restart: &dyn Fn(u32) -> ExitCode,
) -> ExitCode {
    let loaded = match Config::load(&paths.config, &paths.cmdline) {
        Ok(l) => l,
        Err(e) => {
            return give_up(
                mode,
                log,
                &format!("result: failed class=config stage=configuration: {e}"),
            )
        }
    };
    attempts_with(mode, paths, log, loaded, first_failed, restart)
}

/// The boot flow on a host with a configuration the caller built
/// (`loader plan`): no PID 1 duties, no power actions.
pub fn run_host_with(paths: &BootPaths, loaded: super::config::Loaded) -> ExitCode {
    let mode = BootMode {
        pid1: false,
        power_actions: false,
    };
    let log = Arc::new(BootLog::new(Some(Box::new(std::io::stdout())), None));
    // Not PID 1: a panic is never retried by re-executing.
    attempts_with(&mode, paths, &log, loaded, 0, &|_| ExitCode::FAILURE)
}

fn attempts_with(
    mode: &BootMode,
    paths: &BootPaths,
    log: &Arc<BootLog>,
    loaded: super::config::Loaded,
    first_failed: u32,
    restart: &dyn Fn(u32) -> ExitCode,
) -> ExitCode {
    for warning in &loaded.warnings {
        log.warn(&warning.to_string());
    }
    let config = loaded.config;
    crate::diag::init_boot(log.clone(), config.log);
    log.info(&format!(
        "loader {} starting (task={}, on_success={:?}, on_error={:?})",
        env!("CARGO_PKG_VERSION"),
        run::describe_task(&config.task),
        config.on_success,
        config.on_error
    ));
    let mut failed = first_failed;
    loop {
        let callback = config.report.clone().map(|url| {
            let mut cb = crate::report::callback::Callback::start(
                url,
                super::fetch::callback_options(&config, paths),
                Path::new("/sys"),
            );
            cb.send("start", start_report(failed + 1));
            cb
        });
        let _attempt = tracing::info_span!("attempt", number = failed + 1).entered();
        let mut out = BootReporter::new(console_mode(&config), callback);
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            tests::maybe_panic();
            run::attempt(&config, paths, stays_up(mode, &config), &mut out)
        }));
        let (result, panicked) = match attempt {
            Ok(result) => (result, false),
            Err(payload) => (Err(panicked_attempt(&*payload)), true),
        };
        out.finish(result_report(&result));
        match result {
            Ok(done) => {
                let s = &done.summary;
                match done.outcome {
                    run::Outcome::Installed => log.info(&format!(
                        "result: installed {} {} task={} disk={}",
                        s.product, s.version, s.task, done.disk
                    )),
                    run::Outcome::AlreadyActive => log.info(&format!(
                        "result: unchanged {} {} disk={}: this bundle is already the active install; nothing written",
                        s.product, s.version, done.disk
                    )),
                    run::Outcome::DryRun => {
                        log.info(&format!(
                            "result: dry run {} {} task={} disk={}: nothing written",
                            s.product, s.version, s.task, done.disk
                        ));
                        // Rebooting would run the same plan again (PXE, an
                        // attached ISO): the plan stays on screen instead.
                        if mode.pid1 {
                            wait_forever(
                                log,
                                "dry run finished: nothing was written; power off or reboot when done",
                            );
                        }
                        return ExitCode::SUCCESS;
                    }
                }
                return finish(mode, log, config.on_success);
            }
            Err(failure) => {
                failed += 1;
                log.error(&format!(
                    "result: failed class={} stage={}: {failure}",
                    failure.class, failure.stage
                ));
                if let Some(code) = after_failure(mode, log, &config, failed, panicked, restart) {
                    return code;
                }
            }
        }
    }
}

/// After the `failed`-th failed attempt: `None` to try again in this
/// process, else how the boot flow ends — a re-exec for a retry after a
/// panic as PID 1 (nothing of the failed attempt survives it), a reboot,
/// or giving up.
fn after_failure(
    mode: &BootMode,
    log: &BootLog,
    config: &Config,
    failed: u32,
    panicked: bool,
    restart: &dyn Fn(u32) -> ExitCode,
) -> Option<ExitCode> {
    match run::retry_delay(config, failed) {
        Some(delay) => {
            log.info(&format!(
                "retrying in {} s (attempt {} of {})",
                delay.as_secs(),
                failed + 1,
                config.on_error_retries + 1
            ));
            std::thread::sleep(delay);
            (panicked && mode.pid1).then(|| restart(failed))
        }
        None if config.on_error == OnError::Reboot && mode.power_actions => Some(finish(mode, log, OnSuccess::Reboot)),
        None => Some(give_up(
            mode,
            log,
            "giving up: the disk was not made bootable by this attempt",
        )),
    }
}

/// A panic inside an attempt, as the attempt's failure (the hook has shown
/// where it happened).
fn panicked_attempt(payload: &(dyn std::any::Any + Send)) -> run::Failure {
    run::Failure {
        stage: "install",
        class: "internal".into(),
        message: format!("internal error: {}", crate::apply::error::panic_text(payload)),
        hint: "a bug in the loader; please report this message",
    }
}

/// Starts `/init` afresh for the next attempt.
fn restart_clean(log: &BootLog, failed: u32) -> ExitCode {
    log.info("starting /init afresh for a clean retry");
    let error = pid1::reexec(failed);
    halt_forever(log, &format!("re-executing /init failed: {error}"))
}

fn console_mode(config: &Config) -> ConsoleMode {
    // A redrawn bar suits a VGA console; a serial line gets plain lines at
    // most once a second (logs and slow consoles).
    match config.console {
        ConsoleMode::Auto => {
            let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
            auto_console(&active)
        }
        other => other,
    }
}

/// `/dev/console` is the last console the kernel lists as active.
fn auto_console(active: &str) -> ConsoleMode {
    match active.split_whitespace().last() {
        Some(tty) if tty.starts_with("tty") && tty[3..].chars().all(|c| c.is_ascii_digit()) => ConsoleMode::Bar,
        _ => ConsoleMode::Plain,
    }
}

/// Whether the machine stays up after a successful install.
fn stays_up(mode: &BootMode, config: &Config) -> bool {
    !mode.power_actions || config.on_success == OnSuccess::Halt
}

fn finish(mode: &BootMode, log: &BootLog, action: OnSuccess) -> ExitCode {
    if !mode.power_actions {
        log.info(&format!("done; would now {action:?} (power actions are off)"));
        return ExitCode::SUCCESS;
    }
    log.info(&format!("syncing and {action:?}"));
    match pid1::finish(action) {
        Ok(never) => match never {},
        Err(e) => give_up(mode, log, &format!("{action:?} failed: {e}")),
    }
}

fn give_up(mode: &BootMode, log: &BootLog, message: &str) -> ExitCode {
    if mode.pid1 {
        halt_forever(log, message)
    } else {
        log.error(message);
        ExitCode::FAILURE
    }
}

/// The end of the line for PID 1: the message stays on screen.
fn halt_forever(log: &BootLog, message: &str) -> ! {
    log.error(message);
    log.error("halted: fix the cause and boot the loader again");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// PID 1 after a dry run: nothing went wrong, nothing to do.
fn wait_forever(log: &BootLog, message: &str) -> ! {
    log.info(message);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The status callback's `start` report (`docs/status-callback.md`).
pub(crate) fn start_report(attempt: u32) -> serde_json::Value {
    serde_json::json!({ "attempt": attempt, "version": env!("CARGO_PKG_VERSION") })
}

/// The status callback's `result` report (`docs/status-callback.md`).
pub(crate) fn result_report(result: &Result<run::Installed, run::Failure>) -> serde_json::Value {
    match result {
        Ok(i) => serde_json::json!({
            "result": result_word(i.outcome), "summary": i.summary, "disk": i.disk,
        }),
        Err(f) => serde_json::json!({
            "result": "failed", "class": f.class, "stage": f.stage, "message": f.to_string(),
        }),
    }
}

/// The status callback's `result` for a successful attempt.
fn result_word(outcome: run::Outcome) -> &'static str {
    match outcome {
        run::Outcome::Installed => "installed",
        run::Outcome::AlreadyActive => "unchanged",
        run::Outcome::DryRun => "dry-run",
    }
}

#[cfg(test)]
#[path = "main_loop_tests.rs"]
mod tests;
