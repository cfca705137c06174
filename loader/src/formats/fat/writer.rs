//! Writing file contents: the streaming writer behind `fat_write` and the
//! copy between two volumes behind fwup's cross-filesystem `fat_cp`.

use std::io;

use super::error::{FatError, FatErrorKind};
use super::file::{OpenFile, OpenMode};
use super::volume::{AllocState, Volume};
use super::Fat;
use crate::formats::Medium;

/// fwup copies in chunks of this size; the chunking shows in the bytes
/// FatFs leaves in a file's last sector, so we keep it.
pub(crate) const COPY_CHUNK: usize = 4096;
/// fwup zero-fills holes in this size of writes.
const HOLE_CHUNK: usize = 512;

impl Fat {
    /// `fat_write`: creates or truncates `path` and returns a writer for
    /// its contents, fed in the order the resource arrives.
    pub fn write_file<'a>(&'a mut self, m: &'a mut dyn Medium, path: &str) -> Result<FileWriter<'a>, FatError> {
        // The truncation is committed at once, as fwup syncs after opening.
        let file = self.run(m, |vol, m| {
            let mut file = OpenFile::open(vol, m, path, OpenMode::CreateAlways)?;
            file.sync(vol, m)?;
            Ok(file)
        })?;
        Ok(FileWriter {
            saved: self.alloc,
            offset: self.offset,
            vol: Volume::new(self),
            m,
            file,
            path: path.to_string(),
            finished: false,
        })
    }
}

/// `fat_cp` from a file on `src` to a file on `dst`, two volumes on the
/// same medium (fwup 1.12+). Copying onto the same volume uses [`Fat::cp`].
pub fn copy_between(m: &mut dyn Medium, src: &mut Fat, from: &str, dst: &mut Fat, to: &str) -> Result<(), FatError> {
    if src.offset == dst.offset {
        return src.cp(m, from, to);
    }
    let saved = (src.alloc, dst.alloc);
    let result = copy_across(m, src, from, dst, to);
    if result.is_err() {
        // Their FAT changes were dropped with the caches: forget the hints.
        (src.alloc, dst.alloc) = saved;
    }
    result
}

fn copy_across(m: &mut dyn Medium, src: &mut Fat, from: &str, dst: &mut Fat, to: &str) -> Result<(), FatError> {
    let (src_off, dst_off) = (src.offset, dst.offset);
    let src_err = |k| FatError::new(src_off, k);
    let dst_err = |k| FatError::new(dst_off, k);
    let mut sv = Volume::new(src);
    let mut dv = Volume::new(dst);
    let mut reader = OpenFile::open(&mut sv, m, from, OpenMode::Read).map_err(src_err)?;
    let mut writer = OpenFile::open(&mut dv, m, to, OpenMode::CreateAlways).map_err(dst_err)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    loop {
        let n = reader.read(&mut sv, m, &mut buf).map_err(src_err)?;
        if n == 0 {
            break;
        }
        writer.write(&mut dv, m, &buf[..n]).map_err(dst_err)?;
    }
    writer.sync(&mut dv, m).map_err(dst_err)
}

/// Streams the contents of a file being written by `fat_write`. Call
/// [`FileWriter::finish`]; dropping it instead discards the directory and
/// FAT updates (as fwup discards its cache when an apply fails).
pub struct FileWriter<'a> {
    vol: Volume<'a>,
    m: &'a mut dyn Medium,
    file: OpenFile,
    path: String,
    offset: u64,
    /// Allocation hints as of the last sync, restored if the writer is
    /// dropped unfinished (its FAT changes are dropped with the cache).
    saved: AllocState,
    finished: bool,
}

impl Drop for FileWriter<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.vol.fat.alloc = self.saved;
        }
    }
}

impl std::fmt::Debug for FileWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("len", &self.file.len())
            .finish()
    }
}

impl FileWriter<'_> {
    fn err(&self, kind: FatErrorKind) -> FatError {
        FatError::new(self.offset, kind)
    }

    /// Appends `data` at the end of what was written so far.
    pub fn write(&mut self, data: &[u8]) -> Result<(), FatError> {
        if u64::from(self.file.position()) + data.len() as u64 > u64::from(u32::MAX) {
            return Err(self.err(FatErrorKind::FileTooLarge {
                path: self.path.clone(),
            }));
        }
        self.file.write(&mut self.vol, self.m, data).map_err(|k| self.err(k))
    }

    /// Writes `data` at `offset` (a sparse resource's next data run); the
    /// gap is zero-filled the way fwup does. `write_at(size, &[])` extends
    /// the file to a final hole. Offsets before the end are refused.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), FatError> {
        let position = u64::from(self.file.position());
        if offset < position {
            return Err(self.err(FatErrorKind::WriteBehind {
                path: self.path.clone(),
                offset,
                position,
            }));
        }
        let zeros = [0u8; HOLE_CHUNK];
        let mut gap = offset - position;
        while gap > 0 {
            let n = gap.min(HOLE_CHUNK as u64) as usize;
            self.write(&zeros[..n])?;
            gap -= n as u64;
        }
        self.write(data)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        u64::from(self.file.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records size and clusters in the directory entry and writes the FAT.
    pub fn finish(mut self) -> Result<u64, FatError> {
        self.sync()?;
        self.finished = true;
        Ok(self.len())
    }

    fn sync(&mut self) -> Result<(), FatError> {
        self.file
            .sync(&mut self.vol, self.m)
            .map_err(|k| FatError::new(self.offset, k))?;
        self.saved = self.vol.fat.alloc;
        Ok(())
    }
}

impl io::Write for FileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        FileWriter::write(self, buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    /// Commits what was written so far (FatFs `f_sync`).
    fn flush(&mut self) -> io::Result<()> {
        self.sync().map_err(io::Error::other)
    }
}
