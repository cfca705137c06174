//! The passes that install, per mode, after the first look and the plan.
//! Each keeps the rule of its mode (see the module docs of `install_mode`).

use std::io::Read;
use std::sync::Arc;

use super::look::{check_pin, received, Look, Settings, Source, State};
use super::plan::Plan;
use super::spool::Spool;
use super::switch_off::switch_off;
use super::Mode;
use crate::apply::restart::Restarts;
use crate::apply::{self, events::Silent, ApplyError, ApplyOptions, Event, Reporter, Stage, Summary};
use crate::bundle::manifest::Manifest;
use crate::bundle::open::BundleHead;
use crate::source::StatsHandle;
use crate::target::Target;

/// Opens the bundle again from its first byte (a new download).
pub type Reopen<'a> = dyn FnMut() -> Result<Source, ApplyError> + 'a;

/// Installs `look`'s bundle onto `target` as `plan` says. A failure that
/// asks to start over from byte 0 (the file changed on the server) is
/// returned while nothing has been switched off, for the caller to start
/// the whole install again; after the switch-off of two-pass mode, only
/// the second pass starts over, at most as often as `restarts` allows.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    look: Look,
    plan: &Plan,
    target: &mut dyn Target,
    settings: &Settings,
    opts: &ApplyOptions,
    reopen: &mut Reopen<'_>,
    restarts: &mut Restarts,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ApplyError> {
    let mut opts = opts.clone();
    opts.task = plan.task.clone();
    let Look { state, length } = look;
    let (mut summary, stats) = match (plan.mode, state) {
        (
            Mode::OnePass,
            State::Stream {
                opened,
                tap,
                check,
                stats,
            },
        ) => {
            tap.stop();
            opts.before_commit = check;
            (apply::apply_opened(*opened, target, &opts, reporter)?, stats)
        }
        (Mode::OnePass, State::Held { spool, head, .. }) => {
            opts.expected_head = Some(Arc::new(head));
            let opened = apply::open_bundle(spool.reader(), &opts, &mut Silent)?;
            (apply::apply_opened(opened, target, &opts, reporter)?, None)
        }
        (Mode::OnePass, State::Proven { head, .. }) => {
            let pass = Pass::new(opts, head, Vec::new());
            pass.install(target, reopen, restarts, reporter)?
        }
        (Mode::Memory, State::Stream { opened, tap, check, .. }) if settings.origin.immutable => {
            // The injected bundle: verified where it lies, then read again.
            tap.stop();
            reporter.event(&Event::Stage {
                stage: Stage::VerifyAll,
            });
            let head = opened.head.clone();
            apply::verify_all(*opened, reporter)?;
            check_pin(&check)?;
            opts.expected_head = Some(Arc::new(head));
            opts.hashes_proven = true;
            let opened = apply::open_bundle(reopen()?.reader, &opts, &mut Silent)?;
            (apply::apply_opened(opened, target, &opts, reporter)?, None)
        }
        (Mode::Memory, State::Stream { opened, tap, check, .. }) => {
            reporter.event(&Event::Stage { stage: Stage::Download });
            let head = opened.head.clone();
            let mut rest = opened.into_source();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match rest.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        if let Some(total) = length {
                            reporter.event(&Event::Progress {
                                done: tap.copied(),
                                total,
                            });
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ApplyError::reading(&e)),
                }
            }
            let spool = tap.take().map_err(|e| ApplyError::InstallMode(e.to_string()))?;
            check_pin(&check)?;
            (from_memory(Arc::new(spool), head, opts, target, reporter)?, None)
        }
        (Mode::Memory, State::Held { spool, head, .. }) => (from_memory(spool, head, opts, target, reporter)?, None),
        (Mode::TwoPass, State::Stream { opened, tap, check, .. }) => {
            tap.stop();
            reporter.event(&Event::Stage {
                stage: Stage::VerifyAll,
            });
            let head = opened.head.clone();
            let manifest = opened.manifest.clone();
            apply::verify_all(*opened, reporter)?;
            check_pin(&check)?;
            let saved = switch_off_reported(target, &manifest, reporter)?;
            Pass::new(opts, head, saved).install(target, reopen, restarts, reporter)?
        }
        (Mode::TwoPass, State::Proven { checked, head }) => {
            let saved = switch_off_reported(target, &checked.manifest, reporter)?;
            Pass::new(opts, head, saved).install(target, reopen, restarts, reporter)?
        }
        (mode, _) => {
            return Err(ApplyError::InstallMode(format!(
                "internal: {mode} mode cannot follow this first look"
            )))
        }
    };
    restarts.record(&mut summary, stats.as_ref().map_or(0, |s| s.snapshot().refetched));
    Ok(summary)
}

/// Memory mode: every resource verified in memory, then installed from the
/// same bytes without hashing them again.
fn from_memory(
    spool: Arc<Spool>,
    head: BundleHead,
    mut opts: ApplyOptions,
    target: &mut dyn Target,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ApplyError> {
    reporter.event(&Event::Stage {
        stage: Stage::VerifyAll,
    });
    opts.expected_head = Some(Arc::new(head));
    let opened = apply::open_bundle(spool.reader(), &opts, &mut Silent)?;
    apply::verify_all(opened, reporter)?;
    opts.hashes_proven = true;
    let opened = apply::open_bundle(spool.reader(), &opts, &mut Silent)?;
    apply::apply_opened(opened, target, &opts, reporter)
}

fn switch_off_reported(
    target: &mut dyn Target,
    manifest: &Manifest,
    reporter: &mut dyn Reporter,
) -> Result<Vec<(u64, Vec<u8>)>, ApplyError> {
    reporter.event(&Event::Stage {
        stage: Stage::SwitchOff,
    });
    let off = switch_off(target, manifest)?;
    reporter.event(&Event::Info {
        message: format!(
            "switched off {} and synced: from here a failed install leaves a disk that boots nothing",
            off.described
        ),
    });
    Ok(off.saved)
}

/// A pass over a new download of a bundle whose head an earlier pass
/// verified: refused unless the head is byte-identical, every resource
/// hashed again, the pin checked before the commit.
struct Pass {
    opts: ApplyOptions,
}

impl Pass {
    fn new(mut opts: ApplyOptions, head: BundleHead, preload: Vec<(u64, Vec<u8>)>) -> Pass {
        opts.expected_head = Some(Arc::new(head));
        opts.preload = preload;
        Pass { opts }
    }

    fn install(
        mut self,
        target: &mut dyn Target,
        reopen: &mut Reopen<'_>,
        restarts: &mut Restarts,
        reporter: &mut dyn Reporter,
    ) -> Result<(Summary, Option<StatsHandle>), ApplyError> {
        loop {
            let source = reopen()?;
            let stats = source.stats.clone();
            self.opts.before_commit = source.check;
            let result = apply::open_bundle(source.reader, &self.opts, &mut Silent)
                .and_then(|opened| apply::apply_opened(opened, target, &self.opts, reporter));
            match result {
                Ok(summary) => return Ok((summary, stats)),
                Err(e) => restarts.after_failure(e, received(&stats), reporter)?,
            }
        }
    }
}

/// A whole install onto a known target with the task prefix in `opts`
/// (`loader apply`): first look, plan, passes. `first` is the bundle
/// opened once already; `reopen` opens it again, for a restart from byte 0
/// and for the passes that read it twice.
pub fn install(
    first: Source,
    reopen: &mut Reopen<'_>,
    target: &mut dyn Target,
    settings: &Settings,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ApplyError> {
    let mut restarts = Restarts::default();
    let mut source = first;
    loop {
        let stats = source.stats.clone();
        let attempt = super::first_look(source, settings, opts, reporter).and_then(|look| {
            let plan = super::plan(&look, target, &opts.task, opts.allow_unsafe, settings, reporter)?;
            finish(look, &plan, target, settings, opts, reopen, &mut restarts, reporter)
        });
        match attempt {
            Ok(summary) => return Ok(summary),
            Err(e) => restarts.after_failure(e, received(&stats), reporter)?,
        }
        source = reopen()?;
    }
}
