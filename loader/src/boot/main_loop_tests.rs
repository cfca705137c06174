//! The failure policy after panics, and the console choice.

use super::*;
use std::cell::Cell;
use std::io::Write;
use std::sync::Mutex;

thread_local! {
    /// Attempts on this thread that panic before doing anything.
    static PANICS: Cell<u32> = const { Cell::new(0) };
}

/// The test-only way to make an attempt panic (compiled into test
/// builds only).
pub(super) fn maybe_panic() {
    if PANICS.with(|p| p.replace(p.get().saturating_sub(1))) > 0 {
        panic!("injected panic in an attempt");
    }
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the attempts with `cmdline` and `panics` panicking attempts;
/// returns the log and the re-execs asked for.
fn run_panicking(pid1: bool, cmdline: &str, panics: u32, first_failed: u32) -> (String, Vec<u32>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cmdline"), cmdline).expect("cmdline");
    // Nothing of the host: an attempt that did not panic would find no
    // bundle and fail.
    let paths = BootPaths {
        config: dir.path().join("loader.conf"),
        cmdline: dir.path().join("cmdline"),
        sys_block: dir.path().join("sys/block"),
        mountinfo: dir.path().join("mountinfo"),
        keys_dir: dir.path().join("keys"),
        ca_dir: dir.path().join("ca"),
        default_bundle: dir.path().join("install.fw"),
        manage_network: false,
    };
    let lines = Lines::default();
    let log = Arc::new(BootLog::new(Some(Box::new(lines.clone())), None));
    let restarts = Mutex::new(Vec::new());
    let restart = |failed: u32| {
        restarts.lock().expect("lock").push(failed);
        ExitCode::SUCCESS
    };
    PANICS.with(|p| p.set(panics));
    let mode = BootMode {
        pid1,
        power_actions: false,
    };
    let _ = attempts(&mode, &paths, &log, first_failed, &restart);
    PANICS.with(|p| p.set(0));
    let text = String::from_utf8_lossy(&lines.0.lock().expect("lock")).into_owned();
    let restarts = restarts.lock().expect("lock").clone();
    (text, restarts)
}

const RETRY: &str = "loader.on_error=retry loader.on_error_retries=1 loader.on_error_delay=0";

#[test]
fn a_panicking_attempt_is_a_failure_of_class_internal() {
    let (log, _) = run_panicking(false, "loader.on_error=halt", 1, 0);
    assert!(
        log.contains(
            "result: failed class=internal stage=install: install failed: internal error: injected panic in an attempt"
        ),
        "{log}"
    );
    assert!(log.contains("giving up"), "{log}");
}

#[test]
fn as_pid1_a_retry_after_a_panic_starts_init_afresh() {
    let (log, restarts) = run_panicking(true, RETRY, 1, 0);
    assert_eq!(restarts, vec![1], "{log}");
    assert!(log.contains("retrying in 0 s (attempt 2 of 2)"), "{log}");
    assert_eq!(log.matches("result: failed").count(), 1, "{log}");
}

#[test]
fn retries_count_the_attempts_before_the_restart() {
    // The one retry was used by the attempt before the re-exec.
    let (log, restarts) = run_panicking(false, RETRY, 1, 1);
    assert!(restarts.is_empty(), "{log}");
    assert!(log.contains("giving up"), "{log}");
    assert!(!log.contains("retrying"), "{log}");
}

#[test]
fn on_a_host_a_retry_after_a_panic_runs_in_the_same_process() {
    let (log, restarts) = run_panicking(false, RETRY, 2, 0);
    assert!(restarts.is_empty());
    assert_eq!(log.matches("result: failed class=internal").count(), 2, "{log}");
    assert!(log.contains("giving up"), "{log}");
}

#[test]
fn serial_consoles_get_plain_lines_and_vga_gets_the_bar() {
    assert_eq!(auto_console("tty0 ttyS0\n"), ConsoleMode::Plain);
    assert_eq!(auto_console("ttyS0 tty0\n"), ConsoleMode::Bar);
    assert_eq!(auto_console("ttyAMA0\n"), ConsoleMode::Plain);
    assert_eq!(auto_console(""), ConsoleMode::Plain);
}

#[test]
fn the_partition_table_is_re_read_only_when_the_machine_stays_up() {
    let config = |on_success| Config {
        on_success,
        ..Config::default()
    };
    let mode = |power_actions| BootMode {
        pid1: true,
        power_actions,
    };
    assert!(!stays_up(&mode(true), &config(OnSuccess::Reboot)));
    assert!(!stays_up(&mode(true), &config(OnSuccess::Poweroff)));
    assert!(stays_up(&mode(true), &config(OnSuccess::Halt)));
    assert!(
        stays_up(&mode(false), &config(OnSuccess::Reboot)),
        "loader boot without --finish"
    );
}
