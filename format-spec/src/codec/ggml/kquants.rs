//! ggml's k-quants: 256-element super-blocks split into 16- or 32-element sub-blocks whose
//! scales (and mins) are themselves quantized against one or two binary16 super-scales.
//!
//! | type | bytes | layout (offsets) |
//! |------|-------|------------------|
//! | Q2_K | 84  | 16 scale bytes (low nibble scale, high nibble min) @0, 64 × four 2-bit fields @16, `d` @80, `dmin` @82 |
//! | Q3_K | 110 | 32 high-bit mask bytes @0, 64 × four 2-bit fields @32, 12 bytes of sixteen 6-bit scales @96, `d` @108 |
//! | Q4_K | 144 | `d` @0, `dmin` @2, 12 bytes of eight 6-bit scales and mins @4, 128 nibble bytes @16 |
//! | Q5_K | 176 | `d` @0, `dmin` @2, scales/mins @4, 32 high-bit bytes @16, 128 nibble bytes @48 |
//! | Q6_K | 210 | 128 low-nibble bytes @0, 64 × four 2-bit high fields @128, 16 × i8 scales @192, `d` @208 |
//! | Q8_K | 292 | f32 `d` @0, 256 × i8 @4, 16 × i16 group sums @260 (not needed to decode) |
//!
//! Sub-block arithmetic follows ggml's reference order: the sub-block scale `d·sc` (and
//! min `dmin·m`) first, then `(d·sc)·q`, then `- dmin·m`, each a separate f32 operation.

use super::f16_at;

pub(super) fn decode_q2_k(block: &[u8], out: &mut [f32]) {
    let scales = &block[0..16];
    let d = f16_at(block, 80);
    let dmin = f16_at(block, 82);
    // Two halves of 128; each reads 32 quant bytes four times, two bits deeper each pass,
    // and each pass covers two 16-element sub-blocks (bytes 0..16 then 16..32).
    for half in 0..2 {
        let qs = &block[16 + 32 * half..16 + 32 * (half + 1)];
        for pass in 0..4 {
            let shift = 2 * pass;
            for sub in 0..2 {
                let index = 8 * half + 2 * pass + sub;
                let sc = scales[index];
                let dl = d * (sc & 0x0F) as f32;
                let ml = dmin * (sc >> 4) as f32;
                let y = &mut out[16 * index..16 * (index + 1)];
                for (l, y) in y.iter_mut().enumerate() {
                    let q = (qs[16 * sub + l] >> shift) & 3;
                    *y = dl * q as f32 - ml;
                }
            }
        }
    }
}

pub(super) fn decode_q3_k(block: &[u8], out: &mut [f32]) {
    let hmask = &block[0..32];
    let scale_bytes = &block[96..108];
    let d = f16_at(block, 108);
    // The mask bit for element `l` of pass `p` (over both halves) is bit `p` of hmask[l],
    // where a clear bit subtracts 4 from the 2-bit value.
    for half in 0..2 {
        let qs = &block[32 + 32 * half..32 + 32 * (half + 1)];
        for pass in 0..4 {
            let shift = 2 * pass;
            let mask_bit = 1u8 << (4 * half + pass);
            for sub in 0..2 {
                let index = 8 * half + 2 * pass + sub;
                let dl = d * (q3_k_scale(scale_bytes, index) - 32) as f32;
                let y = &mut out[16 * index..16 * (index + 1)];
                for (l, y) in y.iter_mut().enumerate() {
                    let low = ((qs[16 * sub + l] >> shift) & 3) as i32;
                    let high = if hmask[16 * sub + l] & mask_bit != 0 {
                        0
                    } else {
                        4
                    };
                    *y = dl * (low - high) as f32;
                }
            }
        }
    }
}

pub(super) fn decode_q4_k(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let scales = &block[4..16];
    for chunk in 0..4 {
        let qs = &block[16 + 32 * chunk..16 + 32 * (chunk + 1)];
        let (sc0, m0) = k4_scale_min(scales, 2 * chunk);
        let (sc1, m1) = k4_scale_min(scales, 2 * chunk + 1);
        let (d0, min0) = (d * sc0 as f32, dmin * m0 as f32);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let y = &mut out[64 * chunk..64 * (chunk + 1)];
        for (l, &byte) in qs.iter().enumerate() {
            y[l] = d0 * (byte & 0x0F) as f32 - min0;
            y[l + 32] = d1 * (byte >> 4) as f32 - min1;
        }
    }
}

pub(super) fn decode_q5_k(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let dmin = f16_at(block, 2);
    let scales = &block[4..16];
    let qh = &block[16..48];
    for chunk in 0..4 {
        let qs = &block[48 + 32 * chunk..48 + 32 * (chunk + 1)];
        let (sc0, m0) = k4_scale_min(scales, 2 * chunk);
        let (sc1, m1) = k4_scale_min(scales, 2 * chunk + 1);
        let (d0, min0) = (d * sc0 as f32, dmin * m0 as f32);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (bit0, bit1) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        let y = &mut out[64 * chunk..64 * (chunk + 1)];
        for (l, &byte) in qs.iter().enumerate() {
            let q0 = (byte & 0x0F) + if qh[l] & bit0 != 0 { 16 } else { 0 };
            let q1 = (byte >> 4) + if qh[l] & bit1 != 0 { 16 } else { 0 };
            y[l] = d0 * q0 as f32 - min0;
            y[l + 32] = d1 * q1 as f32 - min1;
        }
    }
}

pub(super) fn decode_q6_k(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 208);
    for half in 0..2 {
        let ql = &block[64 * half..64 * (half + 1)];
        let qh = &block[128 + 32 * half..128 + 32 * (half + 1)];
        let scales = &block[192 + 8 * half..192 + 8 * (half + 1)];
        let y = &mut out[128 * half..128 * (half + 1)];
        for l in 0..32 {
            let sub = l / 16;
            let q = [
                (ql[l] & 0x0F) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (quarter, &q) in q.iter().enumerate() {
                let sc = scales[sub + 2 * quarter] as i8;
                y[l + 32 * quarter] = d * sc as f32 * (q as i32 - 32) as f32;
            }
        }
    }
}

pub(super) fn decode_q8_k(block: &[u8], out: &mut [f32]) {
    let d = f32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    for (y, &q) in out.iter_mut().zip(&block[4..260]) {
        *y = d * q as i8 as f32;
    }
}

/// Q3_K's sixteen 6-bit scales: the low four bits of scale `s` are nibble `s / 8` of byte
/// `s % 8`; its high two bits are field `s / 4` of byte `8 + s % 4`.
fn q3_k_scale(bytes: &[u8], s: usize) -> i32 {
    let low = (bytes[s % 8] >> (4 * (s / 8))) & 0x0F;
    let high = (bytes[8 + s % 4] >> (2 * (s / 4))) & 3;
    (low | (high << 4)) as i32
}

/// Q4_K/Q5_K's eight 6-bit (scale, min) pairs in 12 bytes: pairs 0–3 are the low six bits
/// of bytes 0–3 (scales) and 4–7 (mins); pairs 4–7 take their low four bits from the
/// nibbles of bytes 8–11 and their high two bits from the top bits of bytes 0–7.
fn k4_scale_min(bytes: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (bytes[j] & 63, bytes[j + 4] & 63)
    } else {
        (
            (bytes[j + 4] & 0x0F) | ((bytes[j - 4] >> 6) << 4),
            (bytes[j + 4] >> 4) | ((bytes[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q3_k_scale_unpacking_reaches_every_bit_once() {
        // Setting one bit of the 12 scale bytes must change exactly one scale.
        for bit in 0..96 {
            let mut bytes = [0u8; 12];
            bytes[bit / 8] = 1 << (bit % 8);
            let changed = (0..16).filter(|&s| q3_k_scale(&bytes, s) != 0).count();
            assert_eq!(changed, 1, "bit {bit}");
        }
    }

    #[test]
    fn k4_scale_min_unpacking_reaches_every_bit_once() {
        for bit in 0..96 {
            let mut bytes = [0u8; 12];
            bytes[bit / 8] = 1 << (bit % 8);
            let changed: usize = (0..8)
                .map(|j| {
                    let (s, m) = k4_scale_min(&bytes, j);
                    (s != 0) as usize + (m != 0) as usize
                })
                .sum();
            assert_eq!(changed, 1, "bit {bit}");
        }
    }
}
