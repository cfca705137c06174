//! The typed model of a bundle's `meta.conf`: what the engine runs.
//!
//! Built from the [`conf::Section`](super::conf::Section) tree after `${VAR}`
//! expansion. Every action and guard is a closed enum, validated here, so an
//! unknown action or a bad argument fails before the first byte is written.

use super::conf::Section;

/// Everything `meta.conf` says.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub meta: Meta,
    /// Top-level `require-fwup-version`, if any.
    pub require_fwup_version: Option<String>,
    /// In declaration order (= order in the archive).
    pub resources: Vec<Resource>,
    /// In declaration order; task selection takes the first match.
    pub tasks: Vec<Task>,
    /// `mbr`, `gpt` and `uboot-environment` sections, kept as parsed; their
    /// typed readers live in `formats` next to the encoders.
    pub mbrs: Vec<Section>,
    pub gpts: Vec<Section>,
    pub uboot_envs: Vec<Section>,
    /// Options fwup would ignore (unknown to fwup 1.16), one line each, so
    /// a typo in a hand-made meta.conf does not pass unnoticed.
    pub warnings: Vec<String>,
}

/// The `meta-*` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub product: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub author: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    pub vcs_identifier: Option<String>,
    pub misc: Option<String>,
    pub creation_date: Option<String>,
    pub fwup_version: Option<String>,
}

/// A `file-resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// As declared: `rootfs.img`, or `/extra.bin` for a resource stored at
    /// the archive root.
    pub name: String,
    /// Alternating data and hole lengths (`length={65536,983040,…}` for a
    /// sparse resource); one element for an ordinary resource. Only the data
    /// runs are stored in the archive.
    pub sparse_map: Vec<u64>,
    pub blake2b_256: [u8; 32],
}

impl Resource {
    /// The archive path: `data/NAME`, or `NAME` without its `/` when absolute.
    pub fn archive_path(&self) -> String {
        match self.name.strip_prefix('/') {
            Some(root) => root.to_string(),
            None => format!("data/{}", self.name),
        }
    }

    /// Bytes stored in the archive (the data runs).
    pub fn stored_len(&self) -> u64 {
        self.sparse_map.iter().step_by(2).sum()
    }

    /// Bytes the resource spans when expanded (data and holes).
    pub fn expanded_len(&self) -> u64 {
        self.sparse_map.iter().sum()
    }
}

/// A `task` section.
#[derive(Debug, Clone, Default)]
pub struct Task {
    pub name: String,
    pub requirements: Vec<Requirement>,
    pub on_init: Vec<Action>,
    pub on_resource: Vec<ResourceHandler>,
    pub on_finish: Vec<Action>,
    pub on_error: Vec<Action>,
}

impl Task {
    pub fn handler(&self, resource: &str) -> Option<&ResourceHandler> {
        self.on_resource.iter().find(|h| h.resource == resource)
    }
}

/// An `on-resource NAME { … }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceHandler {
    pub resource: String,
    pub actions: Vec<Action>,
    /// `delta-source-*` options: a delta update (not supported yet; refused
    /// only when the resource really is a delta).
    pub delta_source: bool,
}

/// A `require-*` guard of a task. All must pass for the task to be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `require-partition-offset(N, BLOCK)`; also the deprecated
    /// `require-partition1-offset = BLOCK` (N = 1).
    PartitionOffset {
        partition: u32,
        block_offset: u64,
    },
    FatFileExists {
        block_offset: u64,
        path: String,
    },
    FatFileMatch {
        block_offset: u64,
        path: String,
        pattern: String,
    },
    UbootVariable {
        env: String,
        name: String,
        value: String,
    },
    PathOnDevice {
        path: String,
        device: String,
    },
    PathAtOffset {
        path: String,
        block_offset: u64,
    },
    /// Passes when the command exits 0; only evaluated with `--unsafe`,
    /// otherwise "not met" (as fwup does).
    Execute {
        command: String,
    },
    /// A guard fwup 1.16 cannot evaluate (unknown, or arguments it would
    /// misread): never met, so the task is never chosen, as in fwup.
    Unusable {
        requirement: String,
        problem: String,
    },
}

/// One action of a `funlist`. Offsets and counts are in 512-byte blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    RawWrite {
        block_offset: u64,
        cipher: Option<String>,
    },
    RawMemset {
        block_offset: u64,
        block_count: u64,
        value: u8,
    },
    MbrWrite {
        mbr: String,
    },
    GptWrite {
        gpt: String,
    },
    Trim {
        block_offset: u64,
        block_count: u64,
    },
    UbootClearenv {
        env: String,
    },
    UbootSetenv {
        env: String,
        name: String,
        value: String,
    },
    UbootUnsetenv {
        env: String,
        name: String,
    },
    UbootRecover {
        env: String,
    },
    FatMkfs {
        block_offset: u64,
        block_count: u64,
    },
    /// `fat_write(OFFSET, PATH)`; the 2-argument-less form writes the
    /// resource under its own name.
    FatWrite {
        block_offset: u64,
        path: String,
    },
    FatMkdir {
        block_offset: u64,
        path: String,
    },
    FatRm {
        block_offset: u64,
        path: String,
        must_exist: bool,
    },
    FatMv {
        block_offset: u64,
        from: String,
        to: String,
        force: bool,
    },
    FatCp {
        from_offset: u64,
        from: String,
        to_offset: u64,
        to: String,
    },
    FatAttrib {
        block_offset: u64,
        path: String,
        attrib: String,
    },
    FatTouch {
        block_offset: u64,
        path: String,
    },
    FatSetlabel {
        block_offset: u64,
        label: String,
    },
    Info {
        message: String,
    },
    Error {
        message: String,
    },
    Execute {
        command: String,
    },
    PathWrite {
        path: String,
    },
    PipeWrite {
        command: String,
    },
    /// An action fwup 1.16 does not know, or with arguments it does not
    /// accept, in a task read for installing: the bundle still installs
    /// other tasks, and this task is refused before anything is written
    /// (fwup fails it at the same point, computing its progress).
    Unusable {
        action: String,
        problem: String,
    },
}

impl Action {
    /// Whether the action reads the resource's bytes (only allowed in
    /// `on-resource` handlers).
    pub fn consumes_data(&self) -> bool {
        matches!(
            self,
            Action::RawWrite { .. } | Action::FatWrite { .. } | Action::PathWrite { .. } | Action::PipeWrite { .. }
        )
    }

    /// Whether fwup only runs it with `--unsafe`.
    pub fn is_unsafe(&self) -> bool {
        matches!(
            self,
            Action::Execute { .. } | Action::PathWrite { .. } | Action::PipeWrite { .. }
        )
    }
}
