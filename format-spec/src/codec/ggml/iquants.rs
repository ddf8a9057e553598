//! ggml's non-uniform 4-bit types: IQ4_NL (32 elements, 18 bytes: `d`, 16 nibble bytes)
//! and IQ4_XS (256 elements, 136 bytes: `d` @0, u16 of eight 2-bit scale high parts @2,
//! 4 bytes of eight scale low nibbles @4, 128 nibble bytes @8).
//!
//! Each nibble indexes the same fixed 16-entry codebook; within a 32-element group byte
//! `j` holds element `j` low and element `j + 16` high. IQ4_XS's 6-bit group scales are
//! offset by 32: the group scale is `d·(ls - 32)`, computed before multiplying the code.

use super::f16_at;

/// The IQ4_NL/IQ4_XS codebook: a fixed non-uniform grid, ascending, denser near zero.
pub const IQ4_CODEBOOK: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

pub(super) fn decode_iq4_nl(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    decode_group(d, &block[2..18], out);
}

pub(super) fn decode_iq4_xs(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let scales_high = u16::from_le_bytes([block[2], block[3]]);
    let scales_low = &block[4..8];
    for group in 0..8 {
        let low = (scales_low[group / 2] >> (4 * (group % 2))) & 0x0F;
        let high = ((scales_high >> (2 * group)) & 3) as u8;
        let ls = (low | (high << 4)) as i32;
        let dl = d * (ls - 32) as f32;
        let qs = &block[8 + 16 * group..8 + 16 * (group + 1)];
        decode_group(dl, qs, &mut out[32 * group..32 * (group + 1)]);
    }
}

/// 32 elements from 16 nibble bytes, each `scale · codebook[nibble]`.
fn decode_group(scale: f32, qs: &[u8], out: &mut [f32]) {
    for (j, &byte) in qs.iter().enumerate() {
        out[j] = scale * IQ4_CODEBOOK[(byte & 0x0F) as usize] as f32;
        out[j + 16] = scale * IQ4_CODEBOOK[(byte >> 4) as usize] as f32;
    }
}
