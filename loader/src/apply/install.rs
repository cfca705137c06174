//! One install from start to commit. See the module docs of `apply` for the
//! order of steps and the rule each keeps.

use std::collections::HashSet;
use std::io::Read;

use super::actions::{describe, Runner};
use super::error::ApplyError;
use super::events::{Event, Reporter, Stage};
use super::overlay::Overlay;
use super::pipeline::{EntryStream, Msg};
use super::sink::DataSink;
use super::{select, ApplyOptions, Summary};
use crate::bundle::manifest::{Manifest, Resource, Task};
use crate::bundle::open::read_head;
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
    walker: ZipWalker<R>,
}

/// Reads meta.conf and its signature, enforces the keys, parses meta.conf
/// with `${VAR}` expansion.
pub fn open_bundle<R: Read>(
    source: R,
    opts: &ApplyOptions,
    reporter: &mut dyn Reporter,
) -> Result<OpenedBundle<R>, ApplyError> {
    reporter.event(&Event::Stage { stage: Stage::Open });
    let mut walker = ZipWalker::with_buffer(source, SOURCE_BUFFER);
    let head = read_head(&mut walker).map_err(|e| ApplyError::reading(&e))?;

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
    Ok(OpenedBundle {
        manifest,
        uuid,
        signature: status.to_string(),
        walker,
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
    } = bundle;
    let mut overlay = Overlay::new(target, opts.hold_limit);

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
    walker: ZipWalker<R>,
) -> Result<(), ApplyError> {
    runner.stage(Stage::Init);
    runner.run_actions(Stage::Init, &task.on_init)?;

    runner.stage(Stage::Resources);
    let mut stream =
        EntryStream::spawn(walker, declared_paths(manifest)).map_err(|e| ApplyError::Corrupt(e.to_string()))?;
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
                Msg::EntryEnd { length, blake2b_256 } if length == got => break blake2b_256,
                Msg::Failed(e) => return Err(ApplyError::reading(&e)),
                Msg::EntryEnd { .. } | Msg::Entry(_) | Msg::Skipped(_) | Msg::Done => return Err(out_of_step()),
            }
        };
        check_resource(resource, got, &digest)?;
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
pub fn verify_all<R: Read + Send + 'static>(
    bundle: OpenedBundle<R>,
    reporter: &mut dyn Reporter,
) -> Result<u64, ApplyError> {
    let OpenedBundle { manifest, walker, .. } = bundle;
    let total: u64 = manifest.resources.iter().map(Resource::stored_len).sum();
    let mut stream =
        EntryStream::spawn(walker, declared_paths(&manifest)).map_err(|e| ApplyError::Corrupt(e.to_string()))?;
    let mut done = 0u64;
    let mut seen = Vec::new();
    loop {
        match stream.next() {
            Msg::Skipped(_) => {}
            Msg::Entry(path) => {
                let resource = manifest.resources.iter().find(|r| r.archive_path() == path);
                let mut got = 0u64;
                let digest = loop {
                    match stream.next() {
                        Msg::Data(buf) => {
                            got += buf.len() as u64;
                            done += buf.len() as u64;
                            reporter.event(&Event::Progress { done, total });
                            stream.recycle(buf);
                        }
                        Msg::EntryEnd { length, blake2b_256 } if length == got => break blake2b_256,
                        Msg::Failed(e) => return Err(ApplyError::reading(&e)),
                        _ => return Err(out_of_step()),
                    }
                };
                let Some(resource) = resource else { continue };
                check_resource(resource, got, &digest)?;
                seen.push(resource.name.clone());
            }
            Msg::Done => break,
            Msg::Failed(e) => return Err(ApplyError::reading(&e)),
            _ => return Err(out_of_step()),
        }
    }
    // Every resource a task can use must be present.
    for task in &manifest.tasks {
        for h in &task.on_resource {
            if !seen.contains(&h.resource) {
                return Err(ApplyError::MissingResource {
                    name: h.resource.clone(),
                    task: task.name.clone(),
                });
            }
        }
    }
    Ok(done)
}

/// The pipeline delivered messages in an order it never sends them.
fn out_of_step() -> ApplyError {
    ApplyError::Corrupt("bundle reader out of step".into())
}

/// A resource's data ended: it must have meta.conf's length and BLAKE2b-256.
fn check_resource(resource: &Resource, got: u64, digest: &[u8; 32]) -> Result<(), ApplyError> {
    if got != resource.stored_len() {
        return Err(ApplyError::LengthMismatch {
            name: resource.name.clone(),
            got,
            expected: resource.stored_len(),
        });
    }
    if *digest != resource.blake2b_256 {
        return Err(ApplyError::HashMismatch {
            name: resource.name.clone(),
        });
    }
    Ok(())
}
