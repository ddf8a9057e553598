//! AVX2 + F16C kernels, bit-identical to [`super::portable`].
//!
//! Every function is an `unsafe fn` with `#[target_feature(enable = "avx2,f16c")]` (the form
//! Rust 1.85, the workspace's minimum, accepts): beyond its documented memory contract, the
//! one condition for calling it is a CPU with both features ([`crate::platform::Backend`]
//! checks). Intrinsics are called directly inside these bodies; `unsafe` blocks mark the
//! memory accesses, each with the argument that makes it sound. FMA is deliberately not
//! enabled and not used: the reference rounds after each multiply and each add.
//!
//! `vec_dot` keeps the reference's eight lanes in one `__m256`: each step handles eight
//! units (weight blocks or groups), reduces each unit's exact i32 partial sums to one lane
//! with a fixed `hadd` tree, and adds the eight terms lane-wise. Units past the last multiple
//! of eight take one more step of the same code, which reads only the units that exist and
//! adds only to their lanes (a blend keeps the other lanes' sums), so short rows such as
//! SmolLM2's 18 blocks run no scalar code.
//! `to_float` decodes whole blocks here and a partial last int4 group with the reference.

// Intrinsics are `unsafe fn`s on Rust 1.85; each body here already runs under the
// function's CPU-feature contract.
#![allow(unsafe_op_in_unsafe_fn)]

use core::arch::x86_64::*;

use super::portable::{self, LANES};
use super::KernelTable;
use crate::layout::{
    check_to_float, check_vec_dot, int4_block_bytes, KernelError, WeightFormat, Q4_0_BLOCK_BYTES,
    Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, Q8_1_BLOCK_BYTES, QK,
};

/// Folds a row's units into the eight lanes: `$terms` (an expression of `$base` and
/// `$present`) gives the terms of units base..base + present in lanes 0..present. Whole steps
/// of eight are added lane-wise; the one partial step at the end is added only to the lanes of
/// its present units, so a lane without a unit there keeps exactly its sum, as in the
/// reference, which never touches it. Then the reference's reduction.
macro_rules! dot_in_steps_of_eight {
    ($units:expr, |$base:ident, $present:ident| $terms:expr) => {{
        let units: usize = $units;
        let mut acc = _mm256_setzero_ps();
        let mut $base = 0usize;
        while units - $base >= LANES {
            let $present = LANES;
            acc = _mm256_add_ps(acc, $terms);
            $base += LANES;
        }
        // One arm per count, so that each inlined step sees a constant `present`: its loops
        // unroll and its per-unit conditions fold away, as in the main loop. With a variable
        // count this last step cost as much as several whole steps (a 576-wide row, 18
        // blocks, is two whole steps and this one).
        acc = match units - $base {
            0 => acc,
            1 => {
                let $present = 1;
                add_present(acc, $terms, $present)
            }
            2 => {
                let $present = 2;
                add_present(acc, $terms, $present)
            }
            3 => {
                let $present = 3;
                add_present(acc, $terms, $present)
            }
            4 => {
                let $present = 4;
                add_present(acc, $terms, $present)
            }
            5 => {
                let $present = 5;
                add_present(acc, $terms, $present)
            }
            6 => {
                let $present = 6;
                add_present(acc, $terms, $present)
            }
            7 => {
                let $present = 7;
                add_present(acc, $terms, $present)
            }
            _ => unreachable!("fewer than eight units remain"),
        };
        reduce_lanes(acc)
    }};
}

/// The reference's [`portable::to_float_q4_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn to_float_q4_0(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q4_0, x.len(), y.len())?;
    let low_nibbles = _mm_set1_epi8(0x0F);
    let eight = _mm256_set1_epi32(8);
    for (block, out) in x.chunks_exact(Q4_0_BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = broadcast_f16(u16::from_le_bytes([block[0], block[1]]));
        // SAFETY: `block` has 18 bytes; the 16 nibble bytes start at 2.
        let qs = unsafe { _mm_loadu_si128(block.as_ptr().add(2).cast()) };
        let lo = _mm_and_si128(qs, low_nibbles);
        let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low_nibbles);
        let eighths = [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)];
        for (k, part) in eighths.into_iter().enumerate() {
            let q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(part), eight);
            let v = _mm256_mul_ps(_mm256_cvtepi32_ps(q), d);
            // SAFETY: `out` has 32 floats and k·8 + 8 ≤ 32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(k * 8), v) };
        }
    }
    Ok(())
}

/// The reference's [`portable::to_float_q4_1`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn to_float_q4_1(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<32>(WeightFormat::Q4_1, x, y)
}

/// The reference's [`portable::to_float_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn to_float_q8_0(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q8_0, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(Q8_0_BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = broadcast_f16(u16::from_le_bytes([block[0], block[1]]));
        // SAFETY: `block` has 34 bytes; the 32 quants start at 2.
        let qs = unsafe { _mm256_loadu_si256(block.as_ptr().add(2).cast()) };
        let (first, second) = (_mm256_castsi256_si128(qs), _mm256_extracti128_si256(qs, 1));
        let quarters = [
            first,
            _mm_srli_si128(first, 8),
            second,
            _mm_srli_si128(second, 8),
        ];
        for (k, part) in quarters.into_iter().enumerate() {
            let v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part)), d);
            // SAFETY: `out` has 32 floats and k·8 + 8 ≤ 32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(k * 8), v) };
        }
    }
    Ok(())
}

/// The reference's [`portable::to_float_int4_g8`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn to_float_int4_g8(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<8>(WeightFormat::Int4G8, x, y)
}

/// The reference's [`portable::to_float_int4_g16`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn to_float_int4_g16(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<16>(WeightFormat::Int4G16, x, y)
}

/// The reference's [`portable::to_float_int4_g32`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn to_float_int4_g32(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<32>(WeightFormat::Int4G32, x, y)
}

/// The reference's [`portable::vec_dot_q4_0_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_q4_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Q4_0, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_q4_0_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_q4_0_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `n` must be a multiple of 32 and `xp`, `yp` must
/// point at the weight and activation rows of `n` elements.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dot_q4_0_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Q4_0.block_len();
    dot_in_steps_of_eight!(units, |base, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); base + present ≤ units.
        unsafe { terms_q4_0_q8_0(xp, yp, base, present) }
    })
}

/// The reference's [`portable::vec_dot_q8_0_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_q8_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Q8_0, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_q8_0_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_q8_0_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `n` must be a multiple of 32 and `xp`, `yp` must
/// point at the weight and activation rows of `n` elements.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dot_q8_0_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Q8_0.block_len();
    // SAFETY: y holds `units` whole Q8_0 blocks (caller contract).
    let sign_trick_exact = unsafe { !any_minus_128(yp, units) };
    dot_in_steps_of_eight!(units, |base, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); base + present ≤ units.
        unsafe {
            if sign_trick_exact {
                terms_q8_0_q8_0::<true>(xp, yp, base, present)
            } else {
                terms_q8_0_q8_0::<false>(xp, yp, base, present)
            }
        }
    })
}

/// The reference's [`portable::vec_dot_q4_1_q8_1`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_q4_1_q8_1(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Q4_1, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_q4_1_q8_1(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_q4_1_q8_1`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `n` must be a multiple of 32 and `xp`, `yp` must
/// point at the weight and activation rows of `n` elements.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dot_q4_1_q8_1(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Q4_1.block_len();
    dot_in_steps_of_eight!(units, |base, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); base + present ≤ units.
        unsafe { terms_q4_1_q8_1(xp, yp, base, present) }
    })
}

/// The reference's [`portable::vec_dot_int4_g32_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_int4_g32_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Int4G32, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_int4_g32_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_int4_g32_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `n` must be a multiple of 32 and `xp`, `yp` must
/// point at the weight and activation rows of `n` elements.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dot_int4_g32_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Int4G32.block_len();
    dot_in_steps_of_eight!(units, |base, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); base + present ≤ units.
        unsafe { terms_int4_g32_q8_0(xp, yp, base, present) }
    })
}

/// The reference's [`portable::vec_dot_int4_g16_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_int4_g16_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Int4G16, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_int4_g16_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_int4_g16_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `n` must be a multiple of 32 and `xp`, `yp` must
/// point at the weight and activation rows of `n` elements.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dot_int4_g16_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Int4G16.block_len();
    // The steps keep the lanes in the order [u0, u2, u4, u6, u1, u3, u5, u7] (mod 8), the
    // order in which one step's groups come out of its reductions; lanes are independent, so
    // one permute at the end restores the reference's lanes before its reduction.
    let mut acc = _mm256_setzero_ps();
    let mut base = 0usize;
    while units - base >= LANES {
        // SAFETY: the rows hold `units` whole groups in x and units / 2 whole blocks in y;
        // base + 8 ≤ units and base is even.
        acc = _mm256_add_ps(acc, unsafe { terms_int4_g16_q8_0(xp, yp, base, LANES) });
        base += LANES;
    }
    // SAFETY (each arm): as above, with base + present = units, both even (n is a multiple of
    // 32). One arm per count so that each inlined step sees a constant count.
    acc = match units - base {
        0 => acc,
        2 => add_present_by_pairs(acc, unsafe { terms_int4_g16_q8_0(xp, yp, base, 2) }, 1),
        4 => add_present_by_pairs(acc, unsafe { terms_int4_g16_q8_0(xp, yp, base, 4) }, 2),
        6 => add_present_by_pairs(acc, unsafe { terms_int4_g16_q8_0(xp, yp, base, 6) }, 3),
        _ => unreachable!("an even number of groups below eight remains"),
    };
    let natural = _mm256_permutevar8x32_ps(acc, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    reduce_lanes(natural)
}

/// The reference's [`portable::vec_dot_int4_g8_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support AVX2 and F16C (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_int4_g8_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Int4G8, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_int4_g8_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_int4_g8_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `n` must be a multiple of 32 and `xp`, `yp` must
/// point at the weight and activation rows of `n` elements.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dot_int4_g8_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Int4G8.block_len();
    dot_in_steps_of_eight!(units, |base, present| {
        // SAFETY: the rows hold `units` whole groups in x and units / 4 whole blocks
        // in y; base + present ≤ units, and both are multiples of 4 (n is a multiple of 32).
        unsafe { terms_int4_g8_q8_0(xp, yp, base, present) }
    })
}

// ---------------------------------------------------------------------------------------
// One step of eight units per codec: the terms of units base..base + present in lanes
// 0..present. Units past `present` are never read; their lanes hold values computed from
// zeros, which `dot_in_steps_of_eight!` discards. Each is called with `present` = 8 in the
// main loop (where, inlined, the per-unit conditions fold away) and once with the rest.

/// Q4_0 · Q8_0: lane k is `(dx·dy) · isum` of unit base + k.
///
/// # Safety
/// Units base..base + present (present ≤ 8) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn terms_q4_0_q8_0(xp: *const u8, yp: *const u8, base: usize, present: usize) -> __m256 {
    let mut isums = [_mm256_setzero_si256(); LANES];
    for (k, isum) in isums.iter_mut().enumerate().take(present) {
        // SAFETY: unit base + k is present (caller contract).
        *isum = unsafe {
            isum_q4_0_q8_0(
                xp.add((base + k) * Q4_0_BLOCK_BYTES),
                yp.add((base + k) * Q8_0_BLOCK_BYTES),
            )
        };
    }
    let isum = _mm256_cvtepi32_ps(sum_each_of_eight(&isums));
    // SAFETY: the scales of the present units only are read (caller contract).
    let (dx, dy) = unsafe {
        (
            load_f16x8_strided(xp.add(base * Q4_0_BLOCK_BYTES), Q4_0_BLOCK_BYTES, present),
            load_f16x8_strided(yp.add(base * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
        )
    };
    _mm256_mul_ps(_mm256_mul_ps(dx, dy), isum)
}

/// Q8_0 · Q8_0: lane k is `(dx·dy) · isum` of unit base + k. `SIGN_TRICK` may be true only
/// when no activation of the row is −128 (see [`isum_q8_0_q8_0_no_minus_128`]).
///
/// # Safety
/// Units base..base + present (present ≤ 8) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn terms_q8_0_q8_0<const SIGN_TRICK: bool>(
    xp: *const u8,
    yp: *const u8,
    base: usize,
    present: usize,
) -> __m256 {
    let mut isums = [_mm256_setzero_si256(); LANES];
    for (k, isum) in isums.iter_mut().enumerate().take(present) {
        // SAFETY: unit base + k is present (caller contract).
        *isum = unsafe {
            let (xb, yb) = (
                xp.add((base + k) * Q8_0_BLOCK_BYTES),
                yp.add((base + k) * Q8_0_BLOCK_BYTES),
            );
            if SIGN_TRICK {
                isum_q8_0_q8_0_no_minus_128(xb, yb)
            } else {
                isum_q8_0_q8_0(xb, yb)
            }
        };
    }
    let isum = _mm256_cvtepi32_ps(sum_each_of_eight(&isums));
    // SAFETY: the scales of the present units only are read (caller contract).
    let (dx, dy) = unsafe {
        (
            load_f16x8_strided(xp.add(base * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
            load_f16x8_strided(yp.add(base * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
        )
    };
    _mm256_mul_ps(_mm256_mul_ps(dx, dy), isum)
}

/// Q4_1 · Q8_1: lane k is `(dx·dy) · isum + mx·sy` of unit base + k.
///
/// # Safety
/// Units base..base + present (present ≤ 8) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn terms_q4_1_q8_1(xp: *const u8, yp: *const u8, base: usize, present: usize) -> __m256 {
    let mut isums = [_mm256_setzero_si256(); LANES];
    for (k, isum) in isums.iter_mut().enumerate().take(present) {
        // SAFETY: unit base + k is present (caller contract).
        *isum = unsafe {
            let (qs, a) = load_nibbles_and_activations(
                xp.add((base + k) * Q4_1_BLOCK_BYTES + 4),
                yp.add((base + k) * Q8_1_BLOCK_BYTES + 4),
            );
            dot_u4_i8(qs, a)
        };
    }
    let isum = _mm256_cvtepi32_ps(sum_each_of_eight(&isums));
    // SAFETY: the scales of the present units only are read (caller contract).
    let ((dx, mx), (dy, sy)) = unsafe {
        (
            load_f16_pairs_x8(xp.add(base * Q4_1_BLOCK_BYTES), Q4_1_BLOCK_BYTES, present),
            load_f16_pairs_x8(yp.add(base * Q8_1_BLOCK_BYTES), Q8_1_BLOCK_BYTES, present),
        )
    };
    _mm256_add_ps(
        _mm256_mul_ps(_mm256_mul_ps(dx, dy), isum),
        _mm256_mul_ps(mx, sy),
    )
}

/// int4 g32 · Q8_0: lane k is the int4 term of unit base + k.
///
/// # Safety
/// Units base..base + present (present ≤ 8) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn terms_int4_g32_q8_0(xp: *const u8, yp: *const u8, base: usize, present: usize) -> __m256 {
    const BLOCK: usize = int4_block_bytes(32);
    let mut isums = [_mm256_setzero_si256(); LANES];
    let mut asums = [_mm256_setzero_si256(); LANES];
    for k in 0..present.min(LANES) {
        // SAFETY: unit base + k is present (caller contract).
        let (qs, a) = unsafe {
            load_nibbles_and_activations(
                xp.add((base + k) * BLOCK + 4),
                yp.add((base + k) * Q8_0_BLOCK_BYTES + 2),
            )
        };
        isums[k] = dot_u4_i8(qs, a);
        asums[k] = sum_i8(a);
    }
    let isum = _mm256_cvtepi32_ps(sum_each_of_eight(&isums));
    let asum = _mm256_cvtepi32_ps(sum_each_of_eight(&asums));
    // SAFETY: the scales of the present units only are read (caller contract).
    let ((dx, mx), dy) = unsafe {
        (
            load_f16_pairs_x8(xp.add(base * BLOCK), BLOCK, present),
            load_f16x8_strided(yp.add(base * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
        )
    };
    int4_term(dx, mx, dy, isum, asum)
}

/// int4 g16 · Q8_0: the int4 terms of groups base + [0, 2, 4, 6, 1, 3, 5, 7] in lanes
/// 0..8, the order [`sum_each_half_of_four_unordered`] leaves them in. Eight g16 groups are four
/// activation blocks of two groups each: group base + 2k + h meets half h of block base / 2 + k.
///
/// # Safety
/// `base` and `present` (≤ 8) must be even and groups base..base + present whole blocks of
/// the row at xp, meeting whole Q8_0 blocks of the row at yp.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn terms_int4_g16_q8_0(xp: *const u8, yp: *const u8, base: usize, present: usize) -> __m256 {
    const BLOCK: usize = int4_block_bytes(16);
    let first_activation = base / 2;
    let activation_blocks = present.min(LANES) / 2;
    let mut isums = [_mm256_setzero_si256(); 4];
    let mut asums = [_mm256_setzero_si256(); 4];
    // Zero for absent pairs.
    let mut pair_heads = [_mm_setzero_ps(); 4];
    // The four activation scales, block k's fp16 bits at bits 16k.
    let mut dy_bits = 0u64;
    for k in 0..activation_blocks {
        // SAFETY: groups base + 2k, base + 2k + 1 and block base / 2 + k are present.
        let ((head, q), a, dy) = unsafe {
            let yb = yp.add((first_activation + k) * Q8_0_BLOCK_BYTES);
            (
                g16_pair(xp.add((base + 2 * k) * BLOCK)),
                _mm256_loadu_si256(yb.add(2).cast()),
                yb.cast::<u16>().read_unaligned(),
            )
        };
        pair_heads[k] = head;
        dy_bits |= u64::from(dy) << (16 * k);
        isums[k] = dot_u4_i8(q, a);
        asums[k] = sum_i8(a);
    }
    let isum = _mm256_cvtepi32_ps(sum_each_half_of_four_unordered(&isums));
    let asum = _mm256_cvtepi32_ps(sum_each_half_of_four_unordered(&asums));
    let (dx, mx) = g16_scales(&pair_heads);
    // Groups 2k and 2k + 1 both meet block k: lanes k and 4 + k.
    let dy = _mm256_cvtph_ps(_mm_set1_epi64x(dy_bits as i64));
    int4_term(dx, mx, dy, isum, asum)
}

/// One g16 group pair (groups 2k and 2k + 1 of a row, 24 bytes at `first`): its first 16
/// bytes as four words (the first group's (d, m) in word 0, the second's in word 3), and its
/// 32 codes in activation order (group 2k's low then high nibbles, then group 2k + 1's).
///
/// # Safety
/// The 24 bytes at `first` must be readable.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn g16_pair(first: *const u8) -> (__m128, __m256i) {
    const BLOCK: usize = int4_block_bytes(16);
    // Per 128-bit lane: one group's eight nibble bytes, twice; the second copy is shifted
    // down by 4 (64-bit lane counts), which puts low then high nibbles in element order.
    let twice = _mm256_setr_epi8(
        4, 5, 6, 7, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11, //
        8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15,
    );
    // SAFETY: the low lane reads group 2k's whole block and group 2k + 1's scales; the high
    // lane the last 4 nibble bytes of group 2k and group 2k + 1's whole block.
    let (head, pair) = unsafe {
        let head = _mm_loadu_si128(first.cast());
        (
            head,
            _mm256_set_m128i(_mm_loadu_si128(first.add(BLOCK - 4).cast()), head),
        )
    };
    let q = _mm256_and_si256(
        _mm256_srlv_epi64(
            _mm256_shuffle_epi8(pair, twice),
            _mm256_setr_epi64x(0, 4, 0, 4),
        ),
        _mm256_set1_epi8(0x0F),
    );
    (_mm_castsi128_ps(head), q)
}

/// The widened (d, m) of a g16 step's eight groups in the lane order
/// [0, 2, 4, 6, 1, 3, 5, 7], from the heads of its four pairs ([`g16_pair`]).
#[target_feature(enable = "avx2,f16c")]
#[inline]
pub(super) unsafe fn g16_scales(pair_heads: &[__m128; 4]) -> (__m256, __m256) {
    // (d, m) words of groups 0..4 and 4..8: words 0 and 3 of each pair head.
    let heads_01 = _mm_shuffle_ps(pair_heads[0], pair_heads[1], 0b11_00_11_00);
    let heads_23 = _mm_shuffle_ps(pair_heads[2], pair_heads[3], 0b11_00_11_00);
    let words = _mm256_castps_si256(_mm256_set_m128(heads_23, heads_01));
    // Within each 128-bit half (groups g..g + 4): [d0, d2, d1, d3, m0, m2, m1, m3] of it, so
    // that 32-bit word j of the whole holds the pair (d|m of groups) below.
    let gather = _mm256_setr_epi8(
        0, 1, 8, 9, 4, 5, 12, 13, 2, 3, 10, 11, 6, 7, 14, 15, //
        0, 1, 8, 9, 4, 5, 12, 13, 2, 3, 10, 11, 6, 7, 14, 15,
    );
    // Words [d0d2, d1d3, m0m2, m1m3, d4d6, d5d7, m4m6, m5m7] → d of groups
    // [0, 2, 4, 6, 1, 3, 5, 7], then m of the same.
    let ordered = _mm256_permutevar8x32_epi32(
        _mm256_shuffle_epi8(words, gather),
        _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
    );
    (
        _mm256_cvtph_ps(_mm256_castsi256_si128(ordered)),
        _mm256_cvtph_ps(_mm256_extracti128_si256(ordered, 1)),
    )
}

/// int4 g8 · Q8_0: lane k is the int4 term of group base + k. Eight g8 groups are two
/// activation blocks of four groups each; four g8 blocks are 32 contiguous bytes, so one load
/// and one permute separate their nibbles from their scales.
///
/// # Safety
/// `base` and `present` (≤ 8) must be multiples of 4 and groups base..base + present whole
/// blocks of the row at xp, meeting whole Q8_0 blocks of the row at yp.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn terms_int4_g8_q8_0(xp: *const u8, yp: *const u8, base: usize, present: usize) -> __m256 {
    const BLOCK: usize = int4_block_bytes(8);
    let first_activation = base / 4;
    let activation_blocks = present.min(LANES) / 4;
    let low_nibbles = _mm_set1_epi8(0x0F);
    // Per 32-bit word, four g8 blocks read [scales0, nibbles0, scales1, nibbles1, …].
    let nibbles_then_scales = _mm256_setr_epi32(1, 3, 5, 7, 0, 2, 4, 6);
    let mut isums = [_mm256_setzero_si256(); 2];
    let mut asums = [_mm256_setzero_si256(); 2];
    let mut scales = [_mm_setzero_si128(); 2];
    let mut dys = [0i16; 2];
    for k in 0..activation_blocks {
        // SAFETY: groups base + 4k .. base + 4k + 4 and block base / 4 + k are present.
        let (raw, a, dy) = unsafe {
            let yb = yp.add((first_activation + k) * Q8_0_BLOCK_BYTES);
            (
                _mm256_loadu_si256(xp.add((base + 4 * k) * BLOCK).cast()),
                _mm256_loadu_si256(yb.add(2).cast()),
                yb.cast::<i16>().read_unaligned(),
            )
        };
        let split = _mm256_permutevar8x32_epi32(raw, nibbles_then_scales);
        let four_groups = _mm256_castsi256_si128(split);
        scales[k] = _mm256_extracti128_si256(split, 1);
        dys[k] = dy;
        // Activation order: group 0 low, group 0 high, group 1 low, … (4 bytes each).
        let lo = _mm_and_si128(four_groups, low_nibbles);
        let hi = _mm_and_si128(_mm_srli_epi16(four_groups, 4), low_nibbles);
        let q = _mm256_set_m128i(_mm_unpackhi_epi32(lo, hi), _mm_unpacklo_epi32(lo, hi));
        isums[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1));
        asums[k] = sum_i8(a);
    }
    let isum = _mm256_cvtepi32_ps(sum_each_quarter_of_two(&isums));
    let asum = _mm256_cvtepi32_ps(sum_each_quarter_of_two(&asums));
    let (dx, mx) = split_f16_pairs(_mm256_set_m128i(scales[1], scales[0]));
    let [h0, h1] = dys;
    let dy = _mm256_cvtph_ps(_mm_setr_epi16(h0, h0, h0, h0, h1, h1, h1, h1));
    int4_term(dx, mx, dy, isum, asum)
}

// ---------------------------------------------------------------------------------------

#[target_feature(enable = "avx2,f16c")]
unsafe fn to_float_int4<const N: usize>(
    format: WeightFormat,
    x: &[u8],
    y: &mut [f32],
) -> Result<(), KernelError> {
    check_to_float(format, x.len(), y.len())?;
    let bytes = int4_block_bytes(N);
    let whole = y.len() / N;
    let (y_whole, y_partial) = y.split_at_mut(whole * N);
    for (block, out) in x.chunks_exact(bytes).zip(y_whole.chunks_exact_mut(N)) {
        decode_int4_group::<N>(block, out);
    }
    if !y_partial.is_empty() {
        portable::decode_int4_group::<N>(&x[whole * bytes..(whole + 1) * bytes], y_partial);
    }
    Ok(())
}

/// Decodes one whole int4 block of group length N into `out` (N floats).
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn decode_int4_group<const N: usize>(block: &[u8], out: &mut [f32]) {
    assert!(block.len() == int4_block_bytes(N) && out.len() == N);
    let d = broadcast_f16(u16::from_le_bytes([block[0], block[1]]));
    let m = broadcast_f16(u16::from_le_bytes([block[2], block[3]]));
    let out = out.as_mut_ptr();
    let low_nibbles = _mm_set1_epi8(0x0F);
    match N {
        8 => {
            let word = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
            let nibbles = (word & 0x0F0F_0F0F) as u64 | (((word >> 4) & 0x0F0F_0F0F) as u64) << 32;
            // SAFETY: `out` has N = 8 floats.
            unsafe { _mm256_storeu_ps(out, affine_eight(_mm_cvtsi64_si128(nibbles as i64), d, m)) };
        }
        16 => {
            // SAFETY: the block has 12 bytes; its 8 nibble bytes start at 4.
            let qs = unsafe { _mm_loadl_epi64(block.as_ptr().add(4).cast()) };
            let lo = _mm_and_si128(qs, low_nibbles);
            let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low_nibbles);
            // SAFETY: `out` has N = 16 floats.
            unsafe {
                _mm256_storeu_ps(out, affine_eight(lo, d, m));
                _mm256_storeu_ps(out.add(8), affine_eight(hi, d, m));
            }
        }
        32 => {
            // SAFETY: the block has 20 bytes; its 16 nibble bytes start at 4.
            let qs = unsafe { _mm_loadu_si128(block.as_ptr().add(4).cast()) };
            let lo = _mm_and_si128(qs, low_nibbles);
            let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low_nibbles);
            let eighths = [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)];
            for (k, part) in eighths.into_iter().enumerate() {
                // SAFETY: `out` has N = 32 floats and k·8 + 8 ≤ 32.
                unsafe { _mm256_storeu_ps(out.add(k * 8), affine_eight(part, d, m)) };
            }
        }
        _ => unreachable!("int4 group lengths are 8, 16 and 32"),
    }
}

/// `q · d + m` (multiply, round, add, round) for the eight bytes in the low half of `q`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn affine_eight(q: __m128i, d: __m256, m: __m256) -> __m256 {
    _mm256_add_ps(
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), d),
        m,
    )
}

/// The int4 term of the reference, `(dx·dy)·isum + (mx·dy)·asum`, lane-wise.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn int4_term(
    dx: __m256,
    mx: __m256,
    dy: __m256,
    isum: __m256,
    asum: __m256,
) -> __m256 {
    _mm256_add_ps(
        _mm256_mul_ps(_mm256_mul_ps(dx, dy), isum),
        _mm256_mul_ps(_mm256_mul_ps(mx, dy), asum),
    )
}

/// `acc + terms` in lanes 0..present, `acc` unchanged in the others.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn add_present(acc: __m256, terms: __m256, present: usize) -> __m256 {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let present = _mm256_cmpgt_epi32(_mm256_set1_epi32(present as i32), lane);
    _mm256_blendv_ps(acc, _mm256_add_ps(acc, terms), _mm256_castsi256_ps(present))
}

/// `acc + terms` in the lanes of the first `pairs` group pairs of a g16 step (lanes in the
/// order of [`terms_int4_g16_q8_0`]: lanes k and 4 + k hold pair k), `acc` unchanged in the
/// others.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn add_present_by_pairs(acc: __m256, terms: __m256, pairs: usize) -> __m256 {
    let pair = _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3);
    let present = _mm256_cmpgt_epi32(_mm256_set1_epi32(pairs as i32), pair);
    _mm256_blendv_ps(acc, _mm256_add_ps(acc, terms), _mm256_castsi256_ps(present))
}

/// The reference's reduction `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))` without
/// leaving the registers: the same additions, operands in the same order.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn reduce_lanes(acc: __m256) -> f32 {
    // [l0 + l4, l1 + l5, l2 + l6, l3 + l7]
    let quads = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    // [(l0 + l4) + (l2 + l6), (l1 + l5) + (l3 + l7), …]
    let pairs = _mm_add_ps(quads, _mm_movehl_ps(quads, quads));
    _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)))
}

#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn broadcast_f16(bits: u16) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16(bits as i16))
}

/// Widens the fp16 values at `p + k·stride` for k < `present`, and zeros for the lanes k ≥
/// `present` (at most 8 lanes).
///
/// # Safety
/// The 2 bytes at each of those addresses, k < `present`, must be readable.
#[target_feature(enable = "avx2,f16c")]
#[inline]
pub(super) unsafe fn load_f16x8_strided(p: *const u8, stride: usize, present: usize) -> __m256 {
    let h = |k: usize| {
        if k < present {
            // SAFETY: the caller guarantees each read for k < present.
            unsafe { p.add(k * stride).cast::<i16>().read_unaligned() }
        } else {
            0
        }
    };
    _mm256_cvtph_ps(_mm_setr_epi16(
        h(0),
        h(1),
        h(2),
        h(3),
        h(4),
        h(5),
        h(6),
        h(7),
    ))
}

/// Widens the fp16 pairs (first, second) at `p + k·stride` for k < `present` (a block's
/// (d, m) or a Q8_1 block's (d, s)), and zeros for the lanes k ≥ `present` (at most 8).
///
/// # Safety
/// The 4 bytes at each of those addresses, k < `present`, must be readable.
#[target_feature(enable = "avx2,f16c")]
#[inline]
pub(super) unsafe fn load_f16_pairs_x8(
    p: *const u8,
    stride: usize,
    present: usize,
) -> (__m256, __m256) {
    let w = |k: usize| {
        if k < present {
            // SAFETY: the caller guarantees each read for k < present.
            unsafe { p.add(k * stride).cast::<i32>().read_unaligned() }
        } else {
            0
        }
    };
    split_f16_pairs(_mm256_setr_epi32(
        w(0),
        w(1),
        w(2),
        w(3),
        w(4),
        w(5),
        w(6),
        w(7),
    ))
}

/// Eight 32-bit words `first | second << 16` → (eight firsts, eight seconds) widened.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn split_f16_pairs(words: __m256i) -> (__m256, __m256) {
    // Within each 128-bit half: the four low halves, then the four high halves.
    let gather = _mm256_setr_epi8(
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, //
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
    );
    let grouped = _mm256_shuffle_epi8(words, gather);
    // 64-bit chunks [first0..3, second0..3, first4..7, second4..7] → firsts, then seconds.
    let ordered = _mm256_permute4x64_epi64(grouped, 0b11_01_10_00);
    (
        _mm256_cvtph_ps(_mm256_castsi256_si128(ordered)),
        _mm256_cvtph_ps(_mm256_extracti128_si256(ordered, 1)),
    )
}

/// Loads 16 nibble bytes of a 32-element block (elements j and j + 16 in byte j) as 32
/// bytes in element order, and the 32 activations they meet.
///
/// # Safety
/// 16 bytes at `nibbles` and 32 bytes at `activations` must be readable.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load_nibbles_and_activations(
    nibbles: *const u8,
    activations: *const u8,
) -> (__m256i, __m256i) {
    // SAFETY: the caller guarantees both reads.
    let (qs, a) = unsafe {
        (
            _mm_loadu_si128(nibbles.cast()),
            _mm256_loadu_si256(activations.cast()),
        )
    };
    let low_nibbles = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(qs, low_nibbles);
    let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low_nibbles);
    (_mm256_set_m128i(hi, lo), a)
}

/// Σ q·a over 32 elements with q in 0..=15 unsigned, a signed, as eight exact i32 partial
/// sums (`maddubs` pair sums are at most 2·15·128, far from i16 saturation).
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn dot_u4_i8(q: __m256i, a: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1))
}

/// Σ a over 32 signed bytes as eight exact i32 partial sums (four bytes each).
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn sum_i8(a: __m256i) -> __m256i {
    _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_set1_epi8(1), a),
        _mm256_set1_epi16(1),
    )
}

/// Σ (q − 8)·a over one Q4_0 block, as eight exact i32 partial sums. Computed as
/// Σ q·a − Σ 8·a so that every activation byte, −128 included, is exact (the sign trick
/// `maddubs(|x|, sign(a, x))` overflows on −128).
///
/// # Safety
/// `xb` must point at a whole Q4_0 block and `yb` at a whole Q8_0 block.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn isum_q4_0_q8_0(xb: *const u8, yb: *const u8) -> __m256i {
    // SAFETY: nibbles are bytes 2..18 of the Q4_0 block, quants bytes 2..34 of the Q8_0 one.
    let (q, a) = unsafe { load_nibbles_and_activations(xb.add(2), yb.add(2)) };
    // Pair sums: q·a in [−3840, 3810], 8·a in [−2048, 2032]; their difference fits i16.
    let centred = _mm256_sub_epi16(
        _mm256_maddubs_epi16(q, a),
        _mm256_maddubs_epi16(_mm256_set1_epi8(8), a),
    );
    _mm256_madd_epi16(centred, _mm256_set1_epi16(1))
}

/// Whether any quant of the first `blocks` Q8_0 blocks at `y` is −128.
///
/// # Safety
/// `blocks` whole Q8_0 blocks must be readable at `y`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn any_minus_128(y: *const u8, blocks: usize) -> bool {
    let minus_128 = _mm256_set1_epi8(i8::MIN);
    let mut seen = _mm256_setzero_si256();
    for b in 0..blocks {
        // SAFETY: the caller guarantees the block; its quants are bytes 2..34.
        let a = unsafe { _mm256_loadu_si256(y.add(b * Q8_0_BLOCK_BYTES + 2).cast()) };
        seen = _mm256_or_si256(seen, _mm256_cmpeq_epi8(a, minus_128));
    }
    _mm256_testz_si256(seen, seen) == 0
}

/// Σ x·a over one Q8_0 × Q8_0 block pair, as eight exact i32 partial sums, provided no
/// activation is −128: `maddubs(|x|, sign(a, x))` is then exact (|x| ≤ 128 fits u8,
/// a·sign(x) fits i8, and pair sums stay within ±2·128·127 < 2^15). An activation of −128
/// would flip sign wrongly where x < 0, so such rows take [`isum_q8_0_q8_0`]. ggml's
/// quantizers never produce −128 (their quants are round(x·127/amax)).
///
/// # Safety
/// `xb` and `yb` must each point at a whole Q8_0 block.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn isum_q8_0_q8_0_no_minus_128(xb: *const u8, yb: *const u8) -> __m256i {
    // SAFETY: quants are bytes 2..34 of each block.
    let (xq, a) = unsafe {
        (
            _mm256_loadu_si256(xb.add(2).cast()),
            _mm256_loadu_si256(yb.add(2).cast()),
        )
    };
    let products = _mm256_maddubs_epi16(_mm256_abs_epi8(xq), _mm256_sign_epi8(a, xq));
    _mm256_madd_epi16(products, _mm256_set1_epi16(1))
}

/// Σ x·a over one Q8_0 × Q8_0 block pair, as eight exact i32 partial sums. Widening to i16
/// first keeps every product exact, an activation of −128 included.
///
/// # Safety
/// `xb` and `yb` must each point at a whole Q8_0 block.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn isum_q8_0_q8_0(xb: *const u8, yb: *const u8) -> __m256i {
    // SAFETY: quants are bytes 2..34 of each block.
    let (xq, a) = unsafe {
        (
            _mm256_loadu_si256(xb.add(2).cast()),
            _mm256_loadu_si256(yb.add(2).cast()),
        )
    };
    let (x_lo, a_lo) = (
        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(xq)),
        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(a)),
    );
    let (x_hi, a_hi) = (
        _mm256_cvtepi8_epi16(_mm256_extracti128_si256(xq, 1)),
        _mm256_cvtepi8_epi16(_mm256_extracti128_si256(a, 1)),
    );
    _mm256_add_epi32(_mm256_madd_epi16(x_lo, a_lo), _mm256_madd_epi16(x_hi, a_hi))
}

/// Lane k of the result is the sum of all eight lanes of `v[k]`.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn sum_each_of_eight(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    // [Σlow v0, Σlow v1, Σlow v2, Σlow v3 | Σhigh v0, …, Σhigh v3], "low" = lanes 0..4.
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256(h0123, h4567, 0x20),
        _mm256_permute2x128_si256(h0123, h4567, 0x31),
    )
}

/// Each `v[k]` holds two units (lanes 0..4 and 4..8); the result holds the sums of units
/// [0, 2, 4, 6, 1, 3, 5, 7], units numbered 2k, 2k + 1.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn sum_each_half_of_four_unordered(v: &[__m256i; 4]) -> __m256i {
    _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]))
}

/// Each `v[k]` holds four units of two lanes each; lane j of the result is the sum of unit
/// j, units numbered 4k .. 4k + 4.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn sum_each_quarter_of_two(v: &[__m256i; 2]) -> __m256i {
    // [u0, u1, u4, u5 | u2, u3, u6, u7]
    let pairs = _mm256_hadd_epi32(v[0], v[1]);
    _mm256_permute4x64_epi64(pairs, 0b11_01_10_00)
}

#[cfg(test)]
mod tests {
    use crate::harness;
    use crate::platform::{Backend, Isa};

    #[test]
    fn matches_portable_bit_for_bit() {
        match Backend::new(Isa::Avx2) {
            Some(backend) => harness::check_backend(backend),
            None => harness::skip_or_fail(Isa::Avx2),
        }
    }

    #[test]
    fn f16c_widening_matches_scalar_on_every_half() {
        if Backend::new(Isa::Avx2).is_none() {
            return harness::skip_or_fail(Isa::Avx2);
        }
        for h in 0..=u16::MAX {
            // SAFETY: Backend::new confirmed AVX2 and F16C.
            let wide = unsafe { widen_one(h) };
            assert_eq!(
                wide.to_bits(),
                crate::fp16::f16_bits_to_f32(h).to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    unsafe fn widen_one(h: u16) -> f32 {
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds eight floats.
        unsafe { core::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), super::broadcast_f16(h)) };
        out[0]
    }
}

/// What AVX2 speeds up: every layout's `to_float` and `vec_dot`, with unchecked dot entries
/// for the C ABI (the entry's checks are all these kernels need).
pub(crate) const KERNELS: KernelTable = {
    use WeightFormat::*;
    super::nl_sh64::avx2::overrides(super::hct_v3m::avx2::overrides(
        super::hct_v3::avx2::overrides(KernelTable::PORTABLE),
    ))
    .with_to_float(Q4_0, to_float_q4_0)
    .with_to_float(Q4_1, to_float_q4_1)
    .with_to_float(Q8_0, to_float_q8_0)
    .with_to_float(Int4G8, to_float_int4_g8)
    .with_to_float(Int4G16, to_float_int4_g16)
    .with_to_float(Int4G32, to_float_int4_g32)
    .with_vec_dot(Q4_0, vec_dot_q4_0_q8_0, Some(dot_q4_0_q8_0))
    .with_vec_dot(Q4_1, vec_dot_q4_1_q8_1, Some(dot_q4_1_q8_1))
    .with_vec_dot(Q8_0, vec_dot_q8_0_q8_0, Some(dot_q8_0_q8_0))
    .with_vec_dot(Int4G8, vec_dot_int4_g8_q8_0, Some(dot_int4_g8_q8_0))
    .with_vec_dot(Int4G16, vec_dot_int4_g16_q8_0, Some(dot_int4_g16_q8_0))
    .with_vec_dot(Int4G32, vec_dot_int4_g32_q8_0, Some(dot_int4_g32_q8_0))
    .with_gemm(Int4G16, super::avx2_gemm::gemm_int4_g16)
    .with_gemm(Int4G32, super::avx2_gemm::gemm_int4_g32)
    .with_to_float(Nl4Sh64, super::nl4_sh64::avx2::to_float)
    .with_vec_dot(
        Nl4Sh64,
        super::nl4_sh64::avx2::vec_dot_q8_0,
        Some(super::nl4_sh64::avx2::dot_q8_0),
    )
    .with_to_float(SeedLmS16, super::seedlm::avx2::to_float_s16)
    .with_to_float(SeedLmS12, super::seedlm::avx2::to_float_s12)
    .with_to_float(SeedLmS8, super::seedlm::avx2::to_float_s8)
    .with_vec_dot(SeedLmS16, super::seedlm::avx2::vec_dot_s16_q8_0, None)
    .with_vec_dot(SeedLmS12, super::seedlm::avx2::vec_dot_s12_q8_0, None)
    .with_vec_dot(SeedLmS8, super::seedlm::avx2::vec_dot_s8_q8_0, None)
    .with_to_float(Vq8R2x256G32, super::vq::avx2::to_float)
    .with_vec_dot(Vq8R2x256G32, super::vq::avx2::vec_dot_q8_0, None)
};
