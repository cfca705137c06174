//! fwup's option tables (`cfgfile.c` of fwup 1.16): which options and
//! sections exist where, their types and defaults, and their order.
//!
//! The order is the order `fwup -c` prints `meta.conf` in (its printer
//! walks these tables, not the input file), the types decide how a value is
//! checked and written (`type = 0xc` becomes `type=12`), and the defaults
//! are left out of `meta.conf` like fwup does.

/// How one option is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    /// Text; written bare when it is a plain word, quoted otherwise.
    Str,
    /// A number as libconfuse's `CFG_INT` reads it, written in decimal;
    /// not written when equal to the default.
    Int(Option<i64>),
    /// true/yes/on or false/no/off, written `true`/`false`; not written when
    /// equal to the default.
    Bool(bool),
    /// A list of numbers (`length`).
    IntList,
    /// A list of text (`funlist`, `reqlist`).
    StrList,
    /// Used while packing only; never written to `meta.conf`.
    PackOnly,
}

/// Which function calls a section accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Calls {
    None,
    /// `define…` and `include` (top level).
    Root,
    /// `include` only (`file-resource`).
    Include,
    /// `require-*` guards and `include` (`task`).
    Requirements,
    /// Actions and `include` (event handlers).
    Actions,
}

/// One section kind's table.
#[derive(Debug)]
pub(crate) struct Schema {
    pub options: &'static [(&'static str, Opt)],
    /// `(kind, titled, schema)` in print order.
    pub sections: &'static [(&'static str, bool, &'static Schema)],
    pub calls: Calls,
}

impl Schema {
    pub fn option(&self, key: &str) -> Option<Opt> {
        self.options.iter().find(|(k, _)| *k == key).map(|&(_, o)| o)
    }

    /// The schema of a subsection and whether it takes a title.
    pub fn section(&self, kind: &str) -> Option<(bool, &'static Schema)> {
        self.sections
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|&(_, titled, schema)| (titled, schema))
    }
}

const INT32_MAX: i64 = i32::MAX as i64;

pub(crate) static ROOT: Schema = Schema {
    options: &[
        ("meta-product", Opt::Str),
        ("meta-description", Opt::Str),
        ("meta-version", Opt::Str),
        ("meta-author", Opt::Str),
        ("meta-platform", Opt::Str),
        ("meta-architecture", Opt::Str),
        ("meta-creation-date", Opt::Str),
        ("meta-fwup-version", Opt::Str),
        ("meta-vcs-identifier", Opt::Str),
        ("meta-misc", Opt::Str),
        ("require-fwup-version", Opt::Str),
    ],
    sections: &[
        ("file-resource", true, &FILE_RESOURCE),
        ("mbr", true, &MBR),
        ("gpt", true, &GPT),
        ("task", true, &TASK),
        ("uboot-environment", true, &UBOOT_ENVIRONMENT),
    ],
    calls: Calls::Root,
};

pub(crate) static FILE_RESOURCE: Schema = Schema {
    options: &[
        ("host-path", Opt::PackOnly),
        ("skip-holes", Opt::Bool(true)),
        ("length", Opt::IntList),
        ("contents", Opt::PackOnly),
        ("blake2b-256", Opt::Str),
        ("sha256", Opt::Str),
        ("assert-size-lte", Opt::PackOnly),
        ("assert-size-gte", Opt::PackOnly),
    ],
    sections: &[],
    calls: Calls::Include,
};

static MBR: Schema = Schema {
    options: &[
        ("bootstrap-code-host-path", Opt::PackOnly),
        ("bootstrap-code", Opt::Str),
        ("include-osip", Opt::Bool(false)),
        ("osip-major", Opt::Int(Some(1))),
        ("osip-minor", Opt::Int(Some(0))),
        ("osip-num-pointers", Opt::Int(Some(1))),
        ("signature", Opt::Str),
    ],
    sections: &[("partition", true, &MBR_PARTITION), ("osii", true, &MBR_OSII)],
    calls: Calls::None,
};

static MBR_PARTITION: Schema = Schema {
    options: &[
        ("block-offset", Opt::Str),
        ("block-count", Opt::Int(Some(INT32_MAX))),
        ("type", Opt::Int(Some(-1))),
        ("boot", Opt::Bool(false)),
        ("expand", Opt::Bool(false)),
    ],
    sections: &[],
    calls: Calls::None,
};

static MBR_OSII: Schema = Schema {
    options: &[
        ("os-major", Opt::Int(Some(0))),
        ("os-minor", Opt::Int(Some(0))),
        ("start-block-offset", Opt::Int(Some(0))),
        ("ddr-load-address", Opt::Int(Some(0))),
        ("entry-point", Opt::Int(Some(0))),
        ("image-size-blocks", Opt::Int(Some(0))),
        ("attribute", Opt::Int(Some(0xf))),
    ],
    sections: &[],
    calls: Calls::None,
};

static GPT: Schema = Schema {
    options: &[("guid", Opt::Str)],
    sections: &[("partition", true, &GPT_PARTITION)],
    calls: Calls::None,
};

/// `boot = true` is folded into `flags` (bit 2, "legacy BIOS bootable")
/// when the `gpt` section closes, as fwup does.
pub(crate) static GPT_PARTITION: Schema = Schema {
    options: &[
        ("block-offset", Opt::Str),
        ("block-count", Opt::Int(Some(INT32_MAX))),
        ("type", Opt::Str),
        ("guid", Opt::Str),
        ("name", Opt::Str),
        ("flags", Opt::Str),
        ("boot", Opt::Bool(false)),
        ("expand", Opt::Bool(false)),
    ],
    sections: &[],
    calls: Calls::None,
};

static UBOOT_ENVIRONMENT: Schema = Schema {
    options: &[
        ("block-offset", Opt::Int(Some(-1))),
        ("block-count", Opt::Int(Some(INT32_MAX))),
        ("block-offset-redund", Opt::Int(Some(-1))),
    ],
    sections: &[],
    calls: Calls::None,
};

static TASK: Schema = Schema {
    options: &[
        ("reqlist", Opt::StrList),
        ("require-partition1-offset", Opt::Int(Some(-1))),
        ("require-unmounted-destination", Opt::Bool(false)),
        ("verify-on-the-fly", Opt::Bool(false)),
    ],
    sections: &[
        ("on-init", false, &HANDLER),
        ("on-finish", false, &HANDLER),
        ("on-error", false, &HANDLER),
        ("on-resource", true, &ON_RESOURCE),
    ],
    calls: Calls::Requirements,
};

static HANDLER: Schema = Schema {
    options: &[("funlist", Opt::StrList)],
    sections: &[],
    calls: Calls::Actions,
};

static ON_RESOURCE: Schema = Schema {
    options: &[
        ("verify-on-the-fly", Opt::Bool(false)),
        ("delta-source-raw-offset", Opt::Int(None)),
        ("delta-source-raw-count", Opt::Int(None)),
        ("delta-source-fat-offset", Opt::Int(None)),
        ("delta-source-fat-path", Opt::Str),
        ("funlist", Opt::StrList),
    ],
    sections: &[],
    calls: Calls::Actions,
};

/// libconfuse's `CFG_INT` parsing (`strtol(…, 0)` with the whole text
/// consumed): optional sign, then decimal, `0x` hex or leading-`0` octal.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    if negative {
        magnitude.checked_neg()
    } else {
        Some(magnitude)
    }
}

/// libconfuse's booleans (case-insensitive).
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_like_strtol_base_0() {
        assert_eq!(parse_int("0xc"), Some(12));
        assert_eq!(parse_int("0x83"), Some(131));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("2048"), Some(2048));
        assert_eq!(parse_int("0"), Some(0));
        for bad in ["", "12abc", "0x", "09", "- 1", "1.5"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_subsection_has_a_schema_with_a_distinct_kind() {
        fn walk(schema: &Schema) {
            for (i, (kind, _, sub)) in schema.sections.iter().enumerate() {
                assert!(schema.sections[..i].iter().all(|(k, _, _)| k != kind));
                assert!(schema.option(kind).is_none(), "{kind} is both option and section");
                walk(sub);
            }
        }
        walk(&ROOT);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("1"), None);
    }
}
