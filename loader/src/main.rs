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

/// dlmalloc instead of static musl's own malloc (mallocng), which hands
/// freed memory back to the kernel eagerly and pays system calls and page
/// faults to get it again. On the one-vCPU TCG guest of a new user's VPS,
/// the loader's phase for the 7.2 MB example bundle (`/init` → reboot,
/// 16 alternating direct boots each) fell from 319/346/361 ms (min, first
/// quartile, median) to 286/311/325 ms; `meta.conf` parsing, on-init and
/// the resource writes each gained 5-12 ms. dlmalloc keeps freed memory
/// for reuse and trims only above 2 MiB free at the top.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
