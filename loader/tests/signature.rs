//! fwup signatures end to end: the corpus keys and the signed bundles, read
//! with the streaming walker exactly as an install reads them.

mod zip_support;

use std::io::Read;

use loader::bundle::signature::{
    generate_keypair, sign, verify, KeyError, PublicKey, SignatureError, SignatureStatus, SigningKey,
};
use loader::bundle::zip::ZipWalker;
use zip_support::{fixture, read_fixture};

/// `meta.conf` and its signature (if any) from the head of a bundle.
fn head(bundle: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let zip = read_fixture(bundle);
    let mut walker = ZipWalker::new(&zip[..]);
    let mut signature = None;
    while let Some(mut entry) = walker.next_entry().unwrap_or_else(|e| panic!("{bundle}: {e}")) {
        let name = entry.name().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap_or_else(|e| panic!("{bundle}: {e}"));
        match name.as_str() {
            "meta.conf.ed25519" => signature = Some(data),
            "meta.conf" => return (data, signature),
            other => panic!("{bundle}: unexpected entry {other} before meta.conf"),
        }
    }
    panic!("{bundle}: no meta.conf")
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_file_or_base64(&fixture(name).to_string_lossy()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn private(name: &str) -> SigningKey {
    SigningKey::from_file(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn good_key_verifies_the_signed_bundle() {
    let (meta, sig) = head("04-signed.fw");
    let status = verify(&meta, sig.as_deref(), &[public("keys/test-key.pub")]);
    assert_eq!(status.ok(), Some(SignatureStatus::Verified { key_index: 0 }));
}

#[test]
fn wrong_key_is_refused() {
    let (meta, sig) = head("04-signed.fw");
    let status = verify(&meta, sig.as_deref(), &[public("keys/wrong-key.pub")]);
    assert!(
        matches!(status, Err(SignatureError::BadSignature { keys: 1 })),
        "{status:?}"
    );
}

#[test]
fn two_keys_where_the_second_matches_verify_with_that_key() {
    let (meta, sig) = head("04-signed.fw");
    let keys = [public("keys/wrong-key.pub"), public("keys/test-key.pub")];
    assert_eq!(
        verify(&meta, sig.as_deref(), &keys).ok(),
        Some(SignatureStatus::Verified { key_index: 1 })
    );
}

#[test]
fn tampered_meta_conf_fails_with_the_right_key() {
    let (meta, sig) = head("04-signed-tampered-meta.fw");
    let (original, original_sig) = head("04-signed.fw");
    assert_eq!(sig, original_sig, "the old signature was kept");
    assert_ne!(meta, original);
    let status = verify(&meta, sig.as_deref(), &[public("keys/test-key.pub")]);
    let text = status.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("meta.conf fails signature verification"), "{text}");
}

#[test]
fn tampered_data_still_has_a_valid_meta_signature() {
    // Only meta.conf is signed; the data is caught by its BLAKE2b later.
    let (meta, sig) = head("04-signed-tampered-data.fw");
    assert!(verify(&meta, sig.as_deref(), &[public("keys/test-key.pub")]).is_ok());
}

#[test]
fn unsigned_bundle_with_a_key_is_refused() {
    let (meta, sig) = head("01-minimal-raw.fw");
    assert_eq!(sig, None);
    let status = verify(&meta, None, &[public("keys/test-key.pub")]);
    let text = status.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with("the bundle is not signed") && text.contains("refusing"),
        "{text}"
    );
}

#[test]
fn without_keys_signed_and_unsigned_bundles_are_told_apart() {
    let (meta, sig) = head("04-signed.fw");
    assert_eq!(
        verify(&meta, sig.as_deref(), &[]).ok(),
        Some(SignatureStatus::SignedNotChecked)
    );
    let (meta, _) = head("01-minimal-raw.fw");
    assert_eq!(verify(&meta, None, &[]).ok(), Some(SignatureStatus::Unsigned));
}

#[test]
fn fwup_private_key_signs_to_the_bundles_signature() {
    let (meta, sig) = head("04-signed.fw");
    let key = private("keys/test-key.priv");
    assert_eq!(Some(sign(&meta, &key).to_vec()), sig);
    assert_eq!(key.public_key(), public("keys/test-key.pub"));
}

#[test]
fn key_files_roundtrip_byte_for_byte() {
    for name in ["keys/test-key", "keys/wrong-key"] {
        let pub_text = std::fs::read_to_string(fixture(&format!("{name}.pub"))).unwrap_or_default();
        let priv_text = std::fs::read_to_string(fixture(&format!("{name}.priv"))).unwrap_or_default();
        assert_eq!(public(&format!("{name}.pub")).to_base64(), pub_text);
        assert_eq!(private(&format!("{name}.priv")).to_base64(), priv_text);
    }
}

#[test]
fn generated_pair_signs_verifies_and_survives_its_files() {
    let (signing, public_key) = generate_keypair().unwrap_or_else(|e| panic!("{e}"));
    let (_, other) = generate_keypair().unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(public_key, other, "fresh randomness each time");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (priv_path, pub_path) = (dir.path().join("k.priv"), dir.path().join("k.pub"));
    std::fs::write(&priv_path, signing.to_base64()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&pub_path, public_key.to_base64()).unwrap_or_else(|e| panic!("{e}"));
    // fwup's sizes: 88 and 44 characters, no newline.
    assert_eq!(std::fs::metadata(&priv_path).map(|m| m.len()).ok(), Some(88));
    assert_eq!(std::fs::metadata(&pub_path).map(|m| m.len()).ok(), Some(44));

    let reloaded = SigningKey::from_file(&priv_path).unwrap_or_else(|e| panic!("{e}"));
    let reloaded_pub = PublicKey::from_file_or_base64(&pub_path.to_string_lossy()).unwrap_or_else(|e| panic!("{e}"));
    let meta = b"meta-product = \"demo\"\n";
    let sig = sign(meta, &reloaded);
    assert_eq!(
        verify(meta, Some(&sig), &[reloaded_pub]).ok(),
        Some(SignatureStatus::Verified { key_index: 0 })
    );
    assert!(verify(meta, Some(&sig), &[other]).is_err());
}

#[test]
fn cli_argument_may_be_a_path_or_the_base64_itself() {
    let from_file = public("keys/test-key.pub");
    let text = std::fs::read_to_string(fixture("keys/test-key.pub")).unwrap_or_default();
    let from_text = PublicKey::from_file_or_base64(&format!("{text}\n"));
    assert_eq!(from_text.ok(), Some(from_file));

    let missing = PublicKey::from_file_or_base64("/etc/loader/keys/release.pub");
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("/etc/loader/keys/release.pub: no such file, and not a base64 public key"),
        "{message}"
    );
}

#[test]
fn private_key_given_as_public_key_gets_a_hint() {
    let text = std::fs::read_to_string(fixture("keys/test-key.priv")).unwrap_or_default();
    let err = PublicKey::parse(&text).err();
    assert!(matches!(err, Some(KeyError::WrongLength { got: 64, .. })), "{err:?}");
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("pass the .pub file"), "{message}");
}
