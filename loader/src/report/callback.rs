//! `loader.report=URL`: JSON status POSTs to a fleet operator's endpoint —
//! at start, on every stage change, every 10 s with progress, and at the
//! end with the result.
//!
//! Sent from a background thread through a small queue: a slow or dead
//! endpoint never holds up an install (progress reports are dropped when
//! the queue is full; the result never is), and a report that fails is
//! retried twice, then forgotten. Every POST has one overall deadline (5 s),
//! so an endpoint answering endless `1xx` or trickling bytes cannot stall
//! the sender; after the result, the reports still queued get at most
//! `loader.report_timeout=` (10 s) before [`Callback::finish`] returns and
//! the reboot goes ahead.
//!
//! What each report holds is documented in `docs/status-callback.md`; the
//! tests in `boot/reporter_docs_tests.rs` hold the document to what is
//! sent.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::source::request::SmallClient;
use crate::source::{ExtraRoot, ProxySetting};

/// The version of the report format (`docs/status-callback.md`), sent as
/// `"schema"` in every report: raised when a field is removed or changes
/// meaning (new fields and new events do not raise it).
pub const SCHEMA: u32 = 1;
const QUEUE: usize = 32;
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// The overall deadline of one POST: connect, send, and the whole answer.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per report, a second apart.
const ATTEMPTS: u32 = 3;
/// The default of `loader.report_timeout=`.
pub const DEFAULT_FINISH_WITHIN: Duration = Duration::from_secs(10);
/// The longest answer read from the endpoint.
const MAX_ANSWER: usize = 64 * 1024;

/// How the reports travel.
#[derive(Debug, Clone)]
pub struct CallbackOptions {
    /// CA certificates trusted besides the built-in roots.
    pub extra_roots: Vec<ExtraRoot>,
    pub proxy: ProxySetting,
    /// After the result, how long the reports still queued may take.
    pub finish_within: Duration,
}

impl Default for CallbackOptions {
    fn default() -> Self {
        CallbackOptions {
            extra_roots: Vec::new(),
            proxy: ProxySetting::Environment,
            finish_within: DEFAULT_FINISH_WITHIN,
        }
    }
}

pub struct Callback {
    shared: Option<Arc<Shared>>,
    finish_within: Duration,
    machine: Value,
    last_progress: Option<Instant>,
}

/// The queue between the install and the sending thread.
struct Shared {
    state: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    reports: VecDeque<Value>,
    /// No more reports will come; set by `finish`.
    closed: bool,
    /// The sender has sent (or given up on) everything.
    done: bool,
    /// Set by `finish`: nothing is sent after this.
    deadline: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Callback {
    pub fn start(url: String, options: CallbackOptions, sys: &Path) -> Callback {
        let shared = Arc::new(Shared {
            state: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let finish_within = options.finish_within;
        let started = std::thread::Builder::new()
            .name("status-callback".into())
            .spawn(move || send_all(&url, &options, &worker))
            .is_ok();
        Callback {
            shared: started.then_some(shared),
            finish_within,
            machine: machine_identity(sys),
            last_progress: None,
        }
    }

    /// Queues one report; never blocks. When the queue is full the oldest
    /// progress report makes room; the result always gets in.
    pub fn send(&mut self, event: &str, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("event".into(), json!(event));
            map.insert("schema".into(), json!(SCHEMA));
            map.insert("machine".into(), self.machine.clone());
        }
        let Some(shared) = &self.shared else { return };
        let mut queue = shared.lock();
        if queue.reports.len() >= QUEUE {
            match queue.reports.iter().position(|r| r["event"] == "progress") {
                Some(oldest) => {
                    queue.reports.remove(oldest);
                }
                None if event == "result" => {}
                None => return,
            }
        }
        queue.reports.push_back(fields);
        shared.changed.notify_all();
    }

    /// Progress, at most every 10 s.
    pub fn progress(&mut self, done: u64, total: u64) {
        let due = self.last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due {
            self.last_progress = Some(Instant::now());
            self.send("progress", json!({ "done": done, "total": total }));
        }
    }

    /// Sends what is queued, giving it at most `finish_within`, and stops.
    pub fn finish(mut self) {
        let Some(shared) = self.shared.take() else { return };
        let deadline = Instant::now() + self.finish_within;
        let mut queue = shared.lock();
        queue.closed = true;
        queue.deadline = Some(deadline);
        shared.changed.notify_all();
        while !queue.done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // The sender gives up on its own at the deadline; the
                // reboot does not wait for it.
                break;
            }
            queue = shared
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The sending thread: each report in order, until `finish` closes the
/// queue or its deadline passes.
fn send_all(url: &str, options: &CallbackOptions, shared: &Shared) {
    let client = SmallClient::new(&options.extra_roots, &options.proxy, MAX_ANSWER, None);
    if let Err(e) = &client {
        println!("loader: status callback: {e}; reports are not sent");
    }
    loop {
        let (report, deadline) = {
            let mut queue = shared.lock();
            loop {
                if queue.deadline.is_some_and(|d| Instant::now() >= d) {
                    queue.reports.clear();
                }
                if let Some(report) = queue.reports.pop_front() {
                    break (report, queue.deadline);
                }
                if queue.closed {
                    queue.done = true;
                    shared.changed.notify_all();
                    return;
                }
                queue = shared.changed.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        if let Ok(client) = &client {
            post(client, url, &report.to_string(), deadline);
        }
    }
}

/// One report: up to three attempts, each within its own deadline and the
/// overall one.
fn post(client: &SmallClient, url: &str, body: &str, deadline: Option<Instant>) {
    let left = || deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
    for attempt in 1..=ATTEMPTS {
        let within = POST_TIMEOUT.min(left());
        if within.is_zero() {
            println!("loader: status callback: out of time; report dropped");
            return;
        }
        let failure = match client.post_json(url, body.to_owned(), within) {
            Ok(status) if status < 500 => return,
            Ok(status) => format!("answered {status}"),
            Err(e) => e,
        };
        if attempt == ATTEMPTS {
            println!("loader: status callback failed: {failure}; report dropped");
            return;
        }
        std::thread::sleep(Duration::from_secs(1).min(left()));
    }
}

/// MAC addresses and DMI product/serial, so the operator knows which
/// machine is talking. `sys` is `/sys` (a temp tree in tests).
pub fn machine_identity(sys: &Path) -> Value {
    let mut macs = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(sys.join("class/net")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name == "lo" {
                continue;
            }
            if let Ok(mac) = std::fs::read_to_string(entry.path().join("address")) {
                macs.insert(name, mac.trim().to_string());
            }
        }
    }
    let dmi = |f: &str| {
        std::fs::read_to_string(sys.join("class/dmi/id").join(f))
            .ok()
            .map(|s| s.trim().to_string())
    };
    json!({
        "macs": macs,
        "vendor": dmi("sys_vendor"),
        "product": dmi("product_name"),
        "serial": dmi("product_serial"),
        "uuid": dmi("product_uuid"),
    })
}

/// The reports a [`recording`] callback kept.
#[cfg(test)]
pub(crate) struct Recorded(Arc<Shared>);

#[cfg(test)]
impl Recorded {
    pub(crate) fn reports(&self) -> Vec<Value> {
        self.0.lock().reports.iter().cloned().collect()
    }
}

/// A callback that sends nothing and keeps every report (tests that check
/// what would be sent); `finish` returns at once.
#[cfg(test)]
pub(crate) fn recording(sys: &Path) -> (Callback, Recorded) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Queue::default()),
        changed: Condvar::new(),
    });
    let callback = Callback {
        shared: Some(Arc::clone(&shared)),
        finish_within: Duration::ZERO,
        machine: machine_identity(sys),
        last_progress: None,
    };
    (callback, Recorded(shared))
}

#[cfg(test)]
#[path = "callback_tests.rs"]
mod tests;
