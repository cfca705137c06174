//! Progress on stderr: a redrawn bar on a terminal (drawn by indicatif),
//! plain lines (at most one per second) anywhere else — a serial console, a
//! log file, CI.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

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
    out: SharedOut,
    /// The terminal bar (Style::Bar), made at the first progress event.
    bar: Option<ProgressBar>,
    last_draw: Option<Instant>,
    last_percent: Option<u64>,
}

const PLAIN_INTERVAL: Duration = Duration::from_secs(1);
/// Redraws per second of the terminal bar.
const BAR_HZ: u8 = 10;
const BAR_TEMPLATE: &str = "[{bar:30}] {percent:>3}% {binary_bytes} / {binary_total_bytes} {binary_bytes_per_sec}";

impl Console {
    pub fn new(style: Style, out: Box<dyn Write + Send>) -> Self {
        Console {
            style,
            out: SharedOut(Arc::new(Mutex::new(out))),
            bar: None,
            last_draw: None,
            last_percent: None,
        }
    }

    pub fn stderr(style: Style) -> Self {
        Console::new(style, Box::new(std::io::stderr()))
    }

    fn line(&mut self, text: &str) {
        let out = &self.out;
        let write = || out.write_line(text);
        let _ = match &self.bar {
            // Clears the bar, prints the line, draws the bar again below it.
            Some(bar) => bar.suspend(write),
            None => write(),
        };
    }

    fn progress(&mut self, done: u64, total: u64) {
        match self.style {
            Style::Bar => self.draw_bar(done, total),
            Style::Plain => self.plain_progress(done, total),
        }
    }

    fn draw_bar(&mut self, done: u64, total: u64) {
        let bar = self.bar.get_or_insert_with(|| {
            let target = ProgressDrawTarget::term_like_with_hz(Box::new(self.out.clone()), BAR_HZ);
            let bar = ProgressBar::with_draw_target(Some(total), target);
            if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
                bar.set_style(style.progress_chars("# "));
            }
            bar
        });
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        if done < bar.position() {
            // The download started over (Event::Restart): the rate too.
            bar.reset();
        }
        bar.set_position(done.min(total));
        if done >= total {
            // Draw the final state now; the redraw limit may have skipped it.
            bar.tick();
        }
    }

    /// One line per second at most, and only when the percentage moved.
    fn plain_progress(&mut self, done: u64, total: u64) {
        let percent = (done * 100).checked_div(total).unwrap_or(100).min(100);
        let now = Instant::now();
        let due = self.last_draw.is_none_or(|t| now.duration_since(t) >= PLAIN_INTERVAL);
        if self.last_percent == Some(percent) || !due {
            return;
        }
        self.last_draw = Some(now);
        self.last_percent = Some(percent);
        let _ = self
            .out
            .write_line(&format!("progress: {percent}% ({} of {})", human(done), human(total)));
    }
}

/// The console's writer, shared by the bar (indicatif draws through
/// [`TermLike`]) and the text lines printed between its redraws.
#[derive(Clone)]
struct SharedOut(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedOut {
    fn write(&self, text: &str) -> io::Result<()> {
        let mut out = self.0.lock().map_err(|_| io::Error::other("console writer poisoned"))?;
        out.write_all(text.as_bytes())
    }
}

impl SharedOut {
    /// `ESC [ n X`; a count of 0 would mean 1 to a terminal, so it is not sent.
    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.write(&format!("\x1b[{n}{direction}")),
        }
    }
}

impl fmt::Debug for SharedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedOut")
    }
}

/// ANSI cursor control, which any terminal a bar is drawn on understands
/// (Style::detect draws one only on a terminal other than `dumb`).
impl TermLike for SharedOut {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        let mut out = self.0.lock().map_err(|_| io::Error::other("console writer poisoned"))?;
        out.flush()
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
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // The last state stays on screen, followed by a new line.
        if let Some(bar) = self.bar.take() {
            bar.abandon();
            let _ = self.out.write_line("");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test can read after the console is gone.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    fn run(style: Style, events: &[Event]) -> String {
        let out = Captured::default();
        let mut console = Console::new(style, Box::new(out.clone()));
        for event in events {
            console.event(event);
        }
        drop(console);
        out.text()
    }

    fn progress(done: u64, total: u64) -> Event {
        Event::Progress { done, total }
    }

    #[test]
    fn the_bar_ends_full_with_its_sizes_and_a_new_line() {
        let mib = 1 << 20;
        let task = Event::Task {
            task: "complete".into(),
        };
        let text = run(Style::Bar, &[progress(0, 8 * mib), task, progress(8 * mib, 8 * mib)]);
        let last = text.rsplit("\x1b[2K").next().expect("a drawn bar");
        assert!(
            last.starts_with("[##############################] 100% 8.00 MiB / 8.00 MiB"),
            "{text:?}"
        );
        assert!(text.ends_with('\n'), "{text:?}");
        // The text line was printed on a line of its own, the bar cleared first.
        assert!(text.contains("\r\x1b[2Ktask: complete\n"), "{text:?}");
    }

    #[test]
    fn plain_lines_carry_no_terminal_codes() {
        let task = Event::Task {
            task: "complete".into(),
        };
        let text = run(Style::Plain, &[progress(0, 100), task, progress(100, 100)]);
        assert_eq!(text, "progress: 0% (0 B of 100 B)\ntask: complete\n");
    }
}
