//! `loader apply` onto real block devices (loop devices over sparse files):
//! the install, the partitions appearing afterwards, the refusal of a
//! mounted disk, and `--device auto`'s write check on a disk in use. (The
//! refusal of the disk the system booted from is tested on a fake sysfs in
//! `hostdisk`'s unit tests: a loop device's boot disk is its backing disk.) Each test skips with a message when loop
//! devices are not available (not root); every loop device and mount is
//! undone by drop guards, also when a test fails.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use loader::apply::{self, events::Silent, ApplyError, ApplyOptions};
use loader::formats::Medium;
use loader::hostdisk::{self, refresh, Paths};
use loader::target::blockdev::BlockDevice;
use loader::target::Target;

const MIB: u64 = 1 << 20;
/// The 02 corpus layout ends at block 1607680 (785 MiB).
const DISK: u64 = 800 * MIB;
/// Partition starts of the 02 corpus layout, in blocks.
const STARTS: [u64; 4] = [4096, 35328, 559616, 1083904];

fn fw(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fw")
        .join(name)
}

/// A loop device with partition scanning over a sparse temp file.
struct LoopDevice {
    path: PathBuf,
    image: tempfile::NamedTempFile,
}

impl LoopDevice {
    fn attach(size: u64) -> Option<LoopDevice> {
        if !Path::new("/dev/loop-control").exists() || !Path::new("/proc/self").metadata().is_ok_and(|m| m.uid() == 0) {
            eprintln!("skipping: loop devices need root and /dev/loop-control");
            return None;
        }
        let image = tempfile::NamedTempFile::new().unwrap();
        image.as_file().set_len(size).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show", "-P"])
            .arg(image.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipping: losetup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(LoopDevice { path, image })
    }

    fn name(&self) -> String {
        self.path.file_name().unwrap().to_string_lossy().into_owned()
    }

    fn part(&self, n: u32) -> PathBuf {
        PathBuf::from(format!("{}p{n}", self.path.display()))
    }

    /// The partition's start in blocks as the kernel has it, if it has it.
    fn kernel_start(&self, n: u32) -> Option<u64> {
        let dir = Path::new("/sys/block")
            .join(self.name())
            .join(format!("{}p{n}", self.name()));
        std::fs::read_to_string(dir.join("start")).ok()?.trim().parse().ok()
    }

    fn kernel_size(&self, n: u32) -> Option<u64> {
        let dir = Path::new("/sys/block")
            .join(self.name())
            .join(format!("{}p{n}", self.name()));
        std::fs::read_to_string(dir.join("size")).ok()?.trim().parse().ok()
    }

    fn bytes(&self) -> Vec<u8> {
        // Sparse: read the first and last 2 MiB and the env (what boots).
        let mut out = vec![0u8; 4 * MIB as usize];
        let file = self.image.as_file();
        file.read_exact_at(&mut out[..2 * MIB as usize], 0).unwrap();
        file.read_exact_at(&mut out[2 * MIB as usize..], DISK - 2 * MIB)
            .unwrap();
        out
    }

    /// The `dev` number of partition `n` as `MAJOR:MINOR`.
    fn devnum(&self, n: u32) -> String {
        let rdev = std::fs::metadata(self.part(n)).unwrap().rdev();
        format!("{}:{}", nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

/// An ext4 filesystem made on `device` and mounted on a temp dir; unmounted on drop.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn ext4(device: &Path) -> Mounted {
        let mkfs = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(device).output();
        assert!(
            mkfs.as_ref().is_ok_and(|o| o.status.success()),
            "mkfs.ext4 {}: {mkfs:?}",
            device.display()
        );
        let dir = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some(device),
            dir.path(),
            Some("ext4"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("mounting {}: {e}", device.display()));
        Mounted { dir }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount(self.dir.path());
    }
}

fn loader(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loader")).args(args).output().unwrap()
}

fn apply_cli(dev: &LoopDevice, bundle: &str, extra: &[&str]) -> Output {
    let bundle = fw(bundle);
    let device = dev.path.display().to_string();
    let mut args = vec![
        "apply",
        bundle.to_str().unwrap(),
        "--device",
        &device,
        "--progress",
        "plain",
    ];
    args.extend_from_slice(extra);
    loader(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `loader apply 02-x86_64-ab-mbr.fw --task complete` onto a fresh loop device.
fn installed(dev: &LoopDevice) {
    let out = apply_cli(dev, "02-x86_64-ab-mbr.fw", &["--task", "complete"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_install_onto_a_block_device_shows_its_partitions() {
    let Some(dev) = LoopDevice::attach(DISK) else { return };
    installed(&dev);
    // Whether the kernel parsed the MBR itself or the loader added the
    // partitions one by one (kernels without CONFIG_MSDOS_PARTITION, like
    // some CI hosts), /dev/loopNp1..4 must now name the new partitions.
    for (n, start) in (1..=4).zip(STARTS) {
        assert_eq!(dev.kernel_start(n), Some(start), "partition {n} of {}", dev.name());
        assert!(dev.part(n).exists(), "{} missing", dev.part(n).display());
    }
    assert_eq!(dev.kernel_size(2), Some(524288));
}

#[test]
fn a_mounted_disk_is_refused_and_forced_its_writes_are_checked() {
    let Some(dev) = LoopDevice::attach(DISK) else { return };
    installed(&dev);
    let data = Mounted::ext4(&dev.part(4));
    let before = dev.bytes();
    let mounted = format!("{}p4 on {}", dev.name(), data.dir.path().display());

    let out = apply_cli(&dev, "02-x86_64-ab-mbr-v2.fw", &["--task", "upgrade"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("mounted: {mounted} (--force mounted to allow)")),
        "{err}"
    );

    // Forced, a complete install would rewrite the table and the mounted
    // data partition: refused before the first write.
    let out = apply_cli(
        &dev,
        "02-x86_64-ab-mbr-v2.fw",
        &["--task", "complete", "--force", "mounted"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("while it is in use, nothing was written"), "{err}");
    assert!(
        err.contains(&format!(
            "into {}p4 (mounted on {})",
            dev.name(),
            data.dir.path().display()
        )),
        "{err}"
    );
    assert!(err.contains("into the partition table (MBR, block 0)"), "{err}");
    assert!(dev.bytes() == before, "the refused install changed the disk");

    // An upgrade writes slot B and the environment only: allowed.
    let out = apply_cli(
        &dev,
        "02-x86_64-ab-mbr-v2.fw",
        &["--task", "upgrade", "--force", "mounted"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("(task upgrade.b)"), "{}", stderr(&out));
    assert!(
        data.dir.path().join("lost+found").is_dir(),
        "the mounted filesystem is intact"
    );
}

/// A mount table where the root filesystem is partition `n` of `dev`
/// (nothing is really mounted: the refusal reads the table).
fn fake_mountinfo(dir: &Path, mounts: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("mountinfo");
    let mut text = String::new();
    for (i, (devnum, point)) in mounts.iter().enumerate() {
        text.push_str(&format!("{} 1 {devnum} / {point} rw - ext4 /dev/fake rw\n", i + 20));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn apply_library(target: &mut hostdisk::HostDevice, bundle: &str, task: &str) -> Result<apply::Summary, ApplyError> {
    let mut opts = ApplyOptions::new(task);
    opts.check_writes = target.guard.clone().map(|g| g.into_check());
    apply::apply(File::open(fw(bundle)).unwrap(), &mut target.device, &opts, &mut Silent)
}

#[test]
fn device_auto_writes_the_inactive_slot_and_refuses_the_running_one() {
    let Some(dev) = LoopDevice::attach(DISK) else { return };
    installed(&dev);
    let tmp = tempfile::tempdir().unwrap();
    // The running system: slot A (p2) on /, data (p4) on /data.
    let paths = Paths {
        mountinfo: fake_mountinfo(tmp.path(), &[(&dev.devnum(2), "/"), (&dev.devnum(4), "/data")]),
        ..Paths::default()
    };
    let mut auto = hostdisk::open_auto(&paths).unwrap();
    assert_eq!(auto.disk.name, dev.name(), "auto is the disk holding /");

    let summary = apply_library(&mut auto, "02-x86_64-ab-mbr-v2.fw", "upgrade").unwrap();
    assert_eq!(
        (summary.task.as_str(), summary.version.as_str()),
        ("upgrade.b", "2.0.0")
    );

    // Slot B is now active, so the next upgrade targets slot A: the one
    // mounted on /. Refused, naming it, before anything is written.
    drop(auto);
    let before = dev.bytes();
    let mut auto = hostdisk::open_auto(&paths).unwrap();
    let err = apply_library(&mut auto, "02-x86_64-ab-mbr-v2.fw", "upgrade").unwrap_err();
    assert_eq!(err.class(), "refused");
    let err = err.to_string();
    assert!(
        err.contains(&format!(
            "trim(35328, 524288) writes bytes 18087936..286523392, into {}p2 (mounted on /)",
            dev.name()
        )),
        "{err}"
    );
    assert!(
        !err.contains("/data"),
        "the upgrade does not touch the data partition: {err}"
    );
    drop(auto);
    assert!(dev.bytes() == before, "the refused upgrade changed the disk");
}

#[test]
fn a_changed_table_reaches_the_kernel_while_another_partition_is_in_use() {
    let Some(dev) = LoopDevice::attach(DISK) else { return };
    installed(&dev);
    let data = Mounted::ext4(&dev.part(4));
    // Shrink slot B (p3) and the data partition (p4) in the table.
    let mut device = BlockDevice::open(&dev.path, true).unwrap();
    let mut mbr = [0u8; 512];
    device.read_at(0, &mut mbr).unwrap();
    for slot in [2usize, 3] {
        let at = 446 + 16 * slot + 12;
        mbr[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    }
    device.write_at(0, &mbr).unwrap();
    let paths = Paths {
        mountinfo: PathBuf::from("/proc/self/mountinfo"),
        ..Paths::default()
    };
    let notes = refresh::refresh(&mut device, &dev.name(), &paths, true);
    assert_eq!(dev.kernel_size(3), Some(1000), "p3 is free: updated ({notes:?})");
    assert_ne!(dev.kernel_size(4), Some(1000), "p4 is mounted: left alone");
    let expected = format!("{}p4 is in use (mounted on {})", dev.name(), data.dir.path().display());
    assert!(notes.iter().any(|n| n.starts_with(&expected)), "{notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("partition 3") && n.contains("BLKPG")),
        "{notes:?}"
    );
    assert_eq!(device.size(), Some(DISK));
}
