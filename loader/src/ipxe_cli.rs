//! `loader ipxe`: prints the iPXE chain script (see [`crate::ipxe`]).

use crate::ipxe::{chain_script, BundleDelivery, ChainOptions};

#[derive(clap::Args)]
pub struct IpxeArgs {
    /// URL of the folder holding bzImage and initramfs (default: relative to the script).
    #[arg(long)]
    base_url: Option<String>,
    #[arg(long, default_value = "bzImage")]
    kernel: String,
    #[arg(long, default_value = "initramfs")]
    initramfs: String,
    /// iPXE downloads this bundle and injects it at /root/install.fw (needs RAM for it).
    #[arg(long, group = "delivery")]
    bundle: Option<String>,
    /// iPXE loads this cpio made by `loader initramfs --wrap-bundle` (UEFI iPXE).
    #[arg(long, group = "delivery")]
    bundle_cpio: Option<String>,
    /// The loader streams the bundle from this URL itself (loader.url=; no iPXE HTTPS needed).
    #[arg(long, group = "delivery")]
    fetch_bundle: Option<String>,
    #[command(flatten)]
    kernel_args: KernelArgs,
}

/// The kernel command line flags `loader ipxe` and `loader iso` share.
#[derive(clap::Args)]
pub struct KernelArgs {
    /// console= values in order; the last becomes /dev/console. Default: ttyS0,115200 then tty0.
    #[arg(long = "console")]
    consoles: Vec<String>,
    /// loader.NAME=VALUE option, given as NAME=VALUE. Repeatable.
    #[arg(long = "option", value_name = "NAME=VALUE")]
    options: Vec<String>,
    /// A raw kernel parameter (e.g. ip=dhcp). Repeatable.
    #[arg(long = "cmdline", value_name = "PARAM")]
    cmdline: Vec<String>,
}

impl KernelArgs {
    /// Sets the consoles, `loader.*` options and extra parameters of `opts`.
    pub fn apply_to(self, opts: &mut ChainOptions) -> Result<(), String> {
        if !self.consoles.is_empty() {
            opts.consoles = self.consoles;
        }
        for option in &self.options {
            let (name, value) = option
                .split_once('=')
                .ok_or_else(|| format!("--option {option}: expected NAME=VALUE"))?;
            opts.loader_options
                .push((name.trim_start_matches("loader.").to_string(), value.to_string()));
        }
        opts.extra_params = self.cmdline;
        Ok(())
    }
}

pub fn run(args: IpxeArgs) -> Result<(), String> {
    let mut opts = ChainOptions {
        base_url: args.base_url,
        kernel: args.kernel,
        initramfs: args.initramfs,
        ..ChainOptions::default()
    };
    opts.bundle = match (args.bundle, args.bundle_cpio, args.fetch_bundle) {
        (Some(u), _, _) => BundleDelivery::Initrd(u),
        (_, Some(u), _) => BundleDelivery::WrappedCpio(u),
        (_, _, Some(u)) => BundleDelivery::LoaderFetches(u),
        _ => BundleDelivery::None,
    };
    args.kernel_args.apply_to(&mut opts)?;
    print!("{}", chain_script(&opts).map_err(|e| e.to_string())?);
    Ok(())
}
