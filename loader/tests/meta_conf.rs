//! Every corpus `meta.conf` (extracted from the fwup-made bundles) parses
//! into the manifest fwup would run, and gives fwup's meta-uuid.

use std::collections::HashMap;

use loader::bundle::conf::Section;
use loader::bundle::manifest::{Action, Manifest, Requirement, Task};
use loader::bundle::meta_conf::load_meta_conf;
use loader::bundle::meta_uuid::{check_declared_uuid, nickname_for_uuid, MetaIds};

/// One corpus `meta.conf` and what it must decode to.
struct Fixture {
    name: &'static str,
    /// From the corpus README table.
    uuid: &'static str,
    resources: usize,
    /// Task names in order, with their total number of actions.
    tasks: &'static [(&'static str, usize)],
}

const fn fixture(
    name: &'static str,
    uuid: &'static str,
    resources: usize,
    tasks: &'static [(&'static str, usize)],
) -> Fixture {
    Fixture {
        name,
        uuid,
        resources,
        tasks,
    }
}

#[rustfmt::skip]
const CORPUS: [Fixture; 9] = [
    fixture("01-minimal-raw", "d151625e-d4b7-594a-885a-26798a8e6d76", 1, &[("complete", 2)]),
    fixture("02-x86_64-ab-mbr", "86554711-16f9-51d0-23df-2ef3b18fa4bf", 6, AB_MBR_TASKS),
    fixture("02-x86_64-ab-mbr-v2", "05011c1d-1b61-57f2-6f8b-b2e6a5e6c009", 6, AB_MBR_TASKS),
    fixture("03-x86_64-ab-gpt", "69451f13-6c8c-5d31-6538-94ce7aba4ece", 6, AB_GPT_TASKS),
    fixture("03-x86_64-ab-gpt-v2", "680222e9-a39d-55fd-55b4-fb6d4f512696", 6, AB_GPT_TASKS),
    fixture("04-signed", "e037a02f-69ee-5f47-9c09-49ca8b74036b", 1, &[("complete", 2)]),
    fixture("04-signed-tampered-meta", "f73d6168-8043-5586-9658-aabd4200624a", 1, &[("complete", 2)]),
    fixture("05-large-base", "0005ed04-ed28-5976-9507-d9ec125efb15", 1, &[("complete", 4)]),
    fixture("06-actions-zoo", "1e3d7c61-ecd1-50e7-5ad4-bf77ad9e0f38", 6, &[
        ("complete", 29), ("guard.match2", 1), ("guard.match1", 3), ("guard.none", 1),
        ("unsafe", 1), ("reqexec.first", 1), ("reqexec.second", 1),
    ]),
];
#[rustfmt::skip]
const AB_MBR_TASKS: &[(&str, usize)] = &[
    ("complete", 27), ("upgrade.a", 21), ("upgrade.b", 21),
    ("upgrade.wrong", 1), ("upgrade.wrongplatform", 1), ("provision", 1),
];
#[rustfmt::skip]
const AB_GPT_TASKS: &[(&str, usize)] =
    &[("complete", 23), ("upgrade.a", 13), ("upgrade.b", 13), ("upgrade.wrongplatform", 1)];

fn read_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/meta-conf/{name}.meta.conf",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Loads a fixture the way fwup applies it: `FWUP_META_UUID` from the
/// bytes, the rest from `vars`.
fn load(name: &str, vars: &[(&str, &str)]) -> (MetaIds, Section, Manifest) {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let env = move |name: &str| vars.get(name).cloned();
    let loaded = load_meta_conf(&read_fixture(name), &env).unwrap_or_else(|e| panic!("{name}: {e}"));
    (loaded.ids, loaded.root, loaded.manifest)
}

fn task<'a>(m: &'a Manifest, name: &str) -> &'a Task {
    m.tasks
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

fn action_count(t: &Task) -> usize {
    t.on_init.len()
        + t.on_finish.len()
        + t.on_error.len()
        + t.on_resource.iter().map(|h| h.actions.len()).sum::<usize>()
}

fn setenv(env: &str, name: &str, value: &str) -> Action {
    Action::UbootSetenv {
        env: env.into(),
        name: name.into(),
        value: value.into(),
    }
}

fn memset(block_offset: u64, block_count: u64, value: u8) -> Action {
    Action::RawMemset {
        block_offset,
        block_count,
        value,
    }
}

fn raw_write(block_offset: u64) -> Action {
    Action::RawWrite {
        block_offset,
        cipher: None,
    }
}

fn actions_of(t: &Task, resource: &str) -> Vec<Action> {
    t.handler(resource).map(|h| h.actions.clone()).unwrap_or_default()
}

#[test]
fn meta_uuids_match_the_corpus_readme() {
    for Fixture { name, uuid, .. } in CORPUS {
        let ids = MetaIds::from_meta_conf(&read_fixture(name));
        assert_eq!(ids.uuid, uuid, "{name}");
        // The nickname is a pure function of the UUID's first two bytes.
        assert_eq!(Some(ids.nickname.clone()), nickname_for_uuid(uuid), "{name}");
        assert_eq!(ids, MetaIds::from_meta_conf(&read_fixture(name)), "{name}: stable");
    }
}

#[test]
fn every_corpus_meta_conf_builds_with_the_expected_shape() {
    for Fixture {
        name, resources, tasks, ..
    } in CORPUS
    {
        let (ids, root, m) = load(name, &[]);
        assert_eq!(m.resources.len(), resources, "{name}: resources");
        let got: Vec<(&str, usize)> = m.tasks.iter().map(|t| (t.name.as_str(), action_count(t))).collect();
        assert_eq!(got, tasks, "{name}: tasks and action counts");
        assert!(m.warnings.is_empty(), "{name}: {:?}", m.warnings);
        assert_eq!(check_declared_uuid(&root, &ids), Ok(()), "{name}");
    }
}

#[test]
fn minimal_bundle_decodes_exactly() {
    let (_, _, m) = load("01-minimal-raw", &[]);
    assert_eq!(m.meta.product.as_deref(), Some("loader-test minimal"));
    assert_eq!(m.meta.version.as_deref(), Some("0.1.0"));
    assert_eq!(m.resources[0].name, "payload.bin");
    assert_eq!(m.resources[0].sparse_map, [100000]);
    assert_eq!(m.resources[0].blake2b_256[..4], [0x9b, 0x7a, 0x4e, 0x69]);
    assert_eq!(m.mbrs.len(), 1);
    let t = task(&m, "complete");
    assert_eq!(t.on_init, [Action::MbrWrite { mbr: "mbr-a".into() }]);
    assert_eq!(actions_of(t, "payload.bin"), [raw_write(2048)]);
    // The tampered copy differs in exactly the edited offset.
    let (_, _, tampered) = load("04-signed-tampered-meta", &[]);
    assert_eq!(
        actions_of(task(&tampered, "complete"), "payload.bin"),
        [raw_write(4096)]
    );
}

#[test]
fn ab_bundle_expands_the_uuid_and_the_environment() {
    let (ids, _, m) = load("02-x86_64-ab-mbr", &[("NERVES_SERIAL_NUMBER", "LT-0001")]);
    assert_eq!(ids.uuid, "86554711-16f9-51d0-23df-2ef3b18fa4bf");
    assert_eq!(m.require_fwup_version.as_deref(), Some("0.15.0"));
    let complete = task(&m, "complete");
    let uuid_set = setenv("uboot-env", "a.nerves_fw_uuid", "86554711-16f9-51d0-23df-2ef3b18fa4bf");
    assert_eq!(complete.on_init.last(), Some(&uuid_set));
    assert!(complete
        .on_init
        .contains(&setenv("uboot-env", "nerves_serial_number", "LT-0001")));
    assert_eq!(complete.on_finish[2], memset(1608191, 1, 0xff));
    assert_eq!(complete.handler("rootfs.img").map(|h| h.delta_source), Some(false));

    let up_a = task(&m, "upgrade.a");
    assert_eq!(up_a.requirements.len(), 3);
    let active_b = Requirement::UbootVariable {
        env: "uboot-env".into(),
        name: "nerves_fw_active".into(),
        value: "b".into(),
    };
    assert_eq!(up_a.requirements[0], active_b);
    assert_eq!(up_a.handler("rootfs.img").map(|h| h.delta_source), Some(true));
    let trim_a = Action::Trim {
        block_offset: 35328,
        block_count: 524288,
    };
    assert_eq!(up_a.on_init.last(), Some(&trim_a));

    // Unset variables expand to nothing (02-complete-noserial).
    let (_, _, m) = load("02-x86_64-ab-mbr", &[]);
    let no_serial = setenv("uboot-env", "nerves_serial_number", "");
    assert!(task(&m, "complete").on_init.contains(&no_serial));
}

#[test]
fn gpt_bundle_keeps_its_gpt_section() {
    let (_, _, m) = load("03-x86_64-ab-gpt", &[]);
    assert_eq!(m.gpts.len(), 1);
    assert_eq!(m.gpts[0].title.as_deref(), Some("gpt"));
    assert_eq!(m.gpts[0].children("partition").count(), 4);
    assert_eq!(task(&m, "complete").on_init[0], Action::GptWrite { gpt: "gpt".into() });
    assert_eq!(m.uboot_envs.len(), 1);
}

#[test]
fn large_base_has_every_event_handler() {
    let (_, _, m) = load("05-large-base", &[]);
    let t = task(&m, "complete");
    assert_eq!(t.on_finish, [memset(6000, 1, 0x5a)]);
    assert_eq!(
        t.on_error,
        [Action::Info {
            message: "on-error handler ran".into()
        }]
    );
    assert_eq!(m.resources[0].stored_len(), 1048576);
}

#[test]
fn actions_zoo_decodes_exactly() {
    let (_, _, m) = load("06-actions-zoo", &[("ZOO_SERIAL", "Z-42")]);
    let misc = r#"misc string with "quotes" and a backslash \ in it"#;
    assert_eq!(m.meta.misc.as_deref(), Some(misc));
    assert_eq!(m.require_fwup_version.as_deref(), Some("1.12.0"));
    let resource = |name: &str| m.resources.iter().find(|r| r.name == name).expect(name);
    let sparse = resource("sparse.img");
    assert_eq!(sparse.sparse_map, [65536, 983040, 65536, 983040]);
    assert_eq!((sparse.stored_len(), sparse.expanded_len()), (131072, 2097152));
    assert_eq!(resource("/extra.bin").archive_path(), "extra.bin");

    let t = task(&m, "complete");
    assert!(t.on_init.contains(&setenv("env", "serial", "Z-42")));
    assert!(t.on_init.contains(&memset(18432, 4096, 0xa5)));
    let cp = |to_offset: u64, to: &str| Action::FatCp {
        from_offset: 2048,
        from: "config.txt".into(),
        to_offset,
        to: to.into(),
    };
    // 4-argument fat_cp copies inside one volume, 5 arguments across two.
    assert_eq!(t.on_finish[..2], [cp(2048, "config.bak"), cp(10240, "config-copy.txt")]);
    let mv = Action::FatMv {
        block_offset: 2048,
        from: "config.old".into(),
        to: "victim.txt".into(),
        force: true,
    };
    assert!(t.on_finish.contains(&mv), "fat_mv! decodes with force");
    let rm = Action::FatRm {
        block_offset: 2048,
        path: "does-not-exist.txt".into(),
        must_exist: false,
    };
    assert!(t.on_finish.contains(&rm));
    assert!(t.on_finish.contains(&Action::UbootRecover { env: "env".into() }));
    let notes = Action::FatWrite {
        block_offset: 2048,
        path: "notes.txt".into(),
    };
    assert_eq!(actions_of(t, "notes.txt"), [notes]);

    let guard = task(&m, "guard.match1");
    #[rustfmt::skip]
    let expected = [
        Requirement::FatFileMatch { block_offset: 2048, path: "config.txt".into(), pattern: "version=1".into() },
        Requirement::FatFileExists { block_offset: 2048, path: "/dir/empty.txt".into() },
        Requirement::PartitionOffset { partition: 2, block_offset: 18432 },
        Requirement::UbootVariable { env: "env".into(), name: "zoo_done".into(), value: "yes".into() },
    ];
    assert_eq!(guard.requirements, expected);
    let reqexec = &task(&m, "reqexec.first").requirements;
    assert_eq!(
        reqexec,
        &[Requirement::Execute {
            command: "false".into()
        }]
    );
    let unsafe_task = task(&m, "unsafe");
    assert_eq!(unsafe_task.on_init, [Action::Execute { command: "true".into() }]);
    assert!(unsafe_task.on_init[0].is_unsafe());
}
