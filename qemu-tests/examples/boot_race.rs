//! The loader's boot path raced against the loader it replaces (a busybox +
//! fwup initramfs, `qemu_tests::reference`): same kernel, same bundle
//! injected by iPXE at /root/install.fw, same chain script, one blank NVMe
//! disk and no `loader.disk=`, under QEMU TCG. Runs alternate between the
//! two (which goes first alternates too); each stage is the median over
//! the runs. `scripts/bench` runs this.
//!
//! The VM is QEMU's q35 (PCIe, AHCI: what servers have) unless `--machine`
//! says otherwise. On the default i440FX machine every PCI device the
//! kernel enables evaluates QEMU's `_PRT`, an AML loop of 128 iterations
//! that the kernel's ACPI interpreter runs for 0.3-1.2 s per device under
//! TCG (virtio-net, virtio-rng, NVMe, the IDE controller: seconds before
//! `/init`, for both flavours alike); real firmware's `_PRT` is a table.
//!
//!   cargo run --release -p qemu-tests --example boot_race -- [OPTIONS]
//!     --runs N            runs of each flavour per configuration (3)
//!     --cpus 1,2          vCPU counts (-smp)
//!     --bundles small,large,FILE.fw
//!                         small: the example A/B bundle (4.5 MB); large: the
//!                         same with 100 MiB of random data added (issue: one vCPU);
//!                         any other .fw file is raced up to the reboot (its
//!                         system need not boot here), with task complete
//!     --disk-mib N        the blank disk's size (256)
//!     --machine q35|pc    QEMU machine type (q35)
//!     --compression N     instead of the race: the initramfs compression
//!                         table, N boots per compression
//!
//! Environment: FWUP (the fwup to race), QEMU_TEST_TIMEOUT, KEEP=1.
//! Raw runs are appended to target/qemu-tests/boot-race.tsv.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use qemu_tests::artifacts::{path_str, repo, run_checked};
use qemu_tests::scenario::{timeout, Scenario, SYSTEM_UP};
use qemu_tests::timing::{self, Marker, Timings};
use qemu_tests::vm::VmConfig;
use qemu_tests::{disk, reference};

/// The disk both flavours install onto unless `--disk-mib` says otherwise
/// (the large bundle's payload ends at 214 MiB).
const DISK_MIB: u64 = 256;
const DISK: &str = "/dev/nvme0n1";
/// The large bundle's payload: 100 MiB of random bytes written after the
/// data partition's 32 MiB filesystem (block 233472 = 114 MiB).
const PAYLOAD_BYTES: usize = 100 << 20;
const PAYLOAD_BLOCK: u64 = 233_472;

/// Spans shown for each configuration: (label, from stage, to stage).
const SPANS: [(&str, &str, &str); 7] = [
    ("kernel->/init", "kernel", "/init"),
    ("/init->write", "/init", "1st write"),
    ("write->done", "1st write", "done"),
    ("done->reboot", "done", "reboot"),
    ("phase", "/init", "reboot"),
    // What the initramfs decides: its kernel's boot with it, then the phase.
    ("kernel->reboot", "kernel", "reboot"),
    ("iPXE->up", "iPXE", "up"),
];

struct Options {
    runs: usize,
    cpus: Vec<u32>,
    bundles: Vec<String>,
    machine: String,
    compression: Option<usize>,
    disk_mib: u64,
}

fn main() {
    let opts = parse_args();
    let Some(fwup) = reference::find_fwup() else {
        println!("boot race skipped: no fwup (set FWUP=/path/to/fwup)");
        return;
    };
    let mut s = Scenario::new("boot_race");
    if let Some(runs) = opts.compression {
        compression_table(&mut s, runs, &opts.machine);
        return;
    }
    let reference_initramfs = s.path("initramfs-reference");
    let compress = compressor_of(&s.artifacts.initramfs);
    if let Err(e) = reference::build_initramfs(&fwup, DISK, compress.command, &reference_initramfs) {
        println!("boot race skipped: {e}");
        return;
    }
    s.server.add_file("initramfs-reference", &reference_initramfs);
    let sizes = [("loader", &s.artifacts.initramfs), ("reference", &reference_initramfs)]
        .map(|(name, path)| format!("{name} {} bytes", std::fs::metadata(path).unwrap().len()));
    println!(
        "initramfs ({}): {}; fwup: {}",
        compress.name,
        sizes.join(", "),
        fwup.display()
    );
    for (index, bundle) in opts.bundles.iter().enumerate() {
        // The example system prints its line once up; another bundle's
        // system may not boot in this VM at all, so its race ends at the
        // reboot.
        let (path, until) = match bundle.as_str() {
            "small" => (s.artifacts.bundle_v1.clone(), SYSTEM_UP),
            "large" => (large_bundle(&s.artifacts.bundle_v1), SYSTEM_UP),
            file if file.ends_with(".fw") && Path::new(file).is_file() => (PathBuf::from(file), timing::RESTARTING),
            other => panic!("--bundles: {other:?} is neither small, large nor a .fw file"),
        };
        let served = format!("bundle{index}.fw");
        s.server.add_file(&served, &path);
        let race = Race {
            machine: &opts.machine,
            disk_mib: opts.disk_mib,
            bundle,
            served: &served,
            until,
        };
        let mib = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
        for &cpus in &opts.cpus {
            let mut runs: [Vec<Timings>; 2] = [Vec::new(), Vec::new()];
            for run in 0..opts.runs {
                // Alternate which flavour goes first, so drift in the
                // machine's load falls on both.
                for flavour in if run % 2 == 0 { [0, 1] } else { [1, 0] } {
                    let t = boot_once(&mut s, flavour, &race, cpus);
                    record(flavour, cpus, bundle, run, &t);
                    runs[flavour].push(t);
                }
            }
            let title = format!("{} {cpus} vCPU, {bundle} bundle ({mib:.1} MB)", opts.machine);
            print_race(&title, &runs);
        }
    }
}

fn parse_args() -> Options {
    let mut opts = Options {
        runs: 3,
        cpus: vec![1, 2],
        bundles: vec!["small".into(), "large".into()],
        machine: "q35".into(),
        compression: None,
        disk_mib: DISK_MIB,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => opts.runs = value.parse().expect("--runs N"),
            "--cpus" => opts.cpus = value.split(',').map(|c| c.parse().expect("--cpus 1,2")).collect(),
            "--bundles" => opts.bundles = value.split(',').map(String::from).collect(),
            "--machine" => opts.machine = value,
            "--compression" => opts.compression = Some(value.parse().expect("--compression N")),
            "--disk-mib" => opts.disk_mib = value.parse().expect("--disk-mib N"),
            other => panic!("unknown option {other}"),
        }
    }
    opts
}

const FLAVOURS: [(&str, &str, &[Marker; 8]); 2] = [
    ("loader", "initramfs", &timing::LOADER),
    ("busybox+fwup", "initramfs-reference", &timing::REFERENCE),
];

/// What every boot of one bundle shares.
struct Race<'a> {
    machine: &'a str,
    disk_mib: u64,
    /// `small`, `large` or the file's path, as `--bundles` named it.
    bundle: &'a str,
    /// The bundle's name on the test server.
    served: &'a str,
    /// The line that ends a boot: the installed system's, or the kernel's
    /// reboot for a bundle whose system may not boot here.
    until: &'a str,
}

/// One network boot of `flavour` onto a blank disk, up to `race.until`.
fn boot_once(s: &mut Scenario, flavour: usize, race: &Race, cpus: u32) -> Timings {
    let (name, initramfs, markers) = FLAVOURS[flavour];
    let bundle = race.bundle;
    let disk_path = s.path("disk.img");
    disk::blank(&disk_path, race.disk_mib);
    let script = s.chain(initramfs, "", &[&format!("{} /root/install.fw", race.served)]);
    let config = VmConfig::new(&[&disk_path]).machine(race.machine).cpus(cpus).nvme();
    let mut vm = s.boot_network_with(config, script);
    let failed = ["loader: result: failed", "reference: fwup exited 1", "Kernel panic"];
    match vm.wait_any(&[&[race.until][..], &failed].concat(), timeout()) {
        Ok((0, _)) => {}
        Ok((i, _)) => panic!(
            "{name} boot failed: {} (serial log: {})",
            vm.line(failed[i - 1]).unwrap_or_default().1,
            vm.log.display()
        ),
        Err(e) => panic!("{name}: {e} (serial log: {})", vm.log.display()),
    }
    let t = Timings::read(&vm, markers);
    eprintln!("boot_race: {name}, {cpus} vCPU, {bundle}: {}", t.human());
    if flavour == 0 {
        eprintln!("boot_race: loader steps (ms): {}", timing::loader_steps(&vm.lines()));
    }
    t
}

fn record(flavour: usize, cpus: u32, bundle: &str, run: usize, t: &Timings) {
    let path = repo().join("target/qemu-tests/boot-race.tsv");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let name = FLAVOURS[flavour].0;
    writeln!(file, "{name}\t{cpus}\t{bundle}\t{run}\t{}", t.tsv_cells()).unwrap();
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn print_race(title: &str, runs: &[Vec<Timings>; 2]) {
    println!();
    println!(
        "boot race, {title}, NVMe, median of {} runs each: seconds",
        runs[0].len()
    );
    print!("{:<14}", "");
    for label in timing::STAGES.iter().chain(SPANS.iter().map(|(l, _, _)| l)) {
        print!(" {label:>9}");
    }
    println!();
    let mut spans = [[None; SPANS.len()]; 2];
    for (flavour, timings) in runs.iter().enumerate() {
        print!("{:<14}", FLAVOURS[flavour].0);
        for stage in timing::STAGES {
            let at = median(timings.iter().filter_map(|t| t.at(stage)).collect());
            print!(" {:>9}", cell(at));
        }
        for (i, (_, from, to)) in SPANS.iter().enumerate() {
            spans[flavour][i] = median(timings.iter().filter_map(|t| t.span(from, to)).collect());
            print!(" {:>9}", cell(spans[flavour][i]));
        }
        println!();
    }
    print!("{:<14}", "ratio");
    print!("{}", " ".repeat(10 * timing::STAGES.len()));
    let ratios: Vec<String> = spans[0]
        .iter()
        .zip(spans[1])
        .map(|(l, r)| l.zip(r).map_or("-".into(), |(l, r)| format!("{:.2}", l / r)))
        .collect();
    for ratio in &ratios {
        print!(" {ratio:>9}");
    }
    println!();
    // iPXE->up also counts stages neither initramfs touches (QEMU's iPXE ROM:
    // a 2 s prompt and 3 s of DHCP; firmware, GRUB and the installed system
    // after the reboot): about 9.6 s of 12.3 s on a quiet host.
    let judged: Vec<String> = ["phase", "kernel->reboot", "iPXE->up"]
        .iter()
        .map(|label| {
            let i = SPANS.iter().position(|(l, _, _)| l == label).unwrap();
            format!("{label} {}", ratios[i])
        })
        .collect();
    println!("loader / busybox+fwup: {} (target <= 0.85)", judged.join(", "));
}

fn cell(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The example bundle with a 100 MiB random resource written raw after the
/// data partition's filesystem: a Nerves-style bundle of 100 MB+ whose
/// installed system still boots. Cached next to the artifacts.
fn large_bundle(small: &Path) -> PathBuf {
    let dir = repo().join("target/qemu-tests/artifacts/large-bundle");
    let out = dir.join("large.fw");
    let stamp = dir.join("made-from");
    let source = format!("{} {}", small.display(), std::fs::metadata(small).unwrap().len());
    if out.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&source) {
        return out;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let listing = run_checked(Command::new("unzip").args(["-Z1", path_str(small)]));
    run_checked(Command::new("unzip").args(["-q", path_str(small), "-d", path_str(&dir)]));
    let payload = dir.join("data/payload.bin");
    let mut random = vec![0u8; PAYLOAD_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    std::fs::write(&payload, random).unwrap();
    let meta = std::fs::read_to_string(dir.join("meta.conf")).unwrap();
    // The resource goes after the others; its handler into task complete.
    let handler =
        format!("on-resource \"payload.bin\" {{\nfunlist={{2,raw_write,{PAYLOAD_BLOCK}}}\n}}\n}}\ntask \"upgrade.a\"");
    let end_of_complete = "}\n}\ntask \"upgrade.a\"";
    assert_eq!(
        meta.matches(end_of_complete).count(),
        1,
        "the example meta.conf changed shape"
    );
    let meta = meta
        .replacen("mbr \"mbr\" {", "@RESOURCE payload.bin@\nmbr \"mbr\" {", 1)
        .replacen(end_of_complete, &format!("}}\n{handler}"), 1);
    let template = dir.join("meta.template");
    std::fs::write(&template, meta).unwrap();
    let mut args = vec![
        repo().join("scripts/make-bundle.py").display().to_string(),
        out.display().to_string(),
        template.display().to_string(),
    ];
    for entry in listing.lines().filter_map(|l| l.strip_prefix("data/")) {
        args.push(format!("{entry}={}", dir.join("data").join(entry).display()));
        if entry == "rootfs.img" {
            args.push(format!("payload.bin={}", payload.display()));
        }
    }
    run_checked(Command::new("python3").args(&args));
    let _ = std::fs::remove_dir_all(dir.join("data"));
    std::fs::write(&stamp, source).unwrap();
    out
}

/// An initramfs compression as a shell filter, and how to undo it.
struct Compressor {
    name: &'static str,
    command: &'static str,
    decompress: &'static str,
}

/// What the kernel unpacks; xz with CRC-32 (the kernel has no CRC-64),
/// lz4 in the legacy format (the only one the kernel reads), and the
/// plain `newc` archive (more to download, nothing to unpack).
const COMPRESSORS: [Compressor; 5] = [
    Compressor {
        name: "gzip",
        command: "gzip -9n",
        decompress: "gzip -dc",
    },
    Compressor {
        name: "xz",
        command: "xz --check=crc32 -9",
        decompress: "xz -dc",
    },
    Compressor {
        name: "zstd",
        command: "zstd -19 -q -c",
        decompress: "zstd -dc -q",
    },
    Compressor {
        name: "lz4",
        command: "lz4 -l -9 -q -c",
        decompress: "lz4 -dc -q",
    },
    Compressor {
        name: "none",
        command: "cat",
        decompress: "cat",
    },
];

/// The compressor of an initramfs, by its magic bytes.
fn compressor_of(initramfs: &Path) -> &'static Compressor {
    let head = std::fs::read(initramfs).unwrap();
    let name = match head.get(..4) {
        Some([0x1f, 0x8b, ..]) => "gzip",
        Some([0xfd, b'7', b'z', b'X']) => "xz",
        Some([0x28, 0xb5, 0x2f, 0xfd]) => "zstd",
        Some([0x02, 0x21, 0x4c, 0x18]) => "lz4",
        Some(b"0707") => "none",
        _ => panic!("{}: not a compressed initramfs the race knows", initramfs.display()),
    };
    COMPRESSORS.iter().find(|c| c.name == name).unwrap()
}

/// One row of the compression table.
struct Row {
    name: &'static str,
    bytes: u64,
    /// CPU seconds of the decompressor on this host (best of five).
    host: f64,
    /// The kernel's unpack (synchronous, `initramfs_async=0`), its clock
    /// at `/init`, and iPXE start -> `/init` on the host, per boot.
    unpack: Vec<f64>,
    init: Vec<f64>,
    ipxe: Vec<f64>,
}

/// Boots the loader's initramfs in each compression until `/init` runs
/// (no bundle: the VM is stopped there), `runs` times round-robin, and
/// times each decompressor on this host's CPU. The kernel unpacks
/// synchronously here (`initramfs_async=0`) so the span between its
/// "Unpacking initramfs" and "Freeing initrd memory" lines is the unpack
/// alone.
fn compression_table(s: &mut Scenario, runs: usize, machine: &str) {
    let cpio = s.path("initramfs.cpio");
    run_checked(Command::new(repo().join("scripts/build-initramfs")).args([
        "--compression",
        "none",
        "-o",
        path_str(&cpio),
    ]));
    let cpio_bytes = std::fs::metadata(&cpio).unwrap().len();
    let mut rows = Vec::new();
    for c in &COMPRESSORS {
        let out = s.path(&format!("initramfs.{}", c.name));
        let pack = format!("{} < '{}' > '{}'", c.command, cpio.display(), out.display());
        run_checked(Command::new("sh").args(["-c", &pack]));
        s.server.add_file(&format!("initramfs-{}", c.name), &out);
        // GNU time counts in 10 ms steps: time 20 unpacks at once.
        let unpack = format!(
            "for i in $(seq 20); do {} < '{}' > /dev/null; done",
            c.decompress,
            out.display()
        );
        let host = (0..5).map(|_| cpu_seconds(&unpack) / 20.0).fold(f64::MAX, f64::min);
        rows.push(Row {
            name: c.name,
            bytes: std::fs::metadata(&out).unwrap().len(),
            host,
            unpack: Vec::new(),
            init: Vec::new(),
            ipxe: Vec::new(),
        });
    }
    for _ in 0..runs {
        for row in rows.iter_mut() {
            let disk_path = s.path("disk.img");
            disk::blank(&disk_path, DISK_MIB);
            let script = s.chain(&format!("initramfs-{}", row.name), "initramfs_async=0", &[]);
            let config = VmConfig::new(&[&disk_path]).machine(machine).nvme();
            let mut vm = s.boot_network_with(config, script);
            vm.wait_for("loader: loader ", timeout()).unwrap();
            let lines = vm.lines();
            let clock = |needle| kernel_clock(&lines, needle);
            if let (Some(start), Some(end)) = (clock("Unpacking initramfs"), clock("Freeing initrd memory")) {
                row.unpack.push(end - start);
            }
            row.init.extend(clock("Run /init as init process"));
            row.ipxe
                .extend(Timings::read(&vm, &timing::LOADER).span("iPXE", "/init"));
        }
    }
    println!();
    println!("initramfs compression: the loader's cpio ({cpio_bytes} bytes) packed by each tool; host: CPU seconds to");
    println!("unpack on this machine (a shell loop of 20, best of 5); TCG: {machine}, 1 vCPU, median of {runs} boots, seconds");
    println!(
        "{:<6} {:>10} {:>10} {:>11} {:>12} {:>14} {:>12}",
        "", "bytes", "host ms", "host MB/s", "TCG unpack", "kernel /init", "iPXE->/init"
    );
    for row in rows {
        println!(
            "{:<6} {:>10} {:>10.1} {:>11.0} {:>12} {:>14} {:>12}",
            row.name,
            row.bytes,
            row.host * 1e3,
            cpio_bytes as f64 / row.host / 1e6,
            cell(median(row.unpack)),
            cell(median(row.init)),
            cell(median(row.ipxe))
        );
    }
}

/// User + system CPU seconds of a shell command (GNU time).
fn cpu_seconds(command: &str) -> f64 {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%U %S", "sh", "-c", command])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let last = text.lines().last().unwrap_or_default().to_string();
    last.split_whitespace().filter_map(|v| v.parse::<f64>().ok()).sum()
}

/// The kernel's own timestamp (`[    1.234567] …`) of the first line
/// containing `needle`: seconds since the kernel started, free of the
/// host's console capture.
fn kernel_clock(lines: &[(f64, String)], needle: &str) -> Option<f64> {
    let line = &lines.iter().find(|(_, l)| l.contains(needle))?.1;
    let inner = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inner.trim().parse().ok()
}
