//! Writing `meta.conf` in fwup's normalized form.
//!
//! What fwup 1.16 writes (checked byte for byte against the corpus
//! bundles): options and sections in the order of fwup's option tables, not
//! of the input; one `key=value` per line, no indentation; unset, empty
//! and default-valued options left out, and so are sections that end up
//! empty; pack-time options (`host-path`, `contents`, `assert-size-*`,
//! `bootstrap-code-host-path`) never written; numbers in decimal; strings
//! bare when they are a plain word (letters, digits, `_`, `.`) and quoted
//! with `\"` and `\\` escaped otherwise; one-element lists as a scalar,
//! longer ones as `{a,b,c}`; section titles always quoted.

use super::schema::{parse_int, Opt, Schema, ROOT};
use crate::bundle::conf::{Section, Value};

/// The `meta.conf` text for a tree read from `fwup.conf`.
pub(crate) fn meta_conf_text(root: &Section) -> String {
    let mut out = String::new();
    print_section(&mut out, root, &ROOT);
    out
}

fn print_section(out: &mut String, section: &Section, schema: &Schema) {
    for &(key, opt) in schema.options {
        if let Some(value) = section.get(key) {
            print_option(out, key, opt, value);
        }
    }
    for &(kind, titled, sub) in schema.sections {
        for child in section.children(kind) {
            let start = out.len();
            match (&child.title, titled) {
                (Some(title), true) => {
                    out.push_str(kind);
                    out.push(' ');
                    push_quoted(out, title);
                    out.push_str(" {\n");
                }
                _ => {
                    out.push_str(kind);
                    out.push_str(" {\n");
                }
            }
            let body = out.len();
            print_section(out, child, sub);
            if out.len() == body {
                out.truncate(start);
            } else {
                out.push_str("}\n");
            }
        }
    }
}

fn print_option(out: &mut String, key: &str, opt: Opt, value: &Value) {
    let items: &[String] = match value {
        Value::Scalar(s) => std::slice::from_ref(s),
        Value::List(items) => items,
    };
    let text = match (opt, items) {
        (Opt::PackOnly, _) | (_, []) => return,
        (Opt::Str, [s]) if s.is_empty() => return,
        (Opt::Int(default), [s]) => match parse_int(s) {
            Some(n) if Some(n) == default => return,
            Some(n) => n.to_string(),
            None => word_or_quoted(s),
        },
        (Opt::Bool(default), [s]) => {
            if (s == "true") == default {
                return;
            }
            s.clone()
        }
        (Opt::IntList, _) => list(items, |s| s.clone()),
        _ => list(items, |s| word_or_quoted(s)),
    };
    out.push_str(key);
    out.push('=');
    out.push_str(&text);
    out.push('\n');
}

fn list(items: &[String], item: impl Fn(&String) -> String) -> String {
    match items {
        [single] => item(single),
        _ => format!("{{{}}}", items.iter().map(item).collect::<Vec<_>>().join(",")),
    }
}

/// Bare when the text is a plain word, else quoted.
fn word_or_quoted(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
        s.to_string()
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        push_quoted(&mut out, s);
        out
    }
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_fwup() {
        assert_eq!(word_or_quoted("x86_64"), "x86_64");
        assert_eq!(word_or_quoted("1.0.0"), "1.0.0");
        assert_eq!(word_or_quoted("0xa5"), "0xa5");
        assert_eq!(word_or_quoted("mbr-a"), "\"mbr-a\"");
        assert_eq!(word_or_quoted("/boot"), "\"/boot\"");
        assert_eq!(word_or_quoted(""), "\"\"");
        assert_eq!(word_or_quoted("fat_mv!"), "\"fat_mv!\"");
        assert_eq!(word_or_quoted("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(word_or_quoted("${FWUP_META_UUID}"), "\"${FWUP_META_UUID}\"");
    }

    #[test]
    fn defaults_empties_and_pack_options_are_left_out() {
        let mut root = Section::default();
        let set = |s: &mut Section, k: &str, v: &str| s.options.push((k.into(), Value::Scalar(v.into())));
        set(&mut root, "meta-description", "");
        set(&mut root, "meta-product", "A b");
        let mut env = Section {
            kind: "uboot-environment".into(),
            title: Some("env".into()),
            ..Section::default()
        };
        set(&mut env, "block-offset", "2048");
        set(&mut env, "block-count", "2147483647");
        root.sections.push(env);
        let mut res = Section {
            kind: "file-resource".into(),
            title: Some("r".into()),
            ..Section::default()
        };
        set(&mut res, "host-path", "x");
        set(&mut res, "skip-holes", "true");
        res.options
            .push(("length".into(), Value::List(vec!["1".into(), "2".into()])));
        root.sections.push(res);
        let mut task = Section {
            kind: "task".into(),
            title: Some("t".into()),
            ..Section::default()
        };
        task.sections.push(Section {
            kind: "on-finish".into(),
            ..Section::default()
        });
        root.sections.push(task);
        assert_eq!(
            meta_conf_text(&root),
            "meta-product=\"A b\"\nfile-resource \"r\" {\nlength={1,2}\n}\n\
             uboot-environment \"env\" {\nblock-offset=2048\n}\n"
        );
    }
}
