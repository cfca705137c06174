//! The integer arithmetic of `define-eval(NAME, "EXPR")`.
//!
//! fwup's `eval_math.c` semantics: signed 64-bit integers; `+ -` below
//! `* / %` below `^` (power, right-associative) and unary minus;
//! parentheses; numbers as `strtoll(…, 0)` reads them (decimal, `0x` hex,
//! leading-`0` octal), each optionally followed by dd(1) size suffixes
//! (`c`=1, `w`=2, `b`=512, `kB`=1000, `K`=1024, `MB`, `M`, `GB`, `G`).
//! Unlike fwup, overflow is an error instead of wrapping around, and `%`
//! (remainder) is accepted.

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("expected a number or `(` at character {0}")]
    ExpectedNumber(usize),
    #[error("unexpected `{found}` at character {at}")]
    Unexpected { found: char, at: usize },
    #[error("missing `)` for the `(` at character {0}")]
    UnclosedParen(usize),
    #[error("the expression is empty")]
    Empty,
    #[error("division by zero at character {0}")]
    DivisionByZero(usize),
    #[error("exponent {0} is out of range (0 to 63)")]
    Exponent(i64),
    #[error("the result does not fit a signed 64-bit integer")]
    Overflow,
    #[error("parentheses are nested too deeply")]
    TooDeep,
}

/// Nesting limit for parentheses and unary minus.
const MAX_NESTING: usize = 64;

/// Evaluates `text`.
pub fn eval(text: &str) -> Result<i64, ExprError> {
    let mut parser = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    parser.skip_blanks();
    if parser.pos == parser.s.len() {
        return Err(ExprError::Empty);
    }
    let value = parser.sum()?;
    parser.skip_blanks();
    match parser.peek() {
        None => Ok(value),
        Some(c) => Err(ExprError::Unexpected {
            found: char::from(c),
            at: parser.here(),
        }),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    /// The current position as messages count it (from 1).
    fn here(&self) -> usize {
        self.pos + 1
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    /// `term (('+' | '-') term)*`
    fn sum(&mut self) -> Result<i64, ExprError> {
        let mut value = self.product()?;
        loop {
            self.skip_blanks();
            let op = match self.peek() {
                Some(op @ (b'+' | b'-')) => op,
                _ => return Ok(value),
            };
            self.pos += 1;
            let rhs = self.product()?;
            value = if op == b'+' {
                value.checked_add(rhs)
            } else {
                value.checked_sub(rhs)
            }
            .ok_or(ExprError::Overflow)?;
        }
    }

    /// `unary (('*' | '/' | '%') unary)*`
    fn product(&mut self) -> Result<i64, ExprError> {
        let mut value = self.unary()?;
        loop {
            self.skip_blanks();
            let op = match self.peek() {
                Some(op @ (b'*' | b'/' | b'%')) => op,
                _ => return Ok(value),
            };
            let at = self.here();
            self.pos += 1;
            let rhs = self.unary()?;
            value = match op {
                b'*' => value.checked_mul(rhs).ok_or(ExprError::Overflow)?,
                _ if rhs == 0 => return Err(ExprError::DivisionByZero(at)),
                b'/' => value.checked_div(rhs).ok_or(ExprError::Overflow)?,
                _ => value.checked_rem(rhs).ok_or(ExprError::Overflow)?,
            };
        }
    }

    /// `'-' unary | power`
    fn unary(&mut self) -> Result<i64, ExprError> {
        self.skip_blanks();
        if self.peek() == Some(b'-') {
            self.pos += 1;
            let value = self.nested(Self::unary)?;
            return value.checked_neg().ok_or(ExprError::Overflow);
        }
        self.power()
    }

    /// `postfix ('^' unary)?`, right-associative.
    fn power(&mut self) -> Result<i64, ExprError> {
        let base = self.postfix()?;
        self.skip_blanks();
        if self.peek() != Some(b'^') {
            return Ok(base);
        }
        self.pos += 1;
        let exponent = self.nested(Self::unary)?;
        let exponent = u32::try_from(exponent)
            .ok()
            .filter(|e| *e <= 63)
            .ok_or(ExprError::Exponent(exponent))?;
        base.checked_pow(exponent).ok_or(ExprError::Overflow)
    }

    /// A number or parenthesized expression, then size suffixes.
    fn postfix(&mut self) -> Result<i64, ExprError> {
        self.skip_blanks();
        let mut value = if self.peek() == Some(b'(') {
            let open = self.here();
            self.pos += 1;
            let value = self.nested(Self::sum)?;
            self.skip_blanks();
            if self.peek() != Some(b')') {
                return Err(ExprError::UnclosedParen(open));
            }
            self.pos += 1;
            value
        } else {
            self.number()?
        };
        while let Some(multiplier) = self.suffix() {
            value = value.checked_mul(multiplier).ok_or(ExprError::Overflow)?;
        }
        Ok(value)
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<i64, ExprError>) -> Result<i64, ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExprError::TooDeep);
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn number(&mut self) -> Result<i64, ExprError> {
        let start = self.pos;
        let at = self.here();
        let rest = &self.s[start..];
        let (radix, skip) = if rest.starts_with(b"0x") || rest.starts_with(b"0X") {
            (16, 2)
        } else if rest.first() == Some(&b'0') {
            (8, 0)
        } else {
            (10, 0)
        };
        let digits = rest[skip..]
            .iter()
            .take_while(|b| char::from(**b).is_digit(radix))
            .count();
        if digits == 0 {
            return Err(ExprError::ExpectedNumber(at));
        }
        let text = std::str::from_utf8(&rest[skip..skip + digits]).map_err(|_| ExprError::ExpectedNumber(at))?;
        let value = i64::from_str_radix(text, radix).map_err(|_| ExprError::Overflow)?;
        self.pos += skip + digits;
        Ok(value)
    }

    /// A dd(1) size suffix right after a number or `)`.
    fn suffix(&mut self) -> Option<i64> {
        let rest = &self.s[self.pos..];
        let (len, multiplier) = match rest {
            [b'k', b'B', ..] => (2, 1000),
            [b'M', b'B', ..] => (2, 1000 * 1000),
            [b'G', b'B', ..] => (2, 1000 * 1000 * 1000),
            [b'c', ..] => (1, 1),
            [b'w', ..] => (1, 2),
            [b'b', ..] => (1, 512),
            [b'K', ..] => (1, 1024),
            [b'M', ..] => (1, 1024 * 1024),
            [b'G', ..] => (1, 1024 * 1024 * 1024),
            _ => return None,
        };
        self.pos += len;
        Some(multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_as_in_fwup_confs() {
        assert_eq!(eval("4096 + 31232"), Ok(35328));
        assert_eq!(eval("1083904 + 524288 - 1"), Ok(1608191));
        assert_eq!(eval("2 + 3 * 4"), Ok(14));
        assert_eq!(eval("(2 + 3) * 4"), Ok(20));
        assert_eq!(eval("17 / 5"), Ok(3));
        assert_eq!(eval("-17 / 5"), Ok(-3));
        assert_eq!(eval("17 % 5"), Ok(2));
        assert_eq!(eval("10 - 4 - 3"), Ok(3));
        assert_eq!(eval("2 ^ 3 ^ 2"), Ok(512));
        assert_eq!(eval("-2 ^ 2"), Ok(-4));
        assert_eq!(eval("--5"), Ok(5));
        assert_eq!(eval("0x10 + 010"), Ok(24));
        assert_eq!(eval("1K"), Ok(1024));
        assert_eq!(eval("2kB"), Ok(2000));
        assert_eq!(eval("(1 + 1)M / 512"), Ok(4096));
        assert_eq!(eval("4b"), Ok(2048));
        assert_eq!(eval("\t7\n"), Ok(7));
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(eval(""), Err(ExprError::Empty));
        assert_eq!(eval("1 +"), Err(ExprError::ExpectedNumber(4)));
        assert_eq!(eval("1 / (2 - 2)"), Err(ExprError::DivisionByZero(3)));
        assert_eq!(eval("5 % 0"), Err(ExprError::DivisionByZero(3)));
        assert_eq!(eval("(1 + 2"), Err(ExprError::UnclosedParen(1)));
        assert_eq!(eval("1 + 2)"), Err(ExprError::Unexpected { found: ')', at: 6 }));
        assert_eq!(eval("abc"), Err(ExprError::ExpectedNumber(1)));
        assert_eq!(eval("3 x 4"), Err(ExprError::Unexpected { found: 'x', at: 3 }));
        assert_eq!(eval("2 ^ 64"), Err(ExprError::Exponent(64)));
        assert_eq!(eval("9223372036854775807 + 1"), Err(ExprError::Overflow));
        assert_eq!(eval("99999999999999999999"), Err(ExprError::Overflow));
        assert_eq!(eval(&"(".repeat(100)), Err(ExprError::TooDeep));
    }
}
