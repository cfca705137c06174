//! Ordering bundle versions, to refuse an `upgrade` that goes backwards.
//!
//! Versions are compared as SemVer where they are SemVer (`1.10.0` >
//! `1.9.2`, `2.0.0-rc.1` < `2.0.0`, `+build` ignored) and otherwise piece
//! by piece: runs of digits as numbers, other runs as text, so `2024.03.1`
//! and `v7` order too. Only two versions that cannot be put in order at all
//! (one empty) are `None`.

use std::cmp::Ordering;

/// `a` compared with `b`; `None` when either is empty.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let strip_build = |v: &str| v.split_once('+').map_or(v, |(core, _)| core).to_string();
    let (a, b) = (strip_build(a), strip_build(b));
    let (a_core, a_pre) = split_pre(&a);
    let (b_core, b_pre) = split_pre(&b);
    let core = compare_pieces(a_core, b_core);
    if core != Ordering::Equal {
        return Some(core);
    }
    // A pre-release comes before its release.
    Some(match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compare_pieces(x, y),
    })
}

/// `1.2.3-rc.1` → (`1.2.3`, `rc.1`); a `-` after a letter-free core only.
fn split_pre(v: &str) -> (&str, Option<&str>) {
    match v.split_once('-') {
        Some((core, pre)) if !core.is_empty() && core.bytes().all(|c| c.is_ascii_digit() || c == b'.') => {
            (core, Some(pre))
        }
        _ => (v, None),
    }
}

/// Runs of digits compare as numbers and rank below text runs; missing
/// trailing numeric pieces count as 0 (`1.2` = `1.2.0`).
fn compare_pieces(a: &str, b: &str) -> Ordering {
    let (pa, pb) = (pieces(a), pieces(b));
    for i in 0..pa.len().max(pb.len()) {
        let ordering = match (pa.get(i), pb.get(i)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(Piece::Number(0)), None) | (None, Some(Piece::Number(0))) => Ordering::Equal,
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Piece {
    Number(u128),
    Text(String),
}

fn pieces(v: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(c) = rest.chars().next() {
        if !c.is_ascii_alphanumeric() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let digit = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| !ch.is_ascii_alphanumeric() || ch.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let run = &rest[..end];
        out.push(if digit {
            Piece::Number(run.parse().unwrap_or(u128::MAX))
        } else {
            Piece::Text(run.to_ascii_lowercase())
        });
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    #[test]
    fn semver_orders_numerically_with_prereleases_first() {
        assert_eq!(compare_versions("1.10.0", "1.9.2"), Some(Greater));
        assert_eq!(compare_versions("1.0.0", "2.0.0"), Some(Less));
        assert_eq!(compare_versions("2.0.0-rc.1", "2.0.0"), Some(Less));
        assert_eq!(compare_versions("2.0.0-rc.2", "2.0.0-rc.10"), Some(Less));
        assert_eq!(compare_versions("1.2.3+build.5", "1.2.3"), Some(Equal));
        assert_eq!(compare_versions("1.2", "1.2.0"), Some(Equal));
    }

    #[test]
    fn other_schemes_order_piece_by_piece() {
        assert_eq!(compare_versions("2024.03.1", "2023.12.9"), Some(Greater));
        assert_eq!(compare_versions("v7", "v10"), Some(Less));
        assert_eq!(compare_versions("", "1.0"), None);
    }
}
