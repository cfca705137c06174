use super::*;

fn outcomes(reports: &[StepReport]) -> Vec<String> {
    reports.iter().map(ToString::to_string).collect()
}

#[test]
fn the_plan_prints_one_numbered_step_per_line() {
    let text = early_plan().to_string();
    assert!(text.starts_with(" 1. mkdir /dev (0755)\n"), "{text}");
    assert!(text.contains(" 7. mount devtmpfs on /dev (mode=0755)\n"), "{text}");
    assert!(text.contains("mount tmpfs on /tmp (mode=1777)\n"), "{text}");
    assert!(text.contains("mount efivarfs on /sys/firmware/efi/efivars if /sys/firmware/efi/efivars exists\n"));
    assert!(text.ends_with("symlink /dev/stderr -> /proc/self/fd/2\n"), "{text}");
}

#[test]
fn dry_run_touches_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let reports = run_plan(root.path(), &early_plan(), RunMode::DryRun);
    assert!(
        fs::read_dir(root.path()).expect("list").next().is_none(),
        "root stays empty"
    );
    let lines = outcomes(&reports);
    assert_eq!(lines[0], "mkdir /dev (0755): would run");
    assert!(
        lines.contains(&"mount proc on /proc: would run".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(
        &"mount efivarfs on /sys/firmware/efi/efivars if /sys/firmware/efi/efivars exists: skipped (not present)"
            .to_string()
    ));
}

#[test]
fn create_only_makes_directories_and_links_but_never_mounts() {
    let root = tempfile::tempdir().expect("temp dir");
    let reports = run_plan(root.path(), &early_plan(), RunMode::CreateOnly);
    assert!(
        reports.iter().all(|r| !matches!(r.outcome, Outcome::Failed(_))),
        "{:?}",
        outcomes(&reports)
    );
    let tmp_mode = fs::metadata(root.path().join("tmp")).expect("tmp").permissions().mode() & 0o7777;
    assert_eq!(tmp_mode, 0o1777, "sticky, world-writable /tmp");
    assert_eq!(
        fs::read_link(root.path().join("dev/fd")).expect("link"),
        Path::new("/proc/self/fd")
    );
    let skipped = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Skipped("mounts only as PID 1"))
        .count();
    assert_eq!(skipped, 5, "devtmpfs, proc, sysfs and two tmpfs");

    let again = run_plan(root.path(), &early_plan(), RunMode::CreateOnly);
    assert!(again
        .iter()
        .all(|r| matches!(r.outcome, Outcome::AlreadyThere | Outcome::Skipped(_))));
}

#[test]
fn efivarfs_is_mounted_only_when_the_firmware_directory_exists() {
    let root = tempfile::tempdir().expect("temp dir");
    fs::create_dir_all(root.path().join("sys/firmware/efi/efivars")).expect("mkdir");
    let reports = run_plan(root.path(), &early_plan(), RunMode::DryRun);
    let efi = reports
        .iter()
        .find(|r| r.step.to_string().contains("efivarfs"))
        .expect("efivarfs step");
    assert_eq!(efi.outcome, Outcome::Planned);
}

#[test]
fn failures_are_reported_and_later_steps_still_run() {
    let root = tempfile::tempdir().expect("temp dir");
    fs::write(root.path().join("dev"), b"a file where /dev should be").expect("write");
    let reports = run_plan(root.path(), &early_plan(), RunMode::CreateOnly);
    assert!(matches!(&reports[0].outcome, Outcome::Failed(_)), "{}", reports[0]);
    assert!(
        reports[0].to_string().starts_with("mkdir /dev (0755): FAILED: "),
        "{}",
        reports[0]
    );
    assert_eq!(reports[1].outcome, Outcome::Done, "/proc is still made");
}

/// As root, applies a tmpfs-only plan to a temp dir: real mounts, nowhere
/// near the system's own.
#[test]
fn apply_mounts_for_real_and_a_second_run_finds_them() {
    let root = tempfile::tempdir().expect("temp dir");
    let plan = EarlyPlan(vec![
        EarlyStep::Dir {
            path: "/run",
            mode: 0o755,
        },
        EarlyStep::Mount {
            fstype: "tmpfs",
            target: "/run",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
            when: Condition::Always,
        },
    ]);
    let reports = run_plan(root.path(), &plan, RunMode::Apply);
    if let Outcome::Failed(e) = &reports[1].outcome {
        eprintln!("skipping: cannot mount here (not root?): {e}");
        return;
    }
    let run = root.path().join("run");
    let unmount = Unmount(run.clone());
    assert_eq!(reports[1].outcome, Outcome::Done);
    assert!(is_mount_point(&run).expect("stat"));
    let again = run_plan(root.path(), &plan, RunMode::Apply);
    assert_eq!(again[1].outcome, Outcome::AlreadyThere, "never stacks a second mount");
    drop(unmount);
    assert!(!is_mount_point(&run).expect("stat"));
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount(&self.0);
    }
}
