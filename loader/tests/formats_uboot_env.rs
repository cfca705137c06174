//! U-Boot environments: replaying the `uboot_*` actions of the corpus
//! bundles gives the bytes fwup 1.16 left on the disk, single and redundant.
#![allow(clippy::unwrap_used)]

mod formats_support;

use formats_support::{first_difference, meta_conf, region, section, SparseDisk, BLOCK};
use loader::bundle::conf::{Section, Value};
use loader::formats::uboot_env::{self, UbootEnv, UbootEnvSpec};
use loader::formats::{FormatError, Medium};

fn env_spec(bundle: &str, name: &str) -> UbootEnvSpec {
    UbootEnvSpec::from_section(section(&meta_conf(bundle), "uboot-environment", name)).unwrap()
}

/// `${NAME}` → value, as fwup expands meta.conf strings at apply time.
fn expand(text: &str, vars: &[(&str, &str)]) -> String {
    vars.iter()
        .fold(text.to_string(), |t, (k, v)| t.replace(&format!("${{{k}}}"), v))
}

/// Runs the `uboot_*` actions of every handler of `task`, in file order,
/// the way the engine will: the other actions do not touch the environment.
fn run_uboot_actions(disk: &mut SparseDisk, bundle: &str, task: &str, vars: &[(&str, &str)]) {
    let conf = meta_conf(bundle);
    let task = section(&conf, "task", task);
    for handler in &task.sections {
        let Some(Value::List(funlist)) = handler.get("funlist") else {
            continue;
        };
        let mut items = funlist.iter().map(|s| expand(s, vars));
        while let Some(argc) = items.next() {
            let argv: Vec<String> = items.by_ref().take(argc.parse().unwrap()).collect();
            let spec = || UbootEnvSpec::from_section(section(&conf, "uboot-environment", &argv[1])).unwrap();
            match argv[0].as_str() {
                "uboot_clearenv" => uboot_env::clear(disk, &spec()).unwrap(),
                "uboot_setenv" => uboot_env::setenv(disk, &spec(), &argv[2], &argv[3]).unwrap(),
                "uboot_unsetenv" => uboot_env::unsetenv(disk, &spec(), &argv[2]).unwrap(),
                "uboot_recover" => {
                    uboot_env::recover(disk, &spec()).unwrap();
                }
                _ => {}
            }
        }
    }
}

fn assert_region(disk: &mut SparseDisk, case: &str, start: u64, count: u64) {
    let expected = region(case, start, count);
    let actual = disk.bytes(start * BLOCK, expected.len());
    assert!(
        expected == actual,
        "{case} blocks {start}+{count}: {}",
        first_difference(&expected, &actual)
    );
}

const V1_UUID: &str = "86554711-16f9-51d0-23df-2ef3b18fa4bf";
const V2_UUID: &str = "05011c1d-1b61-57f2-6f8b-b2e6a5e6c009";

#[test]
fn complete_task_writes_fwups_environment() {
    let mut disk = SparseDisk::new();
    let vars = [("NERVES_SERIAL_NUMBER", "LT-0001"), ("FWUP_META_UUID", V1_UUID)];
    run_uboot_actions(&mut disk, "02-x86_64-ab-mbr", "complete", &vars);
    assert_region(&mut disk, "02-complete", 2048, 16);

    let env = uboot_env::read(&mut disk, &env_spec("02-x86_64-ab-mbr", "uboot-env")).unwrap();
    assert_eq!(env.len(), 15);
    assert_eq!(env.get("nerves_fw_active"), Some("a"));
    assert_eq!(env.get("a.nerves_fw_uuid"), Some(V1_UUID));
}

#[test]
fn upgrade_to_b_rewrites_the_environment_like_fwup() {
    let mut disk = SparseDisk::new();
    disk.write_at_block(2048, &region("02-complete", 2048, 16));
    run_uboot_actions(
        &mut disk,
        "02-x86_64-ab-mbr-v2",
        "upgrade.b",
        &[("FWUP_META_UUID", V2_UUID)],
    );
    assert_region(&mut disk, "02-up1-v2-to-b", 2048, 16);

    let env = uboot_env::read(&mut disk, &env_spec("02-x86_64-ab-mbr-v2", "uboot-env")).unwrap();
    assert_eq!(env.get("nerves_fw_active"), Some("b"));
    assert_eq!(env.get("b.nerves_fw_version"), Some("2.0.0"));
    assert_eq!(env.get("a.nerves_fw_version"), Some("1.0.0"));
}

#[test]
fn redundant_environment_alternates_copies_like_fwup() {
    let mut disk = SparseDisk::new();
    run_uboot_actions(&mut disk, "06-actions-zoo", "complete", &[("ZOO_SERIAL", "Z-42")]);
    assert_region(&mut disk, "06-complete", 256, 32);
    // Flags 5 (primary) and 6 (secondary, newest).
    assert_eq!(
        (disk.bytes(256 * BLOCK + 4, 1)[0], disk.bytes(272 * BLOCK + 4, 1)[0]),
        (5, 6)
    );
    let spec = env_spec("06-actions-zoo", "env");
    let env = uboot_env::read(&mut disk, &spec).unwrap();
    let expected: UbootEnv = [("serial", "Z-42"), ("zoo", "1"), ("zoo_done", "yes")]
        .into_iter()
        .collect();
    assert_eq!(env, expected);

    run_uboot_actions(&mut disk, "06-actions-zoo", "guard.match1", &[]);
    assert_region(&mut disk, "06-guard", 256, 32);
}

#[test]
fn redundant_read_falls_back_to_the_older_valid_copy() {
    let spec = env_spec("06-actions-zoo", "env");
    let mut disk = SparseDisk::new();
    disk.write_at_block(256, &region("06-complete", 256, 32));

    // Break the newer copy (flag 6 at block 272): the older one counts.
    disk.write_at(272 * BLOCK + 10, b"X").unwrap();
    let env = uboot_env::read(&mut disk, &spec).unwrap();
    assert_eq!(env.get("zoo_done"), None);
    assert_eq!(env.get("serial"), Some("Z-42"));

    // The next write replaces the broken copy, flag 5 + 1.
    uboot_env::setenv(&mut disk, &spec, "k", "v").unwrap();
    assert_eq!(disk.bytes(272 * BLOCK + 4, 1)[0], 6);
    assert_eq!(uboot_env::read(&mut disk, &spec).unwrap().get("k"), Some("v"));
}

#[test]
fn the_flag_counter_wraps_modulo_256_as_in_fwup() {
    // fwup takes the secondary copy as newer when its flag is 1 to 127
    // steps ahead of the primary's (uboot_env_read_redundant): 0x80 follows
    // 0x7f (fixture parity/10-complete, written by fwup across it).
    let spec = env_spec("06-actions-zoo", "env");
    let mut disk = SparseDisk::new();
    let old: UbootEnv = [("copy", "primary")].into_iter().collect();
    let new: UbootEnv = [("copy", "secondary")].into_iter().collect();
    disk.write_at_block(256, &uboot_env::encode(&spec, &old, 0x7f).unwrap());
    disk.write_at_block(272, &uboot_env::encode(&spec, &new, 0x80).unwrap());
    assert_eq!(
        uboot_env::read(&mut disk, &spec).unwrap().get("copy"),
        Some("secondary")
    );

    // The write replaces the copy that was not read, counting up from 0x80.
    let secondary_before = disk.bytes(272 * BLOCK, spec.size());
    let third: UbootEnv = [("copy", "third")].into_iter().collect();
    uboot_env::write(&mut disk, &spec, &third).unwrap();
    assert_eq!(disk.bytes(272 * BLOCK, spec.size()), secondary_before);
    assert_eq!(
        disk.bytes(256 * BLOCK, spec.size()),
        uboot_env::encode(&spec, &third, 0x81).unwrap()
    );
    // And 0x00 follows 0xff.
    disk.write_at_block(256, &uboot_env::encode(&spec, &old, 0xff).unwrap());
    disk.write_at_block(272, &uboot_env::encode(&spec, &new, 0x00).unwrap());
    assert_eq!(
        uboot_env::read(&mut disk, &spec).unwrap().get("copy"),
        Some("secondary")
    );
}

#[test]
fn blank_environment_is_invalid_and_recover_rewrites_it() {
    for (bundle, name) in [("02-x86_64-ab-mbr", "uboot-env"), ("06-actions-zoo", "env")] {
        let spec = env_spec(bundle, name);
        let mut disk = SparseDisk::new();
        let err = uboot_env::read(&mut disk, &spec).unwrap_err();
        assert!(err.is_invalid_env(), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("U-Boot environment at block {}", spec.block_offset)),
            "{err}"
        );
        let err = uboot_env::setenv(&mut disk, &spec, "a", "1").unwrap_err();
        assert!(err.is_invalid_env(), "setenv on a blank env must fail like fwup: {err}");

        assert!(uboot_env::recover(&mut disk, &spec).unwrap());
        assert!(uboot_env::read(&mut disk, &spec).unwrap().is_empty());
        assert!(
            !uboot_env::recover(&mut disk, &spec).unwrap(),
            "a valid env is left alone"
        );
        if let Some(redundant) = spec.redundant_block_offset {
            let both = (
                disk.bytes(spec.block_offset * BLOCK, spec.size()),
                disk.bytes(redundant * BLOCK, spec.size()),
            );
            assert_eq!(both.0, both.1, "recover writes both copies");
            assert_eq!(both.0[4], 1);
        }
    }
}

#[test]
fn clearenv_resets_both_copies_to_flag_one() {
    let spec = env_spec("06-actions-zoo", "env");
    let mut disk = SparseDisk::new();
    disk.write_at_block(256, &region("06-complete", 256, 32));
    uboot_env::clear(&mut disk, &spec).unwrap();
    let (a, b) = (
        disk.bytes(256 * BLOCK, spec.size()),
        disk.bytes(272 * BLOCK, spec.size()),
    );
    assert_eq!(a, b);
    assert_eq!(a[4], 1);
    assert_eq!(&a[5..7], &[0, 0xff]);
}

fn with_option(bundle: &str, name: &str, key: &str, value: &str) -> Section {
    let mut s = section(&meta_conf(bundle), "uboot-environment", name).clone();
    s.options.push((key.to_string(), Value::Scalar(value.to_string())));
    s
}

#[test]
fn environment_that_does_not_fit_is_refused() {
    let spec = UbootEnvSpec::from_section(&with_option("02-x86_64-ab-mbr", "uboot-env", "block-count", "1")).unwrap();
    let mut disk = SparseDisk::new();
    uboot_env::clear(&mut disk, &spec).unwrap();
    uboot_env::setenv(&mut disk, &spec, "a", &"x".repeat(400)).unwrap();
    let err = uboot_env::setenv(&mut disk, &spec, "b", &"y".repeat(200)).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::EnvFull {
                needed: 606,
                capacity: 506,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("uboot-environment \"uboot-env\": the variables need 606 bytes"),
        "{err}"
    );
    // Nothing was written: the old value is still there.
    assert_eq!(
        uboot_env::read(&mut disk, &spec).unwrap().get("a").map(str::len),
        Some(400)
    );
}

#[test]
fn spec_errors_name_the_option() {
    let err = |s: Section| UbootEnvSpec::from_section(&s).unwrap_err().to_string();
    assert_eq!(
        err(with_option("06-actions-zoo", "env", "block-offset-redund", "260")),
        "uboot-environment \"env\": option `block-offset-redund`: the copy at blocks 260..276 overlaps the first at 256..272"
    );
    assert_eq!(
        err(with_option("06-actions-zoo", "env", "block-count", "65535")),
        "uboot-environment \"env\": option `block-count`: 65535 must be below 65535"
    );
    assert!(err(with_option("06-actions-zoo", "env", "block-count", "0")).contains("must be at least 1"));
}

#[test]
fn guards_read_through_a_dyn_medium() {
    // The engine's guards hold the disk as `&mut dyn Medium`.
    let mut disk = SparseDisk::new();
    disk.write_at_block(2048, &region("02-complete", 2048, 16));
    let dyn_disk: &mut dyn Medium = &mut disk;
    let spec = env_spec("02-x86_64-ab-mbr", "uboot-env");
    let env = uboot_env::read(dyn_disk, &spec).unwrap();
    assert_eq!(env.get("nerves_serial_number"), Some("LT-0001"));
    let ranges = spec.byte_ranges();
    assert_eq!((ranges.len(), &ranges[0]), (1, &(2048 * BLOCK..2064 * BLOCK)));
    assert_eq!(
        env_spec("06-actions-zoo", "env").byte_ranges(),
        [256 * BLOCK..272 * BLOCK, 272 * BLOCK..288 * BLOCK]
    );
}

#[test]
fn values_that_are_not_utf8_survive_a_rewrite() {
    let spec = env_spec("02-x86_64-ab-mbr", "uboot-env");
    let mut disk = SparseDisk::new();
    let env: UbootEnv = [(b"raw".as_slice(), b"\xff\x01".as_slice())].into_iter().collect();
    uboot_env::write(&mut disk, &spec, &env).unwrap();
    uboot_env::setenv(&mut disk, &spec, "other", "1").unwrap();
    let env = uboot_env::read(&mut disk, &spec).unwrap();
    assert_eq!(env.get_bytes("raw"), Some(b"\xff\x01".as_slice()));
    assert_eq!(env.get("raw"), None, "not text");
}
