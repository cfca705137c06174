//! The EFI system partition image of the ISO (`/loader/efi.img`): a FAT
//! volume holding GRUB at the removable-media path `EFI/BOOT/BOOTX64.EFI`,
//! which UEFI firmware starts from a CD's El Torito EFI entry or a USB
//! stick's EFI partition.
//!
//! Made with the project's own FAT writer (FatFs's layout with a fixed
//! 1980 timestamp and a serial derived from the size), so the same GRUB
//! image always gives the same bytes; mtools' `mformat` picks a random
//! serial and stamps the current time.

use crate::formats::fat::{self, FatError};

/// Where UEFI firmware looks for a boot loader on removable media (x86-64).
pub const BOOT_PATH: &str = "/EFI/BOOT/BOOTX64.EFI";

/// FatFs makes FAT12 up to this many 512-byte sectors (4085 clusters of one
/// sector each, minus nothing: the limit is on the volume size it plans).
const FAT12_SECTORS: u64 = 4085;
/// Sectors beyond the file: boot sector, FATs, root directory, the two
/// directories, and room for FatFs's allocation.
const OVERHEAD_SECTORS: u64 = 128;

/// A FAT image holding `bootx64` at [`BOOT_PATH`] and nothing else.
pub fn efi_image(bootx64: &[u8]) -> Result<Vec<u8>, FatError> {
    let sectors = sectors_for(bootx64.len() as u64);
    let mut image = vec![0u8; usize::try_from(sectors * 512).unwrap_or(usize::MAX)];
    let mut volume = fat::mkfs(&mut image, 0, sectors)?;
    volume.set_label(&mut image, "EFIBOOT")?;
    volume.mkdir(&mut image, "/EFI")?;
    volume.mkdir(&mut image, "/EFI/BOOT")?;
    let mut file = volume.write_file(&mut image, BOOT_PATH)?;
    file.write(bootx64)?;
    file.finish()?;
    Ok(image)
}

/// The volume size: FAT12 at its largest when the file fits there (about
/// 2 MB), else whole MiB with 5% to spare (FAT16, then FAT32), which stays
/// clear of the cluster counts no FAT type accepts.
fn sectors_for(len: u64) -> u64 {
    let needed = len.div_ceil(512) + OVERHEAD_SECTORS;
    if needed + 64 <= FAT12_SECTORS {
        return FAT12_SECTORS;
    }
    let with_spare = needed + needed / 20;
    with_spare.div_ceil(2048).max(4) * 2048
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::fat::{Fat, FatType};

    fn read_back(image: &mut Vec<u8>) -> (FatType, Vec<u8>) {
        let mut volume = Fat::open(image, 0).unwrap();
        let kind = volume.fat_type();
        (kind, volume.read_file(image, BOOT_PATH, usize::MAX).unwrap())
    }

    #[test]
    fn holds_the_loader_at_the_removable_media_path() {
        let cases = [
            (0usize, FatType::Fat12),
            (1, FatType::Fat12),
            (800_000, FatType::Fat12),
            (1_950_000, FatType::Fat12),
            (2_100_000, FatType::Fat16),
            (40_000_000, FatType::Fat32),
        ];
        for (len, expected) in cases {
            let bootx64: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut image = efi_image(&bootx64).unwrap();
            let (kind, back) = read_back(&mut image);
            assert_eq!(back, bootx64, "{len} bytes");
            assert_eq!(kind, expected, "{len} bytes");
        }
    }

    #[test]
    fn same_input_same_bytes() {
        let bootx64 = vec![0x5a; 700_000];
        assert_eq!(efi_image(&bootx64).unwrap(), efi_image(&bootx64).unwrap());
    }
}
