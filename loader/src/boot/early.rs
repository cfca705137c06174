//! The early root filesystem as data: what PID 1 mounts and creates before
//! anything else, each step printable so the console shows what happened.
//!
//! The plan runs against a root directory given as a parameter. Real
//! mounts happen only in [`RunMode::Apply`], which the caller picks when
//! it is PID 1; tests run the plan in [`RunMode::DryRun`] or
//! [`RunMode::CreateOnly`] against temp dirs (or apply a tmpfs-only plan
//! to a temp dir as root).

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

/// When a step applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only when this path exists under the root (after earlier steps):
    /// efivarfs only on a UEFI boot.
    PathExists(&'static str),
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyStep {
    Dir {
        path: &'static str,
        mode: u32,
    },
    Mount {
        fstype: &'static str,
        target: &'static str,
        flags: MsFlags,
        data: Option<&'static str>,
        when: Condition,
    },
    Symlink {
        link: &'static str,
        target: &'static str,
    },
}

impl fmt::Display for EarlyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EarlyStep::Dir { path, mode } => write!(f, "mkdir {path} ({mode:04o})"),
            EarlyStep::Mount {
                fstype,
                target,
                data,
                when,
                ..
            } => {
                write!(f, "mount {fstype} on {target}")?;
                if let Some(data) = data {
                    write!(f, " ({data})")?;
                }
                if let Condition::PathExists(path) = when {
                    write!(f, " if {path} exists")?;
                }
                Ok(())
            }
            EarlyStep::Symlink { link, target } => write!(f, "symlink {link} -> {target}"),
        }
    }
}

/// The ordered steps; `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyPlan(pub Vec<EarlyStep>);

impl fmt::Display for EarlyPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            writeln!(f, "{:>2}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// What an initramfs `/init` needs: device nodes (devtmpfs), `/proc`,
/// `/sys`, writable `/run` and `/tmp`, EFI variables on UEFI machines, and
/// the `/dev/fd`, `/dev/std*` links devtmpfs does not make.
pub fn early_plan() -> EarlyPlan {
    let secure = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mount = |fstype, target, flags, data| EarlyStep::Mount {
        fstype,
        target,
        flags,
        data,
        when: Condition::Always,
    };
    EarlyPlan(vec![
        EarlyStep::Dir {
            path: "/dev",
            mode: 0o755,
        },
        EarlyStep::Dir {
            path: "/proc",
            mode: 0o555,
        },
        EarlyStep::Dir {
            path: "/sys",
            mode: 0o555,
        },
        EarlyStep::Dir {
            path: "/run",
            mode: 0o755,
        },
        EarlyStep::Dir {
            path: "/tmp",
            mode: 0o1777,
        },
        EarlyStep::Dir {
            path: "/etc",
            mode: 0o755,
        },
        mount("devtmpfs", "/dev", MsFlags::MS_NOSUID, Some("mode=0755")),
        mount("proc", "/proc", secure, None),
        mount("sysfs", "/sys", secure, None),
        mount(
            "tmpfs",
            "/run",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        mount(
            "tmpfs",
            "/tmp",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        EarlyStep::Mount {
            fstype: "efivarfs",
            target: "/sys/firmware/efi/efivars",
            flags: secure,
            data: None,
            when: Condition::PathExists("/sys/firmware/efi/efivars"),
        },
        EarlyStep::Symlink {
            link: "/dev/fd",
            target: "/proc/self/fd",
        },
        EarlyStep::Symlink {
            link: "/dev/stdin",
            target: "/proc/self/fd/0",
        },
        EarlyStep::Symlink {
            link: "/dev/stdout",
            target: "/proc/self/fd/1",
        },
        EarlyStep::Symlink {
            link: "/dev/stderr",
            target: "/proc/self/fd/2",
        },
    ])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Touch nothing; report what would be done.
    DryRun,
    /// Create directories and links, skip mounts (not PID 1).
    CreateOnly,
    /// Everything, mounts included (PID 1).
    Apply,
}

/// How a step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The directory, link or mount was already there.
    AlreadyThere,
    /// Not applicable or not in this mode, with the reason.
    Skipped(&'static str),
    /// Dry run: would be done.
    Planned,
    Failed(String),
}

/// A step and how it went; `Display` gives a console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub step: EarlyStep,
    pub outcome: Outcome,
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Done => write!(f, "{}: done", self.step),
            Outcome::AlreadyThere => write!(f, "{}: already there", self.step),
            Outcome::Skipped(why) => write!(f, "{}: skipped ({why})", self.step),
            Outcome::Planned => write!(f, "{}: would run", self.step),
            Outcome::Failed(e) => write!(f, "{}: FAILED: {e}", self.step),
        }
    }
}

/// Runs every step under `root`, going on after a failure (PID 1 must get
/// as far as it can and then report); check the reports for `Failed`.
pub fn run_plan(root: &Path, plan: &EarlyPlan, mode: RunMode) -> Vec<StepReport> {
    plan.0
        .iter()
        .map(|step| StepReport {
            step: step.clone(),
            outcome: run_step(root, step, mode),
        })
        .collect()
}

fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn run_step(root: &Path, step: &EarlyStep, mode: RunMode) -> Outcome {
    let result = match step {
        EarlyStep::Dir { path, mode: perms } => make_dir(&under(root, path), *perms, mode),
        EarlyStep::Symlink { link, target } => make_link(&under(root, link), target, mode),
        EarlyStep::Mount {
            fstype,
            target,
            flags,
            data,
            when,
        } => {
            if let Condition::PathExists(path) = when {
                if !under(root, path).exists() {
                    return Outcome::Skipped("not present");
                }
            }
            mount(&under(root, target), fstype, *flags, *data, mode)
        }
    };
    result.unwrap_or_else(|e| Outcome::Failed(e.to_string()))
}

fn make_dir(path: &Path, perms: u32, mode: RunMode) -> io::Result<Outcome> {
    if path.is_dir() {
        return Ok(Outcome::AlreadyThere);
    }
    if mode == RunMode::DryRun {
        return Ok(Outcome::Planned);
    }
    fs::DirBuilder::new().recursive(true).mode(perms).create(path)?;
    // The umask may have cleared bits (the sticky /tmp needs all of them).
    fs::set_permissions(path, fs::Permissions::from_mode(perms))?;
    Ok(Outcome::Done)
}

fn make_link(link: &Path, target: &str, mode: RunMode) -> io::Result<Outcome> {
    if fs::symlink_metadata(link).is_ok() {
        return Ok(Outcome::AlreadyThere);
    }
    if mode == RunMode::DryRun {
        return Ok(Outcome::Planned);
    }
    std::os::unix::fs::symlink(target, link)?;
    Ok(Outcome::Done)
}

fn mount(target: &Path, fstype: &str, flags: MsFlags, data: Option<&str>, mode: RunMode) -> io::Result<Outcome> {
    match mode {
        RunMode::DryRun => return Ok(Outcome::Planned),
        RunMode::CreateOnly => return Ok(Outcome::Skipped("mounts only as PID 1")),
        RunMode::Apply => {}
    }
    if is_mount_point(target)? {
        return Ok(Outcome::AlreadyThere);
    }
    nix::mount::mount(Some(fstype), target, Some(fstype), flags, data).map_err(io::Error::from)?;
    Ok(Outcome::Done)
}

/// A directory is a mount point when it sits on another device than its
/// parent (the classic test; needs no `/proc`, which may not be mounted
/// yet).
fn is_mount_point(path: &Path) -> io::Result<bool> {
    let own = fs::metadata(path)?;
    let parent = fs::metadata(path.join(".."))?;
    Ok(own.dev() != parent.dev() || own.ino() == parent.ino())
}

#[cfg(test)]
#[path = "early_tests.rs"]
mod tests;
