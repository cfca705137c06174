//! The rescue ISO as firmware and xorriso see it: the El Torito catalog
//! has a BIOS and a UEFI image, the hybrid MBR and GPT make it bootable as a
//! USB stick, both GRUB images look for the UUID the volume really has, the
//! medium carries the bundle exactly as `loader initramfs --wrap-bundle`
//! wraps it, and two builds are byte-identical. Booting it is the QEMU
//! scenarios' job (`qemu-tests/tests/scenarios/iso.rs`). Needs `xorriso`
//! and GRUB's `grub-pc-bin`/`grub-efi-amd64-bin` (scripts/setup).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::formats::fat::Fat;
use loader::ipxe::{BundleDelivery, ChainOptions};
use loader::iso::{self, grub_uuid, iso_date, IsoError, IsoSpec};

const EPOCH: u32 = 1_700_000_000;
const BUNDLE: &str = "tests/fixtures/fw/01-minimal-raw.fw";
/// ISO 9660: the primary volume descriptor is sector 16 (2048-byte sectors).
const PVD: usize = 16 * 2048;

fn spec(dir: &Path) -> IsoSpec {
    let kernel = dir.join("bzImage");
    let initramfs = dir.join("initramfs");
    fs::write(&kernel, b"pretend kernel").unwrap();
    fs::write(&initramfs, b"pretend initramfs").unwrap();
    let mut cmdline = ChainOptions::default();
    cmdline.loader_options.push(("disk".into(), "/dev/vda".into()));
    cmdline
        .loader_options
        .push(("env.GREETING".into(), "hello world".into()));
    IsoSpec {
        kernel,
        initramfs,
        bundle: Some(PathBuf::from(BUNDLE)),
        cmdline,
        timeout_secs: 5,
    }
}

fn build(spec: &IsoSpec, epoch: u32, out: &Path) -> Vec<u8> {
    iso::build(spec, epoch, out).unwrap();
    fs::read(out).unwrap()
}

fn xorriso(args: &[&str]) -> String {
    let output = Command::new("xorriso").args(args).output().unwrap();
    assert!(output.status.success(), "xorriso {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Copies `/loader` out of the image with xorriso.
fn extract(image: &Path, into: &Path) -> PathBuf {
    let dir = into.join("extracted");
    xorriso(&[
        "-osirrox",
        "on",
        "-indev",
        image.to_str().unwrap(),
        "-extract",
        "/loader",
        dir.to_str().unwrap(),
    ]);
    dir
}

#[test]
fn boots_under_bios_and_uefi_from_a_cd_or_a_stick() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("rescue.iso");
    let bytes = build(&spec(dir.path()), EPOCH, &image);
    let image_arg = image.to_str().unwrap();

    let torito = xorriso(&["-indev", image_arg, "-report_el_torito", "plain"]);
    assert!(
        torito.contains("El Torito img path :   1  /loader/bios.img"),
        "{torito}"
    );
    assert!(torito.contains("El Torito img path :   2  /loader/efi.img"), "{torito}");
    assert!(
        torito.lines().any(|l| l.contains("boot img :   1  BIOS"))
            && torito.lines().any(|l| l.contains("boot img :   2  UEFI")),
        "{torito}"
    );
    // A stick: GRUB's hybrid MBR (loads bios.img), a protective MBR and a
    // GPT whose EFI system partition is efi.img.
    let system_area = xorriso(&["-indev", image_arg, "-report_system_area", "plain"]);
    assert!(system_area.contains("grub2-mbr"), "{system_area}");
    assert!(
        system_area.contains("GPT partition path :   2  /loader/efi.img"),
        "{system_area}"
    );
    assert_eq!(&bytes[510..512], &[0x55, 0xaa], "MBR boot signature");

    // The volume: id, and the date GRUB turns into the UUID it searches for.
    assert_eq!(&bytes[PVD + 1..PVD + 6], b"CD001");
    assert_eq!(&bytes[PVD + 40..PVD + 46], iso::VOLUME_ID.as_bytes());
    assert_eq!(&bytes[PVD + 830..PVD + 846], iso_date(EPOCH).as_bytes());

    let files = extract(&image, dir.path());
    let mut efi = fs::read(files.join("efi.img")).unwrap();
    let mut volume = Fat::open(&mut efi, 0).unwrap();
    let bootx64 = volume.read_file(&mut efi, "/EFI/BOOT/BOOTX64.EFI", usize::MAX).unwrap();
    assert_eq!(&bootx64[..2], b"MZ", "a PE image");
    let search = format!("search --no-floppy --fs-uuid --set=root {}", grub_uuid(EPOCH));
    assert!(
        bootx64.windows(search.len()).any(|w| w == search.as_bytes()),
        "BOOTX64.EFI searches for the volume's UUID"
    );
    assert_eq!(fs::read(files.join("bzImage")).unwrap(), b"pretend kernel");
    assert_eq!(fs::read(files.join("initramfs")).unwrap(), b"pretend initramfs");

    // The bundle travels as the same cpio iPXE setups use.
    let wrapped = loader::initramfs::wrap_bundle(Path::new(BUNDLE), EPOCH, Vec::new()).unwrap();
    assert_eq!(fs::read(files.join("bundle.cpio")).unwrap(), wrapped);

    let menu = fs::read_to_string(files.join("grub.cfg")).unwrap();
    assert!(
        menu.contains(
            "linux /loader/bzImage console=ttyS0,115200 console=tty0 loader.disk=/dev/vda 'loader.env.GREETING=hello world'\n    initrd /loader/initramfs /loader/bundle.cpio\n"
        ),
        "{menu}"
    );
    assert!(
        menu.contains("menuentry 'Install loader-test minimal 0.1.0' --id install"),
        "{menu}"
    );
    assert!(!dir
        .path()
        .read_dir()
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
}

#[test]
fn same_inputs_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let first = build(&spec, EPOCH, &dir.path().join("a.iso"));
    // Input files with new times, a second later: nothing of that shows.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(&spec.kernel, b"pretend kernel").unwrap();
    let second = build(&spec, EPOCH, &dir.path().join("b.iso"));
    assert!(first == second, "two builds from the same inputs differ");
    let other = build(&spec, EPOCH + 1, &dir.path().join("c.iso"));
    assert!(
        first != other,
        "the epoch is part of the image (its volume date and UUID)"
    );
}

#[test]
fn fetching_builds_need_no_bundle_and_name_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    spec.bundle = None;
    spec.cmdline.bundle = BundleDelivery::LoaderFetches("https://boot.example.com/app.fw".into());
    let image = dir.path().join("fetch.iso");
    build(&spec, EPOCH, &image);
    let files = extract(&image, dir.path());
    assert!(!files.join("bundle.cpio").exists());
    let menu = fs::read_to_string(files.join("grub.cfg")).unwrap();
    assert!(
        menu.contains("console=tty0 loader.url=https://boot.example.com/app.fw loader.disk=/dev/vda"),
        "{menu}"
    );
    assert!(
        menu.contains("'Install the bundle from https://boot.example.com/app.fw'"),
        "{menu}"
    );
}

#[test]
fn a_damaged_bundle_never_becomes_a_medium() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(BUNDLE).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = dir.path().join("damaged.fw");
    fs::write(&damaged, bytes).unwrap();
    let mut spec = spec(dir.path());
    spec.bundle = Some(damaged.clone());
    let out = dir.path().join("never.iso");
    let err = iso::build(&spec, EPOCH, &out).unwrap_err();
    assert!(
        matches!(err, IsoError::Bundle { ref path, .. } if *path == damaged),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn values_grub_would_change_are_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    spec.cmdline.loader_options.push(("env.NAME".into(), "it's".into()));
    let out = dir.path().join("never.iso");
    let err = iso::build(&spec, EPOCH, &out).unwrap_err().to_string();
    assert!(
        err.contains("loader.env.NAME=\"it's\"") && err.contains("GRUB"),
        "{err}"
    );
    assert!(!out.exists());
}
