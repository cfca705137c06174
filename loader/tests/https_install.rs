//! Installs over HTTPS that must start over from byte 0: the bundle is
//! replaced on the server during the download, or the server cannot
//! resume a broken download. The install starts over (reported, with the
//! bytes downloaded again counted), the image equals the one from applying
//! the final bundle from a file, and a file that never stops changing fails
//! after the bound with nothing bootable written. Both `loader apply URL`
//! and the boot flow (`loader boot` onto a loop device).
#![allow(clippy::unwrap_used)]

mod https_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use https_support::server::{Faults, Rng, TestServer};
use https_support::{loader, text, TwoVersions};
use serde_json::Value;

/// Two versions of a bundle with the same layout: the second one's data
/// covers every byte the first one's could have written before a cut.
const CONF: &str = r#"
meta-product = "loader-test restart"
meta-version = "@VERSION@"
file-resource rootfs.img {
    host-path = "@PATH@"
}
mbr mbr {
    partition 0 {
        block-offset = 2048
        block-count = 8192
        type = 0x83
    }
}
task complete {
    on-init {
        mbr_write(mbr)
    }
    on-resource rootfs.img {
        raw_write(2048)
    }
}
"#;

const ROOTFS_LEN: usize = 3 << 20;
const IMAGE_LEN: u64 = 8 << 20;

struct Setup {
    versions: TwoVersions,
    rng: Rng,
}

impl std::ops::Deref for Setup {
    type Target = TwoVersions;
    fn deref(&self) -> &TwoVersions {
        &self.versions
    }
}

fn setup() -> Setup {
    let versions = TwoVersions::pack(CONF, ROOTFS_LEN, &[]);
    Setup {
        rng: Rng(versions.seed.rotate_left(29) | 1),
        versions,
    }
}

impl Setup {
    fn serve(&self, content: &[u8], faults: Faults) -> TestServer {
        self.versions.serve(content, faults)
    }

    /// A byte offset inside the rootfs data of either bundle.
    fn cut(&mut self) -> u64 {
        let room = self.v1.len().min(self.v2.len()) as u64 - 200_000;
        100_000 + self.rng.next() % room
    }

    fn blank_image(&self, name: &str) -> PathBuf {
        let image = self.dir.path().join(name);
        fs::File::create(&image).unwrap().set_len(IMAGE_LEN).unwrap();
        image
    }

    /// The image `loader apply FILE` makes: what every install must equal.
    fn image_from_file(&self, bundle: &[u8]) -> Vec<u8> {
        let fw = self.dir.path().join("from-file.fw");
        fs::write(&fw, bundle).unwrap();
        let image = self.blank_image("from-file.img");
        let out = loader(&[
            "apply",
            fw.to_str().unwrap(),
            "--device",
            image.to_str().unwrap(),
            "--progress",
            "none",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        fs::read(image).unwrap()
    }

    /// `loader apply URL --progress json`: the exit status, the JSON events
    /// and the image.
    fn apply_url(&self, url: &str) -> (Output, Vec<Value>, Vec<u8>) {
        let image = self.blank_image("https.img");
        let out = loader(&[
            "apply",
            url,
            "--ca",
            self.ca_file.to_str().unwrap(),
            "--device",
            image.to_str().unwrap(),
            "--progress",
            "json",
        ]);
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out, events, fs::read(image).unwrap())
    }
}

fn restarts(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "restart").collect()
}

fn summary(events: &[Value]) -> &Value {
    &events.last().unwrap()["summary"]
}

#[test]
fn a_bundle_replaced_during_the_download_is_installed_again_from_byte_0() {
    let mut s = setup();
    let cut = s.cut();
    let server = s.serve(
        &s.v1,
        Faults {
            cuts: vec![cut],
            swap_at_request: Some(2),
            swapped: s.v2.clone(),
            ..Faults::default()
        },
    );
    let (out, events, image) = s.apply_url(&server.url());
    assert!(out.status.success(), "cut at {cut}: {}", text(&out));
    let restarts = restarts(&events);
    assert_eq!(restarts.len(), 1, "{events:?}");
    let reason = restarts[0]["reason"].as_str().unwrap();
    assert!(reason.contains("ETag was \"v1\", now \"v2\""), "{reason}");
    assert_eq!(restarts[0]["refetch"], cut, "the abandoned attempt's bytes");
    let summary = summary(&events);
    assert_eq!(summary["version"], "2.0.0");
    assert_eq!(
        (summary["restarts"].as_u64(), summary["refetched_bytes"].as_u64()),
        (Some(1), Some(cut))
    );
    assert!(
        image == s.image_from_file(&s.v2),
        "the image differs from v2 applied from a file"
    );
    // The resume asked for the rest of v1, got the new file, and the
    // install started again with a plain request.
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].range.as_deref(), Some(format!("bytes={cut}-").as_str()));
    assert!(requests[2].range.is_none());
}

#[test]
fn a_break_the_server_cannot_resume_starts_over() {
    let faults = Faults {
        no_etag: true,
        ..Faults::default()
    };
    let (events, cut) = starts_over_after_one_break(faults, "cannot be resumed");
    assert_eq!(summary(&events)["refetched_bytes"], cut);
}

/// A weak ETag is no proof that a resumed answer continues the same
/// bytes: the install starts over from byte 0 (counted, with the reason)
/// instead of splicing.
#[test]
fn a_break_with_only_a_weak_validator_starts_over_instead_of_splicing() {
    let faults = Faults {
        weak_etag: true,
        ..Faults::default()
    };
    let (events, _) = starts_over_after_one_break(faults, "weak ETag");
    assert_eq!(summary(&events)["restarts"], 1);
}

/// v1 served with `faults`, no `Last-Modified` and one cut: the install
/// restarts once, from byte 0 (no `Range` request), for a reason naming the
/// cut and `why`, and ends with the image a file install makes. Returns
/// the events and the cut.
fn starts_over_after_one_break(faults: Faults, why: &str) -> (Vec<Value>, u64) {
    let mut s = setup();
    let cut = s.cut();
    let faults = Faults {
        cuts: vec![cut],
        no_last_modified: true,
        ..faults
    };
    let server = s.serve(&s.v1, faults);
    let (out, events, image) = s.apply_url(&server.url());
    assert!(out.status.success(), "cut at {cut}: {}", text(&out));
    let restarts = restarts(&events);
    assert_eq!(restarts.len(), 1, "{events:?}");
    let reason = restarts[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("broke at byte {cut}")) && reason.contains(why),
        "{reason}"
    );
    assert!(server.requests().iter().all(|r| r.range.is_none()), "no resume");
    assert!(
        image == s.image_from_file(&s.v1),
        "the image differs from the bundle applied from a file"
    );
    (events, cut)
}

#[test]
fn a_file_that_keeps_changing_fails_after_three_restarts_with_nothing_bootable() {
    let mut s = setup();
    let cuts = s.rng.offsets(12, s.v1.len() as u64);
    let server = s.serve(
        &s.v1,
        Faults {
            cuts,
            new_version_every_request: true,
            ..Faults::default()
        },
    );
    let (out, events, image) = s.apply_url(&server.url());
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert_eq!(restarts(&events).len(), 3, "{events:?}");
    assert!(
        log.contains("the file changed on the server")
            && log.contains("gave up after starting over from byte 0 3 times"),
        "{log}"
    );
    let fresh = server.requests().iter().filter(|r| r.range.is_none()).count();
    assert_eq!(fresh, 4, "the first attempt and three restarts");
    assert!(
        image[..512].iter().all(|&b| b == 0),
        "an MBR was written: the disk could boot"
    );
}

/// A loop device attached for one test, detached even when it fails.
struct Loop(String);

impl Loop {
    fn attach(image: &Path) -> Option<Loop> {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(image)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| Loop(String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn the_boot_flow_starts_over_when_the_bundle_is_replaced() {
    use base64::Engine as _;
    let mut s = setup();
    let image = s.blank_image("disk.img");
    let Some(dev) = Loop::attach(&image) else {
        eprintln!("SKIPPED: loop devices are not available here (needs root and /dev/loop-control)");
        return;
    };
    let cut = s.cut();
    let server = s.serve(
        &s.v1,
        Faults {
            cuts: vec![cut],
            swap_at_request: Some(2),
            swapped: s.v2.clone(),
            ..Faults::default()
        },
    );
    let ca = base64::engine::general_purpose::STANDARD.encode(s.ca.pem());
    let cmdline = s.dir.path().join("cmdline");
    fs::write(
        &cmdline,
        format!(
            "loader.url={} loader.ca={ca} loader.disk={} loader.on_error=halt loader.console=plain",
            server.url(),
            dev.0
        ),
    )
    .unwrap();
    let out = loader(&[
        "boot",
        "--cmdline",
        cmdline.to_str().unwrap(),
        "--config",
        "/nonexistent",
        "--keys-dir",
        "/nonexistent",
    ]);
    let log = text(&out);
    assert!(out.status.success(), "cut at {cut}: {log}");
    assert!(
        log.contains("restarting from zero (1 of at most 3): the file changed on the server"),
        "{log}"
    );
    assert!(log.contains("started over 1 time(s)"), "{log}");
    drop(dev);
    assert!(
        fs::read(&image).unwrap() == s.image_from_file(&s.v2),
        "the disk differs from v2 applied from a file"
    );
}

/// A broken download that resumes is shown on the console, not only
/// counted: an operator watching `loader apply` sees the break and the
/// resume at the exact byte.
#[test]
fn breaks_and_resumes_are_shown_on_the_console() {
    let mut s = setup();
    let cut = s.cut();
    let server = s.serve(
        &s.v1,
        Faults {
            cuts: vec![cut],
            ..Faults::default()
        },
    );
    let image = s.blank_image("plain.img");
    let out = loader(&[
        "apply",
        &server.url(),
        "--ca",
        s.ca_file.to_str().unwrap(),
        "--device",
        image.to_str().unwrap(),
        "--progress",
        "plain",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("loader: download: the transfer broke after {cut} bytes")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "loader: download: resumed at byte {cut} (0 bytes fetched twice)"
        )),
        "{stderr}"
    );
    assert!(
        fs::read(&image).unwrap() == s.image_from_file(&s.v1),
        "the image differs from the file install"
    );
}
