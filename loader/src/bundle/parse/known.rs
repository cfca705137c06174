//! The names fwup 1.16 knows in each `meta.conf` section and what they are
//! (the option tables of its `cfgfile.c`, which it parses `meta.conf` with
//! at apply time). Anything else is unknown: libconfuse skips it (fwup sets
//! `CFGF_IGNORE_UNKNOWN`, which every section inherits) and so do we, in
//! the way [`super::parser`] reproduces. Known names must be used as what
//! they are, with values their type accepts, or libconfuse (and so fwup)
//! refuses the whole file.

use crate::bundle::conf::Value;

/// What a name is in fwup's option table (libconfuse's `CFG_*` macros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
    IntList,
    StrList,
    /// A section; `true` when it takes a title.
    Section(bool),
    Function,
}

use Kind::{Bool, Function, Int, IntList, Section, Str, StrList};

/// Functions an event handler (`on-init`, `on-finish`, `on-error`,
/// `on-resource`) knows, besides `funlist` and `include`.
const EVENT_FUNCTIONS: [&str; 26] = [
    "raw_memset",
    "raw_write",
    "fat_mkfs",
    "fat_attrib",
    "fat_write",
    "fat_cp",
    "fat_mv",
    "fat_mv!",
    "fat_rm",
    "fat_rm!",
    "fat_mkdir",
    "fat_setlabel",
    "fat_touch",
    "gpt_write",
    "mbr_write",
    "trim",
    "uboot_clearenv",
    "uboot_recover",
    "uboot_setenv",
    "uboot_unsetenv",
    "error",
    "info",
    "path_write",
    "pipe_write",
    "execute",
    "reboot_param",
];

const ROOT: &[(&str, Kind)] = &[
    ("meta-product", Str),
    ("meta-description", Str),
    ("meta-version", Str),
    ("meta-author", Str),
    ("meta-platform", Str),
    ("meta-architecture", Str),
    ("meta-creation-date", Str),
    ("meta-fwup-version", Str),
    ("meta-vcs-identifier", Str),
    ("meta-misc", Str),
    ("meta-uuid", Str),
    ("meta-nickname", Str),
    ("require-fwup-version", Str),
    ("block-cache-size-mb", Int),
    ("define", Function),
    ("define!", Function),
    ("define-eval", Function),
    ("define-eval!", Function),
    ("file-resource", Section(true)),
    ("mbr", Section(true)),
    ("gpt", Section(true)),
    ("task", Section(true)),
    ("uboot-environment", Section(true)),
    ("include", Function),
    ("__unknown", Str),
];
const FILE_RESOURCE: &[(&str, Kind)] = &[
    ("include", Function),
    ("host-path", Str),
    ("skip-holes", Bool),
    ("length", IntList),
    ("contents", Str),
    ("blake2b-256", Str),
    ("sha256", Str),
    ("assert-size-lte", Int),
    ("assert-size-gte", Int),
    ("__unknown", Str),
];
const MBR: &[(&str, Kind)] = &[
    ("bootstrap-code-host-path", Str),
    ("bootstrap-code", Str),
    ("include-osip", Bool),
    ("osip-major", Int),
    ("osip-minor", Int),
    ("osip-num-pointers", Int),
    ("signature", Str),
    ("partition", Section(true)),
    ("osii", Section(true)),
    ("__unknown", Str),
];
const MBR_PARTITION: &[(&str, Kind)] = &[
    ("block-offset", Str),
    ("block-count", Int),
    ("type", Int),
    ("boot", Bool),
    ("expand", Bool),
    ("__unknown", Str),
];
const MBR_OSII: &[(&str, Kind)] = &[
    ("os-major", Int),
    ("os-minor", Int),
    ("start-block-offset", Int),
    ("ddr-load-address", Int),
    ("entry-point", Int),
    ("image-size-blocks", Int),
    ("attribute", Int),
    ("__unknown", Str),
];
const GPT: &[(&str, Kind)] = &[("guid", Str), ("partition", Section(true)), ("__unknown", Str)];
const GPT_PARTITION: &[(&str, Kind)] = &[
    ("block-offset", Str),
    ("block-count", Int),
    ("type", Str),
    ("guid", Str),
    ("name", Str),
    ("flags", Str),
    ("expand", Bool),
    ("boot", Bool),
    ("__unknown", Str),
];
const UBOOT_ENVIRONMENT: &[(&str, Kind)] = &[
    ("block-offset", Str),
    ("block-count", Int),
    ("block-offset-redund", Str),
    ("__unknown", Str),
];
const TASK: &[(&str, Kind)] = &[
    ("include", Function),
    ("reqlist", StrList),
    ("require-partition-offset", Function),
    ("require-fat-file-exists", Function),
    ("require-uboot-variable", Function),
    ("require-path-on-device", Function),
    ("require-path-at-offset", Function),
    ("require-fat-file-match", Function),
    ("require-execute", Function),
    ("require-partition1-offset", Int),
    ("require-unmounted-destination", Bool),
    ("verify-on-the-fly", Bool),
    ("on-init", Section(false)),
    ("on-finish", Section(false)),
    ("on-error", Section(false)),
    ("on-resource", Section(true)),
    ("__unknown", Str),
];
const ON_RESOURCE: &[(&str, Kind)] = &[
    ("verify-on-the-fly", Bool),
    ("delta-source-raw-offset", Str),
    ("delta-source-raw-count", Int),
    ("delta-source-raw-options", Str),
    ("delta-source-fat-offset", Str),
    ("delta-source-fat-path", Str),
];

/// What `name` is inside the section reached by `path` (the section kinds
/// from the root down: `[]` is the root, `["mbr", "partition"]` an MBR
/// partition); `None` when fwup does not know it there.
pub(crate) fn meta_conf_kind(path: &[String], name: &str) -> Option<Kind> {
    let kinds: Vec<&str> = path.iter().map(String::as_str).collect();
    let find = |table: &[(&str, Kind)]| table.iter().find(|(n, _)| *n == name).map(|&(_, k)| k);
    let event = |extra: &[(&str, Kind)]| match name {
        "funlist" => Some(StrList),
        "include" => Some(Function),
        _ if EVENT_FUNCTIONS.contains(&name) => Some(Function),
        _ => find(extra),
    };
    match kinds.as_slice() {
        [] => find(ROOT),
        ["file-resource"] => find(FILE_RESOURCE),
        ["mbr"] => find(MBR),
        ["mbr", "partition"] => find(MBR_PARTITION),
        ["mbr", "osii"] => find(MBR_OSII),
        ["gpt"] => find(GPT),
        ["gpt", "partition"] => find(GPT_PARTITION),
        ["uboot-environment"] => find(UBOOT_ENVIRONMENT),
        ["task"] => find(TASK),
        ["task", "on-init" | "on-finish" | "on-error"] => event(&[]),
        ["task", "on-resource"] => event(ON_RESOURCE),
        // Deeper than fwup's tables go: nothing is known there.
        _ => None,
    }
}

/// Why libconfuse refuses `value` for an option of `kind`, if it does:
/// integers are read with `strtol(…, 0)` and must be consumed whole,
/// booleans are yes/true/on or no/false/off (any case), and a list is only
/// accepted by a list option.
pub(crate) fn value_problem(kind: Kind, value: &Value) -> Option<String> {
    let items: &[String] = match value {
        Value::Scalar(s) => std::slice::from_ref(s),
        Value::List(_) if !matches!(kind, IntList | StrList) => {
            return Some("a list is given where one value is expected".into())
        }
        Value::List(items) => items,
    };
    let bad = items.iter().find(|item| match kind {
        Int | IntList => strtol_whole(item).is_none(),
        Bool => !["yes", "true", "on", "no", "false", "off"].contains(&item.to_ascii_lowercase().as_str()),
        _ => false,
    })?;
    Some(match kind {
        Bool => format!("`{bad}` is not a boolean (true/false, yes/no, on/off)"),
        _ => format!("`{bad}` is not an integer"),
    })
}

/// C's `strtol(text, &end, 0)` with `*end == '\0'` required, as libconfuse
/// reads `CFG_INT`: leading white space, a sign, then `0x` hex, leading-`0`
/// octal or decimal; out of range is refused. (An empty text reads as 0:
/// `strtol` stops at once and the end is the terminator.)
pub(crate) fn strtol_whole(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    let t = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"));
    let (radix, digits) = match hex {
        Some(h) if h.bytes().next().is_some_and(|b| b.is_ascii_hexdigit()) => (16, h),
        _ if t.len() > 1 && t.starts_with('0') => (8, &t[1..]),
        _ => (10, t),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(kinds: &[&str]) -> Vec<String> {
        kinds.iter().map(|k| k.to_string()).collect()
    }

    fn meta_conf_knows(path: &[String], name: &str) -> bool {
        meta_conf_kind(path, name).is_some()
    }

    #[test]
    fn integers_and_booleans_read_as_libconfuse_reads_them() {
        for (text, value) in [
            ("0x83", 131),
            ("0203", 131),
            (" 131", 131),
            ("-5", -5),
            ("+7", 7),
            ("0", 0),
            ("", 0),
        ] {
            assert_eq!(strtol_whole(text), Some(value), "{text:?}");
        }
        for bad in ["abc", "12abc", "0x", "09", "1.5", " ", "99999999999999999999"] {
            assert_eq!(strtol_whole(bad), None, "{bad:?}");
        }
        let scalar = |s: &str| Value::Scalar(s.to_string());
        assert_eq!(value_problem(Bool, &scalar("Yes")), None);
        assert!(value_problem(Bool, &scalar("maybe")).is_some());
        assert!(value_problem(Int, &Value::List(vec!["1".into()])).is_some());
        assert_eq!(
            value_problem(IntList, &Value::List(vec!["1".into(), "0x2".into()])),
            None
        );
        assert!(value_problem(IntList, &Value::List(vec!["1".into(), "x".into()])).is_some());
        assert_eq!(value_problem(Str, &scalar("anything")), None);
    }

    #[test]
    fn names_are_known_only_where_fwup_declares_them() {
        assert!(meta_conf_knows(&path(&[]), "meta-product"));
        assert!(!meta_conf_knows(&path(&[]), "meta-new-field"));
        assert!(!meta_conf_knows(&path(&[]), "funlist"));
        assert!(meta_conf_knows(&path(&["mbr", "partition"]), "expand"));
        assert!(!meta_conf_knows(&path(&["gpt", "partition"]), "osii"));
        assert!(meta_conf_knows(&path(&["gpt", "partition"]), "name"));
        assert!(meta_conf_knows(&path(&["task"]), "on-resource"));
        assert!(!meta_conf_knows(&path(&["task"]), "on-validate"));
        assert!(meta_conf_knows(&path(&["task", "on-init"]), "raw_write"));
        assert!(!meta_conf_knows(&path(&["task", "on-init"]), "delta-source-raw-count"));
        assert!(meta_conf_knows(
            &path(&["task", "on-resource"]),
            "delta-source-raw-count"
        ));
        assert!(!meta_conf_knows(&path(&["task", "on-init"]), "ubi_volume_write"));
        assert!(!meta_conf_knows(&path(&["task", "on-init", "x"]), "funlist"));
    }
}
