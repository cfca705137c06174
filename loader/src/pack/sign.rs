//! `loader keygen` and `loader sign`: fwup's `-g` and `-S`.
//!
//! Re-signing rewrites the archive like `fwup -S`: the old signature is
//! dropped, the new one goes first, `meta.conf` keeps its bytes and its
//! time stamp (the bundle's creation date), and every other entry is
//! decompressed (which checks its CRC) and compressed again in order.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::zip_writer::ZipWriter;
use super::{write_atomically, PackError, DEFAULT_LEVEL};
use crate::bundle::meta_conf::{load_meta_conf, MAX_META_CONF_LEN, MIN_META_CONF_LEN};
use crate::bundle::meta_uuid::MetaIds;
use crate::bundle::signature::{self, generate_keypair, SigningKey};
use crate::bundle::zip::ZipWalker;

/// Writes a new key pair to `PREFIX.pub` and `PREFIX.priv` (readable by the
/// owner only) in fwup's format; refuses to replace existing files.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), PackError> {
    let with_ext = |ext: &str| {
        let mut name = prefix.as_os_str().to_os_string();
        name.push(ext);
        PathBuf::from(name)
    };
    let (public_path, private_path) = (with_ext(".pub"), with_ext(".priv"));
    for path in [&public_path, &private_path] {
        if path.exists() {
            return Err(PackError::Key(format!(
                "{} already exists; choose another name with -o or remove it first",
                path.display()
            )));
        }
    }
    let (private, public) = generate_keypair().map_err(|e| PackError::Key(e.to_string()))?;
    let write = |path: &Path, text: String, mode: u32| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| PackError::Key(format!("writing {}: {e}", path.display())))
    };
    write(&private_path, private.to_base64(), 0o600)?;
    write(&public_path, public.to_base64(), 0o644)?;
    Ok((public_path, private_path))
}

/// What `sign` wrote.
#[derive(Debug, Clone)]
pub struct SignSummary {
    pub meta_uuid: String,
    pub entries: usize,
    /// The input already had a signature (now replaced).
    pub replaced: bool,
}

fn bundle_error(input: &Path, what: impl std::fmt::Display) -> PackError {
    PackError::Bundle(format!("{}: {what}", input.display()))
}

/// Re-signs the bundle `input` with `key` into `output` (which may be
/// `input` itself).
pub fn sign_bundle(input: &Path, key: &SigningKey, output: &Path) -> Result<SignSummary, PackError> {
    let file = File::open(input).map_err(|e| bundle_error(input, e))?;
    let headers = file.try_clone().map_err(|e| bundle_error(input, e))?;
    let mut walker = ZipWalker::new(io::BufReader::with_capacity(1 << 20, file));

    let mut replaced = false;
    let mut entry = walker
        .next_entry()
        .map_err(|e| bundle_error(input, e))?
        .ok_or_else(|| bundle_error(input, "the bundle is empty"))?;
    if entry.name() == "meta.conf.ed25519" {
        replaced = true;
        entry = walker
            .next_entry()
            .map_err(|e| bundle_error(input, e))?
            .ok_or_else(|| bundle_error(input, "nothing follows meta.conf.ed25519"))?;
    }
    if entry.name() != "meta.conf" {
        return Err(bundle_error(
            input,
            format!(
                "expected meta.conf at the start of the bundle, found `{}`",
                entry.name()
            ),
        ));
    }
    let mtime = entry_mtime(&headers, entry.header_offset());
    let mut meta_conf = Vec::new();
    entry
        .by_ref()
        .take(MAX_META_CONF_LEN as u64)
        .read_to_end(&mut meta_conf)
        .map_err(|e| bundle_error(input, e))?;
    if !(MIN_META_CONF_LEN..MAX_META_CONF_LEN).contains(&meta_conf.len()) {
        return Err(bundle_error(
            input,
            format!("unexpected meta.conf size {}", meta_conf.len()),
        ));
    }
    let loaded = load_meta_conf(&meta_conf, &|_| None).map_err(|e| bundle_error(input, e))?;
    let stored_len = |name: &str| {
        loaded
            .manifest
            .resources
            .iter()
            .find(|r| r.archive_path() == name)
            .map(|r| r.stored_len())
    };
    let signature = signature::sign(&meta_conf, key);

    let copy = |out: File| -> Result<usize, PackError> {
        let werr = |e: io::Error| PackError::Write(format!("{}: {e}", output.display()));
        let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, out), DEFAULT_LEVEL);
        zip.add_stored("meta.conf.ed25519", &signature).map_err(werr)?;
        let mut meta = zip
            .begin_deflated("meta.conf", meta_conf.len() as u64, mtime)
            .map_err(werr)?;
        meta.write_all(&meta_conf).map_err(werr)?;
        meta.finish().map_err(werr)?;
        let mut entries = 2;
        while let Some(mut entry) = walker.next_entry().map_err(|e| bundle_error(input, e))? {
            let name = entry.name().to_string();
            if name == "meta.conf" || name == "meta.conf.ed25519" {
                return Err(bundle_error(input, format!("a second `{name}` in the bundle")));
            }
            let size = entry.uncompressed_size().or_else(|| stored_len(&name)).unwrap_or(0);
            let mut out = zip.begin_deflated(&name, size, None).map_err(werr)?;
            copy_entry(&mut entry, &mut out).map_err(|e| match e {
                CopyError::Read(e) => bundle_error(input, format!("{name}: {e}")),
                CopyError::Write(e) => werr(e),
            })?;
            out.finish().map_err(werr)?;
            entries += 1;
        }
        let out = zip.finish().map_err(werr)?;
        let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
        file.sync_all().map_err(werr)?;
        Ok(entries)
    };
    let entries = write_atomically(output, copy)?;
    Ok(SignSummary {
        meta_uuid: MetaIds::from_meta_conf(&meta_conf).uuid,
        entries,
        replaced,
    })
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy_entry(from: &mut dyn Read, to: &mut dyn Write) -> Result<(), CopyError> {
    let mut buffer = vec![0u8; 128 * 1024];
    loop {
        let n = from.read(&mut buffer).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..n]).map_err(CopyError::Write)?;
    }
}

/// The modification time of the entry whose local header is at `offset`:
/// the `UT` extra field's when present, else the MS-DOS date and time
/// (taken as UTC). `None` when the header cannot be read or has no time.
fn entry_mtime(file: &File, offset: u64) -> Option<u32> {
    let mut fixed = [0u8; 30];
    file.read_exact_at(&mut fixed, offset).ok()?;
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let (name_len, extra_len) = (usize::from(u16_at(&fixed, 26)), usize::from(u16_at(&fixed, 28)));
    let mut extra = vec![0u8; extra_len];
    file.read_exact_at(&mut extra, offset + 30 + name_len as u64).ok()?;
    let mut rest = extra.as_slice();
    while rest.len() >= 4 {
        let (id, len) = (u16_at(rest, 0), usize::from(u16_at(rest, 2)));
        let data = rest.get(4..4 + len)?;
        if id == 0x5455 && data.len() >= 5 && data[0] & 1 != 0 {
            return Some(u32::from_le_bytes([data[1], data[2], data[3], data[4]]));
        }
        rest = &rest[4 + len..];
    }
    dos_to_unix(u16_at(&fixed, 10), u16_at(&fixed, 12))
}

/// MS-DOS date and time (UTC) to Unix time; 1980-01-01 00:00 (libarchive's
/// "no time") is `None`.
fn dos_to_unix(time: u16, date: u16) -> Option<u32> {
    if date == 0x21 && time == 0 {
        return None;
    }
    let (year, month, day) = (
        i64::from(date >> 9) + 1980,
        i64::from((date >> 5) & 0xf),
        i64::from(date & 0x1f),
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = i64::from(time >> 11) * 3600 + i64::from((time >> 5) & 0x3f) * 60 + i64::from(time & 0x1f) * 2;
    u32::try_from(days * 86_400 + secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_dates_convert_back() {
        assert_eq!(dos_to_unix(0xb1aa, 0x576e), Some(1_700_000_000));
        assert_eq!(dos_to_unix(0, 0x21), None);
    }
}
