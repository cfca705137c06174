//! The rescue ISO's GRUB menu (`/loader/grub.cfg`), written as text.
//!
//! The menu boots an installed system when a disk holds one, so an ISO left
//! attached (or first in the boot order) never loops into a second
//! install, and keeps the loader one keypress away for a deliberate
//! reinstall:
//!
//! - "installed": found when a partition outside the medium holds a GRUB
//!   configuration in one of the usual places (`/boot/grub/grub.cfg`,
//!   `/grub/grub.cfg` for a separate `/boot`, and the `grub2` spellings).
//!   It runs that configuration with `$root` and `$prefix` pointing at it,
//!   as the disk's own GRUB would, so it needs neither the disk's MBR boot
//!   code nor its EFI binary (both are what a damaged disk tends to lose).
//!   When that configuration cannot boot, GRUB stops at this menu, without
//!   a timeout: no automatic fallback to the loader, whose install would
//!   not mend a configuration it does not write and would then loop.
//! - "install": the loader with the ISO's kernel command line; the default
//!   when no installed system is found.
//! - "install-repair" and "install-complete": the same with
//!   `loader.task=repair` (reinstalls keeping the data partition, where the
//!   disk's layout is the bundle's) and `loader.task=complete` (wipes the
//!   disk), offered when the command line does not set a task itself.
//!
//! The medium's own files live under `/loader`, never `/boot/grub`, so the
//! search cannot find the ISO itself; the disk of `$root` (this medium) is
//! skipped as well, for a USB stick whose EFI partition GRUB also sees.

use crate::ipxe::{KernelParam, CMDLINE_MAX};

/// Where the ISO's files are, as GRUB names them on the medium.
pub const KERNEL: &str = "/loader/bzImage";
pub const INITRAMFS: &str = "/loader/initramfs";
pub const BUNDLE_CPIO: &str = "/loader/bundle.cpio";

/// GRUB puts `BOOT_IMAGE=<kernel path> ` in front of the command line.
const BOOT_IMAGE_PREFIX: &str = "BOOT_IMAGE=";

/// Where an installed system's GRUB configuration may be, in search order.
const INSTALLED_CONFIGS: [&str; 4] = [
    "/boot/grub/grub.cfg",
    "/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/grub2/grub.cfg",
];

/// What the menu offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// What the install entries install, e.g. "Example 2.0.0" or "the
    /// bundle from https://…".
    pub installs: String,
    /// The loader's kernel parameters (checked by [`crate::ipxe::loader_params`]).
    pub params: Vec<KernelParam>,
    /// Whether `/loader/bundle.cpio` is on the medium.
    pub bundle_cpio: bool,
    /// Seconds the menu waits before its default.
    pub timeout_secs: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MenuError {
    #[error("the kernel command line would be {len} bytes (with the `BOOT_IMAGE=` GRUB adds); Linux takes at most {CMDLINE_MAX}")]
    CmdlineTooLong { len: usize },
}

/// The text of `/loader/grub.cfg`.
pub fn grub_cfg(menu: &Menu) -> Result<String, MenuError> {
    check_length(&menu.params)?;
    let linux = linux_line(&menu.params);
    let mut initrd = format!("initrd {INITRAMFS}");
    if menu.bundle_cpio {
        initrd.push(' ');
        initrd.push_str(BUNDLE_CPIO);
    }
    let sets_task = menu.params.iter().any(|p| p.name == "loader.task");

    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(&format!("set timeout={}\nset timeout_style=menu\n", menu.timeout_secs));
    out.push_str(CONSOLE);
    out.push_str(&find_installed());
    out.push_str(INSTALLED_ENTRY);
    out.push_str(&install_entry(
        &format!("Install {}", menu.installs),
        "install",
        &linux,
        &initrd,
    ));
    if !sets_task {
        for (verb, id, task, effect) in TASK_ENTRIES {
            let title = format!("{verb} {}, {effect} (loader.task={task})", menu.installs);
            let linux = format!("{linux} loader.task={task}");
            out.push_str(&install_entry(&title, id, &linux, &initrd));
        }
    }
    Ok(out)
}

/// When the command line leaves the task to `auto` (which upgrades this
/// product, leaves this very bundle alone and refuses anything else), the
/// two rescues an operator at the console may want without editing a line:
/// (title verb, entry id, `loader.task`, what it does).
const TASK_ENTRIES: [(&str, &str, &str, &str); 2] = [
    ("Repair", "install-repair", "repair", "keeping the data partition"),
    ("Install", "install-complete", "complete", "wiping the whole disk"),
];

/// A menu entry that starts the loader from this medium. It sets `$root`
/// back to the medium first: the installed entry changed it before
/// failing over to this one.
fn install_entry(title: &str, id: &str, linux: &str, initrd: &str) -> String {
    format!(
        "\nmenuentry {} --id {id} {{\n    set root=\"$medium_root\"\n    echo 'Starting the loader...'\n    {linux}\n    {initrd}\n}}\n",
        quote(title)
    )
}

const HEADER: &str = "\
# Rescue menu written by `loader iso`. It boots the installed system when a
# disk holds one (so a medium left attached never installs twice), and
# starts the loader when none does or when chosen below.
";

const CONSOLE: &str = "\
# The menu on the first serial port and the screen alike (IPMI serial-over-
# LAN, a provider's web console).
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
";

/// GRUB script that sets `installed` to the partition (e.g. `hd0,msdos1`)
/// holding an installed GRUB configuration and `installed_dir` to its
/// directory, skipping every partition of this medium. (A loop over the
/// devices rather than `search --file`, which prints an error for every
/// place it finds nothing.)
fn find_installed() -> String {
    let dirs: Vec<&str> = INSTALLED_CONFIGS
        .iter()
        .filter_map(|c| c.strip_suffix("/grub.cfg"))
        .collect();
    format!(
        r#"
# An installed system: a GRUB configuration on a disk other than this medium.
set medium_root="$root"
regexp --set=medium '^([^,]+)' "$root"
set installed=""
for dev in (*); do
    regexp --set=dev_disk '^\(([^,)]+)' "$dev"
    if [ "$dev_disk" != "$medium" ]; then
        for dir in {dirs}; do
            if [ -z "$installed" ]; then
                if [ -f "$dev$dir/grub.cfg" ]; then
                    regexp --set=installed '^\((.*)\)$' "$dev"
                    set installed_dir="$dir"
                fi
            fi
        done
    fi
done
export installed installed_dir
"#,
        dirs = dirs.join(" ")
    )
}

const INSTALLED_ENTRY: &str = r#"
if [ -n "$installed" ]; then
    set default=installed
    menuentry "Boot the installed system on ($installed)" --id installed {
        echo "Booting the installed system: configfile ($installed)$installed_dir/grub.cfg"
        set root="$installed"
        set prefix="($installed)$installed_dir"
        configfile "$prefix/grub.cfg"
    }
else
    set default=install
fi
"#;

/// `linux /loader/bzImage …`, every parameter one GRUB word: single-quoted
/// unless plainly safe, so GRUB expands nothing (`$`, wildcards) and a
/// value with spaces stays one argument (GRUB then passes it to the kernel
/// as `"name=a b"`, which the kernel unquotes).
fn linux_line(params: &[KernelParam]) -> String {
    let mut line = format!("linux {KERNEL}");
    for param in params {
        line.push(' ');
        line.push_str(&word(&as_argument(param)));
    }
    line
}

fn as_argument(param: &KernelParam) -> String {
    match &param.value {
        Some(value) => format!("{}={value}", param.name),
        None => param.name.clone(),
    }
}

/// A GRUB script word that stands for exactly `text`.
fn word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/=+@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        quote(text)
    }
}

/// Single-quoted for GRUB script (as for sh: `'` itself is written `'\''`).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command line the kernel gets: `BOOT_IMAGE=/loader/bzImage`, then
/// each argument, quoted by GRUB when it holds a space.
fn check_length(params: &[KernelParam]) -> Result<(), MenuError> {
    // The longest variant: the "wiping" entry adds loader.task=complete.
    let mut len = BOOT_IMAGE_PREFIX.len() + KERNEL.len() + " loader.task=complete".len();
    for param in params {
        let argument = as_argument(param);
        len += 1 + argument.len() + if argument.contains(' ') { 2 } else { 0 };
    }
    if len > CMDLINE_MAX {
        return Err(MenuError::CmdlineTooLong { len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, value: Option<&str>) -> KernelParam {
        KernelParam {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    fn menu(params: Vec<KernelParam>) -> Menu {
        Menu {
            installs: "Example 2.0.0".to_owned(),
            params,
            bundle_cpio: true,
            timeout_secs: 5,
        }
    }

    #[test]
    fn words_are_quoted_only_when_grub_would_change_them() {
        assert_eq!(word("console=ttyS0,115200"), "console=ttyS0,115200");
        assert_eq!(word("loader.url=https://h/a.fw"), "loader.url=https://h/a.fw");
        assert_eq!(word("loader.env.X=a b"), "'loader.env.X=a b'");
        assert_eq!(word("loader.env.X=$root"), "'loader.env.X=$root'");
        assert_eq!(word("loader.env.X=*.fw"), "'loader.env.X=*.fw'");
        assert_eq!(word("loader.env.X=a;b"), "'loader.env.X=a;b'");
        assert_eq!(quote("Bob's system"), r"'Bob'\''s system'");
    }

    #[test]
    fn menu_boots_the_installed_system_first_and_offers_both_installs() {
        let cfg = grub_cfg(&menu(vec![
            param("console", Some("ttyS0,115200")),
            param("loader.disk", Some("/dev/vda")),
            param("ip", Some("dhcp")),
        ]))
        .unwrap();
        assert!(cfg.contains("set timeout=5\n"), "{cfg}");
        assert!(cfg.contains("set default=installed\n"), "{cfg}");
        assert!(
            !cfg.contains("fallback"),
            "no automatic reinstall after a failed boot: {cfg}"
        );
        assert!(cfg.contains("else\n    set default=install\n"), "{cfg}");
        let titles: Vec<&str> = cfg
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("menuentry "))
            .collect();
        assert!(titles[0].starts_with("\"Boot the installed system"), "{titles:?}");
        assert!(titles[1].ends_with("--id install {"), "{titles:?}");
        // The installed entry moves $root to the disk; the loader entries
        // move it back before loading from the medium.
        assert!(
            cfg.contains("    set root=\"$medium_root\"\n    echo 'Starting the loader...'\n    linux /loader/bzImage console=ttyS0,115200 loader.disk=/dev/vda ip=dhcp\n    initrd /loader/initramfs /loader/bundle.cpio\n"),
            "{cfg}"
        );
        assert!(
            cfg.contains(
                "menuentry 'Install Example 2.0.0, wiping the whole disk (loader.task=complete)' --id install-complete"
            ),
            "{cfg}"
        );
        assert!(cfg.contains("ip=dhcp loader.task=complete\n"), "{cfg}");
        assert!(
            cfg.contains(
                "menuentry 'Repair Example 2.0.0, keeping the data partition (loader.task=repair)' --id install-repair"
            ),
            "{cfg}"
        );
        assert!(cfg.contains("ip=dhcp loader.task=repair\n"), "{cfg}");
        assert!(
            cfg.contains("for dir in /boot/grub /grub /boot/grub2 /grub2; do"),
            "{cfg}"
        );
    }

    #[test]
    fn a_task_on_the_command_line_drops_the_wiping_entry() {
        let cfg = grub_cfg(&menu(vec![param("loader.task", Some("repair"))])).unwrap();
        assert!(
            !cfg.contains("install-complete") && !cfg.contains("install-repair"),
            "{cfg}"
        );
        assert!(cfg.contains("linux /loader/bzImage loader.task=repair\n"), "{cfg}");
    }

    #[test]
    fn without_a_bundle_on_the_medium_only_the_initramfs_is_loaded() {
        let mut m = menu(vec![]);
        m.bundle_cpio = false;
        let cfg = grub_cfg(&m).unwrap();
        assert!(cfg.contains("    initrd /loader/initramfs\n"), "{cfg}");
        assert!(!cfg.contains("bundle.cpio"), "{cfg}");
    }

    #[test]
    fn command_line_length_counts_what_grub_adds() {
        // BOOT_IMAGE=/loader/bzImage + " loader.task=complete" = 47 bytes.
        let fixed = "BOOT_IMAGE=/loader/bzImage loader.task=complete".len();
        let fits = "x".repeat(CMDLINE_MAX - fixed - 1 - "loader.env.A=".len());
        assert!(grub_cfg(&menu(vec![param("loader.env.A", Some(&fits))])).is_ok());
        let too_long = format!("{fits}x");
        assert_eq!(
            grub_cfg(&menu(vec![param("loader.env.A", Some(&too_long))])),
            Err(MenuError::CmdlineTooLong { len: CMDLINE_MAX + 1 })
        );
        // A value with a space costs the two quotes GRUB puts around it.
        let spaced = format!("{} y", &fits[..fits.len() - 3]);
        assert_eq!(
            grub_cfg(&menu(vec![param("loader.env.A", Some(&spaced))])),
            Err(MenuError::CmdlineTooLong { len: CMDLINE_MAX + 1 })
        );
    }
}
