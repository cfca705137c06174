//! Any byte string as a bundle's `meta.conf`: through the install path
//! (`load_meta_conf`: size check, meta-uuid, the forgiving
//! `parse_meta_conf`, `Manifest::for_install`) and through the strict one
//! (`parse_conf` + `Manifest::from_conf`, what `fwup -c` demands); then
//! every `mbr`, `gpt` and `uboot-environment` section through its typed
//! reader and encoder, and the encoded bytes back through the disk readers.
//!
//! Checked beyond "no panic":
//! * what the strict reader accepts, the install reader accepts too, and
//!   both see the same resources and tasks;
//! * every `on-resource` handler names a declared resource; resource
//!   lengths add up without overflow;
//! * an encoded MBR reads back with the primary slots the spec gave, a GPT
//!   with its partitions (from the primary copy and from the backup alone),
//!   an environment with the variables written (both copies of a redundant
//!   one).

#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::bundle::conf::Section;
use loader::bundle::manifest::Manifest;
use loader::bundle::meta_conf::load_meta_conf;
use loader::bundle::parse::parse_conf;
use loader::formats::gpt::{GptSpec, GPT_BLOCKS};
use loader::formats::mbr::{self, MbrSpec, PRIMARY_SLOTS};
use loader::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};
use loader::formats::{gpt, Medium, BLOCK_SIZE};

use common::SparseDisk;

fn env(name: &str) -> Option<String> {
    match name {
        "SLOT" => Some("a".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// A 1 GiB disk and an unknown size (an empty image file).
const DEVICES: [Option<u64>; 2] = [Some(1 << 21), None];

fn check_mbr(section: &Section) {
    let Ok(spec) = MbrSpec::from_section(section) else {
        return;
    };
    for device in DEVICES {
        let Ok(sectors) = mbr::encode(&spec, device) else {
            continue;
        };
        let mut disk = SparseDisk::new(&[], u64::MAX);
        for (offset, bytes) in &sectors {
            assert_eq!(bytes.len(), BLOCK_SIZE as usize);
            disk.write_at(*offset, bytes).expect("sparse write");
        }
        let slots = mbr::read_primary_slots(&mut disk).expect("an encoded MBR reads back");
        for p in spec.partitions.iter().filter(|p| p.index < PRIMARY_SLOTS) {
            let slot = slots[p.index];
            assert_eq!(u64::from(p.block_offset), slot.block_offset, "{}", spec.label());
            assert_eq!(p.kind, slot.kind, "{}", spec.label());
            if !p.expand {
                assert_eq!(u64::from(p.block_count), slot.block_count, "{}", spec.label());
            }
        }
        // The EBR chain must at least read without error.
        let parts = mbr::read_partitions(&mut disk).expect("an encoded MBR reads back");
        assert!(parts.len() <= mbr::MAX_PARTITIONS);
    }
}

fn check_gpt(section: &Section) {
    let Ok(spec) = GptSpec::from_section(section) else {
        return;
    };
    for device in DEVICES {
        let Ok(copies) = gpt::encode(&spec, device) else {
            continue;
        };
        let mut disk = SparseDisk::new(&[], u64::MAX);
        for (offset, bytes) in &copies {
            disk.write_at(*offset, bytes).expect("sparse write");
        }
        let (backup_at, _) = copies[1];
        let disk_blocks = backup_at / BLOCK_SIZE + GPT_BLOCKS;
        let table = gpt::read(&mut disk, Some(disk_blocks)).expect("an encoded GPT reads back");
        assert_eq!(table.header_lba, 1);
        assert_eq!(table.disk_guid, spec.disk_guid);
        let expected: Vec<_> = spec.partitions.iter().filter(|p| !p.type_guid.is_nil()).collect();
        assert_eq!(table.partitions.len(), expected.len(), "{}", spec.label());
        for (read, p) in table.partitions.iter().zip(&expected) {
            assert_eq!(read.number as usize, p.index + 1);
            assert_eq!(read.type_guid, p.type_guid);
            assert_eq!(read.guid, p.guid);
            assert_eq!(read.first_lba, p.block_offset);
            assert_eq!(read.flags, p.flags);
        }
        // Destroy the primary header: the backup alone gives the same table.
        disk.write_at(BLOCK_SIZE, &[0u8; 512]).expect("sparse write");
        let backup = gpt::read(&mut disk, Some(disk_blocks)).expect("the backup GPT reads back");
        assert_eq!(backup.header_lba, disk_blocks - 1);
        assert_eq!(backup.partitions, table.partitions);
    }
}

fn check_uboot_env(section: &Section) {
    let Ok(spec) = UbootEnvSpec::from_section(section) else {
        return;
    };
    // Large environments cost time, not coverage.
    if spec.block_count > 256 {
        return;
    }
    let vars: UbootEnv = [("a", "1"), ("slot", "b"), ("e", "")].into_iter().collect();
    if let Ok(bytes) = uboot_env::encode(&spec, &vars, 3) {
        assert_eq!(bytes.len(), spec.size());
        let decoded = uboot_env::decode(&spec, spec.block_offset, &bytes).expect("encoded env decodes");
        assert_eq!(decoded, vars);
    }
    let mut disk = SparseDisk::new(&[], u64::MAX);
    if uboot_env::write(&mut disk, &spec, &vars).is_ok() {
        assert_eq!(uboot_env::read(&mut disk, &spec).expect("written env reads"), vars);
        // A second write goes to the other copy of a redundant pair and
        // is what is read next.
        uboot_env::setenv(&mut disk, &spec, "slot", "a").expect("setenv after write");
        assert_eq!(uboot_env::read(&mut disk, &spec).expect("env reads").get("slot"), Some("a"));
    }
}

fn check_manifest(manifest: &Manifest) {
    for r in &manifest.resources {
        assert!(r.stored_len() <= r.expanded_len());
        assert!(!r.archive_path().is_empty());
    }
    for task in &manifest.tasks {
        for handler in &task.on_resource {
            assert!(
                manifest.resources.iter().any(|r| r.name == handler.resource),
                "task {} handles undeclared resource {}",
                task.name,
                handler.resource
            );
        }
    }
}

fn same_shape(a: &Manifest, b: &Manifest) {
    assert_eq!(a.meta, b.meta);
    assert_eq!(a.resources, b.resources);
    let names = |m: &Manifest| m.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b));
}

fuzz_target!(|data: &[u8]| {
    match load_meta_conf(data, &env) {
        Ok(loaded) => {
            let _ = loaded.ids.uuid.len();
            check_manifest(&loaded.manifest);
            for s in &loaded.manifest.mbrs {
                check_mbr(s);
            }
            for s in &loaded.manifest.gpts {
                check_gpt(s);
            }
            for s in &loaded.manifest.uboot_envs {
                check_uboot_env(s);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tree = match parse_conf(text, &env) {
        Ok(tree) => tree,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let install = Manifest::for_install(&tree);
    if let Ok(strict) = Manifest::from_conf(&tree) {
        check_manifest(&strict);
        match &install {
            Ok(install) => same_shape(&strict, install),
            Err(e) => panic!("the strict reader accepts what the install reader refuses: {e}"),
        }
    }
});
