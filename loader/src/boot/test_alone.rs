//! Tests that need a process of their own (PID 1 duties: the panic hook,
//! re-executing `/init`, reaping children): the test binary's other tests
//! share its process, its panic hook and its children.

use std::process::Command;

/// The test binary, set to run only `test` (an `#[ignore]`d helper that
/// does its work when its environment variable is set) in a process of its
/// own.
pub fn only(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(["--exact", test, "--include-ignored", "--test-threads=1"]);
    command
}
