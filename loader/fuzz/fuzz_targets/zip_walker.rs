//! Any byte string through the streaming ZIP walker: it must return
//! entries or errors, never panic, hang or allocate without bound.

#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use loader::bundle::zip::ZipWalker;

fuzz_target!(|data: &[u8]| {
    // A small read-ahead makes headers straddle refills.
    let mut walker = ZipWalker::with_buffer(data, 4096);
    let mut buf = [0u8; 8192];
    while let Ok(Some(mut entry)) = walker.next_entry() {
        let _ = entry.name();
        while let Ok(n) = entry.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
});
