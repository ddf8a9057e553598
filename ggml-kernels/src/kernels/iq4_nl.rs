//! ggml IQ4_NL (`ggml_iq4_nl`): blocks of 32 elements, an fp16 scale `d` and 16 bytes of
//! 4-bit indices into ggml's fixed non-uniform codebook (`hct-format`'s `IQ4_CODEBOOK`);
//! element `j < 16` in the low nibble of byte `j`, element `j + 16` in its high nibble.
//!
//! Portable kernels only: every ISA runs these until it overrides them. They follow the
//! reference's rules ([`super::portable`]): `to_float` is `d · v` in f32, and `vec_dot` with
//! Q8_0 activations has one unit per block with the term `(dx·dy) · isum`, `isum = Σ v_j·a_j`
//! exact in i32 (|isum| ≤ 32·127·128 < 2^24), added to eight lanes in unit order.

use hct_format::codec::ggml::IQ4_CODEBOOK;

use super::portable::{accumulate, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

const FORMAT: WeightFormat = WeightFormat::Iq4Nl;
const BLOCK_BYTES: usize = FORMAT.block_bytes();
const Q8_0_BLOCK_BYTES: usize = FORMAT.activation().block_bytes();

/// Decodes one row of IQ4_NL blocks into `y` (`y.len()` a multiple of 32).
pub fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(FORMAT, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = read_f16(block, 0);
        for (j, &byte) in block[2..].iter().enumerate() {
            out[j] = d * IQ4_CODEBOOK[(byte & 0x0F) as usize] as f32;
            out[j + QK / 2] = d * IQ4_CODEBOOK[(byte >> 4) as usize] as f32;
        }
    }
    Ok(())
}

/// Dot product of an IQ4_NL row with a Q8_0 activation row of `n` elements.
pub fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(FORMAT, n, x.len(), y.len())?;
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        let xb = &x[u * BLOCK_BYTES..(u + 1) * BLOCK_BYTES];
        let yb = &y[u * Q8_0_BLOCK_BYTES..(u + 1) * Q8_0_BLOCK_BYTES];
        let mut isum = 0i32;
        for (j, &byte) in xb[2..].iter().enumerate() {
            isum += IQ4_CODEBOOK[(byte & 0x0F) as usize] as i32 * yb[2 + j] as i8 as i32;
            isum += IQ4_CODEBOOK[(byte >> 4) as usize] as i32 * yb[2 + QK / 2 + j] as i8 as i32;
        }
        (read_f16(xb, 0) * read_f16(yb, 0)) * isum as f32
    }))
}
