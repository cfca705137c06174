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
use super::parse::{parse_conf, ParseError};

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
    let root = parse_conf(text, &ids.env(env))?;
    check_declared_uuid(&root, &ids)?;
    let manifest = Manifest::from_conf(&root)?;
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
        let err = load_meta_conf(b"bogus \"s\" { }\n", &none).expect_err("unknown section");
        assert!(matches!(err, MetaConfError::Manifest(_)), "{err}");
    }
}
