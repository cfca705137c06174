//! Where the data of a resource's host files is, and where their holes are.
//!
//! fwup records a resource as alternating data and hole lengths
//! (`length={65536,983040,…}`; one element for an ordinary file) found with
//! `SEEK_DATA`/`SEEK_HOLE`, and stores only the data in the archive. Files
//! named together (`host-path = "a;b"`) are one resource: a hole at the end
//! of one and at the start of the next are one hole. The map has at most
//! 255 entries (fwup's 256-slot table); beyond that the rest is one data
//! run. Without `skip-holes` (or on a filesystem that cannot tell) every
//! file is one data run.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

/// fwup keeps at most this many map entries.
const MAX_MAP_LEN: usize = 255;
/// Seeking stops after this many extents per file; the rest is data.
const MAX_EXTENTS_PER_FILE: usize = 1024;

/// A byte range of one host file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Index into the resource's file list.
    pub file: usize,
    pub offset: u64,
    pub len: u64,
}

/// The resource's map and the file ranges its data runs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Data, hole, data, … lengths; empty when every file is empty.
    pub map: Vec<u64>,
    /// The data runs' bytes, in order.
    pub chunks: Vec<Chunk>,
}

impl Layout {
    /// Bytes stored in the archive.
    pub fn data_len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len).sum()
    }

    /// Bytes the resource spans, holes included.
    pub fn total_len(&self) -> u64 {
        self.map.iter().sum()
    }
}

struct Segment {
    data: bool,
    len: u64,
    chunks: Vec<Chunk>,
}

/// Maps `files` (already opened, in order).
pub(crate) fn layout(files: &[(PathBuf, File)], skip_holes: bool) -> io::Result<Layout> {
    let mut segments: Vec<Segment> = Vec::new();
    for (index, (_, file)) in files.iter().enumerate() {
        let size = file.metadata()?.len();
        let extents = if skip_holes {
            extents(file, size)?
        } else {
            vec![(true, 0, size)]
        };
        for (data, offset, len) in extents.into_iter().filter(|e| e.2 > 0) {
            let chunk = Chunk {
                file: index,
                offset,
                len,
            };
            match segments.last_mut() {
                Some(last) if last.data == data => {
                    last.len += len;
                    last.chunks.push(chunk);
                }
                _ => segments.push(Segment {
                    data,
                    len,
                    chunks: vec![chunk],
                }),
            }
        }
    }
    if segments.first().is_some_and(|s| !s.data) {
        segments.insert(
            0,
            Segment {
                data: true,
                len: 0,
                chunks: Vec::new(),
            },
        );
    }
    if segments.len() > MAX_MAP_LEN {
        // Keep an even number of entries (ending with a hole), then all
        // the rest as one data run; its holes are read back as zeros.
        let rest = segments.split_off(MAX_MAP_LEN - 1);
        segments.push(Segment {
            data: true,
            len: rest.iter().map(|s| s.len).sum(),
            chunks: rest.into_iter().flat_map(|s| s.chunks).collect(),
        });
    }
    Ok(Layout {
        map: segments.iter().map(|s| s.len).collect(),
        chunks: segments.into_iter().filter(|s| s.data).flat_map(|s| s.chunks).collect(),
    })
}

/// `(is_data, offset, len)` runs covering `0..size`.
fn extents(file: &File, size: u64) -> io::Result<Vec<(bool, u64, u64)>> {
    let mut runs = Vec::new();
    let mut pos = 0u64;
    let mut in_data = true;
    while pos < size {
        if runs.len() >= MAX_EXTENTS_PER_FILE {
            runs.push((true, pos, size - pos));
            break;
        }
        let whence = if in_data { Whence::SeekHole } else { Whence::SeekData };
        let offset = i64::try_from(pos).map_err(|_| io::Error::other("file offset beyond 2^63"))?;
        let next = match lseek(file, offset, whence) {
            Ok(n) => u64::try_from(n).unwrap_or(size).clamp(pos, size),
            // No data after `pos`: the rest is a hole.
            Err(Errno::ENXIO) => size,
            // The filesystem cannot tell holes: all data.
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) if runs.is_empty() => return Ok(vec![(true, 0, size)]),
            Err(e) => return Err(io::Error::from(e)),
        };
        if next > pos {
            runs.push((in_data, pos, next - pos));
        }
        pos = next;
        in_data = !in_data;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn open(path: PathBuf) -> (PathBuf, File) {
        let file = File::open(&path).expect("open");
        (path, file)
    }

    #[test]
    fn ordinary_and_empty_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let empty = dir.path().join("empty");
        std::fs::write(&a, vec![7u8; 3000]).expect("write");
        std::fs::write(&empty, b"").expect("write");
        let l = layout(&[open(a.clone())], true).expect("layout");
        assert_eq!(l.map, vec![3000]);
        assert_eq!(l.data_len(), 3000);
        let l = layout(&[open(empty.clone())], true).expect("layout");
        assert!(l.map.is_empty() && l.chunks.is_empty());
        // Concatenation: one data run from two files.
        let l = layout(&[open(a.clone()), open(empty), open(a)], true).expect("layout");
        assert_eq!(l.map, vec![6000]);
        assert_eq!(l.chunks.len(), 2);
    }

    #[test]
    fn holes_are_found_and_merged_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sparse");
        let file = File::create(&path).expect("create");
        file.set_len(2 << 20).expect("set_len");
        file.write_all_at(&[1u8; 65536], 0).expect("write");
        file.write_all_at(&[2u8; 65536], 1 << 20).expect("write");
        drop(file);
        let l = layout(&[open(path.clone())], true).expect("layout");
        if l.map.len() == 1 {
            eprintln!("this filesystem does not report holes; skipping");
            return;
        }
        assert_eq!(l.map, vec![65536, 983040, 65536, 983040]);
        assert_eq!(l.total_len(), 2 << 20);
        assert_eq!(l.data_len(), 131072);
        // Without skip-holes the file is one data run.
        let l = layout(&[open(path.clone())], false).expect("layout");
        assert_eq!(l.map, vec![2 << 20]);
        // A file ending in a hole followed by one starting with a hole:
        // one hole in the map.
        let second = dir.path().join("starts-with-hole");
        let file = File::create(&second).expect("create");
        file.set_len(1 << 20).expect("set_len");
        file.write_all_at(&[3u8; 4096], 512 << 10).expect("write");
        drop(file);
        let l = layout(&[open(path), open(second)], true).expect("layout");
        assert_eq!(
            l.map,
            vec![65536, 983040, 65536, 983040 + (512 << 10), 4096, (512 << 10) - 4096]
        );
        assert_eq!(l.chunks.len(), 3);
    }
}
