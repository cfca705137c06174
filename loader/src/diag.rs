//! Diagnostics through `tracing`: leveled, structured events and spans that
//! explain a failure on hardware nobody can attach a debugger to — each
//! DHCP exchange, each HTTP attempt and its answer, each disk considered
//! and why it was skipped, inside a span per boot step.
//!
//! The domain events (the `Reporter` lines, the JSON stream, the status
//! callback) are separate and unchanged: they say *what* happens; these
//! say *why*, and are off unless asked for.
//!
//! - Host: `-v` (debug), `-vv` (trace), or `RUST_LOG` in the `tracing`
//!   targets syntax (`debug`, `loader=trace,hyper_util=debug`), on stderr.
//! - Boot: `loader.log=info|debug|trace`, through the [`BootLog`]: on the
//!   console and as `/dev/kmsg` records at the matching kernel level. The
//!   kernel keeps at most 10 user records per 5 s unless the command line
//!   has `printk.devkmsg=on`; the console gets every line.
//!
//! Without either, only the loader's warnings and errors are recorded (it
//! emits none today that the `Reporter` does not already show).

use std::io::{self, Write};
use std::sync::Arc;

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::time::{FormatTime, Uptime};
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::prelude::*;

use crate::boot::pid1::{self, BootLog};

/// `loader.log=`: how much the loader records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Warnings and errors only (no `loader.log=`).
    #[default]
    Warn,
    /// Each boot step, DHCP lease, HTTP answer and chosen disk.
    Info,
    /// Plus every exchange and every disk skipped, with the reason.
    Debug,
    /// Plus the HTTP client's own records.
    Trace,
}

impl LogLevel {
    /// Parses a `loader.log=` value.
    pub fn parse(value: &str) -> Result<LogLevel, String> {
        match value.to_ascii_lowercase().as_str() {
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err("expected info, debug or trace (or warn, the default)".into()),
        }
    }

    /// The loader's own events at this level; other crates' at warnings,
    /// except at `trace`, where the HTTP stack's records count too.
    pub fn targets(self) -> Targets {
        let (own, others) = match self {
            LogLevel::Warn => (LevelFilter::WARN, LevelFilter::WARN),
            LogLevel::Info => (LevelFilter::INFO, LevelFilter::WARN),
            LogLevel::Debug => (LevelFilter::DEBUG, LevelFilter::WARN),
            LogLevel::Trace => (LevelFilter::TRACE, LevelFilter::DEBUG),
        };
        Targets::new().with_target("loader", own).with_default(others)
    }
}

/// The host CLI's recorder: `RUST_LOG` if set, else `-v` counts. Not
/// installed at all without either, so `loader boot` on a host can still
/// honour `loader.log=` (see [`init_boot`]).
pub fn init_host(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match spec.parse::<Targets>() {
            Ok(targets) => targets,
            Err(e) => {
                eprintln!("loader: RUST_LOG={spec}: {e}; recording warnings only");
                LogLevel::Warn.targets()
            }
        },
        _ if verbose == 0 => return,
        _ if verbose == 1 => LogLevel::Debug.targets(),
        _ => LogLevel::Trace.targets(),
    };
    let layer = fmt::layer().with_writer(io::stderr).with_timer(Uptime::default());
    let _ = tracing_subscriber::registry().with(layer).with(filter).try_init();
}

/// The boot flow's recorder: events at `level` and above go to `log` (the
/// console and `/dev/kmsg`). A recorder already installed (the host's
/// `-v`) is kept.
pub fn init_boot(log: Arc<BootLog>, level: LogLevel) {
    let _ = boot_recorder(log, level, Uptime::default()).try_init();
}

fn boot_recorder(
    log: Arc<BootLog>,
    level: LogLevel,
    timer: impl FormatTime + Send + Sync + 'static,
) -> impl Subscriber {
    let layer = fmt::layer()
        .with_writer(BootLogWriter(log))
        .with_timer(timer)
        .with_target(level >= LogLevel::Debug);
    tracing_subscriber::registry().with(layer).with(level.targets())
}

/// Hands each formatted event to the [`BootLog`] as one message, at the
/// kernel level matching the event's.
struct BootLogWriter(Arc<BootLog>);

impl<'a> MakeWriter<'a> for BootLogWriter {
    type Writer = EventText;

    fn make_writer(&'a self) -> EventText {
        EventText::new(self.0.clone(), pid1::Level::Info)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventText {
        EventText::new(self.0.clone(), kernel_level(*meta.level()))
    }
}

fn kernel_level(level: Level) -> pid1::Level {
    match level {
        Level::ERROR => pid1::Level::Error,
        Level::WARN => pid1::Level::Warning,
        Level::INFO => pid1::Level::Info,
        _ => pid1::Level::Debug,
    }
}

/// One event's text, logged when the formatter is done with it.
struct EventText {
    log: Arc<BootLog>,
    level: pid1::Level,
    text: Vec<u8>,
}

impl EventText {
    fn new(log: Arc<BootLog>, level: pid1::Level) -> EventText {
        EventText {
            log,
            level,
            text: Vec::new(),
        }
    }
}

impl Write for EventText {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventText {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        let text = text.trim_end();
        if !text.is_empty() {
            self.log.log(self.level, text);
        }
    }
}

/// What a boot recorder at `level` (without time stamps) writes while `f`
/// runs: the console text and the `/dev/kmsg` records.
#[cfg(test)]
pub(crate) fn capture(level: LogLevel, f: impl FnOnce()) -> (String, Vec<String>) {
    let (console, kmsg) = (tests::Records::default(), tests::Records::default());
    let log = Arc::new(BootLog::new(
        Some(Box::new(console.clone())),
        Some(Box::new(kmsg.clone())),
    ));
    tracing::subscriber::with_default(boot_recorder(log, level, ()), f);
    let console = console.0.lock().expect("lock").concat();
    let kmsg = kmsg.0.lock().expect("lock").clone();
    (console, kmsg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    pub(super) struct Records(pub(super) Arc<Mutex<Vec<String>>>);

    impl Write for Records {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("lock")
                .push(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What a boot recorder at `level` writes to the console and kmsg for
    /// a few events inside a boot-step span.
    fn recorded(level: LogLevel) -> (String, Vec<String>) {
        capture(level, || {
            let _step = tracing::info_span!("stage", name = "choosing the disk").entered();
            tracing::info!(disk = "/dev/vda", "chosen");
            tracing::debug!(disk = "/dev/sr0", reason = "read-only", "skipped");
            tracing::trace!("noise");
            tracing::debug!(target: "hyper_util::client", "pool");
        })
    }

    #[test]
    fn loader_log_values_parse_and_others_are_refused() {
        assert_eq!(LogLevel::parse("debug"), Ok(LogLevel::Debug));
        assert_eq!(LogLevel::parse("TRACE"), Ok(LogLevel::Trace));
        assert!(LogLevel::parse("verbose")
            .expect_err("not a level")
            .contains("info, debug or trace"));
    }

    #[test]
    fn debug_records_skipped_disks_with_their_reason_in_the_step_span() {
        let (console, kmsg) = recorded(LogLevel::Debug);
        assert_eq!(
            console,
            "loader:   INFO stage{name=\"choosing the disk\"}: loader::diag::tests: chosen disk=\"/dev/vda\"\n\
             loader:  DEBUG stage{name=\"choosing the disk\"}: loader::diag::tests: skipped disk=\"/dev/sr0\" \
             reason=\"read-only\"\n"
        );
        // The kernel log gets each at its own level: 6 info, 7 debug.
        assert!(kmsg[0].starts_with("<6>loader:   INFO stage"), "{kmsg:?}");
        assert!(kmsg[1].starts_with("<7>loader:  DEBUG stage"), "{kmsg:?}");
        assert_eq!(kmsg.len(), 2, "trace and other crates' debug are left out: {kmsg:?}");
    }

    #[test]
    fn without_loader_log_nothing_below_a_warning_is_recorded() {
        let (console, kmsg) = recorded(LogLevel::Warn);
        assert_eq!(console, "");
        assert!(kmsg.is_empty());
    }
}
