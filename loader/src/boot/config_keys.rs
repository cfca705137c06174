//! The `loader.*` key names, their normalisation and "did you mean".
//!
//! As the kernel does for its own parameters, `-` and `_` are the same in
//! key names (`loader.on-success` = `loader.on_success`); the NAME part of
//! `loader.env.NAME` is kept exactly.

/// Keys taking one value; a later value replaces an earlier one.
pub(crate) const SCALAR_KEYS: [&str; 27] = [
    "loader.url",
    "loader.bundle",
    "loader.disk",
    "loader.disk_wait",
    "loader.force",
    "loader.task",
    "loader.on_success",
    "loader.on_error",
    "loader.on_error_delay",
    "loader.on_error_retries",
    "loader.console",
    "loader.sha256",
    "loader.insecure",
    "loader.report",
    "loader.metadata",
    "loader.dry_run",
    "loader.allow_downgrade",
    "loader.net.carrier_timeout",
    "loader.net.dhcp_timeout",
    "loader.net.lease_grace",
    "loader.net.ipv6",
    "loader.net.ipv6_timeout",
    "loader.metadata_kind",
    "loader.metadata_insecure",
    "loader.report_timeout",
    "loader.proxy",
    "loader.log",
];

/// Keys that accumulate: every value counts.
pub(crate) const LIST_KEYS: [&str; 4] = ["loader.pubkey", "loader.ca", "loader.iface", "loader.dns"];

/// The family `loader.env.NAME`.
pub(crate) const ENV_PREFIX: &str = "loader.env.";

/// A key recognised as ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyName {
    /// One of [`SCALAR_KEYS`] or [`LIST_KEYS`], normalised.
    Known(&'static str),
    Env(String),
    /// The kernel's own `ip=`, passed through for the network setup.
    Ip,
}

/// Classifies a raw key. `Ok(None)`: not a loader key (a kernel parameter);
/// `Err(suggestion)`: a `loader.*` key we do not know.
pub(crate) fn classify(raw: &str) -> Result<Option<KeyName>, Option<String>> {
    if raw == "ip" {
        return Ok(Some(KeyName::Ip));
    }
    if let Some(name) = raw.strip_prefix(ENV_PREFIX) {
        return Ok(Some(KeyName::Env(name.to_string())));
    }
    let Some(rest) = raw.strip_prefix("loader.") else {
        return Ok(None);
    };
    let normalised = format!("loader.{}", rest.replace('-', "_"));
    SCALAR_KEYS
        .iter()
        .chain(LIST_KEYS.iter())
        .find(|k| **k == normalised)
        .map(|k| Some(KeyName::Known(k)))
        .ok_or_else(|| suggest(&normalised))
}

/// The known key closest to a misspelt one, if it is close enough to be a
/// typo (an edit distance of at most 2, or 3 for long keys).
pub(crate) fn suggest(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    if let Some(rest) = ["loader.environment.", "loader.envs.", "loader.env"]
        .iter()
        .find_map(|p| lower.strip_prefix(p).filter(|r| !r.is_empty()))
    {
        let name = &key[key.len() - rest.len()..];
        return Some(format!("{ENV_PREFIX}{}", name.trim_start_matches(['.', '_'])));
    }
    let candidates = SCALAR_KEYS.iter().chain(LIST_KEYS.iter()).map(|k| k.to_string());
    let extra = [ENV_PREFIX.to_string() + "NAME"];
    candidates
        .chain(extra)
        .map(|k| (edit_distance(&lower, &k), k))
        .filter(|(d, k)| *d <= if k.len() > 14 { 3 } else { 2 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_and_underscores_are_the_same_in_key_names() {
        assert_eq!(
            classify("loader.on-success"),
            Ok(Some(KeyName::Known("loader.on_success")))
        );
        assert_eq!(classify("loader.env.MY-VAR"), Ok(Some(KeyName::Env("MY-VAR".into()))));
        assert_eq!(classify("console"), Ok(None));
        assert_eq!(classify("ip"), Ok(Some(KeyName::Ip)));
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        assert_eq!(classify("loader.dsik"), Err(Some("loader.disk".into())));
        assert_eq!(classify("loader.pubkeys"), Err(Some("loader.pubkey".into())));
        assert_eq!(
            classify("loader.onerror_delay"),
            Err(Some("loader.on_error_delay".into()))
        );
        assert_eq!(classify("loader.envSERIAL"), Err(Some("loader.env.SERIAL".into())));
        assert_eq!(classify("loader.env_SERIAL"), Err(Some("loader.env.SERIAL".into())));
        assert_eq!(classify("loader.frobnicate"), Err(None));
        assert_eq!(
            classify("loader.net.dhcp-timeout"),
            Ok(Some(KeyName::Known("loader.net.dhcp_timeout")))
        );
        assert_eq!(
            classify("loader.net.dhcptimeout"),
            Err(Some("loader.net.dhcp_timeout".into()))
        );
        assert_eq!(
            classify("loader.net.vlan"),
            Err(None),
            "not read: reported, never silently ignored"
        );
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("disk", "disk"), 0);
        assert_eq!(edit_distance("dsik", "disk"), 2);
        assert_eq!(edit_distance("url", "urls"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
