//! CRC-32 (the ZIP and gzip polynomial) by slice-by-16 tables, reading the
//! data 8 bytes per load.
//!
//! Written for a system-mode QEMU TCG guest on QEMU's default `qemu64` CPU
//! (no PCLMULQDQ, so `crc32fast` runs its own slice-by-16 tables). There
//! every guest load costs a software TLB lookup, and `crc32fast`'s table
//! code loads 12 of every 16 bytes one at a time: 29 loads per 16 bytes.
//! This one loads the 16 bytes as two words and takes the table indices
//! from them with shifts: 18 loads. Measured in a one-vCPU guest
//! (`loader/examples/byte_costs_guest.sh`, 112 MB bundle, best of three):
//! 625-649 MB/s against 433-452 for `crc32fast` (three boots). In user
//! mode (`qemu-x86_64 -cpu qemu64`), where loads are cheap, the two are
//! close, and on a real CPU with PCLMULQDQ this one is 8 times slower, so
//! the loader picks between the two with a timing probe.
//!
//! A crate of its own so that it builds at opt-level 3 while the loader
//! stays at "z".

/// `TABLES[n][b]`: the CRC contribution of byte `b` followed by `n` zero
/// bytes (`TABLES[0]` is the classic byte-at-a-time table).
const fn tables() -> [[u32; 256]; 16] {
    let mut t = [[0u32; 256]; 16];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut n = 1;
    while n < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[n - 1][i];
            t[n][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        n += 1;
    }
    t
}

static TABLES: [[u32; 256]; 16] = tables();

/// The CRC-32 of the bytes behind `crc` (the CRC-32 so far, 0 at the
/// start) followed by `data`.
pub fn update(crc: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut crc = !crc;
    let (blocks, rest) = data.as_chunks::<16>();
    for block in blocks {
        let (lo, hi) = block.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default()) ^ u64::from(crc);
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
        let byte = |word: u64, n: u32| ((word >> (8 * n)) & 0xff) as usize;
        crc = t[15][byte(lo, 0)]
            ^ t[14][byte(lo, 1)]
            ^ t[13][byte(lo, 2)]
            ^ t[12][byte(lo, 3)]
            ^ t[11][byte(lo, 4)]
            ^ t[10][byte(lo, 5)]
            ^ t[9][byte(lo, 6)]
            ^ t[8][byte(lo, 7)]
            ^ t[7][byte(hi, 0)]
            ^ t[6][byte(hi, 1)]
            ^ t[5][byte(hi, 2)]
            ^ t[4][byte(hi, 3)]
            ^ t[3][byte(hi, 4)]
            ^ t[2][byte(hi, 5)]
            ^ t[1][byte(hi, 6)]
            ^ t[0][byte(hi, 7)];
    }
    for &b in rest {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn check_value() {
        // The CRC-32 catalogue's check: CRC-32/ISO-HDLC of "123456789".
        assert_eq!(update(0, b"123456789"), 0xcbf4_3926);
        assert_eq!(update(0, b""), 0);
    }

    #[test]
    fn block_boundaries_match_crc32fast() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 131 % 251) as u8).collect();
        for n in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 4096, 4999, 5000] {
            assert_eq!(update(0, &data[..n]), crc32fast::hash(&data[..n]), "{n} bytes");
        }
    }

    proptest! {
        /// Any data, any chunking: the same CRC as `crc32fast`.
        #[test]
        fn matches_crc32fast(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(0usize..2000, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let (mut crc, mut from) = (0, 0);
            for cut in cuts.into_iter().chain([data.len()]) {
                crc = update(crc, &data[from..cut]);
                from = cut;
            }
            prop_assert_eq!(crc, crc32fast::hash(&data));
        }
    }
}
