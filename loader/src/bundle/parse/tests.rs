use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "A" => Some("alpha".into()),
        "EMPTY" => Some(String::new()),
        "SPACED" => Some("x y".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Section {
    match parse_conf(text, &env) {
        Ok(root) => root,
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse_conf(text, &env) {
        Ok(root) => panic!("expected an error, parsed {root:?}"),
        Err(e) => e,
    }
}

fn scalar(root: &Section, key: &str) -> String {
    match root.get(key) {
        Some(Value::Scalar(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn list(root: &Section, key: &str) -> Vec<String> {
    match root.get(key) {
        Some(Value::List(v)) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn options_with_and_without_spaces() {
    let root = parse("a=1\nb = two\n  c\t=\t\"three four\"\r\nd='five'\n");
    assert_eq!(scalar(&root, "a"), "1");
    assert_eq!(scalar(&root, "b"), "two");
    assert_eq!(scalar(&root, "c"), "three four");
    assert_eq!(scalar(&root, "d"), "five");
}

#[test]
fn comments_of_every_kind() {
    let root = parse("# hash\na=1 # trailing\n// slashes\nb=2 // trailing\n/* multi\nline */ c=3 /**/ d=4\n");
    assert_eq!(root.options.len(), 4);
    assert_eq!(scalar(&root, "c"), "3");
    assert_eq!(scalar(&root, "d"), "4");
    // `//` inside a bare string is part of it; `#` ends it.
    let root = parse("url=http://host/x#comment\n");
    assert_eq!(scalar(&root, "url"), "http://host/x");
    // An unterminated block comment ends the input, as in libconfuse.
    assert_eq!(parse("a=1 /* never closed\nb=2").options.len(), 1);
}

#[test]
fn double_quoted_escapes() {
    let root = parse(r#"s="q\" b\\ n\n t\t o\101 h\x41 h\x4a2 other\q""#);
    assert_eq!(scalar(&root, "s"), "q\" b\\ n\n t\t oA hA hJ2 otherq");
    // Line continuation drops the newline; a raw newline is kept.
    let root = parse("s=\"one\\\ntwo\nthree\"\nnext=1");
    assert_eq!(scalar(&root, "s"), "onetwo\nthree");
    // A NUL ends the C string.
    assert_eq!(scalar(&parse(r#"s="ab\0cd""#), "s"), "ab");
    assert_eq!(scalar(&parse(r#"s="ab\x00cd""#), "s"), "ab");
}

#[test]
fn bad_escapes_are_errors_with_line_numbers() {
    let e = err("a=1\ns=\"x\\8\"");
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::BadEscape("\\8".into())));
    // Four digits: flex prefers `\\[0-9]+` over the 3-digit octal rule.
    assert_eq!(err(r#"s="\0123""#).kind, ParseErrorKind::BadEscape("\\0123".into()));
    assert_eq!(err(r#"s="\400""#).kind, ParseErrorKind::OctalTooLarge("\\400".into()));
    assert_eq!(err(r#"s="\xff""#).kind, ParseErrorKind::NotUtf8);
}

#[test]
fn single_quoted_strings_do_not_expand() {
    let root = parse(r"s='${A} \n \\ \' x'");
    assert_eq!(scalar(&root, "s"), r"${A} \n \ ' x");
}

#[test]
fn unterminated_strings() {
    let e = err("a=1\nb=\"open\n\n");
    assert_eq!(e.kind, ParseErrorKind::UnterminatedString);
    assert_eq!(e.line, 2, "reported where the string starts");
    assert_eq!(err("b='open").kind, ParseErrorKind::UnterminatedString);
    assert_eq!(err("b=\"open\\").kind, ParseErrorKind::UnterminatedString);
}

#[test]
fn environment_in_bare_and_double_quoted_strings() {
    let root = parse(
        "a=${A}\nb=\"<${A}>\"\nc=${UNSET}\nd=${UNSET:-dflt}\ne=\"${EMPTY:-dflt}\"\nf=\"${A:x:-y}\"\ng=\"${SPACED}\"\nh=\"$A ${ \"",
    );
    assert_eq!(scalar(&root, "a"), "alpha");
    assert_eq!(scalar(&root, "b"), "<alpha>");
    assert_eq!(scalar(&root, "c"), "");
    assert_eq!(scalar(&root, "d"), "dflt");
    // Set-but-empty is not "unset": libconfuse uses getenv().
    assert_eq!(scalar(&root, "e"), "");
    // Only a `:` directly followed by `-` starts a default.
    assert_eq!(scalar(&root, "f"), "");
    assert_eq!(scalar(&root, "g"), "x y");
    // No `}` anywhere: the `${` stays literal.
    assert_eq!(scalar(&root, "h"), "$A ${ ");
}

#[test]
fn environment_only_expands_at_the_start_of_a_bare_token() {
    // `pre${A}` lexes as `pre$`, `{`, `A`, `}` like libconfuse does.
    let e = err("x=pre${A}\n");
    assert_eq!(
        e.kind,
        ParseErrorKind::Unexpected {
            found: "`{`".into(),
            expected: "an option name"
        }
    );
    // A bare `${…}` token can be a section title or an option name.
    let root = parse("task ${A} { }\n${A} = 1\n");
    assert_eq!(root.sections[0].title.as_deref(), Some("alpha"));
    assert_eq!(scalar(&root, "alpha"), "1");
}

#[test]
fn lists_and_append() {
    let root = parse("l={a, \"b c\", 3}\ne={}\nt={x,}\nm=one\nm+={two}\nn+=solo\n");
    assert_eq!(list(&root, "l"), ["a", "b c", "3"]);
    assert_eq!(list(&root, "e"), Vec::<String>::new());
    assert_eq!(list(&root, "t"), ["x"]);
    assert_eq!(list(&root, "m"), ["one", "two"]);
    assert_eq!(list(&root, "n"), ["solo"]);
    assert_eq!(err("l={a b}").line, 1);
    assert_eq!(
        err("l={,}").kind,
        ParseErrorKind::Unexpected {
            found: "`,`".into(),
            expected: "a list value or `}`"
        }
    );
}

#[test]
fn sections_titled_untitled_and_nested() {
    let root = parse("mbr \"m\" {\n partition 0 { type=0x83 }\n}\ntask t { on-init { funlist={2,info,hi} } }\n");
    let mbr = root.child("mbr", "m").expect("mbr");
    assert_eq!(
        mbr.child("partition", "0").and_then(|p| p.get("type")),
        Some(&Value::Scalar("0x83".into()))
    );
    let task = root.child("task", "t").expect("task");
    assert_eq!(task.children("on-init").count(), 1);
}

#[test]
fn repeated_untitled_section_continues_the_first() {
    let root = parse("task t {\n on-init { funlist={2,info,one} }\n on-init { funlist={2,info,two} }\n}\n");
    let task = root.child("task", "t").expect("task");
    let inits: Vec<_> = task.children("on-init").collect();
    assert_eq!(inits.len(), 1);
    assert_eq!(list(inits[0], "funlist"), ["2", "info", "two"]);
}

#[test]
fn duplicate_titles_are_errors() {
    let e = err("task a {}\n\ntask \"a\" {}\n");
    assert_eq!(e.line, 3);
    assert_eq!(
        e.kind,
        ParseErrorKind::DuplicateSection {
            kind: "task".into(),
            title: "a".into()
        }
    );
}

#[test]
fn function_calls_become_funlist_and_reqlist_entries() {
    let root = parse(
        "task t {\n require-uboot-variable(env, k, v)\n on-init { info(\"a b\") mbr_write(m,) }\n \
         on-resource r { raw_write(2048) }\n}\n",
    );
    let task = root.child("task", "t").expect("task");
    assert_eq!(list(task, "reqlist"), ["4", "require-uboot-variable", "env", "k", "v"]);
    let init = task.children("on-init").next().expect("on-init");
    assert_eq!(list(init, "funlist"), ["2", "info", "a b", "2", "mbr_write", "m"]);
    let res = task.child("on-resource", "r").expect("on-resource");
    assert_eq!(list(res, "funlist"), ["2", "raw_write", "2048"]);

    let e = err("a=1\ndefine(X, 1)\n");
    assert_eq!(e.line, 2);
    assert!(matches!(e.kind, ParseErrorKind::FunctionCall { ref name, .. } if name == "define"));
}

#[test]
fn structural_errors_name_the_line() {
    assert_eq!(err("a=1\n}\n").kind, ParseErrorKind::UnmatchedCloseBrace);
    let e = err("a=1\nb 2");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.kind,
        ParseErrorKind::Unexpected {
            found: "end of file".into(),
            expected: "`{` to open the section"
        }
    );
    // libconfuse ends every open section at the end of the file (fwup
    // installs a meta.conf whose last braces are missing).
    let root = parse("task t {\n on-init {\n a=1\n");
    assert_eq!(scalar(&root.sections[0].sections[0], "a"), "1");
    assert_eq!(
        err("a=").kind,
        ParseErrorKind::Unexpected {
            found: "end of file".into(),
            expected: "a value"
        }
    );
    assert_eq!(
        err("a b c").kind,
        ParseErrorKind::Unexpected {
            found: "`c`".into(),
            expected: "`{` to open the section"
        }
    );
    assert_eq!(err("=").line, 1);
    let msg = err("a=1\n\n\nb{{").to_string();
    assert!(msg.starts_with("meta.conf line 4: "), "{msg}");
}

#[test]
fn nesting_is_bounded() {
    let deep = "a{".repeat(MAX_DEPTH + 1);
    assert_eq!(err(&deep).kind, ParseErrorKind::TooDeep);
    let ok = format!("{}{}", "a{".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
    assert!(parse_conf(&ok, &env).is_ok());
}

#[test]
fn input_ends_at_nul_and_stray_bytes_are_dropped() {
    let root = parse("a=1\0b=2");
    assert_eq!(root.options.len(), 1);
    let root = parse("a = 1 * + \r\nb=2");
    assert_eq!((scalar(&root, "a"), scalar(&root, "b")), ("1".into(), "2".into()));
}

#[test]
fn expand_vars_follows_the_same_rules() {
    assert_eq!(expand_vars("x${A}y${UNSET}z${UNSET:-d}", &env), "xalphayzd");
    assert_eq!(expand_vars("keep ${ and $A", &env), "keep ${ and $A");
    assert_eq!(expand_vars("${EMPTY:-d}|${A:b:-c}", &env), "|");
    assert_eq!(expand_vars("", &env), "");
}

/// `parse_meta_conf`: the tree, the names skipped as `name@line`, or the
/// error text.
fn meta(text: &str) -> Result<(Section, Vec<String>), String> {
    parse_meta_conf(text, &env)
        .map(|(root, ignored)| (root, ignored.iter().map(|i| format!("{}@{}", i.name, i.line)).collect()))
        .map_err(|e| e.to_string())
}

// Each case below was also applied by fwup 1.16 (bundles with these
// meta.conf texts): it accepts exactly the ones accepted here, and where
// its skipping swallows what follows, its install shows the same loss.

#[test]
fn unknown_options_calls_and_list_sections_are_skipped_cleanly() {
    let text = "a=1\nb={1,2}\nc(3)\nmeta-product=p\nd \"e\" {\n f={4}\n}\nmeta-version=v\n\
                task t {\n new-opt = 5\n on-validate {\n  funlist={2,info,x}\n }\n on-init {\n  hook(1)\n  funlist={2,info,y}\n }\n}\n";
    let (root, ignored) = meta(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ignored,
        ["a@1", "b@2", "c@3", "d@5", "new-opt@10", "on-validate@11", "hook@15"]
    );
    let names: Vec<&str> = root.options.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["meta-product", "meta-version"]);
    let task = &root.sections[0];
    assert_eq!(task.sections.len(), 1, "only on-init is kept: {task:?}");
    assert_eq!(list(&task.sections[0], "funlist"), ["2", "info", "y"]);
}

#[test]
fn an_unknown_append_swallows_up_to_the_next_equals_sign() {
    // libconfuse waits for `=` after `+=` (its lexer makes `+=` one token),
    // so the next option goes with it.
    let (root, ignored) = meta("x += 5\nmeta-misc = \"m\"\nmeta-product = p\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ignored, ["x@1"]);
    let names: Vec<&str> = root.options.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["meta-product"]);
    // In a handler, the funlist after it is lost: fwup then runs nothing.
    let (root, _) =
        meta("task t { on-init {\n newl += 1\n funlist={2,info,x}\n} }\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(root.sections[0].sections[0].options.is_empty(), "{root:?}");
}

#[test]
fn an_unknown_section_ending_in_a_plain_value_is_what_fwup_cannot_read() {
    // `{ a = 1 }`: the value is followed by one dropped token (the `}`),
    // so the skip runs on into what follows.
    for text in [
        "new { a = 1 }\ntask \"t\" { }\n",
        "new \"t\" { a = 1 }\ntask \"t\" { }\n",
        "new { }\ntask \"t\" { }\n",
        "task \"t\" { }\nnew \"t\" { a = 1 }\n",
        "meta-product = p\nnew",
    ] {
        let err = meta(text).err().unwrap_or_default();
        assert!(
            err.contains("fwup refuses this meta.conf too") || err.contains("without a matching"),
            "{text:?}: {err}"
        );
    }
    let err = meta("new \"t\" { a = 1 }\ntask \"t\" { }\n").err().unwrap_or_default();
    assert_eq!(
        err,
        "meta.conf line 2: found `t` where `{` should follow its title, while skipping the unknown `new` of \
         line 1 as fwup 1.16 (libconfuse) does; fwup refuses this meta.conf too"
    );
}

#[test]
fn a_skip_that_swallows_the_closing_brace_ends_with_the_file() {
    // The unknown `on-v { x=1 }` takes the task's `}` with it; the task then
    // ends at the end of the file, without its on-init (fwup installs this
    // and runs nothing in on-init).
    let text = "task t {\n on-v {\n  x=1\n }\n on-init {\n  funlist={1,x}\n }\n}\n";
    let (root, ignored) = meta(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ignored, ["on-v@2"]);
    assert!(root.sections[0].sections.is_empty(), "{root:?}");
}

#[test]
fn known_names_must_be_used_as_what_they_are() {
    for (text, says) in [
        (
            "task t { on-finish = 5 }\n",
            "`on-finish` is a section written `on-finish { … }`",
        ),
        ("task { }\n", "`task` is a section written `task \"NAME\" { … }`"),
        (
            "task t { on-init \"x\" { } }\n",
            "`on-init` is a section written `on-init { … }`",
        ),
        ("task t { on-init { funlist(1) } }\n", "`funlist` is a list option"),
        (
            "task t { on-init { info = x } }\n",
            "`info` is a function written `info(…)`",
        ),
        (
            "meta-misc += x\n",
            "`meta-misc` is an option written `meta-misc = VALUE`",
        ),
        (
            "mbr m { partition 0 { type = {1} } }\n",
            "a list is given where one value is expected",
        ),
        ("mbr m { partition 0 { type = abc } }\n", "`abc` is not an integer"),
        ("gpt g { partition p { boot = maybe } }\n", "`maybe` is not a boolean"),
    ] {
        let err = meta(text).err().unwrap_or_default();
        assert!(err.contains(says), "{text:?}: {err}");
    }
    // What libconfuse accepts is accepted.
    for text in [
        "mbr m { partition 0 { type = 0x83 boot = Yes block-count = \" 7\" } }\n",
        "file-resource r { length = {1, 0x2} length += 3 }\n",
        "task t { on-init { info(\"hello\") } }\n",
    ] {
        assert!(meta(text).is_ok(), "{text:?}: {:?}", meta(text).err());
    }
}

#[test]
fn the_schema_free_parse_keeps_every_name() {
    // parse_conf (the typed readers' tests, pack) is not filtered.
    let root = parse("anything = 1\nbogus \"x\" { y = 2 }\n");
    assert_eq!(root.options.len(), 1);
    assert_eq!(root.sections.len(), 1);
}
