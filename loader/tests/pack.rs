//! `loader pack` against the fwup corpus: every corpus `.conf` packs to a
//! bundle whose `meta.conf` is byte-identical to the one fwup 1.16 wrote
//! (so the meta UUID is too), and which installs, case by case as in
//! `cases.tsv`, to an image `tools/imgcompare` calls identical or
//! equivalent to fwup's. Then keys, signing and the refusals.
//!
//! Needs `zstd`, `python3` and `fsck.fat` (scripts/test installs them).

mod corpus_support;
mod pack_support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use corpus_support::{cases, imgcompare, prepare};
use loader::apply::{self, events::Silent, ApplyOptions};
use loader::bundle::signature::PublicKey;
use loader::pack::{load_signing_key, pack, PackOptions};
use loader::target::file::ImageFile;
use pack_support::*;

/// Packs every corpus conf except 07 (its 200 MiB input is not stored)
/// the way the corpus was made (04 signed with the test key).
fn pack_corpus(work: &Path) -> BTreeMap<String, PathBuf> {
    let out_dir = work.join("packed");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let mut packed = BTreeMap::new();
    for conf in corpus_confs().into_iter().filter(|c| !c.starts_with("07-")) {
        let stem = conf.trim_end_matches(".conf").to_string();
        let opts = PackOptions {
            creation_time: Some(CORPUS_EPOCH),
            signing_key: (stem == "04-signed")
                .then(|| load_signing_key(&work.join("keys/test-key.priv")).expect("key")),
            ..PackOptions::default()
        };
        let output = out_dir.join(format!("{stem}.fw"));
        pack(&work.join(&conf), &output, &opts).unwrap_or_else(|e| panic!("{conf}: {e}"));
        packed.insert(format!("{stem}.fw"), output);
    }
    packed
}

#[test]
fn corpus_confs_give_fwups_meta_conf_and_signature() {
    let work = corpus_workdir();
    let holes = has_holes(&work.path().join("inputs/sparse-2MiB.img"));
    let packed = pack_corpus(work.path());
    assert_eq!(packed.len(), 8, "{packed:?}");
    let mut differ = Vec::new();
    for (bundle, path) in &packed {
        if bundle.starts_with("06-") && !holes {
            eprintln!("{bundle}: this filesystem does not report holes; meta.conf not compared");
            continue;
        }
        let (want_sig, want_meta) = bundle_head(&fixtures().join(bundle));
        let (sig, meta) = bundle_head(path);
        if meta != want_meta {
            differ.push(format!(
                "{bundle}: meta.conf differs\n--- fwup\n{}\n--- loader pack\n{}",
                String::from_utf8_lossy(&want_meta),
                String::from_utf8_lossy(&meta)
            ));
        }
        // Ed25519 is deterministic: same key and bytes, same signature.
        if sig != want_sig {
            differ.push(format!("{bundle}: signature entry differs"));
        }
        // Same entries in the same order with the same contents…
        if bundle_entries(path) != bundle_entries(&fixtures().join(bundle)) {
            differ.push(format!("{bundle}: archive entries differ"));
        }
        // …and libarchive's header layout (names, flags, times, extra
        // fields). Only the deflate streams differ: zlib-rs is not zlib.
        if local_headers(path) != local_headers(&fixtures().join(bundle)) {
            differ.push(format!("{bundle}: local headers differ"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

#[test]
fn packed_bundles_install_like_fwups() {
    let work = corpus_workdir();
    let packed = pack_corpus(work.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases(&fixtures()) {
        // Tampered and corrupt bundles have no conf to pack.
        let Some(bundle) = packed.get(&case.bundle) else {
            continue;
        };
        ran += 1;
        let dest = prepare(&case, dir.path(), &results);
        let mut opts = ApplyOptions::new(&case.task);
        opts.vars = case.env.clone();
        let mut extra = case.extra.iter();
        while let Some(arg) = extra.next() {
            match arg.as_str() {
                "-p" => {
                    let key = work.path().join(extra.next().expect("key path"));
                    opts.public_keys.push(PublicKey::from_file(&key).expect("public key"));
                }
                "--unsafe" => opts.allow_unsafe = true,
                other => panic!("{}: unknown extra arg {other}", case.name),
            }
        }
        let mut target = ImageFile::open(&dest).expect("open image");
        let result = apply::apply(File::open(bundle).expect("bundle"), &mut target, &opts, &mut Silent);
        drop(target);
        match (&result, case.exit) {
            (Ok(_), 0) | (Err(_), 1) => {
                let size = fs::metadata(&dest).expect("metadata").len();
                if size != case.size_after {
                    failures.push(format!("{}: size {size}, fwup {}", case.name, case.size_after));
                }
                let (same, report) = imgcompare(&fixtures().join(&case.expected), &dest);
                if !same {
                    failures.push(format!("{}: image differs from fwup's:\n{report}", case.name));
                }
            }
            (Ok(_), _) => failures.push(format!("{}: succeeded, fwup failed", case.name)),
            (Err(e), _) => failures.push(format!("{}: failed ({e}), fwup succeeded", case.name)),
        }
        results.insert(case.name.clone(), dest);
    }
    assert!(ran >= 25, "only {ran} cases use packable bundles");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 07 with a 2 MiB stand-in for its 200 MiB input, chosen through the
/// environment (which wins over the conf's `define`).
#[test]
fn perf_conf_packs_with_a_small_input_from_the_environment() {
    let work = corpus_workdir();
    let input = work.path().join("small-rootfs.bin");
    let data = corpus_bytes("perf", 2 << 20);
    fs::write(&input, &data).expect("write");
    let mut opts = PackOptions::default();
    opts.vars.insert("PERF_ROOTFS".into(), input.display().to_string());
    let bundle = work.path().join("perf.fw");
    let summary = pack(&work.path().join("07-perf-200MiB.conf"), &bundle, &opts).expect("pack");
    assert_eq!(summary.data_bytes, 2 << 20);
    assert!(summary.meta_conf.contains("length=2097152\n"), "{}", summary.meta_conf);

    let image = work.path().join("disk.img");
    File::create(&image).expect("create").set_len(1 << 30).expect("set_len");
    let mut target = ImageFile::open(&image).expect("open");
    apply::apply(
        File::open(&bundle).expect("open"),
        &mut target,
        &ApplyOptions::new("complete"),
        &mut Silent,
    )
    .expect("apply");
    drop(target);
    let mut written = vec![0u8; data.len()];
    use std::os::unix::fs::FileExt;
    File::open(&image)
        .expect("open")
        .read_exact_at(&mut written, 35328 * 512)
        .expect("read");
    assert!(written == data, "the rootfs is not at block 35328");
}

#[test]
fn packing_twice_gives_the_same_bytes() {
    let work = corpus_workdir();
    let opts = PackOptions {
        creation_time: Some(CORPUS_EPOCH),
        ..PackOptions::default()
    };
    let conf = work.path().join("06-actions-zoo.conf");
    let (a, b) = (work.path().join("a.fw"), work.path().join("b.fw"));
    pack(&conf, &a, &opts).expect("pack a");
    pack(&conf, &b, &opts).expect("pack b");
    assert!(fs::read(&a).expect("a") == fs::read(&b).expect("b"));
    let later = PackOptions {
        creation_time: Some(CORPUS_EPOCH + 2),
        ..PackOptions::default()
    };
    pack(&conf, &b, &later).expect("pack later");
    assert!(
        fs::read(&a).expect("a") != fs::read(&b).expect("b"),
        "the date is not recorded"
    );
    assert_eq!(
        bundle_head(&a).1,
        bundle_head(&b).1,
        "meta.conf must not depend on the date"
    );
}

#[test]
fn keygen_keys_sign_bundles_that_verify() {
    let work = corpus_workdir();
    let dir = work.path();
    let (ok, out) = loader(&["keygen", "-o", "mykey"], dir);
    assert!(ok, "{out}");
    let public = fs::read_to_string(dir.join("mykey.pub")).expect("pub");
    let private = fs::read_to_string(dir.join("mykey.priv")).expect("priv");
    assert_eq!((public.len(), private.len()), (44, 88), "fwup's base64 key sizes");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir.join("mykey.priv")).expect("meta").permissions().mode();
    assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    let (ok, out) = loader(&["keygen", "-o", "mykey"], dir);
    assert!(!ok && out.contains("already exists"), "{out}");

    let (ok, out) = loader(
        &["pack", "01-minimal-raw.conf", "-o", "s.fw", "--sign", "mykey.priv"],
        dir,
    );
    assert!(ok, "{out}");
    let (ok, out) = loader(&["verify", "s.fw", "--public-key", "mykey.pub"], dir);
    assert!(ok, "{out}");
    let (ok, out) = loader(&["verify", "s.fw", "--public-key", "keys/wrong-key.pub"], dir);
    assert!(!ok, "the wrong key was accepted: {out}");

    // Re-signing an unsigned bundle, and replacing a signature.
    let (ok, out) = loader(&["pack", "01-minimal-raw.conf", "-o", "u.fw"], dir);
    assert!(ok, "{out}");
    let (ok, out) = loader(&["verify", "u.fw", "--public-key", "mykey.pub"], dir);
    assert!(!ok, "an unsigned bundle verified: {out}");
    let (ok, out) = loader(&["sign", "u.fw", "--key", "mykey.priv", "-o", "u-signed.fw"], dir);
    assert!(ok, "{out}");
    let (ok, out) = loader(&["verify", "u-signed.fw", "--public-key", "mykey.pub"], dir);
    assert!(ok, "{out}");
    let (ok, out) = loader(&["sign", "u-signed.fw", "--key", "keys/wrong-key.priv"], dir);
    assert!(ok && out.contains("replaced"), "{out}");
    let (ok, out) = loader(&["verify", "u-signed.fw", "--public-key", "keys/wrong-key.pub"], dir);
    assert!(ok, "{out}");
    let (ok, out) = loader(&["verify", "u-signed.fw", "--public-key", "mykey.pub"], dir);
    assert!(!ok, "the replaced signature still verified: {out}");
}

/// Like `fwup -S`: signing the unsigned build of 04 gives the corpus's
/// signed bundle's signature, meta.conf, time stamp and entries.
#[test]
fn signing_an_unsigned_build_matches_fwups_signed_bundle() {
    let work = corpus_workdir();
    let unsigned = work.path().join("04-unsigned.fw");
    let opts = PackOptions {
        creation_time: Some(CORPUS_EPOCH),
        ..PackOptions::default()
    };
    pack(&work.path().join("04-signed.conf"), &unsigned, &opts).expect("pack");
    assert_eq!(bundle_head(&unsigned).0, None);
    let signed = work.path().join("04-resigned.fw");
    let key = load_signing_key(&work.path().join("keys/test-key.priv")).expect("key");
    loader::pack::sign::sign_bundle(&unsigned, &key, &signed).expect("sign");
    assert_eq!(bundle_head(&signed), bundle_head(&fixtures().join("04-signed.fw")));
    assert_eq!(
        bundle_entries(&signed),
        bundle_entries(&fixtures().join("04-signed.fw"))
    );
    // The creation time (meta.conf's time stamp) survives re-signing.
    let resigned = fs::read(&signed).expect("read");
    let original = fs::read(fixtures().join("04-signed.fw")).expect("read");
    let meta_header = |b: &[u8]| b[147..147 + 30 + 9 + 24].to_vec();
    assert_eq!(meta_header(&resigned), meta_header(&original));
}
