//! The initramfs as the host's own tools see it: Debian's `cpio` lists and
//! unpacks it, `xz`/`gzip` decompress it, and two builds are byte-identical.
//! Needs `cpio`, `xz-utils` and `gzip` installed (they are in the project's
//! Debian package list).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use loader::initramfs::{self, Compression, ExtraFile, InitramfsError, InitramfsSpec};

const EPOCH: u32 = 1_700_000_000;

/// A minimal static x86-64 ELF executable header (one PT_LOAD, no PT_INTERP).
fn static_elf() -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1;
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // program headers right after
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&1u16.to_le_bytes());
    let mut load = [0u8; 56];
    load[0] = 1; // PT_LOAD
    elf.extend_from_slice(&load);
    elf.extend_from_slice(b"pretend machine code");
    elf
}

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn spec(dir: &Path, compression: Compression) -> InitramfsSpec {
    let init = dir.join("loader");
    fs::write(&init, static_elf()).unwrap();
    let ca = dir.join("corp-root.pem");
    fs::write(&ca, PEM).unwrap();
    InitramfsSpec {
        init_binary: init,
        config: Some("disk = /dev/vda\n".to_owned()),
        public_keys: vec![format!("{KEY_A}\n"), KEY_B.to_owned()],
        ca_certs: vec![ca],
        extra_files: vec![ExtraFile {
            path: "/etc/hosts".to_owned(),
            permissions: 0o644,
            contents: b"127.0.0.1 localhost\n".to_vec(),
        }],
        compression,
    }
}

/// Runs a host tool, feeding `input`, and returns its stdout; fails the test
/// with the tool's stderr when it fails or is missing.
fn run_tool(program: &str, args: &[&str], cwd: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}` (apt-get install cpio xz-utils gzip): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn cpio_list(archive: &[u8], cwd: &Path) -> Vec<String> {
    let listing = run_tool("cpio", &["-t", "--quiet"], cwd, archive);
    String::from_utf8(listing).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn two_builds_are_byte_identical_and_the_epoch_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), Compression::Xz);
    let first = initramfs::build(&spec, EPOCH).unwrap();
    let second = initramfs::build(&spec, EPOCH).unwrap();
    assert_eq!(first, second);
    assert_ne!(first, initramfs::build(&spec, EPOCH + 1).unwrap());
}

#[test]
fn host_cpio_lists_the_expected_tree() {
    let dir = tempfile::tempdir().unwrap();
    let archive = initramfs::tree(&spec(dir.path(), Compression::None))
        .unwrap()
        .to_cpio(EPOCH)
        .unwrap();
    // Byte order of the paths: every directory before its contents, and
    // `etc/loader.conf` before `etc/loader/…` because '.' < '/'.
    let expected = [
        "dev",
        "dev/console",
        "etc",
        "etc/hosts",
        "etc/loader",
        "etc/loader.conf",
        "etc/loader/ca",
        "etc/loader/ca/corp-root.pem",
        "etc/loader/keys",
        "etc/loader/keys/00.pub",
        "etc/loader/keys/01.pub",
        "init",
        "proc",
        "root",
        "run",
        "sys",
        "tmp",
    ];
    let listed = cpio_list(&archive, dir.path());
    assert_eq!(listed, expected);
    for (index, path) in listed.iter().enumerate() {
        if let Some((parent, _)) = path.rsplit_once('/') {
            assert!(listed[..index].iter().any(|p| p == parent), "{parent} before {path}");
        }
    }
}

#[test]
fn host_cpio_unpacks_contents_modes_times_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), Compression::None);
    let archive = initramfs::tree(&spec).unwrap().to_cpio(EPOCH).unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    run_tool(
        "cpio",
        &["-i", "-d", "-m", "--quiet", "--no-absolute-filenames"],
        &root,
        &archive,
    );

    let init = fs::metadata(root.join("init")).unwrap();
    assert_eq!(fs::read(root.join("init")).unwrap(), static_elf());
    assert_eq!(init.permissions().mode() & 0o7777, 0o755);
    assert_eq!(init.mtime(), i64::from(EPOCH));
    assert_eq!(
        fs::read_to_string(root.join("etc/loader.conf")).unwrap(),
        "disk = /dev/vda\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/loader/keys/00.pub")).unwrap(),
        format!("{KEY_A}\n")
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/loader/keys/01.pub")).unwrap(),
        format!("{KEY_B}\n")
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/loader/ca/corp-root.pem")).unwrap(),
        PEM
    );
    let mode = |path: &str| fs::metadata(root.join(path)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("root"), 0o700);
    assert_eq!(mode("proc"), 0o555);

    // Device nodes need root to create; the project's machines and CI run as root.
    let console = fs::symlink_metadata(root.join("dev/console")).unwrap();
    assert!(console.file_type().is_char_device());
    assert_eq!(console.rdev(), nix_makedev(5, 1));
}

/// Linux's encoding of a device number (glibc `makedev`).
fn nix_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff)
}

#[test]
fn host_tools_decompress_to_the_same_archive() {
    let dir = tempfile::tempdir().unwrap();
    for (compression, tool) in [(Compression::Xz, "xz"), (Compression::Gzip, "gzip")] {
        let spec = spec(dir.path(), compression);
        let plain = initramfs::tree(&spec).unwrap().to_cpio(EPOCH).unwrap();
        let packed = initramfs::build(&spec, EPOCH).unwrap();
        assert!(packed.len() < plain.len(), "{tool}");
        let unpacked = run_tool(tool, &["-d", "-c"], dir.path(), &packed);
        assert_eq!(unpacked, plain, "{tool} -d gives back the cpio");
    }
    let spec = spec(dir.path(), Compression::None);
    assert_eq!(
        initramfs::build(&spec, EPOCH).unwrap(),
        initramfs::tree(&spec).unwrap().to_cpio(EPOCH).unwrap()
    );
}

#[test]
fn wrapped_bundle_unpacks_to_root_install_fw() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("app.fw");
    let contents: Vec<u8> = (0..100_003u32).map(|i| (i % 253) as u8).collect();
    fs::write(&bundle, &contents).unwrap();

    let archive = initramfs::wrap_bundle(&bundle, EPOCH, Vec::new()).unwrap();
    assert_eq!(archive, initramfs::wrap_bundle(&bundle, EPOCH, Vec::new()).unwrap());
    assert_eq!(archive.len() % 4, 0, "another archive can follow it");
    assert_eq!(cpio_list(&archive, dir.path()), ["root", "root/install.fw"]);

    let root = dir.path().join("unpacked");
    fs::create_dir(&root).unwrap();
    run_tool("cpio", &["-i", "-d", "--quiet"], &root, &archive);
    assert_eq!(fs::read(root.join("root/install.fw")).unwrap(), contents);
}

#[test]
fn missing_or_wrong_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = spec(dir.path(), Compression::Xz);
    bad.init_binary = PathBuf::from("/nonexistent/loader");
    let err = initramfs::build(&bad, 0).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/loader"), "{err}");

    let mut bad = spec(dir.path(), Compression::Xz);
    let script = dir.path().join("init.sh");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    bad.init_binary = script;
    assert!(matches!(initramfs::build(&bad, 0), Err(InitramfsError::BadInit { .. })));

    let mut bad = spec(dir.path(), Compression::Xz);
    let not_pem = dir.path().join("ca.der");
    fs::write(&not_pem, [0x30, 0x82]).unwrap();
    bad.ca_certs.push(not_pem);
    assert!(matches!(
        initramfs::build(&bad, 0),
        Err(InitramfsError::BadCaCert { .. })
    ));

    let mut bad = spec(dir.path(), Compression::Xz);
    bad.extra_files.push(ExtraFile {
        path: "/init".to_owned(),
        permissions: 0o755,
        contents: Vec::new(),
    });
    let err = initramfs::build(&bad, 0).unwrap_err();
    assert!(err.to_string().contains("/init"), "{err}");

    let err = initramfs::wrap_bundle(&dir.path().join("missing.fw"), 0, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("missing.fw"), "{err}");
}
