//! Property test: what the `meta.conf` printer writes, the install-time
//! parser reads back, and printing that again gives the same text (print
//! → parse → print is a fixed point), for generated trees covering every
//! option and section of fwup's tables with any values of their types.

use proptest::prelude::*;

use super::print::meta_conf_text;
use super::schema::{Opt, Schema, ROOT};
use crate::bundle::conf::{Section, Value};
use crate::bundle::parse::parse_meta_conf;

/// Text as a `fwup.conf` can hold it after pack-time expansion: any
/// printable characters and spaces, quotes and backslashes included, but
/// no `$` (a `${…}` left in `meta.conf` is expanded at install time, on
/// purpose).
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_.]{1,8}", "[^$\\p{C}]{0,16}", Just(String::new()),]
}

fn value(opt: Opt) -> BoxedStrategy<Option<Value>> {
    let scalar = |s: BoxedStrategy<String>| s.prop_map(|s| Some(Value::Scalar(s))).boxed();
    match opt {
        Opt::PackOnly => Just(None).boxed(),
        Opt::Str => scalar(text().boxed()),
        Opt::Int(_) => scalar(any::<i64>().prop_map(|n| n.to_string()).boxed()),
        Opt::Bool(_) => scalar(prop::sample::select(vec!["true".to_string(), "false".to_string()]).boxed()),
        // Lengths: libconfuse reads list items as C `long`.
        Opt::IntList => prop::collection::vec((0..=i64::MAX).prop_map(|n| n.to_string()), 0..4)
            .prop_map(|v| Some(Value::List(v)))
            .boxed(),
        Opt::StrList => prop::collection::vec(text(), 0..5)
            .prop_map(|v| Some(Value::List(v)))
            .boxed(),
    }
}

/// A section of `kind` following `schema`: each option present or not,
/// each subsection kind 0–2 times (titled ones with distinct titles).
fn section(schema: &'static Schema, kind: &'static str, title: Option<String>) -> BoxedStrategy<Section> {
    let options: Vec<BoxedStrategy<Option<(String, Value)>>> = schema
        .options
        .iter()
        .map(|&(key, opt)| {
            prop::option::weighted(0.5, value(opt))
                .prop_map(move |v| v.flatten().map(|v| (key.to_string(), v)))
                .boxed()
        })
        .collect();
    let children: Vec<BoxedStrategy<Vec<Section>>> = schema
        .sections
        .iter()
        .map(|&(kind, titled, sub)| {
            if titled {
                prop::collection::btree_set(text(), 0..3)
                    .prop_flat_map(move |titles| {
                        titles
                            .into_iter()
                            .map(|t| section(sub, kind, Some(t)))
                            .collect::<Vec<_>>()
                    })
                    .boxed()
            } else {
                prop::collection::vec(section(sub, kind, None), 0..2).boxed()
            }
        })
        .collect();
    (options, children)
        .prop_map(move |(options, children)| Section {
            kind: kind.to_string(),
            title: title.clone(),
            options: options.into_iter().flatten().collect(),
            sections: children.into_iter().flatten().collect(),
        })
        .boxed()
}

proptest! {
    #[test]
    fn printed_meta_conf_parses_back_to_the_same_text(root in section(&ROOT, "", None)) {
        let printed = meta_conf_text(&root);
        let (tree, ignored) = parse_meta_conf(&printed, &|_| None)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
        prop_assert!(ignored.is_empty(), "{:?}", ignored);
        prop_assert_eq!(meta_conf_text(&tree), printed);
    }
}
