//! The `pack`, `keygen` and `sign` subcommands (wired in `crate::cli`).

use std::path::PathBuf;

use clap::Args;

use super::{load_signing_key, pack as pack_bundle, sign, PackOptions, DEFAULT_LEVEL};

/// `loader pack CONFIG -o OUT.fw [--sign KEY.priv]`
#[derive(Args)]
pub struct PackArgs {
    /// The fwup configuration to read (fwup.conf).
    config: PathBuf,
    /// The bundle to write.
    #[arg(long, short = 'o', value_name = "OUT.fw")]
    output: PathBuf,
    /// Sign meta.conf with this private key (fwup's .priv format).
    #[arg(long, short = 's', value_name = "KEY.priv")]
    sign: Option<PathBuf>,
    /// Deflate level, 0 (store) to 9 (smallest, fwup's default).
    #[arg(long, default_value_t = DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
}

/// `loader keygen [-o PREFIX]`
#[derive(Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.pub and PREFIX.priv.
    #[arg(long, short = 'o', value_name = "PREFIX", default_value = "fwup-key")]
    output: PathBuf,
}

/// `loader sign BUNDLE.fw --key KEY.priv [-o OUT.fw]`
#[derive(Args)]
pub struct SignArgs {
    /// The bundle to sign (an existing signature is replaced).
    bundle: PathBuf,
    /// The private key (fwup's .priv format).
    #[arg(long, short = 'k', value_name = "KEY.priv")]
    key: PathBuf,
    /// Where to write the signed bundle; default: replace BUNDLE.
    #[arg(long, short = 'o', value_name = "OUT.fw")]
    output: Option<PathBuf>,
}

/// `SOURCE_DATE_EPOCH`, for reproducible bundles.
fn source_date_epoch() -> Result<Option<u64>, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(None),
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("SOURCE_DATE_EPOCH `{text}` is not a number of seconds since 1970")),
    }
}

pub fn pack(args: PackArgs) -> Result<(), String> {
    let opts = PackOptions {
        vars: std::env::vars().collect(),
        signing_key: args
            .sign
            .as_deref()
            .map(load_signing_key)
            .transpose()
            .map_err(|e| e.to_string())?,
        creation_time: source_date_epoch()?,
        level: args.compression_level,
    };
    let summary = pack_bundle(&args.config, &args.output, &opts).map_err(|e| e.to_string())?;
    println!(
        "{}: {} resource(s), {} bytes of data, {} byte bundle, meta-uuid {}{}",
        args.output.display(),
        summary.resources,
        summary.data_bytes,
        summary.bundle_bytes,
        summary.meta_uuid,
        if summary.signed { ", signed" } else { "" }
    );
    Ok(())
}

pub fn keygen(args: KeygenArgs) -> Result<(), String> {
    let (public, private) = sign::keygen(&args.output).map_err(|e| e.to_string())?;
    println!(
        "wrote {} (give to `loader apply --public-key`) and {} (keep secret)",
        public.display(),
        private.display()
    );
    Ok(())
}

pub fn sign(args: SignArgs) -> Result<(), String> {
    let key = load_signing_key(&args.key).map_err(|e| e.to_string())?;
    let output = args.output.unwrap_or_else(|| args.bundle.clone());
    let summary = sign::sign_bundle(&args.bundle, &key, &output).map_err(|e| e.to_string())?;
    println!(
        "{}: signed ({} entries, meta-uuid {}{})",
        output.display(),
        summary.entries,
        summary.meta_uuid,
        if summary.replaced {
            ", previous signature replaced"
        } else {
            ""
        }
    );
    Ok(())
}
