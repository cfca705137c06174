//! `docs/progress-json.md` against what `--progress json` writes.

use super::*;
use crate::report::doc_examples::{check, one_event_of_each_kind, summary};
use crate::source::TransferEvent;

const DOC: &str = include_str!("../../../docs/progress-json.md");

#[test]
fn progress_json_doc_shows_every_line_the_code_writes_with_its_fields() {
    let mut written: Vec<Value> = one_event_of_each_kind()
        .iter()
        .map(|e| serde_json::from_str(&event_line(e).unwrap()).unwrap())
        .collect();
    let download = TransferEvent::Resumed { offset: 1, refetch: 0 };
    written.push(serde_json::from_str(&download_line(&download)).unwrap());
    written.push(serde_json::from_str(&finished_line(&summary())).unwrap());
    check("docs/progress-json.md", DOC, &written, SCHEMA);
}

#[test]
fn the_doc_names_every_stage() {
    use crate::apply::events::Stage;
    for stage in [
        Stage::Open,
        Stage::Verify,
        Stage::SelectTask,
        Stage::Init,
        Stage::Resources,
        Stage::Finish,
        Stage::Commit,
        Stage::Done,
        Stage::Download,
        Stage::VerifyAll,
        Stage::SwitchOff,
    ] {
        // A new stage fails to compile here: name it in the doc's table.
        match stage {
            Stage::Open
            | Stage::Verify
            | Stage::SelectTask
            | Stage::Init
            | Stage::Resources
            | Stage::Finish
            | Stage::Commit
            | Stage::Done
            | Stage::Download
            | Stage::VerifyAll
            | Stage::SwitchOff => {}
        }
        let name = serde_json::to_value(stage).unwrap();
        let name = name.as_str().unwrap();
        assert!(
            DOC.contains(&format!("`{name}`")),
            "docs/progress-json.md does not name the stage `{name}`"
        );
    }
}

#[test]
fn the_same_events_in_one_line_each() {
    let mut out = SharedBuf::default();
    let mut lines = JsonLines::new(Box::new(out.clone()));
    for event in one_event_of_each_kind() {
        lines.event(&event);
    }
    let text = out.take();
    assert_eq!(text.lines().count(), one_event_of_each_kind().len(), "{text}");
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["schema"], SCHEMA, "{line}");
    }
}

#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
