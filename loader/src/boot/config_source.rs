//! Where settings come from: the lines of `/etc/loader.conf` and the
//! kernel command line, before their values are interpreted, and the
//! warnings about them (unknown keys, repeated keys).

use std::collections::BTreeMap;
use std::fmt;

use super::cmdline::DroppedToken;
use super::config_keys::{classify, KeyName, LIST_KEYS};

/// Where a setting came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Cmdline,
    File { path: String, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Cmdline => f.write_str("kernel command line"),
            Origin::File { path, line } => write!(f, "{path} line {line}"),
        }
    }
}

/// Something worth telling the operator that does not stop the install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    UnknownKey {
        origin: Origin,
        key: String,
        suggestion: Option<String>,
    },
    Dropped(DroppedToken),
    /// A single-value key given more than once in one source.
    Repeated {
        origin: Origin,
        key: String,
        used: String,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownKey {
                origin,
                key,
                suggestion: Some(s),
            } => {
                write!(f, "{origin}: unknown key {key} (did you mean {s}?); ignored")
            }
            ConfigWarning::UnknownKey {
                origin,
                key,
                suggestion: None,
            } => {
                write!(f, "{origin}: unknown key {key}; ignored")
            }
            ConfigWarning::Dropped(token) => token.fmt(f),
            ConfigWarning::Repeated { origin, key, used } => {
                write!(f, "{origin}: {key} given more than once; using the last ({key}={used})")
            }
        }
    }
}

/// The text of a configuration file and its name for messages.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFile<'a> {
    pub path: &'a str,
    pub text: &'a str,
}

/// One `key[=value]` with its origin, before interpretation.
pub(crate) struct Setting {
    pub(crate) origin: Origin,
    pub(crate) key: String,
    pub(crate) value: Option<String>,
}

/// Splits the file into settings (see the module doc for the format).
pub(crate) fn file_settings(file: ConfigFile<'_>) -> Vec<Setting> {
    file.text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| {
            let origin = Origin::File {
                path: file.path.to_string(),
                line: index + 1,
            };
            match line.split_once('=') {
                Some((key, value)) => {
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(value);
                    Setting {
                        origin,
                        key: key.trim().to_string(),
                        value: Some(value.to_string()),
                    }
                }
                None => Setting {
                    origin,
                    key: line.trim().to_string(),
                    value: None,
                },
            }
        })
        .collect()
}

pub(crate) fn unknown(setting: &Setting, suggestion: Option<String>) -> ConfigWarning {
    ConfigWarning::UnknownKey {
        origin: setting.origin.clone(),
        key: setting.key.clone(),
        suggestion,
    }
}

/// One warning per single-value key that a source sets more than once.
pub(crate) fn repeats(source: &[Setting]) -> Vec<ConfigWarning> {
    let mut last: BTreeMap<&'static str, (usize, &Setting)> = BTreeMap::new();
    for setting in source {
        if let Ok(Some(KeyName::Known(name))) = classify(&setting.key) {
            if !LIST_KEYS.contains(&name) {
                let count = last.get(name).map_or(0, |(n, _)| *n);
                last.insert(name, (count + 1, setting));
            }
        }
    }
    last.into_iter()
        .filter(|(_, (count, _))| *count > 1)
        .map(|(name, (_, s))| ConfigWarning::Repeated {
            origin: s.origin.clone(),
            key: name.to_string(),
            used: s.value.clone().unwrap_or_default(),
        })
        .collect()
}
