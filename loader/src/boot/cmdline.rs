//! Parsing the kernel command line (`/proc/cmdline`) into ordered
//! key/value parameters.
//!
//! Parameters are found by name, never by position: UEFI iPXE puts the image
//! name first (`vmlinuz loader.url=…`). Double quotes group text with spaces
//! (`loader.env.GREETING="hello world"` or `"loader.env.A=b c"`); the quotes
//! themselves are removed. iPXE and the x86 kernel cut the line at 2047
//! bytes, so when a line reaches that length its last token may be a
//! fragment: it is reported in [`Cmdline::dropped`] and never used, because
//! half a URL or half a key is worse than none.
//!
//! Repeated keys are all kept, in order; [`Cmdline::get`] gives the last one
//! (the kernel's own rule), [`Cmdline::get_all`] gives every one for keys
//! that accumulate (`loader.pubkey`, `loader.env.*`).

use std::fmt;

/// Longest command line the x86 kernel keeps (`COMMAND_LINE_SIZE` - 1),
/// which is also where iPXE cuts the line it hands over.
pub const CMDLINE_MAX: usize = 2047;

/// One `key` or `key=value` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    /// `None` for a bare flag (`quiet`), `Some("")` for `key=`.
    pub value: Option<String>,
}

/// Why a token was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The line is as long as the kernel keeps, so its last token was
    /// probably cut.
    LineCut,
    /// A `"` was opened and never closed.
    UnclosedQuote,
}

/// A token the parser refused to use, kept so it can be reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedToken {
    pub text: String,
    pub reason: DropReason,
}

impl fmt::Display for DroppedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DropReason::LineCut => write!(
                f,
                "kernel command line is {CMDLINE_MAX} bytes long and was probably cut: \
                 ignoring its last parameter `{}`; shorten the command line",
                self.text
            ),
            DropReason::UnclosedQuote => write!(
                f,
                "kernel command line: ignoring `{}`: its opening quote is never closed",
                self.text
            ),
        }
    }
}

/// The parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// Every parameter in command-line order (the `--` separator is skipped;
    /// parameters after it, meant for init, are kept too).
    pub params: Vec<Param>,
    /// The last token, when it could not be trusted.
    pub dropped: Option<DroppedToken>,
}

impl Cmdline {
    /// The value of the last `key=…`; `Some("")` for `key=`, `None` when
    /// absent or only given as a bare flag.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|p| p.key == key)
            .and_then(|p| p.value.as_deref())
    }

    /// Whether `key` appears at all, with or without a value.
    pub fn contains(&self, key: &str) -> bool {
        self.params.iter().any(|p| p.key == key)
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |p| p.key == key)
            .filter_map(|p| p.value.as_deref())
    }
}

/// Parses the text of `/proc/cmdline`.
pub fn parse(text: &str) -> Cmdline {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let cut = line.len() >= CMDLINE_MAX;
    let mut tokens = split_tokens(line);
    let mut dropped = None;

    if let Some(last) = tokens.last() {
        let reason = if last.unclosed_quote {
            Some(DropReason::UnclosedQuote)
        } else if cut && last.reaches_end {
            Some(DropReason::LineCut)
        } else {
            None
        };
        if let Some(reason) = reason {
            dropped = tokens.pop().map(|last| DroppedToken { text: last.raw, reason });
        }
    }

    let params = tokens
        .into_iter()
        .filter(|t| t.text != "--" || t.quoted)
        .map(|t| match t.text.split_once('=') {
            Some((key, value)) => Param {
                key: key.to_string(),
                value: Some(value.to_string()),
            },
            None => Param {
                key: t.text,
                value: None,
            },
        })
        .collect();
    Cmdline { params, dropped }
}

struct Token {
    /// The text with quotes removed.
    text: String,
    /// The text as it appeared, for messages.
    raw: String,
    quoted: bool,
    unclosed_quote: bool,
    /// No whitespace follows the token: it runs to the end of the line.
    reaches_end: bool,
}

fn split_tokens(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut text = String::new();
        let mut in_quote = false;
        let mut quoted = false;
        let mut end = line.len();
        for (i, c) in chars.by_ref() {
            match c {
                '"' => {
                    in_quote = !in_quote;
                    quoted = true;
                }
                c if c.is_whitespace() && !in_quote => {
                    end = i;
                    break;
                }
                c => text.push(c),
            }
        }
        tokens.push(Token {
            text,
            raw: line[start..end].to_string(),
            quoted,
            unclosed_quote: in_quote,
            reaches_end: end == line.len(),
        });
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(c: &Cmdline) -> Vec<(String, Option<String>)> {
        c.params.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
    }

    #[test]
    fn keys_are_found_by_name_when_the_image_name_comes_first() {
        let c = parse("vmlinuz-loader console=ttyS0 loader.url=https://h/x.fw quiet\n");
        assert_eq!(c.get("loader.url"), Some("https://h/x.fw"));
        assert_eq!(c.get("console"), Some("ttyS0"));
        assert!(c.contains("vmlinuz-loader"));
        assert_eq!(c.get("quiet"), None, "a bare flag has no value");
        assert!(c.contains("quiet"));
        assert!(c.dropped.is_none());
    }

    #[test]
    fn quotes_group_spaces_around_the_value_or_the_whole_parameter() {
        let c = parse(r#"loader.env.A="hello world" "loader.env.B=x y" loader.env.C="" z"#);
        assert_eq!(c.get("loader.env.A"), Some("hello world"));
        assert_eq!(c.get("loader.env.B"), Some("x y"));
        assert_eq!(c.get("loader.env.C"), Some(""));
        assert!(c.contains("z"));
    }

    #[test]
    fn value_keeps_further_equals_signs() {
        let c = parse("loader.pubkey=abc== loader.url=https://h/a?b=c");
        assert_eq!(c.get("loader.pubkey"), Some("abc=="));
        assert_eq!(c.get("loader.url"), Some("https://h/a?b=c"));
    }

    #[test]
    fn repeated_keys_last_wins_but_all_are_kept_in_order() {
        let c = parse("loader.disk=vda loader.pubkey=K1 loader.disk=vdb loader.pubkey=K2");
        assert_eq!(c.get("loader.disk"), Some("vdb"));
        assert_eq!(c.get_all("loader.pubkey").collect::<Vec<_>>(), ["K1", "K2"]);
    }

    #[test]
    fn double_dash_is_skipped_and_init_arguments_still_parse() {
        let c = parse("ro -- loader.task=upgrade --firecracker-init");
        assert_eq!(c.get("loader.task"), Some("upgrade"));
        assert!(!c.contains("--"));
        assert!(c.contains("--firecracker-init"));
    }

    #[test]
    fn tabs_and_repeated_spaces_separate_tokens() {
        let c = parse("  a=1\t\tb=2   c  \n");
        assert_eq!(
            kv(&c),
            [
                ("a".into(), Some("1".into())),
                ("b".into(), Some("2".into())),
                ("c".into(), None)
            ]
        );
    }

    #[test]
    fn empty_line_gives_no_parameters() {
        assert_eq!(parse(""), Cmdline::default());
        assert_eq!(parse("\n"), Cmdline::default());
    }

    #[test]
    fn a_line_cut_at_the_limit_drops_its_last_token() {
        let head = "loader.disk=vda loader.url=https://example.test/";
        let line = format!("{head}{}", "a".repeat(CMDLINE_MAX - head.len()));
        assert_eq!(line.len(), CMDLINE_MAX);
        let c = parse(&format!("{line}\n"));
        assert_eq!(c.get("loader.disk"), Some("vda"));
        assert_eq!(c.get("loader.url"), None, "a cut URL must not be used");
        let dropped = c
            .dropped
            .as_ref()
            .map(|d| (d.reason, d.text.starts_with("loader.url=")));
        assert_eq!(dropped, Some((DropReason::LineCut, true)));
        assert!(c.dropped.map(|d| d.to_string()).unwrap_or_default().contains("2047"));
    }

    #[test]
    fn a_line_just_under_the_limit_is_kept_whole() {
        let head = "loader.url=https://example.test/";
        let line = format!("{head}{}", "a".repeat(CMDLINE_MAX - 1 - head.len()));
        let c = parse(&line);
        assert!(c.dropped.is_none());
        assert_eq!(
            c.get("loader.url").map(str::len),
            Some(CMDLINE_MAX - 1 - "loader.url=".len())
        );
    }

    #[test]
    fn a_full_length_line_ending_in_space_keeps_its_last_token() {
        let head = "loader.disk=vda";
        let line = format!("{head}{}", " ".repeat(CMDLINE_MAX - head.len()));
        let c = parse(&line);
        assert_eq!(c.get("loader.disk"), Some("vda"));
        assert!(c.dropped.is_none());
    }

    #[test]
    fn an_unclosed_quote_drops_the_token() {
        let c = parse(r#"loader.disk=vda loader.env.X="never closed"#);
        assert_eq!(c.get("loader.disk"), Some("vda"));
        assert!(!c.contains("loader.env.X"));
        assert_eq!(c.dropped.map(|d| d.reason), Some(DropReason::UnclosedQuote));
    }
}
