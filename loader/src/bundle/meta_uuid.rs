//! fwup's computed identity of a bundle: `meta-uuid` and `meta-nickname`.
//!
//! fwup (`calculate_uuid` in `cfgfile.c`) hashes fwup's own namespace UUID
//! followed by the exact `meta.conf` bytes with BLAKE2b-256, keeps the first
//! 16 bytes, sets the version nibble to 5 and prints it as a UUID. The
//! result is exported as `${FWUP_META_UUID}` before `meta.conf` is parsed,
//! so bundles can store it (Nerves writes `a.nerves_fw_uuid`). It only
//! depends on `meta.conf`, so re-signing or re-zipping keeps it, and any
//! edit of `meta.conf` changes it.
//!
//! The nickname (fwup 1.15+) is two words picked by the first two UUID
//! bytes from fwup's 256-word list, e.g. `present-snack`.

use super::conf::Section;

/// The environment variable fwup sets to the meta-uuid.
pub const FWUP_META_UUID: &str = "FWUP_META_UUID";
/// The environment variable for the nickname. fwup's changelog only
/// documents the `meta-nickname` metadata; this name mirrors
/// `FWUP_META_UUID`.
pub const FWUP_META_NICKNAME: &str = "FWUP_META_NICKNAME";

/// fwup's namespace UUID 2053dffb-d51e-4310-b93b-956da89f9f34, hashed in
/// front of `meta.conf`.
const FWUP_NAMESPACE: [u8; 16] = [
    0x20, 0x53, 0xdf, 0xfb, 0xd5, 0x1e, 0x43, 0x10, 0xb9, 0x3b, 0x95, 0x6d, 0xa8, 0x9f, 0x9f, 0x34,
];

/// The 256 nickname words, packed like fwup's table: each row holds one
/// word of each length 3, 4, 5, 6 and 7 (25 letters), and word `i` is word
/// `i % 5` of row `i / 5`. The last row has only its 3-letter word.
const WORD_ROWS: &str = concat!(
    "actableaboutabsentabandon",
    "addawayaisleadviceaddress",
    "aimbestangerannualanalyst",
    "allbonearmorassumeapology",
    "armcakebeachbarrelaverage",
    "askchatblessbitterbargain",
    "barclubbrickbronzeblanket",
    "bidcorncabincameracapital",
    "boydashchalkcasualcertain",
    "candicecivilcherrycoconut",
    "catdripcloudcolumnconduct",
    "cupeastcraftcreditcrucial",
    "dayfallcurvedebriscushion",
    "dryfinedreamdependdespair",
    "eggfoilearthdinnerdilemma",
    "eragainentrydragondynamic",
    "fangladexistenergyemotion",
    "fewgritfieldestateessence",
    "fixheadfocusexpireexhibit",
    "foghoodgaugefingerfatigue",
    "foxideaglovefossilforward",
    "gapjumpgruntgarlicgenuine",
    "hatkiwihelloguitargravity",
    "hiplazyinnerhorrorillness",
    "icelinklaborindoorinitial",
    "joblooplightinvestjealous",
    "keymathmaplelaptoplecture",
    "kidmindmimiclonelylottery",
    "labnamenastymarginmention",
    "madnoseoffermiddlemonitor",
    "mixopenownermotionnetwork",
    "netpasspianonephewobserve",
    "nutplugpoweronlineostrich",
    "oakpulppursepalacepeasant",
    "oilrampreadyphrasepopular",
    "oneringroundpraisepresent",
    "pensafescrapreasonprogram",
    "pigseedshockreliefpudding",
    "rawsignskillresistraccoon",
    "rugslotsnackripplerelease",
    "runsoonspawnsalutesatisfy",
    "saystepsprayselectsession",
    "shytapestillsilverslender",
    "spytextsuperspherestomach",
    "tagtinytablestreetsupreme",
    "tiptriptiredsymbolthunder",
    "toeundotradetickettrigger",
    "toyvisatruthtraveluncover",
    "twowaspvagueunfoldutility",
    "vanwildvividvalleyvibrant",
    "webyardzebravoyageweather",
    "zoo",
);

/// A bundle's computed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaIds {
    /// `xxxxxxxx-xxxx-5xxx-xxxx-xxxxxxxxxxxx`, lower-case hex.
    pub uuid: String,
    /// Two words joined by `-`.
    pub nickname: String,
}

impl MetaIds {
    /// Computes both identities from the `meta.conf` bytes as stored in the
    /// archive.
    pub fn from_meta_conf(meta_conf: &[u8]) -> MetaIds {
        let bytes = uuid_bytes(meta_conf);
        MetaIds {
            uuid: format_uuid(&bytes),
            nickname: nickname(bytes[0], bytes[1]),
        }
    }

    /// An environment for `parse_conf`: the computed variables override
    /// `base` (fwup overwrites `FWUP_META_UUID` whatever the caller set).
    pub fn env<'a>(&'a self, base: &'a dyn Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| match name {
            FWUP_META_UUID => Some(self.uuid.clone()),
            FWUP_META_NICKNAME => Some(self.nickname.clone()),
            _ => base(name),
        }
    }
}

/// A `meta.conf` that sets `meta-uuid` to something else than its computed
/// UUID (fwup refuses it: "meta.conf isn't allowed to change 'meta-uuid'").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("meta.conf sets meta-uuid to `{declared}`, but its contents give {computed}; the bundle was edited by hand")]
pub struct MetaUuidOverride {
    pub declared: String,
    pub computed: String,
}

/// Refuses a `meta.conf` whose `meta-uuid` option (if any) differs from
/// the computed one, as fwup does after parsing.
pub fn check_declared_uuid(root: &Section, ids: &MetaIds) -> Result<(), MetaUuidOverride> {
    for (key, value) in &root.options {
        if key != "meta-uuid" {
            continue;
        }
        let declared = match value {
            super::conf::Value::Scalar(s) => s.clone(),
            super::conf::Value::List(items) => format!("{{{}}}", items.join(",")),
        };
        if declared != ids.uuid {
            return Err(MetaUuidOverride {
                declared,
                computed: ids.uuid.clone(),
            });
        }
    }
    Ok(())
}

/// The nickname of a printed UUID (from its first two bytes), or `None`
/// when it does not start with four hex digits.
pub fn nickname_for_uuid(uuid: &str) -> Option<String> {
    let first = uuid.get(0..2).and_then(|h| u8::from_str_radix(h, 16).ok())?;
    let second = uuid.get(2..4).and_then(|h| u8::from_str_radix(h, 16).ok())?;
    Some(nickname(first, second))
}

fn uuid_bytes(meta_conf: &[u8]) -> [u8; 16] {
    // The resources' BLAKE2b: one implementation to translate in a guest.
    let mut hasher = super::blake2b::Blake2b256::new();
    hasher.update(&FWUP_NAMESPACE);
    hasher.update(meta_conf);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hasher.finalize()[..16]);
    // RFC 4122 version 5 (fwup does not touch the variant bits).
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes
}

fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn nickname(first: u8, second: u8) -> String {
    format!("{}-{}", word(first), word(second))
}

/// Word `index` of [`WORD_ROWS`].
fn word(index: u8) -> &'static str {
    let index = usize::from(index);
    let column = index % 5;
    // Offsets of the 3-, 4-, 5-, 6- and 7-letter words inside a row.
    let start = (index / 5) * 25 + column * (column + 5) / 2;
    WORD_ROWS.get(start..start + column + 3).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_table_has_256_distinct_words_of_the_right_lengths() {
        let words: Vec<&str> = (0..=255u8).map(word).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(w.len(), i % 5 + 3, "word {i} `{w}`");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "word {i} `{w}`");
        }
        let mut sorted = words.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert_eq!(WORD_ROWS.len(), 51 * 25 + 3);
        // Spot checks published with fwup's list (NervesMOTD copies it).
        assert_eq!(
            (word(0), word(108), word(194), word(255)),
            ("act", "garlic", "raccoon", "zoo")
        );
    }

    #[test]
    fn nicknames_match_fwup_test_vectors() {
        // From fwup's unit tests (repeated in NervesMOTD's test suite).
        for (uuid, expected) in [
            ("b3c560af-d052-58c1-228d-5fa869817cda", "present-snack"),
            ("53233641-82a4-5576-b75d-d227a234c626", "energy-bid"),
            ("ecb37e6e-6a7b-5f22-2077-7ccad0e40d85", "visa-present"),
        ] {
            assert_eq!(nickname_for_uuid(uuid).as_deref(), Some(expected), "{uuid}");
        }
        assert_eq!(nickname_for_uuid("zz"), None);
        assert_eq!(nickname_for_uuid("b3c"), None);
    }

    #[test]
    fn uuid_depends_on_every_byte_and_has_version_5() {
        let a = MetaIds::from_meta_conf(b"meta-product=a\n");
        let b = MetaIds::from_meta_conf(b"meta-product=b\n");
        assert_ne!(a.uuid, b.uuid);
        assert_eq!(a, MetaIds::from_meta_conf(b"meta-product=a\n"));
        assert_eq!(&a.uuid[14..15], "5");
        assert_eq!(nickname_for_uuid(&a.uuid), Some(a.nickname.clone()));
    }

    #[test]
    fn env_overrides_the_callers_value() {
        let ids = MetaIds::from_meta_conf(b"x=1\n");
        let base = |name: &str| (name == FWUP_META_UUID || name == "OTHER").then(|| "from-caller".to_string());
        let env = ids.env(&base);
        assert_eq!(env(FWUP_META_UUID), Some(ids.uuid.clone()));
        assert_eq!(env(FWUP_META_NICKNAME), Some(ids.nickname.clone()));
        assert_eq!(env("OTHER").as_deref(), Some("from-caller"));
        assert_eq!(env("UNSET"), None);
    }

    #[test]
    fn declared_meta_uuid_must_match() {
        let ids = MetaIds::from_meta_conf(b"x=1\n");
        let mut root = Section::default();
        assert_eq!(check_declared_uuid(&root, &ids), Ok(()));
        root.options
            .push(("meta-uuid".into(), super::super::conf::Value::Scalar(ids.uuid.clone())));
        assert_eq!(check_declared_uuid(&root, &ids), Ok(()));
        root.options
            .push(("meta-uuid".into(), super::super::conf::Value::Scalar("0000".into())));
        let err = check_declared_uuid(&root, &ids).expect_err("overridden uuid");
        assert_eq!(err.declared, "0000");
    }
}
