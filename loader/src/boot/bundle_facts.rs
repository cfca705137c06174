//! What a bundle says about itself, as the task choice needs it: identity,
//! tasks, whether it lays out partitions, and which partition holds the
//! application data.

use crate::bundle::manifest::{Action, Manifest};

/// What the bundle says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFacts {
    pub product: Option<String>,
    pub version: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    /// `FWUP_META_UUID`.
    pub uuid: Option<String>,
    /// Task names in meta.conf order.
    pub tasks: Vec<String>,
    pub has_partition_table: bool,
    /// The partition (Linux numbering) that holds application data, from
    /// the Nerves variable `a.nerves_fw_application_part0_devpath` that
    /// the `complete` task sets (`/dev/rootdisk0p4` → 4).
    pub data_partition: Option<u32>,
    /// Where the bundle's table puts the data partition: (first block,
    /// blocks, expands to the end of the disk).
    pub data_partition_place: Option<(u64, u64, bool)>,
}

impl BundleFacts {
    pub fn from_manifest(manifest: &Manifest, uuid: &str) -> BundleFacts {
        let meta = &manifest.meta;
        BundleFacts {
            product: meta.product.clone().filter(|s| !s.is_empty()),
            version: meta.version.clone().filter(|s| !s.is_empty()),
            platform: meta.platform.clone().filter(|s| !s.is_empty()),
            architecture: meta.architecture.clone().filter(|s| !s.is_empty()),
            uuid: Some(uuid.to_string()).filter(|s| !s.is_empty()),
            tasks: manifest.tasks.iter().map(|t| t.name.clone()).collect(),
            has_partition_table: !manifest.mbrs.is_empty() || !manifest.gpts.is_empty(),
            data_partition: data_partition(manifest),
            data_partition_place: data_partition(manifest)
                .and_then(|n| crate::inspect_disk::bundle_partition(manifest, n)),
        }
    }

    pub(super) fn has_task(&self, prefix: &str) -> bool {
        self.tasks.iter().any(|t| t.starts_with(prefix))
    }

    pub(super) fn describe(&self) -> String {
        let product = self
            .product
            .as_deref()
            .map_or("the bundle".into(), |p| format!("'{p}'"));
        match &self.platform {
            Some(platform) => format!("{product} for {platform}"),
            None => product,
        }
    }
}

/// The data partition a Nerves-style `complete` task names (see
/// [`BundleFacts::data_partition`]).
fn data_partition(manifest: &Manifest) -> Option<u32> {
    let complete = manifest.tasks.iter().find(|t| t.name.starts_with("complete"))?;
    let actions = complete
        .on_init
        .iter()
        .chain(&complete.on_finish)
        .chain(complete.on_resource.iter().flat_map(|h| h.actions.iter()));
    actions.into_iter().find_map(|action| match action {
        Action::UbootSetenv { name, value, .. } if name.ends_with("nerves_fw_application_part0_devpath") => {
            partition_number(value)
        }
        _ => None,
    })
}

/// `/dev/rootdisk0p4` → 4, `/dev/mmcblk0p3` → 3, `/dev/sda4` → 4; a whole
/// disk (`/dev/rootdisk0`, `/dev/nvme0n1`) → `None`.
fn partition_number(devpath: &str) -> Option<u32> {
    let name = devpath.rsplit('/').next()?;
    let digits = name.len() - name.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (stem, number) = name.split_at(digits);
    let number: u32 = number.parse().ok().filter(|&n| n > 0)?;
    let classic =
        ["sd", "vd", "hd", "xvd"].iter().any(|p| stem.starts_with(p)) && stem.bytes().all(|c| c.is_ascii_lowercase());
    (stem.ends_with('p') && stem.len() > 1 || classic).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_partition_is_read_from_the_nerves_devpath() {
        assert_eq!(partition_number("/dev/rootdisk0p4"), Some(4));
        assert_eq!(partition_number("/dev/mmcblk0p3"), Some(3));
        assert_eq!(partition_number("/dev/nvme0n1p4"), Some(4));
        assert_eq!(partition_number("/dev/sda4"), Some(4));
        assert_eq!(partition_number("/dev/nvme0n1"), None);
        assert_eq!(partition_number("/dev/rootdisk0"), None);
    }
}
