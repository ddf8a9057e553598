//! f32 rows → ggml activation blocks (Q8_0, Q8_1), with the arithmetic of ggml's reference
//! quantizers (`quantize_row_q8_0_ref`, `quantize_row_q8_1_ref` in `ggml-quants.c`), so test
//! and benchmark activations are the ones ggml's reference would make.
//!
//! Per 32-element block: `amax` = the largest |x| (a NaN is replaced by the next element,
//! as ggml's `MAX(a, b) = a > b ? a : b` does); `d = amax / 127`; `id = 1 / d`, or 0 when
//! `d == 0`; `q_j = round(x_j · id)`, rounding half away from zero; `d` stored as fp16
//! (round to nearest even). Q8_1 also stores `s = fp16(Σq · d)` with the *unrounded* f32 `d`.
//!
//! ggml's CPU backend quantizes activations with its own SIMD `quantize_row_q8_0`, which
//! rounds half to even and scales by `127 / amax`: its blocks can differ from these in the
//! last bit of a quant. Inside a ggml runtime it is ggml's quantizer that feeds our
//! `vec_dot`, so kernels never assume these exact blocks.
//!
//! Only finite inputs are meaningful (as in ggml); a NaN or an infinity gives some block,
//! never a panic.

use crate::fp16::f32_to_f16_bits;
use crate::layout::{ActivationFormat, KernelError, Q8_0_BLOCK_BYTES, Q8_1_BLOCK_BYTES, QK};

/// Quantizes `x` (length a multiple of 32) into `y` (exactly the Q8_0 row size).
pub fn quantize_row_q8_0(x: &[f32], y: &mut [u8]) -> Result<(), KernelError> {
    check(ActivationFormat::Q8_0, x.len(), y.len())?;
    for (xs, block) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_0_BLOCK_BYTES)) {
        let (d, id) = scale(xs);
        block[..2].copy_from_slice(&f32_to_f16_bits(d).to_le_bytes());
        for (q, &v) in block[2..].iter_mut().zip(xs) {
            *q = round_to_i8(v * id) as u8;
        }
    }
    Ok(())
}

/// Quantizes `x` (length a multiple of 32) into `y` (exactly the Q8_1 row size).
pub fn quantize_row_q8_1(x: &[f32], y: &mut [u8]) -> Result<(), KernelError> {
    check(ActivationFormat::Q8_1, x.len(), y.len())?;
    for (xs, block) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_1_BLOCK_BYTES)) {
        let (d, id) = scale(xs);
        let mut sum = 0i32;
        for (q, &v) in block[4..].iter_mut().zip(xs) {
            let qi = round_to_i8(v * id);
            sum += qi as i32;
            *q = qi as u8;
        }
        block[..2].copy_from_slice(&f32_to_f16_bits(d).to_le_bytes());
        block[2..4].copy_from_slice(&f32_to_f16_bits(sum as f32 * d).to_le_bytes());
    }
    Ok(())
}

fn check(format: ActivationFormat, x_len: usize, y_len: usize) -> Result<(), KernelError> {
    let needed = format.row_bytes(x_len)?;
    if y_len != needed {
        return Err(KernelError::ActivationBuffer {
            format: format.name(),
            len: x_len,
            needed,
            actual: y_len,
        });
    }
    Ok(())
}

/// (d, 1/d) of one block, as ggml's reference computes them.
fn scale(xs: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    for &v in xs {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    (d, id)
}

/// `roundf` then C's float → int8 conversion; `as` saturates where C would be undefined,
/// which only non-finite input reaches.
fn round_to_i8(v: f32) -> i8 {
    v.round() as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fp16::f16_bits_to_f32;

    #[test]
    fn q8_0_block_by_hand() {
        // amax 127 gives d = id = 1 exactly, so each quant is round(x) as ggml's roundf does:
        // halves away from zero (2.5 → 3, not the even 2).
        let mut x = [0.0f32; 32];
        x[..6].copy_from_slice(&[127.0, -63.5, 0.5, -0.49, 2.5, -126.6]);
        let mut y = [0u8; 34];
        quantize_row_q8_0(&x, &mut y).unwrap();
        assert_eq!(u16::from_le_bytes([y[0], y[1]]), 0x3C00, "d = 1.0");
        let q: Vec<i8> = y[2..8].iter().map(|&b| b as i8).collect();
        assert_eq!(q, [127, -64, 1, 0, 3, -127]);
        assert!(y[8..].iter().all(|&q| q == 0));
        assert_eq!(f16_bits_to_f32(0x3C00), 1.0);
    }

    #[test]
    fn q8_1_stores_the_sum_times_the_unrounded_scale() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37) % 19) as f32 - 9.3).collect();
        let mut y = vec![0u8; 72];
        quantize_row_q8_1(&x, &mut y).unwrap();
        let mut q8_0 = vec![0u8; 68];
        quantize_row_q8_0(&x, &mut q8_0).unwrap();
        for b in 0..2 {
            let (blk1, blk0) = (&y[b * 36..(b + 1) * 36], &q8_0[b * 34..(b + 1) * 34]);
            assert_eq!(blk1[..2], blk0[..2], "same d");
            assert_eq!(blk1[4..], blk0[2..], "same quants");
            let xs = &x[b * 32..(b + 1) * 32];
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let sum: i32 = blk1[4..].iter().map(|&q| q as i8 as i32).sum();
            let s = u16::from_le_bytes([blk1[2], blk1[3]]);
            assert_eq!(s, f32_to_f16_bits(sum as f32 * (amax / 127.0)));
        }
    }

    #[test]
    fn zero_block_has_zero_scale_and_quants() {
        let x = [0.0f32; 32];
        let mut y = [0xAAu8; 36];
        quantize_row_q8_1(&x, &mut y).unwrap();
        assert!(y.iter().all(|&b| b == 0));
    }

    #[test]
    fn refuses_partial_blocks_and_wrong_buffers() {
        let mut y = [0u8; 34];
        assert!(matches!(
            quantize_row_q8_0(&[0.0; 31], &mut y),
            Err(KernelError::RowLength { .. })
        ));
        assert!(matches!(
            quantize_row_q8_0(&[0.0; 32], &mut y[..33]),
            Err(KernelError::ActivationBuffer { .. })
        ));
    }

    #[test]
    fn non_finite_input_does_not_panic() {
        let mut x = [1.0f32; 32];
        x[3] = f32::NAN;
        x[7] = f32::INFINITY;
        let mut y = [0u8; 36];
        quantize_row_q8_1(&x, &mut y).unwrap();
        quantize_row_q8_0(&x, &mut y[..34]).unwrap();
    }
}
