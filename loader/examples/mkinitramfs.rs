//! Builds an initramfs; kept for scripts that predate `loader initramfs`,
//! which takes the same options.

use std::process::ExitCode;

use clap::Parser;
use loader::initramfs::cli::{run, InitramfsArgs};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    inner: InitramfsArgs,
}

fn main() -> ExitCode {
    match run(Args::parse().inner) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mkinitramfs: {message}");
            ExitCode::FAILURE
        }
    }
}
