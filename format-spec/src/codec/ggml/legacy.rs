//! ggml's single-scale block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (32 elements), Q2_0 (64)
//! and Q1_0 (128).
//!
//! Byte layouts (all little-endian, `d`/`m` are binary16):
//!
//! | type | bytes | layout |
//! |------|-------|--------|
//! | Q4_0 | 18 | `d`, 16 nibble bytes |
//! | Q4_1 | 20 | `d`, `m`, 16 nibble bytes |
//! | Q5_0 | 22 | `d`, u32 high bits, 16 nibble bytes |
//! | Q5_1 | 24 | `d`, `m`, u32 high bits, 16 nibble bytes |
//! | Q8_0 | 34 | `d`, 32 × i8 |
//! | Q2_0 | 18 | `d`, 16 bytes of four 2-bit fields, lowest field first |
//! | Q1_0 | 18 | `d`, 16 bytes of eight sign bits, lowest bit first |
//!
//! In the nibble types, byte `j` holds element `j` in its low nibble and element `j + 16` in
//! its high nibble; the 5-bit types take element `i`'s fifth bit from bit `i` of the u32.
//!
//! The decoders do ggml's reference f32 operations in its order: `q·d` for the symmetric
//! types, `q·d` then `+ m` (two operations, never fused) for the ones with a minimum.

use super::{f16_at, f16_bytes};

pub(super) fn decode_q4_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let qs = &block[2..18];
    for (j, &byte) in qs.iter().enumerate() {
        out[j] = ((byte & 0x0F) as i32 - 8) as f32 * d;
        out[j + 16] = ((byte >> 4) as i32 - 8) as f32 * d;
    }
}

pub(super) fn decode_q4_1(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let qs = &block[4..20];
    for (j, &byte) in qs.iter().enumerate() {
        out[j] = (byte & 0x0F) as f32 * d + m;
        out[j + 16] = (byte >> 4) as f32 * d + m;
    }
}

pub(super) fn decode_q5_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let qs = &block[6..22];
    for (j, &byte) in qs.iter().enumerate() {
        let q0 = (byte & 0x0F) as i32 | fifth_bit(high, j);
        let q1 = (byte >> 4) as i32 | fifth_bit(high, j + 16);
        out[j] = (q0 - 16) as f32 * d;
        out[j + 16] = (q1 - 16) as f32 * d;
    }
}

pub(super) fn decode_q5_1(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let high = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
    let qs = &block[8..24];
    for (j, &byte) in qs.iter().enumerate() {
        let q0 = (byte & 0x0F) as i32 | fifth_bit(high, j);
        let q1 = (byte >> 4) as i32 | fifth_bit(high, j + 16);
        out[j] = q0 as f32 * d + m;
        out[j + 16] = q1 as f32 * d + m;
    }
}

pub(super) fn decode_q8_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (y, &q) in out.iter_mut().zip(&block[2..34]) {
        *y = q as i8 as f32 * d;
    }
}

pub(super) fn decode_q2_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (j, y) in out.iter_mut().enumerate() {
        let q = (block[2 + j / 4] >> (2 * (j % 4))) & 3;
        *y = (q as i32 - 1) as f32 * d;
    }
}

pub(super) fn decode_q1_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (j, y) in out.iter_mut().enumerate() {
        let positive = (block[2 + j / 8] >> (j % 8)) & 1 == 1;
        *y = if positive { d } else { -d };
    }
}

/// ggml's `quantize_row_q8_0_ref`: `d = amax/127`, `q = round(x·(1/d))` with ties away
/// from zero (C `roundf`), `d` stored as binary16.
pub(super) fn encode_q8_0(src: &[f32], block: &mut [u8]) {
    quantize_block_q8_0(src, block);
}

/// [`encode_q8_0`], returning the unrounded f32 `d` as well: ggml's Q8_1 reference stores
/// `s = Σq · d` with it, so the kernels crate builds its Q8_1 activations on this one copy.
pub fn quantize_block_q8_0(src: &[f32], block: &mut [u8]) -> f32 {
    let amax = src.iter().fold(0f32, |acc, x| c_max(acc, x.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    block[0..2].copy_from_slice(&f16_bytes(d));
    for (q, &x) in block[2..34].iter_mut().zip(src) {
        *q = (x * id).round() as i8 as u8;
    }
    d
}

/// ggml's `quantize_row_q4_0_ref`: the element of largest magnitude (the first, on ties)
/// maps to -8, so `d = max/-8`; `q = min(15, trunc(x·(1/d) + 8.5))`.
pub(super) fn encode_q4_0(src: &[f32], block: &mut [u8]) {
    let mut amax = 0f32;
    let mut max = 0f32;
    for &x in src {
        if amax < x.abs() {
            amax = x.abs();
            max = x;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    block[0..2].copy_from_slice(&f16_bytes(d));
    let quantize = |x: f32| nibble_of(x * id + 8.5);
    for j in 0..16 {
        block[2 + j] = quantize(src[j]) | (quantize(src[j + 16]) << 4);
    }
}

/// ggml's `quantize_row_q4_1_ref`: `d = (max-min)/15`, `m = min`,
/// `q = min(15, trunc((x-min)·(1/d) + 0.5))`.
pub(super) fn encode_q4_1(src: &[f32], block: &mut [u8]) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &x in src {
        if x < min {
            min = x;
        }
        if x > max {
            max = x;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    block[0..2].copy_from_slice(&f16_bytes(d));
    block[2..4].copy_from_slice(&f16_bytes(min));
    let quantize = |x: f32| nibble_of((x - min) * id + 0.5);
    for j in 0..16 {
        block[4 + j] = quantize(src[j]) | (quantize(src[j + 16]) << 4);
    }
}

/// Element `i`'s fifth bit, in place (0 or 16).
fn fifth_bit(high: u32, i: usize) -> i32 {
    (((high >> i) & 1) << 4) as i32
}

/// ggml's `MIN(15, (int8_t)v)`: C truncates toward zero. For finite blocks `v` lies in
/// [0, 16.5], where Rust's saturating `as` and C's conversion agree; for NaN or infinite
/// inputs C's conversion is undefined, and HCT takes Rust's saturation.
fn nibble_of(v: f32) -> u8 {
    (v as i8).min(15) as u8 & 0x0F
}

/// C's `MAX(a, b)` macro, `a > b ? a : b`, which is not `f32::max` when `b` is NaN.
fn c_max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_rounds_ties_away_from_zero() {
        let mut src = [0f32; 32];
        src[0] = 127.0; // d = 1, id = 1
        src[1] = 2.5;
        src[2] = -2.5;
        src[3] = 0.5;
        let mut block = [0u8; 34];
        encode_q8_0(&src, &mut block);
        assert_eq!(&block[0..2], &f16_bytes(1.0));
        assert_eq!(block[2] as i8, 127);
        assert_eq!(block[3] as i8, 3);
        assert_eq!(block[4] as i8, -3);
        assert_eq!(block[5] as i8, 1);
    }

    #[test]
    fn q4_0_positive_extreme_saturates_at_15() {
        let mut src = [0f32; 32];
        src[0] = 8.0; // d = -1: the extreme maps to trunc(-8 + 8.5) = 0, its negative to 16 → 15
        src[1] = -8.0;
        let mut block = [0u8; 18];
        encode_q4_0(&src, &mut block);
        assert_eq!(&block[0..2], &f16_bytes(-1.0));
        assert_eq!(block[2] & 0x0F, 0); // 8·-1 + 8.5 = 0.5 → 0
        assert_eq!(block[3] & 0x0F, 15);
        assert_eq!(block[4] & 0x0F, 8);
    }
}
