//! The typed values of `loader.*` keys and their parsers. Each parser
//! returns the problem as text; the caller adds the key, value and origin.

use std::time::Duration;

use base64::Engine as _;

/// `loader.on_success=`: what to do after a successful install.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnSuccess {
    #[default]
    Reboot,
    Poweroff,
    Halt,
}

/// `loader.on_error=`: what to do after a failed attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnError {
    /// Start again from the beginning after `loader.on_error_delay`, at
    /// most `loader.on_error_retries` times, then halt with the message on
    /// screen.
    #[default]
    Retry,
    Halt,
    Reboot,
}

/// `loader.console=`: how progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConsoleMode {
    /// A bar on a terminal, plain lines on a serial console.
    #[default]
    Auto,
    Plain,
    Bar,
    Json,
}

/// `loader.task=`: which task of the bundle to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TaskRequest {
    /// `complete` on a fresh disk, `upgrade` on a disk holding an install
    /// of the same firmware (see `task_choice`).
    #[default]
    Auto,
    /// A task name prefix, as fwup takes it: `complete`, `upgrade`, `provision`…
    Prefix(String),
    /// The bundle's `complete` task with the data partition left alone
    /// (see `task_choice`).
    Repair,
}

pub(crate) fn on_success(v: &str) -> Result<OnSuccess, String> {
    match v {
        "reboot" => Ok(OnSuccess::Reboot),
        "poweroff" => Ok(OnSuccess::Poweroff),
        "halt" => Ok(OnSuccess::Halt),
        _ => Err("expected reboot, poweroff or halt".into()),
    }
}

pub(crate) fn on_error(v: &str) -> Result<OnError, String> {
    match v {
        "retry" => Ok(OnError::Retry),
        "halt" => Ok(OnError::Halt),
        "reboot" => Ok(OnError::Reboot),
        _ => Err("expected retry, halt or reboot".into()),
    }
}

pub(crate) fn console(v: &str) -> Result<ConsoleMode, String> {
    match v {
        "auto" => Ok(ConsoleMode::Auto),
        "plain" => Ok(ConsoleMode::Plain),
        "bar" => Ok(ConsoleMode::Bar),
        "json" => Ok(ConsoleMode::Json),
        _ => Err("expected plain, bar, json or auto".into()),
    }
}

pub(crate) fn task(v: &str) -> Result<TaskRequest, String> {
    if v == "auto" {
        Ok(TaskRequest::Auto)
    } else if v == "repair" {
        Ok(TaskRequest::Repair)
    } else if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == ',') {
        Err("expected auto, repair or a task name prefix such as complete or upgrade".into())
    } else {
        Ok(TaskRequest::Prefix(v.to_string()))
    }
}

/// `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
pub(crate) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1 or 0".into()),
    }
}

/// `30` or `30s`, `500ms`, `2m`, `1h`.
pub(crate) fn duration(v: &str) -> Result<Duration, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration such as 30s or 2m".to_string())?;
    let scale = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown unit `{unit}` (use ms, s, m or h)")),
    };
    n.checked_mul(scale)
        .map(Duration::from_millis)
        .ok_or_else(|| "duration too long".into())
}

pub(crate) fn count(v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| "expected a whole number".into())
}

/// An `http://` or `https://` URL with a host. Whether plain HTTP is
/// acceptable is decided where the bundle is fetched.
pub(crate) fn url(v: &str) -> Result<String, String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or("expected an http:// or https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    Ok(v.to_string())
}

/// A bundle path in the initramfs or on a mounted filesystem.
pub(crate) fn absolute_path(v: &str) -> Result<std::path::PathBuf, String> {
    if v.starts_with('/') {
        Ok(v.into())
    } else {
        Err("expected an absolute path such as /root/install.fw".into())
    }
}

/// An Ed25519 public key as `fwup -g` writes it: base64 of 32 bytes.
pub(crate) fn pubkey(v: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_err(|_| "not base64 (expected the contents of fwup's .pub file)")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("decodes to {} bytes; an Ed25519 public key is 32", bytes.len()))
}

/// A SHA-256 digest as 64 hex digits.
pub(crate) fn sha256(v: &str) -> Result<[u8; 32], String> {
    let bad = || "expected 64 hex digits".to_string();
    if v.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(v.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// A CA certificate as base64 of its PEM text.
pub(crate) fn ca_pem(v: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_err(|_| "not base64 (expected base64 of a PEM certificate)")?;
    let pem = String::from_utf8(bytes).map_err(|_| "does not decode to PEM text")?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("decodes to text without a -----BEGIN CERTIFICATE----- block".into());
    }
    Ok(pem)
}

/// A shell-style variable name, as `${NAME}` in meta.conf can refer to it.
pub(crate) fn env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err("variable names are letters, digits and _, not starting with a digit".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(duration("5 min").is_err());
        assert!(duration("s").is_err());
    }

    #[test]
    fn urls_need_a_scheme_and_host() {
        assert!(url("https://example.test/a.fw").is_ok());
        assert!(url("http://10.0.2.2:8000/a.fw").is_ok());
        assert_eq!(url("ftp://x/a.fw"), Err("expected an http:// or https:// URL".into()));
        assert_eq!(url("https:///a.fw"), Err("the URL has no host".into()));
    }

    #[test]
    fn pubkeys_and_digests_are_checked() {
        let key = "A".repeat(43) + "=";
        assert_eq!(pubkey(&key), Ok([0u8; 32]));
        assert!(pubkey("AAAA").is_err_and(|e| e.contains("3 bytes")));
        assert!(pubkey("!!").is_err());
        let digest = "00ff".repeat(16);
        assert_eq!(sha256(&digest).map(|d| (d[0], d[1])), Ok((0, 255)));
        assert!(sha256(&"zz".repeat(32)).is_err());
        assert!(sha256("00").is_err());
    }

    #[test]
    fn env_names_follow_shell_rules() {
        assert!(env_name("NERVES_SERIAL_NUMBER").is_ok());
        assert!(env_name("_x1").is_ok());
        assert!(env_name("1X").is_err());
        assert!(env_name("A-B").is_err());
        assert!(env_name("").is_err());
    }
}
