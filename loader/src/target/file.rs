//! A regular image file as the install target.
//!
//! fwup treats an image file's existing size as the device size (MBR
//! `expand`, GPT backup position), and an empty file as "size unknown". It
//! writes in 128 KiB segments, so whenever a write reaches past the end the
//! file grows to the end of the segment it touched; we grow the same way so
//! result images match fwup's byte for byte, length included.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{fallocate, FallocateFlags};

use super::writeback::Writeback;
use super::Target;
use crate::formats::Medium;

/// fwup's write segment: files grow in multiples of this.
pub const SEGMENT: u64 = 128 * 1024;

pub struct ImageFile {
    file: File,
    path: PathBuf,
    /// Size when opened; `None` for an empty (or new) file.
    device_size: Option<u64>,
    /// Current length of the file, kept to avoid a stat per write.
    len: u64,
    writeback: Writeback,
}

impl ImageFile {
    /// Opens (creating if missing) an image file for writing.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(ImageFile {
            file,
            path: path.to_path_buf(),
            device_size: (len > 0).then_some(len),
            len,
            writeback: Writeback::default(),
        })
    }

    fn grow_for(&mut self, end: u64) -> io::Result<()> {
        let wanted = end.div_ceil(SEGMENT) * SEGMENT;
        if wanted > self.len {
            self.file.set_len(wanted)?;
            self.len = wanted;
        }
        Ok(())
    }
}

impl Medium for ImageFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf[done..].fill(0);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.grow_for(offset + data.len() as u64)?;
        self.file.write_all_at(data, offset)?;
        self.writeback.wrote(self.file.as_fd(), offset, data.len() as u64);
        Ok(())
    }
}

impl Target for ImageFile {
    fn size(&self) -> Option<u64> {
        self.device_size
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        // Only the part inside the file: punching past the end would not
        // change what reads return, and fwup does not grow a file on trim.
        let end = (offset + len).min(self.len);
        if end <= offset {
            return Ok(());
        }
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        match fallocate(&self.file, flags, offset as i64, (end - offset) as i64) {
            Ok(()) => Ok(()),
            // Filesystems without hole punching: write the zeros instead.
            Err(nix::errno::Errno::EOPNOTSUPP) => write_zeros(&self.file, offset, end - offset),
            Err(e) => Err(e.into()),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

fn write_zeros(file: &File, mut offset: u64, mut len: u64) -> io::Result<()> {
    let zeros = vec![0u8; SEGMENT as usize];
    while len > 0 {
        let n = len.min(SEGMENT);
        file.write_all_at(&zeros[..n as usize], offset)?;
        offset += n;
        len -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_grows_in_segments_and_has_unknown_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let mut img = ImageFile::open(&path).unwrap();
        assert_eq!(img.size(), None);
        img.write_at(1024 * 1024, &[1u8; 100]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024 * 1024 + SEGMENT);
    }

    #[test]
    fn existing_size_is_the_device_size_and_does_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        File::create(&path).unwrap().set_len(4 << 20).unwrap();
        let mut img = ImageFile::open(&path).unwrap();
        assert_eq!(img.size(), Some(4 << 20));
        img.write_at(512, b"hello").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 << 20);
    }

    #[test]
    fn discard_reads_back_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        File::create(&path).unwrap().set_len(1 << 20).unwrap();
        let mut img = ImageFile::open(&path).unwrap();
        img.write_at(0, &[0xffu8; 8192]).unwrap();
        img.discard(4096, 4096).unwrap();
        let mut buf = [0u8; 8192];
        img.read_at(0, &mut buf).unwrap();
        assert!(buf[..4096].iter().all(|&b| b == 0xff));
        assert!(buf[4096..].iter().all(|&b| b == 0));
    }
}
