//! `loader pack`'s configuration language beyond what the corpus confs
//! use, and its refusals: each names the file and line to fix.

use std::fs;
use std::path::Path;

use loader::pack::{pack, PackError, PackOptions, PackSummary};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, text).expect("write");
}

fn pack_in(dir: &Path, conf: &str, vars: &[(&str, &str)]) -> Result<PackSummary, PackError> {
    let mut opts = PackOptions::default();
    for (k, v) in vars {
        opts.vars.insert(k.to_string(), v.to_string());
    }
    pack(&dir.join(conf), &dir.join("out.fw"), &opts)
}

/// The message of a refused config, checked to start with `FILE line N: `.
fn refusal(dir: &Path, conf: &str, text: &str, file: &str, line: usize) -> String {
    write(dir, conf, text);
    let err = pack_in(dir, conf, &[]).expect_err("should be refused").to_string();
    let prefix = format!("{} line {line}: ", dir.join(file).display());
    assert!(err.starts_with(&prefix), "expected `{prefix}…`, got: {err}");
    assert!(!dir.join("out.fw").exists(), "a refused pack left a bundle behind");
    err
}

#[test]
fn variables_includes_and_concatenated_host_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir_all(d.join("sub")).expect("mkdir");
    fs::write(d.join("sub/a.bin"), b"AAAA").expect("write");
    fs::write(d.join("sub/b.bin"), b"BBBBBB").expect("write");
    write(
        d,
        "sub/resources.conf",
        "# host paths are relative to this file's directory\n\
         file-resource ab.bin { host-path = \"a.bin;b.bin\" }\n",
    );
    write(
        d,
        "main.conf",
        "define(WHO, \"nobody\")\n\
         define(V, \"first\")\n\
         define!(V, \"second\")\n\
         define-eval(OFFSET, \"(1 + 1) * 1K / 512\")\n\
         meta-product = \"test ${V}\"\n\
         meta-author = ${WHO}\n\
         include(\"sub/resources.conf\")\n\
         file-resource size.txt { contents = \"${FWUP_SIZE_ab_bin:-none}\" }\n\
         uboot-environment env { block-offset = 16 block-count = 16 }\n\
         task complete {\n\
           on-init { uboot_setenv(env, \"later\", \"\\${LATER}\") }\n\
           on-resource ab.bin { raw_write(${OFFSET}) }\n\
         }\n",
    );
    let summary = pack_in(d, "main.conf", &[("WHO", "from-env")]).expect("pack");
    let meta = &summary.meta_conf;
    for line in [
        "meta-product=\"test second\"\n",
        // The environment wins over define().
        "meta-author=\"from-env\"\n",
        "file-resource \"ab.bin\" {\nlength=10\n",
        // FWUP_SIZE_* is only defined for a single host file.
        "file-resource \"size.txt\" {\nlength=4\n",
        "funlist={4,uboot_setenv,env,later,\"${LATER}\"}\n",
        "funlist={2,raw_write,4}\n",
    ] {
        assert!(meta.contains(line), "missing {line:?} in:\n{meta}");
    }
    let entries = read_entries(&d.join("out.fw"));
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["meta.conf", "data/ab.bin", "data/size.txt"]);
    assert_eq!(entries[1].1, b"AAAABBBBBB");
    assert_eq!(entries[2].1, b"none");
}

#[test]
fn skip_holes_false_stores_the_whole_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let file = fs::File::create(d.join("sparse.bin")).expect("create");
    file.set_len(1 << 20).expect("set_len");
    drop(file);
    write(
        d,
        "c.conf",
        "file-resource s { host-path = \"sparse.bin\" skip-holes = false }\n\
         task t { on-resource s { raw_write(0) } }\n",
    );
    let summary = pack_in(d, "c.conf", &[]).expect("pack");
    assert!(
        summary.meta_conf.contains("skip-holes=false\nlength=1048576\n"),
        "{}",
        summary.meta_conf
    );
    assert_eq!(summary.data_bytes, 1 << 20);
}

fn read_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut walker = loader::bundle::zip::ZipWalker::new(fs::File::open(path).expect("open"));
    let mut out = Vec::new();
    while let Some(mut e) = walker.next_entry().expect("entry") {
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((e.name().to_string(), data));
    }
    out
}

const TASK: &str = "task complete { on-resource r { raw_write(0) } }\n";

#[test]
fn missing_host_files_and_resources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = refusal(
        d,
        "a.conf",
        &format!("meta-product = x\n\nfile-resource r {{ host-path = \"nope.bin\" }}\n{TASK}"),
        "a.conf",
        3,
    );
    assert!(err.contains("nope.bin does not exist"), "{err}");
    let err = refusal(d, "b.conf", "file-resource r {\n  skip-holes = true\n}\n", "b.conf", 1);
    assert!(err.contains("host-path or contents must be set"), "{err}");
    let err = refusal(
        d,
        "c.conf",
        "file-resource r { contents = \"x\" }\ntask t {\n  on-resource q { raw_write(0) }\n}\n",
        "c.conf",
        3,
    );
    assert!(err.contains("no file-resource \"q\""), "{err}");
}

#[test]
fn size_assertions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::write(d.join("big.bin"), vec![1u8; 1000]).expect("write");
    write(
        d,
        "a.conf",
        &format!("\nfile-resource r {{\n  host-path = big.bin\n  assert-size-lte = 1\n}}\n{TASK}"),
    );
    let err = pack_in(d, "a.conf", &[]).expect_err("too big").to_string();
    assert!(err.starts_with("file-resource \"r\" ("), "{err}");
    assert!(err.contains("a.conf line 2)"), "{err}");
    assert!(
        err.contains("is 1000 bytes; assert-size-lte allows at most 512 bytes (1 blocks)"),
        "{err}"
    );
    write(
        d,
        "b.conf",
        &format!("file-resource r {{ host-path = big.bin assert-size-gte = 4 }}\n{TASK}"),
    );
    let err = pack_in(d, "b.conf", &[]).expect_err("too small").to_string();
    assert!(err.contains("assert-size-gte requires at least 2048 bytes"), "{err}");
}

#[test]
fn actions_and_guards_are_checked_where_they_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let head = "file-resource r { contents = \"x\" }\nmbr m { partition 0 { block-offset = 1 block-count = 1 type = 0x83 } }\n";
    let err = refusal(
        d,
        "a.conf",
        &format!("{head}task t {{\n  on-init {{\n    mbr_write(m)\n    fat_frob(1)\n  }}\n}}\n"),
        "a.conf",
        6,
    );
    assert!(err.ends_with("unknown action `fat_frob`"), "{err}");
    let err = refusal(
        d,
        "b.conf",
        &format!("{head}task t {{ on-init {{ raw_write(0) }} }}\n"),
        "b.conf",
        3,
    );
    assert!(err.contains("raw_write only usable in on-resource"), "{err}");
    let err = refusal(
        d,
        "c.conf",
        &format!("{head}task t {{ on-init {{ mbr_write(other) }} }}\n"),
        "c.conf",
        3,
    );
    assert!(err.contains("mbr \"other\""), "{err}");
    let err = refusal(
        d,
        "d.conf",
        &format!("{head}task t {{\n require-moon(full)\n}}\n"),
        "d.conf",
        4,
    );
    assert!(err.contains("unknown requirement `require-moon`"), "{err}");
    let err = refusal(
        d,
        "e.conf",
        &format!("{head}task t {{\n raw_memset(0, 1, 0)\n}}\n"),
        "e.conf",
        4,
    );
    assert!(err.contains("actions go inside on-init"), "{err}");
}

#[test]
fn defines_expressions_and_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = refusal(d, "a.conf", "define(A, 1)\ndefine-eval(B, \"${A} +\")\n", "a.conf", 2);
    assert!(err.contains("define-eval(B, \"1 +\"): expected a number"), "{err}");
    let err = refusal(d, "b.conf", "define-eval(B, \"4 / (2 - 2)\")\n", "b.conf", 1);
    assert!(err.contains("division by zero"), "{err}");
    let err = refusal(d, "c.conf", "define(A)\n", "c.conf", 1);
    assert!(err.contains("takes 2 parameters"), "{err}");
    let err = refusal(d, "d.conf", "meta-product = x\nmeta-colour = blue\n", "d.conf", 2);
    assert!(err.contains("unknown option `meta-colour` in the top level"), "{err}");
    let err = refusal(
        d,
        "e.conf",
        "mbr m {\n partition 0 {\n type = big\n }\n}\n",
        "e.conf",
        3,
    );
    assert!(err.contains("`big` is not an integer"), "{err}");
    let err = refusal(d, "f.conf", "require-fwup-version = \"99.0.0\"\n", "f.conf", 1);
    assert!(err.contains("requires fwup 99.0.0"), "{err}");
    let err = refusal(d, "g.conf", "meta-uuid = \"1234\"\n", "g.conf", 1);
    assert!(err.contains("computed"), "{err}");
    let err = refusal(d, "h.conf", "filesystem x { }\n", "h.conf", 1);
    assert!(err.contains("unknown section `filesystem`"), "{err}");
    let err = refusal(d, "i.conf", "meta-product = \"never closed\n", "i.conf", 1);
    assert!(err.contains("unterminated string"), "{err}");
}

#[test]
fn include_errors_name_the_right_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = refusal(
        d,
        "a.conf",
        "meta-product = x\ninclude(\"missing.conf\")\n",
        "a.conf",
        2,
    );
    assert!(err.contains("missing.conf does not exist"), "{err}");
    write(d, "inc/bad.conf", "meta-version = 1\n\nbogus-option = 2\n");
    let err = refusal(
        d,
        "b.conf",
        "meta-product = x\ninclude(\"inc/bad.conf\")\n",
        "inc/bad.conf",
        3,
    );
    assert!(err.contains("unknown option `bogus-option`"), "{err}");
    write(d, "loop.conf", "include(\"loop.conf\")\n");
    let err = pack_in(d, "loop.conf", &[]).expect_err("loop").to_string();
    assert!(err.contains("does a file include itself"), "{err}");
}
