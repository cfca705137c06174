//! One install from start to commit. See the module docs of `apply` for the
//! order of steps and the rule each keeps.

use std::collections::HashSet;
use std::io::Read;

use super::actions::{describe, Runner};
use super::error::ApplyError;
use super::events::{Event, Reporter, Stage};
use super::overlay::Overlay;
use super::pipeline::{EntryStream, Msg, Wanted};
use super::sink::DataSink;
use super::{select, ApplyOptions, Summary};
use crate::bundle::manifest::{Manifest, Resource, Task};
use crate::bundle::open::{read_head, BundleHead};
use crate::bundle::zip::ZipWalker;
use crate::bundle::{meta_conf, signature};

/// The first bytes of a VCDIFF (RFC 3284) delta.
const VCDIFF_MAGIC: [u8; 3] = [0xd6, 0xc3, 0xc4];

/// Source buffer: large reads keep syscalls and inflate calls few.
const SOURCE_BUFFER: usize = 256 * 1024;

/// A bundle whose head has been read and checked, positioned at its first
/// resource.
pub struct OpenedBundle<R: Read> {
    pub manifest: Manifest,
    pub uuid: String,
    pub signature: String,
    /// meta.conf and its signature as read: what a later pass over the
    /// same bundle must find again, byte for byte.
    pub head: BundleHead,
    walker: ZipWalker<R>,
}

impl<R: Read> OpenedBundle<R> {
    /// Gives back the source, positioned wherever the walker's read-ahead
    /// left it.
    pub fn into_source(self) -> R {
        self.walker.into_inner()
    }
}

/// What a checked head says: the manifest, the bundle's UUID and how its
/// signature was judged.
pub struct CheckedHead {
    pub manifest: Manifest,
    pub uuid: String,
    pub signature: String,
}

/// Reads meta.conf and its signature, enforces the keys, parses meta.conf
/// with `${VAR}` expansion. With [`ApplyOptions::expected_head`], a head
/// that differs from it is refused before it is looked at.
pub fn open_bundle<R: Read>(
    source: R,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<OpenedBundle<R>, ApplyError> {
    reporter.event(&Event::Stage { stage: Stage::Open });
    let mut walker = ZipWalker::with_buffer(source, SOURCE_BUFFER);
    let head = read_head(&mut walker).map_err(|e| ApplyError::reading(&e))?;
    if let Some(expected) = &opts.expected_head {
        if head != **expected {
            return Err(ApplyError::Changed(
                "its meta.conf (or signature) differs from the one verified in the first pass".into(),
            ));
        }
    }
    let CheckedHead {
        manifest,
        uuid,
        signature,
    } = check_head(&head, opts, reporter)?;
    Ok(OpenedBundle {
        manifest,
        uuid,
        signature,
        head,
        walker,
    })
}

/// Checks a head's signature against the keys and parses its meta.conf.
pub fn check_head(
    head: &BundleHead,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<CheckedHead, ApplyError> {
    reporter.event(&Event::Stage { stage: Stage::Verify });
    let status = signature::verify(&head.meta_conf, head.signature.as_deref(), &opts.public_keys)
        .map_err(|e| ApplyError::Signature(e.to_string()))?;
    if let signature::SignatureStatus::SignedNotChecked = status {
        reporter.event(&Event::Warning {
            message: "the bundle is signed but no public key was given: the signature was NOT checked".into(),
        });
    }

    let vars = |name: &str| opts.vars.get(name).cloned();
    let loaded = meta_conf::load_meta_conf(&head.meta_conf, &vars).map_err(|e| ApplyError::Manifest(e.to_string()))?;
    let manifest = loaded.manifest;
    let uuid = loaded.ids.uuid;
    for warning in &manifest.warnings {
        reporter.event(&Event::Warning {
            message: warning.clone(),
        });
    }
    reporter.event(&Event::Bundle {
        product: manifest.meta.product.clone().unwrap_or_default(),
        version: manifest.meta.version.clone().unwrap_or_default(),
        uuid: uuid.clone(),
        signature: status.to_string(),
    });
    Ok(CheckedHead {
        manifest,
        uuid,
        signature: status.to_string(),
    })
}

pub fn run<R: Read + Send + 'static>(
    bundle: OpenedBundle<R>,
    target: &mut dyn crate::target::Target,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<Summary, ApplyError> {
    let OpenedBundle {
        manifest,
        uuid,
        signature,
        walker,
        ..
    } = bundle;
    let mut overlay = Overlay::new(target, opts.hold_limit);
    // Boot records a two-pass install switched off on the disk: the
    // install reads them as they were, and the commit writes them back
    // unless the task rewrote them (see `install_mode::switch_off`).
    for (offset, bytes) in &opts.preload {
        crate::formats::Medium::write_at(&mut overlay, *offset, bytes).map_err(|source| ApplyError::Target {
            target: overlay.target().describe(),
            source,
        })?;
    }

    reporter.event(&Event::Stage {
        stage: Stage::SelectTask,
    });
    let task = select::choose_task(&manifest, &opts.task, &mut overlay, opts.allow_unsafe)?;
    reporter.event(&Event::Task {
        task: task.name.clone(),
    });
    select::validate_task(&manifest, task, opts)?;
    let disk_blocks = overlay.target().size().map(|bytes| bytes / crate::formats::BLOCK_SIZE);
    select::check_tables_fit(&manifest, task, disk_blocks)?;
    if let Some(check) = &opts.check_writes {
        let size = overlay.target().size();
        let planned = super::plan::plan_writes(&manifest, task, &mut overlay, size);
        check(&planned).map_err(ApplyError::Refused)?;
    }

    let mut runner = Runner::new(&manifest, task, overlay, opts, reporter);
    runner.protect_known_regions();
    let outcome = stream_install(&mut runner, &manifest, task, walker).and_then(|()| match &opts.before_commit {
        Some(check) => check().map_err(ApplyError::Corrupt),
        None => Ok(()),
    });
    let resource_bytes = runner.resource_bytes;
    match outcome {
        Ok(()) => {
            let committed = runner.commit()?;
            Ok(Summary {
                product: manifest.meta.product.clone().unwrap_or_default(),
                version: manifest.meta.version.clone().unwrap_or_default(),
                uuid,
                task: task.name.clone(),
                signature,
                resource_bytes,
                committed_bytes: committed,
                restarts: 0,
                refetched_bytes: 0,
                elapsed: Default::default(),
            })
        }
        Err(e) => {
            // fwup runs on-error; its writes are held like any other and
            // dropped with the overlay.
            runner.run_on_error();
            Err(e)
        }
    }
}

fn stream_install<R: Read + Send + 'static>(
    runner: &mut Runner<'_>,
    manifest: &Manifest,
    task: &Task,
    mut walker: ZipWalker<R>,
) -> Result<(), ApplyError> {
    runner.stage(Stage::Init);
    runner.run_actions(Stage::Init, &task.on_init)?;

    runner.stage(Stage::Resources);
    let hash = !runner.opts.hashes_proven;
    if hash {
        // Every entry read is a resource whose BLAKE2b-256 is checked
        // against meta.conf (`check_resource`); without the hashes, the
        // CRC-32 is what guards the inflate.
        walker.waive_crc();
    }
    let declared: u64 = manifest.resources.iter().map(Resource::stored_len).sum();
    let mut stream = EntryStream::open(walker, Wanted::Named(declared_paths(manifest)), hash, declared)
        .map_err(|e| ApplyError::Corrupt(e.to_string()))?;
    let mut seen: Vec<&str> = Vec::new();
    loop {
        match stream.next() {
            Msg::Entry(path) => {
                // The reader only sends declared entries, each name once.
                let resource = manifest
                    .resources
                    .iter()
                    .find(|r| r.archive_path() == path)
                    .ok_or_else(out_of_step)?;
                seen.push(&resource.name);
                stream_resource(runner, task, resource, &mut stream)?;
            }
            Msg::Skipped(path) => runner.warn(format!(
                "the bundle has an entry `{path}` that meta.conf does not declare; skipped"
            )),
            Msg::Done => break,
            Msg::Failed(e) => return Err(ApplyError::reading(&e)),
            Msg::Data(_) | Msg::EntryEnd { .. } => {
                return Err(out_of_step());
            }
        }
    }
    drop(stream);
    for handler in &task.on_resource {
        if !seen.contains(&handler.resource.as_str()) {
            return Err(ApplyError::MissingResource {
                name: handler.resource.clone(),
                task: task.name.clone(),
            });
        }
    }

    runner.stage(Stage::Finish);
    runner.run_actions(Stage::Finish, &task.on_finish)
}

/// The archive paths of the resources meta.conf declares: the only entries
/// after `meta.conf` that are read (and inflated).
fn declared_paths(manifest: &Manifest) -> HashSet<String> {
    manifest.resources.iter().map(Resource::archive_path).collect()
}

/// Runs a resource's handler: the actions before its data action, the data
/// (hashed as it streams), the hash check, then the actions after it. A
/// resource without a handler is still read and verified: a bundle with a
/// corrupt part is refused whole.
fn stream_resource(
    runner: &mut Runner<'_>,
    task: &Task,
    resource: &Resource,
    stream: &mut EntryStream,
) -> Result<(), ApplyError> {
    runner.event(Event::Resource {
        name: resource.name.clone(),
        bytes: resource.stored_len(),
    });
    let handler = task.handler(&resource.name);
    let delta = handler.is_some_and(|h| h.delta_source);
    let actions = handler.map(|h| &h.actions[..]).unwrap_or(&[]);
    let data_at = actions.iter().position(|a| a.consumes_data());
    let (before, rest) = actions.split_at(data_at.unwrap_or(actions.len()));
    runner.run_actions(Stage::Resources, before)?;
    // Only a stream spawned for proven hashes may end an entry without one.
    let hashes_proven = runner.opts.hashes_proven;

    {
        // The data phase: the sink borrows the overlay, progress the reporter.
        let (overlay, fats, mut progress) = runner.data_phase();
        let mut sink = match rest.first() {
            Some(action) => {
                Some(
                    DataSink::open(overlay, fats, resource, action).map_err(|source| ApplyError::Action {
                        stage: Stage::Resources,
                        action: describe(action),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let sink_error = |sink: &DataSink, source| ApplyError::Action {
            stage: Stage::Resources,
            action: sink.label().to_string(),
            source,
        };
        let mut got = 0u64;
        let digest = loop {
            match stream.next() {
                Msg::Data(buf) => {
                    // A delta update's resource is a VCDIFF patch against the
                    // other slot: refuse it before writing patch bytes as data.
                    if got == 0 && delta && buf.starts_with(&VCDIFF_MAGIC) {
                        return Err(ApplyError::Unsupported(format!(
                            "resource `{}` is a delta update (VCDIFF); delta updates",
                            resource.name
                        )));
                    }
                    if let Some(sink) = sink.as_mut() {
                        sink.write(&buf).map_err(|e| sink_error(sink, e))?;
                    }
                    got += buf.len() as u64;
                    progress.add(buf.len() as u64);
                    stream.recycle(buf);
                }
                Msg::EntryEnd { length, blake2b_256 } if length == got && (blake2b_256.is_some() || hashes_proven) => {
                    break blake2b_256
                }
                Msg::Failed(e) => return Err(ApplyError::reading(&e)),
                Msg::EntryEnd { .. } | Msg::Entry(_) | Msg::Skipped(_) | Msg::Done => return Err(out_of_step()),
            }
        };
        check_resource(resource, got, digest.as_ref())?;
        if let Some(sink) = sink {
            let label = sink.label().to_string();
            sink.finish().map_err(|source| ApplyError::Action {
                stage: Stage::Resources,
                action: label,
                source,
            })?;
        }
    }
    if let Some((_, after)) = rest.split_first() {
        let again = after.iter().filter(|a| a.consumes_data()).count();
        if again > 0 {
            return Err(ApplyError::DataReadTwice {
                name: resource.name.clone(),
                count: again + 1,
            });
        }
        runner.run_actions(Stage::Resources, after)?;
    }
    Ok(())
}

/// Reads every resource and checks its length and hash, writing nothing.
/// Returns the bytes of entry data read.
pub fn verify_all<R: Read + Send + 'static>(
    bundle: OpenedBundle<R>,
    reporter: &mut dyn Reporter,
) -> Result<u64, ApplyError> {
    let OpenedBundle { manifest, walker, .. } = bundle;
    let total: u64 = manifest.resources.iter().map(Resource::stored_len).sum();
    let wanted = Wanted::Named(declared_paths(&manifest));
    let digests = collect_digests(walker, wanted, Some(total), reporter)?;
    check_digests(&manifest, &digests)?;
    Ok(digests.iter().map(|d| d.length).sum())
}

/// One ZIP entry's data as it was read: its length and BLAKE2b-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDigest {
    pub path: String,
    pub length: u64,
    pub blake2b_256: [u8; 32],
}

/// Reads the `wanted` entries after the head to the end of the archive,
/// hashing each, and judges nothing: what the entries should be is
/// meta.conf's to say ([`check_digests`]). `progress_total` sizes the
/// progress events (none without it) and, as the bytes to read, decides
/// whether they are read inline ([`EntryStream::open`]).
pub fn collect_digests<R: Read + Send + 'static>(
    walker: ZipWalker<R>,
    wanted: Wanted,
    progress_total: Option<u64>,
    reporter: &mut dyn Reporter,
) -> Result<Vec<EntryDigest>, ApplyError> {
    // Without a total, as if large: threads.
    let declared = progress_total.unwrap_or(u64::MAX);
    let mut stream =
        EntryStream::open(walker, wanted, true, declared).map_err(|e| ApplyError::Corrupt(e.to_string()))?;
    let mut done = 0u64;
    let mut digests = Vec::new();
    loop {
        match stream.next() {
            Msg::Skipped(_) => {}
            Msg::Entry(path) => {
                let mut got = 0u64;
                let digest = loop {
                    match stream.next() {
                        Msg::Data(buf) => {
                            got += buf.len() as u64;
                            done += buf.len() as u64;
                            if let Some(total) = progress_total {
                                reporter.event(&Event::Progress { done, total });
                            }
                            stream.recycle(buf);
                        }
                        Msg::EntryEnd {
                            length,
                            blake2b_256: Some(digest),
                        } if length == got => break digest,
                        Msg::Failed(e) => return Err(ApplyError::reading(&e)),
                        _ => return Err(out_of_step()),
                    }
                };
                digests.push(EntryDigest {
                    path,
                    length: got,
                    blake2b_256: digest,
                });
            }
            Msg::Done => return Ok(digests),
            Msg::Failed(e) => return Err(ApplyError::reading(&e)),
            _ => return Err(out_of_step()),
        }
    }
}

/// Every declared resource present in `digests` has meta.conf's length and
/// hash, and every resource a task uses is present.
pub fn check_digests(manifest: &Manifest, digests: &[EntryDigest]) -> Result<(), ApplyError> {
    let mut seen = Vec::new();
    for entry in digests {
        let Some(resource) = manifest.resources.iter().find(|r| r.archive_path() == entry.path) else {
            continue;
        };
        check_resource(resource, entry.length, Some(&entry.blake2b_256))?;
        seen.push(resource.name.as_str());
    }
    for task in &manifest.tasks {
        for h in &task.on_resource {
            if !seen.contains(&h.resource.as_str()) {
                return Err(ApplyError::MissingResource {
                    name: h.resource.clone(),
                    task: task.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The pipeline delivered messages in an order it never sends them.
fn out_of_step() -> ApplyError {
    ApplyError::Corrupt("bundle reader out of step".into())
}

/// A resource's data ended: it must have meta.conf's length and BLAKE2b-256.
/// Without a digest (the hashes were proven by an earlier pass over the same
/// immutable bytes) only the length is checked here.
fn check_resource(resource: &Resource, got: u64, digest: Option<&[u8; 32]>) -> Result<(), ApplyError> {
    if got != resource.stored_len() {
        return Err(ApplyError::LengthMismatch {
            name: resource.name.clone(),
            got,
            expected: resource.stored_len(),
        });
    }
    if digest.is_some_and(|d| *d != resource.blake2b_256) {
        return Err(ApplyError::HashMismatch {
            name: resource.name.clone(),
        });
    }
    Ok(())
}
