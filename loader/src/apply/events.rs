//! What the engine tells the outside world while it works.
//!
//! The engine only emits events; `report` turns them into a progress bar,
//! plain lines on a serial console, JSON, or a status callback.

use serde::Serialize;

/// Stage names used in events and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Open,
    Verify,
    SelectTask,
    Init,
    Resources,
    Finish,
    Commit,
    Done,
    /// Memory mode: the whole bundle is read into memory first.
    Download,
    /// Memory and two-pass modes: every resource is checked before a write.
    VerifyAll,
    /// Two-pass mode: the old boot records stop selecting anything.
    SwitchOff,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Stage::Open => "reading the bundle",
            Stage::Verify => "verifying the signature",
            Stage::SelectTask => "choosing the task",
            Stage::Init => "running on-init",
            Stage::Resources => "writing resources",
            Stage::Finish => "running on-finish",
            Stage::Commit => "committing boot-critical writes",
            Stage::Done => "done",
            Stage::Download => "reading the whole bundle into memory",
            Stage::VerifyAll => "verifying every resource before writing",
            Stage::SwitchOff => "switching off the old boot records",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Stage {
        stage: Stage,
    },
    Bundle {
        product: String,
        version: String,
        uuid: String,
        signature: String,
    },
    Task {
        task: String,
    },
    Resource {
        name: String,
        bytes: u64,
    },
    Progress {
        done: u64,
        total: u64,
    },
    /// `info()` actions and notable facts.
    Info {
        message: String,
    },
    Warning {
        message: String,
    },
    /// The install starts over from byte 0 (restart `restart` of at most
    /// `limit`) because of `reason`: the bundle changed on the server, or a
    /// broken download cannot be resumed. Nothing bootable was written;
    /// `refetch` bytes already downloaded are downloaded again.
    Restart {
        reason: String,
        restart: u32,
        limit: u32,
        refetch: u64,
    },
    /// How this install reaches the disk (`one-pass`, `memory`,
    /// `two-pass`) and why; the memory budget that decided between memory
    /// and two passes (bytes; `available` is MemAvailable when known).
    InstallMode {
        mode: String,
        reason: String,
        budget: u64,
        available: Option<u64>,
    },
}

/// Receives events. Implementations must be cheap: progress arrives often.
pub trait Reporter {
    fn event(&mut self, event: &Event);
}

/// Discards everything (tests, `--quiet`).
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: &Event) {}
}

/// Collects events (tests).
#[derive(Default)]
pub struct Collect(pub Vec<Event>);

impl Reporter for Collect {
    fn event(&mut self, event: &Event) {
        if !matches!(event, Event::Progress { .. }) {
            self.0.push(event.clone());
        }
    }
}
