//! Lands subsets of each sync interval of a recorded commit, tears sectors,
//! and judges every outcome.
//!
//! Per interval: every subset of its changed sectors when there are at most
//! 2^10, else [`SAMPLES`] of them (the empty and full sets, each sector
//! alone, all but each one, then random subsets of random density, from
//! a seeded generator). Every subset is judged as it is and with sectors
//! that did not land torn: at every point where that changes their bytes
//! when the interval is small enough, else one at random.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use super::judge::Outcome;
use super::selection::{self, Layout, Selection};
use super::{CommitLog, Disk, Intervals, Sector, Unit};

/// Random subsets judged per interval where there are more subsets.
pub const SAMPLES: usize = 1024;
const EXHAUSTIVE_UP_TO: usize = 10;
/// Below this many (subset, torn sector, tear point) combinations, every
/// one is judged; above it, one random tear per subset.
const EXHAUSTIVE_TEARS: usize = 8192;

/// The seed: `POWER_CUT_SEED` replays a run; otherwise one from the clock.
pub fn seed() -> u64 {
    match std::env::var("POWER_CUT_SEED") {
        Ok(s) => s.parse().expect("POWER_CUT_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// splitmix64: small, seedable, good enough to pick subsets.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// What a matrix run found.
#[derive(Debug, Default)]
pub struct Report {
    pub intervals: usize,
    pub outcomes: usize,
    pub counts: BTreeMap<Outcome, usize>,
    /// The first failures (at most a few), each a sentence.
    pub failures: Vec<String>,
    pub failed: usize,
}

impl Report {
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self.counts.iter().map(|(k, v)| format!("{k:?} {v}")).collect();
        format!(
            "{} sync intervals, {} outcomes ({}), {} failed",
            self.intervals,
            self.outcomes,
            counts.join(", "),
            self.failed
        )
    }
}

/// Replays the cuts of `log` over the final image at `image`.
pub fn run(image: &Path, log: &CommitLog, layout: &Layout, seed: u64) -> Report {
    let file = File::open(image).expect("open image");
    let intervals = Intervals::from_log(log);
    let layout = &Layout {
        touched: intervals.before_commit.keys().copied().collect(),
        ..layout.clone()
    };
    let final_state = intervals.state_before(intervals.intervals.len());
    let read = |base: &BTreeMap<u64, Sector>| -> Selection {
        selection::read(
            &mut Disk {
                image: &file,
                base,
                landed: BTreeMap::new(),
            },
            layout,
        )
    };
    let old = read(&intervals.before_commit);
    let new = read(&final_state);
    let mut report = Report {
        intervals: intervals.intervals.len(),
        ..Report::default()
    };
    for (k, units) in intervals.intervals.iter().enumerate() {
        let base = intervals.state_before(k);
        let mut rng = Rng::new(seed ^ (k as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        let subsets = subsets(units.len(), &mut rng);
        let tear_points: usize = units.iter().map(|u| u.changed_bytes().len()).sum();
        let exhaustive_tears = subsets.len() * tear_points <= EXHAUSTIVE_TEARS;
        for subset in subsets {
            let landed_units: Vec<&Unit> = subset.iter().map(|&i| &units[i]).collect();
            let landed: BTreeMap<u64, Sector> = landed_units.iter().map(|u| (u.sector, u.after)).collect();
            let missing: Vec<&Unit> = (0..units.len())
                .filter(|i| !subset.contains(i))
                .map(|i| &units[i])
                .filter(|u| !landed.contains_key(&u.sector))
                .collect();
            let mut variants = vec![(landed.clone(), None)];
            for (unit, prefix) in tears(&missing, exhaustive_tears, &mut rng) {
                let mut torn = landed.clone();
                torn.insert(unit.sector, unit.torn(prefix));
                variants.push((torn, Some((unit.sector, prefix))));
            }
            for (state, tear) in variants {
                report.outcomes += 1;
                let mut disk = Disk {
                    image: &file,
                    base: &base,
                    landed: state,
                };
                match selection::outcome(&mut disk, layout, &old, &new) {
                    Ok(outcome) => *report.counts.entry(outcome).or_default() += 1,
                    Err(why) => {
                        report.failed += 1;
                        if report.failures.len() < 3 {
                            let mut sectors: Vec<u64> = landed_units.iter().map(|u| u.sector).collect();
                            sectors.sort();
                            let all: Vec<u64> = units.iter().map(|u| u.sector).collect();
                            report.failures.push(format!(
                                "cut in sync interval {} of {} (it changes sectors {}), sectors {} landed{}: {why}",
                                k + 1,
                                intervals.intervals.len(),
                                ranges(&all),
                                if sectors.is_empty() {
                                    "none".into()
                                } else {
                                    ranges(&sectors)
                                },
                                tear.map(|(s, p)| format!(", sector {s} torn after {p} bytes"))
                                    .unwrap_or_default(),
                            ));
                        }
                    }
                }
            }
        }
    }
    report
}

/// The torn sectors to try with one subset: every sector that did not land
/// at every point where the tear changes what it holds (after each changed
/// byte but the last), or one of them at random.
fn tears<'u>(missing: &[&'u Unit], exhaustive: bool, rng: &mut Rng) -> Vec<(&'u Unit, usize)> {
    let points = |u: &Unit| -> Vec<usize> {
        let changed = u.changed_bytes();
        changed[..changed.len().saturating_sub(1)]
            .iter()
            .map(|&b| b + 1)
            .collect()
    };
    if exhaustive {
        return missing
            .iter()
            .flat_map(|&u| points(u).into_iter().map(move |p| (u, p)))
            .collect();
    }
    if missing.is_empty() {
        return Vec::new();
    }
    let unit = missing[rng.below(missing.len())];
    let points = points(unit);
    if points.is_empty() {
        return Vec::new();
    }
    vec![(unit, points[rng.below(points.len())])]
}

/// Index sets to land: all of them for small intervals, else a structured
/// random sample.
fn subsets(n: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    if n <= EXHAUSTIVE_UP_TO {
        return (0u32..1 << n)
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect();
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new(), (0..n).collect()];
    if 2 * n + 2 <= SAMPLES / 2 {
        out.extend((0..n).map(|i| vec![i]));
        out.extend((0..n).map(|skip| (0..n).filter(|&i| i != skip).collect()));
    }
    while out.len() < SAMPLES {
        let density = rng.next_u64() % 1000;
        out.push((0..n).filter(|_| rng.next_u64() % 1000 < density).collect());
    }
    out
}

/// "0-3, 7, 2048-2063".
pub fn ranges(sorted: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] <= end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}
