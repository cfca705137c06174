//! The loader this project replaces, rebuilt from what the machine has, to
//! race against: a busybox-static + fwup initramfs running the original
//! flow (mount, wait for the disk node, `fwup -a -i /root/install.fw -d
//! DISK -t complete`, reboot). fwup is dynamically linked, so it goes in
//! with the shared libraries `ldd` names, at the same paths. Built at
//! bench time from `FWUP` (default `/opt/fwup/bin/fwup`, else `fwup` on
//! PATH) and Debian's `busybox-static`; nothing of it is committed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts::{path_str, run_checked};

/// The busybox the reference runs (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The fwup binary to race: `FWUP`, else `/opt/fwup/bin/fwup`, else `fwup`
/// on PATH; `None` when there is none.
pub fn find_fwup() -> Option<PathBuf> {
    let named = std::env::var_os("FWUP").map(PathBuf::from);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates = named
        .into_iter()
        .chain([PathBuf::from("/opt/fwup/bin/fwup")])
        .chain(std::env::split_paths(&path).map(|d| d.join("fwup")));
    candidates.find(|p| p.is_file())
}

/// The `/init` of the reference: what a buildroot busybox loader runs.
/// Its console lines are the markers of `timing::REFERENCE`.
fn init_script(disk: &str) -> String {
    format!(
        r#"#!/bin/busybox sh
# The original loader's flow: mount, wait for the disk, fwup, reboot.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "reference: start"
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
while [ ! -b {disk} ]; do /bin/busybox usleep 10000; done
/bin/fwup -a -n -i /root/install.fw -d {disk} -t complete
echo "reference: fwup exited $?"
/bin/busybox reboot -f
"#
    )
}

/// Builds the reference initramfs for `disk` at `out`, compressed by
/// `compress` (a shell command from stdin to stdout, e.g. `gzip -9n`).
pub fn build_initramfs(fwup: &Path, disk: &str, compress: &str, out: &Path) -> Result<(), String> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.is_file() {
        return Err(format!("{BUSYBOX} not found (Debian package busybox-static)"));
    }
    // ldd fails on a static binary ("not a dynamic executable").
    let ldd = Command::new("ldd")
        .arg(busybox)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    if String::from_utf8_lossy(&ldd.stdout).contains("=>") {
        return Err(format!("{BUSYBOX} is dynamically linked; install busybox-static"));
    }
    let root = out.with_extension("root");
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["bin", "dev", "proc", "sys", "root", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| e.to_string())?;
    }
    let copy = |src: &Path, dest: &str| -> Result<(), String> {
        let to = root.join(dest.trim_start_matches('/'));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::copy(src, &to)
            .map(drop)
            .map_err(|e| format!("copy {}: {e}", src.display()))
    };
    copy(busybox, "bin/busybox")?;
    copy(fwup, "bin/fwup")?;
    for lib in shared_libraries(fwup)? {
        copy(Path::new(&lib), &lib)?;
    }
    let init = root.join("init");
    std::fs::write(&init, init_script(disk)).map_err(|e| e.to_string())?;
    run_checked(Command::new("chmod").args(["0755", path_str(&init)]));
    let pack = format!(
        "cd '{}' && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | {compress} > '{}'",
        root.display(),
        out.display()
    );
    run_checked(Command::new("sh").args(["-c", &pack]));
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// The absolute paths of the shared libraries and the dynamic loader
/// `ldd` lists for `binary`.
fn shared_libraries(binary: &Path) -> Result<Vec<String>, String> {
    let out = run_checked(Command::new("ldd").arg(binary));
    let libs: Vec<String> = out
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            }?;
            path.starts_with('/').then(|| path.to_string())
        })
        .collect();
    if !libs.iter().any(|l| l.contains("ld-linux")) {
        return Err(format!("ldd {} named no dynamic loader: {out}", binary.display()));
    }
    Ok(libs)
}
