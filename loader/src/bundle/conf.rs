//! The libconfuse configuration tree that `meta.conf` parses into.
//!
//! fwup writes `meta.conf` in a normalized libconfuse form: options
//! `key=value` (bare or quoted strings, integers, hex), lists `key={a,b,…}`,
//! and titled sections `kind "title" { … }`. The tree keeps every value as
//! text; typed readers (the manifest, the MBR/GPT/U-Boot specs) decide what a
//! value means and report errors naming the section and key.

use std::fmt;

/// One value: a scalar or a `{…}` list. Numbers stay text (`0x0c`, `12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar(String),
    List(Vec<String>),
}

/// A section: the root (kind `""`), `task "complete" { … }`, `on-init { … }`…
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub kind: String,
    pub title: Option<String>,
    /// Options in file order. A key set twice keeps both; readers take the last.
    pub options: Vec<(String, Value)>,
    pub sections: Vec<Section>,
}

/// A value that is present but does not mean what the reader needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{section}: option `{key}`: {problem}")]
pub struct ValueError {
    pub section: String,
    pub key: String,
    pub problem: String,
}

impl Section {
    /// The last value set for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Subsections of one kind, in file order.
    pub fn children<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.kind == kind)
    }

    /// The subsection of `kind` titled `title`.
    pub fn child(&self, kind: &str, title: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind && s.title.as_deref() == Some(title))
    }

    pub fn str(&self, key: &str) -> Result<Option<&str>, ValueError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Scalar(s)) => Ok(Some(s)),
            Some(Value::List(_)) => Err(self.bad(key, "expected a single value, found a list")),
        }
    }

    /// An unsigned integer, decimal or `0x` hex, as libconfuse accepts it.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ValueError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => parse_u64(s)
                .map(Some)
                .ok_or_else(|| self.bad(key, &format!("`{s}` is not a number"))),
        }
    }

    /// libconfuse booleans: true/false, yes/no, on/off, 1/0.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ValueError> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => parse_bool(s)
                .map(Some)
                .ok_or_else(|| self.bad(key, &format!("`{s}` is not true or false"))),
        }
    }

    pub fn bad(&self, key: &str, problem: &str) -> ValueError {
        ValueError { section: self.to_string(), key: key.to_string(), problem: problem.to_string() }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind[..], &self.title) {
            ("", _) => f.write_str("meta.conf"),
            (kind, Some(t)) => write!(f, "{kind} \"{t}\""),
            (kind, None) => f.write_str(kind),
        }
    }
}

/// Decimal, `0x` hex or leading-`0` octal, like libconfuse's `strtol(…, 0)`.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}
