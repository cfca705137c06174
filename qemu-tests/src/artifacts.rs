//! The boot artifacts every scenario shares, built once per test run by the
//! repository's own scripts (each caches its output, so a second run only
//! checks): the kernel, the loader initramfs, the example bundles, and the
//! host-side `loader` with its tools (pack, sign, keygen, initramfs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Paths to the shared artifacts.
pub struct Artifacts {
    /// The loader kernel (`scripts/build-kernel`).
    pub kernel: PathBuf,
    /// The loader initramfs as the README builds it, gzip-compressed (the
    /// kernel unpacks gzip several times faster than xz under TCG).
    pub initramfs: PathBuf,
    /// The example A/B system, version 1.0.0 and 2.0.0.
    pub bundle_v1: PathBuf,
    pub bundle_v2: PathBuf,
    /// A host build of `loader` with the host tools.
    pub host_loader: PathBuf,
    /// The static loader (`x86_64-unknown-linux-musl`, stripped) that
    /// `scripts/build-initramfs` made: what a provider image downloads to
    /// run `loader takeover`.
    pub static_loader: PathBuf,
    /// Where derived artifacts (initramfs variants, keys) go.
    pub dir: PathBuf,
    variants: Mutex<HashMap<String, PathBuf>>,
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-tests sits in the repository")
        .to_path_buf()
}

/// Builds (or finds cached) artifacts; the first caller builds, the others
/// wait. A failed build fails every scenario with the script's message.
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(build)
}

fn build() -> Artifacts {
    let repo = repo();
    let dir = repo.join("target/qemu-tests/artifacts");
    std::fs::create_dir_all(&dir).expect("create target/qemu-tests/artifacts");
    eprintln!("qemu-tests: building (cached) kernel, initramfs, example bundles, host loader");
    let kernel = PathBuf::from(first_line(&run_script(&repo, "scripts/build-kernel", &[])));
    let initramfs = dir.join("initramfs.gz");
    run_script(
        &repo,
        "scripts/build-initramfs",
        &["--compression", "gzip", "-o", path_str(&initramfs)],
    );
    run_checked(
        Command::new("cargo")
            .current_dir(&repo)
            .args(["build", "--quiet", "--locked", "-p", "loader"]),
    );
    let host_loader = repo.join("target/debug/loader");
    let (bundle_v1, bundle_v2) = example_bundles(&kernel, &host_loader, "mbr");
    let static_loader = repo.join("target/x86_64-unknown-linux-musl/release/loader.stripped");
    assert!(
        static_loader.is_file(),
        "scripts/build-initramfs made no {}",
        static_loader.display()
    );
    Artifacts {
        kernel,
        initramfs,
        bundle_v1,
        bundle_v2,
        host_loader,
        static_loader,
        dir,
        variants: Mutex::new(HashMap::new()),
    }
}

/// `examples/ab-system/build.sh` with `EXAMPLE_LAYOUT=layout`: (v1, v2).
fn example_bundles(kernel: &Path, host_loader: &Path, layout: &str) -> (PathBuf, PathBuf) {
    let bundles = run_checked(
        Command::new(repo().join("examples/ab-system/build.sh"))
            .env("LOADER_KERNEL", kernel)
            .env("LOADER", host_loader)
            .env("EXAMPLE_LAYOUT", layout),
    );
    let mut lines = bundles.lines().map(PathBuf::from);
    let (Some(v1), Some(v2)) = (lines.next(), lines.next()) else {
        panic!("examples/ab-system/build.sh printed no bundle paths: {bundles}");
    };
    (v1, v2)
}

impl Artifacts {
    /// The example system on a GPT disk for UEFI (`fwup-gpt.conf`), version
    /// 1.0.0 and 2.0.0; built on first use.
    pub fn gpt_bundles(&self) -> (PathBuf, PathBuf) {
        let mut variants = self.variants.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(v1), Some(v2)) = (variants.get("gpt-v1"), variants.get("gpt-v2")) {
            return (v1.clone(), v2.clone());
        }
        let (v1, v2) = example_bundles(&self.kernel, &self.host_loader, "gpt");
        variants.insert("gpt-v1".into(), v1.clone());
        variants.insert("gpt-v2".into(), v2.clone());
        (v1, v2)
    }

    /// An initramfs built with extra builder options (`--public-key`,
    /// `--ca-cert`, `--config`, …), cached under `name` for this run.
    pub fn initramfs_with(&self, name: &str, options: &[&str]) -> PathBuf {
        let mut variants = self.variants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = variants.get(name) {
            return path.clone();
        }
        let out = self.dir.join(format!("initramfs-{name}.gz"));
        let mut args = vec!["--compression", "gzip", "-o", path_str(&out)];
        args.extend_from_slice(options);
        run_script(&repo(), "scripts/build-initramfs", &args);
        variants.insert(name.to_string(), out.clone());
        out
    }

    /// Runs the host `loader` with `args`; panics with its stderr on failure.
    pub fn loader(&self, args: &[&str]) -> String {
        run_checked(Command::new(&self.host_loader).args(args))
    }

    /// A fresh fwup key pair under `dir` named `name`: (private, public).
    pub fn keygen(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let stem = dir.join(name);
        let private = stem.with_extension("priv");
        let public = stem.with_extension("pub");
        // keygen never overwrites a key; these are throw-away ones.
        for old in [&private, &public] {
            let _ = std::fs::remove_file(old);
        }
        self.loader(&["keygen", "-o", path_str(&stem)]);
        assert!(
            private.is_file() && public.is_file(),
            "loader keygen made no {stem:?}.priv/.pub"
        );
        (private, public)
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn run_script(repo: &Path, script: &str, args: &[&str]) -> String {
    run_checked(Command::new(repo.join(script)).args(args))
}

/// Runs `command` with stderr passed through; returns stdout. Panics with
/// the command line when it fails.
pub fn run_checked(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(output.status.success(), "{shown} failed ({})", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
