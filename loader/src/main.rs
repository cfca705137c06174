//! `loader`: PID 1 in the install initramfs, or a host command.

use std::process::ExitCode;

use clap::Parser;
use loader::boot::{main_loop, pid1, run::BootPaths};

fn main() -> ExitCode {
    if pid1::is_pid1() {
        // The kernel started us as /init: run the boot flow, never exit.
        return main_loop::boot_main(
            main_loop::BootMode {
                pid1: true,
                power_actions: true,
            },
            &BootPaths::system(),
        );
    }
    loader::cli::main(loader::cli::Cli::parse())
}

/// dlmalloc, with large blocks mapped on their own (see `loader::allocator`).
#[global_allocator]
static ALLOCATOR: loader::allocator::Allocator = loader::allocator::Allocator;
