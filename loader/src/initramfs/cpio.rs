//! A streaming writer for the `newc` cpio format, exactly as the kernel's
//! `init/initramfs.c` reads it.
//!
//! Every entry is a 110-byte ASCII header (magic `070701`, thirteen 8-digit
//! hex fields), the NUL-terminated name, zero padding so that header + name
//! end on a 4-byte boundary, the body, and zero padding to the next 4-byte
//! boundary. The archive ends with an entry named `TRAILER!!!`. The writer
//! tracks its own offset so these rules hold even when the output is appended
//! to other data that is itself 4-byte aligned (the kernel accepts several
//! archives back to back).
//!
//! The writer records no host facts: owner and group are 0, every entry gets
//! the caller's modification time, inode numbers count up from 1 in writing
//! order, and every file has one link (so the kernel never tries to hard-link
//! entries). Ordering and path checks live in `tree.rs`.

use std::io::{self, Read, Write};

use super::InitramfsError;

/// File type bits of `st_mode` as the kernel reads them from the header.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFLNK: u32 = 0o120_000;
/// Permission bits a caller may set (including setuid/setgid/sticky).
const PERMISSION_BITS: u32 = 0o7777;
/// The kernel refuses names longer than this, counting the NUL.
const PATH_MAX: usize = 4096;
const TRAILER: &str = "TRAILER!!!";

/// Writes `newc` entries to `out`; call [`NewcWriter::finish`] to end the archive.
pub struct NewcWriter<W: Write> {
    out: W,
    offset: u64,
    next_inode: u32,
    mtime: u32,
}

/// What an entry is, for its header.
enum Kind {
    Directory,
    File,
    CharDevice { major: u32, minor: u32 },
    Symlink,
}

impl<W: Write> NewcWriter<W> {
    /// Starts an archive; `mtime` (seconds since 1970) is stamped on every entry.
    pub fn new(out: W, mtime: u32) -> Self {
        NewcWriter {
            out,
            offset: 0,
            next_inode: 1,
            mtime,
        }
    }

    /// A directory; `path` is relative to the archive root (`etc/loader`).
    pub fn directory(&mut self, path: &str, permissions: u32) -> Result<(), InitramfsError> {
        self.header(path, Kind::Directory, permissions, 0)
    }

    /// A regular file whose whole contents are in memory.
    pub fn file(&mut self, path: &str, permissions: u32, data: &[u8]) -> Result<(), InitramfsError> {
        self.file_from_reader(path, permissions, data.len() as u64, data)
    }

    /// A regular file of exactly `len` bytes read from `body`: large files
    /// (install bundles) are streamed, never held in memory.
    pub fn file_from_reader(
        &mut self,
        path: &str,
        permissions: u32,
        len: u64,
        body: impl Read,
    ) -> Result<(), InitramfsError> {
        self.header(path, Kind::File, permissions, len)?;
        let copied = io::copy(&mut body.take(len), &mut self.out).map_err(InitramfsError::Write)?;
        if copied != len {
            return Err(InitramfsError::ShortFile {
                path: path.to_owned(),
                expected: len,
                actual: copied,
            });
        }
        self.offset += len;
        self.pad()
    }

    /// A character device node, e.g. `dev/console` (5, 1).
    pub fn char_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) -> Result<(), InitramfsError> {
        self.header(path, Kind::CharDevice { major, minor }, permissions, 0)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), InitramfsError> {
        if target.is_empty() || target.len() >= PATH_MAX || target.contains('\0') {
            return Err(InitramfsError::BadPath {
                path: path.to_owned(),
                reason: "symlink target must be 1 to 4095 bytes without NUL",
            });
        }
        self.header(path, Kind::Symlink, 0o777, target.len() as u64)?;
        self.write(target.as_bytes())?;
        self.pad()
    }

    /// Writes the `TRAILER!!!` entry and returns the output.
    pub fn finish(mut self) -> Result<W, InitramfsError> {
        self.write_header(TRAILER, 0, 0, 0, (0, 0))?;
        self.out.flush().map_err(InitramfsError::Write)?;
        Ok(self.out)
    }

    fn header(&mut self, path: &str, kind: Kind, permissions: u32, len: u64) -> Result<(), InitramfsError> {
        if path.is_empty() || path.len() >= PATH_MAX || path.contains('\0') || path == TRAILER {
            return Err(InitramfsError::BadPath {
                path: path.to_owned(),
                reason: "names must be 1 to 4095 bytes without NUL",
            });
        }
        if permissions & !PERMISSION_BITS != 0 {
            return Err(InitramfsError::BadMode {
                path: path.to_owned(),
                mode: permissions,
            });
        }
        let size = u32::try_from(len).map_err(|_| InitramfsError::FileTooLarge {
            path: path.to_owned(),
            len,
        })?;
        let (type_bits, nlink, rdev) = match kind {
            Kind::Directory => (S_IFDIR, 2, (0, 0)),
            Kind::File => (S_IFREG, 1, (0, 0)),
            Kind::CharDevice { major, minor } => (S_IFCHR, 1, (major, minor)),
            Kind::Symlink => (S_IFLNK, 1, (0, 0)),
        };
        self.write_header(path, type_bits | permissions, nlink, size, rdev)
    }

    fn write_header(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        size: u32,
        (rdev_major, rdev_minor): (u32, u32),
    ) -> Result<(), InitramfsError> {
        let inode = if name == TRAILER { 0 } else { self.next_inode };
        let name_size = name.len() as u32 + 1;
        // Fields in the order the kernel's parse_header() reads them.
        let fields = [
            inode, mode, 0, /* uid */
            0, /* gid */
            nlink, self.mtime, size, 0, /* dev major */
            0, /* dev minor */
            rdev_major, rdev_minor, name_size, 0, /* check, unused by 070701 */
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            header.push_str(&format!("{field:08X}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        if name != TRAILER {
            self.next_inode += 1;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), InitramfsError> {
        self.out.write_all(bytes).map_err(InitramfsError::Write)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of 4 (the kernel's N_ALIGN and body rules).
    fn pad(&mut self) -> Result<(), InitramfsError> {
        let padding = (4 - (self.offset % 4) as usize) % 4;
        self.write(&[0; 3][..padding])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex_field(entry: &[u8], index: usize) -> u32 {
        let start = 6 + index * 8;
        let text = std::str::from_utf8(&entry[start..start + 8]).unwrap();
        u32::from_str_radix(text, 16).unwrap()
    }

    #[test]
    fn file_entry_has_kernel_layout() {
        let mut writer = NewcWriter::new(Vec::new(), 1_700_000_000);
        writer.file("init", 0o755, b"hello").unwrap();
        let bytes = writer.finish().unwrap();

        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(hex_field(&bytes, 0), 1, "inode");
        assert_eq!(hex_field(&bytes, 1), 0o100_755, "mode");
        assert_eq!(hex_field(&bytes, 2), 0, "uid");
        assert_eq!(hex_field(&bytes, 3), 0, "gid");
        assert_eq!(hex_field(&bytes, 4), 1, "nlink");
        assert_eq!(hex_field(&bytes, 5), 1_700_000_000, "mtime");
        assert_eq!(hex_field(&bytes, 6), 5, "filesize");
        assert_eq!(hex_field(&bytes, 11), 5, "namesize counts the NUL");
        // 110 + "init\0" = 115, padded to 116; body 5 bytes padded to 8.
        assert_eq!(&bytes[110..116], b"init\0\0");
        assert_eq!(&bytes[116..124], b"hello\0\0\0");
        assert_eq!(&bytes[124..130], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(11).any(|w| w == b"TRAILER!!!\0"));
    }

    #[test]
    fn name_padding_follows_n_align() {
        // The kernel skips N_ALIGN(namesize) = ((namesize + 1) & !3) + 2 bytes after the header.
        for name_len in 1..12usize {
            let name = "x".repeat(name_len);
            let mut writer = NewcWriter::new(Vec::new(), 0);
            writer.file(&name, 0o644, b"B").unwrap();
            let bytes = writer.finish().unwrap();
            let name_size = name_len + 1;
            let n_align = ((name_size + 1) & !3) + 2;
            assert_eq!(bytes[110 + n_align], b'B', "name length {name_len}");
        }
    }

    #[test]
    fn char_device_carries_rdev() {
        let mut writer = NewcWriter::new(Vec::new(), 0);
        writer.char_device("dev/console", 0o600, 5, 1).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(hex_field(&bytes, 1), 0o020_600);
        assert_eq!(hex_field(&bytes, 9), 5);
        assert_eq!(hex_field(&bytes, 10), 1);
    }

    #[test]
    fn short_reader_is_an_error() {
        let mut writer = NewcWriter::new(Vec::new(), 0);
        let err = writer
            .file_from_reader("root/install.fw", 0o644, 10, &b"abc"[..])
            .unwrap_err();
        assert!(err.to_string().contains("root/install.fw"), "{err}");
    }

    #[test]
    fn rejects_bad_names_and_modes() {
        let mut writer = NewcWriter::new(Vec::new(), 0);
        assert!(writer.file("", 0o644, b"").is_err());
        assert!(writer.file("a\0b", 0o644, b"").is_err());
        assert!(writer.file(&"a".repeat(4096), 0o644, b"").is_err());
        assert!(writer.file("TRAILER!!!", 0o644, b"").is_err());
        assert!(writer.file("x", 0o100_644, b"").is_err());
    }
}
