//! The host programs the ISO build runs: GRUB's `grub-mkimage` (boot
//! images for BIOS and UEFI) and `xorriso` (the ISO 9660 file system, El
//! Torito boot records and the hybrid MBR/GPT that lets the same image boot
//! from a USB stick). Debian packages: `grub-common`, `grub-pc-bin`,
//! `grub-efi-amd64-bin`, `xorriso` (`scripts/setup` installs them).
//!
//! This is a workstation build step, like `cargo` itself: the loader that
//! runs as `/init` never runs a program.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::IsoError;

/// GRUB's module directories (Debian's paths).
const GRUB_PC_DIR: &str = "/usr/lib/grub/i386-pc";
const GRUB_EFI_DIR: &str = "/usr/lib/grub/x86_64-efi";

/// Modules built into both GRUB images, so the medium needs no module
/// directory: read this ISO and the disks' MBR/GPT partitions with FAT,
/// ext2/3/4, squashfs, XFS and Btrfs file systems (where an installed
/// system keeps its GRUB configuration and kernels), run the menu and an
/// installed `grub.cfg` (search, test, regexp, probe, load_env, echo, sleep),
/// load Linux with gzip/xz/zstd-compressed initrds, and use the serial port.
const COMMON_MODULES: &[&str] = &[
    "iso9660",
    "part_msdos",
    "part_gpt",
    "fat",
    "ext2",
    "squash4",
    "xfs",
    "btrfs",
    "normal",
    "configfile",
    "linux",
    "search",
    "search_fs_uuid",
    "search_fs_file",
    "search_label",
    "test",
    "regexp",
    "probe",
    "loadenv",
    "echo",
    "sleep",
    "serial",
    "terminal",
    "gzio",
    "xzio",
    "zstd",
    "halt",
    "reboot",
    "ls",
    "cat",
    "true",
];
/// BIOS only: the firmware's disk services.
const BIOS_MODULES: &[&str] = &["biosdisk"];
/// UEFI only: the GOP framebuffer (without it GRUB hands the kernel no
/// screen and `console=tty0` shows nothing).
const EFI_MODULES: &[&str] = &["efi_gop"];

/// The hybrid MBR boot code that loads the El Torito image from a USB stick.
pub fn boot_hybrid_img() -> PathBuf {
    Path::new(GRUB_PC_DIR).join("boot_hybrid.img")
}

/// Fails naming the package when a program or GRUB directory is missing.
pub fn check_installed() -> Result<(), IsoError> {
    let needed = [
        (Path::new(GRUB_PC_DIR).join("modinfo.sh"), "grub-pc-bin"),
        (Path::new(GRUB_EFI_DIR).join("modinfo.sh"), "grub-efi-amd64-bin"),
        (boot_hybrid_img(), "grub-pc-bin"),
    ];
    for (path, package) in needed {
        if !path.exists() {
            return Err(IsoError::MissingTool {
                what: path.display().to_string(),
                package,
            });
        }
    }
    for (program, package) in [("grub-mkimage", "grub-common"), ("xorriso", "xorriso")] {
        if !on_path(program) {
            return Err(IsoError::MissingTool {
                what: program.to_owned(),
                package,
            });
        }
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Which firmware a GRUB image is for.
#[derive(Debug, Clone, Copy)]
pub enum Firmware {
    /// An El Torito no-emulation image (`i386-pc-eltorito`), also what the
    /// hybrid MBR loads from a USB stick.
    Bios,
    /// `BOOTX64.EFI`.
    Uefi,
}

/// `grub-mkimage` with the modules built in and `early_cfg` (finding the
/// medium, setting the prefix) embedded.
pub fn grub_mkimage(firmware: Firmware, early_cfg: &Path, prefix: &str, out: &Path) -> Result<(), IsoError> {
    let (format, only) = match firmware {
        Firmware::Bios => ("i386-pc-eltorito", BIOS_MODULES),
        Firmware::Uefi => ("x86_64-efi", EFI_MODULES),
    };
    let mut command = Command::new("grub-mkimage");
    command
        .args(["-O", format, "-p", prefix, "-c"])
        .arg(early_cfg)
        .arg("-o")
        .arg(out)
        .args(COMMON_MODULES)
        .args(only);
    run(&mut command)
}

/// Runs `command`; a failure carries its stderr.
pub fn run(command: &mut Command) -> Result<(), IsoError> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|e| IsoError::Tool {
        command: shown.clone(),
        message: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    Err(IsoError::Tool {
        command: shown,
        message: format!(
            "{}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}
