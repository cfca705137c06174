use super::*;

const KEY_B64: &str = "Uf8S1/7ZyE0PSt9YZ+3wSJXfIyUs8eYQ4tftvhKvOKo=";

fn load(file: Option<&str>, line: &str) -> Result<Loaded, ConfigError> {
    let file = file.map(|text| ConfigFile {
        path: "/etc/loader.conf",
        text,
    });
    Config::from_sources(file, &cmdline::parse(line))
}

fn config(file: Option<&str>, line: &str) -> Config {
    match load(file, line) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("expected a valid configuration: {e}"),
    }
}

fn error(file: Option<&str>, line: &str) -> String {
    match load(file, line) {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e.to_string(),
    }
}

fn warnings(file: Option<&str>, line: &str) -> Vec<String> {
    load(file, line)
        .map(|l| l.warnings.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn defaults_without_any_setting() {
    let c = config(None, "BOOT_IMAGE=vmlinuz console=ttyS0 quiet");
    assert_eq!(c, Config::default());
    assert_eq!(
        (c.task, c.on_success, c.on_error),
        (TaskRequest::Auto, OnSuccess::Reboot, OnError::Retry)
    );
    assert_eq!(
        (c.disk_wait, c.on_error_delay, c.on_error_retries),
        (Duration::from_secs(30), Duration::from_secs(10), 3)
    );
}

#[test]
fn every_key_from_the_command_line() {
    let line = format!(
        "vmlinuz loader.url=https://h.test/a.fw loader.bundle=/root/x.fw loader.disk=serial:ABC \
         loader.disk_wait=2m loader.force=removable loader.task=upgrade loader.pubkey={KEY_B64} \
         loader.env.NERVES_SERIAL_NUMBER=\"rack 4\" loader.on_success=poweroff loader.on_error=halt \
         loader.on_error_delay=5s loader.on_error_retries=7 loader.console=json loader.sha256={} \
         loader.insecure loader.report=https://r.test/s loader.metadata=http://169.254.169.254/v1.json \
         ip=dhcp loader.net.dhcp_timeout=20 loader.net.ipv6=0 loader.dry_run loader.allow_downgrade=1",
        "ab".repeat(32)
    );
    let c = config(None, &line);
    assert_eq!(c.url.as_deref(), Some("https://h.test/a.fw"));
    assert_eq!(c.bundle, Some(PathBuf::from("/root/x.fw")));
    assert_eq!(c.disk, Some(DiskSelector::Serial("ABC".into())));
    assert_eq!(c.disk_wait, Duration::from_secs(120));
    assert!(c.force.removable && !c.force.mounted && !c.force.boot_disk);
    assert_eq!(c.task, TaskRequest::Prefix("upgrade".into()));
    assert_eq!(c.pubkeys.len(), 1);
    assert_eq!(c.pubkeys[0][..2], [0x51, 0xff]);
    assert_eq!(c.env.get("NERVES_SERIAL_NUMBER").map(String::as_str), Some("rack 4"));
    assert_eq!((c.on_success, c.on_error), (OnSuccess::Poweroff, OnError::Halt));
    assert_eq!((c.on_error_delay, c.on_error_retries), (Duration::from_secs(5), 7));
    assert_eq!(c.console, ConsoleMode::Json);
    assert_eq!(c.sha256, Some([0xab; 32]));
    assert!(c.insecure, "a bare flag turns it on");
    assert_eq!(c.report.as_deref(), Some("https://r.test/s"));
    assert_eq!(c.metadata.as_deref(), Some("http://169.254.169.254/v1.json"));
    assert_eq!(c.ip, ["dhcp"]);
    assert_eq!(c.net.dhcp_timeout, Some(Duration::from_secs(20)));
    assert_eq!(c.net.ipv6, Some(false));
    assert!(c.dry_run && c.allow_downgrade);
    let mut options = crate::net::NetOptions::default();
    c.net.apply_to(&mut options);
    assert_eq!((options.dhcp_timeout, options.ipv6), (Duration::from_secs(20), false));
    assert_eq!(
        options.carrier_timeout,
        Duration::from_secs(15),
        "unset keys keep the default"
    );
}

#[test]
fn network_keys_proxy_report_timeout_and_metadata_kind() {
    let c = config(
        None,
        "loader.proxy=http://10.0.0.1:3128 loader.report_timeout=3s loader.metadata_kind=ec2 loader.metadata_insecure",
    );
    assert_eq!(c.proxy.as_deref(), Some("http://10.0.0.1:3128"));
    assert_eq!(c.report_timeout, Duration::from_secs(3));
    assert_eq!(c.metadata_kind, Some(crate::source::metadata::MetadataKind::Ec2));
    assert!(c.metadata_insecure, "a bare flag turns it on");
    let d = config(None, "vmlinuz");
    assert_eq!(
        (d.proxy, d.report_timeout, d.metadata_kind),
        (None, Duration::from_secs(10), None)
    );
    assert!(!d.metadata_insecure && !d.insecure);
    let err = Config::from_sources(None, &cmdline::parse("loader.metadata_kind=openstack")).unwrap_err();
    assert!(err.to_string().contains("generic, json, ec2, gcp, azure"), "{err}");
    let err = Config::from_sources(None, &cmdline::parse("loader.proxy=socks://x")).unwrap_err();
    assert!(err.to_string().contains("loader.proxy"), "{err}");
}

#[test]
fn the_command_line_wins_over_the_file_and_lists_accumulate() {
    let other_key = "A".repeat(43) + "=";
    let file = format!(
        "# baked into the initramfs\n\n  loader.disk = largest\nloader.pubkey={KEY_B64}\n\
         loader.env.SITE=\"ams 1\"\nloader.env.ROLE=web\nloader.on_error=halt\n"
    );
    let c = config(
        Some(&file),
        &format!("loader.disk=vdb loader.pubkey={other_key} loader.env.ROLE=db"),
    );
    assert_eq!(c.disk, Some(DiskSelector::Path("/dev/vdb".into())));
    assert_eq!(c.pubkeys.len(), 2, "baked-in keys stay enforced");
    assert_eq!(c.env.get("SITE").map(String::as_str), Some("ams 1"));
    assert_eq!(c.env.get("ROLE").map(String::as_str), Some("db"));
    assert_eq!(c.on_error, OnError::Halt, "file values without an override stay");
}

#[test]
fn an_empty_value_resets_a_file_default() {
    let c = config(
        Some("loader.disk=largest\nloader.on_error=halt\n"),
        "loader.disk= loader.on_error=",
    );
    assert_eq!((c.disk, c.on_error), (None, OnError::Retry));
    assert!(error(None, "loader.pubkey=").contains("loader.pubkey=: decodes to 0 bytes"));
}

#[test]
fn dashes_in_key_names_work_like_underscores() {
    let c = config(None, "loader.on-success=halt loader.disk-wait=5");
    assert_eq!((c.on_success, c.disk_wait), (OnSuccess::Halt, Duration::from_secs(5)));
}

#[test]
fn invalid_values_name_the_key_the_value_and_the_origin() {
    for (line, expected) in [
        (
            "loader.on_success=rebot",
            "kernel command line: loader.on_success=rebot: expected reboot, poweroff or halt",
        ),
        (
            "loader.url=ftp://h/a.fw",
            "loader.url=ftp://h/a.fw: expected an http:// or https:// URL",
        ),
        (
            "loader.disk=size:100G",
            "loader.disk=size:100G: expected size:>=N or size:<=N",
        ),
        (
            "loader.pubkey=AAAA",
            "loader.pubkey=AAAA: decodes to 3 bytes; an Ed25519 public key is 32",
        ),
        ("loader.env.1BAD=x", "loader.env.1BAD=x: variable names are letters"),
        (
            "loader.bundle=install.fw",
            "loader.bundle=install.fw: expected an absolute path",
        ),
        ("loader.force=yes", "loader.force=yes: unknown rule `yes`"),
        (
            "loader.on_error_retries=-1",
            "loader.on_error_retries=-1: expected a whole number",
        ),
        ("loader.insecure=maybe", "loader.insecure=maybe: expected 1 or 0"),
        (
            "loader.ca=aGVsbG8=",
            "loader.ca=aGVsbG8=: decodes to text without a -----BEGIN CERTIFICATE-----",
        ),
        ("loader.url", "kernel command line: loader.url needs a value"),
    ] {
        let msg = error(None, line);
        assert!(msg.contains(expected), "{line}: {msg}");
    }
    let msg = error(Some("\n# c\nloader.console=fancy\n"), "");
    assert_eq!(
        msg,
        "/etc/loader.conf line 3: loader.console=fancy: expected plain, bar, json or auto"
    );
}

#[test]
fn unknown_keys_are_warned_about_with_suggestions() {
    let w = warnings(
        Some("loader.dsik=vda\nfoo=bar\n"),
        "console=ttyS0 loader.pubkeys=x loader.frob=1",
    );
    assert_eq!(
        w,
        [
            "/etc/loader.conf line 1: unknown key loader.dsik (did you mean loader.disk?); ignored",
            "/etc/loader.conf line 2: unknown key foo; ignored",
            "kernel command line: unknown key loader.pubkeys (did you mean loader.pubkey?); ignored",
            "kernel command line: unknown key loader.frob; ignored",
        ]
    );
}

#[test]
fn repeated_single_value_keys_are_reported_once_with_the_value_used() {
    let w = warnings(
        None,
        "loader.disk=vda loader.disk=vdb loader.disk=vdc loader.env.A=1 loader.env.A=2",
    );
    assert_eq!(
        w,
        ["kernel command line: loader.disk given more than once; using the last (loader.disk=vdc)"]
    );
    let c = config(None, "loader.disk=vda loader.disk=vdb");
    assert_eq!(c.disk, Some(DiskSelector::Path("/dev/vdb".into())));
}

#[test]
fn a_cut_command_line_is_warned_about_and_its_fragment_unused() {
    let head = "loader.disk=vda loader.url=https://h.test/";
    let line = format!("{head}{}", "x".repeat(cmdline::CMDLINE_MAX - head.len()));
    let loaded = load(None, &line).expect("valid");
    assert_eq!(loaded.config.url, None);
    assert_eq!(loaded.config.disk, Some(DiskSelector::Path("/dev/vda".into())));
    assert!(
        loaded.warnings[0].to_string().contains("was probably cut"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn load_reads_both_files_and_tolerates_a_missing_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cmdline_path = dir.path().join("cmdline");
    std::fs::write(&cmdline_path, "quiet loader.task=complete\n").expect("write");
    let missing = dir.path().join("loader.conf");
    let loaded = Config::load(&missing, &cmdline_path).expect("no file is fine");
    assert_eq!(loaded.config.task, TaskRequest::Prefix("complete".into()));

    std::fs::write(&missing, "loader.on_error=bogus\n").expect("write");
    let err = Config::load(&missing, &cmdline_path)
        .expect_err("bad file value")
        .to_string();
    assert!(
        err.starts_with(&format!("{} line 1: loader.on_error=bogus", missing.display())),
        "{err}"
    );

    let err = Config::load(&missing, &dir.path().join("nope"))
        .expect_err("no cmdline")
        .to_string();
    assert!(err.starts_with("reading ") && err.contains("nope"), "{err}");
}

#[test]
fn loader_log_sets_the_diagnostics_level_and_refuses_other_words() {
    use crate::diag::LogLevel;
    assert_eq!(config(None, "quiet").log, LogLevel::Warn, "warnings only by default");
    assert_eq!(config(None, "loader.log=debug").log, LogLevel::Debug);
    assert_eq!(
        config(Some("loader.log=trace\n"), "loader.log=").log,
        LogLevel::Warn,
        "an empty value resets the file's default"
    );
    let err = Config::from_sources(None, &cmdline::parse("loader.log=verbose")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernel command line: loader.log=verbose: expected info, debug or trace (or warn, the default)"
    );
}

#[test]
fn drop_ins_are_read_after_the_file_and_before_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("loader.conf");
    std::fs::write(&conf, "loader.task=auto\nloader.disk=/dev/vda\nloader.env.A=file\n").unwrap();
    std::fs::create_dir(dir.path().join("loader.conf.d")).unwrap();
    std::fs::write(
        dir.path().join("loader.conf.d/50-takeover.conf"),
        "loader.task=complete\nloader.env.B=takeover\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("loader.conf.d/10-first.conf"), "loader.env.B=first\n").unwrap();
    std::fs::write(dir.path().join("loader.conf.d/notes.txt"), "loader.task=ignored\n").unwrap();
    let cmdline = dir.path().join("cmdline");
    std::fs::write(&cmdline, "console=ttyS0 loader.disk=/dev/sda\n").unwrap();
    let loaded = Config::load(&conf, &cmdline).unwrap();
    let c = loaded.config;
    assert_eq!(
        c.task,
        TaskRequest::Prefix("complete".into()),
        "a drop-in wins over the file"
    );
    assert_eq!(
        c.disk,
        Some(DiskSelector::Path("/dev/sda".into())),
        "the command line wins"
    );
    assert_eq!(c.env["A"], "file");
    assert_eq!(c.env["B"], "takeover", "later drop-ins win");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn static_interfaces_and_name_servers() {
    let file = "loader.iface=mac=52:54:00:12:34:56,addr=192.0.2.10/32,route=0.0.0.0/0@192.0.2.1\n\
                loader.iface=mac=52:54:00:12:34:57,mtu=9000,addr=2001:db8::7/64\n\
                loader.dns=192.0.2.53, 2001:db8::53\nloader.dns=198.51.100.53\n";
    let c = config(Some(file), "");
    assert_eq!(c.ifaces.len(), 2);
    assert_eq!(c.ifaces[1].mtu, Some(9000));
    let dns: Vec<String> = c.dns.iter().map(ToString::to_string).collect();
    assert_eq!(dns, ["192.0.2.53", "2001:db8::53", "198.51.100.53"]);
    let err = error(Some("loader.iface=addr=192.0.2.10/32\n"), "");
    assert!(err.contains("loader.iface=addr=192.0.2.10/32: no mac="), "{err}");
    let err = error(None, "loader.dns=192.0.2.300");
    assert!(err.contains("`192.0.2.300` is not an IP address"), "{err}");
    assert!(
        config(Some(file), "loader.iface=").ifaces.is_empty(),
        "an empty value resets the list"
    );
}
