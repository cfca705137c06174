//! `loader`: PID 1 in the install initramfs, or a host command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    loader::cli::main(loader::cli::Cli::parse())
}
