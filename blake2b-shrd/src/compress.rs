//! The BLAKE2b compression function, written for an emulated x86-64 CPU.
//!
//! Every rotation is a `shrd`: QEMU's TCG (what a one-vCPU guest without
//! KVM runs on) translates `ror` and `rol` by first computing all of the
//! guest's flags in a helper call, because a rotate keeps the flags it does
//! not set. TCG drops that call only when an instruction that overwrites
//! the flags (an `add`) comes before the next memory access; with 16 state
//! words in 15 registers the compiler's spills and message loads fall in
//! between about half the time, so half of BLAKE2b's 384 rotations per
//! block cost a call. `shrd reg, reg, n` computes the same rotation and
//! sets its flags from the result alone, with no helper. Measured under
//! `qemu-x86_64 -cpu qemu64` (CPU time, 128 MiB): 253-268 MB/s against
//! 117-134 for the same code with `ror`, and 140-153 for `blake2b_simd`'s
//! portable code. On real CPUs `shrd` is slower than `ror` (half the speed
//! on an AMD EPYC), so the loader picks this implementation only when a
//! timing probe says it is the fastest.
//!
//! The 16 message words are loaded once per block into the low halves of
//! the 16 XMM registers and read with `movq` into a general register where
//! a round needs them. In a system-mode guest every load from memory also
//! costs a software TLB lookup (and a write-back of the guest registers
//! TCG holds in host registers), while TCG reads an XMM register from its
//! CPU state directly. The compiler would otherwise copy the block to the
//! stack and reload each word 12 times: with the words in XMM registers
//! the compress does about 190 memory accesses per block instead of about
//! 320 (the rest are spills of the 16 state words in 15 registers).
//! Measured in the guest (`loader/examples/byte_costs_guest.sh`, q35, one
//! vCPU, 112 MB bundle): 166-172 MB/s against 144-154 with the words
//! reloaded from memory.
//!
//! The 12 rounds are unrolled with the message schedule as constant
//! indices: no SIGMA table loads.

use crate::{BLOCK, IV};

/// `x` rotated right by `N` bits, as one `shrd` on x86-64.
#[inline(always)]
fn rotr<const N: u32>(x: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut x = x;
        // SAFETY: `shrd` with one register as both operands and an
        // immediate count reads and writes only that register and the flags
        // (not declared preserved); no memory, no stack.
        unsafe {
            core::arch::asm!("shrd {x}, {x}, {n}", x = inout(reg) x, n = const N, options(pure, nomem, nostack));
        }
        x
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        x.rotate_right(N)
    }
}

/// The mixing function G on state words a, b, c, d with message words x, y.
macro_rules! g {
    ($v:ident, $m:ident, $a:literal, $b:literal, $c:literal, $d:literal, $x:literal, $y:literal) => {
        $v[$a] = $v[$a].wrapping_add($v[$b]).wrapping_add($m.word($x));
        $v[$d] = rotr::<32>($v[$d] ^ $v[$a]);
        $v[$c] = $v[$c].wrapping_add($v[$d]);
        $v[$b] = rotr::<24>($v[$b] ^ $v[$c]);
        $v[$a] = $v[$a].wrapping_add($v[$b]).wrapping_add($m.word($y));
        $v[$d] = rotr::<16>($v[$d] ^ $v[$a]);
        $v[$c] = $v[$c].wrapping_add($v[$d]);
        $v[$b] = rotr::<63>($v[$b] ^ $v[$c]);
    };
}

/// One round: columns, then diagonals, with that round's row of SIGMA.
macro_rules! round {
    ($v:ident, $m:ident, $s0:literal $s1:literal $s2:literal $s3:literal $s4:literal $s5:literal $s6:literal $s7:literal
     $s8:literal $s9:literal $s10:literal $s11:literal $s12:literal $s13:literal $s14:literal $s15:literal) => {
        g!($v, $m, 0, 4, 8, 12, $s0, $s1);
        g!($v, $m, 1, 5, 9, 13, $s2, $s3);
        g!($v, $m, 2, 6, 10, 14, $s4, $s5);
        g!($v, $m, 3, 7, 11, 15, $s6, $s7);
        g!($v, $m, 0, 5, 10, 15, $s8, $s9);
        g!($v, $m, 1, 6, 11, 12, $s10, $s11);
        g!($v, $m, 2, 7, 8, 13, $s12, $s13);
        g!($v, $m, 3, 4, 9, 14, $s14, $s15);
    };
}

/// Where the rounds read the block's 16 message words from.
trait Message {
    fn word(&self, i: usize) -> u64;
}

#[cfg(not(target_arch = "x86_64"))]
impl Message for [u64; 16] {
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        self[i]
    }
}

/// The message words in the low halves of 16 XMM registers: each read is a
/// register move, where reading the block (or a stack copy) is a memory
/// load, which in a system-mode TCG guest also costs a software TLB lookup.
#[cfg(target_arch = "x86_64")]
struct InXmm([core::arch::x86_64::__m128i; 16]);

#[cfg(target_arch = "x86_64")]
impl Message for InXmm {
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        let word: u64;
        // SAFETY: `movq` from an XMM register to a general one: registers
        // only, no memory, no stack, no flags. Not `pure`: the compiler
        // would merge the reads of a word and spill the result to memory.
        unsafe {
            core::arch::asm!("movq {w}, {x}", w = lateout(reg) word, x = in(xmm_reg) self.0[i], options(nomem, nostack, preserves_flags));
        }
        word
    }
}

/// Compresses one block into `h`; `counter` counts the bytes hashed so far,
/// this block's included; `last` marks the final block.
#[inline(never)]
pub fn compress(h: &mut [u64; 8], block: &[u8; BLOCK], counter: u128, last: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // Each word straight from the block into its register: going
        // through an array would put the words on the stack (memory).
        let block = block.as_ptr();
        macro_rules! xmm {
            ($i:literal) => {{
                let x: core::arch::x86_64::__m128i;
                // SAFETY: reads the 8 bytes at offset 8 * $i <= 120 of the
                // 128-byte block `block` borrows for this call; `movq` to an
                // XMM register has no alignment requirement.
                unsafe {
                    core::arch::asm!("movq {x}, qword ptr [{p} + {o}]", x = lateout(xmm_reg) x, p = in(reg) block, o = const 8 * $i, options(pure, readonly, nostack, preserves_flags));
                }
                x
            }};
        }
        let m = [
            xmm!(0),
            xmm!(1),
            xmm!(2),
            xmm!(3),
            xmm!(4),
            xmm!(5),
            xmm!(6),
            xmm!(7),
            xmm!(8),
            xmm!(9),
            xmm!(10),
            xmm!(11),
            xmm!(12),
            xmm!(13),
            xmm!(14),
            xmm!(15),
        ];
        rounds(h, InXmm(m), counter, last);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = [0u64; 16];
        for (word, bytes) in m.iter_mut().zip(block.as_chunks::<8>().0) {
            *word = u64::from_le_bytes(*bytes);
        }
        rounds(h, m, counter, last);
    }
}

#[inline(always)]
fn rounds(h: &mut [u64; 8], m: impl Message, counter: u128, last: bool) {
    let mut v = [0u64; 16];
    v[..8].copy_from_slice(h);
    v[8..].copy_from_slice(&IV);
    v[12] ^= counter as u64;
    v[13] ^= (counter >> 64) as u64;
    if last {
        v[14] = !v[14];
    }
    round!(v, m, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    round!(v, m, 14 10 4 8 9 15 13 6 1 12 0 2 11 7 5 3);
    round!(v, m, 11 8 12 0 5 2 15 13 10 14 3 6 7 1 9 4);
    round!(v, m, 7 9 3 1 13 12 11 14 2 6 5 10 4 0 15 8);
    round!(v, m, 9 0 5 7 2 4 10 15 14 1 11 12 6 8 3 13);
    round!(v, m, 2 12 6 10 0 11 8 3 4 13 7 5 15 14 1 9);
    round!(v, m, 12 5 1 15 14 13 4 10 0 7 6 3 9 2 8 11);
    round!(v, m, 13 11 7 14 12 1 3 9 5 0 15 4 8 6 2 10);
    round!(v, m, 6 15 14 9 11 3 0 8 12 2 13 7 1 4 10 5);
    round!(v, m, 10 2 8 4 7 6 1 5 15 11 9 14 3 12 13 0);
    round!(v, m, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    round!(v, m, 14 10 4 8 9 15 13 6 1 12 0 2 11 7 5 3);
    for (i, word) in h.iter_mut().enumerate() {
        *word ^= v[i] ^ v[i + 8];
    }
}
