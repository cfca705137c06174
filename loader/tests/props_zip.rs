//! Property tests of the streaming ZIP walker: generated archives, every
//! entry in any of the layouts real writers use (stored or deflated; sizes
//! in the header, in a data descriptor with or without its signature, or
//! both; zip64 fields), walk back to exactly the entries written, however
//! the bytes arrive.

mod zip_support;

use std::io::{self, Read};

use loader::bundle::zip::ZipWalker;
use proptest::prelude::*;
use zip_support::{walk_all, walk_reader, walk_with_buffer, Layout, ZipBuilder};

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(deflate, descriptor, descriptor_signature, sizes_in_header, zip64)| Layout {
                deflate,
                descriptor,
                descriptor_signature,
                sizes_in_header,
                zip64,
            },
        )
}

/// Contents: empty, compressible, incompressible, or holding ZIP
/// signatures (a stored entry's end is found by its descriptor).
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        2 => (any::<u8>(), 1usize..20_000).prop_map(|(b, n)| vec![b; n]),
        3 => prop::collection::vec(any::<u8>(), 1..3000),
        1 => prop::collection::vec(
            prop::sample::select(vec![0x50u8, 0x4b, 0x07, 0x08, 0x03, 0x04, 0x01, 0x02, 0]),
            1..600
        ),
    ]
}

fn archive() -> impl Strategy<Value = Vec<(String, Vec<u8>, Layout)>> {
    prop::collection::vec((data(), layout()), 0..6).prop_map(|entries| {
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (data, layout))| (format!("data/entry-{i}"), data, layout))
            .collect()
    })
}

fn build(entries: &[(String, Vec<u8>, Layout)]) -> Vec<u8> {
    let mut zip = ZipBuilder::new();
    for (name, data, layout) in entries {
        zip.add(name, data, *layout);
    }
    zip.finish()
}

/// Hands out at most `chunk` bytes per read, as a network stream does.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

proptest! {
    // Deflating and walking 3 ways is the slow part: fewer cases than the
    // default keep the suite quick.
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_walk_returns_exactly_the_entries_written(entries in archive(), chunk in 1usize..5000) {
        let zip = build(&entries);
        let expected: Vec<(String, Vec<u8>)> = entries.iter().map(|(n, d, _)| (n.clone(), d.clone())).collect();
        prop_assert_eq!(walk_all(&zip), Ok(expected.clone()));
        prop_assert_eq!(walk_reader(Trickle(&zip, chunk)), Ok(expected.clone()));
        prop_assert_eq!(walk_with_buffer(Trickle(&zip, chunk), 4096), Ok(expected));
    }

    /// Skipping some entries (unread, or with `Entry::skip`) leaves the
    /// others intact and the walk ends at the central directory.
    #[test]
    fn skipped_entries_do_not_disturb_the_others(entries in archive(), plan in prop::collection::vec(0u8..3, 6)) {
        let zip = build(&entries);
        let mut walker = ZipWalker::with_buffer(&zip[..], 4096);
        let mut index = 0;
        while let Some(mut entry) = walker.next_entry().map_err(|e| TestCaseError::fail(e.to_string()))? {
            prop_assert_eq!(entry.name(), entries[index].0.as_str());
            match plan[index] {
                0 => {
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&data, &entries[index].1);
                }
                1 => entry.skip().map_err(|e| TestCaseError::fail(e.to_string()))?,
                _ => {}
            }
            index += 1;
        }
        prop_assert_eq!(index, entries.len());
        prop_assert!(walker.bytes_consumed() <= zip.len() as u64);
    }

    /// A name used twice is refused wherever the second one comes.
    #[test]
    fn a_repeated_name_is_refused(entries in archive(), again in 0usize..6, layout in layout()) {
        prop_assume!(!entries.is_empty());
        let first = again % entries.len();
        let mut zip = ZipBuilder::new();
        for (name, data, layout) in &entries {
            zip.add(name, data, *layout);
        }
        zip.add(&entries[first].0, b"second", layout);
        let err = walk_all(&zip.finish()).expect_err("duplicate accepted");
        prop_assert!(err.contains(&entries[first].0), "{}", err);
    }
}
