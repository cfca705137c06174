//! From the `meta.conf` bytes of an archive to the [`Manifest`], in the
//! order fwup does it (`cfgfile_parse_fw_ae`): size check, meta-uuid from
//! the raw bytes, `${FWUP_META_UUID}` set, parse, refuse an overridden
//! `meta-uuid`, then the typed manifest.
//!
//! The signature check comes before this and is not done here.

use super::conf::Section;
use super::manifest::Manifest;
use super::manifest_build::ManifestError;
use super::meta_uuid::{check_declared_uuid, MetaIds, MetaUuidOverride};
use super::parse::{parse_meta_conf, ParseError};

/// fwup refuses a `meta.conf` shorter than this…
pub const MIN_META_CONF_LEN: usize = 10;
/// …or at least this long ("Unexpected meta.conf size").
pub const MAX_META_CONF_LEN: usize = 50_000;

/// A decoded `meta.conf`.
#[derive(Debug, Clone)]
pub struct MetaConf {
    pub ids: MetaIds,
    /// The parsed tree (the `mbr`/`gpt`/`uboot-environment` readers and
    /// `inspect` use it).
    pub root: Section,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaConfError {
    #[error(
        "meta.conf is {size} bytes; fwup accepts {MIN_META_CONF_LEN} to {max} bytes \
         (truncated or corrupt bundle?)",
        max = MAX_META_CONF_LEN - 1
    )]
    Size { size: usize },
    #[error("meta.conf is not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    UuidOverride(#[from] MetaUuidOverride),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Decodes `meta.conf` as stored in the archive. `env` is the process
/// environment (or the loader's variables); `FWUP_META_UUID` and
/// `FWUP_META_NICKNAME` are always the computed ones.
pub fn load_meta_conf(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<MetaConf, MetaConfError> {
    if !(MIN_META_CONF_LEN..MAX_META_CONF_LEN).contains(&bytes.len()) {
        return Err(MetaConfError::Size { size: bytes.len() });
    }
    let ids = MetaIds::from_meta_conf(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| MetaConfError::NotUtf8(e.valid_up_to()))?;
    let (root, ignored) = parse_meta_conf(text, &ids.env(env))?;
    check_declared_uuid(&root, &ids)?;
    let mut manifest = Manifest::for_install(&root)?;
    // What fwup skips is reported first, in file order.
    let skipped = ignored.iter().map(ToString::to_string);
    manifest.warnings = skipped.chain(std::mem::take(&mut manifest.warnings)).collect();
    Ok(MetaConf { ids, root, manifest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::Action;

    const CONF: &str = "meta-product=x\nmbr m { }\nuboot-environment e { block-offset=0 }\n\
                        task t { on-init { funlist={4,uboot_setenv,e,id,\"${FWUP_META_UUID}\"} } }\n";

    #[test]
    fn the_uuid_reaches_the_actions() {
        let loaded = load_meta_conf(CONF.as_bytes(), &|_| Some("from-env".into())).expect("loads");
        let Some(Action::UbootSetenv { value, .. }) = loaded.manifest.tasks[0].on_init.first() else {
            panic!("{:?}", loaded.manifest.tasks[0].on_init);
        };
        assert_eq!(value, &loaded.ids.uuid);
        assert_eq!(loaded.manifest.meta.product.as_deref(), Some("x"));
    }

    #[test]
    fn what_fwup_does_not_know_is_skipped_with_a_warning_naming_it() {
        let text = "meta-product=x\nmeta-future=\"1\"\nuboot-environment e { block-offset=0 }\n\
                    task t {\n on-validate {\n  funlist={2,info,hi}\n }\n on-init { funlist={2,uboot_clearenv,e} }\n}\n\
                    task later { on-init { funlist={2,ubi_volume_write,x} } }\n";
        let loaded = load_meta_conf(text.as_bytes(), &|_| None).expect("loads");
        let warnings = &loaded.manifest.warnings;
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert_eq!(
            warnings[0],
            "meta.conf line 2: `meta-future` in meta.conf is not known to this version and was ignored, as fwup does"
        );
        assert!(
            warnings[1].starts_with("meta.conf line 5: `on-validate` in task \"t\""),
            "{warnings:?}"
        );
        assert!(
            warnings[2].contains("unknown action `ubi_volume_write`"),
            "{warnings:?}"
        );
        assert_eq!(loaded.manifest.tasks[0].on_init.len(), 1);
        assert!(matches!(
            loaded.manifest.tasks[1].on_init.first(),
            Some(Action::Unusable { action, .. }) if action == "ubi_volume_write"
        ));
    }

    #[test]
    fn refusals() {
        let none = |_: &str| None;
        assert_eq!(load_meta_conf(b"", &none).err(), Some(MetaConfError::Size { size: 0 }));
        let big = vec![b'#'; MAX_META_CONF_LEN];
        assert_eq!(
            load_meta_conf(&big, &none).err(),
            Some(MetaConfError::Size {
                size: MAX_META_CONF_LEN
            })
        );
        let latin1 = b"meta-author=\"J\xfcrgen\"\n";
        assert_eq!(load_meta_conf(latin1, &none).err(), Some(MetaConfError::NotUtf8(14)));
        let forged = format!("meta-uuid=1234\n{CONF}");
        let err = load_meta_conf(forged.as_bytes(), &none).expect_err("forged uuid");
        assert!(matches!(err, MetaConfError::UuidOverride(_)), "{err}");
        let err = load_meta_conf(b"task t { x", &none).expect_err("syntax");
        assert!(err.to_string().starts_with("meta.conf line 1: "), "{err}");
        // libconfuse drops the `}` after `{` of an unknown section, so the
        // file ends inside it: fwup refuses this too.
        let err = load_meta_conf(b"bogus \"s\" { }\n", &none).expect_err("unknown section");
        assert!(err.to_string().contains("while skipping the unknown `bogus`"), "{err}");
        // Known names used wrongly, or with values libconfuse does not
        // accept, stay errors: fwup cannot read such a file at all.
        for (text, says) in [
            ("uboot-environment e { block-count = x }\n", "`x` is not an integer"),
            (
                "file-resource r { skip-holes = perhaps }\n",
                "`perhaps` is not a boolean",
            ),
            ("task t { on-init = 5 }\n", "`on-init` is a section"),
            ("meta-misc += x\n", "`meta-misc` is an option"),
        ] {
            let err = load_meta_conf(text.as_bytes(), &none).expect_err(text);
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
        // A malformed call list only spoils its task, as in fwup.
        let loaded = load_meta_conf(b"task t { on-init { funlist={2} } }\n", &none).expect("loads");
        assert!(matches!(
            loaded.manifest.tasks[0].on_init[..],
            [Action::Unusable { .. }]
        ));
    }
}
