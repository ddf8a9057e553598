//! `nl4_sh64_v1` (SPEC.md §7.7): super-blocks of 64 elements, 36 bytes: a binary16
//! super-scale `d`, two block headers (7-bit signed sub-scale `s` in bits 1–7, shift bit `h` in
//! bit 0) and two blocks of 16 bytes of 4-bit codes into `G_h = G + 4h`, `G` the IQ4_NL
//! codebook. Element value `L·G_h[q]` with `L = d·s` (exact in f32).
//!
//! Reference (portable) kernels, and an AVX2 version that gives the same bits (AArch64 runs the
//! portable kernels: a NEON version was written but not yet verified under qemu). The
//! units of `vec_dot` are the 32-element blocks (two per super-block), each meeting one Q8_0
//! activation block: `isum = Σ G_h[q_j]·a_j` exact in i32 (|isum| ≤ 32·127·128 < 2^24), term
//! `(L·dy)·isum` in f32, `lane[u mod 8] += term` in unit order, then the common reduction.
//! The AVX2 version computes `isum` with table lookups (`pshufb`) and widening
//! multiplies, and forms each term with the same two f32 multiplies as the reference, so its
//! results are the reference's by construction; the shared harness checks it.

use hct_format::codec::shifted::{GRIDS, SUPER, SUPER_BYTES};

use super::portable::{reduce_lanes, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

const FORMAT: WeightFormat = WeightFormat::Nl4Sh64;
const Q8_0_BLOCK_BYTES: usize = FORMAT.activation().block_bytes();
const _: () = assert!(FORMAT.block_bytes() == SUPER_BYTES && FORMAT.block_len() == SUPER);

/// The grids as i8 tables (every value fits: −127 … 117).
const TABLES: [[i8; 16]; 2] = {
    let mut t = [[0i8; 16]; 2];
    let mut h = 0;
    while h < 2 {
        let mut j = 0;
        while j < 16 {
            t[h][j] = GRIDS[h][j] as i8;
            j += 1;
        }
        h += 1;
    }
    t
};

/// Block `b` (0 or 1) of super-block `sb`: its scale `L = d·s`, its table, its 16 code bytes.
#[inline(always)]
fn block_parts(sb: &[u8], b: usize) -> (f32, &'static [i8; 16], &[u8]) {
    let d = read_f16(sb, 0);
    let header = sb[2 + b];
    let s = ((header as i8) >> 1) as f32;
    (
        d * s,
        &TABLES[(header & 1) as usize],
        &sb[4 + 16 * b..20 + 16 * b],
    )
}

/// Decodes one row (`y.len()` a multiple of 64).
pub fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(FORMAT, x.len(), y.len())?;
    for (sb, out) in x.chunks_exact(SUPER_BYTES).zip(y.chunks_exact_mut(SUPER)) {
        for b in 0..2 {
            let (l, table, codes) = block_parts(sb, b);
            let o = &mut out[QK * b..QK * (b + 1)];
            for (j, &byte) in codes.iter().enumerate() {
                o[j] = l * table[(byte & 0x0F) as usize] as f32;
                o[j + QK / 2] = l * table[(byte >> 4) as usize] as f32;
            }
        }
    }
    Ok(())
}

/// The term of unit `u` given its exact integer sum.
#[inline(always)]
fn term(x: &[u8], y: &[u8], u: usize, isum: i32) -> f32 {
    let sb = &x[(u / 2) * SUPER_BYTES..];
    let (l, _, _) = block_parts(sb, u % 2);
    let dy = read_f16(y, u * Q8_0_BLOCK_BYTES);
    (l * dy) * isum as f32
}

/// The exact integer sum of unit `u`, portably.
#[inline(always)]
fn isum_portable(x: &[u8], y: &[u8], u: usize) -> i32 {
    let (_, table, codes) = block_parts(&x[(u / 2) * SUPER_BYTES..], u % 2);
    let a = &y[u * Q8_0_BLOCK_BYTES + 2..(u + 1) * Q8_0_BLOCK_BYTES];
    let mut isum = 0i32;
    for (j, &byte) in codes.iter().enumerate() {
        isum += table[(byte & 0x0F) as usize] as i32 * a[j] as i8 as i32;
        isum += table[(byte >> 4) as usize] as i32 * a[j + QK / 2] as i8 as i32;
    }
    isum
}

/// The dot product with the lane order of the module documentation, `isum` supplied per unit.
#[inline(always)]
fn dot_with(x: &[u8], y: &[u8], units: usize, isum: impl Fn(usize) -> i32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    for u in 0..units {
        lanes[u % LANES] += term(x, y, u, isum(u));
    }
    reduce_lanes(&lanes)
}

/// Dot product of a row with a Q8_0 activation row of `n` elements (`n` a multiple of 64).
pub fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let superblocks = check_vec_dot(FORMAT, n, x.len(), y.len())?;
    Ok(dot_with(x, y, 2 * superblocks, |u| isum_portable(x, y, u)))
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    //! AVX2: `pshufb` looks the 32 codes of a block up in its 16-entry table, the i8 values
    //! and activations widen to i16 and `pmaddwd` sums them exactly (no sign trick, so an
    //! activation of −128 needs no special case).
    #![allow(unsafe_op_in_unsafe_fn)]

    use core::arch::x86_64::*;

    use super::*;

    /// The 32 i8 grid values of block `b` of the super-block at `sb`, in element order.
    ///
    /// # Safety
    /// AVX2; `sb` is a whole super-block.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn values(sb: &[u8], b: usize) -> __m256i {
        let table = _mm_loadu_si128(TABLES[(sb[2 + b] & 1) as usize].as_ptr().cast());
        // SAFETY: bytes 4 + 16b .. 20 + 16b of a whole super-block.
        let q = unsafe { _mm_loadu_si128(sb.as_ptr().add(4 + 16 * b).cast()) };
        let mask = _mm_set1_epi8(0x0F);
        let lo = _mm_shuffle_epi8(table, _mm_and_si128(q, mask));
        let hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), mask));
        _mm256_set_m128i(hi, lo)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        check_to_float(FORMAT, x.len(), y.len())?;
        for (sb, out) in x.chunks_exact(SUPER_BYTES).zip(y.chunks_exact_mut(SUPER)) {
            for b in 0..2 {
                let (l, _, _) = block_parts(sb, b);
                let lv = _mm256_set1_ps(l);
                let v = values(sb, b);
                let parts = [
                    _mm256_castsi256_si128(v),
                    _mm_srli_si128(_mm256_castsi256_si128(v), 8),
                    _mm256_extracti128_si256(v, 1),
                    _mm_srli_si128(_mm256_extracti128_si256(v, 1), 8),
                ];
                for (k, p) in parts.iter().enumerate() {
                    let f = _mm256_mul_ps(lv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(*p)));
                    // SAFETY: out holds 64 floats; 32b + 8k + 8 ≤ 64.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(QK * b + 8 * k), f) };
                }
            }
        }
        Ok(())
    }

    /// # Safety
    /// AVX2; `x` holds super-block `u / 2` and `y` Q8_0 block `u`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn isum(x: &[u8], y: &[u8], u: usize) -> i32 {
        let v = values(&x[(u / 2) * SUPER_BYTES..], u % 2);
        // SAFETY: quants are bytes 2..34 of Q8_0 block u.
        let a = unsafe { _mm256_loadu_si256(y.as_ptr().add(u * Q8_0_BLOCK_BYTES + 2).cast()) };
        let p = _mm256_add_epi32(
            _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)),
                _mm256_cvtepi8_epi16(_mm256_castsi256_si128(a)),
            ),
            _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)),
                _mm256_cvtepi8_epi16(_mm256_extracti128_si256(a, 1)),
            ),
        );
        let s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        let superblocks = check_vec_dot(FORMAT, n, x.len(), y.len())?;
        // The reference's loop, written out so that `isum` inlines under AVX2.
        let mut lanes = [0.0f32; LANES];
        for u in 0..2 * superblocks {
            // SAFETY: check_vec_dot found whole rows of 2·superblocks units.
            lanes[u % LANES] += term(x, y, u, unsafe { isum(x, y, u) });
        }
        Ok(reduce_lanes(&lanes))
    }
}
