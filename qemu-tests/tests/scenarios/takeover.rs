//! Clouds without iPXE: a running Linux (the harness's "provider image",
//! static network, no DHCP anywhere) replaced by the loader through
//! `loader takeover` and kexec, and a bad bundle refused before the jump.

use std::path::PathBuf;
use std::time::Duration;

use qemu_tests::disk;
use qemu_tests::netns::{TapNetwork, GUEST_MAC, SERVER};
use qemu_tests::pki::server_config;
use qemu_tests::provider::{self, PROVIDER_ALIVE, PROVIDER_UP};
use qemu_tests::scenario::{expect, expect_before_failure, timeout, Scenario, RESULT};
use qemu_tests::server::Server;
use qemu_tests::vm::{TapNic, Vm, VmConfig};

use crate::{signed, DISK_MIB};

/// The serial number of the provider's disk: the takeover pins it.
const DISK_SERIAL: &str = "provider-disk-1";

/// A provider image on a tap network, its server behind the gateway
/// serving the static loader, the kernel, the CA, a public key and the
/// example bundle v1 signed with it (`ab-v1.fw`, and `corrupt-v1.fw` with
/// one byte flipped in the middle).
struct Provider {
    s: Scenario,
    net: TapNetwork,
    server: Server,
    disk: PathBuf,
}

impl Provider {
    /// `None` (after saying why) where network namespaces are not permitted.
    fn new(name: &str) -> Option<Provider> {
        let net = TapNetwork::new(name)?;
        let s = Scenario::new(name);
        let server = net.server(server_config(s.ca.issue(&[SERVER], 2000, 4000), false));
        let a = s.artifacts;
        let (signed, public) = signed(&s, &a.bundle_v1, "ab-v1");
        server.add_file("ab-v1.fw", &signed);
        let mut corrupt = std::fs::read(&signed).unwrap();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        server.add_bytes("corrupt-v1.fw", corrupt);
        server.add_file("loader", &a.static_loader);
        server.add_file("bzImage", &a.kernel);
        server.add_file("key.pub", &public);
        server.add_bytes("ca.pem", s.ca.pem().into_bytes());
        let disk = s.path("disk.img");
        disk::blank(&disk, DISK_MIB);
        provider::write_disk(a, &s.dir, &disk, &server.guest_url("user-data"));
        Some(Provider { s, net, server, disk })
    }

    /// The user-data script (what cloud-init runs; the README's guide has
    /// the same commands): fetch the static loader, then take over with
    /// the bundle carried in the loader's initramfs.
    fn user_data(&self, bundle: &str) {
        let http = self.server.guest_url("");
        let https = self.server.guest_https_url("");
        let script = format!(
            "#!/bin/sh\n\
             set -e\n\
             cd /tmp\n\
             wget -q -O loader {http}loader\n\
             chmod +x loader\n\
             wget -q -O ca.pem {http}ca.pem\n\
             wget -q -O key.pub {http}key.pub\n\
             ./loader takeover --kernel {https}bzImage --bundle {https}{bundle} \\\n\
             \x20   --public-key key.pub --ca ca.pem --set loader.report={https}report\n"
        );
        self.server.add_bytes("user-data", script.into_bytes());
    }

    fn boot(&mut self, memory_mib: u32) -> Vm {
        let mut config = VmConfig::new(&[&self.disk]).memory(memory_mib);
        config.tap = Some(TapNic {
            netns: self.net.netns.clone(),
            ifname: self.net.tap.clone(),
            mac: GUEST_MAC.into(),
        });
        config.disk_serial = Some(DISK_SERIAL.into());
        self.s.boot(config)
    }
}

/// The console line containing `needle`, or a failure naming the log.
fn line(vm: &Vm, needle: &str) -> String {
    vm.line(needle)
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("no `{needle}` on the console (serial log: {})", vm.log.display()))
}

/// disk: [ GRUB | p1 FAT: bzImage, busybox initrd | p2 "root" ] serial provider-disk-1
/// network: eth0 192.0.2.10/32, gateway 192.0.2.1 on-link, server
/// 198.51.100.1 behind it, MTU 1400, IPv6; no DHCP server at all.
/// provider image → user-data → loader takeover --bundle https://… (signed
/// v1, key and CA given) → kexec → the loader, with the carried network,
/// reports and installs onto the pinned disk → reboot → slot a, 1.0.0 up.
fn takeover_installs(name: &str, memory_mib: u32) {
    let Some(mut p) = Provider::new(name) else { return };
    p.user_data("ab-v1.fw");
    let mut vm = p.boot(memory_mib);
    expect(&mut vm, PROVIDER_UP);
    expect_before_failure(&mut vm, "loader: takeover: loaded; jumping into the loader now");

    // What was checked and carried before the jump.
    let pinned = line(&vm, "loader: takeover: disk: ");
    assert!(
        pinned.contains(&format!("named serial:{DISK_SERIAL} by its serial number")),
        "{pinned}"
    );
    let network = line(&vm, "loader: takeover: network: eth0");
    assert!(
        network.contains(&format!("({GUEST_MAC}): 192.0.2.10/32 2001:db8:99::10/64")) && network.contains("MTU 1400"),
        "{network}"
    );
    let bundle = line(&vm, "loader: takeover: bundle: ");
    assert!(
        bundle.contains("verified (Loader example A/B system 1.0.0, signature: "),
        "{bundle}"
    );
    let memory = line(&vm, "loader: takeover: memory: the jump needs");
    eprintln!("qemu-tests: {name}: {memory}");

    // After the jump: the loader, its network from the carried lines.
    let result = expect_result(&mut vm);
    assert!(
        result.contains("result: installed Loader example A/B system 1.0.0 task=complete disk=/dev/vda"),
        "{result}"
    );
    let configured = line(&vm, "loader: network: Configured");
    assert!(
        configured.contains("address: 192.0.2.10, prefix_len: 32"),
        "{configured}"
    );
    assert!(vm.line("loader: network: Dhcp").is_none(), "no DHCP was tried");
    // The example system asks for DHCP (`ip=dhcp`); on this network the
    // kernel waits out its DHCP timeout (about 160 s) before /sbin/init.
    let up = "installed-system: slot=a version=1.0.0 up";
    if let Err(e) = vm.wait_for(up, timeout().max(Duration::from_secs(420))) {
        panic!("{e} (serial log: {})", vm.log.display());
    }
    p.s.record_timings(&vm);
    drop(vm);

    let reports = p.server.posts("report");
    assert!(
        reports.iter().any(|r| r.contains("\"result\":\"installed\"")),
        "the loader reported over the carried network: {reports:?}"
    );
    assert_eq!(disk::active_slot(&p.disk).as_deref(), Some("a"));
}

fn expect_result(vm: &mut Vm) -> String {
    expect(vm, RESULT);
    line(vm, RESULT)
}

#[test]
fn takeover() {
    takeover_installs("takeover", 1024);
}

/// The same on a 512 MB VM: the loader, its kernel and the bundle fit.
#[test]
fn takeover_512m() {
    takeover_installs("takeover_512m", 512);
}

/// disk, network: as in `takeover`.
/// user-data → loader takeover --bundle https://…/corrupt-v1.fw (one byte
/// flipped) → refused before the jump, saying why; the provider image keeps
/// running; the disk is byte for byte what it was.
#[test]
fn takeover_refused_safely() {
    let Some(mut p) = Provider::new("takeover_refused") else {
        return;
    };
    p.user_data("corrupt-v1.fw");
    let before = p.s.path("before.img");
    std::fs::copy(&p.disk, &before).unwrap();
    let mut vm = p.boot(512);
    expect(&mut vm, PROVIDER_UP);
    expect(&mut vm, "provider-image: user-data exited with 1");
    let refusal = line(&vm, "is refused, nothing was loaded");
    assert!(
        refusal.contains(&format!("the bundle https://{SERVER}/corrupt-v1.fw is refused"))
            && (refusal.contains("BLAKE2b-256 mismatch") || refusal.contains("damaged")),
        "{refusal}"
    );
    expect(&mut vm, &format!("{PROVIDER_ALIVE} 2"));
    assert!(vm.line("jumping into the loader").is_none(), "no jump");
    p.s.record_timings(&vm);
    drop(vm);
    assert_eq!(
        disk::first_difference(&before, &p.disk),
        None,
        "the refused takeover changed the disk"
    );
}
