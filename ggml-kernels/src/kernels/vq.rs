//! The vector-quantization layout (`vq8_r2x256_g32_v1`, SPEC.md §7.10): groups of 32 weights,
//! a scale code `s` (`hct_format::codec::vq::scale`), then for each of the 4 vectors its
//! first-stage and residual index. Element `k` of a vector is `d · (C1[i][k] + C2[j][k])` in
//! f32 (the integer sum, then one multiply), the codebooks being `hct_format`'s fixed tables.
//!
//! Portable kernels only. `vec_dot` with Q8_0 activations has one unit per group (one
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
