//! The boot flow's building blocks: what `loader` needs when it runs as the
//! initramfs `/init` (or as `loader boot`) to get from "iPXE just booted us"
//! to "rebooting into the installed system".
//!
//! Each piece is a library with tests; the wiring lives in the caller.

mod bundle_facts;
mod bundle_source;
pub mod cmdline;
pub mod config;
mod config_keys;
mod config_source;
mod config_values;
pub mod disks;
pub mod early;
mod fetch;
mod inputs;
pub mod main_loop;
pub mod pid1;
pub mod plan;
pub mod reaper;
pub mod reporter;
pub mod run;
pub mod task_choice;
#[cfg(test)]
mod test_alone;
mod trust;
mod version_order;
