//! Searched encoders that write ggml's 256-element super-block bytes (SPEC.md §7.5.5).
//!
//! `iq4_xs_mse_v1` writes ggml IQ4_XS blocks and `q6_k_mse_v1` ggml Q6_K blocks: one binary16
//! super-scale `d` per 256 elements, a small integer sub-scale `s` per sub-block (6-bit for
//! IQ4_XS's eight sub-blocks of 32, int8 for Q6_K's sixteen of 16), codes into a fixed grid.
//! Stock llama.cpp runs the bytes and a native GGUF export copies them unchanged.
//!
//! ggml's reference quantizers fit each sub-block's scale, derive `d` from the largest of them
//! and round every sub-scale to nearest, then pick codes for scales that are close to, but not,
//! what the decoder sees. Here each sub-block's scale comes from §7.5.3's search (least
//! weighted squared error over the decoded block), `d` is tried at a few values around the
//! largest sub-block scale, each sub-block re-decides its sub-scale (±1 around the rounded
//! one) for the stored `d`, codes are nearest for the stored product `d·s`, and the `d` with
//! the least total error is kept.
//!
//! Decoding is the layout's: rows are handed to the ggml codec of the same layout, whose
//! decoders are checked bit for bit against ggml.

use super::searched::{error_for, nearest_codes_for, search_block_n};
use super::{check_len, find, Codec, CodecError};
use half::f16;

/// Elements per super-block (ggml's `QK_K`).
pub const SUPER: usize = 256;
/// Super-scale candidates: `t = 0 .. D_CANDIDATES`, each with two divisors (§7.5.5).
pub const D_CANDIDATES: i32 = 4;

/// The IQ4_NL/IQ4_XS codebook (ggml's `kvalues_iq4nl`), ascending.
const IQ4_GRID: [i16; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Q6_K's code values `q − 32`, ascending: grid index `j` is stored as the 6-bit code `j`.
const Q6_GRID: [i16; 64] = {
    let mut g = [0i16; 64];
    let mut i = 0;
    while i < 64 {
        g[i] = i as i16 - 32;
        i += 1;
    }
    g
};

/// Which ggml super-block layout a codec writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 136 bytes: `d` @0, u16 of eight 2-bit high sub-scale parts @2, eight low nibbles @4,
    /// 128 nibble bytes @8; sub-scale `s` stored as `s + 32` (0 … 63).
    Iq4Xs,
    /// 210 bytes: 128 low-nibble bytes @0, 64 bytes of 2-bit high parts @128, sixteen i8
    /// sub-scales @192, `d` @208.
    Q6K,
}

/// One searched super-block codec.
#[derive(Debug)]
pub struct SearchedSuperCodec {
    id: &'static str,
    summary: &'static str,
    layout_id: &'static str,
    layout: Layout,
    grid: &'static [i16],
    /// Elements per sub-block.
    sub: usize,
    /// Sub-scale range, inclusive.
    s_min: i32,
    s_max: i32,
    bytes: usize,
}

static CODECS: [SearchedSuperCodec; 2] = [
    SearchedSuperCodec {
        id: "iq4_xs_mse_v1",
        summary: "ggml IQ4_XS bytes; sub-block and super-scales searched for least squared error (4.25 bpw)",
        layout_id: "ggml_iq4_xs",
        layout: Layout::Iq4Xs,
        grid: &IQ4_GRID,
        sub: 32,
        s_min: -32,
        s_max: 31,
        bytes: 136,
    },
    SearchedSuperCodec {
        id: "q6_k_mse_v1",
        summary: "ggml Q6_K bytes; sub-block and super-scales searched for least squared error (6.5625 bpw)",
        layout_id: "ggml_q6_k",
        layout: Layout::Q6K,
        grid: &Q6_GRID,
        sub: 16,
        s_min: -128,
        s_max: 127,
        bytes: 210,
    },
];

/// Every searched super-block codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// The searched super-block codec with this id.
pub fn find_searched_super(id: &str) -> Option<&'static SearchedSuperCodec> {
    CODECS.iter().find(|c| c.id == id)
}

/// The choice for one super-block: `d`, each sub-block's sub-scale, each element's grid index.
struct Choice {
    d: f16,
    s: [i32; 16],
    codes: [u8; SUPER],
}

impl SearchedSuperCodec {
    /// The ggml codec whose bytes this encoder writes.
    pub fn layout(&self) -> &'static str {
        self.layout_id
    }

    fn layout_codec(&self) -> &'static dyn Codec {
        find(self.layout_id).expect("searched super-block codecs name registered ggml layouts")
    }

    fn blocks(&self) -> usize {
        SUPER / self.sub
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
        if let Some(i) = src.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::OutOfRange {
                codec: self.id,
                detail: format!("element {i} of the row is {}", src[i]),
            });
        }
        for (sb, (x, out)) in src
            .chunks_exact(SUPER)
            .zip(dst.chunks_exact_mut(self.bytes))
            .enumerate()
        {
            let mut w = [0f64; SUPER];
            for (i, wi) in w.iter_mut().enumerate() {
                *wi = importance.map_or(1.0, |c| c[sb * SUPER + i] as f64);
            }
            let choice = match self.sub {
                32 => self.choose::<32>(x, &w),
                _ => self.choose::<16>(x, &w),
            }
            .map_err(|b| {
                let first = sb * SUPER + b * self.sub;
                CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!(
                        "sub-block {} (elements {}..{}): every candidate scale overflows binary16",
                        sb * self.blocks() + b,
                        first,
                        first + self.sub
                    ),
                }
            })?;
            out.fill(0);
            if let Some(choice) = choice {
                self.pack(&choice, out);
            }
        }
        Ok(())
    }

    /// SPEC.md §7.5.5 for one super-block. `Ok(None)`: every byte 0. `Err(b)`: sub-block
    /// `b`'s scale search found no binary16 scale (the row must be refused).
    fn choose<const N: usize>(&self, x: &[f32], w: &[f64; SUPER]) -> Result<Option<Choice>, usize> {
        let nb = self.blocks();
        let xs: [f64; SUPER] = std::array::from_fn(|i| x[i] as f64);
        // Step 1: each sub-block's own searched scale.
        let mut sigma = [0f64; 16];
        for (b, sg) in sigma.iter_mut().enumerate().take(nb) {
            let wb: [f64; N] = std::array::from_fn(|i| w[N * b + i]);
            let (d, _) = search_block_n::<N>(self.grid, &x[N * b..N * (b + 1)], &wb).ok_or(b)?;
            *sg = d.to_f32() as f64;
        }
        // Step 2: the first sub-block scale of largest magnitude, with its sign.
        let mut k = 0;
        for b in 1..nb {
            if sigma[b].abs() > sigma[k].abs() {
                k = b;
            }
        }
        let m = sigma[k];
        if m == 0.0 {
            return Ok(None);
        }
        // Step 3: super-scale candidates; each sub-block re-decides its sub-scale for them.
        let mut best: Option<(f64, Choice)> = None;
        for t in 0..D_CANDIDATES {
            for divisor in [self.s_min + t, self.s_max - t] {
                let d = f16::from_f32((m / divisor as f64) as f32);
                if !d.is_finite() || d.to_f32() == 0.0 {
                    continue;
                }
                let df = d.to_f32();
                let mut choice = Choice {
                    d,
                    s: [0; 16],
                    codes: [0; SUPER],
                };
                let mut total = 0.0f64;
                for b in 0..nb {
                    let xb: [f64; N] = std::array::from_fn(|i| xs[N * b + i]);
                    let wb: [f64; N] = std::array::from_fn(|i| w[N * b + i]);
                    let (s, codes, e) = self.choose_sub_scale(df, sigma[b], &xb, &wb);
                    choice.s[b] = s;
                    choice.codes[N * b..N * (b + 1)].copy_from_slice(&codes);
                    total += e;
                }
                if best.as_ref().is_none_or(|(be, _)| total < *be) {
                    best = Some((total, choice));
                }
            }
        }
        Ok(best.map(|(_, c)| c))
    }

    /// A sub-block's sub-scale for super-scale `df`: the zero sub-block (`s = 0`, codes 0),
    /// then `s` in `s0 − 1 ..= s0 + 1` ascending (within range, not 0); strictly smaller
    /// errors win. Returns `(s, codes, error)`.
    fn choose_sub_scale<const N: usize>(
        &self,
        df: f32,
        sigma: f64,
        xs: &[f64; N],
        w: &[f64; N],
    ) -> (i32, [u8; N], f64) {
        let mut best_err = 0.0f64;
        for i in 0..N {
            best_err += w[i] * (xs[i] * xs[i]);
        }
        let mut best = (0i32, [0u8; N]);
        let s0 = (sigma / df as f64)
            .round()
            .clamp(self.s_min as f64, self.s_max as f64) as i32;
        let mut codes = [0u8; N];
        for s in (s0 - 1)..=(s0 + 1) {
            if !(self.s_min..=self.s_max).contains(&s) || s == 0 {
                continue;
            }
            // Exact: an 11-bit significand times an integer of at most 8 bits.
            let dl = df * s as f32;
            nearest_codes_for(self.grid, dl, xs, &mut codes);
            let e = error_for(self.grid, dl, xs, w, &codes);
            if e < best_err {
                best_err = e;
                best = (s, codes);
            }
        }
        (best.0, best.1, best_err)
    }

    fn pack(&self, c: &Choice, out: &mut [u8]) {
        match self.layout {
            Layout::Iq4Xs => {
                out[0..2].copy_from_slice(&c.d.to_le_bytes());
                let mut high = 0u16;
                for b in 0..8 {
                    let ls = (c.s[b] + 32) as u8;
                    high |= ((ls >> 4) as u16) << (2 * b);
                    out[4 + b / 2] |= (ls & 0x0F) << (4 * (b % 2));
                    for j in 0..16 {
                        out[8 + 16 * b + j] = c.codes[32 * b + j] | (c.codes[32 * b + 16 + j] << 4);
                    }
                }
                out[2..4].copy_from_slice(&high.to_le_bytes());
            }
            Layout::Q6K => {
                for (e, &q) in c.codes.iter().enumerate() {
                    let (half, r) = (e / 128, e % 128);
                    let (quarter, l) = (r / 32, r % 32);
                    out[64 * half + l + 32 * (quarter & 1)] |= (q & 0x0F) << (4 * (quarter >> 1));
                    out[128 + 32 * half + l] |= (q >> 4) << (2 * quarter);
                }
                for b in 0..16 {
                    out[192 + b] = c.s[b] as i8 as u8;
                }
                out[208..210].copy_from_slice(&c.d.to_le_bytes());
            }
        }
    }
}

impl Codec for SearchedSuperCodec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    /// The ggml layout's own geometry: these are its bytes (SPEC.md §7.5.5).
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
    fn registered_with_their_layouts() {
        for c in &CODECS {
            assert_eq!(find(c.id).map(|f| f.id()), Some(c.id));
            assert_eq!(c.row_bytes(256), Ok(c.bytes as u64));
            assert_eq!(c.block_layout().unwrap().bytes as usize, c.bytes);
            assert!(c.row_bytes(255).is_err());
            assert_eq!(c.grid.len(), if c.sub == 32 { 16 } else { 64 });
        }
    }

    #[test]
    fn codes_are_nearest_for_the_stored_sub_scales() {
        // Brute force over the decoded row: every element is a closest value `(d·s)·G[j]`
        // for its sub-block's stored scale, which the decoder's own output reveals.
        for c in &CODECS {
            let x = gaussian_like(7, 512, 0.05);
            let mut bytes = vec![0u8; 2 * c.bytes];
            c.encode_row(&x, &mut bytes).unwrap();
            let mut y = vec![0f32; 512];
            c.decode_row(&bytes, &mut y).unwrap();
            for (b, xb) in x.chunks(c.sub).enumerate() {
                let yb = &y[b * c.sub..(b + 1) * c.sub];
                // The block scale: any non-zero decoded value divided by its grid value.
                let nonzero = yb.iter().any(|v| *v != 0.0);
                if !nonzero {
                    continue;
                }
                let dl = {
                    let sb = b * c.sub / SUPER;
                    let blk = &bytes[sb * c.bytes..(sb + 1) * c.bytes];
                    let i = b % c.blocks();
                    match c.layout {
                        Layout::Iq4Xs => {
                            let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                            let hi = (u16::from_le_bytes([blk[2], blk[3]]) >> (2 * i)) & 3;
                            let lo = (blk[4 + i / 2] >> (4 * (i % 2))) & 15;
                            d * ((lo as i32 | (hi as i32) << 4) - 32) as f32
                        }
                        Layout::Q6K => {
                            let d = f16::from_le_bytes([blk[208], blk[209]]).to_f32();
                            d * (blk[192 + i] as i8) as f32
                        }
                    }
                };
                for (i, &xi) in xb.iter().enumerate() {
                    let got = (xi as f64 - yb[i] as f64).abs();
                    let best = c
                        .grid
                        .iter()
                        .map(|&g| (xi as f64 - (dl * g as f32) as f64).abs())
                        .fold(f64::INFINITY, f64::min);
                    assert_eq!(got, best, "{} sub-block {b} element {i}", c.id);
                }
            }
        }
    }

    #[test]
    fn errors_sit_where_the_grid_sizes_put_them() {
        // IQ4_XS shares one binary16 per 256 and spends 6 bits per 32 on the sub-scale, so
        // its error stays within a few percent of the per-32 searched IQ4_NL (0.25 bit more
        // per weight). Q6_K's grid step is 4× Q8_0's at equal scales: at most 16× the error.
        let x = gaussian_like(3, 2048, 0.02);
        let ours = sq_error(find("iq4_xs_mse_v1").unwrap(), &x);
        let nl = sq_error(find("iq4_nl_mse_v1").unwrap(), &x);
        let zero: f64 = x.iter().map(|v| (*v as f64).powi(2)).sum();
        assert!(ours < 1.05 * nl, "{ours} vs iq4_nl_mse_v1 {nl}");
        assert!(ours < 0.05 * zero);
        let q6 = sq_error(find("q6_k_mse_v1").unwrap(), &x);
        let q8 = sq_error(find("q8_0_mse_v1").unwrap(), &x);
        assert!(q6 < 16.0 * q8 && q6 > q8, "{q6} vs q8_0_mse_v1 {q8}");
    }

    #[test]
    fn zero_and_refused_inputs() {
        for c in &CODECS {
            let mut bytes = vec![0xAAu8; c.bytes];
            c.encode_row(&[0.0; 256], &mut bytes).unwrap();
            assert!(bytes.iter().all(|&b| b == 0), "{}", c.id);
            let mut x = [0.5f32; 256];
            x[200] = f32::NAN;
            let err = c.encode_row(&x, &mut bytes).unwrap_err();
            assert!(err.to_string().contains("element 200"), "{err}");
            let err = c.encode_row(&[0.0; 255], &mut bytes).unwrap_err();
            assert!(
                matches!(err, CodecError::RowLength { codec, .. } if codec == c.id),
                "{err}"
            );
            let err = c
                .encode_row_weighted(&[0.0; 256], Some(&[1.0; 31]), &mut bytes)
                .unwrap_err();
            assert!(err.to_string().contains("31"), "{err}");
            let mut x = vec![0.01f32; 512];
            x[300] = 1.0e9;
            let mut bytes = vec![0u8; 2 * c.bytes];
            let err = c.encode_row(&x, &mut bytes).unwrap_err();
            let b = 300 / c.sub;
            let want = format!(
                "sub-block {b} (elements {}..{})",
                b * c.sub,
                (b + 1) * c.sub
            );
            assert!(err.to_string().contains(&want), "{err}");
        }
    }
}
