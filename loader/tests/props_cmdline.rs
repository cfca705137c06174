//! Property tests of the kernel command line parser: generated parameter
//! lists, printed the way an operator (or iPXE script) would write them,
//! parse back to the same parameters, repeats included.

use loader::boot::cmdline::{self, Param, CMDLINE_MAX};
use proptest::prelude::*;

/// Keys from a small set so that repeats are common, plus odd ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["loader.url", "loader.pubkey", "loader.disk", "quiet", "ip", "--"])
            .prop_map(str::to_string),
        1 => "[a-z._-]{1,12}",
        1 => "[^\"=\\s]{1,8}",
        1 => "[a-z]{1,4}[ \t][a-z]{1,4}",
    ]
}

/// Values: plain, empty, with spaces or tabs (need quotes), with `=`.
fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(String::new())),
        3 => "[^\"\\s]{1,20}".prop_map(Some),
        2 => "[^\"]{0,20}".prop_map(Some),
    ]
}

fn params() -> impl Strategy<Value = Vec<Param>> {
    prop::collection::vec((key(), value()).prop_map(|(key, value)| Param { key, value }), 0..12)
}

/// How a person writes one parameter: bare when it has no space, else the
/// value or the whole parameter in quotes.
fn print(p: &Param, quote_whole: bool) -> String {
    let text = match &p.value {
        Some(v) => format!("{}={v}", p.key),
        None => p.key.clone(),
    };
    let needs = text.is_empty() || text.contains(char::is_whitespace) || text == "--";
    match (&p.value, needs, quote_whole) {
        (_, false, _) => text,
        (Some(v), true, false) if !p.key.contains(char::is_whitespace) && !p.key.is_empty() => {
            format!("{}=\"{v}\"", p.key)
        }
        _ => format!("\"{text}\""),
    }
}

proptest! {
    #[test]
    fn printed_parameters_parse_back(params in params(), quote_whole: bool, sep in "[ \t]{1,3}", newline: bool) {
        let mut line = params.iter().map(|p| print(p, quote_whole)).collect::<Vec<_>>().join(&sep);
        prop_assume!(line.len() < CMDLINE_MAX);
        if newline {
            line.push('\n');
        }
        let parsed = cmdline::parse(&line);
        prop_assert_eq!(&parsed.params, &params, "line {:?}", line);
        prop_assert!(parsed.dropped.is_none());
        for p in &params {
            let last = params.iter().rev().find(|q| q.key == p.key).and_then(|q| q.value.as_deref());
            prop_assert_eq!(parsed.get(&p.key), last);
            let all: Vec<&str> = params.iter().filter(|q| q.key == p.key).filter_map(|q| q.value.as_deref()).collect();
            prop_assert_eq!(parsed.get_all(&p.key).collect::<Vec<_>>(), all);
        }
    }

    /// A line as long as the kernel keeps never hands out its last token
    /// when that token reaches the end, and keeps every earlier one.
    #[test]
    fn a_cut_line_drops_only_its_last_token(params in params(), tail in "[a-z]{1,40}") {
        let head: String = params.iter().map(|p| print(p, true) + " ").collect();
        prop_assume!(head.len() + 12 < CMDLINE_MAX);
        let filler = "x".repeat(CMDLINE_MAX - head.len() - tail.len().min(CMDLINE_MAX - head.len()));
        let line = format!("{head}loader.url={tail}{filler}");
        let line = &line[..CMDLINE_MAX];
        let parsed = cmdline::parse(line);
        prop_assert_eq!(&parsed.params, &params);
        prop_assert!(parsed.dropped.is_some());
    }

    #[test]
    fn any_text_parses(text in "\\PC{0,300}") {
        let parsed = cmdline::parse(&text);
        for p in &parsed.params {
            prop_assert!(!p.key.contains('"'));
        }
    }
}
