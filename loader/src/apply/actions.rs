//! Running actions against the overlay: the exhaustive `match` over every
//! fwup action.

use std::collections::HashMap;

use super::error::{ApplyError, BoxError};
use super::events::{Event, Reporter, Stage};
use super::exec;
use super::overlay::Overlay;
use super::ApplyOptions;
use crate::bundle::manifest::{Action, Manifest, Resource, Task};
use crate::formats::{fat, gpt, mbr, uboot_env, BLOCK_SIZE};

pub struct Runner<'a> {
    pub manifest: &'a Manifest,
    pub task: &'a Task,
    pub overlay: Overlay<'a>,
    pub opts: &'a ApplyOptions,
    reporter: &'a mut dyn Reporter,
    pub resource_bytes: u64,
    total_bytes: u64,
    /// One mount per FAT volume for the whole install, as fwup keeps its
    /// FatFs mounts: allocation hints carry over between actions.
    fats: HashMap<u64, fat::Fat>,
}

impl<'a> Runner<'a> {
    pub fn new(
        manifest: &'a Manifest,
        task: &'a Task,
        overlay: Overlay<'a>,
        opts: &'a ApplyOptions,
        reporter: &'a mut dyn Reporter,
    ) -> Self {
        let total_bytes = manifest.resources.iter().map(Resource::stored_len).sum();
        Runner {
            manifest,
            task,
            overlay,
            opts,
            reporter,
            resource_bytes: 0,
            total_bytes,
            fats: HashMap::new(),
        }
    }

    /// Streamed writes into U-Boot environments are held too, not only the
    /// ones made through `uboot_*` actions.
    pub fn protect_known_regions(&mut self) {
        for range in super::overlay::env_zones(self.manifest) {
            self.overlay.protect(range);
        }
    }

    pub fn stage(&mut self, stage: Stage) {
        self.reporter.event(&Event::Stage { stage });
    }

    pub fn event(&mut self, event: Event) {
        self.reporter.event(&event);
    }

    pub fn warn(&mut self, message: String) {
        self.reporter.event(&Event::Warning { message });
    }

    pub fn run_actions(&mut self, stage: Stage, actions: &[Action]) -> Result<(), ApplyError> {
        for action in actions {
            self.run_action(action).map_err(|e| match e {
                Failure::Apply(e) => e,
                Failure::Other(source) => ApplyError::Action {
                    stage,
                    action: describe(action),
                    source,
                },
            })?;
        }
        Ok(())
    }

    /// `on-error`: best effort, its own failures only reported.
    pub fn run_on_error(&mut self) {
        let actions = &self.task.on_error;
        for action in actions {
            if let Err(e) = self.run_action(action) {
                let msg = match e {
                    Failure::Apply(e) => e.to_string(),
                    Failure::Other(e) => e.to_string(),
                };
                self.warn(format!("on-error: {}: {msg}", describe(action)));
            }
        }
    }

    pub fn commit(self) -> Result<u64, ApplyError> {
        self.reporter.event(&Event::Stage { stage: Stage::Commit });
        let target = self.overlay.target().describe();
        let envs = self
            .manifest
            .uboot_envs
            .iter()
            .filter_map(|section| uboot_env::UbootEnvSpec::from_section(section).ok())
            .collect();
        let fats = self
            .fats
            .values()
            .map(|fat| fat.offset()..fat.offset() + u64::from(fat.total_sectors()) * BLOCK_SIZE)
            .collect();
        self.overlay
            .commit(envs, fats)
            .map_err(|source| ApplyError::Target { target, source })
    }

    fn run_action(&mut self, action: &Action) -> Result<(), Failure> {
        let m = &mut self.overlay;
        let fats = &mut self.fats;
        match action {
            Action::RawMemset {
                block_offset,
                block_count,
                value,
            } => {
                m.fill_streamed(block_offset * BLOCK_SIZE, block_count * BLOCK_SIZE, *value)?;
            }
            Action::MbrWrite { mbr: name } => {
                let section = self
                    .manifest
                    .mbrs
                    .iter()
                    .find(|s| s.title.as_deref() == Some(name.as_str()));
                let section = section.ok_or_else(|| other(format!("no mbr section named `{name}`")))?;
                let spec = mbr::MbrSpec::from_section(section).map_err(boxed)?;
                let blocks = m.target().size().map(|s| s / BLOCK_SIZE);
                for (offset, bytes) in mbr::encode(&spec, blocks).map_err(boxed)? {
                    m.write_table(offset, &bytes)?;
                }
            }
            Action::GptWrite { gpt: name } => {
                let section = self
                    .manifest
                    .gpts
                    .iter()
                    .find(|s| s.title.as_deref() == Some(name.as_str()));
                let section = section.ok_or_else(|| other(format!("no gpt section named `{name}`")))?;
                let spec = gpt::GptSpec::from_section(section).map_err(boxed)?;
                let blocks = m.target().size().map(|s| s / BLOCK_SIZE);
                for (offset, bytes) in gpt::encode(&spec, blocks).map_err(boxed)? {
                    m.write_table(offset, &bytes)?;
                }
            }
            Action::Trim {
                block_offset,
                block_count,
            } => {
                m.trim(block_offset * BLOCK_SIZE, block_count * BLOCK_SIZE)?;
            }
            Action::UbootClearenv { env } => {
                let spec = self.env_spec(env)?;
                uboot_env::clear(&mut self.overlay, &spec).map_err(boxed)?;
            }
            Action::UbootSetenv { env, name, value } => {
                let spec = self.env_spec(env)?;
                uboot_env::setenv(&mut self.overlay, &spec, name, value).map_err(boxed)?;
            }
            Action::UbootUnsetenv { env, name } => {
                let spec = self.env_spec(env)?;
                uboot_env::unsetenv(&mut self.overlay, &spec, name).map_err(boxed)?;
            }
            Action::UbootRecover { env } => {
                let spec = self.env_spec(env)?;
                uboot_env::recover(&mut self.overlay, &spec).map_err(boxed)?;
            }
            Action::FatMkfs {
                block_offset,
                block_count,
            } => {
                let fresh = fat::mkfs(m, block_offset * BLOCK_SIZE, *block_count).map_err(boxed)?;
                fats.insert(*block_offset, fresh);
            }
            Action::FatMkdir { block_offset, path } => {
                fat_vol(fats, m, *block_offset)?.mkdir(m, path).map_err(boxed)?
            }
            Action::FatRm {
                block_offset,
                path,
                must_exist,
            } => fat_vol(fats, m, *block_offset)?
                .rm(m, path, *must_exist)
                .map_err(boxed)?,
            Action::FatMv {
                block_offset,
                from,
                to,
                force,
            } => fat_vol(fats, m, *block_offset)?
                .mv(m, from, to, *force)
                .map_err(boxed)?,
            Action::FatCp {
                from_offset,
                from,
                to_offset,
                to,
            } => {
                if from_offset == to_offset {
                    fat_vol(fats, m, *from_offset)?.cp(m, from, to).map_err(boxed)?
                } else {
                    let mut src = fat_vol(fats, m, *from_offset)?.clone();
                    let mut dst = fat_vol(fats, m, *to_offset)?.clone();
                    fat::copy_between(m, &mut src, from, &mut dst, to).map_err(boxed)?;
                    fats.insert(*from_offset, src);
                    fats.insert(*to_offset, dst);
                }
            }
            Action::FatAttrib {
                block_offset,
                path,
                attrib,
            } => {
                let attributes: fat::Attributes = attrib.parse().map_err(boxed)?;
                fat_vol(fats, m, *block_offset)?
                    .attrib(m, path, attributes)
                    .map_err(boxed)?
            }
            Action::FatTouch { block_offset, path } => {
                fat_vol(fats, m, *block_offset)?.touch(m, path).map_err(boxed)?
            }
            Action::FatSetlabel { block_offset, label } => {
                fat_vol(fats, m, *block_offset)?.set_label(m, label).map_err(boxed)?
            }
            Action::Info { message } => {
                self.reporter.event(&Event::Info {
                    message: message.clone(),
                });
            }
            Action::Error { message } => return Err(Failure::Apply(ApplyError::Requested(message.clone()))),
            Action::Execute { command } => {
                if !self.opts.allow_unsafe {
                    return Err(Failure::Apply(ApplyError::NeedsUnsafe { what: "execute".into() }));
                }
                if !exec::run_shell(command)? {
                    return Err(other(format!("`{command}` failed")));
                }
            }
            Action::RawWrite { .. } | Action::FatWrite { .. } | Action::PathWrite { .. } | Action::PipeWrite { .. } => {
                return Err(other("only usable in on-resource".into()));
            }
            // `validate_task` refuses a chosen task that has one outside
            // `on-error`; in `on-error` it stops the handler, as in fwup.
            Action::Unusable { problem, .. } => return Err(other(problem.clone())),
        }
        Ok(())
    }

    fn env_spec(&self, name: &str) -> Result<uboot_env::UbootEnvSpec, Failure> {
        let section = self
            .manifest
            .uboot_envs
            .iter()
            .find(|s| s.title.as_deref() == Some(name));
        let section = section.ok_or_else(|| other(format!("no uboot-environment named `{name}`")))?;
        uboot_env::UbootEnvSpec::from_section(section).map_err(boxed)
    }

    /// Splits the runner for a resource's data phase: the sink borrows the
    /// overlay while progress goes to the reporter.
    pub fn data_phase(&mut self) -> (&mut Overlay<'a>, &mut HashMap<u64, fat::Fat>, Progress<'_>) {
        let progress = Progress {
            reporter: &mut *self.reporter,
            done: &mut self.resource_bytes,
            total: self.total_bytes,
        };
        (&mut self.overlay, &mut self.fats, progress)
    }
}

/// Progress counting for the data phase.
pub struct Progress<'r> {
    reporter: &'r mut dyn Reporter,
    done: &'r mut u64,
    total: u64,
}

impl Progress<'_> {
    pub fn add(&mut self, bytes: u64) {
        *self.done += bytes;
        self.reporter.event(&Event::Progress {
            done: *self.done,
            total: self.total,
        });
    }
}

/// The mounted volume at `block_offset`, mounting it on first use.
fn fat_vol<'f>(
    fats: &'f mut HashMap<u64, fat::Fat>,
    m: &mut Overlay<'_>,
    block_offset: u64,
) -> Result<&'f mut fat::Fat, Failure> {
    match fats.entry(block_offset) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            Ok(e.insert(fat::Fat::open(m, block_offset * BLOCK_SIZE).map_err(boxed)?))
        }
    }
}

/// An action failed: either with a ready-made engine error or a component
/// error that gets the stage and action name attached.
pub enum Failure {
    Apply(ApplyError),
    Other(BoxError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(Box::new(e))
    }
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Failure {
    Failure::Other(Box::new(e))
}

fn other(msg: String) -> Failure {
    Failure::Other(msg.into())
}

/// `fat_write(2048, "/boot/grub/grubenv")` style, for messages.
pub fn describe(action: &Action) -> String {
    use Action::*;
    match action {
        RawWrite { block_offset, .. } => format!("raw_write({block_offset})"),
        RawMemset {
            block_offset,
            block_count,
            value,
        } => format!("raw_memset({block_offset}, {block_count}, {value:#x})"),
        MbrWrite { mbr } => format!("mbr_write({mbr})"),
        GptWrite { gpt } => format!("gpt_write({gpt})"),
        Trim {
            block_offset,
            block_count,
        } => format!("trim({block_offset}, {block_count})"),
        UbootClearenv { env } => format!("uboot_clearenv({env})"),
        UbootSetenv { env, name, .. } => format!("uboot_setenv({env}, {name})"),
        UbootUnsetenv { env, name } => format!("uboot_unsetenv({env}, {name})"),
        UbootRecover { env } => format!("uboot_recover({env})"),
        FatMkfs {
            block_offset,
            block_count,
        } => format!("fat_mkfs({block_offset}, {block_count})"),
        FatWrite { block_offset, path } => format!("fat_write({block_offset}, \"{path}\")"),
        FatMkdir { block_offset, path } => format!("fat_mkdir({block_offset}, \"{path}\")"),
        FatRm {
            block_offset,
            path,
            must_exist,
        } => {
            format!(
                "fat_rm{}({block_offset}, \"{path}\")",
                if *must_exist { "!" } else { "" }
            )
        }
        FatMv {
            block_offset,
            from,
            to,
            force,
        } => {
            format!(
                "fat_mv{}({block_offset}, \"{from}\", \"{to}\")",
                if *force { "!" } else { "" }
            )
        }
        FatCp {
            from_offset,
            from,
            to_offset,
            to,
        } => format!("fat_cp({from_offset}, \"{from}\", {to_offset}, \"{to}\")"),
        FatAttrib {
            block_offset,
            path,
            attrib,
        } => format!("fat_attrib({block_offset}, \"{path}\", \"{attrib}\")"),
        FatTouch { block_offset, path } => format!("fat_touch({block_offset}, \"{path}\")"),
        FatSetlabel { block_offset, label } => format!("fat_setlabel({block_offset}, \"{label}\")"),
        Info { .. } => "info".into(),
        Error { .. } => "error".into(),
        Execute { command } => format!("execute(\"{command}\")"),
        PathWrite { path } => format!("path_write(\"{path}\")"),
        PipeWrite { command } => format!("pipe_write(\"{command}\")"),
        Unusable { action, .. } => format!("{action}(…)"),
    }
}
