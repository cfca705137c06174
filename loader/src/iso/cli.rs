//! `loader iso`: the command-line face of the rescue ISO builder.

use std::path::PathBuf;

use super::IsoSpec;
use crate::ipxe::{BundleDelivery, ChainOptions};
use crate::ipxe_cli::KernelArgs;

#[derive(clap::Args)]
pub struct IsoArgs {
    /// The loader kernel (scripts/build-kernel prints its path).
    #[arg(long)]
    kernel: PathBuf,
    /// The loader initramfs (loader initramfs / scripts/build-initramfs).
    #[arg(long)]
    initramfs: PathBuf,
    /// Carry this bundle on the medium; it is installed from /root/install.fw.
    #[arg(long, group = "delivery")]
    bundle: Option<PathBuf>,
    /// The loader streams the bundle from this URL itself (loader.url=).
    #[arg(long, group = "delivery")]
    fetch_bundle: Option<String>,
    /// Seconds the boot menu waits before its default entry.
    #[arg(long, default_value_t = 5)]
    timeout: u32,
    #[command(flatten)]
    kernel_args: KernelArgs,
    /// Output file (a hybrid ISO: attach it as a CD or write it to a USB stick).
    #[arg(short, long)]
    output: PathBuf,
}

/// `loader iso`: build the rescue ISO and print its path and size.
pub fn run(args: IsoArgs) -> Result<(), String> {
    let mut cmdline = ChainOptions::default();
    if let Some(url) = args.fetch_bundle {
        cmdline.bundle = BundleDelivery::LoaderFetches(url);
    }
    args.kernel_args.apply_to(&mut cmdline)?;
    let spec = IsoSpec {
        kernel: args.kernel,
        initramfs: args.initramfs,
        bundle: args.bundle,
        cmdline,
        timeout_secs: args.timeout,
    };
    let epoch = crate::initramfs::source_date_epoch().map_err(|e| e.to_string())?;
    super::build(&spec, epoch, &args.output).map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&args.output).map_err(|e| e.to_string())?.len();
    println!("{}\n{size} bytes", args.output.display());
    Ok(())
}
