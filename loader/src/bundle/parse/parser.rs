//! The libconfuse grammar over a stack of token sources, with hooks for
//! what the caller's option table would do.
//!
//! `meta.conf` and `fwup.conf` share the grammar; they differ in what a
//! function call means (`funlist` entries only, or also `define`,
//! `include`…), in which options and sections exist and in what happens
//! when a section closes (fwup's validate callbacks). Those differences are
//! [`Hooks`]. An `include` returns a new [`Source`] whose tokens are spliced
//! into the stream where the call was, as libconfuse's `cfg_include` does.

use super::lexer::{Lexer, Token, TokenKind};
use super::{append_option, ParseError, ParseErrorKind, MAX_DEPTH};
use crate::bundle::conf::{Section, Value};

/// Includes nested deeper than this are refused (a file including itself).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 32;

/// Text to parse and the name errors give it (a path, or `meta.conf`).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub name: String,
    pub text: String,
}

/// Where a hook is called from: the source and line of the call, option
/// or section start.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "host-tools"), allow(dead_code))]
pub(crate) struct At<'a> {
    pub source: &'a str,
    pub line: usize,
}

/// A syntax or hook error and the source it happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceError {
    pub source: String,
    pub error: ParseError,
}

/// What the option table of the caller does; every hook may refuse with
/// [`ParseErrorKind::Rejected`] (or any other kind).
pub(crate) trait Hooks {
    /// `name(args)` inside `section` (the root has kind `""`). May return
    /// a source to splice in (`include`).
    fn call(
        &mut self,
        at: At<'_>,
        section: &mut Section,
        name: String,
        args: Vec<String>,
    ) -> Result<Option<Source>, ParseErrorKind>;

    /// `key = value` or `key += value` about to be stored in `section`,
    /// reached by `path`; returns the value to store (typed options
    /// normalize it).
    fn option(
        &mut self,
        _at: At<'_>,
        _path: &[String],
        _section: &Section,
        _key: &str,
        value: Value,
    ) -> Result<Value, ParseErrorKind> {
        Ok(value)
    }

    /// A (known) `name` in the section reached by `path` is used as
    /// `shape`, before its value, section body or arguments are read.
    fn entry(&mut self, _at: At<'_>, _path: &[String], _name: &str, _shape: Shape) -> Result<(), ParseErrorKind> {
        Ok(())
    }

    /// A section `kind ["title"] {` about to be read inside `parent`.
    fn open_section(
        &mut self,
        _at: At<'_>,
        _parent: &Section,
        _kind: &str,
        _title: Option<&str>,
    ) -> Result<(), ParseErrorKind> {
        Ok(())
    }

    /// A section just closed, before it is stored in `parent`; `at` is
    /// where it was opened.
    fn close_section(&mut self, _at: At<'_>, _parent: &Section, _section: &mut Section) -> Result<(), ParseErrorKind> {
        Ok(())
    }

    /// Whether the option, section or function `name` at the start of an
    /// entry in `section`, reached by `path` (section kinds from the root),
    /// is one to skip the way libconfuse skips unknown names under
    /// `CFGF_IGNORE_UNKNOWN` (see [`Parser::skip_unknown`]). The hook may
    /// record it; `false` (the default) parses the entry.
    fn skip_unknown(&mut self, _at: At<'_>, _path: &[String], _section: &Section, _name: &str) -> bool {
        false
    }
}

struct Frame<'e> {
    name: String,
    lexer: Lexer<'e>,
}

/// Parses `source` (and whatever it includes) into a tree.
pub(crate) fn parse_with_hooks(
    source: Source,
    env: &dyn Fn(&str) -> Option<String>,
    hooks: &mut dyn Hooks,
) -> Result<Section, SourceError> {
    let mut parser = Parser {
        frames: vec![Frame {
            name: source.name,
            lexer: Lexer::new(&source.text, env),
        }],
        env,
        hooks,
        path: Vec::new(),
    };
    let mut root = Section::default();
    parser.body(&mut root, 0)?;
    Ok(root)
}

struct Parser<'e, 'h> {
    frames: Vec<Frame<'e>>,
    env: &'e dyn Fn(&str) -> Option<String>,
    hooks: &'h mut dyn Hooks,
    /// Kinds of the sections being read, from the root down.
    path: Vec<String>,
}

/// How an entry uses its name: what the token after the name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `name = …`
    Assign,
    /// `name += …`
    Append,
    /// `name { … }` (false) or `name "title" { … }` (true)
    Section(bool),
    /// `name(…)`
    Call,
}

/// Where libconfuse's skipping of an unknown name stands (its parser
/// states 10 to 15).
#[derive(Debug, Clone, PartialEq)]
enum Skip {
    /// 10: after the name (or, inside a skipped section, after one value).
    AfterName,
    /// 11: a title was read; `{` must follow.
    Title,
    /// 12: `{` was read: the next token is dropped, then the section's
    /// contents are skipped.
    Section,
    /// 13: every token up to this one is dropped.
    Until(TokenKind),
    /// 14: after `=`: a value or a `{` list.
    Value,
    /// 15: inside a skipped section, the token after a value is dropped.
    NextName,
}

impl Parser<'_, '_> {
    /// Name of the source the last token came from.
    fn source(&self) -> &str {
        self.frames.last().map_or("", |f| f.name.as_str())
    }

    fn fail(&self, line: usize, kind: ParseErrorKind) -> SourceError {
        SourceError {
            source: self.source().to_string(),
            error: ParseError { line, kind },
        }
    }

    /// The next token; the end of an included source continues with the
    /// source that included it.
    fn next(&mut self) -> Result<Token, SourceError> {
        loop {
            let Some(frame) = self.frames.last_mut() else {
                return Ok(Token {
                    kind: TokenKind::End,
                    line: 0,
                });
            };
            let token = frame.lexer.next_token().map_err(|error| SourceError {
                source: frame.name.clone(),
                error,
            })?;
            if token.kind == TokenKind::End && self.frames.len() > 1 {
                self.frames.pop();
                continue;
            }
            return Ok(token);
        }
    }

    fn unexpected(&self, token: &Token, expected: &'static str) -> SourceError {
        self.fail(
            token.line,
            ParseErrorKind::Unexpected {
                found: token.kind.describe(),
                expected,
            },
        )
    }

    /// Entries up to the closing `}` (or the end of input for the root).
    fn body(&mut self, section: &mut Section, depth: usize) -> Result<(), SourceError> {
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::Str(name) => {
                    let source = self.source().to_string();
                    let at = At {
                        source: &source,
                        line: token.line,
                    };
                    if self.hooks.skip_unknown(at, &self.path, section, &name) {
                        self.skip_unknown(&name, token.line, depth, false)?;
                    } else {
                        self.entry(section, name, token.line, depth)?;
                    }
                }
                TokenKind::CloseBrace if depth > 0 => return Ok(()),
                TokenKind::CloseBrace => return Err(self.fail(token.line, ParseErrorKind::UnmatchedCloseBrace)),
                // libconfuse ends every open section at the end of the file.
                TokenKind::End => return Ok(()),
                _ if depth > 0 => return Err(self.unexpected(&token, "an option name or `}`")),
                _ => return Err(self.unexpected(&token, "an option name")),
            }
        }
    }

    /// What follows an option or section name.
    fn entry(&mut self, section: &mut Section, name: String, line: usize, depth: usize) -> Result<(), SourceError> {
        let token = self.next()?;
        let shape = match token.kind {
            TokenKind::Equals => Some(Shape::Assign),
            TokenKind::PlusEquals => Some(Shape::Append),
            TokenKind::OpenBrace => Some(Shape::Section(false)),
            TokenKind::Str(_) => Some(Shape::Section(true)),
            TokenKind::OpenParen => Some(Shape::Call),
            _ => None,
        };
        if let Some(shape) = shape {
            let source = self.source().to_string();
            let at = At { source: &source, line };
            self.hooks
                .entry(at, &self.path, &name, shape)
                .map_err(|kind| self.fail(line, kind))?;
        }
        match token.kind {
            TokenKind::Equals | TokenKind::PlusEquals => {
                let append = token.kind == TokenKind::PlusEquals;
                let value = self.value()?;
                let source = self.source().to_string();
                let at = At { source: &source, line };
                let value = self
                    .hooks
                    .option(at, &self.path, section, &name, value)
                    .map_err(|kind| self.fail(line, kind))?;
                if append {
                    append_option(section, name, value);
                } else {
                    section.options.push((name, value));
                }
            }
            TokenKind::OpenBrace => self.subsection(section, name, None, line, depth)?,
            TokenKind::Str(title) => {
                let brace = self.next()?;
                if brace.kind != TokenKind::OpenBrace {
                    return Err(self.unexpected(&brace, "`{` to open the section"));
                }
                self.subsection(section, name, Some(title), line, depth)?;
            }
            TokenKind::OpenParen => {
                let args = self.call_args()?;
                let source = self.source().to_string();
                let at = At { source: &source, line };
                let included = self
                    .hooks
                    .call(at, section, name, args)
                    .map_err(|kind| self.fail(line, kind))?;
                if let Some(included) = included {
                    if self.frames.len() >= MAX_INCLUDE_DEPTH {
                        return Err(self.fail(line, ParseErrorKind::IncludeTooDeep));
                    }
                    let lexer = Lexer::new(&included.text, self.env);
                    self.frames.push(Frame {
                        name: included.name,
                        lexer,
                    });
                }
            }
            _ => return Err(self.unexpected(&token, "`=` after the option name")),
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
    ) -> Result<(), SourceError> {
        if depth + 1 > MAX_DEPTH {
            return Err(self.fail(line, ParseErrorKind::TooDeep));
        }
        let source = self.source().to_string();
        let at = At { source: &source, line };
        self.hooks
            .open_section(at, parent, &kind, title.as_deref())
            .map_err(|e| self.fail(line, e))?;
        let existing = parent.sections.iter().position(|s| s.kind == kind && s.title == title);
        let (mut section, index) = match (existing, title) {
            (Some(_), Some(title)) => {
                return Err(self.fail(line, ParseErrorKind::DuplicateSection { kind, title }));
            }
            // A repeated untitled section continues the first one.
            (Some(index), None) => (std::mem::take(&mut parent.sections[index]), Some(index)),
            (None, title) => (
                Section {
                    kind,
                    title,
                    ..Section::default()
                },
                None,
            ),
        };
        self.path.push(section.kind.clone());
        let body = self.body(&mut section, depth + 1);
        self.path.pop();
        let result = body.and_then(|()| {
            self.hooks
                .close_section(At { source: &source, line }, parent, &mut section)
                .map_err(|kind| SourceError {
                    source: source.clone(),
                    error: ParseError { line, kind },
                })
        });
        match index {
            Some(index) => parent.sections[index] = section,
            None => parent.sections.push(section),
        }
        result
    }

    /// Passes over an unknown `name` (its token already read) exactly as
    /// libconfuse 3.3 does under `CFGF_IGNORE_UNKNOWN` (`cfg_parse_internal`
    /// states 10 to 15), quirks included, so that what fwup reads after it
    /// is what we read after it:
    ///
    /// * `name = value` and `name = {list}` are skipped cleanly, as is
    ///   `name(args)`;
    /// * `name += value` skips every token up to the next `=`, so the option
    ///   after it goes too;
    /// * `name {…}` and `name "title" {…}`: the token after `{` is dropped
    ///   and the rest is skipped as a series of `key = value` pairs, each
    ///   followed by one dropped token, until a `}` arrives where a key is
    ///   expected; a section whose last option is a list (`funlist = {…}`,
    ///   fwup's own form) is skipped exactly, while `{ a = 1 }` swallows its
    ///   `}` and ends the skip at a later one, or fails.
    ///
    /// `nested` is the skip of a section's contents (libconfuse's recursive
    /// call with state 10 forced); it ends at a `}` where a key is expected.
    fn skip_unknown(&mut self, name: &str, line: usize, depth: usize, nested: bool) -> Result<(), SourceError> {
        if depth + 1 > MAX_DEPTH {
            return Err(self.fail(line, ParseErrorKind::TooDeep));
        }
        let mut state = Skip::AfterName;
        loop {
            let token = self.next()?;
            let cannot = |this: &Self, detail: String| {
                this.fail(
                    token.line,
                    ParseErrorKind::CannotSkip {
                        name: name.to_string(),
                        line,
                        detail,
                    },
                )
            };
            if token.kind == TokenKind::End {
                return Err(cannot(self, "the file ends first".into()));
            }
            state = match state {
                Skip::AfterName => match token.kind {
                    TokenKind::PlusEquals => Skip::Until(TokenKind::Equals),
                    TokenKind::Equals => Skip::Value,
                    TokenKind::OpenParen => Skip::Until(TokenKind::CloseParen),
                    TokenKind::OpenBrace => Skip::Section,
                    TokenKind::Str(_) => Skip::Title,
                    TokenKind::CloseBrace if nested => return Ok(()),
                    _ => Skip::AfterName,
                },
                Skip::Title if token.kind == TokenKind::OpenBrace => Skip::Section,
                Skip::Title => {
                    let found = token.kind.describe();
                    return Err(cannot(
                        self,
                        format!("found {found} where `{{` should follow its title"),
                    ));
                }
                Skip::Section => {
                    self.skip_unknown(name, line, depth + 1, true)?;
                    Skip::Until(TokenKind::CloseBrace)
                }
                Skip::Until(end) if token.kind == end => match end {
                    TokenKind::Equals => Skip::Value,
                    _ => return Ok(()),
                },
                Skip::Until(end) => Skip::Until(end),
                Skip::Value => match token.kind {
                    TokenKind::OpenBrace => Skip::Until(TokenKind::CloseBrace),
                    TokenKind::Str(_) if nested => Skip::NextName,
                    TokenKind::Str(_) => return Ok(()),
                    other => {
                        return Err(cannot(
                            self,
                            format!("found {} where a value should be", other.describe()),
                        ));
                    }
                },
                Skip::NextName => Skip::AfterName,
            };
        }
    }

    /// A scalar or a `{…}` list. `{}` and a trailing comma are accepted, as
    /// libconfuse does.
    fn value(&mut self) -> Result<Value, SourceError> {
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
                        _ => return Err(self.unexpected(&token, "a list value or `}`")),
                    }
                    let token = self.next()?;
                    match token.kind {
                        TokenKind::Comma => {}
                        TokenKind::CloseBrace => return Ok(Value::List(items)),
                        _ => return Err(self.unexpected(&token, "`,` or `}` in the list")),
                    }
                }
            }
            _ => Err(self.unexpected(&token, "a value")),
        }
    }

    /// Arguments up to `)`; `f()` and a trailing comma are accepted.
    fn call_args(&mut self) -> Result<Vec<String>, SourceError> {
        let mut args = Vec::new();
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::Str(s) => args.push(s),
                TokenKind::CloseParen => return Ok(args),
                _ => return Err(self.unexpected(&token, "a function argument or `)`")),
            }
            let token = self.next()?;
            match token.kind {
                TokenKind::Comma => {}
                TokenKind::CloseParen => return Ok(args),
                _ => return Err(self.unexpected(&token, "`,` or `)` after a function argument")),
            }
        }
    }
}
