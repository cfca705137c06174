//! Whether this machine can jump at all, and what to tell the operator
//! when it cannot: read before anything is downloaded, and again to
//! explain a refused `kexec_file_load`.
//!
//! The usual causes, from the issues of nixos-anywhere and reinstall.sh:
//! Secure Boot with kernel lockdown (only signed kernels may be loaded),
//! a kernel signature policy without lockdown (`CONFIG_KEXEC_SIG_FORCE`),
//! kexec switched off until the next boot (`kexec_load_disabled`), kernels
//! built without kexec, and Xen PV guests, whose kernel the hypervisor
//! starts (kexec cannot replace it).

use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// What the running system says about kexec, read from `/sys` and `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub root_user: bool,
    pub x86_64: bool,
    /// `/sys/kernel/kexec_loaded` exists: the kernel has kexec at all.
    pub kexec_built_in: bool,
    /// `/proc/sys/kernel/kexec_load_disabled` is 1 (until reboot).
    pub kexec_disabled: bool,
    /// The active mode of `/sys/kernel/security/lockdown`: `none`,
    /// `integrity`, `confidentiality`; `None` without the LSM.
    pub lockdown: Option<String>,
    /// The EFI `SecureBoot` variable says on.
    pub secure_boot: bool,
    /// A Xen paravirtualized guest.
    pub xen_pv: bool,
}

/// Where `/sys` and `/proc` are (a fake tree in tests).
#[derive(Debug, Clone)]
pub struct SystemRoot {
    pub sys: PathBuf,
    pub proc: PathBuf,
}

impl Default for SystemRoot {
    fn default() -> Self {
        SystemRoot {
            sys: "/sys".into(),
            proc: "/proc".into(),
        }
    }
}

/// The EFI global variable GUID of `SecureBoot`.
const SECURE_BOOT_VAR: &str = "firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

impl Environment {
    pub fn read(root: &SystemRoot) -> Environment {
        let text = |path: PathBuf| std::fs::read_to_string(path).ok().map(|t| t.trim().to_string());
        let lockdown = text(root.sys.join("kernel/security/lockdown")).and_then(|t| {
            let start = t.find('[')?;
            let end = t[start..].find(']')?;
            Some(t[start + 1..start + end].to_string())
        });
        // efivarfs: 4 bytes of attributes, then the value byte.
        let secure_boot = std::fs::read(root.sys.join(SECURE_BOOT_VAR)).is_ok_and(|v| v.get(4) == Some(&1));
        let hypervisor = text(root.sys.join("hypervisor/type"));
        let guest_type = text(root.sys.join("hypervisor/guest_type"));
        // Older kernels have no guest_type; a PV guest has no ACPI either.
        let xen_pv = hypervisor.as_deref() == Some("xen")
            && match guest_type.as_deref() {
                Some(kind) => kind == "PV",
                None => !root.sys.join("firmware/acpi").exists(),
            };
        Environment {
            root_user: nix::unistd::geteuid().is_root(),
            x86_64: cfg!(target_arch = "x86_64"),
            kexec_built_in: root.sys.join("kernel/kexec_loaded").exists(),
            kexec_disabled: text(root.proc.join("sys/kernel/kexec_load_disabled")).as_deref() == Some("1"),
            lockdown,
            secure_boot,
            xen_pv,
        }
    }

    /// Why the jump cannot work here at all; `None` when it may.
    pub fn blocker(&self) -> Option<String> {
        if !self.x86_64 {
            return Some("loader takeover runs on x86_64 Linux only".into());
        }
        if self.xen_pv {
            return Some(
                "this is a Xen PV guest: the hypervisor starts its kernel, and kexec cannot replace it. \
                 Switch the server to an HVM type (on AWS: any Nitro instance type), or install through \
                 the provider's rescue system or ISO boot"
                    .into(),
            );
        }
        if !self.kexec_built_in {
            return Some(
                "this kernel was built without kexec (no /sys/kernel/kexec_loaded): it cannot start \
                 another kernel. Install through the provider's rescue system, ISO or iPXE boot instead"
                    .into(),
            );
        }
        if self.kexec_disabled {
            return Some(
                "kexec is switched off on this system (/proc/sys/kernel/kexec_load_disabled = 1, which \
                 stays set until a reboot): reboot without whatever sets it (a hardening sysctl), then \
                 run takeover again"
                    .into(),
            );
        }
        if !self.root_user {
            return Some("loader takeover must run as root (it loads a kernel)".into());
        }
        None
    }

    /// A warning worth printing before the load, when signature rules apply.
    pub fn signature_policy(&self) -> Option<String> {
        let locked = self.lockdown.as_deref().is_some_and(|l| l != "none");
        if !locked && !self.secure_boot {
            return None;
        }
        Some(format!(
            "{}: the running kernel will start the loader's kernel only if it is signed by a key it trusts",
            self.policy_words()
        ))
    }

    fn policy_words(&self) -> String {
        let mut words = Vec::new();
        if let Some(mode) = self.lockdown.as_deref().filter(|l| *l != "none") {
            words.push(format!("kernel lockdown is `{mode}`"));
        }
        if self.secure_boot {
            words.push("Secure Boot is on".into());
        }
        if words.is_empty() {
            "the kernel's signature policy (CONFIG_KEXEC_SIG_FORCE)".into()
        } else {
            words.join(" and ")
        }
    }

    /// The operator's sentence for a refused `kexec_file_load`.
    pub fn explain(&self, errno: Errno) -> String {
        let signed_only = format!(
            "{} and refused the loader's kernel ({errno}): it loads only kernels signed by a key it \
             trusts. Turn Secure Boot off in the provider's console, or sign the loader kernel \
             (sbsign) with a key enrolled in the machine's MOK list, and run takeover again",
            self.policy_words()
        );
        match errno {
            Errno::ENOSYS => "this kernel has no kexec_file_load (built without CONFIG_KEXEC_FILE): \
                              takeover needs it; install through the provider's rescue system, ISO or iPXE boot"
                .into(),
            Errno::EKEYREJECTED | Errno::EBADMSG | Errno::ENOKEY | Errno::ENODATA | Errno::ENOPKG => signed_only,
            Errno::EPERM if self.kexec_disabled => {
                "kexec is switched off (/proc/sys/kernel/kexec_load_disabled = 1) until a reboot".into()
            }
            Errno::EPERM if !self.root_user => "loading a kernel needs root".into(),
            Errno::EPERM if self.lockdown.as_deref().is_some_and(|l| l != "none") || self.secure_boot => signed_only,
            Errno::EPERM => format!(
                "the running kernel refused to load another one ({errno}): a security module \
                 (SELinux, AppArmor, a lockdown policy) forbids kexec here"
            ),
            Errno::ENOEXEC if self.secure_boot || self.lockdown.as_deref().is_some_and(|l| l != "none") => signed_only,
            Errno::ENOEXEC => format!(
                "the running kernel cannot load this image ({errno}): it is not an x86 bzImage it \
                 understands, or its kernel signature policy (CONFIG_KEXEC_SIG_FORCE) wants it signed"
            ),
            Errno::ENOMEM => format!(
                "not enough memory to place the loader's kernel and initramfs ({errno}): free memory \
                 (stop services) or use --fetch-bundle to keep the bundle out of the initramfs"
            ),
            Errno::EBUSY => format!("another kexec is in progress ({errno})"),
            other => format!("kexec_file_load failed: {other}"),
        }
    }
}

/// `MemAvailable` and `MemTotal` of `/proc/meminfo`, in bytes.
pub fn memory(proc: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(proc.join("meminfo")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("MemAvailable:")?, field("MemTotal:")?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &[u8])]) -> (tempfile::TempDir, SystemRoot) {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let root = SystemRoot {
            sys: dir.path().join("sys"),
            proc: dir.path().join("proc"),
        };
        (dir, root)
    }

    fn env(files: &[(&str, &[u8])]) -> Environment {
        let (_dir, root) = tree(files);
        Environment {
            root_user: true,
            ..Environment::read(&root)
        }
    }

    #[test]
    fn a_plain_cloud_vm_may_jump() {
        let e = env(&[("sys/kernel/kexec_loaded", b"0\n"), ("sys/firmware/acpi/tables/x", b"")]);
        assert_eq!(e.blocker(), None);
        assert_eq!(e.signature_policy(), None);
        assert!(e.explain(Errno::EPERM).contains("security module"));
    }

    #[test]
    fn lockdown_and_secure_boot_are_named() {
        let e = env(&[
            ("sys/kernel/kexec_loaded", b"0\n"),
            ("sys/kernel/security/lockdown", b"none [integrity] confidentiality\n"),
            (&format!("sys/{SECURE_BOOT_VAR}"), &[6, 0, 0, 0, 1]),
        ]);
        assert_eq!(e.lockdown.as_deref(), Some("integrity"));
        assert!(e.secure_boot);
        assert_eq!(e.blocker(), None, "a signed kernel could still load");
        let warning = e.signature_policy().unwrap();
        assert!(
            warning.starts_with("kernel lockdown is `integrity` and Secure Boot is on"),
            "{warning}"
        );
        for errno in [Errno::EPERM, Errno::EKEYREJECTED, Errno::ENOEXEC] {
            let text = e.explain(errno);
            assert!(
                text.contains("Secure Boot is on") && text.contains("signed by a key"),
                "{text}"
            );
        }
    }

    #[test]
    fn xen_pv_no_kexec_and_disabled_kexec_block_the_jump() {
        let pv = env(&[
            ("sys/hypervisor/type", b"xen\n"),
            ("sys/hypervisor/guest_type", b"PV\n"),
        ]);
        assert!(pv.blocker().unwrap().contains("Xen PV guest"));
        let hvm = env(&[
            ("sys/hypervisor/type", b"xen\n"),
            ("sys/hypervisor/guest_type", b"HVM\n"),
            ("sys/kernel/kexec_loaded", b"0\n"),
        ]);
        assert_eq!(hvm.blocker(), None);
        let old_pv = env(&[("sys/hypervisor/type", b"xen\n"), ("sys/kernel/kexec_loaded", b"0\n")]);
        assert!(old_pv.xen_pv, "no guest_type and no ACPI: PV");
        let none = env(&[]);
        assert!(none.blocker().unwrap().contains("built without kexec"));
        assert!(none.explain(Errno::ENOSYS).contains("CONFIG_KEXEC_FILE"));
        let disabled = env(&[
            ("sys/kernel/kexec_loaded", b"0\n"),
            ("proc/sys/kernel/kexec_load_disabled", b"1\n"),
        ]);
        assert!(disabled.blocker().unwrap().contains("kexec_load_disabled = 1"));
    }

    #[test]
    fn meminfo_fields_are_bytes() {
        let (_dir, root) = tree(&[(
            "proc/meminfo",
            b"MemTotal:         492000 kB\nMemFree:  100 kB\nMemAvailable:     401000 kB\n",
        )]);
        assert_eq!(memory(&root.proc), Some((401000 * 1024, 492000 * 1024)));
    }
}
