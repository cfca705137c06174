//! Which slot and version booted, from the kernel command line, the root
//! partition and `/etc/os-release`. Pure parsers over text and numbers.

use std::fmt;

/// Partition numbers of the example disk (see `examples/ab-system/fwup.conf`):
/// p2 holds root filesystem A, p3 root filesystem B, p4 the application data.
pub const ROOT_A_PARTITION: u32 = 2;
pub const ROOT_B_PARTITION: u32 = 3;
pub const DATA_PARTITION: u32 = 4;

/// One of the two root filesystem slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// The `slot=a|b` word GRUB's `grub.cfg` puts on the kernel command line.
    pub fn from_cmdline(cmdline: &str) -> Option<Slot> {
        cmdline
            .split_whitespace()
            .filter_map(|word| word.strip_prefix("slot="))
            .next_back()
            .and_then(Slot::from_name)
    }

    /// The slot a root partition number belongs to on the example layout.
    pub fn from_root_partition(number: u32) -> Option<Slot> {
        match number {
            ROOT_A_PARTITION => Some(Slot::A),
            ROOT_B_PARTITION => Some(Slot::B),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Slot> {
        match name {
            "a" | "A" => Some(Slot::A),
            "b" | "B" => Some(Slot::B),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The booted slot: what the boot loader said, checked against the
/// partition the kernel actually mounted as root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotFinding {
    pub slot: Option<Slot>,
    /// Set when the command line and the root partition disagree (a
    /// `grub.cfg` bug worth shouting about); the root partition wins.
    pub cmdline_disagrees: bool,
}

/// Decides the slot from the command line and the root partition number.
pub fn booted_slot(cmdline: &str, root_partition: Option<u32>) -> SlotFinding {
    let said = Slot::from_cmdline(cmdline);
    let mounted = root_partition.and_then(Slot::from_root_partition);
    match (said, mounted) {
        (Some(said), Some(mounted)) => SlotFinding {
            slot: Some(mounted),
            cmdline_disagrees: said != mounted,
        },
        (said, mounted) => SlotFinding {
            slot: mounted.or(said),
            cmdline_disagrees: false,
        },
    }
}

/// The system version from `/etc/os-release`: `VERSION_ID`, else `VERSION`,
/// without shell quoting.
pub fn os_release_version(text: &str) -> Option<String> {
    let value_of = |key: &str| {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
            .map(unquote)
            .find(|value| !value.is_empty())
    };
    value_of("VERSION_ID").or_else(|| value_of("VERSION"))
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)) {
            return inner.to_string();
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMDLINE: &str = "BOOT_IMAGE=(hd0,msdos2)/boot/bzImage root=PARTUUID=4c4f4144-02 ro slot=a ip=dhcp\n";

    #[test]
    fn slot_comes_from_the_command_line() {
        assert_eq!(Slot::from_cmdline(CMDLINE), Some(Slot::A));
        assert_eq!(Slot::from_cmdline("root=/dev/vda3 slot=b"), Some(Slot::B));
        assert_eq!(Slot::from_cmdline("root=/dev/vda3 slot=c"), None);
        assert_eq!(Slot::from_cmdline("root=/dev/vda3 myslot=a"), None);
    }

    #[test]
    fn root_partition_wins_when_the_command_line_disagrees() {
        let finding = booted_slot(CMDLINE, Some(ROOT_B_PARTITION));
        assert_eq!(finding.slot, Some(Slot::B));
        assert!(finding.cmdline_disagrees);
    }

    #[test]
    fn either_source_alone_is_enough() {
        assert_eq!(booted_slot("ro", Some(ROOT_A_PARTITION)).slot, Some(Slot::A));
        assert_eq!(booted_slot("slot=b", None).slot, Some(Slot::B));
        assert_eq!(booted_slot("slot=b", Some(DATA_PARTITION)).slot, Some(Slot::B));
        assert_eq!(booted_slot("ro", None).slot, None);
        assert!(!booted_slot(CMDLINE, Some(ROOT_A_PARTITION)).cmdline_disagrees);
    }

    #[test]
    fn version_id_is_preferred_and_unquoted() {
        let text = "NAME=\"Loader example\"\nVERSION=\"2.0.0 (example)\"\nVERSION_ID=2.0.0\n";
        assert_eq!(os_release_version(text).as_deref(), Some("2.0.0"));
        assert_eq!(os_release_version("VERSION='1.0.0'\n").as_deref(), Some("1.0.0"));
    }

    #[test]
    fn missing_or_empty_versions_are_none() {
        assert_eq!(os_release_version("NAME=x\nVERSION_ID=\"\"\n"), None);
        assert_eq!(os_release_version("VERSION_IDX=1\n"), None);
    }
}
