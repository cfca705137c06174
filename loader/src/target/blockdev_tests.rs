//! Block-device tests on real loop devices (`losetup` on sparse files).
//! Each test skips with a message when loop devices are not available
//! (not root, no `/dev/loop-control`); every device is detached and every
//! mount undone by drop guards, also when a test fails.

use super::*;
use std::process::Command;

const MIB: u64 = 1 << 20;

/// A loop device over a sparse temp file, detached on drop.
struct LoopDevice {
    path: PathBuf,
    image: tempfile::NamedTempFile,
}

impl LoopDevice {
    fn attach(size: u64) -> Option<LoopDevice> {
        if !Path::new("/dev/loop-control").exists() {
            eprintln!("skipping: no /dev/loop-control, loop devices are not available here");
            return None;
        }
        let image = tempfile::NamedTempFile::new().expect("temp image");
        image.as_file().set_len(size).expect("size image");
        let out = match Command::new("losetup")
            .args(["-f", "--show", "-P"])
            .arg(image.path())
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("skipping: cannot run losetup: {e}");
                return None;
            }
        };
        if !out.status.success() {
            eprintln!(
                "skipping: losetup failed (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(LoopDevice { path, image })
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn image_bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.image
            .as_file()
            .read_exact_at(&mut buf, offset)
            .expect("read image");
        buf
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

/// A filesystem mounted on a temp dir, unmounted on drop.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount(self.dir.path());
    }
}

/// An MBR with one Linux partition at block 2048, 2048 blocks long.
fn mbr_with_one_partition() -> Vec<u8> {
    let mut mbr = vec![0u8; 512];
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&2048u32.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

fn open(dev: &LoopDevice) -> BlockDevice {
    BlockDevice::open(&dev.path, false).unwrap_or_else(|e| panic!("opening {}: {e}", dev.path.display()))
}

#[test]
fn size_and_sector_size_come_from_the_device() {
    let Some(dev) = LoopDevice::attach(64 * MIB) else {
        return;
    };
    let disk = open(&dev);
    assert_eq!(disk.size(), Some(64 * MIB));
    assert_eq!(disk.sector_size(), 512);
    assert_eq!(disk.describe(), dev.path.display().to_string());
}

#[test]
fn writes_land_on_the_disk_at_their_offset() {
    let Some(dev) = LoopDevice::attach(16 * MIB) else {
        return;
    };
    let mut disk = open(&dev);
    disk.write_at(MIB + 3, b"hello, disk").expect("write");
    disk.sync().expect("sync");
    assert_eq!(dev.image_bytes(MIB + 3, 11), b"hello, disk");
    let mut back = [0u8; 11];
    disk.read_at(MIB + 3, &mut back).expect("read");
    assert_eq!(&back, b"hello, disk");
}

/// `len` bytes of a pattern that differs per `seed` and per position.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn large_aligned_writes_bypass_the_page_cache_and_every_byte_lands_in_order() {
    let Some(dev) = LoopDevice::attach(16 * MIB) else {
        return;
    };
    let mut disk = open(&dev);
    let mut expected = vec![0u8; 16 * MIB as usize];
    let mut write = |disk: &mut BlockDevice, offset: u64, data: Vec<u8>| {
        disk.write_at(offset, &data).expect("write");
        expected[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
    };
    // Cached first, then a direct write over part of it: the later wins.
    write(&mut disk, 2 * MIB + 100, pattern(1, 3000));
    // 1 MiB + 1000 bytes on a sector: the whole sectors go direct, the
    // last 488 bytes through the page cache.
    write(&mut disk, 2 * MIB, pattern(2, MIB as usize + 1000));
    assert_eq!(disk.direct_bytes(), MIB + 512, "whole sectors of the large write");
    // Small, or not on a sector: cached.
    write(&mut disk, 4 * MIB, pattern(3, 4096));
    write(&mut disk, 5 * MIB + 1, pattern(4, 200 * 1024));
    assert_eq!(disk.direct_bytes(), MIB + 512);
    // Direct over a range the page cache holds dirty.
    write(&mut disk, 5 * MIB + 4096, pattern(5, 2 * MIB as usize + 512));
    assert_eq!(disk.direct_bytes(), 3 * MIB + 1024);
    // From page-aligned memory (the pipeline's chunks): written as it is.
    let mut aligned = vec![0u8; 2 * MIB as usize];
    let skew = aligned.as_ptr().align_offset(super::direct::ALIGN);
    aligned[skew..skew + MIB as usize].copy_from_slice(&pattern(6, MIB as usize));
    disk.write_at(9 * MIB, &aligned[skew..skew + MIB as usize])
        .expect("write");
    expected[9 * MIB as usize..10 * MIB as usize].copy_from_slice(&pattern(6, MIB as usize));
    assert_eq!(disk.direct_bytes(), 4 * MIB + 1024);

    // Reads through the device see every write, cached or direct.
    let mut back = vec![0u8; expected.len()];
    disk.read_at(0, &mut back).expect("read");
    assert!(back == expected, "the device reads back what was written, in order");
    disk.sync().expect("sync");
    assert!(dev.image_bytes(0, expected.len()) == expected, "the disk holds it");
}

#[test]
fn reads_and_writes_past_the_end_are_errors_not_zeros() {
    let Some(dev) = LoopDevice::attach(4 * MIB) else {
        return;
    };
    let mut disk = open(&dev);
    let mut buf = [0u8; 512];
    disk.read_at(4 * MIB - 512, &mut buf).expect("last sector is readable");
    let err = disk.read_at(4 * MIB - 256, &mut buf).expect_err("past the end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("past the end of /dev/loop"), "{err}");
    let err = disk.write_at(4 * MIB, b"x").expect_err("past the end");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(
        disk.read_at(u64::MAX, &mut buf).is_err(),
        "offset overflow is an error too"
    );
}

#[test]
fn a_second_exclusive_open_is_refused_as_busy() {
    let Some(dev) = LoopDevice::attach(4 * MIB) else {
        return;
    };
    let _first = open(&dev);
    let err = BlockDevice::open(&dev.path, false).expect_err("held exclusively");
    assert!(matches!(err, BlockDevError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("is in use"), "{err}");
}

#[test]
fn discard_forgets_only_whole_sectors_inside_the_range() {
    let Some(dev) = LoopDevice::attach(8 * MIB) else {
        return;
    };
    let mut disk = open(&dev);
    disk.write_at(0, &vec![0xab; 3 * MIB as usize]).expect("fill");
    disk.sync().expect("sync");
    // 100 bytes into the first sector to 100 bytes into the last: only the
    // sectors fully inside are discarded.
    disk.discard(MIB - 412, MIB + 512).expect("discard");
    disk.sync().expect("sync");
    if disk.discard_unsupported() {
        eprintln!("skipping the content check: this loop device cannot discard");
        return;
    }
    let mut buf = vec![0u8; MIB as usize + 1024];
    disk.read_at(MIB - 512, &mut buf).expect("read back");
    assert!(buf[..512].iter().all(|b| *b == 0xab), "partial first sector kept");
    assert!(
        buf[512..MIB as usize + 512].iter().all(|b| *b == 0),
        "inner sectors discarded"
    );
    assert!(
        buf[MIB as usize + 512..].iter().all(|b| *b == 0xab),
        "partial last sector kept"
    );
    disk.discard(0, 100).expect("a range inside one sector is a no-op");
    disk.discard(7 * MIB, 4 * MIB).expect("a range past the end is clipped");
}

/// Whether the running kernel parses MBRs (this host's may not).
fn kernel_reads_mbrs() -> bool {
    let config = Command::new("sh")
        .args(["-c", "zcat /proc/config.gz 2>/dev/null"])
        .output();
    match config {
        Ok(out) if !out.stdout.is_empty() => String::from_utf8_lossy(&out.stdout).contains("CONFIG_MSDOS_PARTITION=y"),
        _ => true,
    }
}

#[test]
fn rereading_the_partition_table_shows_the_new_partition() {
    let Some(dev) = LoopDevice::attach(8 * MIB) else {
        return;
    };
    let mut disk = open(&dev);
    disk.write_at(0, &mbr_with_one_partition()).expect("write mbr");
    disk.reread_partitions().expect("re-read");
    if !kernel_reads_mbrs() {
        eprintln!("skipping the partition check: this kernel has no CONFIG_MSDOS_PARTITION");
        return;
    }
    let start = Path::new("/sys/class/block")
        .join(format!("{}p1", dev.name()))
        .join("start");
    assert_eq!(
        std::fs::read_to_string(&start)
            .map(|s| s.trim().to_string())
            .ok()
            .as_deref(),
        Some("2048")
    );
}

#[test]
fn a_mounted_filesystem_is_named_in_the_refusal_and_blocks_rereading() {
    let Some(dev) = LoopDevice::attach(8 * MIB) else {
        return;
    };
    // A partition when the kernel can parse the MBR, else the whole device.
    let (target, name) = if kernel_reads_mbrs() {
        let mut disk = open(&dev);
        disk.write_at(0, &mbr_with_one_partition()).expect("write mbr");
        disk.reread_partitions().expect("re-read");
        (
            PathBuf::from(format!("{}p1", dev.path.display())),
            format!("{}p1", dev.name()),
        )
    } else {
        (dev.path.clone(), dev.name())
    };
    let mkfs = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&target).output();
    assert!(
        mkfs.as_ref().is_ok_and(|o| o.status.success()),
        "mkfs.ext4 {}: {mkfs:?}",
        target.display()
    );
    let mounted = Mounted {
        dir: tempfile::tempdir().expect("mount point"),
    };
    let flags = nix::mount::MsFlags::empty();
    nix::mount::mount(Some(&target), mounted.dir.path(), Some("ext4"), flags, None::<&str>)
        .unwrap_or_else(|e| panic!("mounting {}: {e}", target.display()));

    let err = BlockDevice::open(&dev.path, false).expect_err("mounted");
    let expected = format!("{name} on {}", mounted.dir.path().display());
    assert!(matches!(err, BlockDevError::Mounted { .. }), "{err}");
    assert!(err.to_string().contains(&expected), "{err}");

    let mut disk = BlockDevice::open(&dev.path, true).expect("allowed when mounted");
    let mut sleeps = Vec::new();
    let policy = RereadPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(1),
    };
    let err = disk
        .reread_partitions_with(policy, &mut |d| sleeps.push(d))
        .expect_err("busy");
    assert!(matches!(err, BlockDevError::RereadBusy { attempts: 3, .. }), "{err}");
    assert_eq!(
        sleeps,
        [Duration::from_millis(1), Duration::from_millis(2)],
        "backs off, bounded"
    );
}

#[test]
fn mounts_on_partitions_are_found_through_sysfs() {
    let root = tempfile::tempdir().expect("temp dir");
    let disk_dir = root.path().join("devices/virtio0/block/vda");
    for (part, dev) in [("vda1", "254:1"), ("vda2", "254:2")] {
        std::fs::create_dir_all(disk_dir.join(part)).expect("mkdir");
        std::fs::write(disk_dir.join(part).join("partition"), "1\n").expect("write");
        std::fs::write(disk_dir.join(part).join("dev"), format!("{dev}\n")).expect("write");
    }
    let sys_dev_block = root.path().join("dev-block");
    std::fs::create_dir_all(&sys_dev_block).expect("mkdir");
    std::os::unix::fs::symlink(&disk_dir, sys_dev_block.join("254:0")).expect("link");
    let mountinfo = root.path().join("mountinfo");
    std::fs::write(
        &mountinfo,
        "1 0 254:2 / / rw - ext4 /dev/root rw\n2 1 0:5 / /proc rw - proc proc rw\n3 1 254:16 / /x rw - ext4 /dev/vdb rw\n",
    )
    .expect("write");
    let host = HostPaths {
        mountinfo,
        sys_dev_block,
    };
    let vda = DevNum { major: 254, minor: 0 };
    assert_eq!(mounts_on(vda, &host).expect("mounts"), ["vda2 on /"]);
    assert!(mounts_on(DevNum { major: 8, minor: 0 }, &host)
        .expect("mounts")
        .is_empty());
    let broken = HostPaths {
        mountinfo: root.path().join("missing"),
        ..host
    };
    let err = mounts_on(vda, &broken).expect_err("no table").to_string();
    assert!(
        err.starts_with("reading the mount table ") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn a_regular_file_is_not_a_block_device() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let err = BlockDevice::open(file.path(), false).expect_err("regular file");
    assert!(matches!(err, BlockDevError::NotBlockDevice { .. }), "{err}");
    let err = BlockDevice::open(Path::new("/dev/does-not-exist"), false).expect_err("missing");
    assert!(err.to_string().starts_with("opening /dev/does-not-exist: "), "{err}");
}

/// A GPT install onto a device whose size is not a multiple of 4 KiB: the
/// held page at the backup GPT reaches past the end of the device. The
/// result is the image an image file of the same size gets (which is
/// fwup's), and both GPT copies read back.
#[test]
fn a_gpt_install_fits_a_disk_whose_size_is_not_a_multiple_of_4_kib() {
    use crate::apply::{apply, events::Silent, ApplyOptions};
    use crate::target::file::ImageFile;
    let size = 1024 * MIB + 3 * 512;
    let Some(dev) = LoopDevice::attach(size) else {
        return;
    };
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fw/03-x86_64-ab-gpt.fw");
    let opts = ApplyOptions::new("complete");
    let mut disk = open(&dev);
    assert_eq!(disk.size(), Some(size));
    apply(
        std::fs::File::open(&bundle).expect("bundle"),
        &mut disk,
        &opts,
        &mut Silent,
    )
    .unwrap_or_else(|e| panic!("installing a GPT bundle onto {} bytes: {e}", size));
    disk.sync().expect("sync");
    let blocks = size / 512;
    let primary = crate::formats::gpt::read(&mut disk, Some(blocks)).expect("primary GPT");
    assert_eq!(primary.backup_lba, blocks - 1);
    let mut without_primary = OnlyBackup(&mut disk);
    let backup = crate::formats::gpt::read(&mut without_primary, Some(blocks)).expect("backup GPT");
    assert_eq!(backup.header_lba, blocks - 1);
    assert_eq!(backup.partitions, primary.partitions);
    drop(disk);

    let file = tempfile::NamedTempFile::new().expect("temp image");
    file.as_file().set_len(size).expect("size image");
    let mut image = ImageFile::open(file.path()).expect("image");
    apply(
        std::fs::File::open(&bundle).expect("bundle"),
        &mut image,
        &opts,
        &mut Silent,
    )
    .expect("image install");
    for (offset, len) in [(0, 2 * MIB), (size - 2 * MIB, 2 * MIB)] {
        let mut from_file = vec![0u8; len as usize];
        file.as_file()
            .read_exact_at(&mut from_file, offset)
            .expect("read image");
        assert!(
            dev.image_bytes(offset, len as usize) == from_file,
            "the device and an image file of its size differ at {offset}+{len}"
        );
    }
}

/// A disk whose primary GPT header reads as zeros.
struct OnlyBackup<'a>(&'a mut BlockDevice);

impl Medium for OnlyBackup<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)?;
        for (i, b) in buf.iter_mut().enumerate() {
            if (512..1024).contains(&(offset + i as u64)) {
                *b = 0;
            }
        }
        Ok(())
    }

    fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("read-only"))
    }
}
