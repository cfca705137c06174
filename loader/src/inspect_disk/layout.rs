//! Whether the partitions on a disk are the ones a bundle lays out: the
//! precondition for an `upgrade` (which writes into those partitions) and
//! for the data-keeping `repair`.

use super::table::{PartitionSlot, TableKind};
use crate::bundle::manifest::Manifest;
use crate::formats::{gpt, mbr};

/// How the disk's partition table compares with the bundle's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LayoutComparison {
    /// Not compared: the bundle lays out no partition table.
    #[default]
    NotChecked,
    /// The disk has no readable MBR or GPT.
    NoTable,
    /// Every partition of the bundle's table is on the disk with the same
    /// start, type and size (a partition the bundle `expand`s may be
    /// larger).
    Matches,
    /// Different; the text says how.
    Differs(String),
}

/// One partition as the bundle declares it.
struct Wanted {
    number: u32,
    first_block: u64,
    blocks: u64,
    expand: bool,
    mbr_type: Option<u8>,
    gpt_type: Option<gpt::Guid>,
}

/// Compares the table found on the disk with the bundle's first `gpt` (or
/// else `mbr`) section.
pub fn compare_layout(manifest: &Manifest, table: &TableKind, found: &[PartitionSlot]) -> LayoutComparison {
    let (kind, wanted) = match bundle_layout(manifest) {
        Ok(Some(layout)) => layout,
        Ok(None) => return LayoutComparison::NotChecked,
        Err(e) => return LayoutComparison::Differs(format!("the bundle's partition table cannot be read: {e}")),
    };
    match table {
        TableKind::None => return LayoutComparison::NoTable,
        TableKind::Damaged(why) => return LayoutComparison::Differs(format!("the disk's table is damaged ({why})")),
        other if *other != kind => {
            return LayoutComparison::Differs(format!(
                "the disk has an {other} partition table, the bundle lays out {kind}"
            ))
        }
        _ => {}
    }
    for want in &wanted {
        let Some(have) = found.iter().find(|p| p.number == want.number) else {
            return LayoutComparison::Differs(format!(
                "the disk has no partition {} (the bundle's starts at block {})",
                want.number, want.first_block
            ));
        };
        let type_differs = (want.mbr_type.is_some() && have.mbr_type != want.mbr_type)
            || (want.gpt_type.is_some() && have.gpt_type != want.gpt_type);
        let size_differs = if want.expand {
            have.blocks < want.blocks
        } else {
            have.blocks != want.blocks
        };
        if have.first_block != want.first_block || type_differs || size_differs {
            return LayoutComparison::Differs(format!(
                "partition {} is {} blocks of {} at block {}, the bundle's is {} blocks{} at block {}",
                want.number,
                have.blocks,
                have.type_name(),
                have.first_block,
                want.blocks,
                if want.expand { " or more" } else { "" },
                want.first_block
            ));
        }
    }
    LayoutComparison::Matches
}

/// Where the bundle's table puts partition `number` (Linux numbering), in
/// blocks: `(first block, block count, expands to the end of the disk)`.
pub fn bundle_partition(manifest: &Manifest, number: u32) -> Option<(u64, u64, bool)> {
    let (_, wanted) = bundle_layout(manifest).ok()??;
    let want = wanted.into_iter().find(|w| w.number == number)?;
    Some((want.first_block, want.blocks, want.expand))
}

type Layout = (TableKind, Vec<Wanted>);

fn bundle_layout(manifest: &Manifest) -> Result<Option<Layout>, crate::formats::FormatError> {
    if let Some(section) = manifest.gpts.first() {
        let spec = gpt::GptSpec::from_section(section)?;
        let wanted = spec
            .partitions
            .iter()
            .map(|p| Wanted {
                number: p.index as u32 + 1,
                first_block: p.block_offset,
                blocks: p.block_count,
                expand: p.expand,
                mbr_type: None,
                gpt_type: Some(p.type_guid),
            })
            .collect();
        return Ok(Some((TableKind::Gpt, wanted)));
    }
    if let Some(section) = manifest.mbrs.first() {
        let spec = mbr::MbrSpec::from_section(section)?;
        let wanted = spec
            .partitions
            .iter()
            .filter(|p| p.block_count > 0 || p.expand)
            .map(|p| Wanted {
                number: p.index as u32 + 1,
                first_block: u64::from(p.block_offset),
                blocks: u64::from(p.block_count),
                expand: p.expand,
                mbr_type: Some(p.kind),
                gpt_type: None,
            })
            .collect();
        return Ok(Some((TableKind::Mbr, wanted)));
    }
    Ok(None)
}
