//! What the boot flow prints: its own `loader: …` lines, the engine's events
//! through the chosen console style, and the status callback's reports.

use std::io::Write;

use super::config::ConsoleMode;
use crate::apply::{Event, Reporter, Stage};
use crate::report::{console, Console, JsonLines};

/// Prints stage lines and forwards engine events to the chosen reporter.
pub struct BootReporter {
    inner: Box<dyn Reporter>,
    json: bool,
    callback: Option<crate::report::callback::Callback>,
    /// The diagnostics span of the current boot step (`crate::diag`).
    step: Option<tracing::span::EnteredSpan>,
}

impl BootReporter {
    pub fn new(mode: ConsoleMode, callback: Option<crate::report::callback::Callback>) -> Self {
        let inner: Box<dyn Reporter> = match mode {
            ConsoleMode::Json => Box::new(JsonLines::new(Box::new(std::io::stdout()))),
            ConsoleMode::Bar => Box::new(Console::new(console::Style::Bar, Box::new(std::io::stdout()))),
            ConsoleMode::Plain => Box::new(Console::new(console::Style::Plain, Box::new(LoaderLines::stdout()))),
            ConsoleMode::Auto => match console::Style::detect() {
                console::Style::Plain => Box::new(Console::new(console::Style::Plain, Box::new(LoaderLines::stdout()))),
                style => Box::new(Console::new(style, Box::new(std::io::stdout()))),
            },
        };
        BootReporter {
            inner,
            json: mode == ConsoleMode::Json,
            callback,
            step: None,
        }
    }

    pub fn stage(&mut self, name: &str) {
        // The previous step's span ends before the next one starts.
        self.step = None;
        self.step = Some(tracing::info_span!("stage", name).entered());
        self.say(&format!("stage: {name}"));
        if let Some(cb) = self.callback.as_mut() {
            cb.send("stage", serde_json::json!({ "stage": name }));
        }
    }

    /// The attempt's outcome goes to the status callback, which is then
    /// flushed (each report bounded by its timeout).
    pub fn finish(mut self, result: serde_json::Value) {
        if let Some(mut cb) = self.callback.take() {
            cb.send("result", result);
            cb.finish();
        }
    }

    pub fn say(&mut self, line: &str) {
        if self.json {
            self.inner.event(&Event::Info {
                message: line.to_string(),
            });
        } else {
            println!("loader: {line}");
        }
    }
}

impl Reporter for BootReporter {
    fn event(&mut self, event: &Event) {
        if let Some(cb) = self.callback.as_mut() {
            match event {
                Event::Progress { done, total } => cb.progress(*done, *total),
                Event::Bundle { .. }
                | Event::Task { .. }
                | Event::Warning { .. }
                | Event::Restart { .. }
                | Event::InstallMode { .. } => cb.send("info", info_report(event)),
                _ => {}
            }
        }
        // The boot flow chose the task and said so ("stage: choosing the
        // task", "task: … (why)") before the engine starts: on a console its
        // own lines for the task would repeat them. The JSON stream keeps
        // every engine event.
        let repeats_the_boot_flow = !self.json
            && matches!(
                event,
                Event::Stage {
                    stage: Stage::SelectTask
                } | Event::Task { .. }
            );
        if !repeats_the_boot_flow {
            self.inner.event(event);
        }
    }
}

/// An engine event as the status callback's `info` report: the event's
/// fields, with its kind as `kind` (`event` is the report's own kind).
fn info_report(event: &Event) -> serde_json::Value {
    let mut fields = serde_json::to_value(event).unwrap_or_default();
    if let Some(map) = fields.as_object_mut() {
        if let Some(kind) = map.remove("event") {
            map.insert("kind".into(), kind);
        }
    }
    fields
}

/// Plain engine lines ("stage: writing resources") written as the boot
/// flow's own ("loader: stage: writing resources"), so a serial console
/// reads as one vocabulary and `grep 'loader: '` sees everything.
struct LoaderLines<W: Write> {
    out: W,
    at_line_start: bool,
}

impl LoaderLines<std::io::Stdout> {
    fn stdout() -> Self {
        LoaderLines {
            out: std::io::stdout(),
            at_line_start: true,
        }
    }
}

impl<W: Write> Write for LoaderLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                self.out.write_all(b"loader: ")?;
            }
            self.out.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
#[path = "reporter_docs_tests.rs"]
mod docs_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_info_report_names_the_engine_event_it_carries() {
        let report = info_report(&Event::Task {
            task: "upgrade.b".into(),
        });
        assert_eq!(report["kind"], "task");
        assert_eq!(report["task"], "upgrade.b");
        assert!(report.get("event").is_none(), "{report}");
    }

    #[test]
    fn every_line_starts_with_loader_even_when_written_in_pieces() {
        let mut lines = LoaderLines {
            out: Vec::new(),
            at_line_start: true,
        };
        lines.write_all(b"stage: reading").unwrap();
        lines.write_all(b" the bundle\nprogress: 4%\n").unwrap();
        lines.write_all(b"task: complete\n").unwrap();
        let text = String::from_utf8(lines.out).unwrap();
        assert_eq!(
            text,
            "loader: stage: reading the bundle\nloader: progress: 4%\nloader: task: complete\n"
        );
    }
}
