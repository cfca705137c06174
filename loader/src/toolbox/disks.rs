//! `loader disks`: every disk with its identity, what it holds, and whether
//! the loader could install onto it (and why not).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::boot::disks::{self, eligibility, format_size, DiscoverOptions, Disk, Force, Refusal};
use crate::inspect_disk::{self, DiskContents, EnvState, ReadOnlyDisk};

#[derive(clap::Args)]
pub struct DisksArgs {
    /// Disks or image files to look at (default: every disk in /sys/block).
    devices: Vec<PathBuf>,
    /// One JSON object per disk, in an array.
    #[arg(long)]
    json: bool,
    /// Also list loop, RAM, device-mapper, md and CD-ROM devices.
    #[arg(long)]
    all: bool,
    /// sysfs block directory (a fake tree in tests).
    #[arg(long, default_value = "/sys/block")]
    sys_block: PathBuf,
}

/// One line of the listing.
struct Row {
    path: String,
    disk: Option<Disk>,
    size: u64,
    contents: Result<DiskContents, String>,
    refusals: Vec<Refusal>,
}

pub fn run(args: DisksArgs) -> Result<(), String> {
    let rows: Vec<Row> = if args.devices.is_empty() {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|t| disks::parse_mountinfo(&t).ok())
            .unwrap_or_default();
        let options = DiscoverOptions {
            include_virtual: args.all,
            loader_exe: std::fs::read_link("/proc/self/exe").ok(),
            dev_dir: Some(PathBuf::from("/dev")),
        };
        let found = disks::discover(&args.sys_block, &mounts, &options).map_err(|e| e.to_string())?;
        found.into_iter().map(|d| row_for(d.dev_path(), Some(d))).collect()
    } else {
        let found = disks::discover(
            &args.sys_block,
            &[],
            &DiscoverOptions {
                include_virtual: true,
                loader_exe: None,
                dev_dir: None,
            },
        )
        .unwrap_or_default();
        args.devices
            .iter()
            .map(|path| {
                let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                let name = real.strip_prefix("/dev").ok().map(Path::to_path_buf);
                let disk = found
                    .iter()
                    .find(|d| name.as_deref() == Some(Path::new(&d.name)))
                    .cloned();
                row_for(path.display().to_string(), disk)
            })
            .collect()
    };
    if args.json {
        let all: Vec<Value> = rows.iter().map(row_json).collect();
        println!("{}", serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?);
    } else if rows.is_empty() {
        println!("no disks found");
    } else {
        for row in &rows {
            print!("{}", row_text(row));
        }
    }
    Ok(())
}

fn row_for(path: String, disk: Option<Disk>) -> Row {
    let opened = ReadOnlyDisk::open(Path::new(&path));
    let size = disk
        .as_ref()
        .map(|d| d.size)
        .or_else(|| opened.as_ref().ok().map(ReadOnlyDisk::size))
        .unwrap_or(0);
    let contents = opened
        .and_then(|mut m| {
            let size = m.size();
            inspect_disk::inspect(&mut m, Some(size), None)
        })
        .map_err(|e| format!("cannot read {path}: {e}"));
    let refusals = disk
        .as_ref()
        .map(|d| eligibility(d, 0, Force::default()))
        .unwrap_or_default();
    Row {
        path,
        disk,
        size,
        contents,
        refusals,
    }
}

/// What `loader.task=auto` would do with this disk, given any bundle.
fn auto_verdict(row: &Row) -> String {
    if !row.refusals.is_empty() {
        let why: Vec<String> = row.refusals.iter().map(Refusal::to_string).collect();
        return format!("cannot be the target: {}", why.join("; "));
    }
    match &row.contents {
        Err(_) => "cannot be read: the loader would refuse it".into(),
        Ok(c) if c.is_blank() => "can be the target: blank, loader.task=auto installs (task complete)".into(),
        Ok(c) => match (&c.install, &c.env) {
            (Some(install), _) => format!(
                "can be the target: loader.task=auto upgrades it with a bundle of {} (keeps data), refuses any \
                 other; loader.task=complete wipes it",
                install
                    .product
                    .as_deref()
                    .map_or("the same product".into(), |p| format!("'{p}'"))
            ),
            (None, EnvState::Damaged { .. }) => "can be the target: loader.task=auto refuses it (unreadable \
                                                 environment); loader.task=repair keeps the data partition where \
                                                 the bundle's layout matches, loader.task=complete wipes it"
                .into(),
            _ => "can be the target: loader.task=auto refuses it (it holds data); loader.task=complete wipes it".into(),
        },
    }
}

fn row_text(row: &Row) -> String {
    let mut out = String::new();
    let ident = match &row.disk {
        Some(d) => d.summary(),
        None => format!("{} ({})", row.path, format_size(row.size)),
    };
    out.push_str(&format!("{} {ident}\n", row.path));
    match &row.contents {
        Ok(c) => out.push_str(&format!("  holds: {}\n", c.summary())),
        Err(e) => out.push_str(&format!("  holds: ? ({e})\n")),
    }
    if let Ok(Some(grub)) = row.contents.as_ref().map(|c| c.grubenv.as_ref()) {
        if let Some(boot) = grub.get("boot") {
            out.push_str(&format!("  grubenv: boot={boot}\n"));
        }
    }
    out.push_str(&format!("  target: {}\n", auto_verdict(row)));
    out
}

fn row_json(row: &Row) -> Value {
    let d = row.disk.as_ref();
    let holds = match &row.contents {
        Ok(c) => contents_json(c),
        Err(e) => json!({ "error": e }),
    };
    json!({
        "path": row.path,
        "name": d.map(|d| d.name.clone()),
        "size": row.size,
        "model": d.and_then(|d| d.model.clone()),
        "serial": d.and_then(|d| d.serial.clone()),
        "wwn": d.and_then(|d| d.wwn.clone()),
        "transport": d.map(|d| d.transport.to_string()),
        "removable": d.map(|d| d.removable),
        "read_only": d.map(|d| d.read_only),
        "holds": holds,
        "target": {
            "eligible": row.refusals.is_empty() && row.contents.is_ok(),
            "refusals": row.refusals.iter().map(Refusal::to_string).collect::<Vec<_>>(),
            "auto": auto_verdict(row),
        },
    })
}

fn contents_json(c: &DiskContents) -> Value {
    let partitions: Vec<Value> = c
        .partitions
        .iter()
        .map(|p| {
            json!({
                "number": p.slot.number,
                "first_block": p.slot.first_block,
                "blocks": p.slot.blocks,
                "type": p.slot.type_name(),
                "name": p.slot.name,
                "filesystem": p.filesystem.as_ref().map(|f| f.kind.to_string()),
                "label": p.filesystem.as_ref().and_then(|f| f.label.clone()),
            })
        })
        .collect();
    let env = match &c.env {
        EnvState::Absent => json!("absent"),
        EnvState::Damaged { block, problem } => json!({ "damaged": { "block": block, "problem": problem } }),
        EnvState::Valid { block, .. } => json!({ "valid": { "block": block } }),
    };
    json!({
        "summary": c.summary(),
        "blank": c.is_blank(),
        "table": c.table.to_string(),
        "partitions": partitions,
        "whole_disk": c.whole_disk.as_ref().map(|f| f.to_string()),
        "uboot_env": env,
        "install": c.install.as_ref().map(|i| json!({
            "slot": i.slot,
            "product": i.product,
            "version": i.version,
            "platform": i.platform,
            "architecture": i.architecture,
            "uuid": i.uuid,
        })),
        "grubenv": c.grubenv,
    })
}
