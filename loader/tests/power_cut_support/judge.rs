//! The rule each power-cut outcome is judged by.

use super::selection::{Layout, Selection, Table};
use loader::formats::uboot_env::UbootEnv;

/// Which side an outcome is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Old,
    New,
    /// Old and new boot the same; the environments say which.
    Same,
    NothingBootable,
}

/// The rule: what boots is entirely the old selection or entirely the new
/// one, or (an install that writes the partition table) nothing. Each
/// U-Boot environment reads as the environment of that same side, or as
/// invalid — the latter only where no write order can avoid it: a
/// single-copy environment (16 sectors with one CRC: no layout-preserving
/// order makes that atomic), or any environment while what boots switches
/// (the commit makes it unreadable across the switch so that it never names
/// a slot other than the one that boots).
pub fn judge(s: &Selection, old: &Selection, new: &Selection, layout: &Layout) -> Result<Outcome, String> {
    if s.table == Table::Nothing && layout.writes_table {
        return Ok(Outcome::NothingBootable);
    }
    let boots_switch = old.boots() != new.boots();
    let mut sides = Vec::new();
    if s.boots() == old.boots() {
        sides.push((Outcome::Old, old));
    }
    if s.boots() == new.boots() {
        sides.push((Outcome::New, new));
    }
    if sides.is_empty() {
        return Err(format!(
            "what boots is neither old nor new: {}",
            boot_difference(s, old, new)
        ));
    }
    let env_ok = |i: usize, side: &Selection| match &s.envs[i] {
        None => layout.envs[i].redundant_block_offset.is_none() || boots_switch || side.envs[i].is_none(),
        some => *some == side.envs[i],
    };
    for (outcome, side) in &sides {
        if (0..s.envs.len()).all(|i| env_ok(i, side)) {
            return Ok(if sides.len() == 2 { Outcome::Same } else { *outcome });
        }
    }
    let (outcome, side) = sides[0];
    let bad: Vec<String> = (0..s.envs.len())
        .filter(|&i| !env_ok(i, side))
        .map(|i| {
            format!(
                "{} reads {} ({} if the old environment, {} if the new)",
                layout.envs[i].label(),
                describe_env(&s.envs[i]),
                describe_env(&old.envs[i]),
                describe_env(&new.envs[i]),
            )
        })
        .collect();
    Err(format!(
        "what boots is {} but {}",
        match outcome {
            Outcome::Old => "the old selection",
            _ => "the new selection",
        },
        bad.join("; ")
    ))
}

fn describe_env(env: &Option<UbootEnv>) -> String {
    match env {
        None => "invalid".into(),
        Some(env) => {
            let active = env.get("nerves_fw_active").map(|a| format!("nerves_fw_active={a}, "));
            format!("{}{} variables", active.unwrap_or_default(), env.len())
        }
    }
}

fn boot_difference(s: &Selection, old: &Selection, new: &Selection) -> String {
    let mut parts = Vec::new();
    let which = |x_old: bool, x_new: bool| match (x_old, x_new) {
        (true, true) => "same as both",
        (true, false) => "old",
        (false, true) => "new",
        (false, false) => "neither",
    };
    parts.push(format!(
        "partition table {}",
        if s.table == Table::Nothing {
            "none"
        } else {
            which(s.table == old.table, s.table == new.table)
        }
    ));
    parts.push(format!(
        "boot code {}",
        which(s.boot_code == old.boot_code, s.boot_code == new.boot_code)
    ));
    for (i, fat) in s.fats.iter().enumerate() {
        let state = match fat {
            None => "unreadable".to_string(),
            Some(tree) => {
                let changed: Vec<&str> = tree
                    .entries
                    .iter()
                    .filter(|e| {
                        let in_old = old.fats[i].as_ref().is_some_and(|t| t.entries.contains(e));
                        let in_new = new.fats[i].as_ref().is_some_and(|t| t.entries.contains(e));
                        !(in_old && in_new)
                    })
                    .map(|e| e.0.as_str())
                    .collect();
                format!(
                    "{} (differing entries: {})",
                    which(Some(tree) == old.fats[i].as_ref(), Some(tree) == new.fats[i].as_ref()),
                    changed.join(", ")
                )
            }
        };
        parts.push(format!("FAT {}: {state}", i + 1));
    }
    parts.join(", ")
}
