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

/// A layout larger than the target: fwup writes the resource and then a
/// table that points past the end of the disk (see make-fixtures.sh); the
/// loader refuses before the first write, saying the disk size, the layout
/// size and the largest partition that does not fit.
#[test]
fn a_layout_larger_than_the_disk_is_refused_before_any_write() {
    use loader::apply::{self, events::Silent, ApplyOptions};
    use loader::target::file::ImageFile;

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (layout, table) in [("mbr", "mbr \"m\""), ("gpt", "gpt \"g\"")] {
        let img = dir.path().join(format!("{layout}.img"));
        // Filled, so any write at all would show.
        let before = vec![0xa5u8; 4 << 20];
        std::fs::write(&img, &before).unwrap_or_else(|e| panic!("{e}"));
        let bundle = corpus_support::fixture_dir("parity").join(format!("40-too-large-{layout}.fw"));
        let bundle = std::fs::File::open(bundle).unwrap_or_else(|e| panic!("{e}"));
        let mut target = ImageFile::open(&img).unwrap_or_else(|e| panic!("{e}"));
        let err = apply::apply(bundle, &mut target, &ApplyOptions::new("complete"), &mut Silent)
            .err()
            .map(|e| (e.class(), e.to_string()));
        drop(target);
        let Some((class, message)) = err else {
            panic!("{layout}: installed a layout larger than the disk")
        };
        assert_eq!(class, "too-small", "{message}");
        let layout_size = if layout == "mbr" {
            "12.0 MiB (12582912 bytes)"
        } else {
            "11.0 MiB (11551232 bytes)"
        };
        assert_eq!(
            message,
            format!(
                "{table} does not fit on the target: the disk is 4.0 MiB (4194304 bytes), the layout needs \
                 {layout_size}; the largest partition that does not fit is partition \"1\" (8.0 MiB at blocks \
                 6144..22528); nothing was written (a table pointing past the end of the disk would not boot)"
            )
        );
        assert!(
            std::fs::read(&img).is_ok_and(|after| after == before),
            "{layout}: the disk changed"
        );
    }
}
