//! Progress on stderr: a redrawn bar on a terminal, plain lines (at most one
//! per second) anywhere else — a serial console, a log file, CI.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::apply::{Event, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bar,
    Plain,
}

impl Style {
    /// A bar only when stderr is a terminal that can redraw a line.
    pub fn detect() -> Self {
        let dumb = std::env::var("TERM").map(|t| t == "dumb").unwrap_or(true);
        if std::io::stderr().is_terminal() && !dumb {
            Style::Bar
        } else {
            Style::Plain
        }
    }
}

pub struct Console {
    style: Style,
    out: Box<dyn Write + Send>,
    last_draw: Option<Instant>,
    last_percent: Option<u64>,
    bar_visible: bool,
    started: Instant,
}

const PLAIN_INTERVAL: Duration = Duration::from_secs(1);
const BAR_INTERVAL: Duration = Duration::from_millis(100);

impl Console {
    pub fn new(style: Style, out: Box<dyn Write + Send>) -> Self {
        Console {
            style,
            out,
            last_draw: None,
            last_percent: None,
            bar_visible: false,
            started: Instant::now(),
        }
    }

    pub fn stderr(style: Style) -> Self {
        Console::new(style, Box::new(std::io::stderr()))
    }

    fn line(&mut self, text: &str) {
        if self.bar_visible {
            let _ = write!(self.out, "\r\x1b[2K");
            self.bar_visible = false;
        }
        let _ = writeln!(self.out, "{text}");
    }

    fn progress(&mut self, done: u64, total: u64) {
        let percent = (done * 100).checked_div(total).unwrap_or(100).min(100);
        let now = Instant::now();
        let interval = if self.style == Style::Bar {
            BAR_INTERVAL
        } else {
            PLAIN_INTERVAL
        };
        let due = self.last_draw.is_none_or(|t| now.duration_since(t) >= interval);
        let finished = done >= total;
        if self.last_percent == Some(percent) || !(due || (finished && self.style == Style::Bar)) {
            return;
        }
        self.last_draw = Some(now);
        self.last_percent = Some(percent);
        match self.style {
            Style::Bar => {
                let width = 30;
                let filled = (percent as usize * width) / 100;
                let rate = done as f64 / now.duration_since(self.started).as_secs_f64().max(0.001) / 1048576.0;
                let _ = write!(
                    self.out,
                    "\r\x1b[2K[{}{}] {percent:3}% {} / {} {rate:.1} MiB/s",
                    "#".repeat(filled),
                    " ".repeat(width - filled),
                    human(done),
                    human(total)
                );
                let _ = self.out.flush();
                self.bar_visible = true;
            }
            Style::Plain => {
                let _ = writeln!(self.out, "progress: {percent}% ({} of {})", human(done), human(total));
            }
        }
    }
}

impl Reporter for Console {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Progress { done, total } => self.progress(*done, *total),
            Event::Stage { stage } => {
                if self.style == Style::Plain {
                    self.line(&format!("stage: {stage}"));
                }
            }
            Event::Bundle {
                product,
                version,
                uuid,
                signature,
            } => self.line(&format!("bundle: {product} {version} ({uuid}), signature: {signature}")),
            Event::Task { task } => self.line(&format!("task: {task}")),
            Event::Resource { .. } => {}
            Event::Info { message } => self.line(&format!("info: {message}")),
            Event::Warning { message } => self.line(&format!("warning: {message}")),
            Event::Restart {
                reason,
                restart,
                limit,
                refetch,
            } => {
                self.last_percent = None;
                self.line(&format!(
                    "restarting from zero ({restart} of at most {limit}): {reason}; nothing bootable was \
                     written; {} downloaded again",
                    human(*refetch)
                ))
            }
            Event::InstallMode {
                mode,
                reason,
                budget,
                available,
            } => {
                let available = available.map_or("MemAvailable unknown".to_string(), |a| {
                    format!("{} available", human(a))
                });
                self.line(&format!(
                    "install mode: {mode}: {reason} (memory budget {}, {available})",
                    human(*budget)
                ));
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if self.bar_visible {
            let _ = writeln!(self.out);
        }
    }
}

/// `; started over 1 time(s); 12.0 MiB downloaded twice`, or nothing: for
/// the line that reports a finished install.
pub fn describe_restarts(summary: &crate::apply::Summary) -> String {
    let mut text = String::new();
    if summary.restarts > 0 {
        text += &format!("; started over {} time(s)", summary.restarts);
    }
    if summary.refetched_bytes > 0 {
        text += &format!("; {} downloaded twice", human(summary.refetched_bytes));
    }
    text
}

/// `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
