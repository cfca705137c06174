//! Choosing the bundle task: `complete` or `upgrade`, and why.
//!
//! With `loader.task=auto` the disk decides. A disk holding an install of
//! the same firmware (a U-Boot environment whose active slot names the
//! bundle's product and platform) gets the bundle's `upgrade` task: this
//! is the rescue reinstall, and the application data is kept. A disk with
//! no recognised install gets `complete`. Wiping a recognised install is
//! never automatic: when an upgrade is impossible (the partition layout
//! changed, the bundle has no upgrade task, or the disk carries the
//! bundle's partition table but no environment naming a slot) the choice
//! stops and asks for `loader.task=complete`.
//!
//! The decision is a pure function over facts ([`BundleFacts`],
//! [`DiskFacts`]); reading those facts from a disk is an
//! [`InstallReader`]'s job, so the rules are testable without the
//! on-disk formats.

use std::collections::BTreeMap;
use std::fmt;

use super::config::TaskRequest;
use crate::bundle::manifest::Manifest;
use crate::formats::Medium;

/// What the bundle says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFacts {
    pub product: Option<String>,
    pub version: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    /// Task names in meta.conf order.
    pub tasks: Vec<String>,
    pub has_partition_table: bool,
}

impl BundleFacts {
    pub fn from_manifest(manifest: &Manifest) -> BundleFacts {
        let meta = &manifest.meta;
        BundleFacts {
            product: meta.product.clone().filter(|s| !s.is_empty()),
            version: meta.version.clone().filter(|s| !s.is_empty()),
            platform: meta.platform.clone().filter(|s| !s.is_empty()),
            architecture: meta.architecture.clone().filter(|s| !s.is_empty()),
            tasks: manifest.tasks.iter().map(|t| t.name.clone()).collect(),
            has_partition_table: !manifest.mbrs.is_empty() || !manifest.gpts.is_empty(),
        }
    }

    fn has_task(&self, prefix: &str) -> bool {
        self.tasks.iter().any(|t| t.starts_with(prefix))
    }
}

/// How the disk's partition table compares with the bundle's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TableComparison {
    /// Not compared (the bundle has no table, or the reader does not check).
    #[default]
    NotChecked,
    /// The disk has no MBR or GPT.
    NoTable,
    /// Same partitions (offsets, sizes, types) as the bundle's table.
    Matches,
    /// Different; the text says how ("partition 2 starts at 35328, the bundle's at 69632").
    Differs(String),
}

/// What a reader found on the disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskFacts {
    /// The variables of the U-Boot environment at the bundle's
    /// `uboot-environment` location, when one decoded with a valid CRC.
    pub uboot_env: Option<BTreeMap<String, String>>,
    pub partition_table: TableComparison,
}

/// Gathers [`DiskFacts`] from a disk, using the bundle's MBR/GPT and
/// U-Boot environment definitions (implemented where `formats` lives).
pub trait InstallReader {
    fn read_facts(
        &self,
        disk: &mut dyn Medium,
        manifest: &Manifest,
    ) -> Result<DiskFacts, Box<dyn std::error::Error + Send + Sync>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Complete,
    Upgrade,
    /// Named by `loader.task=`.
    Requested,
}

/// The task prefix to run and the sentence to print before writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChoice {
    /// A task name prefix, resolved by the engine's guard evaluation
    /// (`upgrade` → `upgrade.a` or `upgrade.b`).
    pub task: String,
    pub kind: TaskKind,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskChoiceError {
    #[error("loader.task={requested}: the bundle has no task starting with `{requested}`; its tasks: {}", .available.join(", "))]
    NoSuchTask { requested: String, available: Vec<String> },
    #[error("disk holds {installed}, but {why}; set loader.task=complete to reinstall, wiping the disk")]
    UpgradeImpossible { installed: String, why: String },
    #[error("reading the disk to decide between complete and upgrade: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The slot a Nerves U-Boot environment names as active, and what it says
/// about the firmware in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Installed {
    slot: String,
    product: Option<String>,
    version: Option<String>,
    platform: Option<String>,
    architecture: Option<String>,
}

impl Installed {
    fn from_env(env: &BTreeMap<String, String>) -> Option<Installed> {
        let slot = env.get("nerves_fw_active").filter(|s| !s.is_empty())?.clone();
        let var = |name: &str| {
            env.get(&format!("{slot}.nerves_fw_{name}"))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        Some(Installed {
            product: var("product"),
            version: var("version"),
            platform: var("platform"),
            architecture: var("architecture"),
            slot,
        })
    }

    /// Same firmware kind: product, platform and architecture agree
    /// wherever both sides state them, and product or platform is stated.
    fn same_kind_as(&self, bundle: &BundleFacts) -> bool {
        let agree = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let compared = (self.product.is_some() && bundle.product.is_some())
            || (self.platform.is_some() && bundle.platform.is_some());
        compared
            && agree(&self.product, &bundle.product)
            && agree(&self.platform, &bundle.platform)
            && agree(&self.architecture, &bundle.architecture)
    }
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {} of ", self.slot)?;
        match &self.product {
            Some(product) => write!(f, "'{product}'")?,
            None => f.write_str("an unnamed firmware")?,
        }
        if let Some(version) = &self.version {
            write!(f, " {version}")?;
        }
        if let Some(platform) = &self.platform {
            write!(f, " for {platform}")?;
        }
        Ok(())
    }
}

/// Decides the task (see the module doc for the rules).
pub fn choose_task(
    request: &TaskRequest,
    bundle: &BundleFacts,
    disk: &DiskFacts,
) -> Result<TaskChoice, TaskChoiceError> {
    let require = |prefix: &str| {
        if bundle.has_task(prefix) {
            Ok(prefix.to_string())
        } else {
            Err(TaskChoiceError::NoSuchTask {
                requested: prefix.into(),
                available: bundle.tasks.clone(),
            })
        }
    };
    if let TaskRequest::Prefix(prefix) = request {
        return Ok(TaskChoice {
            task: require(prefix)?,
            kind: TaskKind::Requested,
            reason: format!("running task {prefix} as loader.task={prefix} asks"),
        });
    }

    let installed = disk.uboot_env.as_ref().and_then(Installed::from_env);
    let complete = |why: String| -> Result<TaskChoice, TaskChoiceError> {
        Ok(TaskChoice {
            task: require("complete")?,
            kind: TaskKind::Complete,
            reason: format!("{why}: installing from scratch (task complete)"),
        })
    };
    match installed {
        Some(found) if found.same_kind_as(bundle) => {
            let impossible = |why: String| TaskChoiceError::UpgradeImpossible {
                installed: found.to_string(),
                why,
            };
            match &disk.partition_table {
                TableComparison::Differs(how) => {
                    return Err(impossible(format!(
                        "its partition table differs from the bundle's ({how})"
                    )))
                }
                TableComparison::NoTable if bundle.has_partition_table => {
                    return Err(impossible("it has no partition table".into()))
                }
                _ => {}
            }
            if !bundle.has_task("upgrade") {
                return Err(impossible("the bundle has no upgrade task".into()));
            }
            let to = bundle.version.as_ref().map(|v| format!(" to {v}")).unwrap_or_default();
            Ok(TaskChoice {
                task: "upgrade".into(),
                kind: TaskKind::Upgrade,
                reason: format!(
                    "disk holds {found}: upgrading{to} (keeps application data); \
                     set loader.task=complete to wipe"
                ),
            })
        }
        Some(other) => complete(format!(
            "disk holds {other}, a different firmware than {}",
            describe(bundle)
        )),
        None if disk.partition_table == TableComparison::Matches => Err(TaskChoiceError::UpgradeImpossible {
            installed: "the bundle's partition table".into(),
            why: "no U-Boot environment naming an active slot, so there is nothing to upgrade".into(),
        }),
        None => complete("disk holds no recognised install".into()),
    }
}

/// Reads the disk with `reader`, then decides.
pub fn choose_task_on(
    request: &TaskRequest,
    manifest: &Manifest,
    disk: &mut dyn Medium,
    reader: &dyn InstallReader,
) -> Result<TaskChoice, TaskChoiceError> {
    let bundle = BundleFacts::from_manifest(manifest);
    if let TaskRequest::Prefix(_) = request {
        return choose_task(request, &bundle, &DiskFacts::default());
    }
    let facts = reader.read_facts(disk, manifest).map_err(TaskChoiceError::Read)?;
    choose_task(request, &bundle, &facts)
}

fn describe(bundle: &BundleFacts) -> String {
    let product = bundle
        .product
        .as_deref()
        .map_or("the bundle".into(), |p| format!("'{p}'"));
    match &bundle.platform {
        Some(platform) => format!("{product} for {platform}"),
        None => product,
    }
}

#[cfg(test)]
#[path = "task_choice_tests.rs"]
mod tests;
