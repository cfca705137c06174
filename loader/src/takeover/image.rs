//! The two images handed to `kexec_file_load`, each in a memory file: the
//! loader's kernel, and its initramfs with what crosses the jump appended
//! as further cpio archives, which the kernel unpacks on top:
//!
//! ```text
//! [ loader initramfs (given, or built from this binary) | zeros to a 4-byte boundary ]
//! [ cpio: /etc/loader.conf.d/50-takeover.conf, keys, CA certificates ]
//! [ cpio: /root/install.fw (with --bundle) ]
//! ```
//!
//! The bundle is read back from the memory file and verified completely
//! (signature, every resource hash, the SHA-256 pin) before the jump: the
//! bytes checked are the bytes the loader will find.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::sys::memory_file;
use crate::initramfs::{self, InitramfsSpec, NewcWriter, BUNDLE_PATH};
use crate::source::policy::{self, FetchPolicy};
use crate::source::{HttpOptions, SourceSpec};

/// Bytes in a memory file, with where they came from.
pub struct Image {
    pub file: File,
    pub len: u64,
    pub origin: String,
}

/// The newc header is 110 bytes, the name and its NUL follow, padded to 4.
const NEWC_HEADER: u64 = 110;

fn memfd(name: &str) -> Result<File, String> {
    memory_file(name).map_err(|e| format!("creating an in-memory file for the {name}: {e}"))
}

/// Opens FILE or URL under `policy` (for a kernel or an initramfs nothing
/// can verify: HTTPS, or plain HTTP only with `--insecure`).
pub fn open_source(spec: &str, policy: &FetchPolicy) -> Result<policy::Fetched, String> {
    policy::fetch(&SourceSpec::parse(spec), policy, HttpOptions::default()).map_err(|e| format!("{spec}: {e}"))
}

/// Reads FILE or URL into a memory file.
pub fn load(spec: &str, what: &str, policy: &FetchPolicy) -> Result<Image, String> {
    let mut fetched = open_source(spec, policy)?;
    let mut file = memfd(what)?;
    let len = io::copy(&mut fetched.source.reader, &mut file).map_err(|e| format!("reading {spec}: {e}"))?;
    Ok(Image {
        file,
        len,
        origin: fetched.source.description,
    })
}

/// Refuses anything but an x86 bzImage (boot protocol header "HdrS" at
/// 0x202), before the kernel's own, less specific refusal.
pub fn check_bzimage(image: &Image) -> Result<(), String> {
    let mut magic = [0u8; 4];
    let read = std::os::unix::fs::FileExt::read_exact_at(&image.file, &mut magic, 0x202);
    if read.is_err() || &magic != b"HdrS" {
        return Err(format!(
            "{} is not an x86 bzImage kernel (no boot protocol header); give the loader's kernel \
             (scripts/build-kernel)",
            image.origin
        ));
    }
    Ok(())
}

/// The loader initramfs built from this executable as `/init`, uncompressed
/// (no CPU spent compressing on a small server; it is about the size of the
/// binary). Only a static build can be `/init`.
pub fn initramfs_from(exe: &Path) -> Result<Vec<u8>, String> {
    let spec = InitramfsSpec {
        init_binary: exe.to_path_buf(),
        compression: initramfs::Compression::None,
        ..InitramfsSpec::default()
    };
    initramfs::build(&spec, 0).map_err(|e| {
        format!(
            "building the loader's initramfs from this binary: {e}; run the static build of loader \
             (x86_64-unknown-linux-musl, as in the loader's initramfs) or give --initramfs"
        )
    })
}

/// The initramfs being assembled in a memory file.
pub struct Initrd {
    pub image: Image,
    /// (offset, length) of the bundle's bytes, once appended.
    bundle: Option<(u64, u64)>,
}

impl Initrd {
    /// Starts with the loader's initramfs, padded to a 4-byte boundary (the
    /// kernel looks for a following archive only there, skipping zeros).
    pub fn new(base: &mut dyn Read, origin: &str) -> Result<Initrd, String> {
        let mut file = memfd("initramfs")?;
        let len = io::copy(base, &mut file).map_err(|e| format!("reading {origin}: {e}"))?;
        let mut initrd = Initrd {
            image: Image {
                file,
                len,
                origin: origin.to_string(),
            },
            bundle: None,
        };
        initrd.pad()?;
        Ok(initrd)
    }

    fn pad(&mut self) -> Result<(), String> {
        let missing = (4 - self.image.len % 4) % 4;
        self.append(&vec![0u8; missing as usize])
    }

    /// Appends a complete (uncompressed, 4-byte padded) archive.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.image
            .file
            .write_all(bytes)
            .map_err(|e| format!("building the initramfs in memory: {e}"))?;
        self.image.len += bytes.len() as u64;
        Ok(())
    }

    /// Appends `/root/install.fw`: `len` bytes from `body`.
    pub fn append_bundle(&mut self, body: &mut dyn Read, len: u64) -> Result<(), String> {
        let start = self.image.len;
        let writer = NewcWriter::new(&mut self.image.file, 0);
        let mut writer = writer;
        writer
            .file_from_reader(BUNDLE_PATH, 0o644, len, body)
            .map_err(|e| format!("reading the bundle into the initramfs: {e}"))?;
        writer
            .finish()
            .map_err(|e| format!("building the initramfs in memory: {e}"))?;
        self.image.len = self
            .image
            .file
            .stream_position()
            .map_err(|e| format!("building the initramfs in memory: {e}"))?;
        let name = BUNDLE_PATH.len() as u64 + 1;
        let data = start + (NEWC_HEADER + name).div_ceil(4) * 4;
        self.bundle = Some((data, len));
        Ok(())
    }

    /// The bundle's bytes as the loader will find them.
    pub fn bundle_reader(&self) -> Result<Box<dyn Read + Send>, String> {
        let (offset, len) = self.bundle.ok_or("no bundle in the initramfs")?;
        let mut file = self
            .image
            .file
            .try_clone()
            .map_err(|e| format!("reading the initramfs back: {e}"))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("reading the initramfs back: {e}"))?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, file.take(len))))
    }

    pub fn bundle_len(&self) -> Option<u64> {
        self.bundle.map(|(_, len)| len)
    }
}

/// Reads a source of unknown length into a memory file first (a chunked
/// HTTP response), so its length can go into the cpio header.
pub fn spool(reader: &mut dyn Read, what: &str) -> Result<(File, u64), String> {
    let mut file = memfd(what)?;
    let len = io::copy(reader, &mut file).map_err(|e| format!("reading the {what}: {e}"))?;
    file.rewind().map_err(|e| format!("reading the {what}: {e}"))?;
    Ok((file, len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_reads_back_from_where_the_archive_put_it() {
        let mut initrd = Initrd::new(&mut &b"base!"[..], "test").unwrap();
        assert_eq!(initrd.image.len, 8, "padded to 4 bytes");
        initrd.append(&[b'x'; 12]).unwrap();
        let bundle: Vec<u8> = (0..100_003u32).map(|i| (i % 251) as u8).collect();
        initrd
            .append_bundle(&mut bundle.as_slice(), bundle.len() as u64)
            .unwrap();
        let mut back = Vec::new();
        initrd.bundle_reader().unwrap().read_to_end(&mut back).unwrap();
        assert!(back == bundle, "the bytes read back are the bundle");
        assert_eq!(initrd.image.len % 4, 0);
        let mut all = Vec::new();
        let mut file = initrd.image.file.try_clone().unwrap();
        file.rewind().unwrap();
        file.read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, initrd.image.len);
        assert_eq!(&all[20..26], b"070701", "the archive starts after the padding");
        assert!(String::from_utf8_lossy(&all).contains("root/install.fw"));
    }

    #[test]
    fn a_short_bundle_is_refused() {
        let mut initrd = Initrd::new(&mut &b""[..], "test").unwrap();
        let err = initrd.append_bundle(&mut &b"abc"[..], 10).unwrap_err();
        assert!(err.contains("expected 10 bytes"), "{err}");
    }

    #[test]
    fn only_bzimages_pass() {
        let mut file = memory_file("k").unwrap();
        let mut bytes = vec![0u8; 1024];
        file.write_all(&bytes).unwrap();
        let image = Image {
            file,
            len: 1024,
            origin: "k".into(),
        };
        assert!(check_bzimage(&image).unwrap_err().contains("not an x86 bzImage"));
        bytes[0x202..0x206].copy_from_slice(b"HdrS");
        let mut file = memory_file("k").unwrap();
        file.write_all(&bytes).unwrap();
        let image = Image { file, ..image };
        assert_eq!(check_bzimage(&image), Ok(()));
    }
}
