//! Searched-scale encoders that write ggml's own block bytes (SPEC.md §7.5).
//!
//! `iq4_nl_mse_v1`, `iq4_nl_x2_v1`, `q4_0_mse_v1`, `q5_0_mse_v1` and `q8_0_mse_v1` store
//! exactly the bytes of ggml's IQ4_NL, Q4_0, Q5_0 and Q8_0 blocks (32 elements, one binary16
//! scale `d`, each element decoded as `d·G[code]` for a fixed integer grid `G`), so stock
//! llama.cpp runs them and a native GGUF export copies them unchanged. What the ids pin is
//! the encoder: instead of deriving `d` from the block's largest element as ggml's
//! reference quantizers do, each block tries 34 starting scales around that value, refits
//! each by weighted least squares, and keeps the binary16 scale whose *decoded* block has
//! the smallest weighted squared error. Codes are always the nearest grid point for the
//! binary16 scale the decoder will see.
//!
//! Decoding is the layout's: these codecs hand rows to the ggml codec of the same layout,
//! whose decoders are checked bit for bit against ggml.

use super::{check_len, find, Codec, CodecError};
use half::f16;

/// Elements per block: every layout here has one scale per 32 elements.
pub const BLOCK: usize = 32;

/// The IQ4_NL codebook (ggml's `kvalues_iq4nl`), ascending.
const IQ4_NL_GRID: [i16; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Scale candidates per base: `t = -CANDIDATE_SPREAD ..= CANDIDATE_SPREAD`.
pub const CANDIDATE_SPREAD: i32 = 8;

/// How the squared error of each element is weighted in the scale search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighting {
    /// `w_i = c_i`: plain squared error, or with an importance matrix its column weight.
    Mse,
    /// `w_i = c_i·x_i²`: large weights count more (ggml's choice without an imatrix).
    XSquared,
}

/// How a block's codes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    /// `d`, then 16 bytes: byte `j` holds code `j` low and code `j + 16` high (IQ4_NL, Q4_0).
    Nibbles,
    /// `d`, u32 of fifth bits (bit `i` is code `i`'s bit 4), then nibbles as above (Q5_0).
    Nibbles5,
    /// `d`, then 32 bytes: the signed grid value itself, as i8 (Q8_0).
    Bytes,
}

/// One searched-scale codec over one ggml layout.
#[derive(Debug)]
pub struct SearchedCodec {
    id: &'static str,
    summary: &'static str,
    /// The ggml codec whose bytes this encoder writes and whose decoder reads them.
    layout: &'static str,
    /// `G`, ascending; the stored code of grid entry `j` is `j` (or, for `Bytes`, `G[j]`).
    grid: &'static [i16],
    packing: Packing,
    weighting: Weighting,
}

const Q4_0_GRID: [i16; 16] = grid_from::<16>(-8);
const Q5_0_GRID: [i16; 32] = grid_from::<32>(-16);
const Q8_0_GRID: [i16; 256] = grid_from::<256>(-128);

const fn grid_from<const N: usize>(first: i16) -> [i16; N] {
    let mut g = [0i16; N];
    let mut i = 0;
    while i < N {
        g[i] = first + i as i16;
        i += 1;
    }
    g
}

static CODECS: [SearchedCodec; 5] = [
    SearchedCodec {
        id: "iq4_nl_mse_v1",
        summary: "ggml IQ4_NL bytes; scale searched for least squared error (4.5 bpw)",
        layout: "ggml_iq4_nl",
        grid: &IQ4_NL_GRID,
        packing: Packing::Nibbles,
        weighting: Weighting::Mse,
    },
    SearchedCodec {
        id: "iq4_nl_x2_v1",
        summary: "ggml IQ4_NL bytes; scale searched for least x²-weighted squared error (4.5 bpw)",
        layout: "ggml_iq4_nl",
        grid: &IQ4_NL_GRID,
        packing: Packing::Nibbles,
        weighting: Weighting::XSquared,
    },
    SearchedCodec {
        id: "q4_0_mse_v1",
        summary: "ggml Q4_0 bytes; scale searched for least squared error (4.5 bpw)",
        layout: "ggml_q4_0",
        grid: &Q4_0_GRID,
        packing: Packing::Nibbles,
        weighting: Weighting::Mse,
    },
    SearchedCodec {
        id: "q5_0_mse_v1",
        summary: "ggml Q5_0 bytes; scale searched for least squared error (5.5 bpw)",
        layout: "ggml_q5_0",
        grid: &Q5_0_GRID,
        packing: Packing::Nibbles5,
        weighting: Weighting::Mse,
    },
    SearchedCodec {
        id: "q8_0_mse_v1",
        summary: "ggml Q8_0 bytes; scale searched for least squared error (8.5 bpw)",
        layout: "ggml_q8_0",
        grid: &Q8_0_GRID,
        packing: Packing::Bytes,
        weighting: Weighting::Mse,
    },
];

/// Every searched-scale codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// The searched-scale codec with this id.
pub fn find_searched(id: &str) -> Option<&'static SearchedCodec> {
    CODECS.iter().find(|c| c.id == id)
}

impl SearchedCodec {
    pub fn weighting(&self) -> Weighting {
        self.weighting
    }

    pub fn layout(&self) -> &'static str {
        self.layout
    }

    fn layout_codec(&self) -> &'static dyn Codec {
        find(self.layout).expect("searched codecs name registered ggml layouts")
    }

    fn block_bytes(&self) -> usize {
        match self.packing {
            Packing::Nibbles => 18,
            Packing::Nibbles5 => 22,
            Packing::Bytes => 34,
        }
    }

    /// Encode one row with optional per-column importance `c` (an imatrix row of
    /// `src.len()` non-negative values); `None` means `c_i = 1`.
    pub fn encode_row_weighted(
        &self,
        src: &[f32],
        importance: Option<&[f32]>,
        dst: &mut [u8],
    ) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        if let Some(c) = importance {
            if c.len() != src.len() {
                return Err(CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!(
                        "importance vector has {} values for a row of {}",
                        c.len(),
                        src.len()
                    ),
                });
            }
            if let Some(i) = c.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!(
                        "importance value {} at column {i} is not finite and ≥ 0",
                        c[i]
                    ),
                });
            }
        }
        let bb = self.block_bytes();
        for (b, (x, block)) in src
            .chunks_exact(BLOCK)
            .zip(dst.chunks_exact_mut(bb))
            .enumerate()
        {
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!("element {} of the row is {}", b * BLOCK + i, x[i]),
                });
            }
            let c = importance.map(|c| &c[b * BLOCK..(b + 1) * BLOCK]);
            let mut w = [0f64; BLOCK];
            for i in 0..BLOCK {
                let ci = c.map_or(1.0, |c| c[i] as f64);
                let xi = x[i] as f64;
                w[i] = match self.weighting {
                    Weighting::Mse => ci,
                    Weighting::XSquared => ci * (xi * xi),
                };
            }
            let (d, codes) =
                search_block(self.grid, x, &w).ok_or_else(|| CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!(
                        "block {b} (elements {}..{}): every candidate scale overflows binary16",
                        b * BLOCK,
                        (b + 1) * BLOCK
                    ),
                })?;
            self.pack(d, &codes, block);
        }
        Ok(())
    }

    fn pack(&self, d: f16, codes: &[u8; BLOCK], block: &mut [u8]) {
        block[0..2].copy_from_slice(&d.to_le_bytes());
        match self.packing {
            Packing::Nibbles => {
                for j in 0..16 {
                    block[2 + j] = codes[j] | (codes[j + 16] << 4);
                }
            }
            Packing::Nibbles5 => {
                let mut high = 0u32;
                for (i, &q) in codes.iter().enumerate() {
                    high |= ((q >> 4) as u32 & 1) << i;
                }
                block[2..6].copy_from_slice(&high.to_le_bytes());
                for j in 0..16 {
                    block[6 + j] = (codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4);
                }
            }
            Packing::Bytes => {
                for j in 0..BLOCK {
                    block[2 + j] = self.grid[codes[j] as usize] as i8 as u8;
                }
            }
        }
    }
}

/// The scale search of SPEC.md §7.5.3 for one block: returns `d` and each element's grid
/// index, or `None` when every starting scale overflows binary16 (the block cannot be
/// stored). `x` is finite; `w` are the element weights (binary64, ≥ 0).
pub fn search_block(grid: &[i16], x: &[f32], w: &[f64; BLOCK]) -> Option<(f16, [u8; BLOCK])> {
    search_block_n(grid, x, w)
}

/// §7.5.3's search for a block of `N` elements (32 for §7.5's layouts, 16 for Q6_K's
/// sub-blocks, SPEC.md §7.5.5): the same steps, sums over the block's `N` elements.
pub fn search_block_n<const N: usize>(
    grid: &[i16],
    x: &[f32],
    w: &[f64; N],
) -> Option<(f16, [u8; N])> {
    let xs: [f64; N] = std::array::from_fn(|i| x[i] as f64);
    // The zero block: d = +0, every stored byte 0; it decodes to ±0.
    let mut best_d = f16::ZERO;
    let mut best_codes = [zero_code(grid); N];
    let mut best_err = 0.0f64;
    for i in 0..N {
        best_err += w[i] * (xs[i] * xs[i]);
    }
    // The element of largest magnitude, the first one on a tie.
    let mut k = 0;
    for i in 1..N {
        if x[i].abs() > x[k].abs() {
            k = i;
        }
    }
    let m = xs[k];
    if m == 0.0 {
        return Some((best_d, best_codes));
    }
    let mut any_finite = false;
    let bases = [grid[0] as f64, grid[grid.len() - 1] as f64];
    let mut codes = [0u8; N];
    let mut consider = |d: f16, codes: &mut [u8; N]| -> Option<f64> {
        if !d.is_finite() || d.to_f32() == 0.0 {
            return None;
        }
        nearest_codes(grid, d, &xs, codes);
        let e = weighted_error(grid, d, &xs, w, codes);
        if e < best_err {
            best_err = e;
            best_d = d;
            best_codes = *codes;
        }
        Some(e)
    };
    for t in -CANDIDATE_SPREAD..=CANDIDATE_SPREAD {
        for base in bases {
            let f = base * (32 + t) as f64 / 32.0;
            let d = to_f16(m / f);
            any_finite |= d.is_finite();
            if consider(d, &mut codes).is_none() {
                continue;
            }
            // Weighted least-squares scale for these codes.
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for i in 0..N {
                let g = grid[codes[i] as usize] as f64;
                num += w[i] * xs[i] * g;
                den += w[i] * (g * g);
            }
            if den > 0.0 {
                let refit = to_f16(num / den);
                consider(refit, &mut codes);
            }
        }
    }
    any_finite.then_some((best_d, best_codes))
}

/// binary64 → binary32 → binary16, each to nearest, ties to even (a double rounding, as
/// specified).
fn to_f16(v: f64) -> f16 {
    f16::from_f32(v as f32)
}

/// The grid index stored as an all-zero byte: index 0 for the nibble layouts, the index of
/// grid value 0 for Q8_0 (whose bytes are the values themselves).
fn zero_code(grid: &[i16]) -> u8 {
    if grid.len() == 256 {
        128
    } else {
        0
    }
}

/// Each element's nearest decoded value `d·G[j]` (binary32, exact), ties to the smaller
/// value: with the decoded values sorted ascending and `mid_p` the binary64 midpoint of
/// sorted neighbours `p` and `p+1`, the sorted position is `#{p : x > mid_p}`.
fn nearest_codes<const N: usize>(grid: &[i16], d: f16, xs: &[f64; N], codes: &mut [u8; N]) {
    nearest_codes_for(grid, d.to_f32(), xs, codes)
}

/// §7.5.2's rule for a binary32 block scale `df ≠ 0` whose products `df·G[j]` are exact (a
/// binary16 scale, or one times a small integer sub-scale as in §7.5.5).
pub(super) fn nearest_codes_for<const N: usize>(
    grid: &[i16],
    df: f32,
    xs: &[f64; N],
    codes: &mut [u8; N],
) {
    let n = grid.len();
    let positive = df > 0.0;
    // Sorted position p holds grid index p when d > 0, n-1-p when d < 0.
    let index = |p: usize| if positive { p } else { n - 1 - p };
    let value = |p: usize| (df * grid[index(p)] as f32) as f64;
    let mid = |p: usize| (value(p) + value(p + 1)) / 2.0;
    // Non-uniform grids (IQ4_NL's, the shifted family's 5- and 6-bit grids): count midpoints
    // by binary search. Walking from a guess, as below, is correct for them too but takes many
    // steps where the grid is dense.
    if n <= 16 || (n <= 64 && grid.windows(2).any(|w| w[1] - w[0] != grid[1] - grid[0])) {
        let mut mids = [0f64; 63];
        for (p, m) in mids.iter_mut().enumerate().take(n - 1) {
            *m = mid(p);
        }
        let mids = &mids[..n - 1];
        for (code, &x) in codes.iter_mut().zip(xs) {
            *code = index(mids.partition_point(|&m| x > m)) as u8;
        }
        return;
    }
    // Uniform grids (step 1): start from x/d rounded, then move until x lies between the
    // neighbouring midpoints, which gives the same position as counting midpoints below x.
    let step = (grid[1] - grid[0]) as f64 * df.abs() as f64;
    let first = value(0);
    for (code, &x) in codes.iter_mut().zip(xs) {
        let guess = ((x - first) / step).round();
        let mut p = if guess.is_nan() || guess < 0.0 {
            0
        } else if guess > (n - 1) as f64 {
            n - 1
        } else {
            guess as usize
        };
        while p > 0 && !(x > mid(p - 1)) {
            p -= 1;
        }
        while p < n - 1 && x > mid(p) {
            p += 1;
        }
        *code = index(p) as u8;
    }
}

/// `Σ w_i·(x_i − d·G[q_i])²` in binary64, index order, from +0.
fn weighted_error<const N: usize>(
    grid: &[i16],
    d: f16,
    xs: &[f64; N],
    w: &[f64; N],
    codes: &[u8; N],
) -> f64 {
    error_for(grid, d.to_f32(), xs, w, codes)
}

/// `Σ w_i·(x_i − df·G[q_i])²` for a binary32 block scale `df`, as `weighted_error`.
pub(super) fn error_for<const N: usize>(
    grid: &[i16],
    df: f32,
    xs: &[f64; N],
    w: &[f64; N],
    codes: &[u8; N],
) -> f64 {
    let mut e = 0.0f64;
    for i in 0..N {
        let y = (df * grid[codes[i] as usize] as f32) as f64;
        let diff = xs[i] - y;
        e += w[i] * (diff * diff);
    }
    e
}

impl Codec for SearchedCodec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    /// The ggml layout's own geometry: these are its bytes (SPEC.md §7.5).
    fn block_layout(&self) -> Option<super::BlockLayout> {
        self.layout_codec().block_layout()
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        self.layout_codec().row_bytes(row_len).map_err(|e| match e {
            CodecError::RowLength {
                row_len, reason, ..
            } => CodecError::RowLength {
                codec: self.id,
                row_len,
                reason,
            },
            other => other,
        })
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        self.layout_codec().decode_row(src, dst)
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
    use crate::codec::int4::sample::gaussian_like;

    fn decoded_sq_error(c: &dyn Codec, x: &[f32]) -> f64 {
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
    fn registered_with_their_layouts() {
        for c in &CODECS {
            assert_eq!(find(c.id).map(|f| f.id()), Some(c.id));
            assert!(find(c.layout).unwrap().can_decode());
            assert_eq!(c.row_bytes(64), find(c.layout).unwrap().row_bytes(64));
            assert_eq!(c.block_bytes() as u64, c.row_bytes(32).unwrap());
            assert!(
                c.grid.windows(2).all(|p| p[0] < p[1]),
                "{} grid ascends",
                c.id
            );
        }
    }

    #[test]
    fn beats_ggml_reference_encoders_on_gaussian_rows() {
        // Q4_0 and Q8_0 have ggml's reference encoder in this crate: the searched ones must
        // have no more squared error on every row and clearly less overall.
        for (ours, reference) in [("q4_0_mse_v1", "ggml_q4_0"), ("q8_0_mse_v1", "ggml_q8_0")] {
            let (mut sum_ours, mut sum_ref) = (0.0, 0.0);
            for seed in 0..20 {
                let x = gaussian_like(100 + seed, 256, 0.02);
                let a = decoded_sq_error(find(ours).unwrap(), &x);
                let b = decoded_sq_error(find(reference).unwrap(), &x);
                sum_ours += a;
                sum_ref += b;
            }
            assert!(sum_ours < 0.97 * sum_ref, "{ours}: {sum_ours} vs {sum_ref}");
        }
    }

    #[test]
    fn codes_are_nearest_for_the_stored_scale() {
        // Brute force: every decoded element is a closest grid point for the stored d.
        for c in &CODECS {
            let x = gaussian_like(7, 128, 1.0);
            let mut bytes = vec![0u8; c.row_bytes(128).unwrap() as usize];
            c.encode_row(&x, &mut bytes).unwrap();
            let mut y = vec![0f32; 128];
            c.decode_row(&bytes, &mut y).unwrap();
            for (b, chunk) in x.chunks(BLOCK).enumerate() {
                let d = f16::from_le_bytes([
                    bytes[b * c.block_bytes()],
                    bytes[b * c.block_bytes() + 1],
                ])
                .to_f32();
                for (i, &xi) in chunk.iter().enumerate() {
                    let got = (xi as f64 - y[b * BLOCK + i] as f64).abs();
                    let best = c
                        .grid
                        .iter()
                        .map(|&g| (xi as f64 - (d * g as f32) as f64).abs())
                        .fold(f64::INFINITY, f64::min);
                    assert_eq!(got, best, "{} block {b} element {i}", c.id);
                }
            }
        }
    }

    #[test]
    fn zero_and_refused_inputs() {
        for c in &CODECS {
            let mut bytes = vec![0xAAu8; c.block_bytes()];
            c.encode_row(&[0.0; 32], &mut bytes).unwrap();
            assert!(bytes.iter().all(|&b| b == 0), "{}", c.id);
            let mut x = [0.5f32; 32];
            x[5] = f32::NAN;
            let err = c.encode_row(&x, &mut bytes).unwrap_err();
            assert!(err.to_string().contains("element 5"), "{err}");
            let err = c.encode_row(&[0.0; 33], &mut bytes).unwrap_err();
            assert!(
                matches!(err, CodecError::RowLength { codec, .. } if codec == c.id),
                "{err}"
            );
            let err = c
                .encode_row_weighted(&[0.0; 32], Some(&[1.0; 31]), &mut bytes)
                .unwrap_err();
            assert!(err.to_string().contains("31"), "{err}");
        }
    }

    #[test]
    fn blocks_beyond_binary16_are_refused_naming_the_block() {
        for c in &CODECS {
            let mut x = vec![0.01f32; 64];
            x[40] = 1.0e9;
            let mut bytes = vec![0u8; 2 * c.block_bytes()];
            let err = c.encode_row(&x, &mut bytes).unwrap_err();
            assert!(
                err.to_string().contains("block 1 (elements 32..64)"),
                "{err}"
            );
        }
    }

    #[test]
    fn importance_changes_where_error_goes() {
        let c = find_searched("iq4_nl_mse_v1").unwrap();
        let x = gaussian_like(9, 32, 1.0);
        let mut imp = vec![1.0f32; 32];
        imp[3] = 1000.0;
        let (mut plain, mut weighted) = (vec![0u8; 18], vec![0u8; 18]);
        c.encode_row_weighted(&x, None, &mut plain).unwrap();
        c.encode_row_weighted(&x, Some(&imp), &mut weighted)
            .unwrap();
        let err3 = |b: &[u8]| {
            let mut y = vec![0f32; 32];
            c.decode_row(b, &mut y).unwrap();
            (x[3] - y[3]).abs()
        };
        assert!(err3(&weighted) <= err3(&plain));
    }
}
