//! Measures the ZIP walker's inflate + CRC throughput on a bundle:
//! `cargo run --release --example zip_throughput -- BUNDLE.fw` (or `-` for
//! stdin). Reads every entry in 1 MiB chunks, as the install pipeline does.

use std::io::Read;
use std::time::Instant;

use loader::bundle::zip::ZipWalker;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: zip_throughput BUNDLE.fw|-")?;
    let source: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&path)?)
    };
    let start = Instant::now();
    let mut walker = ZipWalker::new(source);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut total = 0u64;
    while let Some(mut entry) = walker.next_entry()? {
        let name = entry.name().to_string();
        let mut bytes = 0u64;
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
        println!("{name}: {bytes} bytes");
        total += bytes;
    }
    let secs = start.elapsed().as_secs_f64();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "{:.1} MiB out, {:.1} MiB in, {secs:.3} s: {:.0} MiB/s uncompressed",
        mib(total),
        mib(walker.bytes_consumed()),
        mib(total) / secs
    );
    Ok(())
}
