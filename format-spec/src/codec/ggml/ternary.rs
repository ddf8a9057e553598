//! ggml's ternary types, values in {-1, 0, +1}·d over 256-element blocks.
//!
//! TQ2_0 (66 bytes): 64 bytes of four 2-bit fields @0, `d` @64. Within each 32-byte half,
//! field `f` of byte `m` is element `32·f + m` of that half's 128; the field holds `q + 1`.
//!
//! TQ1_0 (54 bytes): 48 bytes of five base-3 digits @0, 4 bytes of four digits @48, `d` @52.
//! A byte stores its digits as a fixed-point fraction: the byte is ⌈v·256/243⌉ where `v` is
//! the digits read as a base-3 number, most significant first. Digit `n` is recovered by
//! multiplying by 3ⁿ modulo 256 (dropping the digits above it) and taking the top of
//! `byte·3` (`(byte·3) >> 8`). Bytes 0–31 carry elements in five runs of 32 (digit `n` of
//! byte `m` is element `32n + m`), bytes 32–47 five runs of 16 (elements 160 + 16n + m),
//! and the last four bytes four runs of 4 (elements 240 + 4n + m).

use super::f16_at;

pub(super) fn decode_tq1_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 52);
    let mut y = out.iter_mut();
    let runs: [(&[u8], usize); 3] = [(&block[0..32], 5), (&block[32..48], 5), (&block[48..52], 4)];
    for (bytes, digits) in runs {
        let mut power = 1u8;
        for _ in 0..digits {
            for &byte in bytes {
                let shifted = byte.wrapping_mul(power);
                let digit = ((shifted as u16 * 3) >> 8) as i32;
                if let Some(y) = y.next() {
                    *y = (digit - 1) as f32 * d;
                }
            }
            power = power.wrapping_mul(3);
        }
    }
}

pub(super) fn decode_tq2_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 64);
    for half in 0..2 {
        let qs = &block[32 * half..32 * (half + 1)];
        for field in 0..4 {
            let y = &mut out[128 * half + 32 * field..128 * half + 32 * (field + 1)];
            for (y, &byte) in y.iter_mut().zip(qs) {
                let q = ((byte >> (2 * field)) & 3) as i32;
                *y = (q - 1) as f32 * d;
            }
        }
    }
}
