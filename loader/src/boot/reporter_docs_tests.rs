//! `docs/status-callback.md` against what the boot flow sends.

use serde_json::Value;

use super::*;
use crate::boot::main_loop::{result_report, start_report};
use crate::boot::run::{Failure, Installed, Outcome};
use crate::report::callback::{recording, SCHEMA};
use crate::report::doc_examples::{check, one_event_of_each_kind, summary};

const DOC: &str = include_str!("../../../docs/status-callback.md");

/// The reports of one attempt: `start`, what `drive` makes the boot flow
/// report, and `result`.
fn attempt(drive: impl FnOnce(&mut BootReporter), result: Value) -> Vec<Value> {
    let sys = tempfile::tempdir().unwrap();
    let net = sys.path().join("class/net/eth0");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("address"), "52:54:00:12:34:56\n").unwrap();
    let (mut callback, recorded) = recording(sys.path());
    callback.send("start", start_report(1));
    let mut out = BootReporter::new(ConsoleMode::Plain, Some(callback));
    drive(&mut out);
    out.finish(result);
    recorded.reports()
}

#[test]
fn status_callback_doc_shows_every_report_the_code_sends_with_its_fields() {
    let mut sent = attempt(
        |out| {
            out.stage("verifying the bundle");
            for event in one_event_of_each_kind() {
                out.event(&event);
            }
        },
        result_report(&Err(Failure {
            stage: "verifying the bundle",
            class: "corrupt".into(),
            message: "resource rootfs.img: BLAKE2b-256 mismatch".into(),
            hint: "the bundle is damaged; download it again",
        })),
    );
    for outcome in [Outcome::Installed, Outcome::AlreadyActive, Outcome::DryRun] {
        // A new outcome fails to compile here: give it a result word and
        // an example in the doc.
        match outcome {
            Outcome::Installed | Outcome::AlreadyActive | Outcome::DryRun => {}
        }
        let installed = Installed {
            summary: summary(),
            disk: "/dev/vda".into(),
            outcome,
        };
        sent.extend(attempt(|_| {}, result_report(&Ok(installed))));
    }
    check("docs/status-callback.md", DOC, &sent, SCHEMA);
}

#[test]
fn status_callback_doc_names_every_stage_the_boot_flow_reports() {
    let sources = [
        include_str!("run.rs"),
        include_str!("fetch.rs"),
        include_str!("plan.rs"),
        include_str!("bundle_source.rs"),
    ];
    let mut stages = 0;
    for source in sources {
        for piece in source.split(".stage(\"").skip(1) {
            let stage = piece.split('"').next().unwrap();
            assert!(
                DOC.contains(&format!("`{stage}`")),
                "docs/status-callback.md does not name the stage `{stage}`"
            );
            stages += 1;
        }
    }
    assert!(
        stages >= 8,
        "found only {stages} stage names in the boot flow's sources"
    );
}
