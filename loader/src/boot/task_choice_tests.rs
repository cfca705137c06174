use std::collections::BTreeMap;

use super::*;
use crate::bundle::manifest::{Meta, Task};
use crate::inspect_disk::{EnvState, PartitionContents, PartitionSlot, Signature, TableKind};

const UUID_V1: &str = "11111111-1111-1111-1111-111111111111";
const UUID_V2: &str = "22222222-2222-2222-2222-222222222222";

/// The facts of corpus bundle 02 (nerves_system_x86_64 layout), version 2.0.0.
fn bundle_v2() -> BundleFacts {
    BundleFacts {
        product: Some("Loader Test Firmware".into()),
        version: Some("2.0.0".into()),
        platform: Some("x86_64".into()),
        architecture: Some("x86_64".into()),
        uuid: Some(UUID_V2.into()),
        tasks: [
            "complete",
            "upgrade.a",
            "upgrade.b",
            "upgrade.wrong",
            "upgrade.wrongplatform",
            "provision",
        ]
        .map(String::from)
        .to_vec(),
        has_partition_table: true,
        data_partition: Some(4),
        data_partition_place: Some((1083904, 524288, false)),
    }
}

/// What `complete` of bundle 02 v1.0.0 leaves in the environment.
fn env_after_complete(slot: &str) -> BTreeMap<String, String> {
    [
        ("nerves_fw_active", slot),
        ("a.nerves_fw_product", "Loader Test Firmware"),
        ("a.nerves_fw_version", "1.0.0"),
        ("a.nerves_fw_platform", "x86_64"),
        ("a.nerves_fw_architecture", "x86_64"),
        ("a.nerves_fw_uuid", UUID_V1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Bundle 02's four MBR partitions.
fn nerves_partitions() -> Vec<PartitionContents> {
    [
        (1, 4096, 31232, 0x0c),
        (2, 35328, 524288, 0x83),
        (3, 559616, 524288, 0x83),
        (4, 1083904, 524288, 0x83),
    ]
    .map(|(number, first_block, blocks, kind)| PartitionContents {
        slot: PartitionSlot {
            number,
            first_block,
            blocks,
            mbr_type: Some(kind),
            gpt_type: None,
            name: None,
        },
        filesystem: None,
    })
    .to_vec()
}

fn facts(env: EnvState, layout: LayoutComparison) -> DiskFacts {
    let has_table = !matches!(layout, LayoutComparison::NoTable | LayoutComparison::NotChecked);
    let install = env.vars().and_then(Installed::from_env);
    DiskFacts {
        contents: DiskContents {
            size: Some(1 << 30),
            table: if has_table { TableKind::Mbr } else { TableKind::None },
            partitions: if has_table { nerves_partitions() } else { Vec::new() },
            whole_disk: None,
            env,
            install,
            grubenv: None,
        },
        layout,
    }
}

fn valid(vars: BTreeMap<String, String>) -> EnvState {
    EnvState::Valid { block: 2048, vars }
}

fn damaged() -> EnvState {
    EnvState::Damaged {
        block: 2048,
        problem: "CRC mismatch".into(),
    }
}

fn decide(disk: &DiskFacts) -> Result<TaskChoice, TaskChoiceError> {
    choose_task(&TaskRequest::Auto, Policy::default(), &bundle_v2(), disk)
}

fn installed_v1() -> DiskFacts {
    facts(valid(env_after_complete("a")), LayoutComparison::Matches)
}

#[test]
fn a_blank_disk_gets_complete() {
    let choice = decide(&facts(EnvState::Absent, LayoutComparison::NoTable)).expect("complete");
    assert_eq!((choice.task.as_str(), choice.kind), ("complete", TaskKind::Complete));
    assert_eq!(choice.reason, "disk is blank: installing from scratch (task complete)");
}

#[test]
fn a_disk_with_the_same_product_is_upgraded_keeping_data() {
    let choice = decide(&installed_v1()).expect("upgrade");
    assert_eq!((choice.task.as_str(), choice.kind), ("upgrade", TaskKind::Upgrade));
    assert_eq!(
        choice.reason,
        "disk holds slot a of 'Loader Test Firmware' 1.0.0 for x86_64: upgrading to 2.0.0 \
         (keeps application data); set loader.task=complete to wipe"
    );
}

#[test]
fn another_product_is_refused_not_wiped() {
    let mut other = env_after_complete("a");
    other.insert("a.nerves_fw_product".into(), "Another Product".into());
    let err = decide(&facts(valid(other), LayoutComparison::Differs("p1".into()))).expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.starts_with("disk holds MBR with 4 partition(s): 1: FAT32 (0x0c)"),
        "names the table and partitions: {msg}"
    );
    assert!(
        msg.contains("install: slot a of 'Another Product' 1.0.0 for x86_64; that is not 'Loader Test Firmware' for x86_64; set loader.task=complete to wipe the disk and install"),
        "{msg}"
    );

    let mut rpi = env_after_complete("a");
    rpi.insert("a.nerves_fw_platform".into(), "rpi4".into());
    assert!(decide(&facts(valid(rpi), LayoutComparison::Matches)).is_err());
}

#[test]
fn a_foreign_disk_is_refused_naming_what_is_on_it() {
    let mut disk = facts(
        EnvState::Absent,
        LayoutComparison::Differs("partition 1 is Linux".into()),
    );
    disk.contents.partitions.truncate(1);
    disk.contents.partitions[0].filesystem = Some(Signature {
        kind: crate::inspect_disk::FsKind::Ext4,
        label: Some("root".into()),
    });
    let err = decide(&disk).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "disk holds MBR with 1 partition(s): 1: FAT32 (0x0c), 15.2 MiB at block 4096, ext4 \"root\"; \
         loader.task=auto installs only onto a blank disk or upgrades an install of 'Loader Test Firmware' for \
         x86_64; set loader.task=complete to wipe the disk and install"
    );
}

#[test]
fn a_damaged_environment_over_the_bundles_layout_points_to_repair() {
    let err = decide(&facts(damaged(), LayoutComparison::Matches)).expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("; an unreadable U-Boot environment at block 2048;"),
        "{msg}"
    );
    assert!(
        msg.ends_with(
            "set loader.task=repair to reinstall keeping the data partition, or loader.task=complete to wipe the \
             disk and install"
        ),
        "{msg}"
    );
    // The same with no environment at all (the layout alone).
    let err = decide(&facts(EnvState::Absent, LayoutComparison::Matches)).expect_err("refused");
    assert!(err.to_string().contains("loader.task=repair"), "{err}");
}

#[test]
fn the_bundle_already_active_writes_nothing() {
    let mut env = env_after_complete("a");
    env.insert("a.nerves_fw_uuid".into(), UUID_V2.into());
    let disk = facts(valid(env), LayoutComparison::Matches);
    let choice = decide(&disk).expect("nothing to do");
    assert_eq!(choice.kind, TaskKind::AlreadyActive);
    assert!(choice.reason.contains(UUID_V2), "{}", choice.reason);
    let explicit = TaskRequest::Prefix("upgrade".into());
    let choice = choose_task(&explicit, Policy::default(), &bundle_v2(), &disk).expect("nothing to do");
    assert_eq!(
        choice.kind,
        TaskKind::AlreadyActive,
        "an explicit upgrade to itself loops otherwise"
    );
    let complete = TaskRequest::Prefix("complete".into());
    let choice = choose_task(&complete, Policy::default(), &bundle_v2(), &disk).expect("complete");
    assert_eq!(choice.kind, TaskKind::Requested, "an explicit complete reinstalls");
}

/// What a first install cut between its environment and its final
/// sector 0 leaves (see `apply::commit`): the environment, no table.
fn cut_before_table(uuid: &str) -> DiskFacts {
    let mut env = env_after_complete("a");
    env.insert("a.nerves_fw_uuid".into(), uuid.into());
    facts(valid(env), LayoutComparison::NoTable)
}

#[test]
fn an_install_cut_before_its_table_is_finished_not_called_active() {
    for uuid in [UUID_V2, UUID_V1] {
        for request in [TaskRequest::Auto, TaskRequest::Repair] {
            let choice = choose_task(&request, Policy::default(), &bundle_v2(), &cut_before_table(uuid))
                .unwrap_or_else(|e| panic!("{request:?} over a cut install of {uuid}: {e}"));
            assert_eq!(
                (choice.task.as_str(), choice.kind),
                ("complete", TaskKind::Repair),
                "{uuid}"
            );
            let keep = choice.keep.expect("kept partition");
            assert_eq!(keep.number, 4);
            assert_eq!(keep.range, 1083904 * 512..(1083904 + 524288) * 512);
            assert!(
                choice.reason.contains("cut before its partition table"),
                "{}",
                choice.reason
            );
        }
    }
    let mut no_data = bundle_v2();
    no_data.data_partition = None;
    let choice = decide_with(&no_data, &cut_before_table(UUID_V2)).expect("complete");
    assert_eq!((choice.task.as_str(), choice.kind), ("complete", TaskKind::Complete));
    let upgrade = TaskRequest::Prefix("upgrade".into());
    let err = choose_task(&upgrade, Policy::default(), &bundle_v2(), &cut_before_table(UUID_V1)).expect_err("refused");
    assert!(err.to_string().contains("loader.task=auto"), "{err}");
}

#[test]
fn a_cut_install_of_another_product_or_beside_a_filesystem_is_refused() {
    let mut other = env_after_complete("a");
    other.insert("a.nerves_fw_product".into(), "Something Else".into());
    assert!(decide(&facts(valid(other), LayoutComparison::NoTable)).is_err());
    let mut beside_ext4 = cut_before_table(UUID_V1);
    beside_ext4.contents.whole_disk = Some(Signature {
        kind: crate::inspect_disk::FsKind::Ext4,
        label: None,
    });
    assert!(decide(&beside_ext4).is_err());
}

fn decide_with(bundle: &BundleFacts, disk: &DiskFacts) -> Result<TaskChoice, TaskChoiceError> {
    choose_task(&TaskRequest::Auto, Policy::default(), bundle, disk)
}

#[test]
fn an_older_version_is_refused_unless_allowed() {
    let mut env = env_after_complete("a");
    env.insert("a.nerves_fw_version".into(), "3.1.0".into());
    let disk = facts(valid(env), LayoutComparison::Matches);
    let err = decide(&disk).expect_err("downgrade");
    assert!(
        err.to_string()
            .contains("the bundle's version 2.0.0 is older than the installed 3.1.0; set loader.allow_downgrade=1"),
        "{err}"
    );
    let explicit = TaskRequest::Prefix("upgrade".into());
    assert!(choose_task(&explicit, Policy::default(), &bundle_v2(), &disk).is_err());
    let allowed = Policy { allow_downgrade: true };
    let choice = choose_task(&TaskRequest::Auto, allowed, &bundle_v2(), &disk).expect("allowed");
    assert_eq!(choice.kind, TaskKind::Upgrade);
}

#[test]
fn a_changed_layout_stops_instead_of_wiping() {
    let table = LayoutComparison::Differs("partition 2 starts at block 35328, the bundle's at 69632".into());
    let err = decide(&facts(valid(env_after_complete("a")), table)).expect_err("refused");
    assert!(
        err.to_string().ends_with(
            "its partition table differs from the bundle's (partition 2 starts at block 35328, the bundle's at \
             69632); set loader.task=complete to wipe the disk and install"
        ),
        "{err}"
    );
}

#[test]
fn a_bundle_without_an_upgrade_task_does_not_wipe_its_own_install() {
    let mut bundle = bundle_v2();
    bundle.tasks = vec!["complete".into()];
    let err = choose_task(&TaskRequest::Auto, Policy::default(), &bundle, &installed_v1()).expect_err("refused");
    assert!(
        err.to_string()
            .contains("the bundle has no upgrade task; set loader.task=complete"),
        "{err}"
    );
}

#[test]
fn repair_keeps_the_data_partition_where_the_layout_matches() {
    for env in [damaged(), EnvState::Absent, valid(env_after_complete("a"))] {
        let disk = facts(env, LayoutComparison::Matches);
        let choice = choose_task(&TaskRequest::Repair, Policy::default(), &bundle_v2(), &disk).expect("repair");
        assert_eq!((choice.task.as_str(), choice.kind), ("complete", TaskKind::Repair));
        let keep = choice.keep.expect("kept partition");
        assert_eq!(keep.number, 4);
        assert_eq!(keep.range, 1083904 * 512..(1083904 + 524288) * 512);
    }
}

#[test]
fn repair_is_refused_where_the_layout_does_not_match() {
    let differs = facts(
        damaged(),
        LayoutComparison::Differs("partition 4 starts at block 9".into()),
    );
    let err = choose_task(&TaskRequest::Repair, Policy::default(), &bundle_v2(), &differs).expect_err("refused");
    assert!(
        err.to_string()
            .contains("loader.task=repair needs the bundle's partition layout, and partition 4 starts"),
        "{err}"
    );
    let blank = facts(EnvState::Absent, LayoutComparison::NoTable);
    assert!(choose_task(&TaskRequest::Repair, Policy::default(), &bundle_v2(), &blank).is_err());
    let mut other = env_after_complete("a");
    other.insert("a.nerves_fw_product".into(), "Another Product".into());
    let foreign = facts(valid(other), LayoutComparison::Matches);
    assert!(
        choose_task(&TaskRequest::Repair, Policy::default(), &bundle_v2(), &foreign).is_err(),
        "another product's data is not ours to keep or overwrite"
    );
    let mut unnamed = bundle_v2();
    unnamed.data_partition = None;
    let err = choose_task(
        &TaskRequest::Repair,
        Policy::default(),
        &unnamed,
        &facts(damaged(), LayoutComparison::Matches),
    )
    .expect_err("no data partition");
    assert!(
        err.to_string()
            .contains("does not say which partition holds application data"),
        "{err}"
    );
}

#[test]
fn an_explicit_task_is_used_as_given_when_the_bundle_has_it() {
    let request = TaskRequest::Prefix("complete".into());
    let choice = choose_task(&request, Policy::default(), &bundle_v2(), &installed_v1()).expect("complete");
    assert_eq!((choice.task.as_str(), choice.kind), ("complete", TaskKind::Requested));
    assert_eq!(choice.reason, "running task complete as loader.task=complete asks");

    let err = choose_task(
        &TaskRequest::Prefix("factory".into()),
        Policy::default(),
        &bundle_v2(),
        &installed_v1(),
    )
    .expect_err("missing");
    assert_eq!(
        err.to_string(),
        "loader.task=factory: the bundle has no task starting with `factory`; its tasks: complete, \
         upgrade.a, upgrade.b, upgrade.wrong, upgrade.wrongplatform, provision"
    );
}

#[test]
fn auto_on_a_blank_disk_needs_a_complete_task() {
    let mut bundle = bundle_v2();
    bundle.tasks = vec!["upgrade".into()];
    let blank = facts(EnvState::Absent, LayoutComparison::NoTable);
    let err = choose_task(&TaskRequest::Auto, Policy::default(), &bundle, &blank).expect_err("no complete");
    assert!(
        err.to_string()
            .starts_with("loader.task=complete: the bundle has no task starting with `complete`"),
        "{err}"
    );
}

fn manifest() -> Manifest {
    Manifest {
        meta: Meta {
            product: Some("Loader Test Firmware".into()),
            version: Some("2.0.0".into()),
            platform: Some("x86_64".into()),
            architecture: Some("x86_64".into()),
            ..Meta::default()
        },
        tasks: ["complete", "upgrade.a", "upgrade.b"]
            .map(|n| Task {
                name: n.into(),
                ..Task::default()
            })
            .to_vec(),
        ..Manifest::default()
    }
}

#[test]
fn bundle_facts_come_from_the_manifest() {
    let facts = BundleFacts::from_manifest(&manifest(), UUID_V2);
    assert_eq!(facts.product.as_deref(), Some("Loader Test Firmware"));
    assert_eq!(facts.uuid.as_deref(), Some(UUID_V2));
    assert_eq!(facts.tasks, ["complete", "upgrade.a", "upgrade.b"]);
    assert!(!facts.has_partition_table);
    assert_eq!(facts.data_partition, None);
}

#[test]
fn reading_a_blank_medium_decides_complete() {
    let mut disk: Vec<u8> = vec![0; 1 << 20];
    let (choice, facts) = choose_task_on(
        &TaskRequest::Auto,
        Policy::default(),
        &manifest(),
        UUID_V2,
        &mut disk,
        Some(1 << 20),
    )
    .expect("complete");
    assert_eq!(choice.kind, TaskKind::Complete);
    assert!(facts.contents.is_blank());
}
