//! The first look at a bundle: its head (meta.conf and signature), which
//! the caller needs to choose the disk and the task. With only a SHA-256
//! pin, the whole bundle first: into memory when it fits, else through a
//! network pass that hashes it, before a byte of meta.conf is parsed.

use std::io::Read;
use std::sync::Arc;

use super::spool::{Spool, Tap, TapHandle};
use super::{Budget, ModeRequest};
use crate::apply::CommitCheck;
use crate::apply::{self, ApplyError, ApplyOptions, CheckedHead, Event, OpenedBundle, Reporter, Stage};
use crate::bundle::manifest::Manifest;
use crate::bundle::open::{read_head, BundleHead};
use crate::bundle::zip::ZipWalker;
use crate::source::policy::Fetched;
use crate::source::StatsHandle;

/// A bundle source opened at its first byte.
pub struct Source {
    pub reader: Box<dyn Read + Send>,
    /// Total length, when known.
    pub length: Option<u64>,
    /// Counters of an HTTP(S) transfer, for restarts.
    pub stats: Option<StatsHandle>,
    /// The whole-bundle SHA-256 pin, checked over what was read so far.
    pub check: Option<CommitCheck>,
}

impl From<Fetched> for Source {
    fn from(fetched: Fetched) -> Self {
        Source {
            reader: fetched.source.reader,
            length: fetched.source.length,
            stats: fetched.source.http_stats,
            check: fetched.check,
        }
    }
}

pub(super) fn check_pin(check: &Option<CommitCheck>) -> Result<(), ApplyError> {
    match check {
        Some(check) => check().map_err(ApplyError::Corrupt),
        None => Ok(()),
    }
}

pub(super) fn received(stats: &Option<StatsHandle>) -> u64 {
    stats.as_ref().map_or(0, |s| s.snapshot().received)
}

/// What kind of source the bundle comes from, for the choice of mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// It can be opened again from its first byte (not standard input).
    pub rereadable: bool,
    /// Reading it again costs no download (a file): verifying first is
    /// cheap, so a local bundle is never streamed over a working system.
    pub local: bool,
    /// Its bytes cannot change between two opens, so it counts as held in
    /// memory already: the bundle iPXE injected, read by PID 1 (nothing
    /// else runs that could write it).
    pub immutable: bool,
}

impl Origin {
    pub const NETWORK: Origin = Origin {
        rereadable: true,
        local: false,
        immutable: false,
    };
    pub const STDIN: Origin = Origin {
        rereadable: false,
        local: false,
        immutable: false,
    };

    pub fn file(immutable: bool) -> Origin {
        Origin {
            rereadable: true,
            local: true,
            immutable,
        }
    }
}

/// What decides the mode besides the disk.
#[derive(Debug, Clone)]
pub struct Settings {
    pub request: ModeRequest,
    pub budget: Budget,
    /// A SHA-256 pin is the only thing vouching for the bundle (no key):
    /// nothing of meta.conf is parsed before the pin matched.
    pub pin_only: bool,
    pub origin: Origin,
}

/// The bundle after the first look.
pub struct Look {
    pub(super) state: State,
    pub(super) length: Option<u64>,
}

pub(super) enum State {
    /// The head was read from the stream, which waits after it; the tap
    /// has copied what was read so far, for memory mode.
    Stream {
        opened: Box<OpenedBundle<Tap<Box<dyn Read + Send>>>>,
        tap: TapHandle,
        check: Option<CommitCheck>,
        stats: Option<StatsHandle>,
    },
    /// The whole bundle is in memory and matched its pin.
    Held {
        spool: Arc<Spool>,
        checked: CheckedHead,
        head: BundleHead,
    },
    /// A network pass matched the pin and verified every resource; only
    /// the head is kept.
    Proven { checked: CheckedHead, head: BundleHead },
}

impl Look {
    pub fn manifest(&self) -> &Manifest {
        match &self.state {
            State::Stream { opened, .. } => &opened.manifest,
            State::Held { checked, .. } | State::Proven { checked, .. } => &checked.manifest,
        }
    }

    /// `${FWUP_META_UUID}`: the UUID of the bundle's meta.conf.
    pub fn uuid(&self) -> &str {
        match &self.state {
            State::Stream { opened, .. } => &opened.uuid,
            State::Held { checked, .. } | State::Proven { checked, .. } => &checked.uuid,
        }
    }

    /// How the bundle's signature was judged.
    pub fn signature(&self) -> &str {
        match &self.state {
            State::Stream { opened, .. } => &opened.signature,
            State::Held { checked, .. } | State::Proven { checked, .. } => &checked.signature,
        }
    }

    /// The whole bundle is in memory already (or, for an immutable source,
    /// as good as).
    pub(super) fn in_memory(&self, origin: Origin) -> bool {
        match self.state {
            State::Held { .. } => true,
            State::Stream { .. } => origin.immutable,
            State::Proven { .. } => false,
        }
    }
}

/// Reads the bundle's head (see the module docs). Nothing is written.
pub fn first_look(
    source: Source,
    settings: &Settings,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<Look, ApplyError> {
    let Source {
        mut reader,
        length,
        stats,
        check,
    } = source;
    if !settings.pin_only {
        // The copy only matters while memory mode is possible.
        let limit = match settings.request {
            _ if settings.origin.immutable => 0,
            ModeRequest::Memory => u64::MAX,
            _ => settings.budget.bytes,
        };
        let (tapped, tap) = Tap::new(reader, limit);
        let opened = apply::open_bundle(tapped, opts, reporter)?;
        return Ok(Look {
            state: State::Stream {
                opened: Box::new(opened),
                tap,
                check,
                stats,
            },
            length,
        });
    }
    let in_memory = match settings.request {
        ModeRequest::Memory => true,
        ModeRequest::TwoPass => false,
        ModeRequest::Auto => length.is_some_and(|l| settings.budget.fits(l)),
    };
    if in_memory {
        reporter.event(&Event::Stage { stage: Stage::Download });
        let limit = match settings.request {
            ModeRequest::Memory => u64::MAX,
            _ => settings.budget.bytes,
        };
        let spool = Spool::fill(&mut reader, limit, |done| {
            if let Some(total) = length {
                reporter.event(&Event::Progress { done, total });
            }
        })
        .map_err(|e| ApplyError::reading(&e))?;
        // The pin first: a bundle it does not vouch for is never parsed.
        check_pin(&check)?;
        let spool = Arc::new(spool);
        let opened = apply::open_bundle(spool.reader(), opts, reporter)?;
        let head = opened.head.clone();
        return Ok(Look {
            state: State::Held {
                checked: checked(opened),
                spool,
                head,
            },
            length,
        });
    }
    // Too large for memory: one pass over the network hashes the stream
    // and each entry; meta.conf is read only once the pin matched.
    reporter.event(&Event::Stage {
        stage: Stage::VerifyAll,
    });
    let mut walker = ZipWalker::new(reader);
    let head = read_head(&mut walker).map_err(|e| ApplyError::reading(&e))?;
    let digests = apply::collect_digests(walker, apply::Wanted::All, length, reporter)?;
    check_pin(&check)?;
    let checked = apply::check_head(&head, opts, reporter)?;
    apply::check_digests(&checked.manifest, &digests)?;
    Ok(Look {
        state: State::Proven { checked, head },
        length,
    })
}

fn checked<R: Read>(opened: OpenedBundle<R>) -> CheckedHead {
    CheckedHead {
        manifest: opened.manifest,
        uuid: opened.uuid,
        signature: opened.signature,
    }
}
