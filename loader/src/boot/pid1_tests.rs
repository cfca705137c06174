use super::*;
use crate::boot::test_alone;

/// A writer that keeps each `write` call as one record.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for Records {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Records {
    fn strings(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }
}

#[test]
fn log_lines_go_to_the_console_and_one_kmsg_record_each() {
    let (console, kmsg) = (Records::default(), Records::default());
    let log = BootLog::new(Some(Box::new(console.clone())), Some(Box::new(kmsg.clone())));
    log.info("stage: fetching bundle");
    log.error("install failed\nstage: writing");
    assert_eq!(
        console.strings().concat(),
        "loader: stage: fetching bundle\nloader: install failed\nloader: stage: writing\n"
    );
    assert_eq!(
        kmsg.strings(),
        [
            "<6>loader: stage: fetching bundle\n",
            "<3>loader: install failed\n",
            "<3>loader: stage: writing\n"
        ]
    );
    log.warn("careful");
    assert_eq!(kmsg.strings().last().map(String::as_str), Some("<4>loader: careful\n"));
}

#[test]
fn kmsg_records_are_cut_below_the_kernel_limit_at_a_char_boundary() {
    let kmsg = Records::default();
    let log = BootLog::new(None, Some(Box::new(kmsg.clone())));
    log.info(&"é".repeat(2000));
    let records = kmsg.strings();
    assert_eq!(records.len(), 1);
    assert!(records[0].len() <= 1024, "{} bytes", records[0].len());
    assert!(records[0].ends_with("é\n"));
}

#[test]
fn open_uses_the_kmsg_it_finds_and_tolerates_a_missing_console() {
    let dev = tempfile::tempdir().expect("temp dir");
    std::fs::write(dev.path().join("kmsg"), b"").expect("fake kmsg");
    BootLog::open(dev.path()).info("hello");
    assert_eq!(
        std::fs::read_to_string(dev.path().join("kmsg")).expect("read"),
        "<6>loader: hello\n"
    );
    assert!(open_console(dev.path()).is_err(), "no console in the temp dir");
    assert!(!is_pid1(), "tests never run as init");
}

/// Records the order of power calls and fails the reboot like a non-init
/// process would.
#[derive(Default)]
struct FakePower(Vec<String>);

impl PowerControl for FakePower {
    fn sync(&mut self) {
        self.0.push("sync".into());
    }
    fn reboot(&mut self, mode: RebootMode) -> nix::Result<Infallible> {
        self.0.push(format!("{mode:?}"));
        Err(nix::errno::Errno::EPERM)
    }
}

#[test]
fn finish_syncs_before_the_power_action() {
    for (action, mode) in [
        (OnSuccess::Reboot, "RB_AUTOBOOT"),
        (OnSuccess::Poweroff, "RB_POWER_OFF"),
        (OnSuccess::Halt, "RB_HALT_SYSTEM"),
    ] {
        let mut power = FakePower::default();
        let err = finish_with(action, &mut power).expect_err("fake reboot fails");
        assert_eq!(power.0, ["sync", mode]);
        assert!(err.to_string().contains("EPERM"), "{err}");
    }
    let err = finish_with(OnSuccess::Poweroff, &mut FakePower::default()).expect_err("fails");
    assert_eq!(
        err.to_string(),
        "power off failed: EPERM: Operation not permitted (only PID 1 or a process with CAP_SYS_BOOT can power off)"
    );
}

#[test]
fn hosts_and_resolv_conf_are_written_whole() {
    let root = tempfile::tempdir().expect("temp dir");
    write_hosts(root.path(), Some("node-17")).expect("hosts");
    let hosts = std::fs::read_to_string(root.path().join("etc/hosts")).expect("read");
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.ends_with("127.0.1.1\tnode-17\n"), "{hosts}");
    assert!(!hosts_text(None).contains("127.0.1.1"));

    write_resolv_conf(root.path(), "nameserver 10.0.2.3\n").expect("resolv");
    write_resolv_conf(root.path(), "nameserver 1.1.1.1\n").expect("replace");
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/resolv.conf")).expect("read"),
        "nameserver 1.1.1.1\n"
    );
    let names: Vec<_> = std::fs::read_dir(root.path().join("etc"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

const CHILD_ENV: &str = "LOADER_TEST_PANIC_HOOK_DIR";

/// Runs in a child process (see the next test): the hook is process-wide,
/// so it must not be installed in the shared test process.
#[test]
#[ignore = "helper, run in a child process by panic_hook_reports_then_calls_the_failure_policy"]
fn panic_hook_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::write(dir.join("kmsg"), b"").expect("fake kmsg");
    let log = Arc::new(BootLog::new(
        None,
        OpenOptions::new()
            .append(true)
            .open(dir.join("kmsg"))
            .ok()
            .map(|f| Box::new(f) as Box<dyn Write + Send>),
    ));
    let policy_file = dir.join("policy");
    install_panic_hook(
        log,
        Arc::new(move |message| {
            let _ = std::fs::write(&policy_file, message);
        }),
    );
    let caught = std::panic::catch_unwind(|| panic!("disk vanished"));
    assert!(caught.is_err());
    std::fs::write(dir.join("after"), b"still running").expect("write");
}

#[test]
fn panic_hook_reports_then_calls_the_failure_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = test_alone::only("boot::pid1::tests::panic_hook_child")
        .env(CHILD_ENV, dir.path())
        .output()
        .expect("run child");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    let kmsg = std::fs::read_to_string(dir.path().join("kmsg")).expect("kmsg");
    assert!(kmsg.starts_with("<3>loader: internal error at "), "{kmsg}");
    assert!(
        kmsg.contains("pid1_tests.rs:") && kmsg.ends_with(": disk vanished\n"),
        "{kmsg}"
    );
    let policy = std::fs::read_to_string(dir.path().join("policy")).expect("policy was called");
    assert_eq!(format!("<3>loader: {policy}\n"), kmsg);
    assert!(dir.path().join("after").exists(), "the process went on after the panic");
}

const REEXEC_ENV: &str = "LOADER_TEST_REEXEC_DIR";

/// Runs in a child process (see the next test): records its PID and the
/// count it started with, and re-executes itself once.
#[test]
#[ignore = "helper, run in a child process by reexec_starts_the_same_binary_afresh_with_the_count"]
fn reexec_child() {
    let Some(dir) = std::env::var_os(REEXEC_ENV) else {
        return;
    };
    let runs = std::path::PathBuf::from(dir).join("runs");
    let mut file = OpenOptions::new().create(true).append(true).open(&runs).expect("runs");
    writeln!(file, "{} {}", std::process::id(), failed_attempts_before()).expect("write");
    drop(file);
    if failed_attempts_before() == 0 {
        let error = reexec(3);
        panic!("reexec returned: {error}");
    }
}

#[test]
fn reexec_starts_the_same_binary_afresh_with_the_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = test_alone::only("boot::pid1::tests::reexec_child")
        .env(REEXEC_ENV, dir.path())
        .env_remove(FAILED_ATTEMPTS_ENV)
        .output()
        .expect("run child");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let runs = std::fs::read_to_string(dir.path().join("runs")).expect("runs");
    let runs: Vec<(&str, &str)> = runs.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].0, runs[1].0, "the same process (PID 1 stays PID 1)");
    assert_eq!((runs[0].1, runs[1].1), ("0", "3"));
}
