//! One JSON object per line per event, for machines (`--progress json`).
//!
//! The format is documented in `docs/progress-json.md`; every line carries
//! `"schema": SCHEMA`, and the tests in `schema_docs_tests.rs` hold the
//! document to what these functions write.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::apply::{Event, Reporter, Summary};
use crate::source::TransferEvent;

/// The version of the line format: raised when a field is removed or
/// changes meaning (new fields and new events do not raise it).
pub const SCHEMA: u32 = 1;

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
        if let Some(line) = event_line(event) {
            let _ = writeln!(self.out, "{line}");
        }
    }
}

/// An engine event as one line.
pub fn event_line(event: &Event) -> Option<String> {
    serde_json::to_value(event).ok().map(line)
}

/// A download's retry, break or resume (`"event": "download"`).
pub fn download_line(event: &TransferEvent) -> String {
    line(json!({ "event": "download", "message": event.to_string() }))
}

/// The last line of a successful `loader apply` (`"event": "finished"`).
pub fn finished_line(summary: &Summary) -> String {
    line(json!({ "event": "finished", "summary": summary }))
}

fn line(mut value: Value) -> String {
    if let Value::Object(map) = &mut value {
        map.insert("schema".into(), SCHEMA.into());
    }
    value.to_string()
}

#[cfg(test)]
#[path = "schema_docs_tests.rs"]
mod schema_docs_tests;
