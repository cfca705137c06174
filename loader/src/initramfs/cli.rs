//! `loader initramfs`: the command-line face of the initramfs builder.

use std::fs;
use std::io::BufWriter;
use std::path::PathBuf;

use super::{Compression, ExtraFile, InitramfsSpec};
use crate::initramfs;

#[derive(clap::Args)]
pub struct InitramfsArgs {
    /// The static loader binary that becomes /init (default: this executable).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Instead: wrap this bundle as /root/install.fw in an uncompressed cpio (for UEFI iPXE).
    #[arg(long, conflicts_with = "init")]
    wrap_bundle: Option<PathBuf>,
    /// Default configuration, installed as /etc/loader.conf.
    #[arg(long)]
    config: Option<PathBuf>,
    /// fwup public key file (fwup-key.pub): bundles must then be signed by one of the keys. Repeatable.
    #[arg(long = "public-key")]
    public_keys: Vec<PathBuf>,
    /// CA certificate (PEM) trusted for https:// bundles and reports, copied to /etc/loader/ca/. Repeatable.
    #[arg(long = "ca-cert")]
    ca_certs: Vec<PathBuf>,
    /// Extra file as SRC:/PATH or SRC:/PATH:OCTAL-MODE. Repeatable.
    #[arg(long = "file")]
    files: Vec<String>,
    /// gzip (boots fastest of the two; see scripts/bench), xz (smallest) or none.
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
}

/// `loader initramfs`: build the install initramfs, or wrap a bundle in its own cpio.
pub fn run(args: InitramfsArgs) -> Result<(), String> {
    let epoch = initramfs::source_date_epoch().map_err(|e| e.to_string())?;
    if let Some(bundle) = &args.wrap_bundle {
        let out = fs::File::create(&args.output).map_err(|e| format!("creating {}: {e}", args.output.display()))?;
        initramfs::wrap_bundle(bundle, epoch, BufWriter::new(out)).map_err(|e| e.to_string())?;
    } else {
        let spec = spec(&args)?;
        let image = initramfs::build(&spec, epoch).map_err(|e| e.to_string())?;
        fs::write(&args.output, image).map_err(|e| format!("writing {}: {e}", args.output.display()))?;
    }
    let size = fs::metadata(&args.output).map_err(|e| e.to_string())?.len();
    println!("{}\n{size} bytes", args.output.display());
    Ok(())
}

fn spec(args: &InitramfsArgs) -> Result<InitramfsSpec, String> {
    let read_text = |path: &PathBuf| fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()));
    let mut extra_files = Vec::new();
    for file in &args.files {
        let mut parts = file.splitn(3, ':');
        let (Some(source), Some(path)) = (parts.next(), parts.next()) else {
            return Err(format!("--file {file}: expected SRC:/PATH[:MODE]"));
        };
        let permissions = match parts.next() {
            Some(mode) => u32::from_str_radix(mode, 8).map_err(|_| format!("--file {file}: bad octal mode {mode}"))?,
            None => 0o644,
        };
        let contents = fs::read(source).map_err(|e| format!("reading {source}: {e}"))?;
        extra_files.push(ExtraFile {
            path: path.to_owned(),
            permissions,
            contents,
        });
    }
    Ok(InitramfsSpec {
        init_binary: match &args.init {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?,
        },
        config: args.config.as_ref().map(read_text).transpose()?,
        public_keys: args.public_keys.iter().map(read_text).collect::<Result<_, _>>()?,
        ca_certs: args.ca_certs.clone(),
        extra_files,
        compression: args.compression.parse::<Compression>().map_err(|e| e.to_string())?,
    })
}
