//! The stages of one network boot, read from its console: seconds since
//! QEMU started at which each stage's marker line appeared. The scenarios
//! record them in `target/qemu-tests/timings.tsv` and the boot race
//! (`examples/boot_race.rs`) compares the loader with a busybox + fwup
//! initramfs on the same stages, so a regression in any one shows.

use crate::scenario::{FIRST_WRITE, LOADER_START, RESULT, SYSTEM_UP};
use crate::vm::Vm;

/// The stages, in boot order: the labels of the table columns.
pub const STAGES: [&str; 8] = ["iPXE", "kernel", "/init", "loader", "1st write", "done", "reboot", "up"];

/// How a stage is recognised on the console.
#[derive(Debug, Clone, Copy)]
pub enum Marker {
    /// The first line containing this text.
    Contains(&'static str),
    /// The first line that is a bare number above 0: fwup's `-n` progress
    /// after its first write (it prints 0 before it opens the bundle).
    Progress,
}

impl Marker {
    fn matches(&self, line: &str) -> bool {
        match self {
            Marker::Contains(text) => line.contains(text),
            Marker::Progress => line.trim().parse::<u32>().is_ok_and(|p| p > 0),
        }
    }
}

/// The markers of the stages the kernel, iPXE and the installed system
/// print, whoever installs.
const IPXE: Marker = Marker::Contains("iPXE initialising");
const KERNEL: Marker = Marker::Contains("Linux version");
/// The kernel's own line just before it executes `/init`.
const INIT: Marker = Marker::Contains("Run /init as init process");
/// The kernel's line as it resets the machine, after either initramfs.
pub const RESTARTING: &str = "reboot: Restarting system";
const REBOOT: Marker = Marker::Contains(RESTARTING);
const UP: Marker = Marker::Contains(SYSTEM_UP);

/// The loader's markers: its first line, the start of the resource
/// writes, its result line.
pub const LOADER: [Marker; 8] = [
    IPXE,
    KERNEL,
    INIT,
    Marker::Contains(LOADER_START),
    Marker::Contains(FIRST_WRITE),
    Marker::Contains(RESULT),
    REBOOT,
    UP,
];

/// The busybox + fwup reference's markers: its `/init` script's first
/// line, fwup's first `-n` progress line above 0, the script's line after
/// fwup exits.
pub const REFERENCE: [Marker; 8] = [
    IPXE,
    KERNEL,
    INIT,
    Marker::Contains("reference: start"),
    Marker::Progress,
    Marker::Contains("reference: fwup exited"),
    REBOOT,
    UP,
];

/// When each stage's marker appeared in one boot, if it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings(pub [Option<f64>; 8]);

impl Timings {
    /// Reads the stages off `vm`'s console so far.
    pub fn read(vm: &Vm, markers: &[Marker; 8]) -> Timings {
        Timings::from_lines(&vm.lines(), markers)
    }

    pub fn from_lines(lines: &[(f64, String)], markers: &[Marker; 8]) -> Timings {
        Timings(markers.map(|m| lines.iter().find(|(_, l)| m.matches(l)).map(|(at, _)| *at)))
    }

    /// The time of stage `label` (one of [`STAGES`]).
    pub fn at(&self, label: &str) -> Option<f64> {
        STAGES.iter().position(|s| *s == label).and_then(|i| self.0[i])
    }

    /// Seconds from stage `from` to stage `to`.
    pub fn span(&self, from: &str, to: &str) -> Option<f64> {
        Some(self.at(to)? - self.at(from)?)
    }

    pub fn human(&self) -> String {
        let parts: Vec<String> = STAGES
            .iter()
            .zip(self.0)
            .filter_map(|(label, at)| at.map(|at| format!("{label} {at:.1} s")))
            .collect();
        parts.join(", ")
    }

    /// Tab-separated cells, `-` for a stage that did not appear.
    pub fn tsv_cells(&self) -> String {
        let cells: Vec<String> = self
            .0
            .iter()
            .map(|at| at.map_or("-".to_string(), |at| format!("{at:.2}")))
            .collect();
        cells.join("\t")
    }
}

/// The loader's own steps in one boot: from the kernel's `/init` line to
/// its first line, each `loader: stage:` line to the next, and the last
/// one to the kernel's reboot line, in milliseconds ("/init->loader 88,
/// finding the bundle 48, …"). A step that grows shows here before it
/// shows in the phase.
pub fn loader_steps(lines: &[(f64, String)]) -> String {
    let Some(start) = lines.iter().position(|(_, l)| INIT.matches(l)) else {
        return String::new();
    };
    let mut marks: Vec<(f64, String)> = vec![(lines[start].0, "/init->loader".into())];
    for (at, line) in &lines[start + 1..] {
        if let Some(stage) = line.split("loader: stage: ").nth(1) {
            marks.push((*at, stage.trim().to_string()));
        } else if line.contains(LOADER_START) && marks.len() == 1 {
            marks.push((*at, "start".into()));
        } else if line.contains(RESULT) {
            marks.push((*at, "result->reboot".into()));
        } else if REBOOT.matches(line) {
            marks.push((*at, String::new()));
            break;
        }
    }
    marks
        .windows(2)
        .map(|w| format!("{} {:.0}", w[0].1, (w[1].0 - w[0].0) * 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_read_from_the_first_matching_line() {
        let lines: Vec<(f64, String)> = [
            (0.2, "iPXE initialising devices..."),
            (2.0, "[    0.000000] Linux version 6.1.0-loader"),
            (3.1, "[    1.100000] Run /init as init process"),
            (3.2, "reference: start"),
            (3.3, "0"),
            (3.4, "4"),
            (3.5, "10"),
            (3.9, "reference: fwup exited 0"),
            (4.0, "[    2.000000] reboot: Restarting system"),
            (9.0, "[    0.000000] Linux version 6.1.0-loader"),
            (12.5, "installed-system: slot=a version=1.0.0 up"),
        ]
        .iter()
        .map(|(at, l)| (*at, l.to_string()))
        .collect();
        let t = Timings::from_lines(&lines, &REFERENCE);
        assert_eq!(
            t.0,
            [
                Some(0.2),
                Some(2.0),
                Some(3.1),
                Some(3.2),
                Some(3.4),
                Some(3.9),
                Some(4.0),
                Some(12.5)
            ]
        );
        assert_eq!(t.span("/init", "reboot"), Some(4.0 - 3.1));
        let loader = Timings::from_lines(&lines, &LOADER);
        assert_eq!(loader.at("1st write"), None);
        assert_eq!(loader.tsv_cells().split('\t').nth(4), Some("-"));
    }

    #[test]
    fn loader_steps_are_the_gaps_between_its_stage_lines() {
        let lines: Vec<(f64, String)> = [
            (7.602, "[    1.462005] Run /init as init process"),
            (7.690, "loader: loader 0.1.0 starting (task=auto)"),
            (7.693, "loader: stage: finding the bundle"),
            (7.741, "loader: bundle: example 1.0.0"),
            (7.750, "loader: stage: choosing the disk"),
            (8.133, "loader: stage: committing boot-critical writes"),
            (8.226, "loader: result: installed example"),
            (8.266, "[    2.124973] reboot: Restarting system"),
        ]
        .iter()
        .map(|(at, l)| (*at, l.to_string()))
        .collect();
        assert_eq!(
            loader_steps(&lines),
            "/init->loader 88, start 3, finding the bundle 57, choosing the disk 383, \
             committing boot-critical writes 93, result->reboot 40"
        );
    }
}
