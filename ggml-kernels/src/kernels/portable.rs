//! The scalar reference. Its arithmetic defines every kernel result: the SIMD backends must
//! reproduce it bit for bit, and the shared test harness holds them to that.
//!
//! # `to_float`
//! Elementwise, in f32: Q4_0 `(q − 8) · d`, Q8_0 `q · d`, Q4_1 and int4 `q · d + m` (multiply,
//! round, add, round). Nothing depends on order, so any vector width gives the same bits.
//! (`q·d` is in fact exact in f32, a 4- or 8-bit integer times an 11-bit significand, so
//! `q·d + m` rounds once and a fused multiply-add would give the same bits; the dot below
//! has products that are not exact, where the rule matters.)
//!
//! # `vec_dot`: the one accumulation order
//! A row of `n` elements (`n % 32 == 0`) is cut into **units**, one per weight block: a
//! 32-element block for the ggml types and g32, a group of 16 or 8 for g16 and g8. Unit `u`
//! covers elements `u·N .. u·N + N` and meets the activation block `b = u·N / 32`, with scale
//! `dy` (and, for Q8_1, `sy`). Integer sums over the unit are exact in i32:
//! `isum = Σ q_j·a_j` (for Q4_0 over `q_j − 8`) and `asum = Σ a_j`. The unit's term is, in f32:
//!
//! | weight · activation | term |
//! |---|---|
//! | Q4_0 · Q8_0 | `(dx·dy) · isum` |
//! | Q8_0 · Q8_0 | `(dx·dy) · isum` |
//! | Q4_1 · Q8_1 | `(dx·dy) · isum + mx·sy` |
//! | int4 gN · Q8_0 | `(dx·dy) · isum + (mx·dy) · asum` |
//!
//! each product and sum rounded to f32 in the order the parentheses show. Terms go to
//! eight lanes, `lane[u mod 8] += term` (lanes start at +0.0, units in increasing order),
//! and the result is `((lane0 + lane4) + (lane2 + lane6)) + ((lane1 + lane5) + (lane3 + lane7))`.
//!
//! Eight lanes let AVX2 keep one lane per vector element and NEON two 4-lane vectors, with
//! no reordering anywhere; they also shorten each rounding chain eightfold compared with a
//! single running sum. `dx·dy` is exact (two 11-bit significands) and `isum`/`asum` convert
//! exactly (|isum| ≤ 32·128·128 < 2^24).

use crate::fp16::read_f16;
use crate::layout::{
    check_to_float, check_vec_dot, int4_block_bytes, KernelError, WeightFormat, Q4_0_BLOCK_BYTES,
    Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, Q8_1_BLOCK_BYTES, QK,
};

/// Number of partial sums a dot product keeps (see the module documentation).
pub const LANES: usize = 8;

/// Decodes one row of Q4_0 blocks into `y` (`y.len()` a multiple of 32).
pub fn to_float_q4_0(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q4_0, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(Q4_0_BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        decode_q4_0_block(block, out);
    }
    Ok(())
}

/// Decodes one row of Q4_1 blocks into `y` (`y.len()` a multiple of 32).
pub fn to_float_q4_1(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q4_1, x.len(), y.len())?;
    for (block, out) in x.chunks(Q4_1_BLOCK_BYTES).zip(y.chunks_mut(QK)) {
        decode_int4_group::<32>(block, out);
    }
    Ok(())
}

/// Decodes one row of Q8_0 blocks into `y` (`y.len()` a multiple of 32).
pub fn to_float_q8_0(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q8_0, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(Q8_0_BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        decode_q8_0_block(block, out);
    }
    Ok(())
}

/// Decodes one `int4_g8_fp16_v1` row of `y.len()` elements (any length).
pub fn to_float_int4_g8(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<8>(WeightFormat::Int4G8, x, y)
}

/// Decodes one `int4_g16_fp16_v1` (and `int4_opt_v1`) row of `y.len()` elements.
pub fn to_float_int4_g16(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<16>(WeightFormat::Int4G16, x, y)
}

/// Decodes one `int4_g32_fp16_v1` row of `y.len()` elements.
pub fn to_float_int4_g32(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<32>(WeightFormat::Int4G32, x, y)
}

/// Dot product of a Q4_0 row with a Q8_0 activation row of `n` elements.
pub fn vec_dot_q4_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(WeightFormat::Q4_0, n, x.len(), y.len())?;
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        term_q4_0_q8_0(x, y, u)
    }))
}

/// Dot product of a Q8_0 row with a Q8_0 activation row of `n` elements.
pub fn vec_dot_q8_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(WeightFormat::Q8_0, n, x.len(), y.len())?;
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        term_q8_0_q8_0(x, y, u)
    }))
}

/// Dot product of a Q4_1 row with a Q8_1 activation row of `n` elements.
pub fn vec_dot_q4_1_q8_1(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(WeightFormat::Q4_1, n, x.len(), y.len())?;
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        term_q4_1_q8_1(x, y, u)
    }))
}

/// Dot product of an `int4_g8_fp16_v1` row with a Q8_0 activation row of `n` elements.
pub fn vec_dot_int4_g8_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot_int4::<8>(WeightFormat::Int4G8, n, x, y)
}

/// Dot product of an `int4_g16_fp16_v1` (or `int4_opt_v1`) row with a Q8_0 row.
pub fn vec_dot_int4_g16_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot_int4::<16>(WeightFormat::Int4G16, n, x, y)
}

/// Dot product of an `int4_g32_fp16_v1` row with a Q8_0 activation row of `n` elements.
pub fn vec_dot_int4_g32_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot_int4::<32>(WeightFormat::Int4G32, n, x, y)
}

/// The final reduction of the eight lanes, in the order the module documentation fixes.
#[inline(always)]
pub fn reduce_lanes(lanes: &[f32; LANES]) -> f32 {
    ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
}

// ---------------------------------------------------------------------------------------
// Per-block pieces of the reference.

/// Adds the terms of units `first..units` to `lanes` (unit `u` to lane `u mod 8`) and
/// reduces.
#[inline(always)]
pub(crate) fn accumulate(
    first: usize,
    units: usize,
    mut lanes: [f32; LANES],
    term: impl Fn(usize) -> f32,
) -> f32 {
    for u in first..units {
        lanes[u % LANES] += term(u);
    }
    reduce_lanes(&lanes)
}

/// Decodes one Q4_0 block into 32 floats.
#[inline(always)]
pub(crate) fn decode_q4_0_block(block: &[u8], out: &mut [f32]) {
    let d = read_f16(block, 0);
    let qs = &block[2..2 + QK / 2];
    for (j, &byte) in qs.iter().enumerate() {
        out[j] = ((byte & 0x0F) as i32 - 8) as f32 * d;
        out[j + QK / 2] = ((byte >> 4) as i32 - 8) as f32 * d;
    }
}

/// Decodes one Q8_0 block into 32 floats.
#[inline(always)]
pub(crate) fn decode_q8_0_block(block: &[u8], out: &mut [f32]) {
    let d = read_f16(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..2 + QK]) {
        *o = (q as i8) as f32 * d;
    }
}

/// Decodes the first `out.len() <= N` elements of one int4 block of group length `N`
/// (Q4_1 is N = 32). A partial group decodes only its real elements.
#[inline(always)]
pub(crate) fn decode_int4_group<const N: usize>(block: &[u8], out: &mut [f32]) {
    let d = read_f16(block, 0);
    let m = read_f16(block, 2);
    let qs = &block[4..4 + N / 2];
    for (j, o) in out.iter_mut().enumerate() {
        let q = if j < N / 2 {
            qs[j] & 0x0F
        } else {
            qs[j - N / 2] >> 4
        };
        *o = q as f32 * d + m;
    }
}

fn to_float_int4<const N: usize>(
    format: WeightFormat,
    x: &[u8],
    y: &mut [f32],
) -> Result<(), KernelError> {
    check_to_float(format, x.len(), y.len())?;
    for (block, out) in x.chunks(int4_block_bytes(N)).zip(y.chunks_mut(N)) {
        decode_int4_group::<N>(block, out);
    }
    Ok(())
}

fn vec_dot_int4<const N: usize>(
    format: WeightFormat,
    n: usize,
    x: &[u8],
    y: &[u8],
) -> Result<f32, KernelError> {
    let units = check_vec_dot(format, n, x.len(), y.len())?;
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        term_int4_q8_0::<N>(x, y, u)
    }))
}

#[inline(always)]
fn activation_i8(y: &[u8], at: usize) -> i32 {
    y[at] as i8 as i32
}

/// Term of unit `u` of a Q4_0 · Q8_0 dot.
#[inline(always)]
pub(crate) fn term_q4_0_q8_0(x: &[u8], y: &[u8], u: usize) -> f32 {
    let xb = &x[u * Q4_0_BLOCK_BYTES..(u + 1) * Q4_0_BLOCK_BYTES];
    let yb = &y[u * Q8_0_BLOCK_BYTES..(u + 1) * Q8_0_BLOCK_BYTES];
    let mut isum = 0i32;
    for j in 0..QK / 2 {
        let byte = xb[2 + j];
        isum += ((byte & 0x0F) as i32 - 8) * activation_i8(yb, 2 + j);
        isum += ((byte >> 4) as i32 - 8) * activation_i8(yb, 2 + QK / 2 + j);
    }
    (read_f16(xb, 0) * read_f16(yb, 0)) * isum as f32
}

/// Term of unit `u` of a Q8_0 · Q8_0 dot.
#[inline(always)]
pub(crate) fn term_q8_0_q8_0(x: &[u8], y: &[u8], u: usize) -> f32 {
    let xb = &x[u * Q8_0_BLOCK_BYTES..(u + 1) * Q8_0_BLOCK_BYTES];
    let yb = &y[u * Q8_0_BLOCK_BYTES..(u + 1) * Q8_0_BLOCK_BYTES];
    let mut isum = 0i32;
    for j in 2..2 + QK {
        isum += activation_i8(xb, j) * activation_i8(yb, j);
    }
    (read_f16(xb, 0) * read_f16(yb, 0)) * isum as f32
}

/// Term of unit `u` of a Q4_1 · Q8_1 dot.
#[inline(always)]
pub(crate) fn term_q4_1_q8_1(x: &[u8], y: &[u8], u: usize) -> f32 {
    let xb = &x[u * Q4_1_BLOCK_BYTES..(u + 1) * Q4_1_BLOCK_BYTES];
    let yb = &y[u * Q8_1_BLOCK_BYTES..(u + 1) * Q8_1_BLOCK_BYTES];
    let mut isum = 0i32;
    for j in 0..QK / 2 {
        let byte = xb[4 + j];
        isum += (byte & 0x0F) as i32 * activation_i8(yb, 4 + j);
        isum += (byte >> 4) as i32 * activation_i8(yb, 4 + QK / 2 + j);
    }
    let (dx, mx) = (read_f16(xb, 0), read_f16(xb, 2));
    let (dy, sy) = (read_f16(yb, 0), read_f16(yb, 2));
    (dx * dy) * isum as f32 + mx * sy
}

/// Term of unit (group) `u` of an int4 gN · Q8_0 dot.
#[inline(always)]
pub(crate) fn term_int4_q8_0<const N: usize>(x: &[u8], y: &[u8], u: usize) -> f32 {
    let bytes = int4_block_bytes(N);
    let xb = &x[u * bytes..(u + 1) * bytes];
    let first = u * N;
    let yb = &y[(first / QK) * Q8_0_BLOCK_BYTES..(first / QK + 1) * Q8_0_BLOCK_BYTES];
    let a = &yb[2 + first % QK..2 + first % QK + N];
    let (mut isum, mut asum) = (0i32, 0i32);
    for j in 0..N / 2 {
        let byte = xb[4 + j];
        let (a_lo, a_hi) = (activation_i8(a, j), activation_i8(a, j + N / 2));
        isum += (byte & 0x0F) as i32 * a_lo + (byte >> 4) as i32 * a_hi;
        asum += a_lo + a_hi;
    }
    let (dx, mx, dy) = (read_f16(xb, 0), read_f16(xb, 2), read_f16(yb, 0));
    (dx * dy) * isum as f32 + (mx * dy) * asum as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness;
    use crate::platform::Backend;

    /// The reference checked against the layout facts with hand-computed values, so the
    /// harness's "SIMD equals scalar" compares against something independently right.
    #[test]
    fn decodes_hand_built_blocks() {
        // d = 0.5 (0x3800), m = -1.0 (0xBC00); byte j = (15 - j) << 4 | j.
        let mut block = vec![0x00, 0x38, 0x00, 0xBC];
        block.extend((0u8..16).map(|j| ((15 - j) << 4) | j));
        let mut y = [0.0f32; 32];
        to_float_q4_1(&block, &mut y).unwrap();
        for j in 0..16 {
            assert_eq!(y[j], j as f32 * 0.5 - 1.0);
            assert_eq!(y[j + 16], (15 - j) as f32 * 0.5 - 1.0);
        }
        let mut g32 = [0.0f32; 32];
        to_float_int4_g32(&block, &mut g32).unwrap();
        assert_eq!(y, g32, "g32 is Q4_1's layout and math");

        // The same 20 bytes read as two g16 groups: only the first group's scale is real
        // here, the second block starts at byte 12.
        let mut g16 = [0.0f32; 16];
        to_float_int4_g16(&block[..12], &mut g16).unwrap();
        for j in 0..8 {
            assert_eq!(g16[j], j as f32 * 0.5 - 1.0);
            assert_eq!(g16[j + 8], (15 - j) as f32 * 0.5 - 1.0);
        }

        // Q4_0: d = -2.0 (0xC000); value (q - 8) · d.
        let mut q4_0 = vec![0x00, 0xC0];
        q4_0.extend((0u8..16).map(|j| ((15 - j) << 4) | j));
        let mut y = [0.0f32; 32];
        to_float_q4_0(&q4_0, &mut y).unwrap();
        assert_eq!(y[0], 16.0);
        assert_eq!(y[15], -14.0);
        assert_eq!(y[16], -14.0);
        assert_eq!(y[31], 16.0);

        // Q8_0: d = 0.25 (0x3400); qs = -128, -1, 0, 1, 127, …
        let mut q8 = vec![0x00, 0x34, 0x80, 0xFF, 0x00, 0x01, 0x7F];
        q8.resize(34, 0);
        let mut y = [0.0f32; 32];
        to_float_q8_0(&q8, &mut y).unwrap();
        assert_eq!(&y[..5], &[-32.0, -0.25, 0.0, 0.25, 31.75]);
    }

    #[test]
    fn partial_group_decodes_only_real_elements() {
        // g8, row of 11: one full group and a partial one of 3 elements.
        let blocks = [
            0x00, 0x3C, 0x00, 0x00, 0x10, 0x32, 0x54, 0x76, // d = 1, m = 0
            0x00, 0x40, 0x00, 0x3C, 0xA9, 0x0B, 0x00, 0x00, // d = 2, m = 1
        ];
        let mut y = [f32::NAN; 11];
        to_float_int4_g8(&blocks, &mut y).unwrap();
        assert_eq!(y, [0., 2., 4., 6., 1., 3., 5., 7., 19., 23., 1.]);
    }

    #[test]
    fn dot_of_hand_built_blocks() {
        // int4 g8 · Q8_0 over one 32-block: four groups, q = 1 everywhere, d = 1, m = g.
        let mut x = Vec::new();
        for g in 0..4u16 {
            let m = crate::fp16::f32_to_f16_bits(g as f32);
            x.extend([0x00, 0x3C]);
            x.extend(m.to_le_bytes());
            x.extend([0x11; 4]);
        }
        // Activations: d = 0.5, a_j = j - 16.
        let mut y = vec![0x00, 0x38];
        y.extend((0..32).map(|j: i32| (j - 16) as i8 as u8));
        // Σ_j (1 + g(j)) · (j - 16) · 0.5 with g(j) = j / 8.
        let expected: f32 = (0..32)
            .map(|j| (1 + j / 8) as f32 * (j - 16) as f32 * 0.5)
            .sum();
        assert_eq!(vec_dot_int4_g8_q8_0(32, &x, &y), Ok(expected));
    }

    /// Pins the documented order (unit u → lane u mod 8, then the fixed tree) with terms
    /// whose f32 sum depends on the order: 2^24 absorbs a lone 1 (ties to even) but not 2.
    #[test]
    fn accumulation_order_is_the_documented_one() {
        let big = 16_777_216.0f32;
        let term = |u: usize| match u {
            0 => big,
            4 => -big,
            10 => 0.0,
            _ => 1.0,
        };
        let mut lanes = [0.0f32; LANES];
        for u in 0..13 {
            lanes[u % LANES] += term(u);
        }
        // Lane 0 absorbed unit 8's 1; lane 4 kept unit 12's.
        assert_eq!(lanes, [big, 2.0, 1.0, 2.0, 1.0 - big, 1.0, 1.0, 1.0]);
        // ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) = (1 + 2) + (3 + 3).
        assert_eq!(accumulate(0, 13, [0.0; LANES], term), 9.0);
        // Pairing l0 with l2 first loses lane 2's 1; a single running sum loses more.
        let other_tree = ((lanes[0] + lanes[2]) + (lanes[4] + lanes[6]))
            + ((lanes[1] + lanes[3]) + (lanes[5] + lanes[7]));
        assert_eq!(other_tree, 8.0);
        assert_eq!((0..13).fold(0.0f32, |s, u| s + term(u)), 7.0);
    }

    #[test]
    fn scalar_matches_itself_through_the_harness() {
        harness::check_backend(Backend::scalar());
    }

    #[test]
    fn scalar_dot_matches_f32_math_on_decoded_rows() {
        harness::check_reference_against_decoded_math();
    }
}
