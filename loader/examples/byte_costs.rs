//! What each byte of an install costs on one core, step by step, in one run:
//! `cargo run --release --example byte_costs -- BUNDLE.fw`
//! (under user-mode TCG, as a one-vCPU guest without SSE4.1 or AVX sees
//! it: `qemu-x86_64 -cpu qemu64 target/.../examples/byte_costs BUNDLE.fw`).
//!
//! Reads the bundle into memory, then times on this thread alone: the ZIP
//! walk as the install pipeline reads it (inflate; the CRC-32 is waived
//! where BLAKE2b-256 is checked) and with the CRC-32 (the passes that do
//! not hash), the CRC-32 and BLAKE2b-256 implementations alone (best of
//! three interleaved runs), and a plain copy, each over the uncompressed
//! bytes of every entry. Prints MB/s and each step's share of one pass
//! (walk + the BLAKE2b the loader picks), which is what one vCPU spends
//! per byte before the write.
//!
//! As `/init` of a guest (the system-mode view, where every load and store
//! also costs a software TLB lookup), it reads `/install.fw`, also times
//! writing the bytes to `/dev/nvme0n1` when that exists, and powers off:
//! `qemu-system-x86_64 -kernel bzImage -initrd costs.cpio.gz` with this
//! binary as the archive's `init` and the bundle beside it.

use std::io::{Cursor, Read};

use nix::time::{clock_gettime, ClockId};

use loader::bundle::blake2b::{Blake2b256, Implementation};
use loader::bundle::crc32::{self, Crc32};
use loader::bundle::zip::ZipWalker;

const CHUNK: usize = 1024 * 1024;

fn main() {
    let as_init = std::process::id() == 1;
    if let Err(e) = run(as_init) {
        eprintln!("error: {e}");
    }
    if as_init {
        let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    }
}

fn run(as_init: bool) -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(path) => path,
        None if as_init => "/install.fw".to_owned(),
        None => return Err("usage: byte_costs BUNDLE.fw".into()),
    };
    let bundle = std::fs::read(&path)?;

    // The uncompressed bytes, for the steps after the walk (not timed).
    let mut data: Vec<Vec<u8>> = Vec::new();
    walk_all(&bundle, false, |chunk| data.push(chunk.to_vec()))?;
    // The walk itself, into one reused buffer as the pipeline's reader does.
    let walk_timed = |waive_crc| {
        timed(|| {
            walk_all(&bundle, waive_crc, |chunk| {
                std::hint::black_box(chunk);
            })
        })
    };
    let walk = walk_timed(true);
    walk.1?;
    let walk_with_crc = walk_timed(false);
    walk_with_crc.1?;
    let bytes: usize = data.iter().map(Vec::len).sum();

    let crc = |implementation| {
        timed(|| {
            let mut c = Crc32::with(implementation);
            data.iter().for_each(|d| c.update(d));
            std::hint::black_box(c.finalize());
        })
        .0
    };
    let hash = |implementation| {
        timed(|| {
            let mut h = Blake2b256::with(implementation);
            data.iter().for_each(|c| h.update(c));
            std::hint::black_box(h.finalize());
        })
        .0
    };
    // Best of three, interleaved: on a shared host, load that comes and
    // goes does not decide between the implementations.
    let mut crcs = crc32::Implementation::ALL.map(|implementation| (implementation, f64::MAX));
    let mut hashes = Implementation::ALL.map(|implementation| (implementation, f64::MAX));
    for _ in 0..3 {
        for (implementation, best) in &mut crcs {
            *best = best.min(crc(*implementation));
        }
        for (implementation, best) in &mut hashes {
            *best = best.min(hash(*implementation));
        }
    }
    let mut target = vec![0u8; CHUNK];
    let copy = timed(|| {
        for c in &data {
            target[..c.len()].copy_from_slice(c);
            std::hint::black_box(&target);
        }
    })
    .0;

    let picked = Implementation::fastest();
    let blake = hashes.iter().find(|(i, _)| *i == picked).map_or(0.0, |(_, secs)| *secs);
    let crc_picked = crc32::Implementation::fastest();
    let crc = crcs
        .iter()
        .find(|(i, _)| *i == crc_picked)
        .map_or(0.0, |(_, secs)| *secs);
    let pass = walk.0 + blake;
    let mb = bytes as f64 / 1e6;
    println!("{mb:.1} MB uncompressed from {path}; CPU seconds of this thread");
    println!("{:<44} {:>8} {:>8} {:>10}", "step", "seconds", "MB/s", "of a pass");
    let row = |label: &str, secs: f64| {
        println!(
            "{label:<44} {secs:>8.3} {:>8.0} {:>9.0}%",
            mb / secs,
            100.0 * secs / pass
        );
    };
    row("ZIP walk: inflate (pipeline reader, install)", walk.0);
    row("ZIP walk + CRC-32 (passes that do not hash)", walk_with_crc.0);
    row(&format!("  of which CRC-32 ({crc_picked:?}, picked)"), crc);
    for (implementation, secs) in crcs {
        let label = match implementation {
            crc32::Implementation::Fast => "crc32fast",
            crc32::Implementation::Words => "crc32-slice16 (ours)",
        };
        row(&format!("CRC-32, {label}"), secs);
    }
    for (implementation, secs) in hashes {
        let label = match implementation {
            Implementation::Vector => "blake2b_simd",
            Implementation::Scalar => "blake2 (RustCrypto)",
            Implementation::Shrd => "blake2b-shrd (ours)",
        };
        row(&format!("BLAKE2b-256, {label}"), secs);
    }
    row("copy 1 MiB chunks (memcpy)", copy);
    row(&format!("one pass: walk + BLAKE2b ({picked:?}, picked)"), pass);
    if as_init {
        time_disk_writes(&data, mb)?;
    }
    Ok(())
}

/// Writes `data` to the guest's NVMe disk in 1 MiB pieces and flushes it,
/// through the page cache and then as an install does (large pieces
/// `O_DIRECT`; these chunks are not page-aligned, so they pass through the
/// writer's aligned buffer, which the install's own chunks skip).
fn time_disk_writes(data: &[Vec<u8>], mb: f64) -> Result<(), Box<dyn std::error::Error>> {
    use loader::formats::Medium;
    use loader::target::Target;
    use std::os::unix::fs::FileExt;
    let _ = std::fs::create_dir("/dev");
    let _ = nix::mount::mount(
        Some("devtmpfs"),
        "/dev",
        Some("devtmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    let Ok(mut disk) = std::fs::OpenOptions::new().write(true).open("/dev/nvme0n1") else {
        return Ok(());
    };
    time_writes(
        ("write to /dev/nvme0n1, buffered", "  and fdatasync"),
        data,
        mb,
        &mut disk,
        |disk, offset, chunk| disk.write_all_at(chunk, offset),
        |disk| disk.sync_data(),
    )?;
    let mut device = loader::target::blockdev::BlockDevice::open(std::path::Path::new("/dev/nvme0n1"), true)?;
    time_writes(
        ("write to /dev/nvme0n1, as an install does", "  and fsync"),
        data,
        mb,
        &mut device,
        |device, offset, chunk| device.write_at(offset, chunk),
        |device| device.sync(),
    )?;
    Ok(())
}

/// Wall seconds of writing `data` to `disk` and of the flush after it, and
/// the CPU seconds of this thread for both (the disk's emulation runs
/// outside the guest's CPU time).
fn time_writes<D>(
    (label, flush_label): (&str, &str),
    data: &[Vec<u8>],
    mb: f64,
    disk: &mut D,
    write: impl Fn(&mut D, u64, &[u8]) -> std::io::Result<()>,
    flush: impl Fn(&mut D) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let cpu = cpu_seconds();
    let mut offset = 0;
    for chunk in data {
        write(disk, offset, chunk)?;
        offset += chunk.len() as u64;
    }
    let written = started.elapsed().as_secs_f64();
    flush(disk)?;
    let synced = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!("{label:<44} {written:>8.3} {:>8.0}   (wall)", mb / written);
    println!(
        "{flush_label:<44} {synced:>8.3} {:>8.0}   (wall; {cpu:.3} s CPU)",
        mb / synced
    );
    Ok(())
}

/// CPU seconds this thread spent in `f`: other processes on a loaded
/// machine do not count.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let started = cpu_seconds();
    let out = f();
    (cpu_seconds() - started, out)
}

fn cpu_seconds() -> f64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// Walks every entry of `bundle` in 1 MiB pieces, handing each to `take`.
fn walk_all(bundle: &[u8], waive_crc: bool, mut take: impl FnMut(&[u8])) -> Result<(), Box<dyn std::error::Error>> {
    let mut walker = ZipWalker::new(Cursor::new(bundle));
    if waive_crc {
        walker.waive_crc();
    }
    let mut buf = vec![0u8; CHUNK];
    while let Some(mut entry) = walker.next_entry()? {
        loop {
            let n = fill(&mut entry, &mut buf)?;
            if n == 0 {
                break;
            }
            take(&buf[..n]);
        }
    }
    Ok(())
}

fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
