//! SeedLM layouts (`seedlm_c8p3_sK_v1`, SPEC.md §7.9): blocks of 32 weights, four sub-blocks
//! of 8 packed as a little-endian bit stream of (seed: K bits, e: 4, c0, c1, c2: 4 each).
//! Sub-block element `i` is `s_i · 2^-(e+8)` with `s_i = Σ_p c_p·U_ip` exact in i32, `U` the
//! 8×3 basis the LFSR generates from the seed (`hct_format::codec::seedlm::basis`).
//!
//! Portable kernels only. The bases of every seed a K-bit field can hold are generated once
//! per K into a table (24 bytes a seed: 6 KiB for K = 8, 1.5 MiB for K = 16), so decoding
//! costs a lookup rather than 24 LFSR steps per sub-block.
//!
//! `to_float` is exact (an integer below 2^12 times a power of two), so any implementation
//! gives the same bits. `vec_dot` with Q8_0 activations has one unit per block (one
//! activation block, scale `dy`): with `isum_k = Σ_i s_i·a_i` exact in i32 (|isum_k| ≤
//! 8·3072·128 < 2^24) and `t_k = isum_k · 2^-(e_k+8)` exact in f32, the unit's term is
//! `(((t_0 + t_1) + t_2) + t_3) · dy` in f32, added to eight lanes in unit order.

use std::sync::OnceLock;

use hct_format::codec::seedlm::{basis, exp_scale, unpack_block, SubBlock, BASIS, SUB};

use super::portable::{accumulate, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

type Basis = [[i8; BASIS]; SUB];

/// The basis of every seed a `seed_bits`-bit field can hold, index = seed.
fn bases(seed_bits: u32) -> &'static [Basis] {
    static TABLES: [OnceLock<Vec<Basis>>; 17] = [const { OnceLock::new() }; 17];
    TABLES[seed_bits as usize]
        .get_or_init(|| (0..1u32 << seed_bits).map(|s| basis(s as u16)).collect())
}

/// `s_i` of one sub-block.
#[inline(always)]
fn integers(table: &[Basis], sub: &SubBlock) -> [i32; SUB] {
    let u = &table[sub.seed as usize];
    let c = sub.coeffs.map(|v| v as i32);
    std::array::from_fn(|i| u[i][0] as i32 * c[0] + u[i][1] as i32 * c[1] + u[i][2] as i32 * c[2])
}

fn to_float<const SEED_BITS: u32>(
    format: WeightFormat,
    x: &[u8],
    y: &mut [f32],
) -> Result<(), KernelError> {
    check_to_float(format, x.len(), y.len())?;
    let table = bases(SEED_BITS);
    for (block, out) in x
        .chunks_exact(format.block_bytes())
        .zip(y.chunks_exact_mut(QK))
    {
        for (sub, o) in unpack_block(block, SEED_BITS)
            .iter()
            .zip(out.chunks_exact_mut(SUB))
        {
            let scale = exp_scale(sub.exponent);
            for (v, s) in o.iter_mut().zip(integers(table, sub)) {
                *v = s as f32 * scale;
            }
        }
    }
    Ok(())
}

fn vec_dot<const SEED_BITS: u32>(
    format: WeightFormat,
    n: usize,
    x: &[u8],
    y: &[u8],
) -> Result<f32, KernelError> {
    let units = check_vec_dot(format, n, x.len(), y.len())?;
    let table = bases(SEED_BITS);
    let xb_bytes = format.block_bytes();
    let yb_bytes = format.activation().block_bytes();
    Ok(accumulate(0, units, [0.0; LANES], |u| {
        let xb = &x[u * xb_bytes..(u + 1) * xb_bytes];
        let yb = &y[u * yb_bytes..(u + 1) * yb_bytes];
        let mut sum = 0.0f32;
        for (k, sub) in unpack_block(xb, SEED_BITS).iter().enumerate() {
            let a = &yb[2 + k * SUB..2 + (k + 1) * SUB];
            let mut isum = 0i32;
            for (s, &q) in integers(table, sub).iter().zip(a) {
                isum += s * q as i8 as i32;
            }
            sum += isum as f32 * exp_scale(sub.exponent);
        }
        sum * read_f16(yb, 0)
    }))
}

pub fn to_float_s16(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float::<16>(WeightFormat::SeedLmS16, x, y)
}
pub fn to_float_s12(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float::<12>(WeightFormat::SeedLmS12, x, y)
}
pub fn to_float_s8(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float::<8>(WeightFormat::SeedLmS8, x, y)
}
pub fn vec_dot_s16_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot::<16>(WeightFormat::SeedLmS16, n, x, y)
}
pub fn vec_dot_s12_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot::<12>(WeightFormat::SeedLmS12, n, x, y)
}
pub fn vec_dot_s8_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot::<8>(WeightFormat::SeedLmS8, n, x, y)
}
