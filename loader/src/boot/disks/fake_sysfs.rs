//! Fake `/sys/block` trees in temp dirs, laid out like the kernel's:
//! `block/NAME` is a symlink into `devices/…/block/NAME`, and `device`
//! points at the parent device that carries `model`/`serial`/`wwid`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// One disk to create.
#[derive(Debug, Clone)]
pub struct FakeDisk {
    pub name: String,
    /// Under `devices/`, e.g. `pci0000:00/0000:00:04.0/virtio1`.
    pub device_path: String,
    pub dev: String,
    pub size: u64,
    pub sector: u32,
    pub removable: bool,
    pub read_only: bool,
    pub rotational: bool,
    pub hidden: bool,
    /// Files relative to the disk directory (`serial`, `device/model`…).
    pub files: Vec<(String, Vec<u8>)>,
    /// Partitions: (name, dev).
    pub partitions: Vec<(String, String)>,
    /// Holder links: (partition name or "" for the whole disk, holder).
    pub holders: Vec<(String, String)>,
}

impl FakeDisk {
    fn new(name: &str, device_path: &str, major: u32, size: u64) -> FakeDisk {
        FakeDisk {
            name: name.into(),
            device_path: device_path.into(),
            dev: format!("{major}:0"),
            size,
            sector: 512,
            removable: false,
            read_only: false,
            rotational: false,
            hidden: false,
            files: Vec::new(),
            partitions: Vec::new(),
            holders: Vec::new(),
        }
    }

    pub fn virtio(name: &str, size: u64) -> FakeDisk {
        let n = name.as_bytes().last().map_or(0, |b| u32::from(b.saturating_sub(b'a')));
        FakeDisk::new(name, &format!("pci0000:00/0000:00:0{n}.0/virtio{n}"), 254, size)
            .dev_num(&format!("254:{}", n * 16))
    }

    pub fn nvme(name: &str, size: u64) -> FakeDisk {
        FakeDisk::new(name, "pci0000:00/0000:00:04.0/nvme/nvme0", 259, size)
    }

    pub fn sata(name: &str, size: u64) -> FakeDisk {
        let n = name.as_bytes().last().map_or(0, |b| u32::from(b.saturating_sub(b'a')));
        let path = format!("pci0000:00/0000:00:1f.2/ata{n}/host{n}/target{n}:0:0/{n}:0:0:0");
        FakeDisk::new(name, &path, 8, size)
    }

    pub fn usb(name: &str, size: u64) -> FakeDisk {
        let path = "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0";
        FakeDisk {
            removable: true,
            ..FakeDisk::new(name, path, 8, size)
        }
        .dev_num("8:16")
    }

    pub fn virtual_dev(name: &str, major: u32, size: u64) -> FakeDisk {
        FakeDisk::new(name, "virtual", major, size)
    }

    pub fn dev_num(mut self, dev: &str) -> FakeDisk {
        self.dev = dev.into();
        self
    }

    pub fn file(mut self, rel: &str, contents: impl Into<Vec<u8>>) -> FakeDisk {
        self.files.push((rel.into(), contents.into()));
        self
    }

    pub fn partition(mut self, name: &str, dev: &str) -> FakeDisk {
        self.partitions.push((name.into(), dev.into()));
        self
    }

    pub fn holder(mut self, of: &str, holder: &str) -> FakeDisk {
        self.holders.push((of.into(), holder.into()));
        self
    }
}

/// A temp dir holding `block/` and `devices/`.
pub struct FakeSysfs {
    dir: tempfile::TempDir,
}

impl FakeSysfs {
    pub fn new() -> FakeSysfs {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("block")).expect("block dir");
        FakeSysfs { dir }
    }

    pub fn sys_block(&self) -> PathBuf {
        self.dir.path().join("block")
    }

    /// The sysfs root (`/sys`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A PCI function of class `class` (`0x010802` NVMe), bound to `driver`.
    pub fn add_pci(&self, address: &str, class: u32, driver: Option<&str>) -> &FakeSysfs {
        let dir = self.dir.path().join("bus/pci/devices").join(address);
        fs::create_dir_all(&dir).expect("pci dir");
        fs::write(dir.join("class"), format!("{class:#08x}\n")).expect("class");
        if let Some(driver) = driver {
            let target = self.dir.path().join("bus/pci/drivers").join(driver);
            fs::create_dir_all(&target).expect("driver dir");
            let _ = fs::remove_file(dir.join("driver"));
            symlink(target, dir.join("driver")).expect("driver link");
        }
        self
    }

    /// An NVMe controller in `state`, with namespace entries `namespaces`.
    pub fn set_nvme(&self, name: &str, state: &str, namespaces: &[&str]) -> &FakeSysfs {
        let dir = self.dir.path().join("class/nvme").join(name);
        fs::create_dir_all(&dir).expect("nvme dir");
        fs::write(dir.join("state"), format!("{state}\n")).expect("state");
        for ns in namespaces {
            fs::create_dir_all(dir.join(ns)).expect("namespace");
        }
        self
    }

    /// A virtio device of type `device` (`0x0002` block), bound, with
    /// block devices `disks`.
    pub fn add_virtio(&self, name: &str, device: &str, disks: &[&str]) -> &FakeSysfs {
        let dir = self.dir.path().join("bus/virtio/devices").join(name);
        fs::create_dir_all(dir.join("block")).expect("virtio dir");
        fs::write(dir.join("device"), format!("{device}\n")).expect("device");
        let driver = self.dir.path().join("bus/virtio/drivers/virtio_blk");
        fs::create_dir_all(&driver).expect("driver dir");
        let _ = symlink(driver, dir.join("driver"));
        for disk in disks {
            fs::create_dir_all(dir.join("block").join(disk)).expect("block entry");
        }
        self
    }

    pub fn add(&self, disk: &FakeDisk) -> &FakeSysfs {
        let root = self.dir.path();
        let device_dir = root.join("devices").join(&disk.device_path);
        let disk_dir = device_dir.join("block").join(&disk.name);
        let write = |rel: &Path, contents: &[u8]| {
            let path = disk_dir.join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, contents).expect("write");
        };
        fs::create_dir_all(disk_dir.join("holders")).expect("holders");
        fs::create_dir_all(disk_dir.join("slaves")).expect("slaves");
        write(Path::new("dev"), format!("{}\n", disk.dev).as_bytes());
        write(Path::new("size"), format!("{}\n", disk.size / 512).as_bytes());
        write(
            Path::new("queue/logical_block_size"),
            format!("{}\n", disk.sector).as_bytes(),
        );
        write(
            Path::new("queue/rotational"),
            if disk.rotational { b"1\n" } else { b"0\n" },
        );
        write(Path::new("removable"), if disk.removable { b"1\n" } else { b"0\n" });
        write(Path::new("ro"), if disk.read_only { b"1\n" } else { b"0\n" });
        write(Path::new("hidden"), if disk.hidden { b"1\n" } else { b"0\n" });
        symlink("../..", disk_dir.join("device")).expect("device link");
        for (rel, contents) in &disk.files {
            let target = rel
                .strip_prefix("device/")
                .map_or(disk_dir.join(rel), |r| device_dir.join(r));
            fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            fs::write(target, contents).expect("write attr");
        }
        for (part, dev) in &disk.partitions {
            write(&Path::new(part).join("partition"), b"1\n");
            write(&Path::new(part).join("dev"), format!("{dev}\n").as_bytes());
            fs::create_dir_all(disk_dir.join(part).join("holders")).expect("holders");
        }
        for (of, holder) in &disk.holders {
            let dir = if of.is_empty() {
                disk_dir.join("holders")
            } else {
                disk_dir.join(of).join("holders")
            };
            fs::create_dir_all(&dir).expect("holders");
            fs::write(dir.join(holder), b"").expect("holder entry");
        }
        let link = format!("../devices/{}/block/{}", disk.device_path, disk.name);
        symlink(link, root.join("block").join(&disk.name)).expect("block link");
        self
    }

    /// Adds a device-mapper/md device built on `slaves` (partition or disk names).
    pub fn add_stacked(&self, name: &str, dev: &str, slaves: &[&str]) -> &FakeSysfs {
        let disk = FakeDisk::virtual_dev(name, 253, 1 << 30).dev_num(dev);
        self.add(&disk);
        let slaves_dir = self.sys_block().join(name).join("slaves");
        for slave in slaves {
            fs::write(slaves_dir.join(slave), b"").expect("slave entry");
        }
        self
    }

    /// Adds a loop device backed by `file`.
    pub fn add_loop(&self, name: &str, dev: &str, backing_file: &str) -> &FakeSysfs {
        let disk = FakeDisk::virtual_dev(name, 7, 1 << 20)
            .dev_num(dev)
            .file("loop/backing_file", format!("{backing_file}\n"));
        self.add(&disk)
    }
}
