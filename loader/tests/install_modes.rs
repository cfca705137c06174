//! The install modes of `loader apply URL` over an image that already
//! boots a system, and over a blank one: what a server that corrupts
//! bytes, changes them between two requests, or swaps the bundle behind a
//! SHA-256 pin can and cannot do to the disk.
//!
//! - memory (the bundle fits in RAM): a late corrupt byte is found before
//!   the first write; the old system is byte for byte intact;
//! - two passes (forced here): a second download that differs from the
//!   verified first one is refused, and the disk then selects nothing
//!   bootable, never the corrupt bytes;
//! - plain HTTP with only a pin: a swapped-in bundle whose `on-init` would
//!   wipe the data partition is refused before its meta.conf is read;
//! - an upgrade of the other slot streams in one pass.
#![allow(clippy::unwrap_used)]

mod https_support;
mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use https_support::server::{Faults, TestServer};
use https_support::{loader, text, TwoVersions};
use image_support::{what_boots, ENV};
use serde_json::Value;

/// An A/B layout: slot a at block 4096, b at 12288, a data partition at
/// 20480, the U-Boot environment at block 2048. `@DESTROY@` becomes
/// actions that wipe slot a and the data partition first thing.
const CONF: &str = r#"
meta-product = "loader-test modes"
meta-version = "@VERSION@"
file-resource rootfs.img {
    host-path = "@PATH@"
}
mbr mbr {
    partition 0 {
        block-offset = 4096
        block-count = 8192
        type = 0x83
    }
    partition 1 {
        block-offset = 12288
        block-count = 8192
        type = 0x83
    }
    partition 2 {
        block-offset = 20480
        block-count = 4096
        type = 0x0c
    }
}
uboot-environment uboot-env {
    block-offset = 2048
    block-count = 16
}
task complete {
    on-init {
        @DESTROY@
        mbr_write(mbr)
        uboot_clearenv(uboot-env)
        uboot_setenv(uboot-env, "nerves_fw_active", "a")
        uboot_setenv(uboot-env, "a.version", "@VERSION@")
    }
    on-resource rootfs.img {
        raw_write(4096)
    }
}
task upgrade.a {
    require-uboot-variable(uboot-env, "nerves_fw_active", "b")
    on-init {
        trim(4096, 8192)
    }
    on-resource rootfs.img {
        raw_write(4096)
    }
    on-finish {
        uboot_setenv(uboot-env, "a.version", "@VERSION@")
        uboot_setenv(uboot-env, "nerves_fw_active", "a")
    }
}
task upgrade.b {
    require-uboot-variable(uboot-env, "nerves_fw_active", "a")
    on-init {
        trim(12288, 8192)
    }
    on-resource rootfs.img {
        raw_write(12288)
    }
    on-finish {
        uboot_setenv(uboot-env, "b.version", "@VERSION@")
        uboot_setenv(uboot-env, "nerves_fw_active", "b")
    }
}
"#;

const ROOTFS_LEN: usize = 3 << 20;
const IMAGE_LEN: u64 = 16 << 20;
const DATA: std::ops::Range<usize> = 20480 * 512..24576 * 512;

type Setup = TwoVersions;

fn setup() -> Setup {
    TwoVersions::pack(CONF, ROOTFS_LEN, &[("@DESTROY@", "")])
}

impl TwoVersions {
    /// v2 over TLS with a byte late in its root filesystem inverted, on
    /// request `on` (1-based) or on every one.
    fn serve_v2_corrupt(&self, on: Option<usize>) -> TestServer {
        let faults = Faults {
            corrupt: vec![(late(&self.v2), on)],
            ..Faults::default()
        };
        self.serve(&self.v2, faults)
    }

    /// An image holding v1 (installed from a file with `complete`), and a
    /// copy of its bytes.
    fn installed_image(&self, name: &str) -> (PathBuf, Vec<u8>) {
        let image = self.blank_image(name);
        let fw = self.dir.path().join("v1.fw");
        fs::write(&fw, &self.v1).unwrap();
        let out = loader(&[
            "apply",
            fw.to_str().unwrap(),
            "--device",
            image.to_str().unwrap(),
            "--progress",
            "none",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let bytes = fs::read(&image).unwrap();
        assert_eq!(&bytes[510..512], [0x55, 0xaa], "v1 left an MBR");
        (image, bytes)
    }

    fn blank_image(&self, name: &str) -> PathBuf {
        let image = self.dir.path().join(name);
        fs::File::create(&image).unwrap().set_len(IMAGE_LEN).unwrap();
        image
    }

    /// `loader apply URL --progress json EXTRA…` onto `image`: success,
    /// the JSON events, and everything printed.
    fn apply(&self, url: &str, image: &Path, extra: &[&str]) -> (bool, Vec<Value>, String) {
        let mut args = vec![
            "apply",
            url,
            "--ca",
            self.ca_file.to_str().unwrap(),
            "--device",
            image.to_str().unwrap(),
            "--progress",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = loader(&args);
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (out.status.success(), events, text(&out))
    }
}

/// The `install-mode` event's mode.
fn mode(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["event"] == "install-mode")
        .map(|e| e["mode"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A byte late in the rootfs data of a bundle.
fn late(bundle: &[u8]) -> u64 {
    bundle.len() as u64 - 100_000
}

#[test]
fn a_reinstall_with_a_late_corrupt_byte_is_refused_and_the_old_system_is_untouched() {
    let s = setup();
    let (image, before) = s.installed_image("installed.img");
    let server = s.serve_v2_corrupt(None);
    let (ok, events, log) = s.apply(&server.url(), &image, &["--task", "complete"]);
    assert!(!ok, "{log}");
    assert!(log.contains("corrupt") || log.contains("mismatch"), "{log}");
    assert!(
        fs::read(&image).unwrap() == before,
        "the refused reinstall changed the disk: {log}"
    );
    assert_eq!(mode(&events), "memory", "{log}");
}

#[test]
fn two_passes_refuse_a_second_download_that_differs_and_leave_nothing_bootable() {
    let s = setup();
    let (image, before) = s.installed_image("installed.img");
    let server = s.serve_v2_corrupt(Some(2));
    let (ok, events, log) = s.apply(
        &server.url(),
        &image,
        &["--task", "complete", "--install-mode", "two-pass"],
    );
    assert!(!ok, "{log}");
    assert!(log.contains("BLAKE2b-256 mismatch") || log.contains("corrupt"), "{log}");
    assert_eq!(mode(&events), "two-pass", "{log}");
    assert_eq!(server.requests().len(), 2, "a verifying pass and an installing one");
    let after = fs::read(&image).unwrap();
    assert_eq!(what_boots(&after), Vec::<&str>::new(), "{log}");
    assert!(
        after[DATA] == before[DATA],
        "the failed pass touched the data partition"
    );
}

#[test]
fn two_passes_install_what_one_pass_would() {
    let s = setup();
    let (image, _) = s.installed_image("installed.img");
    let server = s.serve(&s.v2, Faults::default());
    let (ok, events, log) = s.apply(
        &server.url(),
        &image,
        &["--task", "complete", "--install-mode", "two-pass"],
    );
    assert!(ok, "{log}");
    assert_eq!(mode(&events), "two-pass", "{log}");
    assert_eq!(server.requests().len(), 2);
    let from_file = s.blank_image("from-file.img");
    let fw = s.dir.path().join("v2.fw");
    fs::write(&fw, &s.v2).unwrap();
    let out = loader(&["apply", fw.to_str().unwrap(), "--device", from_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let (got, want) = (fs::read(&image).unwrap(), fs::read(&from_file).unwrap());
    assert!(
        got[..DATA.start] == want[..DATA.start],
        "slots and boot records differ from a file install"
    );
}

#[test]
fn plain_http_with_a_pin_refuses_a_swapped_bundle_before_obeying_it() {
    let s = setup();
    let destroy = "raw_memset(20480, 4096, 0xaa)\n        trim(4096, 8192)";
    let evil = https_support::pack(s.dir.path(), CONF, "6.6.6", 666, ROOTFS_LEN, &[("@DESTROY@", destroy)]);
    let pin = {
        use sha2::Digest;
        sha2::Sha256::digest(&s.v2)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for forced in [None, Some("two-pass")] {
        let (image, before) = s.installed_image("installed.img");
        let server = TestServer::start(evil.clone(), Faults::default(), None);
        let mut extra = vec!["--task", "complete", "--sha256", &pin];
        if let Some(mode) = forced {
            extra.extend(["--install-mode", mode]);
        }
        let (ok, events, log) = s.apply(&server.url(), &image, &extra);
        assert!(!ok, "{forced:?}: {log}");
        assert!(log.contains("SHA-256"), "{forced:?}: {log}");
        // One warning, not a warning and a download event saying the same.
        assert_eq!(
            log.matches("plain http:// allowed because").count(),
            1,
            "{forced:?}: {log}"
        );
        assert!(
            fs::read(&image).unwrap() == before,
            "{forced:?}: the swapped bundle changed the disk"
        );
        assert!(
            !events.iter().any(|e| e["event"] == "bundle"),
            "{forced:?}: meta.conf was read before the pin matched: {log}"
        );
    }
}

#[test]
fn a_streamed_upgrade_of_the_other_slot_is_one_pass_and_a_corrupt_one_keeps_slot_a_booting() {
    let s = setup();
    let (image, before) = s.installed_image("installed.img");
    let server = s.serve_v2_corrupt(None);
    let (ok, events, log) = s.apply(&server.url(), &image, &["--task", "upgrade"]);
    assert!(!ok, "{log}");
    assert_eq!(mode(&events), "one-pass", "{log}");
    let reason = events.iter().find(|e| e["event"] == "install-mode").unwrap()["reason"].to_string();
    assert!(reason.contains("upgrade.b writes only blocks 12288-20479"), "{reason}");
    let after = fs::read(&image).unwrap();
    let slot_a = 4096 * 512..12288 * 512;
    assert!(
        after[..512] == before[..512] && after[ENV] == before[ENV],
        "boot records changed"
    );
    assert!(after[slot_a.clone()] == before[slot_a], "slot a changed");
}

/// Standard input cannot be read twice: over a working system the bundle
/// is held in memory (its length unknown, the copy bounded by the budget),
/// so a corrupt one is refused before the first write.
#[test]
fn standard_input_over_a_working_system_is_held_in_memory() {
    use std::io::Write;
    let s = setup();
    let (image, before) = s.installed_image("installed.img");
    let mut corrupt = s.v2.clone();
    let at = late(&corrupt) as usize;
    corrupt[at] ^= 0xff;
    for (bundle, good) in [(&corrupt, false), (&s.v2, true)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loader"))
            .args(["apply", "-", "--device", image.to_str().unwrap(), "--progress", "json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let bytes = bundle.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let log = text(&out);
        assert_eq!(out.status.success(), good, "{log}");
        assert!(log.contains("\"mode\":\"memory\""), "{log}");
        if !good {
            assert!(
                fs::read(&image).unwrap() == before,
                "the refused bundle changed the disk"
            );
        }
    }
    assert!(
        fs::read(&image).unwrap()[ENV] != before[ENV],
        "v2 was installed: its environment"
    );
}

/// Memory mode installs without hashing again (`hashes_proven`: the
/// bytes were verified in memory and cannot have changed), but the ZIP
/// CRC-32 still guards the inflate: a flipped byte of compressed data is
/// refused, and the blank disk is left with nothing that starts a boot.
#[test]
fn proven_hashes_still_check_the_zip_crc() {
    use std::io::Read as _;
    let fw = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fw");
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    fs::File::create(&image).unwrap().set_len(1 << 30).unwrap();
    let mut opts = loader::apply::ApplyOptions::new("complete");
    opts.vars.insert("NERVES_SERIAL_NUMBER".into(), "LT-0001".into());
    opts.hashes_proven = true;
    let mut target = loader::target::file::ImageFile::open(&image).unwrap();
    let bundle = fs::File::open(fw.join("05-corrupt-zipbyte.fw")).unwrap();
    let err = loader::apply::apply(bundle, &mut target, &opts, &mut loader::apply::events::Silent).unwrap_err();
    assert_eq!(err.class(), "corrupt", "{err}");
    drop(target);
    let mut head = vec![0u8; 2 << 20];
    fs::File::open(&image).unwrap().read_exact(&mut head).unwrap();
    assert_eq!(what_boots(&head), Vec::<&str>::new());
}
