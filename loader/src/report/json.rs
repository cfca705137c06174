//! One JSON object per line per event, for machines (`--progress json`).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::apply::{Event, Reporter};

pub struct JsonLines {
    out: Box<dyn Write + Send>,
    last_progress: Option<Instant>,
}

impl JsonLines {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonLines {
            out,
            last_progress: None,
        }
    }
}

impl Reporter for JsonLines {
    fn event(&mut self, event: &Event) {
        if let Event::Progress { done, total } = event {
            let now = Instant::now();
            let due = self
                .last_progress
                .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(500));
            if !due && done < total {
                return;
            }
            self.last_progress = Some(now);
        }
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(self.out, "{line}");
        }
    }
}
