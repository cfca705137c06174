//! What a test reads back from a disk image, independently of the loader.
#![allow(dead_code)]

/// The U-Boot environment of the corpus' and these tests' layouts: 16
/// blocks at block 2048.
pub const ENV: std::ops::Range<usize> = 2048 * 512..2064 * 512;

/// What on an image could boot or select a boot: sector 0 (boot code,
/// partition table, signature), a GPT header (primary or backup), the
/// U-Boot environment. Empty when nothing can.
pub fn boot_records(image: &[u8]) -> Vec<&'static str> {
    let mut found = what_boots(image);
    if image[..512].iter().any(|&b| b != 0) && !found.contains(&SECTOR0) {
        found.insert(0, "sector 0 (boot code, partition table or signature)");
    }
    found
}

const SECTOR0: &str = "sector 0 (a boot signature, or a protective MBR's 0xEE type)";

/// What on an image could still start a boot: sector 0 with a boot
/// signature (which BIOSes need) or a 0xEE partition type (which UEFI
/// firmware looks for, signed or not), a GPT header, the U-Boot
/// environment. A disk switched off (as the commit and two-pass installs
/// do) keeps its boot code and partition entries, and nothing here.
pub fn what_boots(image: &[u8]) -> Vec<&'static str> {
    let mut found = Vec::new();
    let protective = (0..4).any(|i| image[446 + 16 * i + 4] == 0xee);
    if image[510..512] == [0x55, 0xaa] || protective {
        found.push(SECTOR0);
    }
    if &image[512..520] == b"EFI PART" || &image[image.len() - 512..image.len() - 504] == b"EFI PART" {
        found.push("a GPT header");
    }
    if image[ENV].iter().any(|&b| b != 0) {
        found.push("the U-Boot environment");
    }
    found
}
