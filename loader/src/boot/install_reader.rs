//! Reads what a disk already holds, for the `auto` task choice: the U-Boot
//! environment the bundle declares and whether the partition table is the
//! bundle's own.

use std::collections::BTreeMap;

use super::task_choice::{DiskFacts, InstallReader, TableComparison};
use crate::bundle::manifest::Manifest;
use crate::formats::{gpt, mbr, uboot_env, Medium};

/// The real reader over the formats module.
pub struct DiskReader {
    /// Device size in 512-byte blocks, for MBR `expand` and GPT backups.
    pub device_blocks: Option<u64>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl InstallReader for DiskReader {
    fn read_facts(&self, disk: &mut dyn Medium, manifest: &Manifest) -> Result<DiskFacts, BoxError> {
        let mut facts = DiskFacts::default();
        for section in &manifest.uboot_envs {
            let spec = uboot_env::UbootEnvSpec::from_section(section)?;
            match uboot_env::read(disk, &spec) {
                Ok(env) => {
                    let vars: BTreeMap<String, String> = env
                        .iter()
                        .map(|(k, v)| {
                            (
                                String::from_utf8_lossy(k).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            )
                        })
                        .collect();
                    facts.uboot_env = Some(vars);
                    break;
                }
                Err(e) if e.is_invalid_env() => {}
                Err(e) => return Err(Box::new(e)),
            }
        }
        facts.partition_table = compare_table(disk, manifest, self.device_blocks)?;
        Ok(facts)
    }
}

fn compare_table(disk: &mut dyn Medium, manifest: &Manifest, blocks: Option<u64>) -> Result<TableComparison, BoxError> {
    if let Some(section) = manifest.gpts.first() {
        let spec = gpt::GptSpec::from_section(section)?;
        let Ok(table) = gpt::read(disk, blocks) else {
            return Ok(TableComparison::NoTable);
        };
        for want in spec.partitions.iter().filter(|p| !p.expand) {
            let found = table.partitions.iter().any(|p| p.first_lba == want.block_offset);
            if !found {
                return Ok(TableComparison::Differs(format!(
                    "no partition starts at block {} as the bundle's GPT expects",
                    want.block_offset
                )));
            }
        }
        return Ok(TableComparison::Matches);
    }
    if let Some(section) = manifest.mbrs.first() {
        let spec = mbr::MbrSpec::from_section(section)?;
        let mut sector = [0u8; 512];
        disk.read_at(0, &mut sector)?;
        if sector[510..] != [0x55, 0xaa] {
            return Ok(TableComparison::NoTable);
        }
        let slots = mbr::read_primary_slots(disk)?;
        for want in spec.partitions.iter().filter(|p| p.index < 4 && p.block_count > 0) {
            let have = &slots[want.index];
            if have.block_offset != u64::from(want.block_offset) || have.kind != want.kind {
                return Ok(TableComparison::Differs(format!(
                    "partition {} is type {:#04x} at block {}, the bundle's is type {:#04x} at block {}",
                    want.index + 1,
                    have.kind,
                    have.block_offset,
                    want.kind,
                    want.block_offset
                )));
            }
        }
        return Ok(TableComparison::Matches);
    }
    Ok(TableComparison::NotChecked)
}
