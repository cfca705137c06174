//! The mount table (`/proc/self/mountinfo`), parsed from text.
//!
//! Mounts are matched to disks by device number, not by the source name:
//! the root filesystem often shows up as `/dev/root`, and a bind mount or an
//! LVM volume never names the disk at all.

use std::path::Path;

use super::DevNum;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub dev: DevNum,
    /// Where it is mounted, with the kernel's `\040`-style escapes undone.
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mountinfo line {line}: {problem}: `{text}`")]
pub struct MountinfoError {
    pub line: usize,
    pub problem: &'static str,
    pub text: String,
}

/// Parses mountinfo text (`36 35 98:0 /mnt1 /mnt2 rw … - ext3 /dev/root rw`).
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>, MountinfoError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem| MountinfoError {
            line: index + 1,
            problem,
            text: line.to_string(),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let dev = fields
            .get(2)
            .and_then(|d| DevNum::parse(d))
            .ok_or_else(|| bad("bad device"))?;
        let mount_point = fields.get(4).ok_or_else(|| bad("no mount point"))?;
        // Optional fields end at a lone "-", then fstype and source follow.
        let dash = fields
            .iter()
            .skip(6)
            .position(|f| *f == "-")
            .ok_or_else(|| bad("no `-`"))?;
        let fs_type = fields.get(7 + dash).ok_or_else(|| bad("no filesystem type"))?;
        let source = fields.get(8 + dash).copied().unwrap_or("none");
        entries.push(MountEntry {
            dev,
            mount_point: unescape(mount_point),
            fs_type: unescape(fs_type),
            source: unescape(source),
        });
    }
    Ok(entries)
}

/// The mount whose mount point contains `path` most closely: the
/// filesystem `path` lives on (when the mount table is the caller's).
/// Later mounts hide earlier ones on the same mount point.
pub fn mount_containing<'m>(mounts: &'m [MountEntry], path: &Path) -> Option<&'m MountEntry> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(index, m)| (Path::new(&m.mount_point).components().count(), *index))
        .map(|(_, m)| m)
}

/// Undoes the octal escapes mountinfo uses for space, tab, newline and `\`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/root rw
40 27 8:1 / /mnt/usb\\040stick rw,relatime - vfat /dev/sda1 rw
41 27 8:1 /sub /srv rw - vfat /dev/sda1 rw
";

    #[test]
    fn parses_device_numbers_mount_points_and_types() {
        let mounts = parse_mountinfo(SAMPLE).expect("valid sample");
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[1].dev, DevNum { major: 254, minor: 0 });
        assert_eq!(mounts[1].mount_point, "/");
        assert_eq!(mounts[1].fs_type, "ext4", "optional fields are skipped");
        assert_eq!(mounts[1].source, "/dev/root");
        assert_eq!(mounts[2].mount_point, "/mnt/usb stick", "\\040 is a space");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let err = parse_mountinfo("22 27 0:21 / /proc rw proc proc rw\n").expect_err("no dash");
        assert_eq!(err.line, 1);
        assert!(err.to_string().contains("no `-`"), "{err}");
        let err = parse_mountinfo("\n22 27 zz / /proc rw - proc proc rw\n").expect_err("bad dev");
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("bad device"), "{err}");
    }

    #[test]
    fn the_deepest_mount_point_contains_a_path() {
        let mounts = parse_mountinfo(SAMPLE).expect("valid sample");
        let on = |p: &str| mount_containing(&mounts, Path::new(p)).map(|m| m.mount_point.clone());
        assert_eq!(on("/usr/bin/loader").as_deref(), Some("/"));
        assert_eq!(on("/mnt/usb stick/loader").as_deref(), Some("/mnt/usb stick"));
        assert_eq!(on("/procfoo").as_deref(), Some("/"), "components, not string prefixes");
        assert_eq!(on("/proc/self/exe").as_deref(), Some("/proc"));
    }
}
