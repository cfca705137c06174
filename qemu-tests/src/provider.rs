//! "A provider image": what a cloud server runs before `loader takeover`,
//! built here from Debian packages and the repository's own tools. A disk
//! with GRUB (BIOS) in the MBR, a FAT partition holding the kernel and
//! GRUB's configuration, and the root filesystem on partition 2 (squashfs:
//! busybox and an init script; `/tmp` and `/run` are tmpfs, and
//! `/etc/resolv.conf` links to `/run`, as on systemd systems). Its init
//! configures a static network of its own (no DHCP anywhere: see
//! [`crate::netns`]), then does what cloud-init does with user-data: fetches
//! the script named by `userdata=` on the kernel command line and runs it.
//! Afterwards it prints `provider-image: alive N` every 5 seconds, so a
//! scenario can tell it kept running.

use std::path::Path;
use std::process::Command;

use crate::artifacts::{path_str, run_checked, Artifacts};
use crate::netns::{GATEWAY, GUEST, GUEST_V6};

/// Console lines of the provider image.
pub const PROVIDER_UP: &str = "provider-image: up";
pub const PROVIDER_ALIVE: &str = "provider-image: alive";

const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";
const BUSYBOX: &str = "/bin/busybox";

/// The init script: mounts, static network, user-data, heartbeat.
fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
# The provider's static network: a /32 whose gateway is on the link.
ip link set eth0 mtu 1400 up
ip addr add {GUEST}/32 dev eth0
ip -6 addr add {GUEST_V6}/64 dev eth0
ip route add {GATEWAY} dev eth0
ip route add default via {GATEWAY} dev eth0
echo "nameserver 192.0.2.53" > /run/resolv.conf
echo "provider-image: up, eth0 {GUEST}/32 via {GATEWAY}, no DHCP"
url=$(sed -n 's/.*userdata=\([^ ]*\).*/\1/p' /proc/cmdline)
if wget -q -O /tmp/user-data "$url"; then
    sh /tmp/user-data
    echo "provider-image: user-data exited with $?"
else
    echo "provider-image: no user-data at $url"
fi
n=0
while true; do
    n=$((n + 1))
    echo "provider-image: alive $n"
    sleep 5
done
"#
    )
}

fn grub_cfg(userdata: &str) -> String {
    format!(
        "set timeout=0\nserial --unit=0 --speed=115200\nterminal_input serial console\n\
         terminal_output serial console\n\
         linux /boot/bzImage console=ttyS0,115200 root=/dev/vda2 rootfstype=squashfs ro \
         init=/sbin/provider-init userdata={userdata}\nboot\n"
    )
}

const FWUP_CONF: &str = r#"
file-resource core.img { host-path = "${PROVIDER_DIR}/core.img" }
file-resource grub.cfg { host-path = "${PROVIDER_DIR}/grub.cfg" }
file-resource bzImage { host-path = "${PROVIDER_DIR}/bzImage" }
file-resource rootfs.img { host-path = "${PROVIDER_DIR}/rootfs.img" }
mbr mbr {
    bootstrap-code-host-path = "${PROVIDER_DIR}/boot.img"
    partition 0 {
        block-offset = 2048
        block-count = 65536
        type = 0xc
        boot = true
    }
    partition 1 {
        block-offset = 67584
        block-count = 131072
        type = 0x83
    }
}
task complete {
    on-init {
        mbr_write(mbr)
        fat_mkfs(2048, 65536)
        fat_mkdir(2048, "/boot")
        fat_mkdir(2048, "/boot/grub")
    }
    on-resource core.img { raw_write(1) }
    on-resource grub.cfg { fat_write(2048, "/boot/grub/grub.cfg") }
    on-resource bzImage { fat_write(2048, "/boot/bzImage") }
    on-resource rootfs.img { raw_write(67584) }
}
"#;

/// A squashfs with busybox (and its applets as links), the init script,
/// and `/etc/resolv.conf` pointing into `/run`.
fn root_filesystem(tree: &Path, image: &Path) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} missing: scripts/setup installs busybox-static"
    );
    let _ = std::fs::remove_dir_all(tree);
    for sub in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "run",
    ] {
        std::fs::create_dir_all(tree.join(sub)).expect("create the provider tree");
    }
    std::fs::copy(BUSYBOX, tree.join("bin/busybox")).expect("copy busybox");
    let applets = run_checked(Command::new(BUSYBOX).arg("--list-full"));
    for applet in applets.lines().filter(|a| !a.is_empty() && *a != "bin/busybox") {
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        let _ = std::os::unix::fs::symlink(target, tree.join(applet));
    }
    std::fs::write(tree.join("sbin/provider-init"), init_script()).expect("write provider-init");
    let mode = |path: &Path, bits: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).expect("chmod");
    };
    mode(&tree.join("sbin/provider-init"), 0o755);
    mode(&tree.join("bin/busybox"), 0o755);
    std::os::unix::fs::symlink("../run/resolv.conf", tree.join("etc/resolv.conf")).expect("link resolv.conf");
    let _ = std::fs::remove_file(image);
    run_checked(Command::new("mksquashfs").arg(tree).arg(image).args([
        "-noappend",
        "-quiet",
        "-no-progress",
        "-comp",
        "xz",
        "-all-root",
    ]));
}

/// Writes the provider image onto the raw disk `disk` (already sized),
/// its init fetching user-data from `userdata` (a URL on the test server).
pub fn write_disk(artifacts: &Artifacts, work: &Path, disk: &Path, userdata: &str) {
    let dir = work.join("provider");
    std::fs::create_dir_all(&dir).expect("create the provider directory");
    let boot_img = std::fs::read(Path::new(GRUB_DIR).join("boot.img")).expect("read GRUB's boot.img (grub-pc-bin)");
    std::fs::write(dir.join("boot.img"), &boot_img[..440]).expect("write boot.img");
    run_checked(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-d", GRUB_DIR, "-o"])
            .arg(dir.join("core.img"))
            .args(["-p", "(,msdos1)/boot/grub"])
            .args([
                "biosdisk",
                "part_msdos",
                "fat",
                "normal",
                "configfile",
                "linux",
                "echo",
                "serial",
                "terminal",
            ]),
    );
    std::fs::write(dir.join("grub.cfg"), grub_cfg(userdata)).expect("write grub.cfg");
    std::fs::copy(&artifacts.kernel, dir.join("bzImage")).expect("copy the kernel");
    root_filesystem(&dir.join("rootfs"), &dir.join("rootfs.img"));
    let conf = dir.join("provider.conf");
    std::fs::write(&conf, FWUP_CONF).expect("write provider.conf");
    let bundle = dir.join("provider.fw");
    run_checked(Command::new(&artifacts.host_loader).env("PROVIDER_DIR", &dir).args([
        "pack",
        path_str(&conf),
        "-o",
        path_str(&bundle),
    ]));
    artifacts.loader(&[
        "apply",
        path_str(&bundle),
        "--device",
        path_str(disk),
        "--task",
        "complete",
        "--progress",
        "none",
    ]);
}
