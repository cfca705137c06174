//! `loader iso`: a rescue medium that boots the loader under BIOS and UEFI,
//! from a CD (a provider's "attach ISO", IPMI/Redfish virtual media) or
//! written raw to a USB stick.
//!
//! Layout of the image (ISO 9660 with Rock Ridge, volume id `LOADER`):
//!
//! | path | what |
//! |---|---|
//! | `/loader/grub.cfg` | the menu ([`grub_cfg`]): the installed system if a disk holds one, else the loader |
//! | `/loader/bios.img` | GRUB for BIOS: the El Torito boot image, also loaded by the hybrid MBR from a stick |
//! | `/loader/efi.img` | FAT image with GRUB at `EFI/BOOT/BOOTX64.EFI`: the El Torito EFI image and, on a stick, the EFI partition |
//! | `/loader/bzImage`, `/loader/initramfs` | the loader kernel and initramfs |
//! | `/loader/bundle.cpio` | optional: the bundle at `/root/install.fw` ([`crate::initramfs::wrap_bundle`]) |
//!
//! GRUB loads the bundle as a second initrd, as iPXE does, so the loader
//! kernel needs no CD-ROM or USB driver, never sees the medium as a disk,
//! and verifies the bundle before any write exactly like an injected one.
//! Both GRUB images carry their modules and a two-line early
//! configuration: find this medium by its ISO 9660 UUID (the volume
//! date), then read `/loader/grub.cfg` from it.
//!
//! Reproducible: the same inputs (files, options, the host's GRUB and
//! xorriso packages) and `SOURCE_DATE_EPOCH` (default 0) give the same bytes. `grub-mkrescue` cannot promise that (GRUB 2.06 stamps
//! the current time into the volume date and the embedded search UUID), so
//! this module runs the steps it would run with fixed inputs: the volume
//! date and every file time are the epoch, the EFI image comes from the
//! project's FAT writer, and xorriso derives its GPT GUIDs from the volume
//! date (its `SOURCE_DATE_EPOCH` rule).

pub mod cli;
mod efi_image;
mod grub_cfg;
mod tools;

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

pub use efi_image::efi_image;
pub use grub_cfg::{grub_cfg, Menu, MenuError};

use crate::apply::{self, events::Silent, ApplyOptions};
use crate::formats::utc::Utc;
use crate::ipxe::{loader_params, ChainOptions, IpxeError};

/// The ISO 9660 volume id.
pub const VOLUME_ID: &str = "LOADER";
/// GRUB's prefix on the medium: where `grub.cfg` is.
const PREFIX: &str = "/loader";

/// Errors building the ISO; each names what to change.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{what} is missing: install the Debian package {package} (scripts/setup does)")]
    MissingTool { what: String, package: &'static str },
    #[error("{command} failed: {message}")]
    Tool { command: String, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bundle {path}: {message}")]
    Bundle { path: PathBuf, message: String },
    #[error(transparent)]
    Cmdline(#[from] IpxeError),
    #[error(transparent)]
    Menu(#[from] MenuError),
    #[error("making the EFI image: {0}")]
    EfiImage(#[from] crate::formats::fat::FatError),
    #[error("wrapping the bundle: {0}")]
    Wrap(#[from] crate::initramfs::InitramfsError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IsoError + '_ {
    move |source| IsoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What goes on the medium.
#[derive(Debug, Clone)]
pub struct IsoSpec {
    /// The loader kernel (`scripts/build-kernel`).
    pub kernel: PathBuf,
    /// The loader initramfs (`loader initramfs`, `scripts/build-initramfs`).
    pub initramfs: PathBuf,
    /// A bundle carried on the medium, installed from `/root/install.fw`.
    pub bundle: Option<PathBuf>,
    /// The kernel command line: consoles, `loader.*` options (with
    /// `BundleDelivery::LoaderFetches` for `loader.url=`), extra
    /// parameters. Its iPXE-only fields (base URL, file names) are unused.
    pub cmdline: ChainOptions,
    /// Seconds the boot menu waits before its default entry.
    pub timeout_secs: u32,
}

/// Builds the ISO at `output` (written beside it, then renamed into place).
pub fn build(spec: &IsoSpec, epoch: u32, output: &Path) -> Result<(), IsoError> {
    tools::check_installed()?;
    let params = loader_params(&spec.cmdline)?;
    let installs = match (&spec.bundle, &spec.cmdline.bundle) {
        (Some(bundle), _) => describe_bundle(bundle)?,
        (None, crate::ipxe::BundleDelivery::LoaderFetches(url)) => format!("the bundle from {url}"),
        (None, _) => "the bundle the loader's configuration names".to_owned(),
    };
    let menu = grub_cfg(&Menu {
        installs,
        params,
        bundle_cpio: spec.bundle.is_some(),
        timeout_secs: spec.timeout_secs,
    })?;

    let work = WorkDir::create(output)?;
    let tree = work.path.join("tree");
    let loader_dir = tree.join(PREFIX.trim_start_matches('/'));
    fs::create_dir_all(&loader_dir).map_err(io_error(&loader_dir))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = loader_dir.join(name);
        fs::write(&path, bytes).map_err(io_error(&path))
    };
    write("grub.cfg", menu.as_bytes())?;
    copy(&spec.kernel, &loader_dir.join("bzImage"))?;
    copy(&spec.initramfs, &loader_dir.join("initramfs"))?;
    if let Some(bundle) = &spec.bundle {
        let path = loader_dir.join("bundle.cpio");
        let out = File::create(&path).map_err(io_error(&path))?;
        let out = crate::initramfs::wrap_bundle(bundle, epoch, BufWriter::new(out))?;
        out.into_inner()
            .map_err(|e| IsoError::Io {
                path: path.clone(),
                source: e.into_error(),
            })?
            .sync_all()
            .map_err(io_error(&path))?;
    }

    // Both GRUB images find this medium by the UUID GRUB reads from the
    // volume date, then read the menu from it.
    let early_cfg = work.path.join("early.cfg");
    let early = format!(
        "search --no-floppy --fs-uuid --set=root {}\nset prefix=($root){PREFIX}\n",
        grub_uuid(epoch)
    );
    fs::write(&early_cfg, early).map_err(io_error(&early_cfg))?;
    tools::grub_mkimage(tools::Firmware::Bios, &early_cfg, PREFIX, &loader_dir.join("bios.img"))?;
    let bootx64 = work.path.join("BOOTX64.EFI");
    tools::grub_mkimage(tools::Firmware::Uefi, &early_cfg, PREFIX, &bootx64)?;
    let bootx64 = fs::read(&bootx64).map_err(io_error(&bootx64))?;
    write("efi.img", &efi_image(&bootx64)?)?;

    stamp_tree(&tree, epoch)?;
    let partial = work.path.join("out.iso");
    tools::run(xorriso(&tree, &partial, epoch).env("SOURCE_DATE_EPOCH", epoch.to_string()))?;
    fs::rename(&partial, output).map_err(io_error(output))?;
    Ok(())
}

/// "Product 1.2.3" for the menu, after checking the whole bundle (every
/// resource hash), so a damaged file never becomes a medium.
fn describe_bundle(bundle: &Path) -> Result<String, IsoError> {
    let bad = |message: String| IsoError::Bundle {
        path: bundle.to_owned(),
        message,
    };
    let file = File::open(bundle).map_err(io_error(bundle))?;
    let opened = apply::open_bundle(std::io::BufReader::new(file), &ApplyOptions::new(""), &mut Silent)
        .map_err(|e| bad(e.to_string()))?;
    let meta = &opened.manifest.meta;
    let name = [meta.product.as_deref(), meta.version.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    apply::verify_all(opened, &mut Silent).map_err(|e| bad(e.to_string()))?;
    Ok(if name.is_empty() {
        "the bundle on this medium".to_owned()
    } else {
        name
    })
}

/// The `xorriso -as mkisofs` command grub-mkrescue would run, with a fixed
/// volume id and date and without the Apple HFS+ extras.
fn xorriso(tree: &Path, output: &Path, epoch: u32) -> Command {
    let mut command = Command::new("xorriso");
    command
        .args(["-as", "mkisofs", "-quiet", "-rational-rock", "-volid", VOLUME_ID])
        .arg(format!("--modification-date={}", iso_date(epoch)))
        // BIOS: El Torito no-emulation boot of GRUB, and the hybrid MBR
        // that loads the same image when the ISO is written to a stick.
        .args(["-b", "loader/bios.img", "-no-emul-boot", "-boot-load-size", "4"])
        .args(["-boot-info-table", "--grub2-boot-info", "--grub2-mbr"])
        .arg(tools::boot_hybrid_img())
        // UEFI: the FAT image as El Torito EFI entry and, on a stick, as
        // the EFI system partition of the GPT.
        .args(["--efi-boot", "loader/efi.img", "-efi-boot-part", "--efi-boot-image"])
        .arg("--protective-msdos-label")
        .arg("-o")
        .arg(output)
        .arg(tree);
    command
}

/// Sets every file and directory time under `dir` to `epoch`: xorriso
/// records modification times, and with `SOURCE_DATE_EPOCH` copies them
/// into the access and change times.
fn stamp_tree(dir: &Path, epoch: u32) -> Result<(), IsoError> {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(epoch));
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.is_dir() {
            stamp_tree(&path, epoch)?;
        } else {
            set_mtime(&path, time)?;
        }
    }
    set_mtime(dir, time)
}

fn set_mtime(path: &Path, time: SystemTime) -> Result<(), IsoError> {
    let file = File::open(path).map_err(io_error(path))?;
    file.set_modified(time).map_err(io_error(path))
}

fn copy(from: &Path, to: &Path) -> Result<(), IsoError> {
    fs::copy(from, to).map_err(io_error(from))?;
    Ok(())
}

/// The ISO 9660 volume date for xorriso: `YYYYMMDDhhmmss` and hundredths.
pub fn iso_date(epoch: u32) -> String {
    let t = Utc::from_unix(u64::from(epoch));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}00",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// The UUID GRUB reads from that date: `YYYY-MM-DD-hh-mm-ss-00`.
pub fn grub_uuid(epoch: u32) -> String {
    let t = Utc::from_unix(u64::from(epoch));
    format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-00",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A scratch directory next to the output (same file system, so the
/// finished image is renamed into place), removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(output: &Path) -> Result<WorkDir, IsoError> {
        let name = output.file_name().map_or("loader.iso".into(), |n| n.to_string_lossy());
        let path = output.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(io_error(&path))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_dates_from_the_epoch() {
        assert_eq!(iso_date(0), "1970010100000000");
        assert_eq!(grub_uuid(0), "1970-01-01-00-00-00-00");
        assert_eq!(iso_date(1_700_000_000), "2023111422132000");
        assert_eq!(grub_uuid(1_700_000_000), "2023-11-14-22-13-20-00");
        // A leap day and the last second of a year.
        assert_eq!(iso_date(951_782_400), "2000022900000000");
        assert_eq!(iso_date(1_704_067_199), "2023123123595900");
        assert_eq!(iso_date(u32::MAX), "2106020706281500");
    }
}
