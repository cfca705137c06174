//! What a test reads back from a disk image, independently of the loader.
#![allow(dead_code)]

/// The U-Boot environment of the corpus' and these tests' layouts: 16
/// blocks at block 2048.
pub const ENV: std::ops::Range<usize> = 2048 * 512..2064 * 512;

/// What on an image could boot or select a boot: sector 0 (boot code,
/// partition table, signature), a GPT header (primary or backup), the
/// U-Boot environment. Empty when nothing can.
pub fn boot_records(image: &[u8]) -> Vec<&'static str> {
    let mut found = Vec::new();
    if image[..512].iter().any(|&b| b != 0) {
        found.push("sector 0 (boot code, partition table or signature)");
    }
    if &image[512..520] == b"EFI PART" || &image[image.len() - 512..image.len() - 504] == b"EFI PART" {
        found.push("a GPT header");
    }
    if image[ENV].iter().any(|&b| b != 0) {
        found.push("the U-Boot environment");
    }
    found
}
