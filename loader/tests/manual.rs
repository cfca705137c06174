//! `loader completions` and `loader manpages`: generated from the clap
//! definitions, so every command and option a user can type is in them.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn loader(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loader")).args(args).output().unwrap()
}

#[test]
fn bash_completion_offers_every_command_and_apply_options() {
    let out = loader(&["completions", "bash"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("complete -F _loader"), "not a bash completion script");
    for word in [
        "apply",
        "inspect",
        "verify",
        "pack",
        "ipxe",
        "initramfs",
        "--device",
        "--public-key",
    ] {
        assert!(script.contains(word), "completion lacks {word}");
    }
}

#[test]
fn unknown_shell_is_refused_naming_the_choices() {
    let out = loader(&["completions", "tcsh"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bash") && err.contains("zsh"), "{err}");
}

#[test]
fn manpages_cover_the_tool_and_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = loader(&["manpages", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let main = std::fs::read_to_string(dir.path().join("loader.1")).unwrap();
    assert!(main.starts_with(".ie") || main.contains(".TH loader"), "{main}");
    let apply = std::fs::read_to_string(dir.path().join("loader-apply.1")).unwrap();
    assert!(apply.contains(".TH loader-apply"), "{apply}");
    assert!(apply.contains("device"), "apply page lacks its options");
    assert!(dir.path().join("loader-verify.1").exists());
}
