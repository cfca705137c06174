//! Every apply case of the fwup corpus (`fixtures/fw/cases.tsv`): same
//! success/failure as fwup 1.16, and for successes an image that
//! `tools/imgcompare` calls identical or equivalent to fwup's. For failures,
//! nothing that can boot was written: the first and last MiB, and every
//! byte fwup itself left untouched, are as they were before.
//!
//! Needs `zstd`, `python3` and `fsck.fat` (scripts/test installs them).

mod corpus_support;

#[test]
fn corpus_cases_match_fwup() {
    let failures = corpus_support::run_cases(&corpus_support::fixture_dir("fw"));
    assert!(
        failures.is_empty(),
        "{} case(s) differ from fwup:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
