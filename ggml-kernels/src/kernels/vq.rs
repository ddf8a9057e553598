//! The vector-quantization layout (`vq8_r2x256_g32_v1`, SPEC.md §7.10): groups of 32 weights,
//! a scale code `s` (`hct_format::codec::vq::scale`), then for each of the 4 vectors its
//! first-stage and residual index. Element `k` of a vector is `d · (C1[i][k] + C2[j][k])` in
//! f32 (the integer sum, then one multiply), the codebooks being `hct_format`'s fixed tables.
//!
//! Portable kernels, plus AVX2 ones ([`avx2`]) that gather the codebook rows into vector
//! registers. `vec_dot` with Q8_0 activations has one unit per group (one
//! activation block, scale `dy`): with `isum = Σ v·a` exact in i32 (|v| ≤ 255, |isum| ≤
//! 32·255·128 < 2^24), the term is `(dx·dy)·isum` in f32, added to eight lanes in unit order.

use hct_format::codec::vq::{scale, CODEBOOK_1, CODEBOOK_2, DIM, GROUP};

use super::portable::{accumulate, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

const FORMAT: WeightFormat = WeightFormat::Vq8R2x256G32;
const BLOCK_BYTES: usize = FORMAT.block_bytes();
const Q8_0_BLOCK_BYTES: usize = FORMAT.activation().block_bytes();

/// The integer value of element `k` of vector `(i, j)`.
#[inline(always)]
fn value(i: u8, j: u8, k: usize) -> i32 {
    CODEBOOK_1[i as usize][k] as i32 + CODEBOOK_2[j as usize][k] as i32
}

/// Decodes one row of groups into `y` (`y.len()` a multiple of 64).
pub fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(FORMAT, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(BLOCK_BYTES).zip(y.chunks_exact_mut(GROUP)) {
        let d = scale(block[0]);
        for (v, o) in out.chunks_exact_mut(DIM).enumerate() {
            let (i, j) = (block[1 + 2 * v], block[2 + 2 * v]);
            for (k, ok) in o.iter_mut().enumerate() {
                *ok = d * value(i, j, k) as f32;
            }
        }
    }
    Ok(())
}

/// Dot product of a row of groups with a Q8_0 activation row of `n` elements.
pub fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(FORMAT, n, x.len(), y.len())?;
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        let xb = &x[u * BLOCK_BYTES..(u + 1) * BLOCK_BYTES];
        let yb = &y[u * Q8_0_BLOCK_BYTES..(u + 1) * Q8_0_BLOCK_BYTES];
        let mut isum = 0i32;
        for v in 0..QK / DIM {
            let (i, j) = (xb[1 + 2 * v], xb[2 + 2 * v]);
            for k in 0..DIM {
                isum += value(i, j, k) * yb[2 + v * DIM + k] as i8 as i32;
            }
        }
        (scale(xb[0]) * read_f16(yb, 0)) * isum as f32
    }))
}

/// AVX2 kernels, bit for bit the portable ones: the element values and `isum` are exact
/// integers whatever the order they are summed in (|v| ≤ 255 in 16-bit lanes, `madd` pairs
/// below 2^17), and the f32 operations are the reference's, in its order.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use core::arch::x86_64::*;

    use super::*;
    use crate::kernels::portable::reduce_lanes;

    /// A codebook row's 8 bytes as one i64 lane.
    #[inline(always)]
    fn row(book: &[[i8; DIM]; 256], index: u8) -> i64 {
        i64::from_le_bytes(book[index as usize].map(|v| v as u8))
    }

    /// The 32 integer values of one group, vectors 0 and 1 then 2 and 3, as i16.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn group_values(xb: &[u8]) -> (__m256i, __m256i) {
        let first = _mm256_setr_epi64x(
            row(&CODEBOOK_1, xb[1]),
            row(&CODEBOOK_1, xb[3]),
            row(&CODEBOOK_1, xb[5]),
            row(&CODEBOOK_1, xb[7]),
        );
        let residual = _mm256_setr_epi64x(
            row(&CODEBOOK_2, xb[2]),
            row(&CODEBOOK_2, xb[4]),
            row(&CODEBOOK_2, xb[6]),
            row(&CODEBOOK_2, xb[8]),
        );
        let first_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(first));
        let first_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(first, 1));
        let residual_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(residual));
        let residual_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(residual, 1));
        (
            _mm256_add_epi16(first_lo, residual_lo),
            _mm256_add_epi16(first_hi, residual_hi),
        )
    }

    /// Decodes one row of groups into `y`, as [`super::to_float`].
    ///
    /// # Safety
    /// The CPU must support AVX2 (a [`crate::platform::Backend`] of this ISA proves it).
    #[target_feature(enable = "avx2")]
    pub unsafe fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        check_to_float(FORMAT, x.len(), y.len())?;
        for (block, out) in x.chunks_exact(BLOCK_BYTES).zip(y.chunks_exact_mut(GROUP)) {
            let d = _mm256_set1_ps(scale(block[0]));
            // SAFETY: AVX2 is enabled here.
            let (v01, v23) = unsafe { group_values(block) };
            for (q, v) in [
                _mm256_castsi256_si128(v01),
                _mm256_extracti128_si256(v01, 1),
                _mm256_castsi256_si128(v23),
                _mm256_extracti128_si256(v23, 1),
            ]
            .into_iter()
            .enumerate()
            {
                let f = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(v));
                // SAFETY: `out` is 32 floats; store q writes 8 of them from 8·q.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(q * DIM), _mm256_mul_ps(d, f)) };
            }
        }
        Ok(())
    }

    /// Dot product with a Q8_0 activation row, as [`super::vec_dot_q8_0`].
    ///
    /// # Safety
    /// The CPU must support AVX2 (a [`crate::platform::Backend`] of this ISA proves it).
    #[target_feature(enable = "avx2")]
    pub unsafe fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        let units = check_vec_dot(FORMAT, n, x.len(), y.len())?;
        let mut lanes = [0.0f32; LANES];
        for u in 0..units {
            let xb = &x[u * BLOCK_BYTES..(u + 1) * BLOCK_BYTES];
            let yb = &y[u * Q8_0_BLOCK_BYTES..(u + 1) * Q8_0_BLOCK_BYTES];
            // SAFETY: AVX2 is enabled here; yb[2..] holds the block's 32 quants.
            let ((v01, v23), a) = unsafe {
                (
                    group_values(xb),
                    _mm256_loadu_si256(yb[2..2 + QK].as_ptr().cast()),
                )
            };
            let a01 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(a));
            let a23 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(a, 1));
            let p = _mm256_add_epi32(_mm256_madd_epi16(v01, a01), _mm256_madd_epi16(v23, a23));
            let q = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            let q = _mm_add_epi32(q, _mm_unpackhi_epi64(q, q));
            let isum = _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 1)));
            lanes[u % LANES] += (scale(xb[0]) * read_f16(yb, 0)) * isum as f32;
        }
        Ok(reduce_lanes(&lanes))
    }
}
