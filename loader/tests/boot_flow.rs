//! `loader boot` end to end on the host: the same steps PID 1 runs, driven
//! by a kernel command line file. Real installs use loop devices (skipped
//! with a message where they are not available); refusals use fake sysfs
//! trees, since they stop before a disk is opened.

#![allow(clippy::unwrap_used)]

mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fw(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fw")
        .join(name)
}

fn loader_boot(dir: &Path, cmdline: &str, extra: &[&str]) -> Output {
    let file = dir.join("cmdline");
    fs::write(&file, cmdline).unwrap();
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .arg("boot")
        .arg("--cmdline")
        .arg(&file)
        .args([
            "--config",
            "/nonexistent",
            "--keys-dir",
            "/nonexistent",
            "--ca-dir",
            "/nonexistent",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// A fake `/sys/block` disk: enough attributes for discovery.
fn fake_disk(sys_block: &Path, name: &str, dev: &str, bytes: u64, serial: &str) {
    let d = sys_block.join(name);
    fs::create_dir_all(d.join("queue")).unwrap();
    fs::create_dir_all(d.join("device")).unwrap();
    fs::write(d.join("size"), format!("{}\n", bytes / 512)).unwrap();
    fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
    fs::write(d.join("removable"), "0\n").unwrap();
    fs::write(d.join("ro"), "0\n").unwrap();
    fs::write(d.join("queue/logical_block_size"), "512\n").unwrap();
    fs::write(d.join("queue/rotational"), "0\n").unwrap();
    fs::write(d.join("device/model"), "QEMU HARDDISK\n").unwrap();
    fs::write(d.join("device/serial"), format!("{serial}\n")).unwrap();
}

#[test]
fn two_candidate_disks_without_loader_disk_are_refused_with_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys/block");
    // Device numbers no real disk here has: the host's own root disk is
    // mounted and would be refused for that reason instead.
    fake_disk(&sys, "sdx", "8:240", 20 << 30, "AAA");
    fake_disk(&sys, "sdy", "65:0", 20 << 30, "BBB");
    let cmdline = format!(
        "loader.bundle={} loader.on_error=halt loader.disk_wait=1 loader.console=plain",
        fw("02-x86_64-ab-mbr.fw").display()
    );
    let out = loader_boot(dir.path(), &cmdline, &["--sys-block", sys.to_str().unwrap()]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("class=disk"), "{log}");
    assert!(
        log.contains("sdx") && log.contains("sdy"),
        "the refusal lists the candidates: {log}"
    );
}

#[test]
fn a_disk_too_small_for_the_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys/block");
    fake_disk(&sys, "sdx", "8:240", 64 << 20, "SMALL");
    let cmdline = format!(
        "loader.bundle={} loader.on_error=halt loader.disk_wait=1 loader.console=plain",
        fw("02-x86_64-ab-mbr.fw").display()
    );
    let out = loader_boot(dir.path(), &cmdline, &["--sys-block", sys.to_str().unwrap()]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("class=disk") && log.contains("sdx"), "{log}");
}

#[test]
fn no_bundle_anywhere_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("root/install.fw");
    let out = loader_boot(
        dir.path(),
        "console=ttyS0 loader.on_error=halt",
        &["--default-bundle", missing.to_str().unwrap()],
    );
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("class=no-bundle") && log.contains("install.fw"), "{log}");
}

#[test]
fn a_bundle_with_a_damaged_head_is_refused_before_any_disk_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let cmdline = format!(
        "loader.bundle={} loader.on_error=halt loader.console=plain",
        fw("05-truncated-meta.fw").display()
    );
    // No sysfs at all: reading the head must fail first.
    let out = loader_boot(dir.path(), &cmdline, &["--sys-block", "/nonexistent"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("class=corrupt") && log.contains("stage=opening the bundle"),
        "{log}"
    );
}

/// An injected bundle is read once on a blank disk: a corrupt one is found
/// while installing, and leaves nothing bootable. Over an installed disk
/// the same kind of bundle is verified whole before the first write, and
/// the disk stays byte for byte as it was.
#[test]
fn a_corrupt_injected_bundle_leaves_a_blank_disk_unbootable_and_an_installed_one_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let Some((image, dev)) = blank_loop(dir.path(), 1 << 30) else {
        return;
    };
    let boot = |bundle: &Path| {
        let cmdline = format!(
            "loader.bundle={} loader.disk={} loader.on_error=halt loader.console=plain",
            bundle.display(),
            dev.0
        );
        let out = loader_boot(dir.path(), &cmdline, &[]);
        (out.status.success(), text(&out))
    };
    let (ok, log) = boot(&fw("05-corrupt-resource.fw"));
    assert!(!ok && log.contains("class=corrupt"), "{log}");
    assert!(
        log.contains("install mode: one-pass: the disk holds nothing bootable"),
        "{log}"
    );
    assert!(!log.contains("verifying every resource"), "one pass only: {log}");
    assert_eq!(
        image_support::boot_records(&fs::read(&image).unwrap()),
        Vec::<&str>::new()
    );

    let (ok, log) = boot(&fw("02-x86_64-ab-mbr.fw"));
    assert!(ok, "{log}");
    let before = fs::read(&image).unwrap();
    let mut corrupt = fs::read(fw("02-x86_64-ab-mbr-v2.fw")).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let corrupt_path = dir.path().join("corrupt-v2.fw");
    fs::write(&corrupt_path, corrupt).unwrap();
    let (ok, log) = boot(&corrupt_path);
    assert!(!ok && log.contains("class=corrupt"), "{log}");
    assert!(log.contains("install mode: memory"), "{log}");
    drop(dev);
    assert!(
        fs::read(&image).unwrap() == before,
        "the refused reinstall changed the disk"
    );
}

#[test]
fn unknown_loader_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = loader_boot(
        dir.path(),
        "loader.dsik=/dev/vda loader.on_error=halt",
        &["--default-bundle", "/nonexistent"],
    );
    let log = text(&out);
    assert!(log.contains("loader.dsik"), "{log}");
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
        if !out.status.success() {
            return None;
        }
        Some(Loop(String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// A blank sparse image of `len` bytes in `dir` on a loop device, or `None`
/// (with a SKIPPED line) where loop devices are not available.
fn blank_loop(dir: &Path, len: u64) -> Option<(PathBuf, Loop)> {
    let image = dir.join("disk.img");
    fs::File::create(&image).unwrap().set_len(len).unwrap();
    let dev = Loop::attach(&image);
    if dev.is_none() {
        eprintln!("SKIPPED: loop devices are not available here (needs root and /dev/loop-control)");
    }
    Some((image, dev?))
}

#[test]
fn first_install_then_rescue_upgrade_on_a_loop_device() {
    let dir = tempfile::tempdir().unwrap();
    let Some((image, dev)) = blank_loop(dir.path(), 1 << 30) else {
        return;
    };
    let first = format!(
        "loader.bundle={} loader.disk={} loader.env.NERVES_SERIAL_NUMBER=LT-0001 loader.on_error=halt loader.console=plain",
        fw("02-x86_64-ab-mbr.fw").display(),
        dev.0
    );
    let out = loader_boot(dir.path(), &first, &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("task: complete"),
        "a blank disk gets a complete install: {log}"
    );
    for line in ["loader: stage: choosing the task", "loader: task: "] {
        assert_eq!(log.matches(line).count(), 1, "`{line}` once: {log}");
    }

    let second = format!(
        "loader.bundle={} loader.disk={} loader.on_error=halt loader.console=plain",
        fw("02-x86_64-ab-mbr-v2.fw").display(),
        dev.0
    );
    let out = loader_boot(dir.path(), &second, &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("task=upgrade.b"),
        "an installed disk gets the upgrade (rescue reinstall): {log}"
    );
    drop(dev);
    assert_image_matches(&fw("expected/02-up1-v2-to-b.img.zst"), &image);
}

/// Serves one file over plain HTTP/1.1 on 127.0.0.1 until the test ends.
fn serve_once(body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}

#[test]
fn streamed_install_from_a_url_with_a_sha256_pin() {
    let dir = tempfile::tempdir().unwrap();
    let Some((image, dev)) = blank_loop(dir.path(), 4 << 20) else {
        return;
    };
    let bundle = fs::read(fw("01-minimal-raw.fw")).unwrap();
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&bundle)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let port = serve_once(bundle);
    // Plain http:// without a key or pin is refused before anything is written.
    let refused = loader_boot(
        dir.path(),
        &format!(
            "loader.url=http://127.0.0.1:{port}/b.fw loader.disk={} loader.on_error=halt",
            dev.0
        ),
        &[],
    );
    let log = text(&refused);
    assert!(!refused.status.success() && log.contains("plain http"), "{log}");
    let out = loader_boot(
        dir.path(),
        &format!("loader.url=http://127.0.0.1:{port}/b.fw loader.sha256={sha} loader.disk={} loader.on_error=halt loader.console=plain", dev.0),
        &[],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("SHA-256 is pinned"), "{log}");
    // Said once, not once by the boot flow and again by the transfer.
    assert_eq!(log.matches("plain http:// allowed because").count(), 1, "{log}");
    drop(dev);
    assert_image_matches(&fw("expected/01-complete.img.zst"), &image);
}

/// The image equals fwup's result (imgcompare: identical or equivalent).
fn assert_image_matches(expected: &Path, image: &Path) {
    let compare = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/imgcompare"))
        .arg(expected)
        .arg(image)
        .output()
        .unwrap();
    assert!(compare.status.success(), "{}", text(&compare));
}

#[test]
fn status_callback_receives_start_stages_and_the_failure() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(false).unwrap();
    let server = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            let text = String::from_utf8(body).unwrap();
            let done = text.contains("\"event\":\"result\"");
            bodies.push(text);
            if done {
                return bodies;
            }
        }
        bodies
    });
    let dir = tempfile::tempdir().unwrap();
    let cmdline = format!(
        "loader.bundle={} loader.on_error=halt loader.report=http://127.0.0.1:{port}/status",
        fw("05-truncated-meta.fw").display()
    );
    let out = loader_boot(dir.path(), &cmdline, &["--sys-block", "/nonexistent"]);
    assert!(!out.status.success(), "{}", text(&out));
    let bodies = server.join().unwrap();
    assert!(bodies[0].contains("\"event\":\"start\""), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("opening the bundle")), "{bodies:?}");
    let last = bodies.last().unwrap();
    assert!(
        last.contains("\"result\":\"failed\"") && last.contains("\"class\":\"corrupt\""),
        "{last}"
    );
    assert!(last.contains("\"machine\""), "{last}");
}

#[test]
fn metadata_service_provides_provisioning_variables() {
    let dir = tempfile::tempdir().unwrap();
    let Some((image, dev)) = blank_loop(dir.path(), 1 << 30) else {
        return;
    };
    let port = serve_once(br#"{"NERVES_SERIAL_NUMBER": "LT-0001", "ignored": {"nested": 1}}"#.to_vec());
    let cmdline = format!(
        "loader.bundle={} loader.disk={} loader.metadata=http://127.0.0.1:{port}/meta loader.on_error=halt",
        fw("02-x86_64-ab-mbr.fw").display(),
        dev.0
    );
    let out = loader_boot(dir.path(), &cmdline, &[]);
    assert!(out.status.success(), "{}", text(&out));
    drop(dev);
    // The serial number from the metadata landed in the U-Boot environment
    // exactly as fwup writes it with NERVES_SERIAL_NUMBER=LT-0001.
    assert_image_matches(&fw("expected/02-complete.img.zst"), &image);
}

/// `loader.pubkey=` next to keys baked into the initramfs is refused before
/// anything is read: a key on the command line must never widen the baked
/// ones (before, a bundle signed by the command-line key was installed).
/// Without baked keys the same `loader.pubkey=` is enforced.
#[test]
fn a_command_line_key_is_refused_when_keys_are_baked_in() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let keys = fw("keys");
    let signed = dir.path().join("signed-by-other.fw");
    let out = Command::new(env!("CARGO_BIN_EXE_loader"))
        .arg("sign")
        .arg(fw("01-minimal-raw.fw"))
        .arg("-k")
        .arg(keys.join("wrong-key.priv"))
        .arg("-o")
        .arg(&signed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let other_key = fs::read_to_string(keys.join("wrong-key.pub")).unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(other_key.trim())
            .unwrap()
            .len(),
        32
    );
    let baked = dir.path().join("baked");
    fs::create_dir(&baked).unwrap();
    fs::copy(keys.join("test-key.pub"), baked.join("owner.pub")).unwrap();
    let cmdline = format!(
        "loader.bundle={} loader.pubkey={} loader.on_error=halt loader.console=plain",
        signed.display(),
        other_key.trim()
    );
    let file = dir.path().join("cmdline");
    fs::write(&file, &cmdline).unwrap();
    let boot = |keys_dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_loader"))
            .arg("boot")
            .arg("--cmdline")
            .arg(&file)
            .args(["--config", "/nonexistent", "--ca-dir", "/nonexistent"])
            .arg("--keys-dir")
            .arg(keys_dir)
            .args(["--sys-block", "/nonexistent"])
            .output()
            .unwrap()
    };
    let out = boot(&baked);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("class=config")
            && log.contains("loader.pubkey= is refused")
            && log.contains("baked keys are exclusive"),
        "{log}"
    );
    assert!(
        !log.contains("stage: finding the bundle"),
        "refused before the bundle: {log}"
    );

    // Nothing baked: the command-line key is the one enforced.
    let out = boot(Path::new("/nonexistent"));
    let log = text(&out);
    assert!(log.contains("1 public key(s) enforced"), "{log}");
    assert!(!log.contains("loader.pubkey= is refused"), "{log}");
}

/// An endpoint that accepts reports and never answers: after the result,
/// the boot flow waits `loader.report_timeout=` for it, not minutes of
/// queued reports × retries × timeouts.
#[test]
fn a_silent_status_endpoint_holds_the_end_only_for_the_report_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cmdline = format!(
        "loader.bundle={} loader.on_error=halt loader.report=http://127.0.0.1:{port}/status loader.report_timeout=1s",
        fw("05-corrupt-resource.fw").display()
    );
    let started = std::time::Instant::now();
    let out = loader_boot(dir.path(), &cmdline, &["--sys-block", "/nonexistent"]);
    let took = started.elapsed();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        took < std::time::Duration::from_secs(8),
        "the end took {took:?}: {}",
        text(&out)
    );
}

/// Plain-HTTP metadata fills `${VAR}` in a signed meta.conf: it is taken
/// only from link-local or loopback addresses (where cloud metadata
/// services live), and a routable one is refused before connecting,
/// naming the rule and the key that lifts it.
#[test]
fn plain_http_metadata_from_a_routable_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 192.0.2.1 (TEST-NET-1) is refused before any packet is sent.
    let cmdline = format!(
        "loader.bundle={} loader.metadata=http://192.0.2.1:9/meta loader.on_error=halt",
        fw("02-x86_64-ab-mbr.fw").display()
    );
    let out = loader_boot(dir.path(), &cmdline, &["--sys-block", "/nonexistent"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("only from link-local (169.254.0.0/16, fe80::/10) or loopback addresses")
            && log.contains("192.0.2.1 is neither")
            && log.contains("loader.metadata_insecure=1"),
        "{log}"
    );
}
