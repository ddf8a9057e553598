//! One group ↔ one block: the reference arithmetic of SPEC.md §7.4, step by step.
//!
//! A group is `r` real elements (`1 ≤ r ≤ n`, `n` ∈ {8, 16, 32}); its block is
//! `4 + n/2` bytes: fp16 `d`, fp16 `m`, then `n/2` nibble bytes, element `j` in the low
//! nibble of byte `j` and element `j + n/2` in the high nibble. Positions `r..n` are
//! padding, stored as nibble 0 and never decoded.

use half::f16;

/// Group sizes with a registered codec.
pub const GROUP_SIZES: [usize; 3] = [8, 16, 32];

/// Largest group size, so per-group scratch can live on the stack.
const MAX_GROUP: usize = 32;

/// Iterations of `int4_opt_v1`'s refinement (SPEC.md §7.4.6, step 2): part of the id.
pub const OPT_V1_ITERATIONS: usize = 3;

/// Why a group cannot be encoded (or a buffer does not fit the group geometry).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum Int4Error {
    #[error("element {index} of the group is {value}: NaN and infinities cannot be quantized")]
    NonFinite { index: usize, value: f32 },
    #[error(
        "scale (max - min)/15 = {value:e} rounds to infinity in binary16 (largest finite 65504)"
    )]
    ScaleOverflow { value: f32 },
    #[error("minimum {value:e} rounds to infinity in binary16 (largest finite 65504)")]
    MinimumOverflow { value: f32 },
    #[error(
        "group geometry: group size {group} (must be 8, 16 or 32), {elements} elements \
         (must be 1..=group size), {block_bytes}-byte block (must be 4 + group size/2)"
    )]
    Geometry {
        group: usize,
        elements: usize,
        block_bytes: usize,
    },
}

/// Bytes of one block of an `n`-element group: fp16 `d`, fp16 `m`, `n/2` nibble bytes.
pub const fn block_bytes(n: usize) -> usize {
    4 + n / 2
}

/// The plain min/max encoder of `int4_g{8,16,32}_fp16_v1` (SPEC.md §7.4.5): `x` holds the
/// group's `r` real elements, `block` receives `block_bytes(n)` bytes.
pub fn encode_group_minmax(x: &[f32], block: &mut [u8], n: usize) -> Result<(), Int4Error> {
    check_geometry(n, x.len(), block.len())?;
    let (d, m) = minmax_params(x)?;
    let mut q = [0u8; MAX_GROUP];
    quantize(x, d.to_f32(), m.to_f32(), &mut q[..x.len()]);
    pack(d, m, &q[..n], block);
    Ok(())
}

/// The `int4_opt_v1` encoder (SPEC.md §7.4.6) on the g16 layout: the plain encoder's
/// result refined by at most [`OPT_V1_ITERATIONS`] least-squares refits of `(d, m)` to the
/// current codes, keeping whichever candidate has the smallest decoded squared error.
/// `x` holds the group's `r ≤ 16` real elements; `block` receives 12 bytes.
pub fn encode_group_opt_v1(x: &[f32], block: &mut [u8]) -> Result<(), Int4Error> {
    const N: usize = 16;
    check_geometry(N, x.len(), block.len())?;
    let r = x.len();
    let (mut d, mut m) = minmax_params(x)?;
    let mut q = [0u8; MAX_GROUP];
    quantize(x, d.to_f32(), m.to_f32(), &mut q[..r]);
    let mut best = (d, m, q);
    let mut best_err = squared_error(x, &q[..r], d.to_f32(), m.to_f32());

    for _ in 0..OPT_V1_ITERATIONS {
        let Some((d_fit, m_fit)) = least_squares_fit(x, &q[..r]) else {
            break;
        };
        // f64 → f32 → fp16, each to nearest even: a double rounding, and the one the id pins.
        d = f16::from_f32(d_fit as f32);
        m = f16::from_f32(m_fit as f32);
        if !d.is_finite() || !m.is_finite() {
            break;
        }
        quantize(x, d.to_f32(), m.to_f32(), &mut q[..r]);
        let err = squared_error(x, &q[..r], d.to_f32(), m.to_f32());
        if err < best_err {
            best = (d, m, q);
            best_err = err;
        }
    }
    let (d, m, q) = best;
    pack(d, m, &q[..N], block);
    Ok(())
}

/// The decoder of every int4 codec (SPEC.md §7.4.3): `out` receives the group's `r` real
/// elements, `x' = q·d + m` as an f32 multiply then an f32 add.
pub fn decode_block(block: &[u8], out: &mut [f32], n: usize) -> Result<(), Int4Error> {
    check_geometry(n, out.len(), block.len())?;
    let (d, m) = scale_and_min(block);
    let nibbles = &block[4..];
    // Elements `0..n/2` are the low nibbles in byte order, the rest the high nibbles: two
    // straight loops instead of an index split per element.
    let (low, high) = out.split_at_mut(out.len().min(n / 2));
    for (y, &byte) in low.iter_mut().zip(nibbles) {
        *y = dequantize(byte & 0x0F, d, m);
    }
    for (y, &byte) in high.iter_mut().zip(nibbles) {
        *y = dequantize(byte >> 4, d, m);
    }
    Ok(())
}

/// Decodes a row of `dst.len()` elements from its blocks of `2 * HALF` elements each;
/// `src` must hold exactly `ceil(dst.len() / (2 * HALF))` blocks (the caller checks).
/// Whole groups go through fixed-size arrays so the compiler can vectorise the same
/// per-element multiply then add as [`decode_block`]; the partial last group goes through
/// [`decode_block`] itself.
pub(super) fn decode_row_blocks<const HALF: usize>(
    src: &[u8],
    dst: &mut [f32],
) -> Result<(), Int4Error> {
    let n = 2 * HALF;
    let block_len = block_bytes(n);
    let mut blocks = src.chunks_exact(block_len);
    let mut groups = dst.chunks_exact_mut(n);
    // Groups first: `zip` pulls its left side first, and the left side must be the one that
    // runs out, or the partial group's block would be consumed and lost.
    for (out, block) in (&mut groups).zip(&mut blocks) {
        let (d, m) = scale_and_min(block);
        let Ok(nibbles) = <&[u8; HALF]>::try_from(&block[4..]) else {
            return Err(Int4Error::Geometry {
                group: n,
                elements: n,
                block_bytes: block.len(),
            });
        };
        let (low, high) = out.split_at_mut(HALF);
        for (y, &byte) in low.iter_mut().zip(nibbles) {
            *y = dequantize(byte & 0x0F, d, m);
        }
        for (y, &byte) in high.iter_mut().zip(nibbles) {
            *y = dequantize(byte >> 4, d, m);
        }
    }
    let tail = groups.into_remainder();
    if !tail.is_empty() {
        let block = blocks.next().ok_or(Int4Error::Geometry {
            group: n,
            elements: tail.len(),
            block_bytes: 0,
        })?;
        decode_block(block, tail, n)?;
    }
    Ok(())
}

/// The decoded value of one code: two roundings, never fused (SPEC.md §7.1).
#[inline]
pub fn dequantize(q: u8, d: f32, m: f32) -> f32 {
    q as f32 * d + m
}

/// `q = clamp(round_ties_even((x - m) / d), 0, 15)`, or 0 everywhere when `d == 0`
/// (SPEC.md §7.4.4). `x` must be finite and `d ≥ 0`, as the encoders guarantee.
pub fn quantize(x: &[f32], d: f32, m: f32, q: &mut [u8]) {
    if d == 0.0 {
        q.fill(0);
        return;
    }
    for (qi, &xi) in q.iter_mut().zip(x) {
        *qi = nearest_code((xi - m) / d);
    }
}

/// Squared error of the decoded group against `x`, in f64, in element order (SPEC.md
/// §7.4.4, `err`).
pub fn squared_error(x: &[f32], q: &[u8], d: f32, m: f32) -> f64 {
    let mut sum = 0.0f64;
    for (&xi, &qi) in x.iter().zip(q) {
        let diff = xi as f64 - dequantize(qi, d, m) as f64;
        sum += diff * diff;
    }
    sum
}

/// `round_ties_even(v)` clamped to 0..=15. Clamping first gives the same integer (rounding
/// is monotone and 0 and 15 are integers), and on [0, 15] adding then subtracting 2^23
/// rounds to the nearest integer, ties to even, exactly: at 2^23 the f32 spacing is 1 and
/// 2^23 is even. This avoids a `roundevenf` library call on CPUs without SSE4.1.
#[inline]
fn nearest_code(v: f32) -> u8 {
    const TWO_POW_23: f32 = 8_388_608.0;
    let clamped = v.clamp(0.0, 15.0);
    ((clamped + TWO_POW_23) - TWO_POW_23) as u8
}

/// `(d, m)` of the plain encoder: `lo`/`hi` the first smallest/largest element (strict
/// comparisons in index order, which fixes the sign of a zero minimum), `d = fp16((hi -
/// lo) / 15)`, `m = fp16(lo)`. Refuses non-finite elements and binary16 overflow.
fn minmax_params(x: &[f32]) -> Result<(f16, f16), Int4Error> {
    if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Int4Error::NonFinite { index, value });
    }
    let mut lo = x[0];
    let mut hi = x[0];
    for &v in &x[1..] {
        if v < lo {
            lo = v;
        }
        if v > hi {
            hi = v;
        }
    }
    let scale = (hi - lo) / 15.0;
    let d = f16::from_f32(scale);
    if !d.is_finite() {
        return Err(Int4Error::ScaleOverflow { value: scale });
    }
    let m = f16::from_f32(lo);
    if !m.is_finite() {
        return Err(Int4Error::MinimumOverflow { value: lo });
    }
    Ok((d, m))
}

/// The least-squares `(d', m')` for codes `q` (SPEC.md §7.4.6, steps 2.1–2.4), or `None`
/// when the refinement stops: all codes equal, or a slope that is not positive and finite.
fn least_squares_fit(x: &[f32], q: &[u8]) -> Option<(f64, f64)> {
    let n = x.len() as f64;
    let (mut sq, mut sqq, mut sx, mut sqx) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&xi, &qi) in x.iter().zip(q) {
        let (xi, qi) = (xi as f64, qi as f64);
        sq += qi;
        sqq += qi * qi;
        sx += xi;
        sqx += qi * xi;
    }
    let det = n * sqq - sq * sq;
    if det == 0.0 {
        return None;
    }
    let d = (n * sqx - sq * sx) / det;
    let m = (sx - d * sq) / n;
    // Written so that a NaN slope also stops (the spec's "not d' > 0").
    let positive_finite = d > 0.0 && d.is_finite();
    if !positive_finite || !m.is_finite() {
        return None;
    }
    Some((d, m))
}

/// Writes `d`, `m` and the nibbles of `q` (length `n`, padding already 0).
fn pack(d: f16, m: f16, q: &[u8], block: &mut [u8]) {
    let half = q.len() / 2;
    block[0..2].copy_from_slice(&d.to_le_bytes());
    block[2..4].copy_from_slice(&m.to_le_bytes());
    for (j, byte) in block[4..4 + half].iter_mut().enumerate() {
        *byte = q[j] | (q[j + half] << 4);
    }
}

/// `d` and `m` of a block, widened to f32 (exact).
#[inline]
fn scale_and_min(block: &[u8]) -> (f32, f32) {
    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
    let m = f16::from_le_bytes([block[2], block[3]]).to_f32();
    (d, m)
}

fn check_geometry(n: usize, elements: usize, bytes: usize) -> Result<(), Int4Error> {
    if GROUP_SIZES.contains(&n) && (1..=n).contains(&elements) && bytes == block_bytes(n) {
        Ok(())
    } else {
        Err(Int4Error::Geometry {
            group: n,
            elements,
            block_bytes: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_code_is_clamped_round_ties_even() {
        // Every multiple of 1/64 in [-2, 18] (all ties among them), then a dense sample
        // of f32 bit patterns across the clamp edges and the interior.
        let mut values: Vec<f32> = (-128..=1152).map(|k| k as f32 / 64.0).collect();
        for bits in (0x3f00_0000u32..0x4190_0000).step_by(997) {
            values.push(f32::from_bits(bits));
            values.push(-f32::from_bits(bits));
        }
        values.extend([
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            1e-45,
            14.5,
            15.5,
            0.5,
            -0.5,
            0.49999997,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        for v in values {
            let want = v.round_ties_even().clamp(0.0, 15.0) as u8;
            assert_eq!(nearest_code(v), want, "{v:e}");
        }
    }

    #[test]
    fn ties_round_to_even_codes() {
        // d = 1, m = 0: codes of k + 1/2 are the even neighbour.
        let x: Vec<f32> = [0.0, 15.0, 0.5, 1.5, 2.5, 3.5, 4.5, 14.5].to_vec();
        let mut block = [0u8; 8];
        encode_group_minmax(&x, &mut block, 8).unwrap();
        assert_eq!(&block[0..4], &[0x00, 0x3c, 0x00, 0x00], "d = 1.0, m = 0.0");
        let mut q = [0u8; 8];
        quantize(&x, 1.0, 0.0, &mut q);
        let nibbles = |low: u8, high: u8| low | (high << 4);
        assert_eq!(q, [0, 15, 0, 2, 2, 4, 4, 14]);
        assert_eq!(
            block[4..],
            [nibbles(0, 2), nibbles(15, 4), nibbles(0, 4), nibbles(2, 14)]
        );
    }

    #[test]
    fn sign_of_a_zero_minimum_is_the_first_ones() {
        let mut block = [0u8; 8];
        encode_group_minmax(&[-0.0, 0.0, 1.5], &mut block, 8).unwrap();
        assert_eq!(&block[2..4], &[0x00, 0x80], "m = -0.0");
        encode_group_minmax(&[0.0, -0.0, 1.5], &mut block, 8).unwrap();
        assert_eq!(&block[2..4], &[0x00, 0x00], "m = +0.0");
    }

    #[test]
    fn refusals_name_the_problem() {
        let mut block = [0u8; 12];
        for (x, want) in [
            (
                vec![1.0, f32::NAN],
                Int4Error::NonFinite {
                    index: 1,
                    value: f32::NAN,
                },
            ),
            (
                vec![f32::NEG_INFINITY],
                Int4Error::NonFinite {
                    index: 0,
                    value: f32::NEG_INFINITY,
                },
            ),
            (
                vec![0.0, 1e6],
                Int4Error::ScaleOverflow { value: 1e6 / 15.0 },
            ),
            (
                vec![-70000.0, -69999.0],
                Int4Error::MinimumOverflow { value: -70000.0 },
            ),
        ] {
            let got = encode_group_minmax(&x, &mut block, 16).unwrap_err();
            let got_opt = encode_group_opt_v1(&x, &mut block).unwrap_err();
            // NaN != NaN, so compare the messages.
            assert_eq!(got.to_string(), want.to_string());
            assert_eq!(got_opt.to_string(), want.to_string());
        }
        // 65519 rounds down to 65504 in binary16: accepted.
        encode_group_minmax(&[65519.0, 65519.0], &mut block, 16).unwrap();
        assert_eq!(&block[2..4], &f16::from_f32(65504.0).to_le_bytes());
        // 65520 rounds to infinity: refused.
        assert!(matches!(
            encode_group_minmax(&[65520.0], &mut block, 16),
            Err(Int4Error::MinimumOverflow { .. })
        ));
    }

    #[test]
    fn wrong_geometry_is_an_error_not_a_panic() {
        let mut block = [0u8; 12];
        let mut out = [0f32; 17];
        assert!(encode_group_minmax(&[], &mut block, 16).is_err());
        assert!(encode_group_minmax(&[0.0; 17], &mut block, 16).is_err());
        assert!(encode_group_minmax(&[0.0; 4], &mut block, 12).is_err());
        assert!(encode_group_minmax(&[0.0; 4], &mut block[..11], 16).is_err());
        assert!(encode_group_opt_v1(&[0.0; 4], &mut block[..8]).is_err());
        assert!(decode_block(&block, &mut out, 16).is_err());
        assert!(decode_block(&block, &mut out[..0], 16).is_err());
        assert!(decode_block(&block[..8], &mut out[..8], 16).is_err());
    }

    /// The element-at-a-time reading of SPEC.md §7.4.3, kept as the yardstick for the
    /// split-loop decoders.
    fn decode_by_index(block: &[u8], out: &mut [f32], n: usize) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let m = f16::from_le_bytes([block[2], block[3]]).to_f32();
        for (i, y) in out.iter_mut().enumerate() {
            let byte = block[4 + i % (n / 2)];
            let q = if i < n / 2 { byte & 0x0F } else { byte >> 4 };
            *y = q as f32 * d + m;
        }
    }

    #[test]
    fn split_loops_match_the_element_by_element_reading() {
        // Scales and minimums across subnormals, the largest finite, infinities and NaNs
        // (no encoder writes the last two, but the decoder must follow IEEE rules on them).
        let params: [u16; 10] = [
            0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0xb555, 0x7bff, 0x7c00, 0xfc00, 0x7e01,
        ];
        let mut state = 0x9e37_79b9u32;
        for n in GROUP_SIZES {
            let len = block_bytes(n);
            let rows = 3;
            for &d in &params {
                for &m in &params {
                    let mut src = vec![0u8; rows * len];
                    for block in src.chunks_exact_mut(len) {
                        block[0..2].copy_from_slice(&d.to_le_bytes());
                        block[2..4].copy_from_slice(&m.to_le_bytes());
                        for b in &mut block[4..] {
                            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            *b = (state >> 24) as u8;
                        }
                    }
                    for row_len in [rows * n, rows * n - 1, (rows - 1) * n + 1] {
                        let mut want = vec![0f32; row_len];
                        for (block, out) in src.chunks_exact(len).zip(want.chunks_mut(n)) {
                            decode_by_index(block, out, n);
                        }
                        let mut got = vec![0f32; row_len];
                        match n {
                            8 => decode_row_blocks::<4>(&src, &mut got),
                            16 => decode_row_blocks::<8>(&src, &mut got),
                            _ => decode_row_blocks::<16>(&src, &mut got),
                        }
                        .unwrap();
                        let mut one = vec![0f32; row_len];
                        for (block, out) in src.chunks_exact(len).zip(one.chunks_mut(n)) {
                            decode_block(block, out, n).unwrap();
                        }
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "row n={n} d={d:04x} m={m:04x}");
                        assert_eq!(bits(&one), bits(&want), "block n={n} d={d:04x} m={m:04x}");
                    }
                }
            }
        }
    }

    #[test]
    fn padding_nibbles_are_zero_and_not_decoded() {
        let x = [1.0f32, 4.0, 16.0]; // d = 1, m = 1: exact
        let mut block = [0xFFu8; 8];
        encode_group_minmax(&x, &mut block, 8).unwrap();
        // Elements 0..3 live in the low nibbles of bytes 0..3; everything else is padding.
        assert_eq!(block[4 + 3] & 0x0F, 0);
        assert!(block[4..].iter().all(|b| b >> 4 == 0));
        let mut out = [f32::NAN; 3];
        decode_block(&block, &mut out, 8).unwrap();
        assert_eq!(out, x);
    }

    #[test]
    fn opt_v1_never_worse_than_its_starting_point() {
        let x: Vec<f32> = (0..16)
            .map(|i| ((i * 7919) % 23) as f32 * 0.013 - 0.1)
            .collect();
        let mut plain = [0u8; 12];
        let mut opt = [0u8; 12];
        encode_group_minmax(&x, &mut plain, 16).unwrap();
        encode_group_opt_v1(&x, &mut opt).unwrap();
        let err_of = |block: &[u8]| {
            let mut out = [0f32; 16];
            decode_block(block, &mut out, 16).unwrap();
            x.iter()
                .zip(&out)
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum::<f64>()
        };
        assert!(err_of(&opt) <= err_of(&plain));
    }

    #[test]
    fn one_element_group_stores_its_value_in_m() {
        let mut block = [0u8; 12];
        encode_group_opt_v1(&[0.1], &mut block).unwrap();
        assert_eq!(&block[0..2], &[0, 0], "d = 0");
        assert_eq!(&block[2..4], &f16::from_f32(0.1).to_le_bytes());
        assert!(block[4..].iter().all(|&b| b == 0));
    }
}
