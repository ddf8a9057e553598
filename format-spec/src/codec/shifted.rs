//! Non-uniform grids with a per-block shift, in super-blocks of 64 (SPEC.md §7.7).
//!
//! Each 64 elements are one binary16 super-scale `d`, two one-byte block headers (a signed
//! 7-bit sub-scale `s` and a shift bit `h` per 32 elements) and each block's `k`-bit codes.
//! A block decodes `(d·s)·(G[q] + c·h)`: the shift bit lets a block pick the grid or the grid
//! moved by `c`, which fits the block's values better about as often as not.
//!
//! | id | code bits | bytes per 64 | bits per weight | grid |
//! |---|---|---|---|---|
//! | `nl4_sh64_v1` | 4 | 36 | 4.5 | IQ4_NL's codebook, shift 4 (lowers SmolLM2's squared error ~7%) |
//! | `nl5_sh64_v1` | 5 | 44 | 5.5 | 32 levels, shift 4 |
//! | `nl6_sh64_v1` | 6 | 52 | 6.5 | 64 levels, shift 2 |
//!
//! The 5- and 6-bit grids are a Lloyd–Max fit to block-normalized real weights (all-MiniLM-L6-v2,
//! blocks of 32 divided by their largest magnitude), scaled to integers and offset by a quarter
//! of a step so that `G`, `G + c`, `−G` and `−(G + c)` (a negative sub-scale mirrors the grid)
//! are four different interleavings. With unrounded scales they cut the squared error of a
//! uniform grid of the same width by about 28% (5 bits) and 24% (6 bits).
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
/// The sub-scale's range: a signed 7-bit integer.
pub const SUB_SCALE_MIN: i32 = -64;
pub const SUB_SCALE_MAX: i32 = 63;
/// Super-scale candidates: `d = fp16(M / (63 − t))` for `t` in `0..D_CANDIDATES`.
pub const D_CANDIDATES: i32 = 4;

const IQ4: [i16; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

const NL5: [i16; 32] = [
    -119, -102, -88, -77, -66, -57, -49, -42, -35, -29, -23, -18, -13, -9, -4, 0, 4, 8, 13, 17, 22,
    27, 33, 39, 46, 53, 61, 70, 81, 92, 106, 123,
];

const NL6: [i16; 64] = [
    -123, -112, -102, -94, -86, -79, -73, -67, -62, -58, -53, -49, -46, -42, -39, -36, -33, -31,
    -28, -26, -23, -21, -19, -16, -14, -12, -10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
    21, 23, 25, 28, 30, 33, 35, 38, 41, 44, 48, 51, 55, 60, 64, 69, 75, 81, 88, 96, 104, 114, 125,
];

/// One codec of the family: its id, code width and the two grids indexed by the shift bit
/// (`G` and `G + c`, both ascending, every value an i8). Only the first `2^bits` entries of
/// each grid are used.
#[derive(Debug)]
pub struct Shifted {
    id: &'static str,
    summary: &'static str,
    bits: u32,
    shift: i16,
    grids: [[i16; 64]; 2],
}

const fn family(
    id: &'static str,
    summary: &'static str,
    bits: u32,
    base: &[i16],
    shift: i16,
) -> Shifted {
    let mut grids = [[0i16; 64]; 2];
    let mut j = 0;
    while j < base.len() {
        grids[0][j] = base[j];
        grids[1][j] = base[j] + shift;
        j += 1;
    }
    Shifted {
        id,
        summary,
        bits,
        shift,
        grids,
    }
}

pub static NL4_SH64_V1: Shifted = family(
    "nl4_sh64_v1",
    "non-uniform 4-bit grid, per-32 sub-scale and shift bit in super-blocks of 64 (4.5 bpw)",
    4,
    &IQ4,
    4,
);
pub static NL5_SH64_V1: Shifted = family(
    "nl5_sh64_v1",
    "non-uniform 5-bit grid, per-32 sub-scale and shift bit in super-blocks of 64 (5.5 bpw)",
    5,
    &NL5,
    4,
);
pub static NL6_SH64_V1: Shifted = family(
    "nl6_sh64_v1",
    "non-uniform 6-bit grid, per-32 sub-scale and shift bit in super-blocks of 64 (6.5 bpw)",
    6,
    &NL6,
    2,
);

/// `nl4_sh64_v1`'s two grids (libhct's 4-bit kernels index them directly).
pub const GRIDS: [[i16; 16]; 2] = {
    let mut g = [IQ4, IQ4];
    let mut j = 0;
    while j < 16 {
        g[1][j] += 4;
        j += 1;
    }
    g
};
/// `nl4_sh64_v1`'s bytes per super-block.
pub const SUPER_BYTES: usize = 36;

/// Every codec of this family in this build.
pub fn all() -> Vec<&'static dyn Codec> {
    vec![&NL4_SH64_V1, &NL5_SH64_V1, &NL6_SH64_V1]
}

/// The family member with this id.
pub fn find_shifted(id: &str) -> Option<&'static Shifted> {
    [&NL4_SH64_V1, &NL5_SH64_V1, &NL6_SH64_V1]
        .into_iter()
        .find(|c| c.id == id)
}

/// The geometry of `nl4_sh64_v1`, as a constant for libhct's layout table.
pub const fn block_layout() -> super::BlockLayout {
    NL4_SH64_V1.layout()
}

/// A block header: the sub-scale in bits 1–7 (two's complement), the shift bit in bit 0.
pub fn header(s: i32, h: u8) -> u8 {
    (((s as i8) as u8) << 1) | (h & 1)
}

/// The sub-scale and shift bit of a block header.
pub fn split_header(byte: u8) -> (i32, usize) {
    (((byte as i8) >> 1) as i32, (byte & 1) as usize)
}

/// Decodes one `nl4_sh64_v1` super-block (36 bytes) into 64 floats.
pub fn decode_superblock(block: &[u8], out: &mut [f32]) {
    NL4_SH64_V1.decode_superblock(block, out)
}

/// One block's choice: sub-scale, shift bit, codes, weighted error.
#[derive(Clone, Copy)]
struct BlockChoice {
    s: i32,
    h: u8,
    codes: [u8; BLOCK],
    err: f64,
}

impl Shifted {
    /// Bits per code.
    pub const fn bits(&self) -> u32 {
        self.bits
    }

    /// What a set shift bit adds to every grid value.
    pub const fn shift(&self) -> i16 {
        self.shift
    }

    /// Grid `h` (0: `G`, 1: `G + c`), ascending, `2^bits` values.
    pub fn grid(&self, h: usize) -> &[i16] {
        &self.grids[h][..1 << self.bits]
    }

    /// Bytes of one block's codes: 16 bytes of low nibbles, then the high bits.
    pub const fn block_bytes(&self) -> usize {
        16 + 4 * (self.bits as usize - 4)
    }

    /// Bytes per super-block: `d`, two headers, both blocks' codes.
    pub const fn super_bytes(&self) -> usize {
        4 + 2 * self.block_bytes()
    }

    /// The geometry, as a constant for libhct's layout table.
    pub const fn layout(&self) -> super::BlockLayout {
        super::BlockLayout {
            elements: SUPER as u32,
            bytes: self.super_bytes() as u32,
            partial_last_block: false,
            same_bytes_as_ggml: None,
        }
    }

    /// Code `i` of a block's code bytes (SPEC.md §7.7.1): low four bits from the nibbles
    /// (`j` low, `j + 16` high), bit 4 from a little-endian u32 (5 bits) or bits 4–5 from
    /// byte `16 + i % 8` at bit `2·(i / 8)` (6 bits).
    pub fn code(&self, codes: &[u8], i: usize) -> u8 {
        let low = if i < 16 {
            codes[i] & 0x0F
        } else {
            codes[i - 16] >> 4
        };
        match self.bits {
            4 => low,
            5 => low | (((codes[16 + i / 8] >> (i % 8)) & 1) << 4),
            _ => low | (((codes[16 + i % 8] >> (2 * (i / 8))) & 3) << 4),
        }
    }

    fn pack_codes(&self, codes: &[u8; BLOCK], out: &mut [u8]) {
        for j in 0..16 {
            out[j] = (codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4);
        }
        match self.bits {
            4 => {}
            5 => {
                for (i, &q) in codes.iter().enumerate() {
                    out[16 + i / 8] |= ((q >> 4) & 1) << (i % 8);
                }
            }
            _ => {
                for (i, &q) in codes.iter().enumerate() {
                    out[16 + i % 8] |= ((q >> 4) & 3) << (2 * (i / 8));
                }
            }
        }
    }

    /// Decodes one super-block into 64 floats.
    pub fn decode_superblock(&self, block: &[u8], out: &mut [f32]) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let bb = self.block_bytes();
        for b in 0..2 {
            let (s, h) = split_header(block[2 + b]);
            // d·s is exact: an 11-bit significand times a 7-bit integer.
            let dl = d * s as f32;
            let grid = self.grid(h);
            let codes = &block[4 + bb * b..4 + bb * (b + 1)];
            for (i, o) in out[BLOCK * b..BLOCK * (b + 1)].iter_mut().enumerate() {
                *o = dl * grid[self.code(codes, i) as usize] as f32;
            }
        }
    }

    /// Encode one row with optional per-column importance `c` (`None`: every column 1).
    pub fn encode_row_weighted(
        &self,
        src: &[f32],
        importance: Option<&[f32]>,
        dst: &mut [u8],
    ) -> Result<(), CodecError> {
        let id = self.id;
        check_len(id, self.row_bytes(src.len() as u64)?, dst.len())?;
        if let Some(c) = importance {
            if c.len() != src.len() {
                return Err(CodecError::OutOfRange {
                    codec: id,
                    detail: format!(
                        "importance vector has {} values for a row of {}",
                        c.len(),
                        src.len()
                    ),
                });
            }
            if let Some(i) = c.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(CodecError::OutOfRange {
                    codec: id,
                    detail: format!(
                        "importance value {} at column {i} is not finite and ≥ 0",
                        c[i]
                    ),
                });
            }
        }
        if let Some(i) = src.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::OutOfRange {
                codec: id,
                detail: format!("element {i} of the row is {}", src[i]),
            });
        }
        for (sb, (x, out)) in src
            .chunks_exact(SUPER)
            .zip(dst.chunks_exact_mut(self.super_bytes()))
            .enumerate()
        {
            let mut w = [0f64; SUPER];
            for (i, wi) in w.iter_mut().enumerate() {
                *wi = importance.map_or(1.0, |c| c[sb * SUPER + i] as f64);
            }
            self.encode_superblock(x, &w, out)
                .map_err(|b| CodecError::OutOfRange {
                    codec: id,
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

    /// The encoder of SPEC.md §7.7.3 for one super-block. `Err(b)`: block `b`'s scale search
    /// found no binary16 scale (the row must be refused).
    fn encode_superblock(&self, x: &[f32], w: &[f64; SUPER], out: &mut [u8]) -> Result<(), usize> {
        let xs: [f64; SUPER] = std::array::from_fn(|i| x[i] as f64);
        // Step 1: each block's own best scale over both grids (§7.5.3's search).
        let mut sigma = [0f64; 2];
        for b in 0..2 {
            let xb = &x[BLOCK * b..BLOCK * (b + 1)];
            let wb: [f64; BLOCK] = std::array::from_fn(|i| w[BLOCK * b + i]);
            let xsb: [f64; BLOCK] = std::array::from_fn(|i| xs[BLOCK * b + i]);
            let mut best: Option<(f64, f64)> = None;
            for h in 0..2 {
                let grid = self.grid(h);
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
                self.choose_block(d.to_f32(), sigma[b], &xsb, &wb)
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
        let bb = self.block_bytes();
        for (b, c) in choices.iter().enumerate() {
            out[2 + b] = header(c.s, c.h);
            self.pack_codes(&c.codes, &mut out[4 + bb * b..4 + bb * (b + 1)]);
        }
        Ok(())
    }

    /// A block's sub-scale and shift for super-scale `d`: the zero block, then `s` in
    /// `s0 − 1 ..= s0 + 1` (within the 7-bit range, not 0) ascending, each with `h` = 0 then 1;
    /// strictly smaller errors win.
    fn choose_block(&self, d: f32, sigma: f64, xs: &[f64; BLOCK], w: &[f64; BLOCK]) -> BlockChoice {
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
                let grid = self.grid(h as usize);
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
fn nearest_codes(grid: &[i16], dl: f32, xs: &[f64; BLOCK], codes: &mut [u8; BLOCK]) {
    let n = grid.len();
    let positive = dl > 0.0;
    let index = |p: usize| if positive { p } else { n - 1 - p };
    let value = |p: usize| (dl * grid[index(p)] as f32) as f64;
    let mut mids = [0f64; 63];
    for (p, m) in mids.iter_mut().enumerate().take(n - 1) {
        *m = (value(p) + value(p + 1)) / 2.0;
    }
    let mids = &mids[..n - 1];
    for (code, &x) in codes.iter_mut().zip(xs) {
        *code = index(mids.partition_point(|&m| x > m)) as u8;
    }
}

/// `Σ w_i·(x_i − dl·G[q_i])²` in binary64, index order, from +0.
fn error(grid: &[i16], dl: f32, xs: &[f64; BLOCK], w: &[f64; BLOCK], codes: &[u8]) -> f64 {
    let mut e = 0.0f64;
    for i in 0..BLOCK {
        let y = (dl * grid[codes[i] as usize] as f32) as f64;
        let diff = xs[i] - y;
        e += w[i] * (diff * diff);
    }
    e
}

impl Codec for Shifted {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn block_layout(&self) -> Option<super::BlockLayout> {
        Some(self.layout())
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        if row_len % SUPER as u64 != 0 {
            return Err(CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: format!("rows must be whole super-blocks of {SUPER} elements"),
            });
        }
        (row_len / SUPER as u64)
            .checked_mul(self.super_bytes() as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        for (block, out) in src
            .chunks_exact(self.super_bytes())
            .zip(dst.chunks_exact_mut(SUPER))
        {
            self.decode_superblock(block, out);
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
        let ours = find("nl4_sh64_v1").unwrap();
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
    fn nl5_and_nl6_beat_the_uniform_layout_of_their_size() {
        // nl5 against searched Q5_0 (5.5 bpw); nl6 (6.5 bpw) must sit between Q5_0 and Q8_0.
        let (nl5, nl6) = (find("nl5_sh64_v1").unwrap(), find("nl6_sh64_v1").unwrap());
        let (q5, q8) = (find("q5_0_mse_v1").unwrap(), find("q8_0_mse_v1").unwrap());
        assert_eq!(nl5.row_bytes(576), q5.row_bytes(576));
        assert_eq!(nl6.row_bytes(576).unwrap(), 576 / 64 * 52);
        let (mut a5, mut b5, mut a6, mut b8) = (0.0, 0.0, 0.0, 0.0);
        for seed in 0..10 {
            let x = gaussian_like(700 + seed, 576, 0.02);
            a5 += sq_error(nl5, &x);
            b5 += sq_error(q5, &x);
            a6 += sq_error(nl6, &x);
            b8 += sq_error(q8, &x);
        }
        assert!(a5 < 0.85 * b5, "nl5 {a5} vs q5_0 {b5}");
        assert!(a6 < 0.4 * a5 && a6 > b8, "nl6 {a6}, nl5 {a5}, q8_0 {b8}");
    }

    #[test]
    fn codes_of_every_width_round_trip_through_the_packing() {
        for c in [&NL4_SH64_V1, &NL5_SH64_V1, &NL6_SH64_V1] {
            let n = 1u32 << c.bits();
            let codes: [u8; BLOCK] = std::array::from_fn(|i| ((i as u32 * 7 + 3) % n) as u8);
            let mut out = vec![0u8; c.block_bytes()];
            c.pack_codes(&codes, &mut out);
            for (i, &q) in codes.iter().enumerate() {
                assert_eq!(c.code(&out, i), q, "{} code {i}", c.id);
            }
            assert_eq!(c.grid(1)[0] - c.grid(0)[0], c.shift());
            assert!(c.grid(0).windows(2).all(|w| w[0] < w[1]));
            assert!(c.grid(1).iter().all(|&g| (-127..=127).contains(&g)));
        }
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
