//! Deterministic test bytes for the ZIP walker's unit tests.

/// `len` xorshift bytes, each below `alphabet` (256 for incompressible
/// noise, small values for data deflate can compress).
pub(super) fn xorshift_bytes(len: usize, seed: u32, alphabet: u16) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % u32::from(alphabet)) as u8
        })
        .collect()
}
