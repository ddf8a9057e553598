//! f32 rows → ggml activation blocks (Q8_0, Q8_1), with the arithmetic of ggml's reference
//! quantizers (`quantize_row_q8_0_ref`, `quantize_row_q8_1_ref` in `ggml-quants.c`), so test
//! and benchmark activations are the ones ggml's reference would make.
//!
//! The arithmetic is `hct-format`'s reference encoder of `ggml_q8_0` (SPEC.md §7.3, checked
//! bit for bit against ggml's own C code), called here rather than restated: per 32-element
//! block `d = amax / 127`, `q_j = round(x_j / d)` half away from zero, `d` stored as fp16.
//! Q8_1 adds `s = fp16(Σq · d)` with the *unrounded* f32 `d`, as ggml's reference does.
//!
//! ggml's CPU backend quantizes activations with its own SIMD `quantize_row_q8_0`, which
//! rounds half to even and scales by `127 / amax`: its blocks can differ from these in the
//! last bit of a quant. Inside a ggml runtime it is ggml's quantizer that feeds our
//! `vec_dot`, so kernels never assume these exact blocks.
//!
//! Only finite inputs are meaningful (as in ggml); a NaN or an infinity gives some block,
//! never a panic.

use hct_format::codec::ggml::quantize_block_q8_0;

use crate::fp16::f32_to_f16_bits;
use crate::layout::{ActivationFormat, KernelError, Q8_0_BLOCK_BYTES, Q8_1_BLOCK_BYTES, QK};

/// Quantizes `x` (length a multiple of 32) into `y` (exactly the Q8_0 row size).
pub fn quantize_row_q8_0(x: &[f32], y: &mut [u8]) -> Result<(), KernelError> {
    check(ActivationFormat::Q8_0, x.len(), y.len())?;
    for (xs, block) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_0_BLOCK_BYTES)) {
        quantize_block_q8_0(xs, block);
    }
    Ok(())
}

/// Quantizes `x` (length a multiple of 32) into `y` (exactly the Q8_1 row size).
pub fn quantize_row_q8_1(x: &[f32], y: &mut [u8]) -> Result<(), KernelError> {
    check(ActivationFormat::Q8_1, x.len(), y.len())?;
    for (xs, block) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_1_BLOCK_BYTES)) {
        // A Q8_1 block is a Q8_0 block with `s` inserted after `d`.
        let mut q8_0 = [0u8; Q8_0_BLOCK_BYTES];
        let d = quantize_block_q8_0(xs, &mut q8_0);
        let sum: i32 = q8_0[2..].iter().map(|&q| q as i8 as i32).sum();
        block[..2].copy_from_slice(&q8_0[..2]);
        block[2..4].copy_from_slice(&f32_to_f16_bits(sum as f32 * d).to_le_bytes());
        block[4..].copy_from_slice(&q8_0[2..]);
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
