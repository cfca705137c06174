//! Compressing the cpio archive in a form the kernel's initramfs unpacker accepts.
//!
//! The default is gzip (flate2, level 9, mtime 0): of the formats the
//! kernel reads, it boots within 70 ms of the fastest, at half the bytes to
//! download. Measured with `cargo run --release -p qemu-tests --example
//! boot_race -- --compression 3` on the loader's 4.7 MB cpio (q35 under
//! QEMU TCG, 1 vCPU, the kernel unpacking synchronously, median of 3 boots
//! on a quiet 2-core host; host: CPU to unpack on an AMD EPYC):
//!
//! | format | bytes | TCG unpack | kernel clock at `/init` | iPXE → `/init` | host unpack |
//! |---|---|---|---|---|---|
//! | gzip -9 | 2,352,077 | 0.19 s | 0.98 s | 6.61 s | 30 ms |
//! | xz -9 | 1,905,352 | 0.55 s | 1.34 s | 6.96 s | 90 ms |
//! | zstd -19 | 2,036,268 | 0.25 s | 1.01 s | 6.67 s | 11 ms |
//! | lz4 -9 (legacy) | 2,659,248 | 0.15 s | 0.93 s | 6.55 s | 5 ms |
//! | none | 4,720,320 | 0.12 s | 0.91 s | 6.54 s | 0.5 ms |
//!
//! lz4 and the plain archive boot 50-70 ms sooner where the download is as
//! fast as QEMU's loopback; over a real link the plain archive's extra
//! 2.4 MB costs as much or more, and lz4 would need an encoder we do not
//! have. xz, written by the pure-Rust `lzma-rust2` encoder, stays for
//! the smallest image: deterministic (single-threaded, no timestamps), and
//! shaped for the kernel's XZ decoder (`lib/xz`): one LZMA2 filter and no
//! BCJ filter (a kernel may be built without `XZ_DEC_X86`), a CRC32 check
//! (the only check it verifies), and a dictionary no larger than the input
//! (the kernel allocates the full dictionary size named in the header). An
//! uncompressed archive is there for kernels built without either.

use std::io::Write;

use flate2::GzBuilder;
#[cfg(feature = "host-tools")]
use lzma_rust2::{CheckType, XzOptions, XzWriter};

use super::InitramfsError;

/// How the initramfs is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain `newc`; also how a bundle wrapped for `/root/install.fw` is stored.
    None,
    /// gzip, level 9 (kernel `CONFIG_RD_GZIP`).
    #[default]
    Gzip,
    /// xz: LZMA2 preset 9, CRC32 (kernel `CONFIG_RD_XZ`).
    Xz,
}

impl Compression {
    /// The conventional file name suffix (`initramfs.cpio.xz`).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "cpio",
            Compression::Gzip => "cpio.gz",
            Compression::Xz => "cpio.xz",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = InitramfsError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "xz" => Ok(Compression::Xz),
            other => Err(InitramfsError::UnknownCompression(other.to_owned())),
        }
    }
}

/// Smallest dictionary the xz format can name; anything below is rounded up.
#[cfg(feature = "host-tools")]
const MIN_DICT_SIZE: u32 = 4096;

/// Compresses a whole archive.
pub fn compress(archive: &[u8], compression: Compression) -> Result<Vec<u8>, InitramfsError> {
    match compression {
        Compression::None => Ok(archive.to_vec()),
        Compression::Gzip => {
            // Another cpio after this one (a wrapped bundle; the kernel's EFI
            // stub concatenates `initrd=` files with no padding) is found
            // only at a 4-byte-aligned offset. The header's file name is
            // the one optional field the kernel's gunzip skips, so its
            // length pads the stream to a multiple of 4 with no trailing
            // bytes for other tools to complain about.
            let unnamed = gzip(archive, None)?;
            let missing = (4 - unnamed.len() % 4) % 4;
            let name_and_nul = if missing >= 2 { missing } else { missing + 4 };
            gzip(archive, Some(&b"cpio"[..name_and_nul - 1]))
        }
        // The initramfs /init (built without host tools) only ever builds
        // uncompressed archives (`loader takeover`); xz is a host tool.
        #[cfg(not(feature = "host-tools"))]
        Compression::Xz => Err(InitramfsError::Compress(std::io::Error::other(
            "xz compression is only in builds with the host tools",
        ))),
        #[cfg(feature = "host-tools")]
        Compression::Xz => {
            let mut options = XzOptions::with_preset(9);
            options.set_check_sum_type(CheckType::Crc32);
            let input_len = u32::try_from(archive.len()).unwrap_or(u32::MAX);
            options.lzma_options.dict_size = options
                .lzma_options
                .dict_size
                .min(input_len.max(MIN_DICT_SIZE).next_power_of_two());
            let mut writer = XzWriter::new(Vec::new(), options).map_err(InitramfsError::Compress)?;
            writer.write_all(archive).map_err(InitramfsError::Compress)?;
            writer.finish().map_err(InitramfsError::Compress)
        }
    }
}

fn gzip(archive: &[u8], name: Option<&[u8]>) -> Result<Vec<u8>, InitramfsError> {
    let mut builder = GzBuilder::new().mtime(0);
    if let Some(name) = name {
        builder = builder.filename(name);
    }
    let mut encoder = builder.write(Vec::new(), flate2::Compression::best());
    encoder.write_all(archive).map_err(InitramfsError::Compress)?;
    encoder.finish().map_err(InitramfsError::Compress)
}

#[cfg(all(test, feature = "host-tools"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn xz_stream_uses_crc32_and_no_bcj() {
        let out = compress(&sample(), Compression::Xz).unwrap();
        // Stream header: magic, then flags 0x00 0x01 (check = CRC32).
        assert_eq!(&out[..6], b"\xFD7zXZ\0");
        assert_eq!(&out[6..8], &[0x00, 0x01]);
        // Block header: size byte, flags (low 2 bits = filters - 1 = 0), then
        // the first filter id 0x21 (LZMA2).
        let block_flags = out[13];
        assert_eq!(block_flags & 0x03, 0, "exactly one filter");
        let mut at = 14;
        // Optional compressed and uncompressed sizes, each a multibyte integer.
        for present in [block_flags & 0x40 != 0, block_flags & 0x80 != 0] {
            if present {
                while out[at] & 0x80 != 0 {
                    at += 1;
                }
                at += 1;
            }
        }
        assert_eq!(out[at], 0x21, "the filter is LZMA2");
        assert!(out.len() < sample().len() / 4);
    }

    #[test]
    fn compression_is_deterministic() {
        for compression in [Compression::Xz, Compression::Gzip] {
            let a = compress(&sample(), compression).unwrap();
            let b = compress(&sample(), compression).unwrap();
            assert_eq!(a, b, "{compression:?}");
        }
    }

    #[test]
    fn every_compression_ends_on_a_4_byte_boundary() {
        for len in [0usize, 1, 2, 3, 1000, 4097, 65_539] {
            let archive: Vec<u8> = sample().into_iter().take(len * 3).collect();
            for compression in [Compression::Xz, Compression::Gzip] {
                let out = compress(&archive, compression).unwrap();
                assert_eq!(out.len() % 4, 0, "{compression:?} of {} bytes", archive.len());
            }
        }
    }

    #[test]
    fn padded_gzip_still_decodes_to_the_archive() {
        use std::io::Read as _;
        for len in [10usize, 11, 12, 13] {
            let archive: Vec<u8> = sample().into_iter().take(len).collect();
            let out = compress(&archive, Compression::Gzip).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(out.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, archive);
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!("xz".parse::<Compression>().unwrap(), Compression::Xz);
        assert_eq!("gzip".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        let err = "zstd".parse::<Compression>().unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
