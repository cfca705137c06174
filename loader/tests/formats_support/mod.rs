//! Shared helpers of the `formats_*` integration tests: the corpus fixtures
//! (see `fixtures/formats/extract.sh`), a small reader for fwup's normalized
//! meta.conf, and a sparse in-memory disk.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use loader::bundle::conf::{Section, Value};
use loader::formats::Medium;

pub const BLOCK: u64 = 512;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/formats")
        .join(name)
}

/// `CASE.START+COUNT.bin`: blocks START.. of the expected image of CASE.
pub fn region(case: &str, start: u64, count: u64) -> Vec<u8> {
    let bytes = std::fs::read(fixture_path(&format!("{case}.{start}+{count}.bin"))).unwrap();
    assert_eq!(bytes.len() as u64, count * BLOCK, "fixture {case} {start}+{count}");
    bytes
}

/// The meta.conf of a corpus bundle, parsed.
pub fn meta_conf(bundle: &str) -> Section {
    let text = std::fs::read_to_string(fixture_path(&format!("{bundle}.meta.conf"))).unwrap();
    parse(&text)
}

/// The first child section of `kind` titled `title`.
pub fn section<'a>(root: &'a Section, kind: &str, title: &str) -> &'a Section {
    root.child(kind, title)
        .unwrap_or_else(|| panic!("no {kind} \"{title}\" in meta.conf"))
}

/// Parses the normalized libconfuse form fwup writes: one `key=value`,
/// `key={a,b}`, `kind "title" {`, `kind {` or `}` per line.
pub fn parse(text: &str) -> Section {
    let mut stack = vec![Section::default()];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line == "}" {
            let done = stack.pop().unwrap();
            stack.last_mut().unwrap().sections.push(done);
        } else if let Some(head) = line.strip_suffix('{').filter(|_| !line.contains('=')) {
            let mut words = tokens(head.trim(), ' ').into_iter();
            let kind = words.next().unwrap();
            stack.push(Section {
                kind,
                title: words.next(),
                ..Section::default()
            });
        } else {
            let (key, raw) = line.split_once('=').unwrap();
            let value = match raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                Some(items) => Value::List(tokens(items, ',')),
                None => Value::Scalar(tokens(raw, ' ').into_iter().next().unwrap_or_default()),
            };
            stack.last_mut().unwrap().options.push((key.to_string(), value));
        }
    }
    assert_eq!(stack.len(), 1, "unbalanced braces");
    stack.pop().unwrap()
}

/// Splits on `sep` (and spaces), keeping `"quoted strings"` (with `\"` and
/// `\\` escapes) whole.
fn tokens(text: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' || c == sep {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => s.push(chars.next().unwrap()),
                    '"' => break,
                    c => s.push(c),
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek().filter(|&&c| c != ' ' && c != sep) {
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    out
}

/// A disk of `blocks` blocks that stores only what was written.
#[derive(Default)]
pub struct SparseDisk {
    pub blocks: BTreeMap<u64, Vec<u8>>,
}

impl SparseDisk {
    pub fn new() -> SparseDisk {
        SparseDisk::default()
    }

    /// Bytes at `offset`, as a reader of the disk sees them.
    pub fn bytes(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.read_at(offset, &mut buf).unwrap();
        buf
    }

    pub fn write_at_block(&mut self, block: u64, bytes: &[u8]) {
        self.write_at(block * BLOCK, bytes).unwrap();
    }

    pub fn write_all(&mut self, sectors: &[(u64, Vec<u8>)]) {
        for (offset, bytes) in sectors {
            self.write_at(*offset, bytes).unwrap();
        }
    }
}

impl Medium for SparseDisk {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            *byte = self.blocks.get(&(at / BLOCK)).map_or(0, |b| b[(at % BLOCK) as usize]);
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        for (i, &byte) in data.iter().enumerate() {
            let at = offset + i as u64;
            self.blocks.entry(at / BLOCK).or_insert_with(|| vec![0; BLOCK as usize])[(at % BLOCK) as usize] = byte;
        }
        Ok(())
    }
}

/// Hex dump of the first difference, for assertion messages.
pub fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    match expected.iter().zip(actual).position(|(a, b)| a != b) {
        None if expected.len() == actual.len() => "identical".to_string(),
        None => format!("lengths differ: expected {}, actual {}", expected.len(), actual.len()),
        Some(i) => {
            let from = i.saturating_sub(8);
            let to = (i + 8).min(expected.len()).min(actual.len());
            format!(
                "first difference at byte {i}: expected {:02x?}, actual {:02x?}",
                &expected[from..to],
                &actual[from..to]
            )
        }
    }
}

pub fn assert_bytes(what: &str, expected: &[u8], actual: &[u8]) {
    assert!(expected == actual, "{what}: {}", first_difference(expected, actual));
}

/// The `kind "title"` section of a corpus bundle's meta.conf, edited.
pub fn edited(bundle: &str, kind: &str, title: &str, edit: impl FnOnce(&mut Section)) -> Section {
    let mut s = section(&meta_conf(bundle), kind, title).clone();
    edit(&mut s);
    s
}

pub fn set(s: &mut Section, partition: &str, key: &str, value: &str) {
    let part = s
        .sections
        .iter_mut()
        .find(|p| p.title.as_deref() == Some(partition))
        .unwrap();
    part.options.push((key.to_string(), Value::Scalar(value.to_string())));
}
