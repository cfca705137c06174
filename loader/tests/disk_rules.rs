//! What the boot flow does with a disk that already holds something, on
//! loop devices: `auto` refuses a foreign disk and leaves it byte for byte
//! as it was; the bundle already active is not written again; a dry run
//! writes nothing; `repair` over a damaged environment reinstalls and keeps
//! the data partition; `loader disks` says what each disk holds.
//!
//! Needs root and loop devices (each test says SKIPPED otherwise) and
//! `mkfs.ext4` (e2fsprogs, installed by scripts/setup).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const GIB: u64 = 1 << 30;
/// Bundle 02's data partition (p4) starts here; `complete` fills its first
/// 256 blocks and its last block, so a marker further in survives only if
/// nothing writes the partition.
const DATA_BLOCK: u64 = 1_083_904;
const MARKER_AT: u64 = (DATA_BLOCK + 4096) * 512;
const MARKER: &[u8] = b"application data that a repair must keep";

fn fw(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fw")
        .join(name)
}

/// A loop device over a sparse image, detached even when the test fails.
struct LoopDisk {
    dev: String,
    image: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopDisk {
    fn new(size: u64, prepare: impl FnOnce(&Path)) -> Option<LoopDisk> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        fs::File::create(&image).unwrap().set_len(size).unwrap();
        prepare(&image);
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("SKIPPED: loop devices are not available here (needs root and /dev/loop-control)");
            return None;
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(LoopDisk { dev, image, _dir: dir })
    }

    /// `loader boot` with `loader.disk=` this device and `args`.
    fn boot(&self, bundle: &str, args: &str) -> (Output, String) {
        let cmdline = self._dir.path().join("cmdline");
        fs::write(
            &cmdline,
            format!(
                "loader.bundle={} loader.disk={} loader.on_error=halt loader.console=plain {args}",
                fw(bundle).display(),
                self.dev
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_loader"))
            .arg("boot")
            .arg("--cmdline")
            .arg(&cmdline)
            .args(["--config", "/nonexistent", "--keys-dir", "/nonexistent"])
            .args(["--ca-dir", "/nonexistent"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out, text)
    }

    fn sha256(&self) -> Vec<u8> {
        let mut file = fs::File::open(&self.image).unwrap();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break hasher.finalize().to_vec();
            }
            hasher.update(&buf[..n]);
        }
    }

    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut file = fs::File::open(&self.image).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf).unwrap();
        buf
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let mut file = fs::OpenOptions::new().write(true).open(&self.dev).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(data).unwrap();
        file.sync_all().unwrap();
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A disk another OS left: an MBR with an ext4 root (p1, 64 MiB at block
/// 2048) and a swap partition after it.
fn foreign_ext4(image: &Path) {
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "root", "-E", "offset=1048576"])
        .arg(image)
        .arg("64M")
        .status()
        .expect("mkfs.ext4 (e2fsprogs) is needed: scripts/setup installs it");
    assert!(status.success());
    let mut mbr = [0u8; 512];
    for (slot, (kind, first, count)) in [(0x83u8, 2048u32, 131072u32), (0x82, 133120, 65536)].iter().enumerate() {
        let at = 446 + 16 * slot;
        mbr[at + 4] = *kind;
        mbr[at + 8..at + 12].copy_from_slice(&first.to_le_bytes());
        mbr[at + 12..at + 16].copy_from_slice(&count.to_le_bytes());
    }
    mbr[510..].copy_from_slice(&[0x55, 0xaa]);
    let mut file = fs::OpenOptions::new().write(true).open(image).unwrap();
    file.write_all(&mbr).unwrap();
    file.seek(SeekFrom::Start(133120 * 512 + 4086)).unwrap();
    file.write_all(b"SWAPSPACE2").unwrap();
}

#[test]
fn auto_refuses_a_foreign_disk_and_leaves_it_byte_identical() {
    let Some(disk) = LoopDisk::new(GIB, foreign_ext4) else {
        return;
    };
    let before = disk.sha256();
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "loader.task=auto");
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("result: failed class=task"), "{log}");
    for named in [
        "MBR with 2 partition(s)",
        "1: Linux (0x83), 64.0 MiB at block 2048, ext4 \"root\"",
        "2: Linux swap (0x82), 32.0 MiB at block 133120, Linux swap",
        "set loader.task=complete to wipe the disk and install",
    ] {
        assert!(log.contains(named), "the refusal names {named:?}: {log}");
    }
    assert_eq!(disk.sha256(), before, "the refused disk changed");
}

#[test]
fn the_active_bundle_is_not_written_again() {
    let Some(disk) = LoopDisk::new(GIB, |_| {}) else { return };
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "");
    assert!(out.status.success(), "{log}");
    let before = disk.sha256();
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "");
    assert!(out.status.success(), "nothing to do is a success: {log}");
    assert!(
        log.contains("result: unchanged Loader Test Firmware 1.0.0") && log.contains("nothing written"),
        "{log}"
    );
    assert_eq!(disk.sha256(), before, "the active bundle was written again");
}

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let Some(disk) = LoopDisk::new(GIB, |_| {}) else { return };
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "loader.dry_run=1");
    assert!(out.status.success(), "{log}");
    for line in [
        "loader: task: complete (disk is blank",
        "loader: policies: loader.task=auto, allow_downgrade=0",
        "loader: plan: task complete onto ",
        "loader: plan: on-init: mbr_write(mbr) → bytes 0..512 (512 bytes) (partition table)",
        "loader: plan: on-init: uboot_clearenv(uboot-env) → bytes 1048576..1056768 (8.0 KiB) (U-Boot environment)",
        "loader: plan: on-resource rootfs.img: raw_write(35328) → bytes 18087936..",
        "result: dry run Loader Test Firmware 1.0.0 task=complete",
    ] {
        assert!(log.contains(line), "missing {line:?}: {log}");
    }
    let zeros = disk.read(0, 2 << 20);
    assert!(zeros.iter().all(|&b| b == 0), "the dry run wrote to the disk");
}

#[test]
fn repair_over_a_damaged_environment_keeps_the_data_partition() {
    let Some(disk) = LoopDisk::new(GIB, |_| {}) else { return };
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "");
    assert!(out.status.success(), "{log}");
    disk.write(MARKER_AT, MARKER);
    let data_before = disk.read(DATA_BLOCK * 512, 64 << 20);
    // A torn environment: one byte of its CRC-covered data flipped.
    let mut env = disk.read(2048 * 512, 512);
    env[100] ^= 0xff;
    disk.write(2048 * 512, &env);

    let before = disk.sha256();
    let (out, log) = disk.boot("02-x86_64-ab-mbr-v2.fw", "loader.task=auto");
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("an unreadable U-Boot environment at block 2048")
            && log.contains("set loader.task=repair to reinstall keeping the data partition"),
        "auto refuses and points to repair: {log}"
    );
    assert_eq!(disk.sha256(), before, "the refused disk changed");

    let (out, log) = disk.boot("02-x86_64-ab-mbr-v2.fw", "loader.task=repair");
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("result: installed Loader Test Firmware 2.0.0 task=complete (repair, partition 4 kept)"),
        "{log}"
    );
    assert_eq!(disk.read(MARKER_AT, MARKER.len()), MARKER);
    assert!(
        disk.read(DATA_BLOCK * 512, 64 << 20) == data_before,
        "the data partition changed"
    );
    let (out, log) = disk.boot("02-x86_64-ab-mbr-v2.fw", "");
    assert!(
        out.status.success() && log.contains("result: unchanged Loader Test Firmware 2.0.0"),
        "the repaired disk runs v2 with a readable environment: {log}"
    );
}

#[test]
fn repair_is_refused_where_the_layout_does_not_match() {
    let Some(disk) = LoopDisk::new(GIB, foreign_ext4) else {
        return;
    };
    let before = disk.sha256();
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "loader.task=repair");
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("loader.task=repair needs the bundle's partition layout"),
        "{log}"
    );
    assert_eq!(disk.sha256(), before);
}

/// Runs the loader binary with `args`.
fn loader(args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loader")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out, text)
}

#[test]
fn loader_disks_says_what_each_disk_holds_and_what_auto_would_do() {
    let Some(blank) = LoopDisk::new(GIB, |_| {}) else {
        return;
    };
    let Some(installed) = LoopDisk::new(GIB, |_| {}) else {
        return;
    };
    let Some(foreign) = LoopDisk::new(GIB, foreign_ext4) else {
        return;
    };
    let (out, log) = installed.boot("02-x86_64-ab-mbr.fw", "");
    assert!(out.status.success(), "{log}");

    let (out, json) = loader(&["disks", "--json", &blank.dev, &installed.dev, &foreign.dev]);
    assert!(out.status.success(), "{json}");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let (b, i, f) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(b["size"], GIB);
    assert_eq!(b["transport"], "virtual");
    assert_eq!(b["holds"]["blank"], true);
    assert!(b["target"]["auto"]
        .as_str()
        .unwrap()
        .contains("blank, loader.task=auto installs"));

    let install = &i["holds"]["install"];
    assert_eq!(
        (&install["product"], &install["version"], &install["slot"]),
        (&"Loader Test Firmware".into(), &"1.0.0".into(), &"a".into())
    );
    assert_eq!(i["holds"]["table"], "MBR");
    assert_eq!(i["holds"]["partitions"][1]["filesystem"], "squashfs");
    assert!(i["holds"]["install"]["uuid"].as_str().is_some_and(|u| u.len() == 36));

    assert_eq!(f["holds"]["partitions"][0]["filesystem"], "ext4");
    assert_eq!(f["holds"]["partitions"][0]["label"], "root");
    assert_eq!(f["holds"]["partitions"][1]["filesystem"], "Linux swap");
    assert!(f["target"]["auto"].as_str().unwrap().contains("refuses it"));

    let (out, text) = loader(&["disks", &foreign.dev]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("holds: MBR with 2 partition(s): 1: Linux (0x83), 64.0 MiB at block 2048, ext4 \"root\""),
        "{text}"
    );
}

#[test]
fn loader_plan_shows_the_upgrade_and_writes_nothing() {
    let Some(disk) = LoopDisk::new(GIB, |_| {}) else { return };
    let (out, log) = disk.boot("02-x86_64-ab-mbr.fw", "");
    assert!(out.status.success(), "{log}");
    let before = disk.sha256();
    let bundle = fw("02-x86_64-ab-mbr-v2.fw");
    let (out, text) = loader(&[
        "plan",
        bundle.to_str().unwrap(),
        "--disk",
        &disk.dev,
        "--keys-dir",
        "/nonexistent",
    ]);
    assert!(out.status.success(), "{text}");
    for line in [
        "loader: task: upgrade (disk holds slot a of 'Loader Test Firmware' 1.0.0 for x86_64: upgrading to 2.0.0",
        "loader: plan: task upgrade.b onto ",
        "loader: plan: on-init: trim(559616, 524288) → bytes 286523392..554958848 (256.0 MiB) discarded",
        "loader: plan: on-resource rootfs.img: raw_write(559616) → bytes 286523392..",
        "result: dry run Loader Test Firmware 2.0.0 task=upgrade",
    ] {
        assert!(text.contains(line), "missing {line:?}: {text}");
    }
    assert_eq!(disk.sha256(), before, "the plan wrote to the disk");

    let (out, text) = loader(&[
        "plan",
        bundle.to_str().unwrap(),
        "--disk",
        &disk.dev,
        "--task",
        "repair",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("[inside partition 4: kept, not written]"),
        "the repair plan marks what it keeps: {text}"
    );
}

/// fwup's own result images (the corpus) read as `loader disks` reads a
/// disk: the GPT of bundle 03 and the install its `complete` left.
#[test]
fn loader_disks_reads_fwups_gpt_install_from_an_image_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("03-complete.img");
    let out = Command::new("zstd")
        .args(["-q", "-d", "-o"])
        .arg(&image)
        .arg(fw("expected/03-complete.img.zst"))
        .output()
        .expect("zstd (scripts/setup installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (out, json) = loader(&["disks", "--json", image.to_str().unwrap()]);
    assert!(out.status.success(), "{json}");
    let holds = &serde_json::from_str::<serde_json::Value>(&json).unwrap()[0]["holds"];
    assert_eq!(holds["table"], "GPT");
    assert_eq!(holds["partitions"][0]["type"], "EFI System");
    assert_eq!(holds["partitions"][1]["type"], "Linux filesystem");
    assert_eq!(holds["install"]["slot"], "a");
    assert_eq!(holds["install"]["product"], "Loader Test Firmware (GPT)");
}
