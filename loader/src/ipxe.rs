//! The iPXE chain script that boots the loader.
//!
//! A machine that runs iPXE (Vultr's "iPXE chain URL", a PXE server, QEMU's
//! ROM) fetches this script, then the loader kernel and initramfs, and boots
//! them with the `loader.*` options on the kernel command line. The bundle
//! reaches the loader in one of three ways ([`BundleDelivery`]): iPXE
//! downloads it and injects it at `/root/install.fw`; iPXE loads a cpio that
//! already holds it there (for UEFI iPXE builds that cannot name initrd
//! files; see [`crate::initramfs::wrap_bundle`]); or the loader downloads it
//! itself from `loader.url=`, which needs no HTTPS in iPXE and no RAM for
//! the whole bundle.
//!
//! iPXE has no quoting: it splits a script line on whitespace, expands
//! `${name}`, treats a word starting with `#` as a comment and `||`, `&&`,
//! `;` as command separators, then joins the kernel's arguments with single
//! spaces. Values are therefore checked, not escaped: anything iPXE would
//! change is refused with the reason, and a value with single inner spaces
//! is written as `name="a b"`, which survives the re-joining and which the
//! kernel unquotes.

/// Longest kernel command line x86 Linux accepts (2048 bytes with the NUL).
pub const CMDLINE_MAX: usize = 2047;

/// The injected bundle's path inside the initramfs.
const BUNDLE_PATH: &str = "/root/install.fw";

/// Errors making a chain script; each names the value to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpxeError {
    #[error("URL {url:?}: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("kernel parameter name {0:?}: use letters, digits, `_`, `-` and `.` only")]
    BadName(String),
    #[error("kernel parameter {name}={value:?}: {reason}")]
    BadValue {
        name: String,
        value: String,
        reason: &'static str,
    },
    #[error("kernel parameter loader.{0} is given twice")]
    Duplicate(String),
    #[error("the kernel command line would be {len} bytes (with the image name iPXE adds on UEFI); Linux takes at most {CMDLINE_MAX}")]
    CmdlineTooLong { len: usize },
}

/// How the bundle reaches the loader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BundleDelivery {
    /// No bundle from the script: the loader's own configuration names it.
    #[default]
    None,
    /// iPXE downloads this bundle and places it at `/root/install.fw`.
    Initrd(String),
    /// iPXE loads this cpio, made by `wrap_bundle`, which holds `/root/install.fw`.
    WrappedCpio(String),
    /// The loader downloads the bundle itself from this http(s) URL (`loader.url=`).
    LoaderFetches(String),
}

/// What the chain script boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOptions {
    /// Directory URL of the kernel and initramfs; `None` means relative to
    /// the script itself, so a published folder works wherever it is uploaded.
    pub base_url: Option<String>,
    /// Kernel file name under `base_url`.
    pub kernel: String,
    /// Initramfs file name under `base_url`.
    pub initramfs: String,
    pub bundle: BundleDelivery,
    /// `console=` values in order; the last one becomes `/dev/console`.
    pub consoles: Vec<String>,
    /// `loader.NAME=VALUE` options, written in this order.
    pub loader_options: Vec<(String, String)>,
    /// Further kernel parameters, `name` or `name=value` (e.g. `ip=dhcp`).
    pub extra_params: Vec<String>,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            base_url: None,
            kernel: "bzImage".to_owned(),
            initramfs: "initramfs".to_owned(),
            bundle: BundleDelivery::None,
            consoles: vec!["ttyS0,115200".to_owned(), "tty0".to_owned()],
            loader_options: Vec::new(),
            extra_params: Vec::new(),
        }
    }
}

/// The `#!ipxe` script for `options`.
pub fn chain_script(options: &ChainOptions) -> Result<String, IpxeError> {
    let kernel_url = checked_url(join(options.base_url.as_deref(), &options.kernel))?;
    let initramfs_url = checked_url(join(options.base_url.as_deref(), &options.initramfs))?;
    let cmdline = kernel_cmdline(options)?;

    let kernel_line = if cmdline.is_empty() {
        format!("kernel {kernel_url}")
    } else {
        format!("kernel {kernel_url} {cmdline}")
    };
    let mut lines = vec![
        "#!ipxe".to_owned(),
        "# Boot the loader; it installs the bundle onto this machine's disk.".to_owned(),
        kernel_line,
        format!("initrd {initramfs_url}"),
    ];
    match &options.bundle {
        BundleDelivery::Initrd(url) => {
            lines.push(format!("initrd {} {BUNDLE_PATH}", checked_url(url.clone())?));
        }
        BundleDelivery::WrappedCpio(url) => {
            lines.push(format!("initrd {}", checked_url(url.clone())?));
        }
        BundleDelivery::None | BundleDelivery::LoaderFetches(_) => {}
    }
    lines.push("boot".to_owned());
    Ok(lines.join("\n") + "\n")
}

/// The kernel command line the script passes: consoles, `loader.*`
/// options, then the extra parameters, each checked to survive iPXE.
pub fn kernel_cmdline(options: &ChainOptions) -> Result<String, IpxeError> {
    let mut params = Vec::new();
    if let BundleDelivery::WrappedCpio(url) = &options.bundle {
        // UEFI iPXE builds without the LoadFile2 initrd protocol (Debian's
        // ipxe-qemu, for one) start the kernel through its EFI stub, which
        // then loads only the initrds named here, by iPXE's image names
        // (the URLs' last parts). Without them the kernel gets no initramfs
        // at all. Newer iPXE hands initrds over itself and the stub then
        // ignores these words; BIOS boots ignore them too.
        for initrd in [&options.initramfs, url] {
            params.push(param("initrd", image_name(initrd))?.ipxe_word());
        }
    }
    params.extend(loader_params(options)?.iter().map(KernelParam::ipxe_word));
    let cmdline = params.join(" ");
    // iPXE's UEFI image loader passes "<image name> <cmdline>" to the kernel.
    let len = options.kernel.len() + 1 + cmdline.len();
    if len > CMDLINE_MAX {
        return Err(IpxeError::CmdlineTooLong { len });
    }
    Ok(cmdline)
}

/// One checked kernel parameter, `name` or `name=value`, the value as the
/// kernel should see it (unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelParam {
    pub name: String,
    pub value: Option<String>,
}

impl KernelParam {
    /// The parameter as a word of an iPXE `kernel` line: `name="a b"` when
    /// the value has inner spaces (iPXE passes the quotes on, the kernel
    /// removes them).
    pub fn ipxe_word(&self) -> String {
        match &self.value {
            None => self.name.clone(),
            Some(value) if value.contains(' ') => format!("{}=\"{value}\"", self.name),
            Some(value) => format!("{}={value}", self.name),
        }
    }
}

/// The loader's parameters in command-line order: consoles, `loader.*`
/// options (`loader.url=` first when the loader fetches the bundle), then
/// the extra parameters; each checked so that every boot loader the
/// project writes for (iPXE, GRUB) passes it on unchanged. Shared by the
/// chain script and the rescue ISO, so an option works in both or in neither.
pub fn loader_params(options: &ChainOptions) -> Result<Vec<KernelParam>, IpxeError> {
    let mut params = Vec::new();
    for console in &options.consoles {
        params.push(param("console", console)?);
    }
    let mut loader_options = options.loader_options.clone();
    if let BundleDelivery::LoaderFetches(url) = &options.bundle {
        let url = checked_url(url.clone())?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(IpxeError::BadUrl {
                url: url.clone(),
                reason: "the loader fetches it itself, so it must be an absolute http:// or https:// URL",
            });
        }
        loader_options.insert(0, ("url".to_owned(), url));
    }
    let mut seen = Vec::new();
    for (name, value) in &loader_options {
        if seen.contains(&name) {
            return Err(IpxeError::Duplicate(name.clone()));
        }
        seen.push(name);
        params.push(param(&format!("loader.{name}"), value)?);
    }
    for extra in &options.extra_params {
        match extra.split_once('=') {
            Some((name, value)) => params.push(param(name, value)?),
            None => params.push(KernelParam {
                name: checked_name(extra)?.to_owned(),
                value: None,
            }),
        }
    }
    Ok(params)
}

/// iPXE's name for an image fetched from `url`: its last path part.
fn image_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// `name=value`, checked to reach the kernel unchanged through iPXE and
/// GRUB (which re-quotes a word with spaces and backslash-escapes quotes
/// and backslashes, which the kernel would keep).
fn param(name: &str, value: &str) -> Result<KernelParam, IpxeError> {
    let name = checked_name(name)?;
    let bad = |reason| IpxeError::BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    if value.chars().any(|c| c.is_control()) {
        return Err(bad("control characters (tabs, newlines) cannot be passed"));
    }
    if value.contains('"') {
        return Err(bad("the kernel cannot unquote a `\"` inside a value"));
    }
    if value.contains(['\\', '\'']) {
        return Err(bad("GRUB would pass `\\` and `'` on with a backslash the kernel keeps"));
    }
    if value.contains("${") {
        return Err(bad("iPXE would expand `${…}` as one of its settings"));
    }
    let checked = KernelParam {
        name: name.to_owned(),
        value: Some(value.to_owned()),
    };
    if !value.contains(' ') {
        return Ok(checked);
    }
    if value.starts_with(' ') || value.ends_with(' ') || value.contains("  ") {
        return Err(bad("iPXE collapses leading, trailing and repeated spaces"));
    }
    if value
        .split(' ')
        .any(|word| word.starts_with('#') || matches!(word, "||" | "&&" | ";"))
    {
        return Err(bad(
            "iPXE reads a word starting with `#`, or `||`, `&&`, `;`, as script syntax",
        ));
    }
    Ok(checked)
}

fn checked_name(name: &str) -> Result<&str, IpxeError> {
    let valid = !name.is_empty()
        && !name.starts_with(['.', '-', '#'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(name)
    } else {
        Err(IpxeError::BadName(name.to_owned()))
    }
}

/// A URL iPXE will read as one word and not rewrite.
fn checked_url(url: String) -> Result<String, IpxeError> {
    let reason = if url.is_empty() {
        Some("empty")
    } else if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("spaces and control characters must be percent-encoded (%20)")
    } else if url.contains("${") {
        Some("iPXE would expand `${…}` as one of its settings")
    } else if url.starts_with('#') {
        Some("iPXE would read it as a comment")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IpxeError::BadUrl { url, reason }),
        None => Ok(url),
    }
}

fn join(base: Option<&str>, file: &str) -> String {
    match base {
        None | Some("") => file.to_owned(),
        Some(base) if base.ends_with('/') => format!("{base}{file}"),
        Some(base) => format!("{base}/{file}"),
    }
}
