//! One QEMU virtual machine under TCG (never KVM: it hangs on these hosts),
//! with user networking only, its serial console captured line by line
//! with timestamps (seconds since QEMU started) into a log file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the VM is put together.
#[derive(Clone)]
pub struct VmConfig {
    /// Raw disk images, attached as virtio disks in order (/dev/vda, vdb…).
    pub disks: Vec<PathBuf>,
    /// With a URL, the first boot is iPXE fetching it (later resets boot
    /// the first disk); without, the disk boots.
    pub boot_url: Option<String>,
    /// UEFI firmware (OVMF) instead of SeaBIOS: (code, writable vars copy).
    pub uefi: Option<(PathBuf, PathBuf)>,
    /// Under UEFI: the NIC before the disk in the boot order, for reinstalls
    /// (OVMF would otherwise boot the installed disk and never reach iPXE).
    pub network_first: bool,
    /// A boot medium attached first in the boot order, for every boot of
    /// the machine (as an ISO left attached or a stick left plugged in).
    pub medium: Option<Medium>,
    pub memory_mib: u32,
    /// Virtual CPUs (`-smp`); QEMU's default is one.
    pub cpus: u32,
    /// Attach the disks as NVMe controllers (/dev/nvme0n1, nvme1n1…)
    /// instead of virtio.
    pub nvme: bool,
    /// QEMU's machine type (`-machine`); its default (`pc`, i440FX) when
    /// unset.
    pub machine: Option<String>,
    /// The NIC on a tap device in a network namespace (QEMU runs inside
    /// it) instead of user networking: a network without DHCP.
    pub tap: Option<TapNic>,
    /// A serial number for the first disk (`virtio-blk-pci,serial=`).
    pub disk_serial: Option<String>,
}

/// Removable boot media.
#[derive(Clone, Debug)]
pub enum Medium {
    /// An ISO image in an IDE CD-ROM drive (read-only).
    Cdrom(PathBuf),
    /// A raw image as a USB stick on an xHCI controller.
    UsbStick(PathBuf),
}

/// A NIC on an existing tap device.
#[derive(Clone, Debug)]
pub struct TapNic {
    pub netns: String,
    pub ifname: String,
    pub mac: String,
}

impl VmConfig {
    pub fn new(disks: &[&Path]) -> VmConfig {
        VmConfig {
            disks: disks.iter().map(|d| d.to_path_buf()).collect(),
            boot_url: None,
            uefi: None,
            network_first: false,
            medium: None,
            memory_mib: 512,
            cpus: 1,
            nvme: false,
            machine: None,
            tap: None,
            disk_serial: None,
        }
    }

    pub fn memory(mut self, mib: u32) -> VmConfig {
        self.memory_mib = mib;
        self
    }

    pub fn network_boot(mut self, url: String) -> VmConfig {
        self.boot_url = Some(url);
        self
    }

    pub fn cpus(mut self, cpus: u32) -> VmConfig {
        self.cpus = cpus;
        self
    }

    pub fn nvme(mut self) -> VmConfig {
        self.nvme = true;
        self
    }

    pub fn machine(mut self, machine: &str) -> VmConfig {
        self.machine = Some(machine.to_string());
        self
    }

    /// `medium` attached and first in the boot order.
    pub fn medium(mut self, medium: Medium) -> VmConfig {
        self.medium = Some(medium);
        self
    }

    /// UEFI firmware: Debian's OVMF code, read-only, and `vars`, a writable
    /// copy of its variable store made here when missing (kept across the
    /// boots of one machine, as NVRAM is).
    pub fn uefi(mut self, vars: &Path) -> VmConfig {
        const CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
        const VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
        if !vars.exists() {
            std::fs::copy(VARS, vars).unwrap_or_else(|e| panic!("copy {VARS} (scripts/setup installs ovmf): {e}"));
        }
        self.uefi = Some((PathBuf::from(CODE), vars.to_path_buf()));
        self
    }
}

#[derive(Default)]
struct Console {
    lines: Vec<(f64, String)>,
    closed: bool,
}

/// A running VM. Dropping it kills QEMU.
pub struct Vm {
    child: Child,
    console: Arc<(Mutex<Console>, Condvar)>,
    /// Host port forwarded to the guest's port 80 (user networking only).
    pub http_port: u16,
    pub log: PathBuf,
}

impl Vm {
    /// Starts QEMU; the serial console goes to `log`.
    pub fn start(config: &VmConfig, log: &Path) -> Vm {
        let http_port = free_port();
        let mut netdev = format!("user,id=n,hostfwd=tcp:127.0.0.1:{http_port}-:80");
        let mut nic_options = String::new();
        let mut cmd = match &config.tap {
            Some(tap) => {
                netdev = format!("tap,id=n,ifname={},script=no,downscript=no", tap.ifname);
                nic_options = format!(",mac={}", tap.mac);
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &tap.netns, "qemu-system-x86_64"]);
                cmd
            }
            None => Command::new("qemu-system-x86_64"),
        };
        cmd.args([
            "-accel",
            "tcg",
            "-m",
            &config.memory_mib.to_string(),
            "-smp",
            &config.cpus.to_string(),
            "-nographic",
            "-serial",
            "mon:stdio",
        ]);
        if let Some(machine) = &config.machine {
            cmd.args(["-machine", machine]);
        }
        if let Some(url) = &config.boot_url {
            netdev.push_str(&format!(",bootfile={url}"));
        }
        // SeaBIOS takes `-boot once=n,order=c` (network first, the disk after
        // the loader's reboot). OVMF ignores that and follows bootindex: the
        // first disk, then the NIC, so a blank disk falls through to iPXE and
        // an installed one boots. A boot medium gets bootindex 0, which both
        // firmwares try before anything else.
        let (mut disk_index, mut nic_index) = (None, None);
        match &config.uefi {
            None => {
                let order = if config.boot_url.is_some() {
                    "once=n,order=c"
                } else {
                    "order=c"
                };
                cmd.args(["-boot", order]);
            }
            Some((code, vars)) => {
                let code = format!("if=pflash,format=raw,unit=0,readonly=on,file={}", code.display());
                let vars = format!("if=pflash,format=raw,unit=1,file={}", vars.display());
                cmd.args(["-drive", &code, "-drive", &vars]);
                let (disk, nic) = if config.network_first { (2, 1) } else { (1, 2) };
                disk_index = Some(disk);
                nic_index = config.boot_url.as_ref().map(|_| nic);
            }
        }
        for (i, disk) in config.disks.iter().enumerate() {
            let drive = format!("file={},format=raw,if=none,id=disk{i}", disk.display());
            let bootindex = disk_index
                .filter(|_| i == 0)
                .map_or(String::new(), |n| format!(",bootindex={n}"));
            // NVMe controllers need a serial; the first disk's may be given.
            let serial = match config.disk_serial.as_ref().filter(|_| i == 0) {
                Some(serial) => format!(",serial={serial}"),
                None if config.nvme => format!(",serial=loader-test-{i}"),
                None => String::new(),
            };
            let model = if config.nvme { "nvme" } else { "virtio-blk-pci" };
            let device = format!("{model},drive=disk{i}{serial}{bootindex}");
            cmd.args(["-drive", &drive, "-device", &device]);
        }
        match &config.medium {
            None => {}
            Some(Medium::Cdrom(iso)) => {
                let drive = format!(
                    "file={},format=raw,if=none,id=cd0,media=cdrom,readonly=on",
                    iso.display()
                );
                cmd.args(["-drive", &drive, "-device", "ide-cd,drive=cd0,bootindex=0"]);
            }
            Some(Medium::UsbStick(image)) => {
                let drive = format!("file={},format=raw,if=none,id=stick0", image.display());
                cmd.args(["-device", "qemu-xhci,id=xhci", "-drive", &drive]);
                cmd.args(["-device", "usb-storage,bus=xhci.0,drive=stick0,bootindex=0"]);
            }
        }
        let bootindex = nic_index.map_or(String::new(), |n| format!(",bootindex={n}"));
        cmd.args([
            "-netdev",
            &netdev,
            "-device",
            &format!("virtio-net-pci,netdev=n{bootindex}{nic_options}"),
        ]);
        cmd.args(["-device", "virtio-rng-pci"]);
        let t0 = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64 (scripts/setup installs qemu-system-x86)");
        let console = Arc::new((Mutex::new(Console::default()), Condvar::new()));
        let file = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let writer = Arc::new(Mutex::new(BufWriter::new(file)));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let console = Arc::clone(&console);
            let writer = Arc::clone(&writer);
            thread::spawn(move || capture(stream, t0, &console, &writer));
        }
        Vm {
            child,
            console,
            http_port,
            log: log.to_path_buf(),
        }
    }

    /// Waits for a console line containing any of `needles`; returns the
    /// index of the needle and the line's time. Fails when QEMU is gone or
    /// `timeout` passes.
    pub fn wait_any(&mut self, needles: &[&str], timeout: Duration) -> Result<(usize, f64), String> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.console;
        let mut console = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            for (at, line) in &console.lines {
                if let Some(i) = needles.iter().position(|n| line.contains(n)) {
                    return Ok((i, *at));
                }
            }
            if console.closed {
                return Err(format!("QEMU exited before {needles:?} appeared on the console"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no {needles:?} on the console within {} s", timeout.as_secs()));
            }
            console = ready
                .wait_timeout(console, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for a line containing `needle`; returns its time.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<f64, String> {
        self.wait_any(&[needle], timeout).map(|(_, at)| at)
    }

    /// The first console line containing `needle`, with its time.
    pub fn line(&self, needle: &str) -> Option<(f64, String)> {
        self.lines().into_iter().find(|(_, l)| l.contains(needle))
    }

    pub fn lines(&self) -> Vec<(f64, String)> {
        self.console.0.lock().unwrap_or_else(|e| e.into_inner()).lines.clone()
    }

    /// Pulls the plug: SIGKILL, no shutdown, no flush of guest caches.
    pub fn power_cut(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// POST `body` to `path` on the guest's port 80 with extra header lines;
    /// returns the status line and the body.
    pub fn http_post(&self, path: &str, headers: &[&str], body: &str) -> Result<(String, String), String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut request = format!(
            "POST {path} HTTP/1.0\r\nHost: guest\r\nContent-Length: {}\r\n",
            body.len()
        );
        for header in headers {
            request.push_str(&format!("{header}\r\n"));
        }
        request.push_str(&format!("\r\n{body}"));
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP response")?;
        Ok((head.lines().next().unwrap_or_default().to_string(), body.to_string()))
    }

    /// GET `path` from the guest's port 80, retrying while it comes up.
    pub fn http_get(&self, path: &str) -> Result<String, String> {
        let mut last = String::new();
        for _ in 0..20 {
            match get(self.http_port, path) {
                Ok(body) => return Ok(body),
                Err(e) => last = e,
            }
            thread::sleep(Duration::from_millis(500));
        }
        Err(format!("GET {path} from the guest failed: {last}"))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.power_cut();
    }
}

/// Splits QEMU's output into lines, stamps and records them. Carriage
/// returns are dropped (the console writes CRLF, iPXE redraws with CR).
fn capture(
    mut stream: Box<dyn Read + Send>,
    t0: Instant,
    console: &(Mutex<Console>, Condvar),
    log: &Mutex<BufWriter<File>>,
) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        let at = t0.elapsed().as_secs_f64();
        pending.extend(buf[..n].iter().copied().filter(|&b| b != b'\r'));
        let mut complete = Vec::new();
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            complete.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        if n == 0 && !pending.is_empty() {
            complete.push(String::from_utf8_lossy(&std::mem::take(&mut pending)).into_owned());
        }
        {
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            for line in &complete {
                let _ = writeln!(log, "[{at:8.3}] {line}");
            }
            let _ = log.flush();
        }
        let (lock, ready) = console;
        let mut console = lock.lock().unwrap_or_else(|e| e.into_inner());
        console.lines.extend(complete.into_iter().map(|l| (at, l)));
        if n == 0 {
            console.closed = true;
        }
        ready.notify_all();
        if n == 0 {
            return;
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

fn get(port: u16, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: guest\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1));
    if status != Some("200") {
        return Err(format!("answer: {}", head.lines().next().unwrap_or_default()));
    }
    Ok(body.to_string())
}
