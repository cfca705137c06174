//! Disks in the states a power cut inside the commit leaves, made on the
//! host: the engine installs a bundle onto an image through the power-cut
//! matrix's recording target, and a state is that image with the commit's
//! sync intervals landed up to a point, plus part of the next one.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::apply::{self, ApplyOptions};

use crate::artifacts::{path_str, run_checked};
use crate::power_cut::{Intervals, Recorder, Sector, SECTOR};

/// A recorded commit: the image it left and its sync intervals.
pub struct Commit {
    pub image: PathBuf,
    pub intervals: Intervals,
}

/// Installs `bundle` with `task` onto a copy of `disk` at `image`,
/// recording the commit.
pub fn record(bundle: &Path, disk: &Path, image: &Path, task: &str) -> Commit {
    copy_sparse(disk, image);
    let (mut target, mut watch) = Recorder::open(image);
    let source = File::open(bundle).unwrap_or_else(|e| panic!("open {}: {e}", bundle.display()));
    apply::apply(source, &mut target, &ApplyOptions::new(task), &mut watch)
        .unwrap_or_else(|e| panic!("installing {} onto {}: {e}", bundle.display(), image.display()));
    drop(target);
    Commit {
        image: image.to_path_buf(),
        intervals: Intervals::from_log(&watch.take()),
    }
}

/// What of the interval after the landed ones reached the disk.
pub enum Partial {
    Nothing,
    /// Its first changed sector, torn after `prefix` bytes.
    Torn {
        prefix: usize,
    },
}

impl Commit {
    /// The index of the first interval that changes a sector in `sectors`.
    pub fn interval_touching(&self, sectors: std::ops::Range<u64>) -> usize {
        self.intervals
            .intervals
            .iter()
            .position(|units| units.iter().any(|u| sectors.contains(&u.sector)))
            .unwrap_or_else(|| panic!("no sync interval of the commit changes sectors {sectors:?}"))
    }

    /// Writes to `out` the disk a cut leaves after intervals `..landed`
    /// reached the disk, and `partial` of interval `landed`.
    pub fn state(&self, out: &Path, landed: usize, partial: Partial) {
        copy_sparse(&self.image, out);
        let mut sectors: Vec<(u64, Sector)> = self.intervals.state_before(landed).into_iter().collect();
        if let (Partial::Torn { prefix }, Some(units)) = (partial, self.intervals.intervals.get(landed)) {
            let unit = &units[0];
            sectors.push((unit.sector, unit.torn(prefix)));
        }
        let file = OpenOptions::new().write(true).open(out).expect("open the state");
        for (sector, bytes) in sectors {
            file.write_all_at(&bytes, sector * SECTOR).expect("write the state");
        }
        file.sync_all().expect("sync the state");
    }

    /// Byte positions the first sector of interval `k` changes.
    pub fn changed_bytes(&self, k: usize) -> Vec<usize> {
        self.intervals.intervals[k][0].changed_bytes()
    }
}

fn copy_sparse(from: &Path, to: &Path) {
    run_checked(Command::new("cp").args(["--sparse=always", path_str(from), path_str(to)]));
}
