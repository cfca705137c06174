//! Bundles and tasks beyond the fwup corpus (`fixtures/parity/cases.tsv`,
//! made by `fixtures/parity/make-fixtures.sh`), each applied by fwup 1.16
//! and by the loader: the same success/failure, and the same image.
//!
//! * 10: a redundant U-Boot environment rewritten 273 times in one task
//!   (its flag byte passes 127/128 and 255/0), then by two upgrades in a
//!   row, a task that clears it, and an upgrade over garbage;
//! * 11, 12: sparse resources with holes at the start, in the middle, at
//!   the end and only holes (from sparse files, and hand-written maps with
//!   runs that start and end inside blocks), on blank and pre-filled
//!   destinations;
//! * 20, 21: one signed bundle as fwup writes it and re-zipped by Python's
//!   `zipfile` and Perl's `IO::Compress::Zip` streaming to a pipe (stored
//!   entries sized only by their data descriptors, 32- and 64-bit),
//!   Info-ZIP and Java (deflated, sizes after the data), and with
//!   undeclared entries (one a small ZIP bomb) between the declared ones;
//! * 30–35: hand-written `meta.conf` with what fwup 1.16 does not know
//!   (options, sections, calls, actions, requirements) and the shapes its
//!   libconfuse skipping swallows or refuses.

mod corpus_support;

#[test]
fn parity_cases_match_fwup() {
    let failures = corpus_support::run_cases(&corpus_support::fixture_dir("parity"));
    assert!(
        failures.is_empty(),
        "{} case(s) differ from fwup:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
