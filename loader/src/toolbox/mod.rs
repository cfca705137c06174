//! The operator's toolbox: commands that look before anything is written.
//!
//! - `loader disks`: every disk, what it holds (`inspect_disk`), whether
//!   it can be the target and what `loader.task=auto` would do with it.
//! - `loader plan`: the boot flow's choices for a bundle (disk, task,
//!   policies, every action with the bytes it writes), writing nothing.
//!
//! Both read disks only; both work on a host and on the initramfs console.

pub mod disks;
pub mod plan;

pub use disks::DisksArgs;
pub use plan::PlanArgs;
