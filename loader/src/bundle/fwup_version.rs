//! `require-fwup-version`: which fwup a bundle needs, and whether we are it.
//!
//! The loader implements fwup's apply semantics as of [`FWUP_COMPAT_VERSION`]
//! (the version the test corpus was measured against). fwup compares the
//! requirement with its own version using semver.c (`semver_lte`): numeric
//! major, minor, patch, then a pre-release sorts before the release; build
//! metadata (`+…`) is ignored. Missing minor/patch count as 0.

use std::cmp::Ordering;

/// The fwup release whose behaviour the loader reproduces.
pub const FWUP_COMPAT_VERSION: &str = "1.16.0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FwupVersionError {
    #[error("this bundle requires fwup {required} or newer; the loader is compatible with fwup {supported}")]
    TooNew { required: String, supported: &'static str },
    #[error("require-fwup-version `{0}` is not a version number like 1.2.3")]
    Invalid(String),
}

/// A parsed `X.Y.Z[-pre][+build]` version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwupVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated pre-release identifiers; empty for a release.
    pub pre: Vec<String>,
}

impl FwupVersion {
    pub fn parse(text: &str) -> Option<FwupVersion> {
        let without_build = text.split_once('+').map_or(text, |(v, _)| v);
        let (core, pre) = match without_build.split_once('-') {
            Some((core, pre)) => (core, pre.split('.').map(str::to_string).collect::<Vec<_>>()),
            None => (without_build, Vec::new()),
        };
        if pre
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return None;
        }
        let mut numbers = [0u64; 3];
        let mut parts = core.split('.');
        for slot in &mut numbers {
            match parts.next() {
                Some(part) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                    *slot = part.parse().ok()?;
                }
                Some(_) => return None,
                None => break,
            }
        }
        if parts.next().is_some() {
            return None;
        }
        let [major, minor, patch] = numbers;
        Some(FwupVersion {
            major,
            minor,
            patch,
            pre,
        })
    }
}

impl PartialOrd for FwupVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FwupVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

/// Semver pre-release order: numeric identifiers compare as numbers and
/// sort before alphanumeric ones; a shorter prefix sorts first.
fn compare_pre(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Accepts a bundle whose `require-fwup-version` is at most
/// [`FWUP_COMPAT_VERSION`].
pub fn check_fwup_version(required: &str) -> Result<(), FwupVersionError> {
    let wanted = FwupVersion::parse(required).ok_or_else(|| FwupVersionError::Invalid(required.to_string()))?;
    let ours = FwupVersion::parse(FWUP_COMPAT_VERSION).ok_or(FwupVersionError::Invalid(FWUP_COMPAT_VERSION.into()))?;
    if wanted <= ours {
        Ok(())
    } else {
        Err(FwupVersionError::TooNew {
            required: required.to_string(),
            supported: FWUP_COMPAT_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_and_equal_requirements_pass() {
        for v in [
            "0",
            "0.15.0",
            "1.4.0",
            "1.12.0",
            "1.16",
            "1.16.0",
            "1.16.0+build7",
            "1.16.0-rc1",
            "1",
        ] {
            assert_eq!(check_fwup_version(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn newer_requirements_name_both_versions() {
        for v in ["1.16.1", "1.17", "2", "1.17.0-rc1"] {
            let err = check_fwup_version(v).expect_err(v);
            let msg = err.to_string();
            assert!(msg.contains(v) && msg.contains("1.16.0"), "{msg}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        for v in ["", "x", "1.x", "1..2", "1.2.3.4", "-1", "1.2.3-", "1.2.3-a..b", " 1.2"] {
            assert_eq!(check_fwup_version(v), Err(FwupVersionError::Invalid(v.into())), "{v:?}");
        }
    }

    #[test]
    fn ordering_follows_semver() {
        let v = |s: &str| FwupVersion::parse(s).expect(s);
        assert!(v("1.9.9") < v("1.10.0"));
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
        assert!(v("1.0.0-beta.2") < v("1.0.0-beta.11"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("1.2").cmp(&v("1.2.0")), Ordering::Equal);
    }
}
