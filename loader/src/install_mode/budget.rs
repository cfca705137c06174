//! How much memory a whole bundle may take (memory mode): what the kernel
//! says is available, less room for everything else the install needs.

use std::fmt;

const MIB: u64 = 1024 * 1024;

/// The install's own working set besides the bundle and its held writes:
/// pipeline buffers, TLS, the loader itself (about 12 MiB measured over
/// HTTPS), with room to spare.
const WORKING_SET: u64 = 32 * MIB;

/// The memory budget for holding a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `MemAvailable` from `/proc/meminfo`, when it could be read.
    pub available: Option<u64>,
    /// Bytes a bundle may take in memory.
    pub bytes: u64,
}

impl Budget {
    /// The budget on this machine: `MemAvailable` less the held boot writes
    /// (`hold_limit`), the working set and an eighth of what is available,
    /// which the kernel keeps for the page cache of the writes and network
    /// buffers. Nothing when `/proc/meminfo` cannot be read.
    pub fn system(hold_limit: u64) -> Budget {
        let text = std::fs::read_to_string("/proc/meminfo").ok();
        Budget::from_meminfo(text.as_deref(), hold_limit)
    }

    pub fn from_meminfo(meminfo: Option<&str>, hold_limit: u64) -> Budget {
        let available = meminfo.and_then(mem_available);
        let bytes = available.map_or(0, |a| a.saturating_sub(hold_limit + WORKING_SET + a / 8));
        Budget { available, bytes }
    }

    /// Whether a bundle of `length` bytes fits.
    pub fn fits(&self, length: u64) -> bool {
        length <= self.bytes
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = crate::report::console::human;
        match self.available {
            Some(a) => write!(f, "{} of {} available", human(self.bytes), human(a)),
            None => f.write_str("none (MemAvailable unknown)"),
        }
    }
}

/// `MemAvailable:  123456 kB` in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:         524288 kB\nMemFree:          400000 kB\nMemAvailable:     409600 kB\nBuffers:               0 kB\n";

    #[test]
    fn the_budget_leaves_the_held_writes_the_working_set_and_an_eighth() {
        let budget = Budget::from_meminfo(Some(MEMINFO), 64 * MIB);
        assert_eq!(budget.available, Some(400 * MIB));
        assert_eq!(budget.bytes, 400 * MIB - 64 * MIB - 32 * MIB - 50 * MIB);
        assert!(budget.fits(254 * MIB) && !budget.fits(254 * MIB + 1));
        assert_eq!(budget.to_string(), "254.0 MiB of 400.0 MiB available");
    }

    #[test]
    fn without_meminfo_or_with_little_memory_nothing_fits() {
        let none = Budget::from_meminfo(None, 64 * MIB);
        assert_eq!((none.available, none.bytes), (None, 0));
        assert!(!none.fits(1));
        let small = Budget::from_meminfo(Some("MemAvailable: 65536 kB\n"), 64 * MIB);
        assert_eq!(small.bytes, 0);
    }
}
