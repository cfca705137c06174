//! Boot media recognised by their contents: a disk that holds an ISO 9660
//! file system is a CD image, or a USB stick written from one (the rescue
//! ISO `loader iso` makes is such a hybrid image), never a disk to install
//! on. The loader kernel has no CD-ROM or USB drivers, so it normally does
//! not see the medium at all; this rule covers kernels that do and
//! hypervisors that attach an ISO as a plain disk.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::apply::chunk::Chunk;
use crate::target::DIRECT_ALIGN as PAGE;

/// ISO 9660: the first volume descriptor is sector 16 (2048-byte sectors);
/// its bytes 1..6 are the standard identifier `CD001`.
const DESCRIPTOR_ID_OFFSET: u64 = 16 * 2048 + 1;
const STANDARD_ID: &[u8; 5] = b"CD001";

/// Whether the device (or image file) at `path` holds an ISO 9660 file
/// system. Unreadable devices count as not holding one: opening them for
/// the install fails on its own.
pub fn holds_iso9660(path: &Path) -> bool {
    let at = (DESCRIPTOR_ID_OFFSET % PAGE as u64) as usize;
    if let Some(page) = read_page_direct(path, DESCRIPTOR_ID_OFFSET - at as u64) {
        return &page[at..at + STANDARD_ID.len()] == STANDARD_ID;
    }
    let Ok(file) = File::open(path) else { return false };
    let mut id = [0u8; 5];
    file.read_exact_at(&mut id, DESCRIPTOR_ID_OFFSET).is_ok() && &id == STANDARD_ID
}

/// The page at `offset` (a multiple of a page, as large as any logical
/// sector) read past the page cache: `None` where `O_DIRECT` is refused
/// (a file on tmpfs). A buffered read of one sector makes the kernel read
/// ahead 128 KiB of a disk nobody may install on.
fn read_page_direct(path: &Path, offset: u64) -> Option<Chunk> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECT)
        .open(path)
        .ok()?;
    let mut page = Chunk::new(PAGE);
    file.read_exact_at(page.space(), offset).ok()?;
    page.set_len(PAGE);
    Some(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::disks::fake_sysfs::{FakeDisk, FakeSysfs};
    use crate::boot::disks::{discover, select_disk, DiscoverOptions, DiskSelector, Force, SelectError, SelectRequest};

    const GIB: u64 = 1 << 30;

    /// `/dev` with `vda` blank and `vdb` holding an ISO image's first sectors.
    fn dev_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("vda"), vec![0u8; 64 << 10]).expect("vda");
        let mut iso = vec![0u8; 64 << 10];
        iso[16 * 2048..16 * 2048 + 6].copy_from_slice(b"\x01CD001");
        std::fs::write(dir.path().join("vdb"), iso).expect("vdb");
        dir
    }

    fn request(selector: Option<&str>, force: &str) -> SelectRequest {
        SelectRequest {
            selector: selector.map(|s| DiskSelector::parse(s).expect("selector")),
            min_size: 0,
            force: Force::parse(force).expect("force"),
        }
    }

    #[test]
    fn recognises_the_iso_9660_identifier_only() {
        let dev = dev_dir();
        assert!(!holds_iso9660(&dev.path().join("vda")));
        assert!(holds_iso9660(&dev.path().join("vdb")));
        assert!(!holds_iso9660(&dev.path().join("missing")));
        let short = dev.path().join("short");
        std::fs::write(&short, b"CD001").expect("short");
        assert!(!holds_iso9660(&short));
    }

    /// The rescue ISO written to a stick that the kernel sees as a fixed
    /// virtio disk: never chosen, never choosable, whatever loader.force says.
    #[test]
    fn a_disk_holding_an_iso_image_is_never_the_target() {
        let sys = FakeSysfs::new();
        sys.add(&FakeDisk::virtio("vda", 20 * GIB))
            .add(&FakeDisk::virtio("vdb", GIB));
        let dev = dev_dir();
        let options = DiscoverOptions {
            dev_dir: Some(dev.path().to_path_buf()),
            ..DiscoverOptions::default()
        };
        let disks = discover(&sys.sys_block(), &[], &options).expect("discover");

        let chosen = select_disk(&disks, &request(None, "")).expect("vda is the only candidate");
        assert_eq!(chosen.disk.name, "vda");

        let err = select_disk(&disks, &request(Some("/dev/vdb"), "all")).expect_err("never vdb");
        assert!(matches!(err, SelectError::MatchNotEligible { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("vdb (virtio, 1.0 GiB): holds an ISO 9660 file system"),
            "{err}"
        );

        let only_the_medium: Vec<_> = disks.into_iter().filter(|d| d.name == "vdb").collect();
        let err = select_disk(&only_the_medium, &request(None, "all")).expect_err("nothing eligible");
        assert!(matches!(err, SelectError::NoneEligible { .. }), "{err}");
    }
}
