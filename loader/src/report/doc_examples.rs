//! Reading the JSON examples of `docs/progress-json.md` and
//! `docs/status-callback.md`, so tests can hold each document to what the
//! code writes: every kind of line the code writes has an example with the
//! same fields, and every example is of a kind the code writes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::apply::events::{Event, Stage};

/// Every JSON value in the document's ```json blocks (one per line, or
/// pretty-printed over several).
pub fn examples(doc: &str) -> Vec<Value> {
    let mut values = Vec::new();
    for block in doc.split("```json\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        for value in serde_json::Deserializer::from_str(block).into_iter::<Value>() {
            values.push(value.unwrap_or_else(|e| panic!("an example does not parse: {e}\n{block}")));
        }
    }
    values
}

/// What kind of line this is: `event`, and the `kind` of an `info` report
/// or the `result` of a result report.
pub fn label(value: &Value) -> String {
    let event = value["event"].as_str().unwrap_or("(no event)");
    match (value.get("kind"), value.get("result")) {
        (Some(kind), _) => format!("{event}/{}", kind.as_str().unwrap_or_default()),
        (None, Some(result)) if event == "result" => format!("{event}/{}", result.as_str().unwrap_or_default()),
        _ => event.to_string(),
    }
}

/// The field names, nested ones as `outer.inner`; the interface names
/// under `macs` are the machine's, not the format's.
pub fn shape(value: &Value) -> BTreeSet<String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
        if let Value::Object(map) = value {
            for (key, inner) in map {
                let path = format!("{prefix}{key}");
                out.insert(path.clone());
                if key != "macs" {
                    walk(&format!("{path}."), inner, out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", value, &mut out);
    out
}

/// Checks `doc`'s examples against `written` (what the code writes, one or
/// more of each kind): the same kinds, each with the same fields, and
/// `"schema": schema` everywhere.
pub fn check(doc_name: &str, doc: &str, written: &[Value], schema: u32) {
    let mut documented: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for example in examples(doc) {
        assert_eq!(
            example["schema"], schema,
            "{doc_name}: an example without \"schema\": {schema}: {example}"
        );
        documented.entry(label(&example)).or_default().push(example);
    }
    let mut kinds = BTreeSet::new();
    for line in written {
        let kind = label(line);
        let Some(examples) = documented.get(&kind) else {
            panic!("{doc_name} has no example of `{kind}`, which the code writes as {line}");
        };
        for example in examples {
            assert_eq!(
                shape(example),
                shape(line),
                "{doc_name}: the example of `{kind}` has other fields than the code writes\n  doc:  {example}\n  code: {line}"
            );
        }
        kinds.insert(kind);
    }
    for kind in documented.keys() {
        assert!(
            kinds.contains(kind),
            "{doc_name} shows `{kind}`, which the code never writes"
        );
    }
}

/// One engine event of each kind. A new kind fails to compile here: add
/// it, with an example, to `docs/progress-json.md` and (if the boot flow
/// forwards it) `docs/status-callback.md`.
pub fn one_event_of_each_kind() -> Vec<Event> {
    let all = vec![
        Event::Stage { stage: Stage::Open },
        Event::Bundle {
            product: "p".into(),
            version: "1".into(),
            uuid: "u".into(),
            signature: "unsigned".into(),
        },
        Event::Task {
            task: "complete".into(),
        },
        Event::Resource {
            name: "r".into(),
            bytes: 1,
        },
        Event::Progress { done: 1, total: 2 },
        Event::Info { message: "m".into() },
        Event::Warning { message: "m".into() },
        Event::Restart {
            reason: "r".into(),
            restart: 1,
            limit: 3,
            refetch: 0,
        },
        Event::InstallMode {
            mode: "memory".into(),
            reason: "r".into(),
            budget: 1,
            available: Some(2),
        },
    ];
    for event in &all {
        match event {
            Event::Stage { .. }
            | Event::Bundle { .. }
            | Event::Task { .. }
            | Event::Resource { .. }
            | Event::Progress { .. }
            | Event::Info { .. }
            | Event::Warning { .. }
            | Event::Restart { .. }
            | Event::InstallMode { .. } => {}
        }
    }
    all
}

/// A summary with every field set.
pub fn summary() -> crate::apply::Summary {
    crate::apply::Summary {
        product: "p".into(),
        version: "1".into(),
        uuid: "u".into(),
        task: "complete".into(),
        signature: "unsigned".into(),
        resource_bytes: 1,
        committed_bytes: 1,
        restarts: 0,
        refetched_bytes: 0,
        elapsed: std::time::Duration::from_millis(1),
    }
}
