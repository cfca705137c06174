//! What a disk state boots, read back with the project's `formats`
//! readers (the rule each outcome is judged by is in `judge`).
//!
//! What boots is the partition table (MBR with its boot code and EBR
//! chain, or protective MBR + GPT), the boot code in the first MiB, and
//! the FAT volumes the task writes (every file's content; for a GRUB
//! `grubenv`, the variables that a `grub.cfg` on the same volume reads,
//! which is what GRUB decides the slot by). The U-Boot environments record
//! which slot is active (the loader's `task=auto`, fwup's upgrade guards
//! and the installed system read them).

use std::collections::BTreeSet;

use loader::bundle::manifest::{Action, Manifest, Requirement, Task};
use loader::formats::fat::Fat;
use loader::formats::gpt::{self, GptTable};
use loader::formats::mbr::{self, PartitionEntry};
use loader::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};
use loader::formats::{Medium, BLOCK_SIZE};

use super::judge::{judge, Outcome};

/// Where the structures that select what boots are, for one task.
#[derive(Debug, Clone)]
pub struct Layout {
    pub envs: Vec<UbootEnvSpec>,
    /// Byte offsets of the FAT volumes the task touches.
    pub fats: Vec<u64>,
    pub device_blocks: Option<u64>,
    /// The task writes a partition table (`mbr_write`/`gpt_write`): a
    /// complete install, which may pass through "nothing bootable".
    pub writes_table: bool,
    /// Sectors the commit writes (set by the matrix).
    pub touched: Vec<u64>,
}

impl Layout {
    pub fn of(manifest: &Manifest, task: &Task, size: Option<u64>) -> Layout {
        let actions: Vec<&Action> = task
            .on_init
            .iter()
            .chain(task.on_resource.iter().flat_map(|h| &h.actions))
            .chain(&task.on_finish)
            .collect();
        let mut fats = BTreeSet::new();
        let mut writes_table = false;
        for action in &actions {
            match action {
                Action::MbrWrite { .. } | Action::GptWrite { .. } => writes_table = true,
                Action::FatMkfs { block_offset, .. }
                | Action::FatWrite { block_offset, .. }
                | Action::FatMkdir { block_offset, .. }
                | Action::FatRm { block_offset, .. }
                | Action::FatMv { block_offset, .. }
                | Action::FatAttrib { block_offset, .. }
                | Action::FatTouch { block_offset, .. }
                | Action::FatSetlabel { block_offset, .. } => {
                    fats.insert(block_offset * BLOCK_SIZE);
                }
                Action::FatCp {
                    from_offset, to_offset, ..
                } => {
                    fats.insert(from_offset * BLOCK_SIZE);
                    fats.insert(to_offset * BLOCK_SIZE);
                }
                _ => {}
            }
        }
        for r in &task.requirements {
            if let Requirement::FatFileExists { block_offset, .. } | Requirement::FatFileMatch { block_offset, .. } = r
            {
                fats.insert(block_offset * BLOCK_SIZE);
            }
        }
        Layout {
            envs: manifest
                .uboot_envs
                .iter()
                .map(|s| UbootEnvSpec::from_section(s).expect("env section"))
                .collect(),
            fats: fats.into_iter().collect(),
            device_blocks: size.map(|s| s / BLOCK_SIZE),
            writes_table,
            touched: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    /// No boot signature, no used entry, or a protective MBR over a GPT
    /// that does not read: nothing boots from this disk.
    Nothing,
    Mbr {
        sector0: Vec<u8>,
        partitions: Vec<PartitionEntry>,
    },
    Gpt {
        pmbr: Vec<u8>,
        table: GptTable,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A GRUB environment block: the variables GRUB decides by, or `None`
    /// when it is not a valid block.
    GrubEnv(Option<Vec<(String, String)>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatTree {
    pub label: Option<String>,
    /// Path, attributes, content (directories have empty content).
    pub entries: Vec<(String, u8, Content)>,
}

/// What a disk state boots and records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub table: Table,
    /// The boot code area (the first MiB outside the table, the
    /// environments and the FAT volumes), where the commit writes it.
    pub boot_code: Vec<u8>,
    pub fats: Vec<Option<FatTree>>,
    pub envs: Vec<Option<UbootEnv>>,
}

impl Selection {
    pub fn boots(&self) -> (&Table, &[u8], &[Option<FatTree>]) {
        (&self.table, &self.boot_code, &self.fats)
    }
}

pub fn read(m: &mut dyn Medium, layout: &Layout) -> Selection {
    let table = read_table(m, layout.device_blocks);
    read_rest(m, layout, table)
}

/// The outcome of a cut: when the partition table alone says nothing can
/// boot, the rest is not read.
pub fn outcome(m: &mut dyn Medium, layout: &Layout, old: &Selection, new: &Selection) -> Result<Outcome, String> {
    let table = read_table(m, layout.device_blocks);
    if table == Table::Nothing && layout.writes_table {
        return Ok(Outcome::NothingBootable);
    }
    judge(&read_rest(m, layout, table), old, new, layout)
}

fn read_rest(m: &mut dyn Medium, layout: &Layout, table: Table) -> Selection {
    let boot_code = boot_code(m, layout, matches!(table, Table::Gpt { .. }));
    let fats = layout.fats.iter().map(|&offset| read_fat(m, offset)).collect();
    let envs = layout.envs.iter().map(|spec| uboot_env::read(m, spec).ok()).collect();
    Selection {
        table,
        boot_code,
        fats,
        envs,
    }
}

fn read_table(m: &mut dyn Medium, device_blocks: Option<u64>) -> Table {
    let mut sector0 = vec![0u8; 512];
    m.read_at(0, &mut sector0).expect("read sector 0");
    let Ok(partitions) = mbr::read_partitions(m) else {
        return Table::Nothing;
    };
    if partitions.is_empty() {
        return Table::Nothing;
    }
    if partitions.iter().any(|p| p.kind == 0xee) {
        return match gpt::read(m, device_blocks) {
            Ok(table) => Table::Gpt { pmbr: sector0, table },
            Err(_) => Table::Nothing,
        };
    }
    Table::Mbr { sector0, partitions }
}

/// The sectors of the boot code area the commit writes (the others are the
/// same in every state of the commit).
fn boot_code(m: &mut dyn Medium, layout: &Layout, gpt: bool) -> Vec<u8> {
    let mut excluded: Vec<std::ops::Range<u64>> = layout
        .envs
        .iter()
        .flat_map(|spec| spec.byte_ranges())
        .map(|r| r.start / BLOCK_SIZE..r.end.div_ceil(BLOCK_SIZE))
        .collect();
    excluded.extend(layout.fats.iter().map(|&f| f / BLOCK_SIZE..u64::MAX));
    excluded.push(2048..u64::MAX);
    excluded.push(0..1);
    if gpt {
        excluded.push(1..34);
    }
    let mut code = Vec::new();
    let mut sector = [0u8; BLOCK_SIZE as usize];
    for &s in layout
        .touched
        .iter()
        .filter(|s| !excluded.iter().any(|r| r.contains(s)))
    {
        m.read_at(s * BLOCK_SIZE, &mut sector).expect("read boot code");
        code.extend_from_slice(&sector);
    }
    code
}

fn read_fat(m: &mut dyn Medium, offset: u64) -> Option<FatTree> {
    let mut fat = Fat::open(m, offset).ok()?;
    let label = fat.label(m).ok()?;
    let mut entries = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        // A torn directory can loop back on itself: a tree this deep or
        // wide is not one anything boots from.
        if dir.matches('/').count() > 16 || entries.len() > 4096 {
            return None;
        }
        let listing = fat.list(m, if dir.is_empty() { "/" } else { &dir }).ok()?;
        for e in listing {
            if e.name == "." || e.name == ".." {
                continue;
            }
            let path = format!("{dir}/{}", e.name);
            if e.is_dir() {
                entries.push((path.clone(), e.attributes, Content::Bytes(Vec::new())));
                dirs.push(path);
            } else {
                let data = fat.read_file(m, &path, e.size as usize).ok()?;
                entries.push((path, e.attributes, Content::Bytes(data)));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    grub_view(&mut entries);
    Some(FatTree { label, entries })
}

/// Replaces each `grubenv` by the variables GRUB reads from it: those a
/// `grub.cfg` on the volume refers to as `$name` or `${name}` (all of them
/// when there is no `grub.cfg`).
fn grub_view(entries: &mut [(String, u8, Content)]) {
    let mut referenced: Option<BTreeSet<String>> = None;
    for (path, _, content) in entries.iter() {
        if let (true, Content::Bytes(text)) = (path.to_ascii_lowercase().ends_with("/grub.cfg"), content) {
            referenced
                .get_or_insert_with(BTreeSet::new)
                .extend(variables_used(text));
        }
    }
    for (path, _, content) in entries.iter_mut() {
        if !path.ends_with("/grubenv") {
            continue;
        }
        if let Content::Bytes(bytes) = content {
            let vars = parse_grubenv(bytes).map(|vars| {
                vars.into_iter()
                    .filter(|(k, _)| referenced.as_ref().is_none_or(|r| r.contains(k)))
                    .collect()
            });
            *content = Content::GrubEnv(vars);
        }
    }
}

fn variables_used(script: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(script);
    let mut out = BTreeSet::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = rest
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// GRUB's environment block: a signature line, `name=value` lines, `#`
/// padding to 1024 bytes.
fn parse_grubenv(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    const SIGNATURE: &[u8] = b"# GRUB Environment Block\n";
    let body = bytes.strip_prefix(SIGNATURE)?;
    let text = std::str::from_utf8(body).ok()?;
    let mut vars = Vec::new();
    for line in text.split('\n') {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=')?;
        vars.push((k.to_string(), v.to_string()));
    }
    vars.sort();
    Some(vars)
}
