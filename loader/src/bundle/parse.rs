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

mod known;
mod lexer;
pub(crate) mod parser;

use parser::{At, Hooks, Shape, Source};

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
    /// libconfuse's skipping of an unknown name fails here, so fwup 1.16
    /// cannot read this `meta.conf` either.
    #[error(
        "{detail}, while skipping the unknown `{name}` of line {line} as fwup 1.16 (libconfuse) does; \
         fwup refuses this meta.conf too"
    )]
    CannotSkip { name: String, line: usize, detail: String },
}

/// Parses `meta.conf` text with the grammar alone, every name accepted (the
/// typed readers judge them). `env` answers `${VAR}` references; an unset
/// variable expands to the empty string (or to its `:-default`).
pub fn parse_conf(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Section, ParseError> {
    let source = Source {
        name: "meta.conf".into(),
        text: text.to_string(),
    };
    let mut hooks = MetaConfCalls {
        known: false,
        ignored: Vec::new(),
    };
    parser::parse_with_hooks(source, env, &mut hooks).map_err(|e| e.error)
}

/// Parses `meta.conf` as fwup reads it at install time: with fwup's option
/// tables, so that names it does not know are skipped the way libconfuse
/// skips them (a newer fwup's additions install on this one). Returns the
/// tree and one [`Ignored`] per name skipped.
pub fn parse_meta_conf(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Section, Vec<Ignored>), ParseError> {
    let source = Source {
        name: "meta.conf".into(),
        text: text.to_string(),
    };
    let mut hooks = MetaConfCalls {
        known: true,
        ignored: Vec::new(),
    };
    let root = parser::parse_with_hooks(source, env, &mut hooks).map_err(|e| e.error)?;
    Ok((root, hooks.ignored))
}

/// An option, section or function call that fwup 1.16 does not know and
/// skipped (a newer fwup's addition, or a typo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub name: String,
    pub line: usize,
    /// Where it was: `meta.conf`, `task "complete"`, `on-init`, …
    pub within: String,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "meta.conf line {}: `{}` in {} is not known to this version and was ignored, as fwup does",
            self.line, self.name, self.within
        )
    }
}

/// `meta.conf` rules: calls only in handlers and tasks, stored as fwup's
/// callbacks store them; with `known`, names outside fwup's tables are
/// skipped and recorded.
struct MetaConfCalls {
    known: bool,
    ignored: Vec<Ignored>,
}

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

    fn option(
        &mut self,
        _at: At<'_>,
        path: &[String],
        section: &Section,
        key: &str,
        value: Value,
    ) -> Result<Value, ParseErrorKind> {
        let problem = match known::meta_conf_kind(path, key) {
            Some(kind) if self.known => known::value_problem(kind, &value),
            _ => None,
        };
        match problem {
            Some(problem) => Err(ParseErrorKind::Rejected(format!(
                "option `{key}` of {section}: {problem}; fwup 1.16 refuses this meta.conf too"
            ))),
            None => Ok(value),
        }
    }

    fn entry(&mut self, _at: At<'_>, path: &[String], name: &str, shape: Shape) -> Result<(), ParseErrorKind> {
        use known::Kind;
        let Some(kind) = known::meta_conf_kind(path, name).filter(|_| self.known) else {
            return Ok(());
        };
        let fits = match kind {
            Kind::Section(titled) => shape == Shape::Section(titled),
            Kind::Function => shape == Shape::Call,
            Kind::IntList | Kind::StrList => matches!(shape, Shape::Assign | Shape::Append),
            Kind::Str | Kind::Int | Kind::Bool => shape == Shape::Assign,
        };
        if fits {
            return Ok(());
        }
        let what = match kind {
            Kind::Section(true) => format!("a section written `{name} \"NAME\" {{ … }}`"),
            Kind::Section(false) => format!("a section written `{name} {{ … }}`"),
            Kind::Function => format!("a function written `{name}(…)`"),
            Kind::IntList | Kind::StrList => format!("a list option written `{name} = {{…}}` or `{name} += …`"),
            _ => format!("an option written `{name} = VALUE`"),
        };
        Err(ParseErrorKind::Rejected(format!(
            "`{name}` is {what} in fwup 1.16, which refuses this meta.conf"
        )))
    }

    fn skip_unknown(&mut self, at: At<'_>, path: &[String], section: &Section, name: &str) -> bool {
        if !self.known || known::meta_conf_kind(path, name).is_some() {
            return false;
        }
        self.ignored.push(Ignored {
            name: name.to_string(),
            line: at.line,
            within: section.to_string(),
        });
        true
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
