//! The network loader: installs fwup `.fw` bundles onto disks, as a host
//! command or as the initramfs `/init`.

pub mod boot;
pub mod bundle;
pub mod formats;
pub mod target;
