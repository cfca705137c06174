//! The network loader: installs fwup `.fw` bundles onto disks, as a host
//! command or as the initramfs `/init`.

pub mod bundle;
pub mod formats;
pub mod initramfs;
pub mod ipxe;
pub mod target;
