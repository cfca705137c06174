//! Randomized robustness test: mutated corpus `meta.conf` files never make
//! the parser or the manifest builder panic.
//!
//! Deterministic by default; `META_CONF_FUZZ_SEED=n` and
//! `META_CONF_FUZZ_ROUNDS=n` (per fixture) explore further.

use std::panic::{catch_unwind, AssertUnwindSafe};

use loader::bundle::manifest::Manifest;
use loader::bundle::parse::parse_conf;

const FIXTURES: [&str; 9] = [
    "01-minimal-raw",
    "02-x86_64-ab-mbr",
    "02-x86_64-ab-mbr-v2",
    "03-x86_64-ab-gpt",
    "03-x86_64-ab-gpt-v2",
    "04-signed",
    "04-signed-tampered-meta",
    "05-large-base",
    "06-actions-zoo",
];

/// Fragments that steer mutations into the interesting lexer and parser
/// states.
const FRAGMENTS: [&str; 34] = [
    "{",
    "}",
    "(",
    ")",
    "=",
    "+=",
    ",",
    "\"",
    "'",
    "\\",
    "${",
    "#",
    "//",
    "/*",
    "*/",
    "\n",
    "\\x",
    "\\0",
    "\\777",
    "\\\n",
    "${FWUP_META_UUID}",
    "${X:-d}",
    "funlist={",
    "reqlist={",
    "3,fat_cp,",
    "11,",
    "task \"t\" {",
    "on-resource \"x\" {",
    "on-init {",
    "length={",
    "0x",
    "\0",
    "é",
    "-1",
];

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, donors: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(6) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] = (rng.next() & 0x7f) as u8;
        }
        1 => {
            let at = rng.below(len + 1);
            let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
            input.splice(at..at, fragment.iter().copied());
        }
        2 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            input.drain(start..end);
        }
        3 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(256)).min(len);
            let piece: Vec<u8> = input[start..end].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, piece);
        }
        4 => input.truncate(rng.below(len + 1)),
        _ => {
            let donor = &donors[rng.below(donors.len())];
            if !donor.is_empty() {
                let start = rng.below(donor.len());
                let end = (start + 1 + rng.below(512)).min(donor.len());
                let at = rng.below(len + 1);
                input.splice(at..at, donor[start..end].iter().copied());
            }
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn mutated_corpus_meta_confs_never_panic() {
    let dir = format!("{}/tests/fixtures/meta-conf", env!("CARGO_MANIFEST_DIR"));
    let donors: Vec<Vec<u8>> = FIXTURES
        .iter()
        .map(|name| std::fs::read(format!("{dir}/{name}.meta.conf")).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    let seed = env_number("META_CONF_FUZZ_SEED", 0x5eed_1e55_c0ff_ee11);
    let rounds = env_number("META_CONF_FUZZ_ROUNDS", 1500);
    let mut rng = Rng(seed | 1);
    let env = |name: &str| name.len().is_multiple_of(2).then(|| format!("v{{{name}}}\"\\"));
    let (mut cases, mut parsed, mut built) = (0u64, 0u64, 0u64);

    for original in &donors {
        for _ in 0..rounds {
            let mut input = original.clone();
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut input, &donors);
            }
            let text = String::from_utf8_lossy(&input).into_owned();
            let outcome = catch_unwind(AssertUnwindSafe(|| match parse_conf(&text, &env) {
                Err(e) => {
                    assert!(e.line >= 1 && !e.to_string().is_empty());
                    (false, false)
                }
                Ok(root) => match Manifest::from_conf(&root) {
                    Ok(_) => (true, true),
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        (true, false)
                    }
                },
            }));
            match outcome {
                Ok((p, b)) => {
                    cases += 1;
                    parsed += u64::from(p);
                    built += u64::from(b);
                }
                Err(_) => panic!("panic on input (seed {seed:#x}):\n{text:?}"),
            }
        }
    }
    // The mutations must reach the builder, not only the lexer.
    assert!(parsed * 10 > cases, "only {parsed} of {cases} mutated inputs parsed");
    assert!(
        built * 40 > cases,
        "only {built} of {cases} mutated inputs built a manifest"
    );
    eprintln!("fuzz: {cases} inputs, {parsed} parsed, {built} built a manifest");
}
