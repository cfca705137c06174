//! What a disk holds, read before anything is written: the partition table
//! and its partitions, filesystems and volumes by their magic numbers, and
//! a recognised install (the U-Boot-format environment of a Nerves-style
//! system: product, version, platform, active slot, bundle UUID; GRUB's
//! `grubenv`).
//!
//! One reading serves three users: the boot flow's task choice (`auto`
//! only installs over a blank disk or upgrades a recognised install of the
//! same product, see `boot::task_choice`), the refusal messages that name
//! what is on a disk, and `loader disks`. Everything here is a pure
//! function over a [`Medium`] (a disk, an image file, a `Vec<u8>` in
//! tests): it only reads.

mod install;
mod layout;
mod signatures;
mod table;

#[cfg(test)]
mod tests;

use std::fmt;

pub use install::{probe_env, read_env, read_grubenv, EnvState, Installed, COMMON_ENV_LOCATIONS};
pub use layout::{bundle_partition, compare_layout, LayoutComparison};
pub use signatures::{identify, identify_head, FsKind, Signature};
pub use table::{read_table, PartitionSlot, TableKind};

use crate::bundle::manifest::Manifest;
use crate::formats::{uboot_env, Medium, BLOCK_SIZE};
use signatures::PROBE_WINDOW;

/// A partition and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionContents {
    pub slot: PartitionSlot,
    pub filesystem: Option<Signature>,
}

/// Everything [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskContents {
    /// Bytes, when known.
    pub size: Option<u64>,
    pub table: TableKind,
    pub partitions: Vec<PartitionContents>,
    /// A filesystem or volume on the whole disk (no partition table).
    pub whole_disk: Option<Signature>,
    pub env: EnvState,
    /// The install the environment names, if it names an active slot.
    pub install: Option<Installed>,
    /// GRUB's environment on the first FAT partition, if it has one.
    pub grubenv: Option<std::collections::BTreeMap<String, String>>,
}

impl DiskContents {
    /// Nothing on it that anyone could miss: no partition table, no
    /// filesystem or volume signature on the whole disk, no valid
    /// environment. Stray bytes without any signature count as blank: a
    /// first install cut (or restarted) before its commit leaves bulk data,
    /// possibly where an environment would be, but no table.
    pub fn is_blank(&self) -> bool {
        self.table == TableKind::None && self.whole_disk.is_none() && !matches!(self.env, EnvState::Valid { .. })
    }

    /// One line: "MBR: 1 Linux (0x83) 16.0 MiB ext4 "root", 2 …; install: …".
    pub fn summary(&self) -> String {
        if self.is_blank() {
            return "blank (no partition table, no filesystem signature)".into();
        }
        let mut out = self.table.to_string();
        if let Some(fs) = &self.whole_disk {
            out = format!("{fs} on the whole disk");
        } else if !self.partitions.is_empty() {
            let parts: Vec<String> = self.partitions.iter().map(PartitionContents::summary).collect();
            out = format!("{out} with {} partition(s): {}", parts.len(), parts.join("; "));
        }
        match (&self.install, &self.env) {
            (Some(install), _) => out.push_str(&format!("; install: {install}")),
            (None, EnvState::Damaged { block, .. }) => {
                out.push_str(&format!("; an unreadable U-Boot environment at block {block}"))
            }
            (None, EnvState::Valid { block, .. }) => out.push_str(&format!(
                "; a U-Boot environment at block {block} naming no active slot"
            )),
            (None, EnvState::Absent) => {}
        }
        out
    }
}

impl PartitionContents {
    /// "2: Linux (0x83), 32.0 MiB at block 36864, squashfs".
    pub fn summary(&self) -> String {
        let s = &self.slot;
        let mut out = format!(
            "{}: {}, {} at block {}",
            s.number,
            s.type_name(),
            crate::boot::disks::format_size(s.blocks * BLOCK_SIZE),
            s.first_block
        );
        if let Some(name) = &s.name {
            out.push_str(&format!(" \"{name}\""));
        }
        match &self.filesystem {
            Some(fs) => out.push_str(&format!(", {fs}")),
            None => out.push_str(", no known filesystem"),
        }
        out
    }
}

impl fmt::Display for DiskContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Reads what `m` holds. `size` is the device size in bytes when known
/// (for the backup GPT and end-of-disk signatures). `manifest`, when
/// given, says where the bundle keeps its environment; without it the
/// usual Nerves places are probed.
pub fn inspect(
    m: &mut (impl Medium + ?Sized),
    size: Option<u64>,
    manifest: Option<&Manifest>,
) -> std::io::Result<DiskContents> {
    let m = &mut HeadCached::new(m, size);
    let device_blocks = size.map(|s| s / BLOCK_SIZE);
    let (table, slots) = read_table(m, device_blocks);
    let mut partitions = Vec::with_capacity(slots.len());
    for slot in slots {
        let range = slot.byte_range();
        let filesystem = identify(m, range.start, Some(range.end - range.start))?;
        partitions.push(PartitionContents { slot, filesystem });
    }
    let whole_disk = match table {
        TableKind::None => identify(m, 0, size)?,
        _ => None,
    };

    let env = match bundle_env_spec(manifest) {
        Some(spec) => read_env(m, &spec)?,
        None => {
            let inside = |offset: u64, count: u64| {
                partitions
                    .iter()
                    .any(|p| offset < p.slot.first_block + p.slot.blocks && p.slot.first_block < offset + count)
            };
            probe_env(m, &inside)?
        }
    };
    let install = env.vars().and_then(Installed::from_env);
    let grubenv = match partitions.iter().find(|p| is_fat(&p.filesystem)) {
        Some(boot) => read_grubenv(m, boot.slot.first_block * BLOCK_SIZE),
        None => None,
    };
    Ok(DiskContents {
        size,
        table,
        partitions,
        whole_disk,
        env,
        install,
        grubenv,
    })
}

fn is_fat(fs: &Option<Signature>) -> bool {
    fs.as_ref()
        .is_some_and(|s| matches!(s.kind, FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32))
}

/// The first `uboot-environment` section of the bundle, if it has one.
fn bundle_env_spec(manifest: Option<&Manifest>) -> Option<uboot_env::UbootEnvSpec> {
    let section = manifest?.uboot_envs.first()?;
    uboot_env::UbootEnvSpec::from_section(section).ok()
}

/// A medium whose first [`PROBE_WINDOW`] bytes are read once, up front:
/// the partition table and the whole-disk signatures read them in pieces,
/// and on a disk each piece was a round trip to the device (the kernel
/// drops a disk's cached pages when its last opener closes it). A head
/// that cannot be read is not cached, so its reads fail as they would.
/// Being sized, it is also the `&mut dyn Medium` the FAT reader takes.
struct HeadCached<'a, M: Medium + ?Sized> {
    inner: &'a mut M,
    head: Vec<u8>,
}

impl<'a, M: Medium + ?Sized> HeadCached<'a, M> {
    fn new(inner: &'a mut M, size: Option<u64>) -> Self {
        let window = size.map_or(PROBE_WINDOW as u64, |s| s.min(PROBE_WINDOW as u64));
        let mut head = vec![0u8; window as usize];
        if inner.read_at(0, &mut head).is_err() {
            head.clear();
        }
        HeadCached { inner, head }
    }
}

impl<M: Medium + ?Sized> Medium for HeadCached<'_, M> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let cached = usize::try_from(offset)
            .ok()
            .and_then(|start| self.head.get(start..start.checked_add(buf.len())?));
        match cached {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => self.inner.read_at(offset, buf),
        }
    }
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("disk inspection never writes"))
    }
}

/// A disk or image file opened read-only for inspection: no exclusive
/// open, so a mounted disk can be looked at too.
pub struct ReadOnlyDisk {
    file: std::fs::File,
    size: u64,
}

impl ReadOnlyDisk {
    pub fn open(path: &std::path::Path) -> std::io::Result<ReadOnlyDisk> {
        use std::io::Seek;
        let mut file = std::fs::File::open(path)?;
        // Works for block devices and files alike.
        let size = file.seek(std::io::SeekFrom::End(0))?;
        Ok(ReadOnlyDisk { file, size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Medium for ReadOnlyDisk {
    /// Past the end reads zeros, like every `Medium`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        buf.fill(0);
        let available = self.size.saturating_sub(offset).min(buf.len() as u64) as usize;
        if available > 0 {
            self.file.read_exact_at(&mut buf[..available], offset)?;
        }
        Ok(())
    }

    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("disk inspection never writes"))
    }
}
