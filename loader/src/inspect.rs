//! `loader inspect`: what a bundle is, without writing or fully reading it.

use std::io::Read;

use serde::Serialize;

use crate::apply::{self, events::Silent, ApplyOptions};
use crate::bundle::manifest::{Action, Manifest};

#[derive(Serialize)]
struct Inspection<'a> {
    product: Option<&'a str>,
    version: Option<&'a str>,
    description: Option<&'a str>,
    platform: Option<&'a str>,
    architecture: Option<&'a str>,
    author: Option<&'a str>,
    creation_date: Option<&'a str>,
    uuid: &'a str,
    signature: &'a str,
    tasks: Vec<TaskInfo<'a>>,
    resources: Vec<ResourceInfo<'a>>,
    /// What fwup 1.16 would skip or could not run (a newer fwup's bundle).
    warnings: &'a [String],
}

#[derive(Serialize)]
struct TaskInfo<'a> {
    name: &'a str,
    guards: usize,
    actions: usize,
    needs_unsafe: bool,
}

#[derive(Serialize)]
struct ResourceInfo<'a> {
    name: &'a str,
    bytes: u64,
    stored_bytes: u64,
    blake2b_256: String,
}

pub fn run<R: Read + Send + 'static>(source: R, json: bool) -> Result<(), String> {
    let opened = apply::open_bundle(source, &ApplyOptions::new(""), &mut Silent).map_err(|e| e.to_string())?;
    let view = describe(&opened.manifest, &opened.uuid, &opened.signature);
    if json {
        let text = serde_json::to_string_pretty(&view).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    let or_dash = |s: Option<&str>| s.unwrap_or("-").to_string();
    println!("product:      {}", or_dash(view.product));
    println!("version:      {}", or_dash(view.version));
    println!(
        "platform:     {} / {}",
        or_dash(view.platform),
        or_dash(view.architecture)
    );
    println!("author:       {}", or_dash(view.author));
    println!("created:      {}", or_dash(view.creation_date));
    println!("uuid:         {}", view.uuid);
    println!("signature:    {}", view.signature);
    println!("tasks:");
    for t in &view.tasks {
        let unsafe_note = if t.needs_unsafe { ", needs --unsafe" } else { "" };
        println!(
            "  {:<24} {} guard(s), {} action(s){unsafe_note}",
            t.name, t.guards, t.actions
        );
    }
    println!("resources:");
    for r in &view.resources {
        println!("  {:<24} {:>12} bytes  blake2b-256 {}", r.name, r.bytes, r.blake2b_256);
    }
    if !view.warnings.is_empty() {
        println!("warnings:");
        for w in view.warnings {
            println!("  {w}");
        }
    }
    Ok(())
}

fn describe<'a>(m: &'a Manifest, uuid: &'a str, signature: &'a str) -> Inspection<'a> {
    let meta = &m.meta;
    Inspection {
        product: meta.product.as_deref(),
        version: meta.version.as_deref(),
        description: meta.description.as_deref(),
        platform: meta.platform.as_deref(),
        architecture: meta.architecture.as_deref(),
        author: meta.author.as_deref(),
        creation_date: meta.creation_date.as_deref(),
        uuid,
        signature,
        tasks: m
            .tasks
            .iter()
            .map(|t| {
                let actions: Vec<&Action> = t
                    .on_init
                    .iter()
                    .chain(&t.on_finish)
                    .chain(&t.on_error)
                    .chain(t.on_resource.iter().flat_map(|h| &h.actions))
                    .collect();
                TaskInfo {
                    name: &t.name,
                    guards: t.requirements.len(),
                    actions: actions.len(),
                    needs_unsafe: actions.iter().any(|a| a.is_unsafe()),
                }
            })
            .collect(),
        resources: m
            .resources
            .iter()
            .map(|r| ResourceInfo {
                name: &r.name,
                bytes: r.expanded_len(),
                stored_bytes: r.stored_len(),
                blake2b_256: r.blake2b_256.iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect(),
        warnings: &m.warnings,
    }
}
