//! SeedLM layouts (`seedlm_c8p3_sK_v1`, SPEC.md §7.9): blocks of 32 weights, four sub-blocks
//! of 8 packed as a little-endian bit stream of (seed: K bits, e: 4, c0, c1, c2: 4 each).
//! Sub-block element `i` is `s_i · 2^-(e+8)` with `s_i = Σ_p c_p·U_ip` exact in i32, `U` the
//! 8×3 basis the LFSR generates from the seed (`hct_format::codec::seedlm::basis`).
//!
//! The bases of every seed a K-bit field can hold are generated once per K into a table
//! (24 bytes a seed, stored column by column: 6 KiB for K = 8, 96 KiB for K = 12, 1.5 MiB
//! for K = 16; built on first use, 2–7 ms for K = 16 here), so decoding costs a lookup rather
//! than 24 LFSR steps per sub-block. Portable kernels, plus AVX2 ones ([`avx2`]) that compute
//! the same integers in vector registers, then make the same f32 operations in the same order.
//!
//! `to_float` is exact (an integer below 2^12 times a power of two), so any implementation
//! gives the same bits. `vec_dot` with Q8_0 activations has one unit per block (one
//! activation block, scale `dy`): with `isum_k = Σ_i s_i·a_i` exact in i32 (|isum_k| ≤
//! 8·3072·128 < 2^24) and `t_k = isum_k · 2^-(e_k+8)` exact in f32, the unit's term is
//! `(((t_0 + t_1) + t_2) + t_3) · dy` in f32, added to eight lanes in unit order.

use std::sync::OnceLock;

use hct_format::codec::seedlm::{basis, exp_scale, SubBlock, BASIS, SUB, SUBS_PER_BLOCK};

use super::portable::{accumulate, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

/// A seed's basis by columns: `columns[p][i] = U[i][p]`, so that a column is 8 contiguous
/// bytes a vector load takes whole.
type Columns = [[i8; SUB]; BASIS];

/// The basis of every seed a `seed_bits`-bit field can hold, index = seed.
fn bases(seed_bits: u32) -> &'static [Columns] {
    static TABLES: [OnceLock<Vec<Columns>>; 17] = [const { OnceLock::new() }; 17];
    TABLES[seed_bits as usize].get_or_init(|| {
        (0..1u32 << seed_bits)
            .map(|s| {
                let u = basis(s as u16);
                std::array::from_fn(|p| std::array::from_fn(|i| u[i][p]))
            })
            .collect()
    })
}

/// The fields of a block's sub-blocks, as `hct_format::codec::seedlm::unpack_block` reads them
/// (a test checks the two agree), with the seed width a constant so the shifts fold and the
/// call inlines into the kernels (with the reference crate's version, a call with a run-time
/// width, an AVX2 dot of a 576-wide s16 row took 829 ns; with this one, 650).
#[inline(always)]
fn unpack_block<const SEED_BITS: u32>(block: &[u8]) -> [SubBlock; SUBS_PER_BLOCK] {
    let mut bytes = [0u8; 16];
    bytes[..block.len()].copy_from_slice(block);
    let bits = u128::from_le_bytes(bytes);
    std::array::from_fn(|k| {
        // A sub-block is SEED_BITS + 16 ≤ 32 bits: all of it is in the low 32 after the shift.
        let v = (bits >> (k as u32 * (SEED_BITS + 16))) as u32;
        let coeff = |p: u32| ((((v >> (SEED_BITS + 4 + 4 * p)) as u8) << 4) as i8) >> 4;
        SubBlock {
            seed: (v & ((1u32 << SEED_BITS) - 1)) as u16,
            exponent: (v >> SEED_BITS) & 0xF,
            coeffs: [coeff(0), coeff(1), coeff(2)],
        }
    })
}

/// `s_i` of one sub-block.
#[inline(always)]
fn integers(table: &[Columns], sub: &SubBlock) -> [i32; SUB] {
    let u = &table[sub.seed as usize];
    let c = sub.coeffs.map(|v| v as i32);
    std::array::from_fn(|i| u[0][i] as i32 * c[0] + u[1][i] as i32 * c[1] + u[2][i] as i32 * c[2])
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
        for (sub, o) in unpack_block::<SEED_BITS>(block)
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
        for (k, sub) in unpack_block::<SEED_BITS>(xb).iter().enumerate() {
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

/// AVX2 kernels, bit for bit the portable ones: `s_i` and `isum_k` are exact integers whatever
/// the order they are summed in (16-bit lanes hold `|s_i| ≤ 3·8·128 = 3072`; `madd` pairs stay
/// below 2^20), and every f32 operation is the reference's, in the reference's order.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use core::arch::x86_64::*;

    use super::*;
    use crate::kernels::portable::reduce_lanes;

    /// `s_i` of sub-blocks `a` (lanes 0..8) and `b` (lanes 8..16) as i16.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn integers_pair(table: &[Columns], a: &SubBlock, b: &SubBlock) -> __m256i {
        let (ua, ub) = (&table[a.seed as usize], &table[b.seed as usize]);
        let mut s = _mm256_setzero_si256();
        for p in 0..BASIS {
            // SAFETY: each column is 8 bytes, what loadl reads.
            let (ca, cb) = unsafe {
                (
                    _mm_loadl_epi64(ua[p].as_ptr().cast()),
                    _mm_loadl_epi64(ub[p].as_ptr().cast()),
                )
            };
            let column = _mm256_cvtepi8_epi16(_mm_unpacklo_epi64(ca, cb));
            let coeff = _mm256_setr_m128i(
                _mm_set1_epi16(a.coeffs[p] as i16),
                _mm_set1_epi16(b.coeffs[p] as i16),
            );
            s = _mm256_add_epi16(s, _mm256_mullo_epi16(column, coeff));
        }
        s
    }

    #[target_feature(enable = "avx2")]
    unsafe fn to_float<const SEED_BITS: u32>(
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
            let subs = unpack_block::<SEED_BITS>(block);
            for (h, half) in out.chunks_exact_mut(2 * SUB).enumerate() {
                let (a, b) = (&subs[2 * h], &subs[2 * h + 1]);
                // SAFETY: AVX2 is enabled here.
                let s = unsafe { integers_pair(table, a, b) };
                let lo = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
                let hi = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
                let lo = _mm256_mul_ps(lo, _mm256_set1_ps(exp_scale(a.exponent)));
                let hi = _mm256_mul_ps(hi, _mm256_set1_ps(exp_scale(b.exponent)));
                // SAFETY: `half` is 16 floats, the two stores' 8 each.
                unsafe {
                    _mm256_storeu_ps(half.as_mut_ptr(), lo);
                    _mm256_storeu_ps(half.as_mut_ptr().add(SUB), hi);
                }
            }
        }
        Ok(())
    }

    /// `isum_k` of the four sub-blocks of one block against its 32 activations. Generic over
    /// the seed width only so that each instance has one caller and LLVM inlines it (one
    /// shared instance was called, not inlined, and cost a sixth of the dot's time).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block_isums<const SEED_BITS: u32>(
        table: &[Columns],
        subs: &[SubBlock; SUBS_PER_BLOCK],
        a: &[u8],
    ) -> [i32; SUBS_PER_BLOCK] {
        // SAFETY: `a` is a block's 32 quants.
        let a = unsafe { _mm256_loadu_si256(a[..QK].as_ptr().cast()) };
        let a01 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(a));
        let a23 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(a, 1));
        // SAFETY: AVX2 is enabled here.
        let (s01, s23) = unsafe {
            (
                integers_pair(table, &subs[0], &subs[1]),
                integers_pair(table, &subs[2], &subs[3]),
            )
        };
        // [k0: 4 partial sums | k1: 4] and [k2 | k3]
        let p01 = _mm256_madd_epi16(s01, a01);
        let p23 = _mm256_madd_epi16(s23, a23);
        // Per 128-bit half: [k0, k0, k2, k2 | k1, k1, k3, k3], then [k0, k2, … | k1, k3, …].
        let h = _mm256_hadd_epi32(p01, p23);
        let h = _mm256_hadd_epi32(h, h);
        let (lo, hi) = (_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        [
            _mm_cvtsi128_si32(lo),
            _mm_cvtsi128_si32(hi),
            _mm_extract_epi32(lo, 1),
            _mm_extract_epi32(hi, 1),
        ]
    }

    #[target_feature(enable = "avx2")]
    unsafe fn vec_dot<const SEED_BITS: u32>(
        format: WeightFormat,
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        let units = check_vec_dot(format, n, x.len(), y.len())?;
        let table = bases(SEED_BITS);
        let xb_bytes = format.block_bytes();
        let yb_bytes = format.activation().block_bytes();
        let mut lanes = [0.0f32; LANES];
        for u in 0..units {
            let xb = &x[u * xb_bytes..(u + 1) * xb_bytes];
            let yb = &y[u * yb_bytes..(u + 1) * yb_bytes];
            let subs = unpack_block::<SEED_BITS>(xb);
            // SAFETY: AVX2 is enabled here.
            let isums = unsafe { block_isums::<SEED_BITS>(table, &subs, &yb[2..]) };
            let mut sum = 0.0f32;
            for (isum, sub) in isums.iter().zip(&subs) {
                sum += *isum as f32 * exp_scale(sub.exponent);
            }
            lanes[u % LANES] += sum * read_f16(yb, 0);
        }
        Ok(reduce_lanes(&lanes))
    }

    /// # Safety
    /// The CPU must support AVX2 (a [`crate::platform::Backend`] of this ISA proves it).
    pub unsafe fn to_float_s16(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        unsafe { to_float::<16>(WeightFormat::SeedLmS16, x, y) }
    }
    /// # Safety
    /// As [`to_float_s16`].
    pub unsafe fn to_float_s12(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        unsafe { to_float::<12>(WeightFormat::SeedLmS12, x, y) }
    }
    /// # Safety
    /// As [`to_float_s16`].
    pub unsafe fn to_float_s8(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        unsafe { to_float::<8>(WeightFormat::SeedLmS8, x, y) }
    }
    /// # Safety
    /// As [`to_float_s16`].
    pub unsafe fn vec_dot_s16_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        unsafe { vec_dot::<16>(WeightFormat::SeedLmS16, n, x, y) }
    }
    /// # Safety
    /// As [`to_float_s16`].
    pub unsafe fn vec_dot_s12_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        unsafe { vec_dot::<12>(WeightFormat::SeedLmS12, n, x, y) }
    }
    /// # Safety
    /// As [`to_float_s16`].
    pub unsafe fn vec_dot_s8_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        unsafe { vec_dot::<8>(WeightFormat::SeedLmS8, n, x, y) }
    }
}

#[cfg(test)]
mod tests {
    use crate::harness::Rng;

    /// The kernels' unpacking equals the reference crate's on every seed width, on random
    /// blocks (every bit pattern is a valid block).
    #[test]
    fn unpacking_equals_the_reference_crates() {
        let mut rng = Rng::new(0x5EED);
        for _ in 0..2000 {
            let bytes: [u8; 16] = std::array::from_fn(|_| rng.next_u64() as u8);
            assert_eq!(
                super::unpack_block::<16>(&bytes[..16]),
                hct_format::codec::seedlm::unpack_block(&bytes[..16], 16)
            );
            assert_eq!(
                super::unpack_block::<12>(&bytes[..14]),
                hct_format::codec::seedlm::unpack_block(&bytes[..14], 12)
            );
            assert_eq!(
                super::unpack_block::<8>(&bytes[..12]),
                hct_format::codec::seedlm::unpack_block(&bytes[..12], 8)
            );
        }
    }
}
