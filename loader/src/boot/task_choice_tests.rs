use super::*;
use crate::bundle::manifest::{Meta, Task};

/// The facts of corpus bundle 02 (nerves_system_x86_64 layout), version 2.0.0.
fn bundle_v2() -> BundleFacts {
    BundleFacts {
        product: Some("Loader Test Firmware".into()),
        version: Some("2.0.0".into()),
        platform: Some("x86_64".into()),
        architecture: Some("x86_64".into()),
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
    }
}

/// What `complete` of bundle 02 v1.0.0 leaves in the environment.
fn env_after_complete(slot: &str) -> BTreeMap<String, String> {
    [
        ("nerves_fw_active", slot.to_string()),
        ("a.nerves_fw_product", "Loader Test Firmware".into()),
        ("a.nerves_fw_version", "1.0.0".into()),
        ("a.nerves_fw_platform", "x86_64".into()),
        ("a.nerves_fw_architecture", "x86_64".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn facts(env: Option<BTreeMap<String, String>>, table: TableComparison) -> DiskFacts {
    DiskFacts {
        uboot_env: env,
        partition_table: table,
    }
}

fn decide(disk: &DiskFacts) -> Result<TaskChoice, TaskChoiceError> {
    choose_task(&TaskRequest::Auto, &bundle_v2(), disk)
}

#[test]
fn a_blank_disk_gets_complete() {
    let choice = decide(&facts(None, TableComparison::NoTable)).expect("complete");
    assert_eq!((choice.task.as_str(), choice.kind), ("complete", TaskKind::Complete));
    assert_eq!(
        choice.reason,
        "disk holds no recognised install: installing from scratch (task complete)"
    );
}

#[test]
fn a_disk_with_the_same_firmware_is_upgraded_keeping_data() {
    let choice = decide(&facts(Some(env_after_complete("a")), TableComparison::Matches)).expect("upgrade");
    assert_eq!((choice.task.as_str(), choice.kind), ("upgrade", TaskKind::Upgrade));
    assert_eq!(
        choice.reason,
        "disk holds slot a of 'Loader Test Firmware' 1.0.0 for x86_64: upgrading to 2.0.0 \
         (keeps application data); set loader.task=complete to wipe"
    );
    let unchecked = decide(&facts(Some(env_after_complete("a")), TableComparison::NotChecked));
    assert_eq!(unchecked.map(|c| c.kind).ok(), Some(TaskKind::Upgrade));
}

#[test]
fn a_different_product_or_platform_is_not_recognised() {
    let mut other = env_after_complete("a");
    other.insert("a.nerves_fw_product".into(), "Another Product".into());
    let choice = decide(&facts(Some(other), TableComparison::Differs("p1".into()))).expect("complete");
    assert_eq!(choice.kind, TaskKind::Complete);
    assert!(
        choice.reason.starts_with(
            "disk holds slot a of 'Another Product' 1.0.0 for x86_64, a different firmware than \
         'Loader Test Firmware' for x86_64"
        ),
        "{}",
        choice.reason
    );

    let mut rpi = env_after_complete("a");
    rpi.insert("a.nerves_fw_platform".into(), "rpi4".into());
    assert_eq!(
        decide(&facts(Some(rpi), TableComparison::Matches)).map(|c| c.kind).ok(),
        Some(TaskKind::Complete)
    );
}

#[test]
fn an_environment_without_an_active_slot_or_identity_is_not_an_install() {
    let mut no_active = env_after_complete("a");
    no_active.remove("nerves_fw_active");
    assert_eq!(
        decide(&facts(Some(no_active), TableComparison::NoTable))
            .map(|c| c.kind)
            .ok(),
        Some(TaskKind::Complete)
    );
    let anonymous: BTreeMap<String, String> = [("nerves_fw_active".to_string(), "b".to_string())].into();
    assert_eq!(
        decide(&facts(Some(anonymous), TableComparison::NoTable))
            .map(|c| c.kind)
            .ok(),
        Some(TaskKind::Complete)
    );
}

#[test]
fn slot_b_is_read_from_the_b_variables() {
    let env: BTreeMap<String, String> = [
        ("nerves_fw_active", "b"),
        ("a.nerves_fw_product", "Something Else"),
        ("b.nerves_fw_product", "Loader Test Firmware"),
        ("b.nerves_fw_platform", "x86_64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let choice = decide(&facts(Some(env), TableComparison::Matches)).expect("upgrade");
    assert!(
        choice
            .reason
            .starts_with("disk holds slot b of 'Loader Test Firmware' for x86_64"),
        "{}",
        choice.reason
    );
}

#[test]
fn a_changed_layout_stops_instead_of_wiping() {
    let table = TableComparison::Differs("partition 2 starts at block 35328, the bundle's at 69632".into());
    let err = decide(&facts(Some(env_after_complete("a")), table)).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "disk holds slot a of 'Loader Test Firmware' 1.0.0 for x86_64, but its partition table differs \
         from the bundle's (partition 2 starts at block 35328, the bundle's at 69632); set \
         loader.task=complete to reinstall, wiping the disk"
    );
    let err = decide(&facts(Some(env_after_complete("a")), TableComparison::NoTable)).expect_err("refused");
    assert!(err.to_string().contains("it has no partition table"), "{err}");
}

#[test]
fn a_bundle_without_an_upgrade_task_does_not_wipe_its_own_install() {
    let mut bundle = bundle_v2();
    bundle.tasks = vec!["complete".into()];
    let err = choose_task(
        &TaskRequest::Auto,
        &bundle,
        &facts(Some(env_after_complete("a")), TableComparison::Matches),
    )
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("the bundle has no upgrade task; set loader.task=complete"),
        "{err}"
    );
}

#[test]
fn the_bundles_table_without_an_environment_stops_too() {
    let err = decide(&facts(None, TableComparison::Matches)).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("disk holds the bundle's partition table, but no U-Boot environment"),
        "{err}"
    );
}

#[test]
fn an_explicit_task_is_used_as_given_when_the_bundle_has_it() {
    let installed = facts(Some(env_after_complete("a")), TableComparison::Matches);
    let request = TaskRequest::Prefix("complete".into());
    let choice = choose_task(&request, &bundle_v2(), &installed).expect("complete");
    assert_eq!((choice.task.as_str(), choice.kind), ("complete", TaskKind::Requested));
    assert_eq!(choice.reason, "running task complete as loader.task=complete asks");

    let err = choose_task(&TaskRequest::Prefix("factory".into()), &bundle_v2(), &installed).expect_err("missing");
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
    let err =
        choose_task(&TaskRequest::Auto, &bundle, &facts(None, TableComparison::NoTable)).expect_err("no complete");
    assert!(
        err.to_string()
            .starts_with("loader.task=complete: the bundle has no task starting with `complete`"),
        "{err}"
    );
}

/// A reader that reports fixed facts, or fails.
struct FixedReader(Option<DiskFacts>);

impl InstallReader for FixedReader {
    fn read_facts(
        &self,
        disk: &mut dyn Medium,
        _manifest: &Manifest,
    ) -> Result<DiskFacts, Box<dyn std::error::Error + Send + Sync>> {
        let mut first = [0u8; 1];
        disk.read_at(0, &mut first)?;
        self.0.clone().ok_or_else(|| "short read at block 2048".into())
    }
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
fn the_reader_plugs_in_and_its_failure_is_reported() {
    let mut disk: Vec<u8> = vec![0; 4096];
    let reader = FixedReader(Some(facts(Some(env_after_complete("a")), TableComparison::NotChecked)));
    let choice = choose_task_on(&TaskRequest::Auto, &manifest(), &mut disk, &reader).expect("upgrade");
    assert_eq!(choice.kind, TaskKind::Upgrade);

    let err = choose_task_on(&TaskRequest::Auto, &manifest(), &mut disk, &FixedReader(None)).expect_err("fails");
    assert_eq!(
        err.to_string(),
        "reading the disk to decide between complete and upgrade: short read at block 2048"
    );

    let explicit = TaskRequest::Prefix("complete".into());
    let choice = choose_task_on(&explicit, &manifest(), &mut disk, &FixedReader(None)).expect("no read needed");
    assert_eq!(choice.kind, TaskKind::Requested);
}

#[test]
fn bundle_facts_come_from_the_manifest() {
    let facts = BundleFacts::from_manifest(&manifest());
    assert_eq!(facts.product.as_deref(), Some("Loader Test Firmware"));
    assert_eq!(facts.tasks, ["complete", "upgrade.a", "upgrade.b"]);
    assert!(!facts.has_partition_table);
}
