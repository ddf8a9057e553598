//! NEON kernels (AArch64), bit-identical to [`super::portable`].
//!
//! Every function is an `unsafe fn` with `#[target_feature(enable = "neon")]`, as in the
//! AVX2 backend (NEON is baseline on AArch64 Linux, but the form keeps both backends under
//! one contract, checked by [`crate::platform::Backend`]). `unsafe` blocks mark the memory
//! accesses, each with its argument. Multiplies and adds stay separate instructions
//! (`vmulq_f32` then `vaddq_f32`; never `vfmaq_f32`), as the reference rounds after each.
//! fp16 scales widen with `fcvtl`, which is exact; it is issued through `asm!` because the
//! intrinsic (`vcvt_f32_f16`) needs Rust 1.94 and the workspace supports 1.85.
//!
//! `vec_dot` keeps the reference's eight lanes in two `float32x4_t` (lanes 0..4 and 4..8);
//! each step handles eight units as two halves of four, reduces each unit's exact i32 partial
//! sums with pairwise adds, and adds the terms lane-wise. Units past the last multiple of
//! eight take the same code once more per half that has any: it reads only the units that
//! exist and adds only to their lanes (a bit select keeps the other lanes' sums), so no
//! scalar code runs.

// Intrinsics are `unsafe fn`s on Rust 1.85; each body here already runs under the
// function's CPU-feature contract.
#![allow(unsafe_op_in_unsafe_fn)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::portable::{self, LANES};
use super::KernelTable;
use crate::layout::{
    check_to_float, check_vec_dot, int4_block_bytes, KernelError, WeightFormat, Q4_0_BLOCK_BYTES,
    Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, Q8_1_BLOCK_BYTES, QK,
};

/// Folds a row's units into the eight lanes, kept as two four-lane vectors: `$terms` (an
/// expression of `$start` and `$present`) gives the terms of units start..start + present in
/// vector lanes 0..present, for the half (lanes 0..4 or 4..8) that unit `start` falls in.
/// Whole steps of eight are added lane-wise; in the partial step at the end, a half with no
/// unit is skipped and a half with some is added only to the lanes of its present units, so a
/// lane without a unit there keeps exactly its sum, as in the reference, which never touches
/// it. Then the reference's reduction.
macro_rules! dot_in_steps_of_eight {
    ($units:expr, |$start:ident, $present:ident| $terms:expr) => {{
        let units: usize = $units;
        let mut acc = [vdupq_n_f32(0.0); 2];
        let mut base = 0usize;
        while units - base >= LANES {
            for (half, acc_half) in acc.iter_mut().enumerate() {
                let ($start, $present) = (base + 4 * half, 4usize);
                *acc_half = vaddq_f32(*acc_half, $terms);
            }
            base += LANES;
        }
        for (half, acc_half) in acc.iter_mut().enumerate() {
            let $start = base + 4 * half;
            if $start < units {
                let $present = (units - $start).min(4);
                *acc_half = add_present(*acc_half, $terms, $present);
            }
        }
        reduce_lanes(acc)
    }};
}

/// The reference's [`portable::to_float_q4_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn to_float_q4_0(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q4_0, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(Q4_0_BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = broadcast_f16(u16::from_le_bytes([block[0], block[1]]));
        // SAFETY: `block` has 18 bytes; the 16 nibble bytes start at 2.
        let qs = unsafe { vld1q_u8(block.as_ptr().add(2)) };
        let eight = vdupq_n_s8(8);
        let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F))), eight);
        let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(qs)), eight);
        // SAFETY: `out` has 32 floats: elements 0..16 from `lo`, 16..32 from `hi`.
        unsafe {
            store_16_scaled(out.as_mut_ptr(), lo, d);
            store_16_scaled(out.as_mut_ptr().add(16), hi, d);
        }
    }
    Ok(())
}

/// The reference's [`portable::to_float_q4_1`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn to_float_q4_1(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<32>(WeightFormat::Q4_1, x, y)
}

/// The reference's [`portable::to_float_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn to_float_q8_0(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(WeightFormat::Q8_0, x.len(), y.len())?;
    for (block, out) in x.chunks_exact(Q8_0_BLOCK_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = broadcast_f16(u16::from_le_bytes([block[0], block[1]]));
        // SAFETY: `block` has 34 bytes; the 32 quants start at 2; `out` has 32 floats.
        unsafe {
            let q0 = vld1q_s8(block.as_ptr().add(2).cast());
            let q1 = vld1q_s8(block.as_ptr().add(18).cast());
            store_16_scaled(out.as_mut_ptr(), q0, d);
            store_16_scaled(out.as_mut_ptr().add(16), q1, d);
        }
    }
    Ok(())
}

/// The reference's [`portable::to_float_int4_g8`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn to_float_int4_g8(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<8>(WeightFormat::Int4G8, x, y)
}

/// The reference's [`portable::to_float_int4_g16`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn to_float_int4_g16(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<16>(WeightFormat::Int4G16, x, y)
}

/// The reference's [`portable::to_float_int4_g32`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn to_float_int4_g32(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    to_float_int4::<32>(WeightFormat::Int4G32, x, y)
}

/// The reference's [`portable::vec_dot_q4_0_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q4_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Q4_0, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_q4_0_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_q4_0_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support NEON; `n` must be a multiple of 32 and `xp`, `yp` must point at the
/// weight and activation rows of `n` elements.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q4_0_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Q4_0.block_len();
    dot_in_steps_of_eight!(units, |start, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); start + present ≤ units.
        unsafe { terms_q4_0_q8_0(xp, yp, start, present) }
    })
}

/// The reference's [`portable::vec_dot_q8_0_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q8_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Q8_0, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_q8_0_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_q8_0_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support NEON; `n` must be a multiple of 32 and `xp`, `yp` must point at the
/// weight and activation rows of `n` elements.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q8_0_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Q8_0.block_len();
    dot_in_steps_of_eight!(units, |start, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); start + present ≤ units.
        unsafe { terms_q8_0_q8_0(xp, yp, start, present) }
    })
}

/// The reference's [`portable::vec_dot_q4_1_q8_1`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q4_1_q8_1(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Q4_1, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_q4_1_q8_1(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_q4_1_q8_1`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support NEON; `n` must be a multiple of 32 and `xp`, `yp` must point at the
/// weight and activation rows of `n` elements.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_q4_1_q8_1(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Q4_1.block_len();
    dot_in_steps_of_eight!(units, |start, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); start + present ≤ units.
        unsafe { terms_q4_1_q8_1(xp, yp, start, present) }
    })
}

/// The reference's [`portable::vec_dot_int4_g32_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_int4_g32_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Int4G32, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_int4_g32_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_int4_g32_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support NEON; `n` must be a multiple of 32 and `xp`, `yp` must point at the
/// weight and activation rows of `n` elements.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_int4_g32_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Int4G32.block_len();
    dot_in_steps_of_eight!(units, |start, present| {
        // SAFETY: the rows hold `units` whole blocks (caller contract); start + present ≤ units.
        unsafe { terms_int4_g32_q8_0(xp, yp, start, present) }
    })
}

/// The reference's [`portable::vec_dot_int4_g16_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_int4_g16_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Int4G16, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_int4_g16_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_int4_g16_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support NEON; `n` must be a multiple of 32 and `xp`, `yp` must point at the
/// weight and activation rows of `n` elements.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_int4_g16_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Int4G16.block_len();
    dot_in_steps_of_eight!(units, |start, present| {
        // SAFETY: the rows hold (caller contract) `units` whole groups in x and units / 2
        // whole blocks in y; start + present ≤ units, both even (n is a multiple of 32).
        unsafe { terms_int4_g16_q8_0(xp, yp, start, present) }
    })
}

/// The reference's [`portable::vec_dot_int4_g8_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_int4_g8_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    check_vec_dot(WeightFormat::Int4G8, n, x.len(), y.len())?;
    // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
    Ok(unsafe { dot_int4_g8_q8_0(n, x.as_ptr(), y.as_ptr()) })
}

/// [`vec_dot_int4_g8_q8_0`] without the checks, for entry points that have made them.
///
/// # Safety
/// The CPU must support NEON; `n` must be a multiple of 32 and `xp`, `yp` must point at the
/// weight and activation rows of `n` elements.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_int4_g8_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
    let units = n / WeightFormat::Int4G8.block_len();
    dot_in_steps_of_eight!(units, |start, present| {
        debug_assert_eq!(present, 4);
        // SAFETY: the rows hold (caller contract) `units` whole groups in x and units / 4
        // whole blocks in y; start is a multiple of 4 and units too (n is a multiple of 32),
        // so a half step that has any group has four whole groups.
        unsafe { terms_int4_g8_q8_0(xp, yp, start) }
    })
}

// ---------------------------------------------------------------------------------------
// One half step (four units, lanes 4h..4h + 4 of the eight) per codec: the terms of units
// start..start + present in vector lanes 0..present. Units past `present` are never read;
// their vector lanes hold values computed from zeros, which `dot_in_steps_of_eight!`
// discards. Each is called with `present` = 4 in the main loop (where, inlined, the per-unit
// conditions fold away) and at most twice for the rest.

/// Q4_0 · Q8_0: lane k is `(dx·dy) · isum` of unit start + k.
///
/// # Safety
/// Units start..start + present (present ≤ 4) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn terms_q4_0_q8_0(
    xp: *const u8,
    yp: *const u8,
    start: usize,
    present: usize,
) -> float32x4_t {
    let mut isums = [vdupq_n_s32(0); 4];
    for (k, isum) in isums.iter_mut().enumerate().take(present) {
        // SAFETY: unit start + k is present (caller contract).
        *isum = unsafe {
            let xb = xp.add((start + k) * Q4_0_BLOCK_BYTES);
            let ya = yp.add((start + k) * Q8_0_BLOCK_BYTES + 2);
            let qs = vld1q_u8(xb.add(2));
            let eight = vdupq_n_s8(8);
            let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F))), eight);
            let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(qs)), eight);
            // |(q − 8)·a| ≤ 8·128: four products per i16 lane stay exact.
            dot_i8x32_small(lo, hi, vld1q_s8(ya.cast()), vld1q_s8(ya.add(16).cast()))
        };
    }
    // SAFETY: the scales of the present units only are read (caller contract).
    let (dx, dy) = unsafe {
        (
            load_f16x4_strided(xp.add(start * Q4_0_BLOCK_BYTES), Q4_0_BLOCK_BYTES, present),
            load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
        )
    };
    let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
    vmulq_f32(vmulq_f32(dx, dy), isum)
}

/// Q8_0 · Q8_0: lane k is `(dx·dy) · isum` of unit start + k.
///
/// # Safety
/// Units start..start + present (present ≤ 4) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn terms_q8_0_q8_0(
    xp: *const u8,
    yp: *const u8,
    start: usize,
    present: usize,
) -> float32x4_t {
    let mut isums = [vdupq_n_s32(0); 4];
    for (k, isum) in isums.iter_mut().enumerate().take(present) {
        // SAFETY: unit start + k is present (caller contract).
        *isum = unsafe {
            let xq = xp.add((start + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
            let ya = yp.add((start + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
            let (x0, x1) = (vld1q_s8(xq), vld1q_s8(xq.add(16)));
            let (a0, a1) = (vld1q_s8(ya), vld1q_s8(ya.add(16)));
            // Each i16 product is exact ((−128)² = 2^14); pairs widen to i32 at once.
            let s = vpaddlq_s16(vmull_s8(vget_low_s8(x0), vget_low_s8(a0)));
            let s = vpadalq_s16(s, vmull_high_s8(x0, a0));
            let s = vpadalq_s16(s, vmull_s8(vget_low_s8(x1), vget_low_s8(a1)));
            vpadalq_s16(s, vmull_high_s8(x1, a1))
        };
    }
    // SAFETY: the scales of the present units only are read (caller contract).
    let (dx, dy) = unsafe {
        (
            load_f16x4_strided(xp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
            load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
        )
    };
    let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
    vmulq_f32(vmulq_f32(dx, dy), isum)
}

/// Q4_1 · Q8_1: lane k is `(dx·dy) · isum + mx·sy` of unit start + k.
///
/// # Safety
/// Units start..start + present (present ≤ 4) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn terms_q4_1_q8_1(
    xp: *const u8,
    yp: *const u8,
    start: usize,
    present: usize,
) -> float32x4_t {
    let mut isums = [vdupq_n_s32(0); 4];
    for (k, isum) in isums.iter_mut().enumerate().take(present) {
        // SAFETY: unit start + k is present (caller contract).
        *isum = unsafe {
            let qs = vld1q_u8(xp.add((start + k) * Q4_1_BLOCK_BYTES + 4));
            let ya = yp.add((start + k) * Q8_1_BLOCK_BYTES + 4).cast::<i8>();
            let (lo, hi) = split_nibbles(qs);
            dot_i8x32_small(lo, hi, vld1q_s8(ya), vld1q_s8(ya.add(16)))
        };
    }
    // SAFETY: the scales of the present units only are read (caller contract).
    let ((dx, mx), (dy, sy)) = unsafe {
        (
            load_f16_pairs_x4(xp.add(start * Q4_1_BLOCK_BYTES), Q4_1_BLOCK_BYTES, present),
            load_f16_pairs_x4(yp.add(start * Q8_1_BLOCK_BYTES), Q8_1_BLOCK_BYTES, present),
        )
    };
    let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
    vaddq_f32(vmulq_f32(vmulq_f32(dx, dy), isum), vmulq_f32(mx, sy))
}

/// int4 g32 · Q8_0: lane k is the int4 term of unit start + k.
///
/// # Safety
/// Units start..start + present (present ≤ 4) must be whole blocks of the rows at xp and yp.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn terms_int4_g32_q8_0(
    xp: *const u8,
    yp: *const u8,
    start: usize,
    present: usize,
) -> float32x4_t {
    const BLOCK: usize = int4_block_bytes(32);
    let mut isums = [vdupq_n_s32(0); 4];
    let mut asums = [vdupq_n_s32(0); 4];
    for k in 0..present.min(4) {
        // SAFETY: unit start + k is present (caller contract).
        let (qs, a0, a1) = unsafe {
            let ya = yp.add((start + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
            (
                vld1q_u8(xp.add((start + k) * BLOCK + 4)),
                vld1q_s8(ya),
                vld1q_s8(ya.add(16)),
            )
        };
        let (lo, hi) = split_nibbles(qs);
        isums[k] = dot_i8x32_small(lo, hi, a0, a1);
        asums[k] = vpaddlq_s16(vpadalq_s8(vpaddlq_s8(a0), a1));
    }
    // SAFETY: the scales of the present units only are read (caller contract).
    let ((dx, mx), dy) = unsafe {
        (
            load_f16_pairs_x4(xp.add(start * BLOCK), BLOCK, present),
            load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
        )
    };
    let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
    let asum = vcvtq_f32_s32(sum_each_of_four(&asums));
    int4_term(dx, mx, dy, isum, asum)
}

/// int4 g16 · Q8_0: lane k is the int4 term of group start + k; four g16 groups are two
/// activation blocks.
///
/// # Safety
/// `start` and `present` (≤ 4) must be even and groups start..start + present whole blocks
/// of the row at xp, meeting whole Q8_0 blocks of the row at yp.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn terms_int4_g16_q8_0(
    xp: *const u8,
    yp: *const u8,
    start: usize,
    present: usize,
) -> float32x4_t {
    const BLOCK: usize = int4_block_bytes(16);
    let mut isums = [vdupq_n_s32(0); 4];
    let mut asums = [vdupq_n_s32(0); 4];
    for k in 0..present.min(4) {
        let group = start + k;
        // SAFETY: group `group` is present; it meets the 16 activations at offset
        // 16·(group mod 2) of block group / 2, which is present with it.
        let (qs, a) = unsafe {
            (
                vld1_u8(xp.add(group * BLOCK + 4)),
                vld1q_s8(
                    yp.add((group / 2) * Q8_0_BLOCK_BYTES + 2 + 16 * (group % 2))
                        .cast(),
                ),
            )
        };
        let lo = vreinterpret_s8_u8(vand_u8(qs, vdup_n_u8(0x0F)));
        let hi = vreinterpret_s8_u8(vshr_n_u8::<4>(qs));
        // Eight products of at most 15·128 per i16 lane pair: exact.
        let p = vmlal_s8(vmull_s8(lo, vget_low_s8(a)), hi, vget_high_s8(a));
        isums[k] = vpaddlq_s16(p);
        asums[k] = vpaddlq_s16(vpaddlq_s8(a));
    }
    // SAFETY: the scales of the present groups and their blocks only are read.
    let ((dx, mx), dy) = unsafe {
        let h = |b: usize| {
            if 2 * b < present {
                yp.add((start / 2 + b) * Q8_0_BLOCK_BYTES)
                    .cast::<u16>()
                    .read_unaligned()
            } else {
                0
            }
        };
        let (h0, h1) = (h(0), h(1));
        (
            load_f16_pairs_x4(xp.add(start * BLOCK), BLOCK, present),
            widen_f16x4([h0, h0, h1, h1]),
        )
    };
    let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
    let asum = vcvtq_f32_s32(sum_each_of_four(&asums));
    int4_term(dx, mx, dy, isum, asum)
}

/// int4 g8 · Q8_0: lane k is the int4 term of group start + k. Four g8 groups are one
/// activation block, and 32 contiguous bytes whose 32-bit words alternate scales and
/// nibbles, so one unzip separates them. A g8 row always has a multiple of four groups, so
/// a quarter step is never partial.
///
/// # Safety
/// `start` must be a multiple of 4 and groups start..start + 4 whole blocks of the row at
/// xp, meeting a whole Q8_0 block of the row at yp.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn terms_int4_g8_q8_0(xp: *const u8, yp: *const u8, start: usize) -> float32x4_t {
    const BLOCK: usize = int4_block_bytes(8);
    // SAFETY: groups start..start + 4 and activation block start / 4 are inside the rows.
    let (w0, w1, a0, a1, dy) = unsafe {
        let g = xp.add(start * BLOCK);
        let ya = yp.add((start / 4) * Q8_0_BLOCK_BYTES);
        (
            vreinterpretq_u32_u8(vld1q_u8(g)),
            vreinterpretq_u32_u8(vld1q_u8(g.add(16))),
            vld1q_s8(ya.add(2).cast()),
            vld1q_s8(ya.add(18).cast()),
            broadcast_f16(ya.cast::<u16>().read_unaligned()),
        )
    };
    let scales = vuzp1q_u32(w0, w1);
    let nibbles = vreinterpretq_u8_u32(vuzp2q_u32(w0, w1));
    let lo = vreinterpretq_u32_u8(vandq_u8(nibbles, vdupq_n_u8(0x0F)));
    let hi = vreinterpretq_u32_u8(vshrq_n_u8::<4>(nibbles));
    // Activation order: group 0 low, group 0 high, group 1 low, … (4 bytes each).
    let q01 = vreinterpretq_s8_u32(vzip1q_u32(lo, hi));
    let q23 = vreinterpretq_s8_u32(vzip2q_u32(lo, hi));
    let p0 = vmull_s8(vget_low_s8(q01), vget_low_s8(a0));
    let p1 = vmull_high_s8(q01, a0);
    let p2 = vmull_s8(vget_low_s8(q23), vget_low_s8(a1));
    let p3 = vmull_high_s8(q23, a1);
    // Pairwise sums of at most four products (≤ 7680) per i16 lane: exact.
    let isum = vpaddlq_s16(vpaddq_s16(vpaddq_s16(p0, p1), vpaddq_s16(p2, p3)));
    let asum = vpaddlq_s16(vpaddq_s16(vpaddlq_s8(a0), vpaddlq_s8(a1)));
    let dx = widen_f16x4_bits(vmovn_u32(scales));
    let mx = widen_f16x4_bits(vshrn_n_u32::<16>(scales));
    int4_term(dx, mx, dy, vcvtq_f32_s32(isum), vcvtq_f32_s32(asum))
}

// ---------------------------------------------------------------------------------------

#[target_feature(enable = "neon")]
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
#[target_feature(enable = "neon")]
#[inline]
unsafe fn decode_int4_group<const N: usize>(block: &[u8], out: &mut [f32]) {
    assert!(block.len() == int4_block_bytes(N) && out.len() == N);
    let d = broadcast_f16(u16::from_le_bytes([block[0], block[1]]));
    let m = broadcast_f16(u16::from_le_bytes([block[2], block[3]]));
    let out = out.as_mut_ptr();
    let low_nibbles = vdupq_n_u8(0x0F);
    match N {
        8 => {
            let word = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
            let nibbles = (word & 0x0F0F_0F0F) as u64 | (((word >> 4) & 0x0F0F_0F0F) as u64) << 32;
            let q = vmovl_u8(vcreate_u8(nibbles));
            // SAFETY: `out` has N = 8 floats.
            unsafe { store_8_affine(out, q, d, m) };
        }
        16 => {
            // SAFETY: the block has 12 bytes; its 8 nibble bytes start at 4.
            let qs = unsafe { vld1_u8(block.as_ptr().add(4)) };
            let lo = vmovl_u8(vand_u8(qs, vget_low_u8(low_nibbles)));
            let hi = vmovl_u8(vshr_n_u8::<4>(qs));
            // SAFETY: `out` has N = 16 floats.
            unsafe {
                store_8_affine(out, lo, d, m);
                store_8_affine(out.add(8), hi, d, m);
            }
        }
        32 => {
            // SAFETY: the block has 20 bytes; its 16 nibble bytes start at 4.
            let qs = unsafe { vld1q_u8(block.as_ptr().add(4)) };
            let lo = vandq_u8(qs, low_nibbles);
            let hi = vshrq_n_u8::<4>(qs);
            // SAFETY: `out` has N = 32 floats.
            unsafe {
                store_8_affine(out, vmovl_u8(vget_low_u8(lo)), d, m);
                store_8_affine(out.add(8), vmovl_high_u8(lo), d, m);
                store_8_affine(out.add(16), vmovl_u8(vget_low_u8(hi)), d, m);
                store_8_affine(out.add(24), vmovl_high_u8(hi), d, m);
            }
        }
        _ => unreachable!("int4 group lengths are 8, 16 and 32"),
    }
}

/// Writes `q · d + m` (multiply, then add) for eight small unsigned q.
///
/// # Safety
/// 8 floats at `out` must be writable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_8_affine(out: *mut f32, q: uint16x8_t, d: float32x4_t, m: float32x4_t) {
    let lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(q)));
    let hi = vcvtq_f32_u32(vmovl_high_u16(q));
    // SAFETY: the caller guarantees 8 writable floats.
    unsafe {
        vst1q_f32(out, vaddq_f32(vmulq_f32(lo, d), m));
        vst1q_f32(out.add(4), vaddq_f32(vmulq_f32(hi, d), m));
    }
}

/// Writes `q · d` for sixteen signed q.
///
/// # Safety
/// 16 floats at `out` must be writable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_16_scaled(out: *mut f32, q: int8x16_t, d: float32x4_t) {
    let lo = vmovl_s8(vget_low_s8(q));
    let hi = vmovl_high_s8(q);
    let parts = [
        vmovl_s16(vget_low_s16(lo)),
        vmovl_high_s16(lo),
        vmovl_s16(vget_low_s16(hi)),
        vmovl_high_s16(hi),
    ];
    for (k, part) in parts.into_iter().enumerate() {
        // SAFETY: the caller guarantees 16 writable floats; k·4 + 4 ≤ 16.
        unsafe { vst1q_f32(out.add(4 * k), vmulq_f32(vcvtq_f32_s32(part), d)) };
    }
}

/// The int4 term of the reference, `(dx·dy)·isum + (mx·dy)·asum`, lane-wise.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn int4_term(
    dx: float32x4_t,
    mx: float32x4_t,
    dy: float32x4_t,
    isum: float32x4_t,
    asum: float32x4_t,
) -> float32x4_t {
    vaddq_f32(
        vmulq_f32(vmulq_f32(dx, dy), isum),
        vmulq_f32(vmulq_f32(mx, dy), asum),
    )
}

/// `acc + terms` in lanes 0..present, `acc` unchanged in the others.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn add_present(
    acc: float32x4_t,
    terms: float32x4_t,
    present: usize,
) -> float32x4_t {
    let lanes = [0u32, 1, 2, 3];
    // SAFETY: `lanes` holds four u32.
    let lane = unsafe { vld1q_u32(lanes.as_ptr()) };
    let present = vcltq_u32(lane, vdupq_n_u32(present as u32));
    vbslq_f32(present, vaddq_f32(acc, terms), acc)
}

/// The reference's reduction `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))` without
/// leaving the registers: the same additions, operands in the same order.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn reduce_lanes(acc: [float32x4_t; 2]) -> f32 {
    // [l0 + l4, l1 + l5, l2 + l6, l3 + l7]
    let quads = vaddq_f32(acc[0], acc[1]);
    // [(l0 + l4) + (l2 + l6), (l1 + l5) + (l3 + l7)]
    let pairs = vadd_f32(vget_low_f32(quads), vget_high_f32(quads));
    vget_lane_f32::<0>(pairs) + vget_lane_f32::<1>(pairs)
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn widen_f16x4_bits(bits: uint16x4_t) -> float32x4_t {
    let wide: float32x4_t;
    // SAFETY: `fcvtl` (half → single, base AArch64 FP/SIMD) only reads and writes the two
    // vector registers named here.
    unsafe {
        asm!(
            "fcvtl {wide:v}.4s, {half:v}.4h",
            wide = lateout(vreg) wide,
            half = in(vreg) bits,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    wide
}

#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn widen_f16x4(bits: [u16; 4]) -> float32x4_t {
    // SAFETY: `bits` holds four u16.
    widen_f16x4_bits(unsafe { vld1_u16(bits.as_ptr()) })
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn broadcast_f16(bits: u16) -> float32x4_t {
    widen_f16x4_bits(vdup_n_u16(bits))
}

/// Widens the fp16 values at `p + k·stride` for k < `present`, and zeros for the lanes
/// k ≥ `present` (at most 4 lanes).
///
/// # Safety
/// The 2 bytes at each of those addresses, k < `present`, must be readable.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn load_f16x4_strided(
    p: *const u8,
    stride: usize,
    present: usize,
) -> float32x4_t {
    let h = |k: usize| {
        if k < present {
            // SAFETY: the caller guarantees each read for k < present.
            unsafe { p.add(k * stride).cast::<u16>().read_unaligned() }
        } else {
            0
        }
    };
    widen_f16x4([h(0), h(1), h(2), h(3)])
}

/// Widens the fp16 pairs (first, second) at `p + k·stride` for k < `present` (a block's
/// (d, m) or a Q8_1 block's (d, s)), and zeros for the lanes k ≥ `present` (at most 4).
///
/// # Safety
/// The 4 bytes at each of those addresses, k < `present`, must be readable.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn load_f16_pairs_x4(
    p: *const u8,
    stride: usize,
    present: usize,
) -> (float32x4_t, float32x4_t) {
    let w = |k: usize| {
        if k < present {
            // SAFETY: the caller guarantees each read for k < present.
            unsafe { p.add(k * stride).cast::<u32>().read_unaligned() }
        } else {
            0
        }
    };
    let words = [w(0), w(1), w(2), w(3)];
    // SAFETY: `words` holds four u32.
    let v = unsafe { vld1q_u32(words.as_ptr()) };
    (
        widen_f16x4_bits(vmovn_u32(v)),
        widen_f16x4_bits(vshrn_n_u32::<16>(v)),
    )
}

/// Splits 16 nibble bytes into the low nibbles (elements 0..16) and the high nibbles
/// (elements 16..32), as signed bytes 0..=15.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn split_nibbles(qs: uint8x16_t) -> (int8x16_t, int8x16_t) {
    (
        vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F))),
        vreinterpretq_s8_u8(vshrq_n_u8::<4>(qs)),
    )
}

/// Σ q·a over 32 elements (q = `lo` then `hi`, a = `a0` then `a1`) as four exact i32
/// partial sums, for |q| ≤ 15 (four products of at most 15·128 per i16 lane).
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn dot_i8x32_small(
    lo: int8x16_t,
    hi: int8x16_t,
    a0: int8x16_t,
    a1: int8x16_t,
) -> int32x4_t {
    let p = vmull_s8(vget_low_s8(lo), vget_low_s8(a0));
    let p = vmlal_high_s8(p, lo, a0);
    let p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(a1));
    vpaddlq_s16(vmlal_high_s8(p, hi, a1))
}

/// Lane k of the result is the sum of all four lanes of `v[k]`.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn sum_each_of_four(v: &[int32x4_t]) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]))
}

#[cfg(test)]
mod tests {
    use crate::harness;
    use crate::platform::{Backend, Isa};

    #[test]
    fn matches_portable_bit_for_bit() {
        match Backend::new(Isa::Neon) {
            Some(backend) => harness::check_backend(backend),
            None => harness::skip_or_fail(Isa::Neon),
        }
    }

    #[test]
    fn fcvtl_widening_matches_scalar_on_every_half() {
        for h in 0..=u16::MAX {
            // SAFETY: NEON is baseline on every AArch64 Linux target (and the platform
            // test confirms detection).
            let wide = unsafe { widen_one(h) };
            assert_eq!(
                wide.to_bits(),
                crate::fp16::f16_bits_to_f32(h).to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[target_feature(enable = "neon")]
    unsafe fn widen_one(h: u16) -> f32 {
        let mut out = [0.0f32; 4];
        // SAFETY: `out` holds four floats.
        unsafe { core::arch::aarch64::vst1q_f32(out.as_mut_ptr(), super::broadcast_f16(h)) };
        out[0]
    }
}

/// What NEON speeds up: every layout's `to_float` and `vec_dot`, with unchecked dot entries
/// for the C ABI (the entry's checks are all these kernels need), as on AVX2.
pub(crate) const KERNELS: KernelTable = {
    use WeightFormat::*;
    super::nl_sh64::neon::overrides(super::hct_v3m::neon::overrides(
        super::hct_v3::neon::overrides(KernelTable::PORTABLE),
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
    .with_gemm(Int4G16, super::neon_gemm::gemm_int4_g16)
    .with_gemm(Int4G32, super::neon_gemm::gemm_int4_g32)
    .with_to_float(Nl4Sh64, super::nl4_sh64::neon::to_float)
    .with_vec_dot(
        Nl4Sh64,
        super::nl4_sh64::neon::vec_dot_q8_0,
        Some(super::nl4_sh64::neon::dot_q8_0),
    )
};
