//! The kernel command line and `/etc/loader.conf`: any text through
//! `cmdline::parse` and `Config::from_sources` (which also parses the
//! `loader.disk=` selector, sizes, durations, keys, digests and URLs).
//!
//! Input: the file's text, a NUL byte, the command line (no NUL: the file
//! is empty). Invalid UTF-8 is replaced, as `read_to_string` would refuse
//! it before any parser runs.
//!
//! Checked beyond "no panic":
//! * quotes round trip: printing the parameters back, each in quotes, and
//!   parsing that gives the same parameters;
//! * `get` is the last value given for a key;
//! * the command line wins: for every single-value key the command line
//!   sets, the value with the file underneath equals the value from the
//!   command line alone, and an error in the command line alone is an
//!   error with the file too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::boot::cmdline::{self, Cmdline, CMDLINE_MAX};
use loader::boot::config::{Config, ConfigFile};

fn render(c: &Cmdline) -> String {
    c.params
        .iter()
        .map(|p| match &p.value {
            Some(v) => format!("\"{}={v}\"", p.key),
            None => format!("\"{}\"", p.key),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Single-value keys and how to see each one's result.
type Field = fn(&Config) -> String;
const FIELDS: [(&str, Field); 15] = [
    ("loader.url", |c| format!("{:?}", c.url)),
    ("loader.bundle", |c| format!("{:?}", c.bundle)),
    ("loader.disk", |c| format!("{:?}", c.disk)),
    ("loader.disk_wait", |c| format!("{:?}", c.disk_wait)),
    ("loader.force", |c| format!("{:?}", c.force)),
    ("loader.task", |c| format!("{:?}", c.task)),
    ("loader.on_success", |c| format!("{:?}", c.on_success)),
    ("loader.on_error", |c| format!("{:?}", c.on_error)),
    ("loader.on_error_delay", |c| format!("{:?}", c.on_error_delay)),
    ("loader.on_error_retries", |c| format!("{:?}", c.on_error_retries)),
    ("loader.console", |c| format!("{:?}", c.console)),
    ("loader.sha256", |c| format!("{:?}", c.sha256)),
    ("loader.insecure", |c| format!("{:?}", c.insecure)),
    ("loader.report", |c| format!("{:?}", c.report)),
    ("loader.metadata", |c| format!("{:?}", c.metadata)),
];

/// `-` and `_` are the same in `loader.*` key names.
fn normalised(key: &str) -> String {
    match key.strip_prefix("loader.") {
        Some(rest) => format!("loader.{}", rest.replace('-', "_")),
        None => key.to_string(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (file, line) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (&data[..0], data),
    };
    let file = String::from_utf8_lossy(file);
    let line = String::from_utf8_lossy(line);

    let parsed = cmdline::parse(&line);
    for p in &parsed.params {
        assert!(!p.key.contains('"') && !p.value.as_deref().unwrap_or("").contains('"'));
        let last = parsed.params.iter().rev().find(|q| q.key == p.key).and_then(|q| q.value.as_deref());
        assert_eq!(parsed.get(&p.key), last);
    }
    if let Some(dropped) = &parsed.dropped {
        let _ = dropped.to_string();
    }
    let printed = render(&parsed);
    if printed.len() < CMDLINE_MAX {
        let again = cmdline::parse(&printed);
        assert_eq!(again.params, parsed.params, "printed as {printed:?}");
        assert!(again.dropped.is_none());
    }

    let config_file = ConfigFile {
        path: "/etc/loader.conf",
        text: &file,
    };
    let both = Config::from_sources(Some(config_file), &parsed);
    let alone = Config::from_sources(None, &parsed);
    match (&both, &alone) {
        (Ok(both), Ok(alone)) => {
            for w in both.warnings.iter().chain(&alone.warnings) {
                let _ = w.to_string();
            }
            for (key, field) in FIELDS {
                if parsed.params.iter().any(|p| normalised(&p.key) == key) {
                    assert_eq!(field(&both.config), field(&alone.config), "{key}: the file won");
                }
            }
        }
        (Ok(_), Err(e)) => panic!("an error on the command line alone went away with the file: {e}"),
        (Err(e), _) => {
            let _ = e.to_string();
        }
    }
});
