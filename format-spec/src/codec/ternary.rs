//! Ternary encoders writing ggml's TQ1_0 and TQ2_0 block bytes (SPEC.md §7.8).
//!
//! `tq1_0_absmean_v1` and `tq2_0_absmean_v1` store exactly the bytes of ggml's TQ1_0 (54
//! bytes, 1.6875 bits per weight) and TQ2_0 (66 bytes, 2.0625 bits per weight) blocks of 256
//! elements, so stock llama.cpp runs them and a native GGUF export copies them unchanged.
//! The ids pin the encoder: each block's codes are BitNet b1.58's absmean quantization
//! (`RoundClip(x / γ, −1, 1)` with `γ` the block's mean magnitude), and the stored scale is
//! the least-squares scale for those codes (the mean magnitude of the elements coded ±1).
//! ggml's own reference quantizers scale by the block's largest magnitude instead.
//!
//! Why not store `γ` itself: it decodes every non-zero weight at `γ`, which for a block that
//! is already ternary (`±a` and zeros, `k` non-zero) is `a·k/256`, so such a tensor could
//! never come back unchanged. With the least-squares scale it does (§7.8.3 states when).
//!
//! Decoding is the layout's: rows go to the ggml codec of the same layout, whose decoders
//! are checked bit for bit against ggml.

use super::{check_len, find, Codec, CodecError};
use half::f16;

/// Elements per block: both layouts hold 256 ternary weights per binary16 scale.
pub const BLOCK: usize = 256;

/// BitNet b1.58's lower bound on the absmean (its `clamp(min=1e-5)`), so that a block of
/// tiny weights is not divided by (nearly) zero.
pub const GAMMA_FLOOR: f64 = 1e-5;

/// How the 256 codes of a block are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    /// TQ1_0: five base-3 digits per byte as a fixed-point fraction, `d` at byte 52.
    Base3,
    /// TQ2_0: four 2-bit fields per byte, `d` at byte 64.
    TwoBit,
}

/// One absmean ternary encoder over one ggml layout.
#[derive(Debug)]
pub struct TernaryCodec {
    id: &'static str,
    summary: &'static str,
    /// The ggml codec whose bytes this encoder writes and whose decoder reads them.
    layout: &'static str,
    packing: Packing,
}

static CODECS: [TernaryCodec; 2] = [
    TernaryCodec {
        id: "tq1_0_absmean_v1",
        summary:
            "ggml TQ1_0 bytes; BitNet b1.58 absmean ternary codes, least-squares scale (1.69 bpw)",
        layout: "ggml_tq1_0",
        packing: Packing::Base3,
    },
    TernaryCodec {
        id: "tq2_0_absmean_v1",
        summary:
            "ggml TQ2_0 bytes; BitNet b1.58 absmean ternary codes, least-squares scale (2.06 bpw)",
        layout: "ggml_tq2_0",
        packing: Packing::TwoBit,
    },
];

/// Every ternary encoder of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// The ternary codec with this id.
pub fn find_ternary(id: &str) -> Option<&'static TernaryCodec> {
    CODECS.iter().find(|c| c.id == id)
}

impl TernaryCodec {
    pub fn layout(&self) -> &'static str {
        self.layout
    }

    fn layout_codec(&self) -> &'static dyn Codec {
        find(self.layout).expect("ternary codecs name registered ggml layouts")
    }

    fn block_bytes(&self) -> usize {
        match self.packing {
            Packing::Base3 => 54,
            Packing::TwoBit => 66,
        }
    }

    fn pack(&self, d: f16, codes: &[i8; BLOCK], block: &mut [u8]) {
        // Stored digit/field: code + 1, so −1, 0, +1 are 0, 1, 2.
        let t = |i: usize| (codes[i] + 1) as u8;
        match self.packing {
            Packing::TwoBit => {
                for half in 0..2 {
                    for m in 0..32 {
                        let mut byte = 0u8;
                        for field in 0..4 {
                            byte |= t(128 * half + 32 * field + m) << (2 * field);
                        }
                        block[32 * half + m] = byte;
                    }
                }
                block[64..66].copy_from_slice(&d.to_le_bytes());
            }
            Packing::Base3 => {
                // Five runs of 32 in bytes 0..32, five runs of 16 in bytes 32..48, four runs
                // of 4 in bytes 48..52 (their fifth, least significant digit is 0).
                for m in 0..32 {
                    block[m] = base3_byte((0..5).map(|n| t(32 * n + m)));
                }
                for m in 0..16 {
                    block[32 + m] = base3_byte((0..5).map(|n| t(160 + 16 * n + m)));
                }
                for m in 0..4 {
                    block[48 + m] = base3_byte((0..4).map(|n| t(240 + 4 * n + m)).chain([0]));
                }
                block[52..54].copy_from_slice(&d.to_le_bytes());
            }
        }
    }
}

/// Five base-3 digits, most significant first, as the byte `⌈v·256/243⌉` where `v` is their
/// value: the fixed-point fraction the TQ1_0 decoder reads digit by digit.
fn base3_byte(digits: impl Iterator<Item = u8>) -> u8 {
    let v = digits.fold(0u16, |v, digit| v * 3 + digit as u16);
    (v * 256).div_ceil(243) as u8
}

/// The encoder of SPEC.md §7.8.2 for one block of finite values: the binary16 scale and each
/// element's code in {−1, 0, +1}, or `None` when the scale overflows binary16.
pub fn encode_block(x: &[f32]) -> Option<(f16, [i8; BLOCK])> {
    let mut abs_sum = 0.0f64;
    for &v in x {
        abs_sum += (v as f64).abs();
    }
    let gamma = (abs_sum / BLOCK as f64).max(GAMMA_FLOOR);
    let mut codes = [0i8; BLOCK];
    let (mut kept_sum, mut kept) = (0.0f64, 0u32);
    for (code, &v) in codes.iter_mut().zip(x) {
        let a = (v as f64).abs();
        // RoundClip(x/γ, −1, 1): |x/γ| > 1/2 gives ±1; exactly 1/2 rounds to even, 0.
        if 2.0 * a > gamma {
            *code = if v > 0.0 { 1 } else { -1 };
            kept_sum += a;
            kept += 1;
        }
    }
    if kept == 0 {
        return Some((f16::ZERO, codes));
    }
    let d = f16::from_f32((kept_sum / kept as f64) as f32);
    if !d.is_finite() {
        return None;
    }
    if d.to_f32() == 0.0 {
        // Below binary16 resolution: every element decodes to 0 whatever its code, and the
        // canonical bytes for that are the zero block's.
        return Some((f16::ZERO, [0i8; BLOCK]));
    }
    Some((d, codes))
}

impl Codec for TernaryCodec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    /// The ggml layout's own geometry: these are its bytes (SPEC.md §7.8).
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
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
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
            let (d, codes) = encode_block(x).ok_or_else(|| CodecError::OutOfRange {
                codec: self.id,
                detail: format!(
                    "block {b} (elements {}..{}): its scale overflows binary16",
                    b * BLOCK,
                    (b + 1) * BLOCK
                ),
            })?;
            self.pack(d, &codes, block);
        }
        Ok(())
    }

    fn can_encode(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::int4::sample::gaussian_like;

    fn round_trip(c: &dyn Codec, x: &[f32]) -> Vec<f32> {
        let mut bytes = vec![0u8; c.row_bytes(x.len() as u64).unwrap() as usize];
        c.encode_row(x, &mut bytes).unwrap();
        let mut y = vec![0f32; x.len()];
        c.decode_row(&bytes, &mut y).unwrap();
        y
    }

    #[test]
    fn registered_with_their_layouts() {
        for c in &CODECS {
            assert_eq!(find(c.id).map(|f| f.id()), Some(c.id));
            let layout = find(c.layout).unwrap();
            assert!(layout.can_decode());
            assert_eq!(c.row_bytes(512), layout.row_bytes(512));
            assert_eq!(c.block_bytes() as u64, c.row_bytes(256).unwrap());
            assert_eq!(c.block_layout(), layout.block_layout());
        }
    }

    #[test]
    fn both_layouts_decode_the_same_values() {
        // Same codes and scale, two packings: the two decoders must agree exactly.
        for seed in 0..8 {
            let x = gaussian_like(seed, 512, 0.03);
            assert_eq!(
                round_trip(&CODECS[0], &x),
                round_trip(&CODECS[1], &x),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn codes_are_bitnet_absmean_and_the_scale_is_their_least_squares_fit() {
        let x = gaussian_like(3, 256, 0.02);
        let y = round_trip(&CODECS[1], &x);
        let gamma = x.iter().map(|v| v.abs() as f64).sum::<f64>() / 256.0;
        let kept: Vec<f64> = x
            .iter()
            .filter(|v| 2.0 * v.abs() as f64 > gamma)
            .map(|v| v.abs() as f64)
            .collect();
        let d = f16::from_f32((kept.iter().sum::<f64>() / kept.len() as f64) as f32).to_f32();
        for (xi, yi) in x.iter().zip(&y) {
            let want = if 2.0 * xi.abs() as f64 > gamma {
                d.copysign(*xi)
            } else {
                0.0
            };
            assert_eq!(*yi, want, "x = {xi}");
        }
    }

    #[test]
    fn already_ternary_rows_come_back_exactly() {
        // Each block: one binary16 magnitude a (a > 5e-6), signs and zeros anywhere, any
        // number of non-zeros (the all-zero block included).
        let magnitudes = [0.0123f32, 1.0, 3.0e-5, 60000.0, 0.5];
        for c in &CODECS {
            for (seed, &a) in magnitudes.iter().enumerate() {
                let a = f16::from_f32(a).to_f32();
                let pattern = gaussian_like(seed as u64 + 40, 1024, 1.0);
                let mut x: Vec<f32> = pattern
                    .iter()
                    .map(|&g| {
                        if g > 0.6 {
                            a
                        } else if g < -0.6 {
                            -a
                        } else {
                            0.0
                        }
                    })
                    .collect();
                // Block 2 all zero, block 3 a single non-zero.
                x[512..768].fill(0.0);
                x[768..1024].fill(0.0);
                x[800] = -a;
                assert_eq!(round_trip(c, &x), x, "{} a = {a}", c.id);
            }
        }
    }

    #[test]
    fn rows_not_of_whole_blocks_are_refused_naming_the_codec() {
        for c in &CODECS {
            let err = c.row_bytes(576).unwrap_err();
            assert!(
                matches!(&err, CodecError::RowLength { codec, row_len: 576, .. } if *codec == c.id),
                "{err}"
            );
            assert!(err.to_string().contains("256"), "{err}");
            let mut bytes = vec![0u8; 2 * c.block_bytes()];
            assert!(c.encode_row(&[0.1; 576], &mut bytes).is_err());
        }
    }

    #[test]
    fn non_finite_and_overflowing_blocks_are_refused_naming_where() {
        for c in &CODECS {
            let mut bytes = vec![0u8; 2 * c.block_bytes()];
            let mut x = vec![0.01f32; 512];
            x[300] = f32::NAN;
            let err = c.encode_row(&x, &mut bytes).unwrap_err();
            assert!(err.to_string().contains("element 300"), "{err}");
            let mut x = vec![1.0e6f32; 512];
            x[0] = 0.0;
            let err = c.encode_row(&x, &mut bytes).unwrap_err();
            assert!(
                err.to_string().contains("block 0 (elements 0..256)"),
                "{err}"
            );
        }
    }

    #[test]
    fn zero_and_tiny_blocks_are_the_zero_block() {
        for c in &CODECS {
            for x in [vec![0.0f32; 256], gaussian_like(5, 256, 1.0e-9)] {
                let y = round_trip(c, &x);
                assert!(y.iter().all(|v| *v == 0.0), "{}", c.id);
            }
        }
    }

    #[test]
    fn least_squares_scale_has_less_error_than_the_absmean_scale() {
        // The reason for the stored scale: on Gaussian-like weights, decoding the same codes
        // at γ (BitNet's scale) has clearly more squared error than at the stored d.
        let (mut ours, mut at_gamma) = (0.0f64, 0.0f64);
        for seed in 0..20 {
            let x = gaussian_like(200 + seed, 256, 0.02);
            let y = round_trip(&CODECS[1], &x);
            let gamma = x.iter().map(|v| v.abs() as f64).sum::<f64>() / 256.0;
            for (xi, yi) in x.iter().zip(&y) {
                let xi = *xi as f64;
                ours += (xi - *yi as f64).powi(2);
                let g = if *yi == 0.0 { 0.0 } else { gamma.copysign(xi) };
                at_gamma += (xi - g).powi(2);
            }
        }
        assert!(ours < 0.9 * at_gamma, "{ours} vs {at_gamma}");
    }
}
