//! A recognised install: the U-Boot-format environment that Nerves systems
//! (and the example A/B system) keep beside their partitions, and GRUB's
//! `grubenv` on the boot partition.
//!
//! The environment is looked for where the bundle declares it when a bundle
//! is at hand, and otherwise at the places Nerves systems put it.

use std::collections::BTreeMap;
use std::fmt;

use crate::formats::{fat, uboot_env, Medium, BLOCK_SIZE};

/// Where Nerves systems keep their environment when no bundle says:
/// (block offset, block count). x86_64 and the example system use block
/// 2048; the Raspberry Pi systems block 16; several ARM boards 256 blocks
/// of 128 KiB.
pub const COMMON_ENV_LOCATIONS: [(u64, u64); 3] = [(2048, 16), (16, 16), (256, 256)];

/// What the environment area holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EnvState {
    /// Nothing there: all zeros or all 0xff (never written, or wiped).
    #[default]
    Absent,
    /// Bytes that are not a valid environment (a CRC mismatch, a torn
    /// write, something else's data): `problem` says which.
    Damaged { block: u64, problem: String },
    /// A valid environment.
    Valid { block: u64, vars: BTreeMap<String, String> },
}

impl EnvState {
    pub fn vars(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            EnvState::Valid { vars, .. } => Some(vars),
            _ => None,
        }
    }
}

/// Reads the environment at `spec`: valid, damaged or absent.
pub fn read_env(m: &mut (impl Medium + ?Sized), spec: &uboot_env::UbootEnvSpec) -> std::io::Result<EnvState> {
    match uboot_env::read(m, spec) {
        Ok(env) => Ok(EnvState::Valid {
            block: spec.block_offset,
            vars: env
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
        }),
        Err(e) if e.is_invalid_env() => {
            let mut raw = vec![0u8; spec.size()];
            m.read_at(spec.block_offset * BLOCK_SIZE, &mut raw)?;
            let blank = raw.iter().all(|&b| b == 0) || raw.iter().all(|&b| b == 0xff);
            Ok(if blank {
                EnvState::Absent
            } else {
                EnvState::Damaged {
                    block: spec.block_offset,
                    problem: e.to_string(),
                }
            })
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Probes `COMMON_ENV_LOCATIONS` for a valid environment naming an install;
/// a damaged area is only reported when nothing valid is found. Areas
/// that fall inside a partition are skipped (that is partition data).
pub fn probe_env(
    m: &mut (impl Medium + ?Sized),
    inside_partition: &dyn Fn(u64, u64) -> bool,
) -> std::io::Result<EnvState> {
    let mut damaged = None;
    for (block_offset, block_count) in COMMON_ENV_LOCATIONS {
        if inside_partition(block_offset, block_count) {
            continue;
        }
        let spec = uboot_env::UbootEnvSpec {
            name: "probe".into(),
            block_offset,
            block_count,
            redundant_block_offset: None,
        };
        match read_env(m, &spec)? {
            valid @ EnvState::Valid { .. } if valid.vars().is_some_and(|v| v.contains_key("nerves_fw_active")) => {
                return Ok(valid)
            }
            // A damaged 8 KiB area at block 16 may simply be another
            // layout's data: only the Nerves x86_64 location is reported.
            d @ EnvState::Damaged { .. } if block_offset == 2048 => damaged = Some(d),
            _ => {}
        }
    }
    Ok(damaged.unwrap_or(EnvState::Absent))
}

/// The install an environment describes: the active slot and what the
/// environment says about the bundle in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub slot: String,
    pub product: Option<String>,
    pub version: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    /// `FWUP_META_UUID` of the bundle installed in the active slot.
    pub uuid: Option<String>,
}

impl Installed {
    /// `None` when the environment names no active slot.
    pub fn from_env(env: &BTreeMap<String, String>) -> Option<Installed> {
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
            uuid: var("uuid"),
            slot,
        })
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

/// `/boot/grub/grubenv` of the FAT volume at `offset`, when there is one:
/// GRUB's environment block ("# GRUB Environment Block", `name=value`
/// lines, `#` padding).
pub fn read_grubenv(m: &mut dyn Medium, offset: u64) -> Option<BTreeMap<String, String>> {
    let mut volume = fat::Fat::open(m, offset).ok()?;
    let raw = volume.read_file(m, "/boot/grub/grubenv", 4096).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let mut lines = text.lines();
    if lines.next()? != "# GRUB Environment Block" {
        return None;
    }
    Some(
        lines
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}
