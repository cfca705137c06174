//! A resource's `length` and `blake2b-256`, and its bytes for the archive.
//!
//! Like `fwup -c`, the host files are read twice: once to hash them (the
//! hashes go into `meta.conf`, which comes first in the archive) and once to
//! compress them into it. The second pass hashes again and refuses a file
//! that changed in between, so a bundle never carries a hash that does not
//! match its data. Only the data runs of sparse files are read.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::sections::{ResourceData, ResourceSpec};
use super::sparse::{layout, Layout};
use super::PackError;
use crate::bundle::blake2b::Blake2b256;

/// Read size for hashing and compressing.
const CHUNK: usize = 128 * 1024;

/// A resource with its map and hash computed.
pub(crate) struct Prepared {
    pub spec: ResourceSpec,
    /// The `length` list: data/hole lengths (a single length usually).
    pub lengths: Vec<u64>,
    pub blake2b_256: [u8; 32],
    /// Bytes stored in the archive.
    pub stored_len: u64,
    files: Vec<(PathBuf, File)>,
    layout: Layout,
}

impl Prepared {
    /// Maps and hashes `spec`'s data and checks its size assertions.
    pub fn new(spec: ResourceSpec) -> Result<Prepared, PackError> {
        let files = match &spec.data {
            ResourceData::Files(paths) => paths
                .iter()
                .map(|p| {
                    File::open(p)
                        .map(|f| (p.clone(), f))
                        .map_err(|source| resource_io(&spec, p, source))
                })
                .collect::<Result<Vec<_>, _>>()?,
            ResourceData::Contents(_) => Vec::new(),
        };
        let (lengths, layout) = match &spec.data {
            ResourceData::Files(_) => {
                let layout =
                    layout(&files, spec.skip_holes).map_err(|e| problem(&spec, format!("mapping holes: {e}")))?;
                (layout.map.clone(), layout)
            }
            ResourceData::Contents(text) => (
                vec![text.len() as u64],
                Layout {
                    map: Vec::new(),
                    chunks: Vec::new(),
                },
            ),
        };
        let mut prepared = Prepared {
            stored_len: match &spec.data {
                ResourceData::Files(_) => layout.data_len(),
                ResourceData::Contents(text) => text.len() as u64,
            },
            lengths,
            blake2b_256: [0; 32],
            spec,
            files,
            layout,
        };
        prepared.check_size()?;
        let mut hasher = Blake2bWriter::new();
        prepared.copy_data(&mut hasher)?;
        prepared.blake2b_256 = hasher.finish();
        Ok(prepared)
    }

    /// `assert-size-lte`/`-gte` apply to the size with holes, as in fwup.
    fn check_size(&self) -> Result<(), PackError> {
        let ResourceData::Files(paths) = &self.spec.data else {
            return Ok(());
        };
        let size = self.layout.total_len();
        let shown = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(";");
        if let Some(max) = self.spec.max_size.filter(|&max| size > max) {
            return Err(problem(
                &self.spec,
                format!(
                    "{shown} is {size} bytes; assert-size-lte allows at most {max} bytes ({} blocks)",
                    max / 512
                ),
            ));
        }
        if let Some(min) = self.spec.min_size.filter(|&min| size < min) {
            return Err(problem(
                &self.spec,
                format!(
                    "{shown} is {size} bytes; assert-size-gte requires at least {min} bytes ({} blocks)",
                    min / 512
                ),
            ));
        }
        Ok(())
    }

    /// Writes the stored bytes (data runs only) to `out`.
    fn copy_data(&self, out: &mut dyn Write) -> Result<(), PackError> {
        if let ResourceData::Contents(text) = &self.spec.data {
            return out.write_all(text.as_bytes()).map_err(write_error);
        }
        let mut buffer = vec![0u8; CHUNK];
        for chunk in &self.layout.chunks {
            let (path, file) = &self.files[chunk.file];
            let mut offset = chunk.offset;
            let end = chunk.offset + chunk.len;
            while offset < end {
                let want = usize::try_from(end - offset).unwrap_or(CHUNK).min(CHUNK);
                let n = file
                    .read_at(&mut buffer[..want], offset)
                    .map_err(|source| resource_io(&self.spec, path, source))?;
                if n == 0 {
                    return Err(changed(&self.spec, path));
                }
                out.write_all(&buffer[..n]).map_err(write_error)?;
                offset += n as u64;
            }
        }
        Ok(())
    }

    /// Streams the stored bytes into `out`, checking they still hash to
    /// what `meta.conf` says.
    pub fn write_to(&self, out: &mut dyn Write) -> Result<(), PackError> {
        let mut tee = Tee {
            out,
            hash: Blake2bWriter::new(),
        };
        self.copy_data(&mut tee)?;
        if tee.hash.finish() != self.blake2b_256 {
            let path = match &self.spec.data {
                ResourceData::Files(paths) => paths.first().cloned().unwrap_or_default(),
                ResourceData::Contents(_) => PathBuf::new(),
            };
            return Err(changed(&self.spec, &path));
        }
        Ok(())
    }

    /// The archive path: `data/NAME`, or `NAME` without its `/`.
    pub fn archive_path(&self) -> String {
        match self.spec.name.strip_prefix('/') {
            Some(root) => root.to_string(),
            None => format!("data/{}", self.spec.name),
        }
    }
}

fn problem(spec: &ResourceSpec, problem: String) -> PackError {
    PackError::Resource {
        origin: spec.origin.clone(),
        resource: spec.name.clone(),
        problem,
    }
}

fn resource_io(spec: &ResourceSpec, path: &std::path::Path, e: io::Error) -> PackError {
    problem(spec, format!("reading {}: {e}", path.display()))
}

fn changed(spec: &ResourceSpec, path: &std::path::Path) -> PackError {
    problem(
        spec,
        format!(
            "{} changed while the bundle was being written; pack again",
            path.display()
        ),
    )
}

fn write_error(e: io::Error) -> PackError {
    PackError::Write(e.to_string())
}

/// BLAKE2b-256 as a `Write` sink, with the engine's faster-of-two choice.
struct Blake2bWriter(Blake2b256);

impl Blake2bWriter {
    fn new() -> Self {
        Blake2bWriter(Blake2b256::new())
    }

    fn finish(&self) -> [u8; 32] {
        self.0.clone().finalize()
    }
}

impl Write for Blake2bWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Tee<'a> {
    out: &'a mut dyn Write,
    hash: Blake2bWriter,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.0.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
