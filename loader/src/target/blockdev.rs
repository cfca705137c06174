//! A block device as an install target: `/dev/vda`, `/dev/nvme0n1`.
//!
//! Opened exclusively (`O_EXCL`): while we hold it the kernel refuses to
//! mount it and other exclusive openers (mkfs, RAID, LVM) fail, and the
//! open itself fails with `EBUSY` when any of its partitions is mounted.
//! Before that, the mount table is checked so the refusal can name the
//! mounts. `allow_mounted` skips both (the rescue case of writing a disk
//! that is in use, at the operator's risk).
//!
//! Unlike an image file, a device has a fixed size: reads and writes past
//! the end are errors, never zeros or growth.
//!
//! `discard` is fwup's `trim`: a hint that the range's contents are no
//! longer needed (BLKDISCARD, aligned inwards to whole sectors). Like fwup,
//! a device that cannot discard is not an error and no zeros are written
//! instead: the Target contract says discarded ranges on devices read as
//! anything, and writing zeros over a 256 MiB slot would cost minutes.
//!
//! Large sector-aligned writes (streamed resources) bypass the page cache
//! through a second, `O_DIRECT` handle (see `direct`); everything else
//! goes through the page cache, so any offset and length works. `sync` is
//! `fsync`, which also flushes the device's write cache, skipped when
//! nothing was written or discarded through the handle since its last
//! sync.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use super::direct::{self, DirectWriter};
pub use super::sys::PartitionOp;
use super::writeback::Writeback;
use super::{sys, Target};
use crate::boot::disks::{parse_mountinfo, partition_names, DevNum};
use crate::formats::Medium;

/// Where the mount table and the device tree are (parameters for tests).
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// `/sys/dev/block`: `MAJOR:MINOR` links to each device's sysfs dir.
    pub sys_dev_block: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            mountinfo: "/proc/self/mountinfo".into(),
            sys_dev_block: "/sys/dev/block".into(),
        }
    }
}

/// How often `BLKRRPART` is retried while the kernel reports the device busy
/// (udev or a closing file briefly holding a partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RereadPolicy {
    pub attempts: u32,
    /// Doubled after each busy attempt.
    pub first_delay: Duration,
}

impl Default for RereadPolicy {
    fn default() -> Self {
        RereadPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlockDevError {
    #[error("opening {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a block device (use an image file target for regular files)", path.display())]
    NotBlockDevice { path: PathBuf },
    #[error("{} has mounted filesystems ({}); unmount them or choose another disk", path.display(), mounts.join(", "))]
    Mounted { path: PathBuf, mounts: Vec<String> },
    #[error(
        "{} is in use: the kernel or another program holds it (a mounted filesystem, swap, \
         RAID or LVM member); release it or choose another disk",
        path.display()
    )]
    Busy { path: PathBuf },
    #[error("reading the mount table {}: {problem}", path.display())]
    MountTable { path: PathBuf, problem: String },
    #[error("{}: {what} failed: {errno}", path.display())]
    Ioctl {
        path: PathBuf,
        what: &'static str,
        errno: Errno,
    },
    #[error(
        "re-reading the partition table of {}: still busy after {attempts} attempts; \
         a partition is in use (mounted or open); reboot to use the new partitions",
        path.display()
    )]
    RereadBusy { path: PathBuf, attempts: u32 },
    #[error("syncing {}: {source}", path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An open block device (see the module doc).
#[derive(Debug)]
pub struct BlockDevice {
    file: File,
    path: PathBuf,
    size: u64,
    sector_size: u32,
    discard_unsupported: bool,
    writeback: Writeback,
    /// `None` when the device refused `O_DIRECT`.
    direct: Option<DirectWriter>,
    /// Bytes written through `direct`.
    direct_bytes: u64,
    /// Nothing was written or discarded through this handle since its
    /// last sync succeeded: another sync would only repeat the device's
    /// cache flush (the commit's last step is synced, the re-read of the
    /// partition table after it need not flush again).
    synced: bool,
}

impl BlockDevice {
    /// Opens `path` for writing, refusing mounted devices unless
    /// `allow_mounted`.
    pub fn open(path: &Path, allow_mounted: bool) -> Result<BlockDevice, BlockDevError> {
        BlockDevice::open_with(path, allow_mounted, &HostPaths::default())
    }

    /// [`BlockDevice::open`] with the mount table and sysfs at `host`.
    pub fn open_with(path: &Path, allow_mounted: bool, host: &HostPaths) -> Result<BlockDevice, BlockDevError> {
        let open_err = |source| BlockDevError::Open {
            path: path.into(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if !meta.file_type().is_block_device() {
            return Err(BlockDevError::NotBlockDevice { path: path.into() });
        }
        if !allow_mounted {
            let dev = DevNum {
                major: u32::try_from(nix::sys::stat::major(meta.rdev())).unwrap_or(u32::MAX),
                minor: u32::try_from(nix::sys::stat::minor(meta.rdev())).unwrap_or(u32::MAX),
            };
            let mounts = mounts_on(dev, host)?;
            if !mounts.is_empty() {
                return Err(BlockDevError::Mounted {
                    path: path.into(),
                    mounts,
                });
            }
        }
        let flags = if allow_mounted { 0 } else { nix::libc::O_EXCL };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == Errno::EBUSY as i32 => BlockDevError::Busy { path: path.into() },
                _ => open_err(e),
            })?;
        let ioctl_err = |what| {
            move |errno| BlockDevError::Ioctl {
                path: path.into(),
                what,
                errno,
            }
        };
        let size = sys::device_size(file.as_fd()).map_err(ioctl_err("BLKGETSIZE64 (device size)"))?;
        let sector_size = sys::logical_sector_size(file.as_fd()).map_err(ioctl_err("BLKSSZGET (sector size)"))?;
        Ok(BlockDevice {
            file,
            path: path.into(),
            size,
            sector_size,
            discard_unsupported: false,
            writeback: Writeback::default(),
            direct: DirectWriter::open(path),
            direct_bytes: 0,
            synced: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a discard found the device unable to discard (then later
    /// discards are skipped).
    pub fn discard_unsupported(&self) -> bool {
        self.discard_unsupported
    }

    /// Syncs, then makes the kernel re-read the partition table so the new
    /// partitions appear, retrying while it is busy.
    pub fn reread_partitions(&mut self) -> Result<(), BlockDevError> {
        self.reread_partitions_with(RereadPolicy::default(), &mut std::thread::sleep)
    }

    /// [`BlockDevice::reread_partitions`] with an explicit policy and sleep.
    pub fn reread_partitions_with(
        &mut self,
        policy: RereadPolicy,
        sleep: &mut dyn FnMut(Duration),
    ) -> Result<(), BlockDevError> {
        self.sync_if_written().map_err(|source| BlockDevError::Sync {
            path: self.path.clone(),
            source,
        })?;
        let mut delay = policy.first_delay;
        for attempt in 1..=policy.attempts.max(1) {
            match sys::reread_partition_table(self.file.as_fd()) {
                Ok(()) => return Ok(()),
                Err(Errno::EBUSY) if attempt < policy.attempts => {
                    sleep(delay);
                    delay = delay.saturating_mul(2);
                }
                Err(Errno::EBUSY) => break,
                Err(errno) => {
                    return Err(BlockDevError::Ioctl {
                        path: self.path.clone(),
                        what: "BLKRRPART (re-read partition table)",
                        errno,
                    })
                }
            }
        }
        Err(BlockDevError::RereadBusy {
            path: self.path.clone(),
            attempts: policy.attempts.max(1),
        })
    }

    /// Changes one partition in the kernel's view of the disk (`BLKPG`),
    /// which works while other partitions are in use, unlike a re-read.
    pub fn change_partition(&mut self, op: PartitionOp) -> Result<(), Errno> {
        sys::partition_op(self.file.as_fd(), op)
    }

    /// `fsync` (which also flushes the device's write cache), unless
    /// nothing was written since the last one.
    fn sync_if_written(&mut self) -> io::Result<()> {
        if !self.synced {
            self.file.sync_all()?;
            self.synced = true;
        }
        Ok(())
    }

    /// Writes what of `data` suits a direct write (its whole sectors, when
    /// it is large and starts on one); returns how many bytes that was.
    fn write_direct(&mut self, offset: u64, data: &[u8]) -> io::Result<usize> {
        let Some(writer) = self
            .direct
            .as_mut()
            .filter(|_| direct::suits(offset, data.len(), self.sector_size))
        else {
            return Ok(0);
        };
        match writer.write_sectors(offset, data, self.sector_size as usize) {
            Ok(n) => {
                self.direct_bytes += n as u64;
                Ok(n)
            }
            // A device that takes the open but not the alignment: the
            // page cache writes everything from here on.
            Err(e) if e.raw_os_error() == Some(Errno::EINVAL as i32) => {
                tracing::debug!(path = %self.path.display(), error = %e, "direct writes refused; buffered from now on");
                self.direct = None;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Bytes written past the page cache so far.
    pub fn direct_bytes(&self) -> u64 {
        self.direct_bytes
    }

    fn check_range(&self, offset: u64, len: usize, kind: io::ErrorKind, verb: &str) -> io::Result<()> {
        let end = offset.checked_add(len as u64);
        if end.is_some_and(|end| end <= self.size) {
            return Ok(());
        }
        Err(io::Error::new(
            kind,
            format!(
                "{verb} of {len} bytes at offset {offset} is past the end of {} ({} bytes)",
                self.path.display(),
                self.size
            ),
        ))
    }
}

impl Medium for BlockDevice {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_range(offset, buf.len(), io::ErrorKind::UnexpectedEof, "read")?;
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_range(offset, data.len(), io::ErrorKind::InvalidInput, "write")?;
        self.synced = false;
        let direct = self.write_direct(offset, data)?;
        let (offset, data) = (offset + direct as u64, &data[direct..]);
        if !data.is_empty() {
            self.file.write_all_at(data, offset)?;
            self.writeback.wrote(self.file.as_fd(), offset, data.len() as u64);
        }
        Ok(())
    }
}

impl Target for BlockDevice {
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }

    fn sector_size(&self) -> u32 {
        self.sector_size
    }

    fn discard(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let sector = u64::from(self.sector_size.max(1));
        let start = offset.div_ceil(sector) * sector;
        let end = offset.saturating_add(len).min(self.size) / sector * sector;
        if self.discard_unsupported || start >= end {
            return Ok(());
        }
        self.synced = false;
        match sys::discard(self.file.as_fd(), start, end - start) {
            Ok(()) => Ok(()),
            Err(Errno::EOPNOTSUPP) => {
                self.discard_unsupported = true;
                Ok(())
            }
            Err(errno) => Err(io::Error::other(format!(
                "discarding {} bytes at offset {start} on {}: {errno}",
                end - start,
                self.path.display()
            ))),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_if_written()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Mounts on the device or any of its partitions, as "vda1 on /boot".
fn mounts_on(dev: DevNum, host: &HostPaths) -> Result<Vec<String>, BlockDevError> {
    let table_err = |problem: String| BlockDevError::MountTable {
        path: host.mountinfo.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&host.mountinfo).map_err(|e| table_err(e.to_string()))?;
    let mounts = parse_mountinfo(&text).map_err(|e| table_err(e.to_string()))?;

    // `/sys/dev/block/MAJ:MIN` links to the disk's directory, named after
    // the disk, whose partitions are named after it too.
    let dir = host.sys_dev_block.join(dev.to_string());
    let disk_name = std::fs::read_link(&dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let mut devices = vec![(dev, disk_name.clone().unwrap_or_else(|| dev.to_string()))];
    // Without the name, every entry with a `partition` file is one.
    for part in partition_names(&dir, disk_name.as_deref().unwrap_or("")) {
        let part_dev = std::fs::read_to_string(dir.join(&part).join("dev"))
            .ok()
            .and_then(|d| DevNum::parse(&d));
        if let Some(part_dev) = part_dev {
            devices.push((part_dev, part));
        }
    }
    Ok(mounts
        .iter()
        .filter_map(|m| {
            let (_, name) = devices.iter().find(|(d, _)| *d == m.dev)?;
            Some(format!("{name} on {}", m.mount_point))
        })
        .collect())
}

#[cfg(test)]
#[path = "blockdev_tests.rs"]
mod tests;
