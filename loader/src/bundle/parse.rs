//! Parsing `meta.conf` text into the [`Section`] tree.
//!
//! The grammar is libconfuse's as fwup uses it (`opts` tables in fwup's
//! `cfgfile.c`, parser states in libconfuse's `cfg_parse_internal`):
//!
//! ```text
//! entry   := NAME '=' value | NAME '+=' value
//!          | NAME '{' entry* '}' | NAME TITLE '{' entry* '}'
//!          | NAME '(' [arg {',' arg} [',']] ')'
//! value   := STRING | '{' [STRING {',' STRING} [',']] '}'
//! ```
//!
//! The tree is schema-free: every value stays text and the typed readers
//! (the manifest, the MBR/GPT/U-Boot specs) decide what it means. What
//! libconfuse would do differently depending on fwup's option table is
//! reproduced where it changes the result:
//!
//! * `+=` appends to the option's last value (lists);
//! * an untitled section that appears twice in the same parent is one
//!   section (fwup's `on-init`, `on-finish`, `on-error` are single sections);
//! * two titled sections of one kind with the same title are an error
//!   (fwup declares every titled section `CFGF_NO_TITLE_DUPES`);
//! * a function call in an event handler appends `argc, name, args…` to its
//!   `funlist`, and a `require-*` call in a task appends to `reqlist`, which
//!   is what fwup's callbacks do; any other call is refused (fwup never
//!   writes calls into `meta.conf`, and `define`/`include` have no business
//!   at apply time).
//!
//! `${VAR}` expansion happens in the lexer, exactly where libconfuse does it
//! (see [`lexer`]); fwup sets `FWUP_META_UUID` before parsing, so callers
//! pass an `env` that answers it (see `meta_uuid::MetaIds::env`).

mod lexer;
pub(crate) mod parser;

use parser::{At, Hooks, Source};

use super::conf::{Section, Value};

/// Deeper nesting than this is refused; real `meta.conf` files nest three
/// levels (`mbr` → `partition`, `task` → `on-resource`).
pub const MAX_DEPTH: usize = 32;

/// Event handler sections whose function calls become `funlist` entries.
const HANDLER_KINDS: [&str; 4] = ["on-init", "on-finish", "on-error", "on-resource"];

/// A syntax error, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("meta.conf line {line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("unterminated string")]
    UnterminatedString,
    #[error("bad escape sequence `{0}` in a string")]
    BadEscape(String),
    #[error("octal escape `{0}` is larger than 255")]
    OctalTooLarge(String),
    #[error("a string's escapes decode to bytes that are not UTF-8")]
    NotUtf8,
    #[error("found {found} where {expected} was expected")]
    Unexpected { found: String, expected: &'static str },
    #[error("`}}` without a matching `{{`")]
    UnmatchedCloseBrace,
    #[error("section {kind} \"{title}\" appears twice")]
    DuplicateSection { kind: String, title: String },
    #[error("function call `{name}(…)` is not allowed in {context}")]
    FunctionCall { name: String, context: String },
    #[error("sections are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error(
        "includes are nested deeper than {} levels (does a file include itself?)",
        parser::MAX_INCLUDE_DEPTH
    )]
    IncludeTooDeep,
    /// Refused by the caller's option table (`fwup.conf` rules).
    #[error("{0}")]
    Rejected(String),
}

/// Parses `meta.conf` text. `env` answers `${VAR}` references; an unset
/// variable expands to the empty string (or to its `:-default`).
pub fn parse_conf(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Section, ParseError> {
    let source = Source {
        name: "meta.conf".into(),
        text: text.to_string(),
    };
    parser::parse_with_hooks(source, env, &mut MetaConfCalls).map_err(|e| e.error)
}

/// `meta.conf` rules: calls only in handlers and tasks, stored as fwup's
/// callbacks store them.
struct MetaConfCalls;

impl Hooks for MetaConfCalls {
    fn call(
        &mut self,
        _at: At<'_>,
        section: &mut Section,
        name: String,
        args: Vec<String>,
    ) -> Result<Option<Source>, ParseErrorKind> {
        call_function(section, name, args).map(|()| None)
    }
}

/// Expands `${VAR}` and `${VAR:-default}` in `s` the way a double-quoted
/// libconfuse string does: the name ends at the first `}`, `:-` after the
/// first `:` introduces the default, an unset variable without a default
/// becomes empty, and a `${` without a closing `}` stays as it is.
pub fn expand_vars(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&lexer::lookup_var(&rest[start + 2..start + 2 + len], env));
        rest = &rest[start + 2 + len + 1..];
    }
    out.push_str(rest);
    out
}

/// `key += value`: extends the key's last value, or starts a list.
pub(crate) fn append_option(section: &mut Section, key: String, value: Value) {
    let new_items = match value {
        Value::Scalar(s) => vec![s],
        Value::List(items) => items,
    };
    match section.options.iter_mut().rev().find(|(k, _)| *k == key) {
        Some((_, existing)) => {
            let mut items = match std::mem::replace(existing, Value::List(Vec::new())) {
                Value::Scalar(s) => vec![s],
                Value::List(items) => items,
            };
            items.extend(new_items);
            *existing = Value::List(items);
        }
        None => section.options.push((key, Value::List(new_items))),
    }
}

/// What fwup's libconfuse callbacks do with a call: event handler
/// functions and task requirements are appended to `funlist` / `reqlist`.
fn call_function(section: &mut Section, name: String, args: Vec<String>) -> Result<(), ParseErrorKind> {
    let list = if HANDLER_KINDS.contains(&section.kind.as_str()) {
        "funlist"
    } else if section.kind == "task" && name.starts_with("require-") {
        "reqlist"
    } else {
        return Err(ParseErrorKind::FunctionCall {
            name,
            context: section.to_string(),
        });
    };
    append_call(section, list, name, args);
    Ok(())
}

/// Appends `argc, name, args…` to the `list` option (`funlist` or
/// `reqlist`) of `section`, where `argc` counts the name.
pub(crate) fn append_call(section: &mut Section, list: &str, name: String, args: Vec<String>) {
    let mut items = Vec::with_capacity(args.len() + 2);
    items.push((args.len() + 1).to_string());
    items.push(name);
    items.extend(args);
    append_option(section, list.to_string(), Value::List(items));
}

#[cfg(test)]
mod tests;
