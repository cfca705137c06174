//! The `loader.disk=` selector.
//!
//! | form | matches |
//! |---|---|
//! | `/dev/nvme0n1`, `nvme0n1` | that disk (resolve `/dev/disk/by-id/…` links first) |
//! | `serial:S3X…` | the serial number, exactly (case-insensitive) |
//! | `wwn:0x5000c500a1b2c3d4` | the WWN/EUI; `0x`, `naa.`, `eui.` prefixes are ignored |
//! | `model:samsung` | a substring of the model, case-insensitive |
//! | `size:>=100G`, `size:<=2T` | the size bound (`K`/`M`/`G`/`T`, powers of 1024) |
//! | `largest`, `smallest` | the largest / smallest eligible disk |

use std::fmt;
use std::path::PathBuf;

use super::Disk;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskSelector {
    Path(PathBuf),
    Serial(String),
    Wwn(String),
    Model(String),
    SizeAtLeast(u64),
    SizeAtMost(u64),
    Largest,
    Smallest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("loader.disk={text}: {problem}")]
pub struct SelectorError {
    pub text: String,
    pub problem: String,
}

impl DiskSelector {
    /// Parses the value of `loader.disk=`.
    pub fn parse(text: &str) -> Result<DiskSelector, SelectorError> {
        let bad = |problem: &str| SelectorError {
            text: text.into(),
            problem: problem.into(),
        };
        let nonempty = |value: &str, what: &str| {
            let value = value.trim();
            if value.is_empty() {
                Err(bad(&format!("empty {what}")))
            } else {
                Ok(value.to_string())
            }
        };
        if let Some(serial) = text.strip_prefix("serial:") {
            return Ok(DiskSelector::Serial(nonempty(serial, "serial number")?));
        }
        if let Some(wwn) = text.strip_prefix("wwn:") {
            return Ok(DiskSelector::Wwn(nonempty(wwn, "WWN")?));
        }
        if let Some(model) = text.strip_prefix("model:") {
            return Ok(DiskSelector::Model(nonempty(model, "model")?));
        }
        if let Some(bound) = text.strip_prefix("size:") {
            let size = |n: &str| parse_size(n).map_err(|p| bad(&p));
            return match (bound.strip_prefix(">="), bound.strip_prefix("<=")) {
                (Some(n), _) => Ok(DiskSelector::SizeAtLeast(size(n)?)),
                (_, Some(n)) => Ok(DiskSelector::SizeAtMost(size(n)?)),
                _ => Err(bad("expected size:>=N or size:<=N, e.g. size:>=100G")),
            };
        }
        match text {
            "largest" => Ok(DiskSelector::Largest),
            "smallest" => Ok(DiskSelector::Smallest),
            "" => Err(bad("empty selector")),
            path if path.starts_with('/') => Ok(DiskSelector::Path(path.into())),
            name if !name.contains(['/', ':']) && !name.contains(char::is_whitespace) => {
                Ok(DiskSelector::Path(PathBuf::from("/dev").join(name)))
            }
            _ => Err(bad(
                "expected a path (/dev/vda), serial:, wwn:, model:, size:>=N, size:<=N, \
                 largest or smallest",
            )),
        }
    }

    /// Whether the selector names a single disk by identity (path, serial,
    /// WWN), so waiting can stop as soon as it appears instead of waiting
    /// for the kernel's storage probing to finish.
    pub fn identifies_one(&self) -> bool {
        matches!(
            self,
            DiskSelector::Path(_) | DiskSelector::Serial(_) | DiskSelector::Wwn(_)
        )
    }

    /// Whether the selector names the device itself, so that loop and other
    /// virtual devices should be discovered too.
    pub fn names_device(&self) -> bool {
        matches!(self, DiskSelector::Path(_))
    }

    /// Whether `disk` matches a per-disk criterion. `largest`/`smallest`
    /// match every disk here; they are decided among the eligible ones.
    pub fn matches(&self, disk: &Disk) -> bool {
        match self {
            DiskSelector::Path(path) => {
                let name = path.strip_prefix("/dev").unwrap_or(path);
                name.as_os_str() == disk.name.as_str()
            }
            DiskSelector::Serial(serial) => disk.serial.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(serial)),
            DiskSelector::Wwn(wwn) => disk
                .wwn
                .as_deref()
                .is_some_and(|w| normalize_wwn(w) == normalize_wwn(wwn)),
            DiskSelector::Model(model) => disk
                .model
                .as_deref()
                .is_some_and(|m| m.to_lowercase().contains(&model.to_lowercase())),
            DiskSelector::SizeAtLeast(min) => disk.size >= *min,
            DiskSelector::SizeAtMost(max) => disk.size <= *max,
            DiskSelector::Largest | DiskSelector::Smallest => true,
        }
    }
}

impl fmt::Display for DiskSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskSelector::Path(p) => write!(f, "{}", p.display()),
            DiskSelector::Serial(s) => write!(f, "serial:{s}"),
            DiskSelector::Wwn(w) => write!(f, "wwn:{w}"),
            DiskSelector::Model(m) => write!(f, "model:{m}"),
            DiskSelector::SizeAtLeast(n) => write!(f, "size:>={n}"),
            DiskSelector::SizeAtMost(n) => write!(f, "size:<={n}"),
            DiskSelector::Largest => f.write_str("largest"),
            DiskSelector::Smallest => f.write_str("smallest"),
        }
    }
}

/// `naa.5000C500…`, `0x5000c500…` and `5000c500…` are the same WWN.
fn normalize_wwn(wwn: &str) -> String {
    let lower = wwn.trim().to_ascii_lowercase();
    let bare = ["0x", "naa.", "eui.", "wwn-0x"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(&lower);
    bare.to_string()
}

/// Parses `500G`, `1.5T`, `4096`, `512M`, `20GiB`: bytes, or `K`/`M`/`G`/`T`
/// (optionally followed by `B` or `iB`), all powers of 1024 as QEMU and
/// `lsblk` use them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown size unit `{unit}` (use K, M, G or T)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let p = |t: &str| DiskSelector::parse(t).expect(t);
        assert_eq!(p("/dev/nvme0n1"), DiskSelector::Path("/dev/nvme0n1".into()));
        assert_eq!(p("vda"), DiskSelector::Path("/dev/vda".into()));
        assert_eq!(p("serial:ABC 123"), DiskSelector::Serial("ABC 123".into()));
        assert_eq!(
            p("wwn:0x5000c500a1b2c3d4"),
            DiskSelector::Wwn("0x5000c500a1b2c3d4".into())
        );
        assert_eq!(p("model:Samsung"), DiskSelector::Model("Samsung".into()));
        assert_eq!(p("size:>=100G"), DiskSelector::SizeAtLeast(100 << 30));
        assert_eq!(p("size:<=1.5T"), DiskSelector::SizeAtMost(3 << 39));
        assert_eq!(p("largest"), DiskSelector::Largest);
        assert_eq!(p("smallest"), DiskSelector::Smallest);
    }

    #[test]
    fn bad_selectors_name_the_value_and_the_problem() {
        for (text, problem) in [
            ("serial:", "empty serial"),
            ("size:100G", "expected size:>=N"),
            ("size:>=12X", "unknown size unit `X`"),
            ("size:>=", "is not a size"),
            ("bogus:thing", "expected a path"),
            ("", "empty selector"),
        ] {
            let err = DiskSelector::parse(text).expect_err(text).to_string();
            assert!(err.starts_with(&format!("loader.disk={text}:")), "{err}");
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("2tb"), Ok(2 << 40));
        assert!(parse_size("1e3").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn wwn_matches_whatever_prefix_the_operator_copied() {
        let disk = Disk {
            wwn: Some("naa.5000C500A1B2C3D4".into()),
            ..crate::boot::disks::select::tests::disk("sda", 1 << 30)
        };
        for text in [
            "wwn:0x5000c500a1b2c3d4",
            "wwn:naa.5000c500a1b2c3d4",
            "wwn:5000C500A1B2C3D4",
        ] {
            assert!(DiskSelector::parse(text).expect(text).matches(&disk), "{text}");
        }
        assert!(!DiskSelector::parse("wwn:5000c500a1b2c3d5").expect("wwn").matches(&disk));
    }
}
