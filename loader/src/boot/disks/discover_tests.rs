use super::*;
use crate::boot::disks::fake_sysfs::{FakeDisk, FakeSysfs};
use crate::boot::disks::parse_mountinfo;

const GIB: u64 = 1 << 30;

fn names(disks: &[Disk]) -> Vec<&str> {
    disks.iter().map(|d| d.name.as_str()).collect()
}

fn find<'d>(disks: &'d [Disk], name: &str) -> &'d Disk {
    disks.iter().find(|d| d.name == name).expect("disk listed")
}

#[test]
fn reads_size_sector_flags_model_serial_and_wwn() {
    let sys = FakeSysfs::new();
    let mut nvme = FakeDisk::nvme("nvme0n1", 960 * GIB)
        .file("device/model", "Samsung SSD 980 PRO 1TB          \n")
        .file("device/serial", "S5GXNF0R123456\n")
        .file("wwid", "eui.0025388b71b2c5f1\n");
    nvme.sector = 4096;
    let mut sata = FakeDisk::sata("sda", 4000 * GIB)
        .file("device/model", "WDC WD40EFRX\n")
        .file("device/wwid", "naa.50014ee2b5c3d4e5\n")
        .file("device/vpd_pg80", b"\0\x80\0\x08WD-WCC4E\0\0".to_vec());
    sata.rotational = true;
    sys.add(&nvme)
        .add(&sata)
        .add(&FakeDisk::virtio("vda", 20 * GIB).file("serial", "ABC\n"));

    let disks = discover(&sys.sys_block(), &[], &DiscoverOptions::default()).expect("discover");
    assert_eq!(names(&disks), ["nvme0n1", "sda", "vda"]);

    let n = find(&disks, "nvme0n1");
    assert_eq!((n.size, n.logical_sector_size), (960 * GIB, 4096));
    assert_eq!(n.model.as_deref(), Some("Samsung SSD 980 PRO 1TB"));
    assert_eq!(n.serial.as_deref(), Some("S5GXNF0R123456"));
    assert_eq!(n.wwn.as_deref(), Some("eui.0025388b71b2c5f1"));
    assert_eq!((n.transport, n.rotational), (Transport::Nvme, Some(false)));

    let s = find(&disks, "sda");
    assert_eq!(s.serial.as_deref(), Some("WD-WCC4E"), "serial from VPD page 0x80");
    assert_eq!(s.wwn.as_deref(), Some("naa.50014ee2b5c3d4e5"));
    assert_eq!((s.transport, s.rotational), (Transport::Ata, Some(true)));

    let v = find(&disks, "vda");
    assert_eq!(
        (v.transport, v.serial.as_deref(), v.model.as_deref()),
        (Transport::Virtio, Some("ABC"), None)
    );
    assert_eq!(v.summary(), "vda (virtio, 20.0 GiB, serial ABC)");
}

#[test]
fn transport_comes_from_the_device_path() {
    let sys = FakeSysfs::new();
    let mut scsi = FakeDisk::sata("sdc", GIB);
    scsi.device_path = "pci0000:00/0000:00:05.0/virtio3/host2/target2:0:0/2:0:0:0".into();
    let mut mmc = FakeDisk::sata("mmcblk0", GIB);
    mmc.device_path = "platform/fe340000.mmc/mmc_host/mmc0/mmc0:0001".into();
    sys.add(&FakeDisk::usb("sdb", 16 * GIB)).add(&scsi).add(&mmc);
    let disks = discover(&sys.sys_block(), &[], &DiscoverOptions::default()).expect("discover");
    assert_eq!(find(&disks, "sdb").transport, Transport::Usb);
    assert!(find(&disks, "sdb").removable);
    assert_eq!(find(&disks, "sdc").transport, Transport::Scsi, "virtio-scsi is SCSI");
    assert_eq!(find(&disks, "mmcblk0").transport, Transport::Mmc);
}

#[test]
fn virtual_devices_are_skipped_unless_asked() {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::virtio("vda", GIB));
    for (name, major) in [
        ("loop0", 7),
        ("ram0", 1),
        ("zram0", 252),
        ("dm-0", 253),
        ("md0", 9),
        ("sr0", 11),
    ] {
        sys.add(&FakeDisk::virtual_dev(name, major, GIB).dev_num(&format!("{major}:0")));
    }
    let default = discover(&sys.sys_block(), &[], &DiscoverOptions::default()).expect("discover");
    assert_eq!(names(&default), ["vda"]);
    let all = DiscoverOptions {
        include_virtual: true,
        ..Default::default()
    };
    let all = discover(&sys.sys_block(), &[], &all).expect("discover");
    assert_eq!(all.len(), 7);
    assert_eq!(find(&all, "loop0").transport, Transport::Virtual);
}

#[test]
fn mmc_boot_areas_and_hidden_multipath_paths_are_never_listed() {
    let sys = FakeSysfs::new();
    let mut hidden = FakeDisk::nvme("nvme0c0n1", GIB);
    hidden.hidden = true;
    sys.add(&FakeDisk::sata("mmcblk0boot0", GIB).dev_num("179:8"))
        .add(&FakeDisk::sata("mmcblk0rpmb", GIB).dev_num("179:24"))
        .add(&hidden)
        .add(&FakeDisk::nvme("nvme0n1", GIB).dev_num("259:1"));
    let all = DiscoverOptions {
        include_virtual: true,
        ..Default::default()
    };
    let disks = discover(&sys.sys_block(), &[], &all).expect("discover");
    assert_eq!(names(&disks), ["nvme0n1"]);
}

#[test]
fn partitions_carry_their_mounts_and_holders() {
    let sys = FakeSysfs::new();
    sys.add(
        &FakeDisk::virtio("vda", 20 * GIB)
            .dev_num("254:0")
            .partition("vda1", "254:1")
            .partition("vda2", "254:2")
            .holder("vda2", "dm-0"),
    );
    let mounts =
        parse_mountinfo("30 1 254:1 / /boot rw - vfat /dev/vda1 rw\n31 1 254:1 / /mnt rw - vfat /dev/vda1 rw\n")
            .expect("mountinfo");
    let disks = discover(&sys.sys_block(), &mounts, &DiscoverOptions::default()).expect("discover");
    let vda = find(&disks, "vda");
    assert_eq!(vda.partitions.len(), 2);
    assert_eq!(vda.partitions[0].mount_points, ["/boot", "/mnt"]);
    assert_eq!(vda.mounts(), ["vda1 on /boot", "vda1 on /mnt"]);
    assert_eq!(vda.holders_in_use(), ["vda2 used by dm-0"]);
}

#[test]
fn missing_sys_block_is_an_error_naming_the_path() {
    let err = discover(Path::new("/nonexistent/sys/block"), &[], &DiscoverOptions::default()).expect_err("no such dir");
    assert!(err.to_string().contains("/nonexistent/sys/block"), "{err}");
}

fn boot_disks(sys: &FakeSysfs, mountinfo: &str, exe: &str) -> Vec<String> {
    let mounts = parse_mountinfo(mountinfo).expect("mountinfo");
    let options = DiscoverOptions {
        include_virtual: false,
        loader_exe: Some(exe.into()),
        dev_dir: None,
    };
    let disks = discover(&sys.sys_block(), &mounts, &options).expect("discover");
    disks.into_iter().filter(|d| d.boot).map(|d| d.name).collect()
}

#[test]
fn boot_disk_is_the_disk_holding_the_loaders_filesystem() {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::sata("sda", 100 * GIB).dev_num("8:0").partition("sda2", "8:2"))
        .add(&FakeDisk::virtio("vdb", 100 * GIB).dev_num("254:16"));
    let table = "1 0 8:2 / / rw - ext4 /dev/root rw\n2 1 254:16 / /srv rw - ext4 /dev/vdb rw\n";
    assert_eq!(boot_disks(&sys, table, "/usr/local/bin/loader"), ["sda"]);
    assert_eq!(boot_disks(&sys, table, "/srv/loader"), ["vdb"], "whole-disk filesystem");
}

#[test]
fn an_initramfs_has_no_boot_disk() {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::virtio("vda", 20 * GIB).dev_num("254:0"));
    assert!(boot_disks(&sys, "1 0 0:2 / / rw - rootfs rootfs rw\n", "/init").is_empty());
    assert!(boot_disks(&sys, "", "/init").is_empty(), "no mount table");
}

#[test]
fn boot_disk_is_followed_through_lvm_raid_and_loop_files() {
    let sys = FakeSysfs::new();
    sys.add(&FakeDisk::sata("sda", 100 * GIB).dev_num("8:0").partition("sda3", "8:3"))
        .add(
            &FakeDisk::sata("sdb", 100 * GIB)
                .dev_num("8:16")
                .partition("sdb3", "8:19"),
        )
        .add(
            &FakeDisk::virtio("vdc", 100 * GIB)
                .dev_num("254:32")
                .partition("vdc1", "254:33"),
        )
        .add_stacked("md0", "9:0", &["sda3", "sdb3"])
        .add_stacked("dm-0", "253:0", &["md0"])
        .add_loop("loop0", "7:0", "/media/live/root.squashfs");
    let lvm_on_raid = "1 0 253:0 / / rw - ext4 /dev/mapper/vg-root rw\n";
    assert_eq!(sorted(boot_disks(&sys, lvm_on_raid, "/usr/bin/loader")), ["sda", "sdb"]);
    let live = "1 0 7:0 / / ro - squashfs /dev/loop0 ro\n2 1 254:33 / /media/live ro - vfat /dev/vdc1 ro\n";
    assert_eq!(
        boot_disks(&sys, live, "/usr/bin/loader"),
        ["vdc"],
        "loop file on the USB stick"
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
