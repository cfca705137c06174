//! The network loader: installs fwup `.fw` bundles onto disks, as a host
//! command or as the initramfs `/init`.

pub mod allocator;
pub mod apply;
pub mod boot;
pub mod bundle;
pub mod cli;
pub mod diag;
pub mod formats;
pub mod hostdisk;
pub mod initramfs;
pub mod inspect;
pub mod inspect_disk;
pub mod install_mode;
#[cfg(feature = "host-tools")]
pub mod ipxe;
#[cfg(feature = "host-tools")]
pub mod ipxe_cli;
#[cfg(feature = "host-tools")]
pub mod iso;
#[cfg(feature = "host-tools")]
pub mod manual;
pub mod net;
#[cfg(feature = "host-tools")]
pub mod pack;
pub mod report;
pub mod source;
pub mod takeover;
pub mod target;
pub mod toolbox;
