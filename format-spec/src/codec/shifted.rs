//! Non-uniform 4-bit grid with a per-block shift, in super-blocks of 64 (SPEC.md §7.7).
//!
//! `nl4_sh64_v1` stores each 64 elements as one binary16 super-scale `d`, two one-byte block
//! headers (a signed 7-bit sub-scale `s` and a shift bit `h` per 32 elements) and 32 bytes of
//! 4-bit codes: 36 bytes, 4.5 bits per weight, the size of ggml's IQ4_NL. Each block decodes
//! `(d·s)·(G[q] + 4h)` with `G` the IQ4_NL codebook: the shift bit lets a block pick the grid
//! or the grid moved by 4, which fits the block's values better about as often as not (on
//! SmolLM2's matrices it lowers the squared error about 7% at the same size).
//!
//! Why 64 and not ggml's 256: SmolLM2's rows are 576 wide and MiniLM's 384, which 256 does not
//! divide; 64 divides both and every common hidden size (4096, 11008, …), and two blocks are
//! enough to pay for the shared scale (one f16 per 64 instead of per 32 frees a byte per block
//! for the sub-scale and the shift bit).

use super::searched::search_block;
use super::{check_len, Codec, CodecError};
use half::f16;

/// Elements per super-block (one row is `row_len / 64` of them).
pub const SUPER: usize = 64;
/// Elements per block (one sub-scale and shift bit each).
pub const BLOCK: usize = 32;
/// Bytes per super-block: `d`, two headers, 32 bytes of codes.
pub const SUPER_BYTES: usize = 36;
/// What a set shift bit adds to every grid value.
pub const SHIFT: i16 = 4;
/// The sub-scale's range: a signed 7-bit integer.
pub const SUB_SCALE_MIN: i32 = -64;
pub const SUB_SCALE_MAX: i32 = 63;
/// Super-scale candidates: `d = fp16(M / (63 − t))` for `t` in `0..D_CANDIDATES`.
pub const D_CANDIDATES: i32 = 4;

const IQ4: [i16; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The two grids, indexed by the shift bit: `G` and `G + 4`, both ascending.
pub const GRIDS: [[i16; 16]; 2] = {
    let mut g = [IQ4, IQ4];
    let mut j = 0;
    while j < 16 {
        g[1][j] += SHIFT;
        j += 1;
    }
    g
};

/// The codec `nl4_sh64_v1`.
#[derive(Debug)]
pub struct ShiftedNl4;

pub static NL4_SH64_V1: ShiftedNl4 = ShiftedNl4;

const ID: &str = "nl4_sh64_v1";

/// Every codec of this family in this build.
pub fn all() -> Vec<&'static dyn Codec> {
    vec![&NL4_SH64_V1]
}

/// The geometry of `nl4_sh64_v1`, as a constant for libhct's layout table.
pub const fn block_layout() -> super::BlockLayout {
    super::BlockLayout {
        elements: SUPER as u32,
        bytes: SUPER_BYTES as u32,
        partial_last_block: false,
        same_bytes_as_ggml: None,
    }
}

/// A block header: the sub-scale in bits 1–7 (two's complement), the shift bit in bit 0.
pub fn header(s: i32, h: u8) -> u8 {
    (((s as i8) as u8) << 1) | (h & 1)
}

/// The sub-scale and shift bit of a block header.
pub fn split_header(byte: u8) -> (i32, usize) {
    (((byte as i8) >> 1) as i32, (byte & 1) as usize)
}

/// Decodes one super-block (36 bytes) into 64 floats.
pub fn decode_superblock(block: &[u8], out: &mut [f32]) {
    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
    for b in 0..2 {
        let (s, h) = split_header(block[2 + b]);
        // d·s is exact: an 11-bit significand times a 7-bit integer.
        let dl = d * s as f32;
        let grid = &GRIDS[h];
        let codes = &block[4 + 16 * b..20 + 16 * b];
        let o = &mut out[BLOCK * b..BLOCK * (b + 1)];
        for (j, &byte) in codes.iter().enumerate() {
            o[j] = dl * grid[(byte & 0x0F) as usize] as f32;
            o[j + 16] = dl * grid[(byte >> 4) as usize] as f32;
        }
    }
}

/// One block's choice: sub-scale, shift bit, codes, weighted error.
#[derive(Clone, Copy)]
struct BlockChoice {
    s: i32,
    h: u8,
    codes: [u8; BLOCK],
    err: f64,
}

impl ShiftedNl4 {
    /// Encode one row with optional per-column importance `c` (`None`: every column 1).
    pub fn encode_row_weighted(
        &self,
        src: &[f32],
        importance: Option<&[f32]>,
        dst: &mut [u8],
    ) -> Result<(), CodecError> {
        check_len(ID, self.row_bytes(src.len() as u64)?, dst.len())?;
        if let Some(c) = importance {
            if c.len() != src.len() {
                return Err(CodecError::OutOfRange {
                    codec: ID,
                    detail: format!(
                        "importance vector has {} values for a row of {}",
                        c.len(),
                        src.len()
                    ),
                });
            }
            if let Some(i) = c.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(CodecError::OutOfRange {
                    codec: ID,
                    detail: format!(
                        "importance value {} at column {i} is not finite and ≥ 0",
                        c[i]
                    ),
                });
            }
        }
        if let Some(i) = src.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::OutOfRange {
                codec: ID,
                detail: format!("element {i} of the row is {}", src[i]),
            });
        }
        for (sb, (x, out)) in src
            .chunks_exact(SUPER)
            .zip(dst.chunks_exact_mut(SUPER_BYTES))
            .enumerate()
        {
            let mut w = [0f64; SUPER];
            for (i, wi) in w.iter_mut().enumerate() {
                *wi = importance.map_or(1.0, |c| c[sb * SUPER + i] as f64);
            }
            encode_superblock(x, &w, out).map_err(|b| CodecError::OutOfRange {
                codec: ID,
                detail: format!(
                    "block {} (elements {}..{}): every candidate scale overflows binary16",
                    2 * sb + b,
                    sb * SUPER + b * BLOCK,
                    sb * SUPER + (b + 1) * BLOCK
                ),
            })?;
        }
        Ok(())
    }
}

/// The encoder of SPEC.md §7.7.3 for one super-block. `Err(b)`: block `b`'s scale search
/// found no binary16 scale (the row must be refused).
fn encode_superblock(x: &[f32], w: &[f64; SUPER], out: &mut [u8]) -> Result<(), usize> {
    let xs: [f64; SUPER] = std::array::from_fn(|i| x[i] as f64);
    // Step 1: each block's own best scale over both grids (§7.5.3's search).
    let mut sigma = [0f64; 2];
    for b in 0..2 {
        let xb = &x[BLOCK * b..BLOCK * (b + 1)];
        let wb: [f64; BLOCK] = std::array::from_fn(|i| w[BLOCK * b + i]);
        let xsb: [f64; BLOCK] = std::array::from_fn(|i| xs[BLOCK * b + i]);
        let mut best: Option<(f64, f64)> = None;
        for grid in &GRIDS {
            let (d, codes) = search_block(grid, xb, &wb).ok_or(b)?;
            let e = if d.to_f32() == 0.0 {
                zero_error(&xsb, &wb)
            } else {
                error(grid, d.to_f32(), &xsb, &wb, &codes)
            };
            if best.is_none_or(|(_, be)| e < be) {
                best = Some((d.to_f32() as f64, e));
            }
        }
        sigma[b] = best.map_or(0.0, |(s, _)| s);
    }
    out.fill(0);
    let m = sigma[0].abs().max(sigma[1].abs());
    if m == 0.0 {
        return Ok(());
    }
    // Step 2: the super-scale and each block's sub-scale and shift for it.
    let mut best: Option<(f64, f16, [BlockChoice; 2])> = None;
    for t in 0..D_CANDIDATES {
        let d = f16::from_f32((m / (SUB_SCALE_MAX - t) as f64) as f32);
        if !d.is_finite() || d.to_f32() == 0.0 {
            continue;
        }
        let choices: [BlockChoice; 2] = std::array::from_fn(|b| {
            let xsb: [f64; BLOCK] = std::array::from_fn(|i| xs[BLOCK * b + i]);
            let wb: [f64; BLOCK] = std::array::from_fn(|i| w[BLOCK * b + i]);
            choose_block(d.to_f32(), sigma[b], &xsb, &wb)
        });
        let total = choices[0].err + choices[1].err;
        if best.as_ref().is_none_or(|(be, _, _)| total < *be) {
            best = Some((total, d, choices));
        }
    }
    let Some((_, d, choices)) = best else {
        // M / 63 is below binary16's smallest subnormal: the super-block stays zero.
        return Ok(());
    };
    out[0..2].copy_from_slice(&d.to_le_bytes());
    for (b, c) in choices.iter().enumerate() {
        out[2 + b] = header(c.s, c.h);
        for j in 0..16 {
            out[4 + 16 * b + j] = c.codes[j] | (c.codes[j + 16] << 4);
        }
    }
    Ok(())
}

/// A block's sub-scale and shift for super-scale `d`: the zero block, then `s` in
/// `s0 − 1 ..= s0 + 1` (within the 7-bit range, not 0) ascending, each with `h` = 0 then 1;
/// strictly smaller errors win.
fn choose_block(d: f32, sigma: f64, xs: &[f64; BLOCK], w: &[f64; BLOCK]) -> BlockChoice {
    let mut best = BlockChoice {
        s: 0,
        h: 0,
        codes: [0; BLOCK],
        err: zero_error(xs, w),
    };
    let s0 = (sigma / d as f64)
        .round()
        .clamp(SUB_SCALE_MIN as f64, SUB_SCALE_MAX as f64) as i32;
    let mut codes = [0u8; BLOCK];
    for s in (s0 - 1)..=(s0 + 1) {
        if !(SUB_SCALE_MIN..=SUB_SCALE_MAX).contains(&s) || s == 0 {
            continue;
        }
        let dl = d * s as f32;
        for h in 0..2u8 {
            let grid = &GRIDS[h as usize];
            nearest_codes(grid, dl, xs, &mut codes);
            let e = error(grid, dl, xs, w, &codes);
            if e < best.err {
                best = BlockChoice {
                    s,
                    h,
                    codes,
                    err: e,
                };
            }
        }
    }
    best
}

/// `Σ w_i·x_i²`: the error of a block decoded as zeros.
fn zero_error(xs: &[f64; BLOCK], w: &[f64; BLOCK]) -> f64 {
    let mut e = 0.0f64;
    for i in 0..BLOCK {
        e += w[i] * (xs[i] * xs[i]);
    }
    e
}

/// Each element's nearest decoded value `dl·G[j]` (binary32), ties to the smaller value
/// (§7.5.2's rule with `dl` in place of the binary16 scale). `dl ≠ 0`.
fn nearest_codes(grid: &[i16; 16], dl: f32, xs: &[f64; BLOCK], codes: &mut [u8; BLOCK]) {
    let positive = dl > 0.0;
    let index = |p: usize| if positive { p } else { 15 - p };
    let value = |p: usize| (dl * grid[index(p)] as f32) as f64;
    let mut mids = [0f64; 15];
    for (p, m) in mids.iter_mut().enumerate() {
        *m = (value(p) + value(p + 1)) / 2.0;
    }
    for (code, &x) in codes.iter_mut().zip(xs) {
        *code = index(mids.partition_point(|&m| x > m)) as u8;
    }
}

/// `Σ w_i·(x_i − dl·G[q_i])²` in binary64, index order, from +0.
fn error(grid: &[i16; 16], dl: f32, xs: &[f64; BLOCK], w: &[f64; BLOCK], codes: &[u8]) -> f64 {
    let mut e = 0.0f64;
    for i in 0..BLOCK {
        let y = (dl * grid[codes[i] as usize] as f32) as f64;
        let diff = xs[i] - y;
        e += w[i] * (diff * diff);
    }
    e
}

impl Codec for ShiftedNl4 {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "non-uniform 4-bit grid, per-32 sub-scale and shift bit in super-blocks of 64 (4.5 bpw)"
    }

    fn block_layout(&self) -> Option<super::BlockLayout> {
        Some(block_layout())
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        if row_len % SUPER as u64 != 0 {
            return Err(CodecError::RowLength {
                codec: ID,
                row_len,
                reason: format!("rows must be whole super-blocks of {SUPER} elements"),
            });
        }
        (row_len / SUPER as u64)
            .checked_mul(SUPER_BYTES as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: ID,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(ID, self.row_bytes(dst.len() as u64)?, src.len())?;
        for (block, out) in src
            .chunks_exact(SUPER_BYTES)
            .zip(dst.chunks_exact_mut(SUPER))
        {
            decode_superblock(block, out);
        }
        Ok(())
    }

    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        self.encode_row_weighted(src, None, dst)
    }

    fn can_encode(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::find;
    use crate::codec::int4::sample::gaussian_like;

    fn sq_error(c: &dyn Codec, x: &[f32]) -> f64 {
        let mut bytes = vec![0u8; c.row_bytes(x.len() as u64).unwrap() as usize];
        c.encode_row(x, &mut bytes).unwrap();
        let mut y = vec![0f32; x.len()];
        c.decode_row(&bytes, &mut y).unwrap();
        x.iter()
            .zip(&y)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum()
    }

    #[test]
    fn same_size_as_iq4_nl_and_lower_error_than_its_searched_encoder() {
        let ours = find(ID).unwrap();
        let iq4 = find("iq4_nl_mse_v1").unwrap();
        assert_eq!(ours.row_bytes(576), iq4.row_bytes(576));
        let (mut a, mut b) = (0.0, 0.0);
        for seed in 0..20 {
            let x = gaussian_like(300 + seed, 576, 0.02);
            a += sq_error(ours, &x);
            b += sq_error(iq4, &x);
        }
        assert!(a < 0.97 * b, "{a} vs {b}");
    }

    #[test]
    fn headers_round_trip_every_sub_scale_and_shift() {
        for s in SUB_SCALE_MIN..=SUB_SCALE_MAX {
            for h in 0..2u8 {
                assert_eq!(split_header(header(s, h)), (s, h as usize));
            }
        }
        assert_eq!(header(0, 0), 0);
    }

    #[test]
    fn codes_are_nearest_for_the_stored_scales() {
        let x = gaussian_like(11, 256, 1.0);
        let mut bytes = vec![0u8; NL4_SH64_V1.row_bytes(256).unwrap() as usize];
        NL4_SH64_V1.encode_row(&x, &mut bytes).unwrap();
        let mut y = vec![0f32; 256];
        NL4_SH64_V1.decode_row(&bytes, &mut y).unwrap();
        for (i, &xi) in x.iter().enumerate() {
            let sb = &bytes[(i / SUPER) * SUPER_BYTES..];
            let d = f16::from_le_bytes([sb[0], sb[1]]).to_f32();
            let (s, h) = split_header(sb[2 + (i % SUPER) / BLOCK]);
            let dl = d * s as f32;
            let best = GRIDS[h]
                .iter()
                .map(|&g| (xi as f64 - (dl * g as f32) as f64).abs())
                .fold(f64::INFINITY, f64::min);
            assert_eq!((xi as f64 - y[i] as f64).abs(), best, "element {i}");
        }
    }

    #[test]
    fn refusals_name_the_element_or_block() {
        let mut bytes = vec![0u8; 2 * SUPER_BYTES];
        let mut x = vec![0.5f32; 128];
        x[70] = f32::NAN;
        let err = NL4_SH64_V1.encode_row(&x, &mut bytes).unwrap_err();
        assert!(err.to_string().contains("element 70"), "{err}");
        let mut x = vec![0.01f32; 128];
        x[100] = 1.0e9;
        let err = NL4_SH64_V1.encode_row(&x, &mut bytes).unwrap_err();
        assert!(
            err.to_string().contains("block 3 (elements 96..128)"),
            "{err}"
        );
        let err = NL4_SH64_V1
            .encode_row(&[0.0; 32], &mut bytes[..18])
            .unwrap_err();
        assert!(matches!(err, CodecError::RowLength { .. }), "{err}");
        let err = NL4_SH64_V1
            .encode_row_weighted(&[0.0; 64], Some(&[1.0; 63]), &mut bytes[..36])
            .unwrap_err();
        assert!(err.to_string().contains("63"), "{err}");
    }

    #[test]
    fn zero_rows_are_zero_bytes() {
        let mut bytes = vec![0xAAu8; SUPER_BYTES];
        NL4_SH64_V1.encode_row(&[0.0; 64], &mut bytes).unwrap();
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
