//! Any bytes as a U-Boot environment on a disk, single or redundant, through
//! the decoder and fwup's read / setenv / recover.
//!
//! Input: one control byte (low 5 bits: blocks per copy - 1; bit 5: a
//! redundant pair, the second copy right after the first), then the disk
//! from block 0.
//!
//! Checked beyond "no panic":
//! * decode(encode(env)) == env for every environment decoded;
//! * the environment read is one of the copies, decoded;
//! * `setenv` adds exactly its variable, and a second `setenv` never
//!   overwrites the copy holding the first: undoing the second write (a
//!   power cut before it reached the disk) reads the first `setenv`'s
//!   environment, and keeping it reads the second's;
//! * with no valid copy, `recover` leaves an empty environment.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use loader::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};
use loader::formats::{Medium, BLOCK_SIZE};

use common::SparseDisk;

fn copies(disk: &mut SparseDisk<'_>, spec: &UbootEnvSpec) -> Vec<Vec<u8>> {
    spec.byte_ranges()
        .iter()
        .map(|r| disk.bytes(r.start, (r.end - r.start) as usize))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, image)) = data.split_first() else {
        return;
    };
    let block_count = u64::from(control & 0x1f) + 1;
    let spec = UbootEnvSpec {
        name: "fuzz".into(),
        block_offset: 0,
        block_count,
        redundant_block_offset: (control & 0x20 != 0).then_some(block_count),
    };
    let mut disk = SparseDisk::new(image, 4 * block_count * BLOCK_SIZE);
    let before = copies(&mut disk, &spec);

    let mut decoded = Vec::new();
    for (copy, range) in before.iter().zip(spec.byte_ranges()) {
        match uboot_env::decode(&spec, range.start / BLOCK_SIZE, copy) {
            Ok(env) => {
                if let Ok(bytes) = uboot_env::encode(&spec, &env, 1) {
                    let again = uboot_env::decode(&spec, 0, &bytes).expect("encoded env decodes");
                    assert_eq!(again, env);
                }
                decoded.push(env);
            }
            Err(e) => assert!(e.is_invalid_env(), "{e}"),
        }
    }

    let current = match uboot_env::read(&mut disk, &spec) {
        Ok(env) => env,
        Err(e) => {
            assert!(e.is_invalid_env() && decoded.is_empty(), "{e}");
            assert!(uboot_env::recover(&mut disk, &spec).expect("recover writes"));
            assert_eq!(uboot_env::read(&mut disk, &spec).expect("recovered"), UbootEnv::new());
            return;
        }
    };
    assert!(decoded.contains(&current));

    // Two updates, the second one possibly cut off.
    if uboot_env::setenv(&mut disk, &spec, "fuzz.step", "1").is_err() {
        return; // the environment is full
    }
    let mut first = current.clone();
    first.set("fuzz.step", "1");
    assert_eq!(uboot_env::read(&mut disk, &spec).expect("reads after setenv"), first);
    let after_first = copies(&mut disk, &spec);
    if uboot_env::setenv(&mut disk, &spec, "fuzz.step", "2").is_err() {
        return;
    }
    let mut second = first.clone();
    second.set("fuzz.step", "2");
    assert_eq!(uboot_env::read(&mut disk, &spec).expect("reads after setenv"), second);
    if spec.is_redundant() {
        let after_second = copies(&mut disk, &spec);
        let changed: Vec<usize> = (0..2).filter(|&i| after_first[i] != after_second[i]).collect();
        assert_eq!(changed.len(), 1, "an update of a redundant env rewrote both copies");
        let cut = changed[0];
        let range = &spec.byte_ranges()[cut];
        disk.write_at(range.start, &after_first[cut]).expect("undo");
        assert_eq!(
            uboot_env::read(&mut disk, &spec).expect("the older copy is still there"),
            first,
            "a cut before the second write lost the first"
        );
    }
});
