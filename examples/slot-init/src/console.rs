//! Where PID 1's lines go: every console the kernel has active.
//!
//! With `console=tty0 console=ttyS0`, `/dev/console` reaches only the last
//! one (the serial port), but a person may be watching the VGA screen of a
//! cloud provider's web console. So each line is written to every device
//! listed in `/sys/class/tty/console/active`, falling back to `/dev/console`
//! and then to the standard output the kernel gave us.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The open console devices; writes never fail loudly (there is nowhere
/// else to report to).
pub struct Consoles {
    outputs: Vec<File>,
}

impl Consoles {
    /// Opens the active consoles named under `sysfs`, as device nodes under `dev`.
    pub fn open(sysfs: &Path, dev: &Path) -> Self {
        let active = std::fs::read_to_string(sysfs.join("class/tty/console/active")).unwrap_or_default();
        let mut outputs: Vec<File> = console_names(&active)
            .into_iter()
            .filter_map(|name| open_for_writing(&dev.join(name)))
            .collect();
        if outputs.is_empty() {
            outputs.extend(open_for_writing(&dev.join("console")));
        }
        Consoles { outputs }
    }

    /// Writes one line to every console (or stdout when none could be opened).
    pub fn line(&self, text: &str) {
        let record = format!("{text}\n");
        if self.outputs.is_empty() {
            let _ = std::io::stdout().write_all(record.as_bytes());
            return;
        }
        for mut output in &self.outputs {
            let _ = output.write_all(record.as_bytes());
        }
    }
}

/// The device names in the kernel's `console/active` list (for example
/// `"tty0 ttyS0\n"`), without duplicates or anything that is not a plain name.
pub fn console_names(active: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for name in active.split_whitespace() {
        let plain = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if plain && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Opens a tty for writing without making it our controlling terminal.
fn open_for_writing(path: &Path) -> Option<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(path)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_active_console_is_listed_once() {
        assert_eq!(console_names("tty0 ttyS0\n"), vec!["tty0", "ttyS0"]);
        assert_eq!(console_names("ttyS0 ttyS0"), vec!["ttyS0"]);
    }

    #[test]
    fn names_that_could_leave_dev_are_ignored() {
        assert_eq!(console_names("../sda tty0 .. ."), vec!["tty0"]);
        assert!(console_names("").is_empty());
    }

    #[test]
    fn lines_reach_each_active_console_file() {
        let root = tempfile::tempdir().unwrap();
        let (sysfs, dev) = (root.path().join("sys"), root.path().join("dev"));
        std::fs::create_dir_all(sysfs.join("class/tty/console")).unwrap();
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(sysfs.join("class/tty/console/active"), "tty0 ttyS0\n").unwrap();
        std::fs::write(dev.join("tty0"), "").unwrap();
        std::fs::write(dev.join("ttyS0"), "").unwrap();
        std::fs::write(dev.join("console"), "").unwrap();

        Consoles::open(&sysfs, &dev).line("hello");

        assert_eq!(std::fs::read_to_string(dev.join("tty0")).unwrap(), "hello\n");
        assert_eq!(std::fs::read_to_string(dev.join("ttyS0")).unwrap(), "hello\n");
        assert_eq!(std::fs::read_to_string(dev.join("console")).unwrap(), "");
    }

    #[test]
    fn dev_console_is_the_fallback_when_no_active_list_exists() {
        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("console"), "").unwrap();

        Consoles::open(&root.path().join("sys"), &dev).line("up");

        assert_eq!(std::fs::read_to_string(dev.join("console")).unwrap(), "up\n");
    }
}
