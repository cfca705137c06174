//! The tokenizer for `meta.conf`, following libconfuse 3.3's `lexer.l`.
//!
//! flex picks the longest match at each position, so the rules below are
//! written as "what the longest match would be" rather than as a regex table:
//!
//! * blanks and tabs separate tokens; `\r`, a lone `*` and a lone `+` are
//!   silently dropped (flex's catch-all rule);
//! * `#…` and `//…` run to the end of the line, `/* … */` may span lines (an
//!   unterminated one ends the input, as with libconfuse);
//! * `{ } ( ) = , +=` are punctuation;
//! * a bare string is a run of anything but blanks, newlines, `#"'={}()+,*`
//!   (so `a//b` is one string, while a token starting with `//` or `/*` is a
//!   comment);
//! * `${NAME}` / `${NAME:-default}` is a whole token when it starts one (an
//!   unset variable gives an empty string); inside a bare string it is not
//!   expanded;
//! * `"…"` knows C escapes (`\n`, `\t`, octal `\ooo`, hex `\xhh`, …), line
//!   continuation and `${…}` expansion; `'…'` only knows `\\`, `\'` and line
//!   continuation, and never expands variables.
//!
//! Like libconfuse (which works on C strings) the input ends at the first NUL
//! byte, and a decoded string ends at its first NUL.

use super::{ParseError, ParseErrorKind};

/// One token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    Str(String),
    OpenBrace,
    CloseBrace,
    OpenParen,
    CloseParen,
    Equals,
    PlusEquals,
    Comma,
    End,
}

impl TokenKind {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Str(s) => format!("`{s}`"),
            TokenKind::OpenBrace => "`{`".into(),
            TokenKind::CloseBrace => "`}`".into(),
            TokenKind::OpenParen => "`(`".into(),
            TokenKind::CloseParen => "`)`".into(),
            TokenKind::Equals => "`=`".into(),
            TokenKind::PlusEquals => "`+=`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::End => "end of file".into(),
        }
    }
}

/// Bytes that end a bare string.
fn ends_bare_string(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'#' | b'"' | b'\'' | b'=' | b'{' | b'}' | b'(' | b')' | b'+' | b',' | b'*'
    )
}

pub(super) struct Lexer<'a> {
    /// The text up to its first NUL (owned, so an included file's text
    /// lives as long as its lexer).
    src: Vec<u8>,
    pos: usize,
    line: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Cache for "where is the next `}` at or after some position": keeps
    /// `${` scanning linear even on hostile input.
    next_close: Option<Option<usize>>,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        let bytes = text.as_bytes();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Lexer {
            src: bytes[..end].to_vec(),
            pos: 0,
            line: 1,
            env,
            next_close: None,
        }
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError { line: self.line, kind }
    }

    /// Index of the first `}` at or after `from`.
    fn close_brace_from(&mut self, from: usize) -> Option<usize> {
        match self.next_close {
            Some(Some(idx)) if idx >= from => return Some(idx),
            Some(None) => return None,
            _ => {}
        }
        let found = self.src[from..].iter().position(|&b| b == b'}').map(|i| from + i);
        self.next_close = Some(found);
        found
    }

    /// Advances over `len` bytes, counting the newlines in them.
    fn advance(&mut self, len: usize) {
        let end = (self.pos + len).min(self.src.len());
        self.line += self.src[self.pos..end].iter().filter(|&&b| b == b'\n').count();
        self.pos = end;
    }

    /// Text of `src[from..to]`; both ends sit on ASCII bytes or the ends of
    /// the input, so this never splits a UTF-8 sequence.
    fn text(&self, from: usize, to: usize) -> String {
        String::from_utf8_lossy(&self.src[from..to]).into_owned()
    }

    /// The value of a `${…}` reference whose inner text is `inner`:
    /// `NAME:-default` splits at the first `:` only when `-` follows it; an
    /// unset variable without a default is empty (a set but empty one stays
    /// empty, as libconfuse uses `getenv`).
    fn lookup(&self, inner: &str) -> String {
        lookup_var(inner, self.env)
    }

    pub fn next_token(&mut self) -> Result<Token, ParseError> {
        loop {
            let Some(b) = self.peek_at(0) else {
                return Ok(Token {
                    kind: TokenKind::End,
                    line: self.line,
                });
            };
            let line = self.line;
            let single = |kind| Ok(Token { kind, line });
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b'*' => self.advance(1),
                b'#' => self.skip_line_comment(),
                b'/' if self.peek_at(1) == Some(b'/') => self.skip_line_comment(),
                b'/' if self.peek_at(1) == Some(b'*') => self.skip_block_comment(),
                b'+' if self.peek_at(1) == Some(b'=') => {
                    self.advance(2);
                    return single(TokenKind::PlusEquals);
                }
                b'+' => self.advance(1),
                b'{' | b'}' | b'(' | b')' | b'=' | b',' => {
                    self.advance(1);
                    return single(match b {
                        b'{' => TokenKind::OpenBrace,
                        b'}' => TokenKind::CloseBrace,
                        b'(' => TokenKind::OpenParen,
                        b')' => TokenKind::CloseParen,
                        b'=' => TokenKind::Equals,
                        _ => TokenKind::Comma,
                    });
                }
                b'"' => {
                    return self.double_quoted().map(|s| Token {
                        kind: TokenKind::Str(s),
                        line,
                    })
                }
                b'\'' => {
                    return self.single_quoted().map(|s| Token {
                        kind: TokenKind::Str(s),
                        line,
                    })
                }
                b'$' if self.peek_at(1) == Some(b'{') => {
                    if let Some(close) = self.close_brace_from(self.pos + 2) {
                        let inner = self.text(self.pos + 2, close);
                        self.advance(close + 1 - self.pos);
                        return single(TokenKind::Str(self.lookup(&inner)));
                    }
                    return Ok(self.bare_string());
                }
                _ => return Ok(self.bare_string()),
            }
        }
    }

    fn skip_line_comment(&mut self) {
        let len = self.src[self.pos..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(self.src.len() - self.pos);
        self.advance(len);
    }

    fn skip_block_comment(&mut self) {
        let body = &self.src[self.pos + 2..];
        let len = match body.windows(2).position(|w| w == b"*/") {
            Some(i) => i + 4,
            None => body.len() + 2,
        };
        self.advance(len);
    }

    fn bare_string(&mut self) -> Token {
        let line = self.line;
        let start = self.pos;
        let len = self.src[start..]
            .iter()
            .position(|&b| ends_bare_string(b))
            .unwrap_or(self.src.len() - start);
        self.advance(len);
        Token {
            kind: TokenKind::Str(self.text(start, start + len)),
            line,
        }
    }

    /// Decoded bytes of a quoted string become its value: cut at the first
    /// NUL (C string semantics), and required to be UTF-8.
    fn finish_string(&self, mut bytes: Vec<u8>) -> Result<String, ParseError> {
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        String::from_utf8(bytes).map_err(|_| self.error(ParseErrorKind::NotUtf8))
    }

    fn unterminated(start_line: usize) -> ParseError {
        ParseError {
            line: start_line,
            kind: ParseErrorKind::UnterminatedString,
        }
    }

    fn double_quoted(&mut self) -> Result<String, ParseError> {
        let start_line = self.line;
        self.advance(1);
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek_at(0) else {
                return Err(Self::unterminated(start_line));
            };
            match b {
                b'"' => {
                    self.advance(1);
                    return self.finish_string(out);
                }
                b'$' if self.peek_at(1) == Some(b'{') => match self.close_brace_from(self.pos + 2) {
                    Some(close) => {
                        let inner = self.text(self.pos + 2, close);
                        out.extend_from_slice(self.lookup(&inner).as_bytes());
                        self.advance(close + 1 - self.pos);
                    }
                    None => {
                        out.push(b'$');
                        self.advance(1);
                    }
                },
                b'\\' if self.peek_at(1).is_none() => return Err(Self::unterminated(start_line)),
                b'\\' => self.escape(&mut out)?,
                _ => {
                    out.push(b);
                    self.advance(1);
                }
            }
        }
    }

    /// One backslash escape inside a double-quoted string.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let Some(next) = self.peek_at(1) else {
            return Err(self.error(ParseErrorKind::UnterminatedString));
        };
        if next.is_ascii_digit() {
            return self.numeric_escape(out);
        }
        if next == b'x' {
            let digits = (2..4)
                .take_while(|&i| self.peek_at(i).is_some_and(|d| d.is_ascii_hexdigit()))
                .count();
            if digits > 0 {
                let hex = self.text(self.pos + 2, self.pos + 2 + digits);
                out.push(u8::from_str_radix(&hex, 16).unwrap_or_default());
                self.advance(2 + digits);
                return Ok(());
            }
        }
        let decoded = match next {
            b'\n' => None,
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'a' => Some(0x07),
            b'e' => Some(0x1b),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            other => Some(other),
        };
        // `\` + any other byte keeps that byte (a multi-byte character's
        // remaining bytes follow as ordinary characters).
        out.extend(decoded);
        self.advance(2);
        Ok(())
    }

    /// `\ooo` (one to three octal digits) is a byte; any other run of
    /// digits after `\` is an error, as flex prefers the longer
    /// `\\[0-9]+` match.
    fn numeric_escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let digits = (1..)
            .take_while(|&i| self.peek_at(i).is_some_and(|d| d.is_ascii_digit()))
            .count();
        let octal = (1..=3)
            .take_while(|&i| self.peek_at(i).is_some_and(|d| (b'0'..=b'7').contains(&d)))
            .count();
        let seq = self.text(self.pos, self.pos + 1 + digits);
        if octal == 0 || digits > octal {
            return Err(self.error(ParseErrorKind::BadEscape(seq)));
        }
        let value = u32::from_str_radix(&seq[1..], 8).unwrap_or(u32::MAX);
        let byte = u8::try_from(value).map_err(|_| self.error(ParseErrorKind::OctalTooLarge(seq.clone())))?;
        out.push(byte);
        self.advance(1 + digits);
        Ok(())
    }

    fn single_quoted(&mut self) -> Result<String, ParseError> {
        let start_line = self.line;
        self.advance(1);
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek_at(0) else {
                return Err(Self::unterminated(start_line));
            };
            match (b, self.peek_at(1)) {
                (b'\'', _) => {
                    self.advance(1);
                    return self.finish_string(out);
                }
                (b'\\', None) => return Err(Self::unterminated(start_line)),
                (b'\\', Some(b'\n')) => self.advance(2),
                (b'\\', Some(c @ (b'\\' | b'\''))) => {
                    out.push(c);
                    self.advance(2);
                }
                (b'\\', Some(c)) => {
                    out.extend_from_slice(&[b'\\', c]);
                    self.advance(2);
                }
                _ => {
                    out.push(b);
                    self.advance(1);
                }
            }
        }
    }
}

/// Resolves the inside of one `${…}` reference (see [`Lexer::lookup`]).
pub(super) fn lookup_var(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    match inner.split_once(':') {
        Some((name, rest)) if rest.starts_with('-') => env(name).unwrap_or_else(|| rest[1..].to_string()),
        _ => env(inner).unwrap_or_default(),
    }
}
