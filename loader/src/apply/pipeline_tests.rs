//! A stage of the pipeline that panics ends the stream with the panic as
//! its error; the engine never waits on a queue that cannot fill again.
//! Inline and on threads, the stages give the same messages.

use std::io::{self, Read};
use std::sync::mpsc;
use std::time::Duration;

use super::{chunk_for, EntryStream, Msg, Stages, Wanted, CHUNK, INLINE_MAX};
use crate::apply::error::WorkerPanicked;
use crate::apply::{self, events::Silent, ApplyError, ApplyOptions};
use crate::bundle::zip::ZipWalker;
use crate::pack::zip_writer::ZipWriter;
use crate::target::file::ImageFile;

/// An entry name the hasher panics on (test builds only).
pub(super) const PANIC_IN_HASHER: &str = "data/panic-in-hasher";

/// Gives `bytes`, then panics instead of reading on.
struct PanicsAfter {
    bytes: io::Cursor<Vec<u8>>,
}

impl Read for PanicsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.bytes.read(buf)? {
            0 => panic!("injected panic in the bundle source"),
            n => Ok(n),
        }
    }
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Vec::new(), 6);
    for (name, data) in entries {
        writer.add_stored(name, data).expect("add");
    }
    writer.finish().expect("finish")
}

/// Drains the stream (inline, or on threads) on another thread; the test
/// fails instead of hanging if the stream never ends.
fn last_message<R: Read + Send + 'static>(source: R, inline: bool) -> io::Error {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Every entry of these archives is declared: none is skipped unread.
        let wanted = ["meta.conf", "data/a", PANIC_IN_HASHER, "data/b"]
            .map(String::from)
            .into();
        let walker = ZipWalker::new(source);
        let mut stream = if inline {
            EntryStream::inline(walker, Wanted::Named(wanted), true)
        } else {
            EntryStream::spawn(walker, Wanted::Named(wanted), true).expect("spawn")
        };
        loop {
            match stream.next() {
                Msg::Failed(e) => break tx.send(Ok(e)),
                Msg::Done => break tx.send(Err("the stream ended cleanly")),
                Msg::Data(buf) => stream.recycle(buf),
                _ => {}
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the stream hung after a stage panicked")
        .expect("a failure")
}

fn stage_of(err: &io::Error) -> &'static str {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<WorkerPanicked>())
        .unwrap_or_else(|| panic!("not a panic: {err}"))
        .stage
}

#[test]
fn a_panic_in_the_reader_ends_the_stream_with_it() {
    let mut bytes = zip(&[("meta.conf", b"x"), ("data/a", &[7u8; 100_000])]);
    bytes.truncate(bytes.len() / 2);
    for (inline, stage) in [(false, "bundle reader thread"), (true, "bundle reader")] {
        let source = PanicsAfter {
            bytes: io::Cursor::new(bytes.clone()),
        };
        let err = last_message(source, inline);
        assert_eq!(stage_of(&err), stage);
        assert!(err.to_string().contains("injected panic in the bundle source"), "{err}");
    }
}

#[test]
fn a_panic_in_the_hasher_ends_the_stream_with_it() {
    let bytes = zip(&[
        ("meta.conf", b"x"),
        (PANIC_IN_HASHER, &[7u8; 3 << 20]),
        ("data/b", b"y"),
    ]);
    for (inline, stage) in [(false, "bundle hasher thread"), (true, "bundle hasher")] {
        let err = last_message(io::Cursor::new(bytes.clone()), inline);
        assert_eq!(stage_of(&err), stage);
        assert!(err.to_string().contains("injected panic in the hasher"), "{err}");
    }
}

/// What a stream gave, message by message: chunks as their bytes (which
/// spare a chunk reuses depends on the threads' timing).
#[derive(Debug, PartialEq)]
enum Seen {
    Entry(String),
    Skipped(String),
    Data(Vec<u8>),
    EntryEnd(u64, Option<[u8; 32]>),
    Done,
    Failed(String),
}

fn drain(mut stream: EntryStream) -> Vec<Seen> {
    let mut seen = Vec::new();
    loop {
        let next = match stream.next() {
            Msg::Entry(name) => Seen::Entry(name),
            Msg::Skipped(name) => Seen::Skipped(name),
            Msg::Data(chunk) => {
                let data = Seen::Data(chunk.to_vec());
                stream.recycle(chunk);
                data
            }
            Msg::EntryEnd { length, blake2b_256 } => Seen::EntryEnd(length, blake2b_256),
            Msg::Done => Seen::Done,
            Msg::Failed(e) => Seen::Failed(e.to_string()),
        };
        let last = matches!(next, Seen::Done | Seen::Failed(_));
        seen.push(next);
        if last {
            return seen;
        }
    }
}

/// The same bundle read inline and on threads, hashed or not, whole or
/// cut short: message for message the same.
#[test]
fn inline_and_threaded_streams_give_the_same_messages() {
    let big = vec![9u8; CHUNK + 3];
    let bytes = zip(&[
        ("meta.conf", b"x"),
        ("data/a", b"abc"),
        ("data/unwanted", b"never inflated"),
        ("data/big", &big),
        ("data/empty", b""),
    ]);
    let wanted = || Wanted::Named(["data/a", "data/big", "data/empty"].map(String::from).into());
    for source in [bytes.clone(), bytes[..bytes.len() / 2].to_vec()] {
        for hash in [true, false] {
            let walker = || ZipWalker::new(io::Cursor::new(source.clone()));
            let threaded = drain(EntryStream::spawn(walker(), wanted(), hash).expect("spawn"));
            let inline = drain(EntryStream::inline(walker(), wanted(), hash));
            assert_eq!(inline, threaded, "hash {hash}, {} bytes", source.len());
            assert!(threaded.contains(&Seen::Skipped("data/unwanted".into())));
            assert_eq!(
                matches!(threaded.last(), Some(Seen::Done)),
                source.len() == bytes.len(),
                "{threaded:?}"
            );
        }
    }
}

#[test]
fn only_small_resources_are_read_inline() {
    let walker = || ZipWalker::new(io::Cursor::new(zip(&[("data/a", b"abc")])));
    let inline = |stream: EntryStream| matches!(stream.stages, Stages::Inline(_));
    assert!(inline(
        EntryStream::open(walker(), Wanted::All, true, INLINE_MAX).expect("open")
    ));
    assert!(!inline(
        EntryStream::open(walker(), Wanted::All, true, INLINE_MAX + 1).expect("open")
    ));
}

/// Every entry arrives whole, and one of a few bytes is not given a MiB
/// of zeroed memory: a chunk is as large as its entry still needs (sizes
/// ascend, so no larger spare is at hand to reuse).
#[test]
fn entries_arrive_whole_in_chunks_sized_to_what_they_need() {
    let sizes = [0, 1, 4095, 4097, 300_000, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 5];
    let datas: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| (i % 251) as u8 ^ (n as u8)).collect())
        .collect();
    let names: Vec<String> = sizes.iter().map(|n| format!("data/e{n}")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(String::as_str)
        .zip(datas.iter().map(Vec::as_slice))
        .collect();
    let bytes = zip(&entries);
    for inline in [false, true] {
        let walker = ZipWalker::new(io::Cursor::new(bytes.clone()));
        let mut stream = if inline {
            EntryStream::inline(walker, Wanted::All, true)
        } else {
            EntryStream::spawn(walker, Wanted::All, true).expect("spawn")
        };
        let mut got: Vec<(Vec<u8>, usize)> = Vec::new();
        loop {
            match stream.next() {
                Msg::Entry(_) => got.push((Vec::new(), 0)),
                Msg::Data(chunk) => {
                    let (data, largest) = got.last_mut().expect("an entry");
                    data.extend_from_slice(&chunk);
                    *largest = (*largest).max(chunk.capacity());
                    stream.recycle(chunk);
                }
                Msg::EntryEnd { length, .. } => assert_eq!(Some(length), got.last().map(|(d, _)| d.len() as u64)),
                Msg::Done => break,
                Msg::Skipped(name) => panic!("skipped {name}"),
                Msg::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), sizes.len());
        for ((data, largest), (expected, &size)) in got.iter().zip(datas.iter().zip(&sizes)) {
            assert!(data == expected, "entry of {size} bytes came back changed");
            assert!(
                *largest <= chunk_for(size as u64),
                "{size} bytes in a chunk of {largest}"
            );
        }
    }
    assert_eq!(chunk_for(1), 4096);
    assert_eq!(chunk_for(u64::MAX), CHUNK);
}

/// Through the engine: an install error of class `internal`.
#[test]
fn a_panicking_source_fails_the_install_as_an_internal_error() {
    let bundle = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fw/02-x86_64-ab-mbr.fw"
    ))
    .expect("corpus bundle");
    let source = PanicsAfter {
        bytes: io::Cursor::new(bundle[..bundle.len() - 2000].to_vec()),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("disk.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(1 << 30))
        .expect("image");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut target = ImageFile::open(&image).expect("open");
        let result = apply::apply(source, &mut target, &ApplyOptions::new("complete"), &mut Silent);
        let _ = tx.send(result.map(|_| ()));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the install hung after the reader panicked")
        .expect_err("the install must fail");
    assert!(matches!(err, ApplyError::Internal(_)), "{err:?}");
    assert_eq!(err.class(), "internal");
    // The corpus bundle is small: read inline.
    assert!(err.to_string().contains("the bundle reader panicked"), "{err}");
}
