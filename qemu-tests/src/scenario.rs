//! A scenario's working state: its directory under `target/qemu-tests/`
//! (disks, serial logs; removed after a pass unless `KEEP=1`, kept after a
//! failure with its path printed), the loopback server, the boots it made,
//! and the timings it prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::artifacts::{artifacts, path_str, repo, Artifacts};
use crate::pki::{server_config, TestCa};
use crate::server::{Server, HOST_FROM_GUEST};
use crate::timing::{self, Timings};
use crate::vm::{Vm, VmConfig};

/// Kernel arguments every scenario uses: the serial console last (it
/// becomes /dev/console) and plain progress lines. Scenarios add the disk
/// (`loader.disk=/dev/vda`) unless the point is that none is named.
pub const BASE_ARGS: &str = "console=tty0 console=ttyS0,115200 loader.console=plain";

/// Console markers, in boot order (the timing points).
pub const LOADER_START: &str = "loader: loader ";
pub const FIRST_WRITE: &str = "stage: writing resources";
pub const RESULT: &str = "loader: result: ";
pub const SYSTEM_UP: &str = "installed-system: slot=";

pub struct Scenario {
    pub name: String,
    pub dir: PathBuf,
    pub server: Server,
    pub ca: TestCa,
    pub artifacts: &'static Artifacts,
    boots: usize,
    logs: Vec<PathBuf>,
    /// (boot number, its stages).
    timings: Vec<(usize, Timings)>,
}

/// How long any one console marker may take (TCG on a busy 2-core host).
pub fn timeout() -> Duration {
    let secs = std::env::var("QEMU_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    Duration::from_secs(secs)
}

impl Scenario {
    /// A fresh directory and server (HTTP + HTTPS with a throw-away CA whose
    /// certificate names 10.0.2.2) serving the kernel and initramfs.
    pub fn new(name: &str) -> Scenario {
        let artifacts = artifacts();
        let dir = repo().join("target/qemu-tests").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scenario directory");
        let ca = TestCa::new("qemu-tests CA");
        let tls = server_config(ca.issue(&[HOST_FROM_GUEST], 2000, 4000), false);
        let server = Server::start(Some(tls));
        server.add_file("bzImage", &artifacts.kernel);
        server.add_file("initramfs", &artifacts.initramfs);
        eprintln!("qemu-tests: {name}: starting in {}", dir.display());
        Scenario {
            name: name.to_string(),
            dir,
            server,
            ca,
            artifacts,
            boots: 0,
            logs: Vec::new(),
            timings: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Serves, as `initramfs-ca`, the initramfs of [`Scenario::ca_initramfs`].
    pub fn serve_ca_initramfs(&self) {
        self.server.add_file("initramfs-ca", &self.ca_initramfs());
    }

    /// An initramfs with this scenario's CA baked in (`loader initramfs
    /// --ca-cert`): the loader then trusts the server's HTTPS certificate.
    pub fn ca_initramfs(&self) -> PathBuf {
        let ca = self.path("ca.pem");
        std::fs::write(&ca, self.ca.pem()).expect("write ca.pem");
        let ca = ca.to_str().expect("test paths are UTF-8");
        self.artifacts
            .initramfs_with(&format!("ca-{}", self.name), &["--ca-cert", ca])
    }

    /// The iPXE chain script, as `loader ipxe` prints it for operators: the
    /// served kernel, the served `initramfs` (or another served name), the
    /// kernel arguments `BASE_ARGS` and `args`, and each of `initrds` given
    /// as "NAME /root/install.fw" injected there by iPXE.
    pub fn chain(&self, initramfs: &str, args: &str, initrds: &[&str]) -> String {
        let mut delivery = Vec::new();
        for initrd in initrds {
            let name = initrd
                .strip_suffix(" /root/install.fw")
                .unwrap_or_else(|| panic!("chain: {initrd:?} is not \"NAME /root/install.fw\""));
            delivery.extend(["--bundle".to_string(), self.server.guest_url(name)]);
        }
        self.ipxe_script(initramfs, &delivery, args)
    }

    /// `loader ipxe` with the bundle `delivery` options (`--bundle URL`,
    /// `--bundle-cpio NAME`) and `BASE_ARGS` plus `args` on the kernel line.
    pub fn ipxe_script(&self, initramfs: &str, delivery: &[String], args: &str) -> String {
        let base = format!("http://{HOST_FROM_GUEST}:{}", self.server.http_port);
        let mut command: Vec<String> = ["ipxe", "--base-url", &base, "--initramfs", initramfs]
            .iter()
            .map(|a| a.to_string())
            .collect();
        command.extend(delivery.iter().cloned());
        command.extend(kernel_flags(args));
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        self.artifacts.loader(&command)
    }

    /// A rescue ISO made by `loader iso` as `name` in the scenario
    /// directory: the kernel, `initramfs`, the bundle `delivery` options
    /// (`--bundle FILE`, `--fetch-bundle URL`) and `BASE_ARGS` plus `args`
    /// on the kernel line.
    pub fn iso(&self, name: &str, initramfs: &Path, delivery: &[&str], args: &str) -> PathBuf {
        let out = self.path(name);
        let mut command: Vec<String> = ["iso", "--kernel"].iter().map(|a| a.to_string()).collect();
        command.push(path_str(&self.artifacts.kernel).to_string());
        command.extend(["--initramfs".to_string(), path_str(initramfs).to_string()]);
        command.extend(delivery.iter().map(|d| d.to_string()));
        command.extend(kernel_flags(args));
        command.extend(["-o".to_string(), path_str(&out).to_string()]);
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        self.artifacts.loader(&command);
        out
    }

    /// Boots a VM from the network with `script` as boot.ipxe.
    pub fn boot_network(&mut self, disks: &[&Path], script: String) -> Vm {
        self.boot_network_with(VmConfig::new(disks), script)
    }

    /// Boots a VM made by `config` from the network with `script`.
    pub fn boot_network_with(&mut self, config: VmConfig, script: String) -> Vm {
        let name = format!("boot{}.ipxe", self.boots + 1);
        self.server.add_bytes(&name, script.into_bytes());
        self.boot(config.network_boot(self.server.guest_url(&name)))
    }

    /// Boots a VM from its first disk.
    pub fn boot_disk(&mut self, disks: &[&Path]) -> Vm {
        self.boot(VmConfig::new(disks))
    }

    pub fn boot(&mut self, config: VmConfig) -> Vm {
        self.boots += 1;
        let log = self.path(&format!("boot{}.serial.log", self.boots));
        self.logs.push(log.clone());
        Vm::start(&config, &log)
    }

    /// Records the console times of the boot stages of `vm`'s boot.
    pub fn record_timings(&mut self, vm: &Vm) {
        self.timings.push((self.boots, Timings::read(vm, &timing::LOADER)));
    }
}

/// `BASE_ARGS` and `args` as the flags `loader ipxe` and `loader iso` take.
fn kernel_flags(args: &str) -> Vec<String> {
    let mut flags = Vec::new();
    for word in BASE_ARGS.split_whitespace().chain(args.split_whitespace()) {
        match word.strip_prefix("console=") {
            Some(console) => flags.extend(["--console".to_string(), console.to_string()]),
            None => flags.extend(["--cmdline".to_string(), word.to_string()]),
        }
    }
    flags
}

/// Waits for `needle` or fails the scenario with the console's last lines.
pub fn expect(vm: &mut Vm, needle: &str) -> f64 {
    match vm.wait_for(needle, timeout()) {
        Ok(at) => at,
        Err(e) => panic!("{e} (serial log: {})", vm.log.display()),
    }
}

/// Waits for `needle` during an install: a failed result first fails the
/// scenario at once with that line (instead of at the deadline).
pub fn expect_before_failure(vm: &mut Vm, needle: &str) -> f64 {
    match vm.wait_any(&[needle, "loader: result: failed"], timeout()) {
        Ok((0, at)) => at,
        Ok(_) => panic!(
            "the install failed before `{needle}`: {}",
            vm.line("loader: result: failed").unwrap_or_default().1
        ),
        Err(e) => panic!("{e} (serial log: {})", vm.log.display()),
    }
}

/// Waits for the loader's result line and returns it.
pub fn result_line(vm: &mut Vm) -> String {
    expect(vm, RESULT);
    vm.line(RESULT).map(|(_, l)| l).unwrap_or_default()
}

/// The first result line with the indented lines that continue it (a
/// disk refusal lists the candidates there), joined by newlines.
pub fn result_text(vm: &Vm) -> String {
    let lines = vm.lines();
    let Some(start) = lines.iter().position(|(_, l)| l.contains(RESULT)) else {
        return String::new();
    };
    let continued = lines[start + 1..]
        .iter()
        .take_while(|(_, l)| l.starts_with("loader:   "));
    std::iter::once(&lines[start])
        .chain(continued)
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("qemu-tests: FAIL {}; serial logs kept:", self.name);
            for log in &self.logs {
                eprintln!("  {}", log.display());
                if let Ok(text) = std::fs::read_to_string(log) {
                    let lines: Vec<&str> = text.lines().collect();
                    for line in &lines[lines.len().saturating_sub(15)..] {
                        eprintln!("    {line}");
                    }
                }
            }
            return;
        }
        let human: Vec<String> = self
            .timings
            .iter()
            .map(|(boot, t)| format!("boot {boot}: {}", t.human()))
            .collect();
        eprintln!(
            "qemu-tests: PASS {} (seconds since QEMU start; {})",
            self.name,
            human.join("; ")
        );
        // Columns: scenario, boot, then timing::STAGES (what scripts/bench reads).
        let tsv: String = self
            .timings
            .iter()
            .map(|(boot, t)| format!("{}\t{boot}\t{}\n", self.name, t.tsv_cells()))
            .collect();
        let table = repo().join("target/qemu-tests/timings.tsv");
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(table) {
            let _ = std::io::Write::write_all(&mut file, tsv.as_bytes());
        }
        if std::env::var_os("KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
