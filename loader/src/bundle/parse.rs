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

use lexer::{Lexer, Token, TokenKind};

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
}

/// Parses `meta.conf` text. `env` answers `${VAR}` references; an unset
/// variable expands to the empty string (or to its `:-default`).
pub fn parse_conf(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Section, ParseError> {
    let mut parser = Parser {
        lexer: Lexer::new(text, env),
    };
    let mut root = Section::default();
    parser.body(&mut root, 0)?;
    Ok(root)
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

struct Parser<'a> {
    lexer: Lexer<'a>,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Token, ParseError> {
        self.lexer.next_token()
    }

    fn unexpected(token: &Token, expected: &'static str) -> ParseError {
        ParseError {
            line: token.line,
            kind: ParseErrorKind::Unexpected {
                found: token.kind.describe(),
                expected,
            },
        }
    }

    /// Entries up to the closing `}` (or the end of input for the root).
    fn body(&mut self, section: &mut Section, depth: usize) -> Result<(), ParseError> {
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::Str(name) => self.entry(section, name, depth)?,
                TokenKind::CloseBrace if depth > 0 => return Ok(()),
                TokenKind::CloseBrace => {
                    return Err(ParseError {
                        line: token.line,
                        kind: ParseErrorKind::UnmatchedCloseBrace,
                    })
                }
                TokenKind::End if depth == 0 => return Ok(()),
                _ if depth > 0 => return Err(Self::unexpected(&token, "an option name or `}`")),
                _ => return Err(Self::unexpected(&token, "an option name")),
            }
        }
    }

    /// What follows an option or section name.
    fn entry(&mut self, section: &mut Section, name: String, depth: usize) -> Result<(), ParseError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Equals => {
                let value = self.value()?;
                section.options.push((name, value));
            }
            TokenKind::PlusEquals => {
                let value = self.value()?;
                append_option(section, name, value);
            }
            TokenKind::OpenBrace => self.subsection(section, name, None, token.line, depth)?,
            TokenKind::Str(title) => {
                let brace = self.next()?;
                if brace.kind != TokenKind::OpenBrace {
                    return Err(Self::unexpected(&brace, "`{` to open the section"));
                }
                self.subsection(section, name, Some(title), token.line, depth)?;
            }
            TokenKind::OpenParen => {
                let args = self.call_args()?;
                call_function(section, name, args).map_err(|kind| ParseError { line: token.line, kind })?;
            }
            _ => return Err(Self::unexpected(&token, "`=` after the option name")),
        }
        Ok(())
    }

    fn subsection(
        &mut self,
        parent: &mut Section,
        kind: String,
        title: Option<String>,
        line: usize,
        depth: usize,
    ) -> Result<(), ParseError> {
        if depth + 1 > MAX_DEPTH {
            return Err(ParseError {
                line,
                kind: ParseErrorKind::TooDeep,
            });
        }
        let existing = parent.sections.iter().position(|s| s.kind == kind && s.title == title);
        match (existing, title) {
            (Some(_), Some(title)) => Err(ParseError {
                line,
                kind: ParseErrorKind::DuplicateSection { kind, title },
            }),
            // A repeated untitled section continues the first one.
            (Some(index), None) => {
                let mut section = std::mem::take(&mut parent.sections[index]);
                let result = self.body(&mut section, depth + 1);
                parent.sections[index] = section;
                result
            }
            (None, title) => {
                let mut section = Section {
                    kind,
                    title,
                    ..Section::default()
                };
                self.body(&mut section, depth + 1)?;
                parent.sections.push(section);
                Ok(())
            }
        }
    }

    /// A scalar or a `{…}` list. `{}` and a trailing comma are accepted, as
    /// libconfuse does.
    fn value(&mut self) -> Result<Value, ParseError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Str(s) => Ok(Value::Scalar(s)),
            TokenKind::OpenBrace => {
                let mut items = Vec::new();
                loop {
                    let token = self.next()?;
                    match token.kind {
                        TokenKind::Str(s) => items.push(s),
                        TokenKind::CloseBrace => return Ok(Value::List(items)),
                        _ => return Err(Self::unexpected(&token, "a list value or `}`")),
                    }
                    let token = self.next()?;
                    match token.kind {
                        TokenKind::Comma => {}
                        TokenKind::CloseBrace => return Ok(Value::List(items)),
                        _ => return Err(Self::unexpected(&token, "`,` or `}` in the list")),
                    }
                }
            }
            _ => Err(Self::unexpected(&token, "a value")),
        }
    }

    /// Arguments up to `)`; `f()` and a trailing comma are accepted.
    fn call_args(&mut self) -> Result<Vec<String>, ParseError> {
        let mut args = Vec::new();
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::Str(s) => args.push(s),
                TokenKind::CloseParen => return Ok(args),
                _ => return Err(Self::unexpected(&token, "a function argument or `)`")),
            }
            let token = self.next()?;
            match token.kind {
                TokenKind::Comma => {}
                TokenKind::CloseParen => return Ok(args),
                _ => return Err(Self::unexpected(&token, "`,` or `)` after a function argument")),
            }
        }
    }
}

/// `key += value`: extends the key's last value, or starts a list.
fn append_option(section: &mut Section, key: String, value: Value) {
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
    let mut items = Vec::with_capacity(args.len() + 2);
    items.push((args.len() + 1).to_string());
    items.push(name);
    items.extend(args);
    append_option(section, list.to_string(), Value::List(items));
    Ok(())
}

#[cfg(test)]
mod tests;
