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
//! each iteration handles eight units, reduces each unit's exact i32 partial sums with
//! pairwise adds, and adds the eight terms lane-wise. Units past the last multiple of eight
//! go through the reference's own term functions into the same lanes.

// Intrinsics are `unsafe fn`s on Rust 1.85; each body here already runs under the
// function's CPU-feature contract.
#![allow(unsafe_op_in_unsafe_fn)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::portable::{self, LANES};
use crate::layout::{
    check_to_float, check_vec_dot, int4_block_bytes, KernelError, WeightFormat, Q4_0_BLOCK_BYTES,
    Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES, Q8_1_BLOCK_BYTES, QK,
};

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
    let units = check_vec_dot(WeightFormat::Q4_0, n, x.len(), y.len())?;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let full = units - units % LANES;
    let mut acc = [vdupq_n_f32(0.0); 2];
    for base in (0..full).step_by(LANES) {
        let mut isums = [vdupq_n_s32(0); LANES];
        for (k, isum) in isums.iter_mut().enumerate() {
            // SAFETY: check_vec_dot found `units` whole blocks in x and y, and base + k < units.
            *isum = unsafe {
                let xb = xp.add((base + k) * Q4_0_BLOCK_BYTES);
                let ya = yp.add((base + k) * Q8_0_BLOCK_BYTES + 2);
                let qs = vld1q_u8(xb.add(2));
                let eight = vdupq_n_s8(8);
                let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F))), eight);
                let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(qs)), eight);
                // |(q − 8)·a| ≤ 8·128: four products per i16 lane stay exact.
                dot_i8x32_small(lo, hi, vld1q_s8(ya.cast()), vld1q_s8(ya.add(16).cast()))
            };
        }
        for ((half, sums), acc_half) in isums.chunks_exact(4).enumerate().zip(acc.iter_mut()) {
            let start = base + 4 * half;
            // SAFETY: blocks start..start + 4 are inside x and y (as above).
            let (dx, dy) = unsafe {
                (
                    load_f16x4_strided(xp.add(start * Q4_0_BLOCK_BYTES), Q4_0_BLOCK_BYTES),
                    load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES),
                )
            };
            let isum = vcvtq_f32_s32(sum_each_of_four(sums));
            *acc_half = vaddq_f32(*acc_half, vmulq_f32(vmulq_f32(dx, dy), isum));
        }
    }
    Ok(portable::accumulate(full, units, store_lanes(acc), |u| {
        portable::term_q4_0_q8_0(x, y, u)
    }))
}

/// The reference's [`portable::vec_dot_q8_0_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q8_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(WeightFormat::Q8_0, n, x.len(), y.len())?;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let full = units - units % LANES;
    let mut acc = [vdupq_n_f32(0.0); 2];
    for base in (0..full).step_by(LANES) {
        let mut isums = [vdupq_n_s32(0); LANES];
        for (k, isum) in isums.iter_mut().enumerate() {
            // SAFETY: check_vec_dot found `units` whole blocks in x and y, and base + k < units.
            *isum = unsafe {
                let xq = xp.add((base + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
                let ya = yp.add((base + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
                let (x0, x1) = (vld1q_s8(xq), vld1q_s8(xq.add(16)));
                let (a0, a1) = (vld1q_s8(ya), vld1q_s8(ya.add(16)));
                // Each i16 product is exact ((−128)² = 2^14); pairs widen to i32 at once.
                let s = vpaddlq_s16(vmull_s8(vget_low_s8(x0), vget_low_s8(a0)));
                let s = vpadalq_s16(s, vmull_high_s8(x0, a0));
                let s = vpadalq_s16(s, vmull_s8(vget_low_s8(x1), vget_low_s8(a1)));
                vpadalq_s16(s, vmull_high_s8(x1, a1))
            };
        }
        for ((half, sums), acc_half) in isums.chunks_exact(4).enumerate().zip(acc.iter_mut()) {
            let start = base + 4 * half;
            // SAFETY: blocks start..start + 4 are inside x and y (as above).
            let (dx, dy) = unsafe {
                (
                    load_f16x4_strided(xp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES),
                    load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES),
                )
            };
            let isum = vcvtq_f32_s32(sum_each_of_four(sums));
            *acc_half = vaddq_f32(*acc_half, vmulq_f32(vmulq_f32(dx, dy), isum));
        }
    }
    Ok(portable::accumulate(full, units, store_lanes(acc), |u| {
        portable::term_q8_0_q8_0(x, y, u)
    }))
}

/// The reference's [`portable::vec_dot_q4_1_q8_1`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q4_1_q8_1(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let units = check_vec_dot(WeightFormat::Q4_1, n, x.len(), y.len())?;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let full = units - units % LANES;
    let mut acc = [vdupq_n_f32(0.0); 2];
    for base in (0..full).step_by(LANES) {
        let mut isums = [vdupq_n_s32(0); LANES];
        for (k, isum) in isums.iter_mut().enumerate() {
            // SAFETY: check_vec_dot found `units` whole blocks in x and y, and base + k < units.
            *isum = unsafe {
                let qs = vld1q_u8(xp.add((base + k) * Q4_1_BLOCK_BYTES + 4));
                let ya = yp.add((base + k) * Q8_1_BLOCK_BYTES + 4).cast::<i8>();
                let (lo, hi) = split_nibbles(qs);
                dot_i8x32_small(lo, hi, vld1q_s8(ya), vld1q_s8(ya.add(16)))
            };
        }
        for ((half, sums), acc_half) in isums.chunks_exact(4).enumerate().zip(acc.iter_mut()) {
            let start = base + 4 * half;
            // SAFETY: blocks start..start + 4 are inside x and y (as above).
            let ((dx, mx), (dy, sy)) = unsafe {
                (
                    load_f16_pairs_x4(xp.add(start * Q4_1_BLOCK_BYTES), Q4_1_BLOCK_BYTES),
                    load_f16_pairs_x4(yp.add(start * Q8_1_BLOCK_BYTES), Q8_1_BLOCK_BYTES),
                )
            };
            let isum = vcvtq_f32_s32(sum_each_of_four(sums));
            let term = vaddq_f32(vmulq_f32(vmulq_f32(dx, dy), isum), vmulq_f32(mx, sy));
            *acc_half = vaddq_f32(*acc_half, term);
        }
    }
    Ok(portable::accumulate(full, units, store_lanes(acc), |u| {
        portable::term_q4_1_q8_1(x, y, u)
    }))
}

/// The reference's [`portable::vec_dot_int4_g32_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_int4_g32_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    const BLOCK: usize = int4_block_bytes(32);
    let units = check_vec_dot(WeightFormat::Int4G32, n, x.len(), y.len())?;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let full = units - units % LANES;
    let mut acc = [vdupq_n_f32(0.0); 2];
    for base in (0..full).step_by(LANES) {
        let mut isums = [vdupq_n_s32(0); LANES];
        let mut asums = [vdupq_n_s32(0); LANES];
        for k in 0..LANES {
            // SAFETY: check_vec_dot found `units` whole blocks in x and y, and base + k < units.
            let (qs, a0, a1) = unsafe {
                let ya = yp.add((base + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
                (
                    vld1q_u8(xp.add((base + k) * BLOCK + 4)),
                    vld1q_s8(ya),
                    vld1q_s8(ya.add(16)),
                )
            };
            let (lo, hi) = split_nibbles(qs);
            isums[k] = dot_i8x32_small(lo, hi, a0, a1);
            asums[k] = vpaddlq_s16(vpadalq_s8(vpaddlq_s8(a0), a1));
        }
        for (half, acc_half) in acc.iter_mut().enumerate() {
            let start = base + 4 * half;
            let group = 4 * half..4 * half + 4;
            // SAFETY: blocks start..start + 4 are inside x and y (as above).
            let ((dx, mx), dy) = unsafe {
                (
                    load_f16_pairs_x4(xp.add(start * BLOCK), BLOCK),
                    load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES),
                )
            };
            let isum = vcvtq_f32_s32(sum_each_of_four(&isums[group.clone()]));
            let asum = vcvtq_f32_s32(sum_each_of_four(&asums[group]));
            *acc_half = vaddq_f32(*acc_half, int4_term(dx, mx, dy, isum, asum));
        }
    }
    Ok(portable::accumulate(full, units, store_lanes(acc), |u| {
        portable::term_int4_q8_0::<32>(x, y, u)
    }))
}

/// Eight g16 groups are four activation blocks of two groups each.
///
/// The reference's [`portable::vec_dot_int4_g16_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_int4_g16_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    const BLOCK: usize = int4_block_bytes(16);
    let units = check_vec_dot(WeightFormat::Int4G16, n, x.len(), y.len())?;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let full = units - units % LANES;
    let mut acc = [vdupq_n_f32(0.0); 2];
    for base in (0..full).step_by(LANES) {
        let mut isums = [vdupq_n_s32(0); LANES];
        let mut asums = [vdupq_n_s32(0); LANES];
        for k in 0..LANES {
            let group = base + k;
            // SAFETY: check_vec_dot found `units` whole groups in x and units / 2 whole
            // blocks in y; group `group` meets the 16 activations at offset 16·(group mod 2)
            // of block group / 2.
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
        for (half, acc_half) in acc.iter_mut().enumerate() {
            let start = base + 4 * half;
            let lanes = 4 * half..4 * half + 4;
            // SAFETY: groups start..start + 4 and blocks start / 2, start / 2 + 1 are inside.
            let ((dx, mx), dy) = unsafe {
                let first = start / 2;
                let h0 = yp
                    .add(first * Q8_0_BLOCK_BYTES)
                    .cast::<u16>()
                    .read_unaligned();
                let h1 = yp
                    .add((first + 1) * Q8_0_BLOCK_BYTES)
                    .cast::<u16>()
                    .read_unaligned();
                (
                    load_f16_pairs_x4(xp.add(start * BLOCK), BLOCK),
                    widen_f16x4([h0, h0, h1, h1]),
                )
            };
            let isum = vcvtq_f32_s32(sum_each_of_four(&isums[lanes.clone()]));
            let asum = vcvtq_f32_s32(sum_each_of_four(&asums[lanes]));
            *acc_half = vaddq_f32(*acc_half, int4_term(dx, mx, dy, isum, asum));
        }
    }
    Ok(portable::accumulate(full, units, store_lanes(acc), |u| {
        portable::term_int4_q8_0::<16>(x, y, u)
    }))
}

/// Eight g8 groups are two activation blocks of four groups each; four g8 blocks are 32
/// contiguous bytes whose 32-bit words alternate scales and nibbles, so one unzip separates
/// them.
///
/// The reference's [`portable::vec_dot_int4_g8_q8_0`], same checks and same bits.
///
/// # Safety
/// The CPU must support NEON (a [`crate::platform::Backend`] of this ISA proves it).
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_int4_g8_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    const BLOCK: usize = int4_block_bytes(8);
    let units = check_vec_dot(WeightFormat::Int4G8, n, x.len(), y.len())?;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let full = units - units % LANES;
    let mut acc = [vdupq_n_f32(0.0); 2];
    for base in (0..full).step_by(LANES) {
        for (half, acc_half) in acc.iter_mut().enumerate() {
            let start = base + 4 * half;
            let block = start / 4;
            // SAFETY: check_vec_dot found `units` whole groups in x and units / 4 whole
            // blocks in y; groups start..start + 4 and activation block `block` are inside.
            let (w0, w1, a0, a1, dy) = unsafe {
                let g = xp.add(start * BLOCK);
                let ya = yp.add(block * Q8_0_BLOCK_BYTES);
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
            let term = int4_term(dx, mx, dy, vcvtq_f32_s32(isum), vcvtq_f32_s32(asum));
            *acc_half = vaddq_f32(*acc_half, term);
        }
    }
    Ok(portable::accumulate(full, units, store_lanes(acc), |u| {
        portable::term_int4_q8_0::<8>(x, y, u)
    }))
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
unsafe fn int4_term(
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

#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_lanes(acc: [float32x4_t; 2]) -> [f32; LANES] {
    let mut lanes = [0.0f32; LANES];
    // SAFETY: `lanes` holds eight floats.
    unsafe {
        vst1q_f32(lanes.as_mut_ptr(), acc[0]);
        vst1q_f32(lanes.as_mut_ptr().add(4), acc[1]);
    }
    lanes
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
unsafe fn widen_f16x4(bits: [u16; 4]) -> float32x4_t {
    // SAFETY: `bits` holds four u16.
    widen_f16x4_bits(unsafe { vld1_u16(bits.as_ptr()) })
}

#[target_feature(enable = "neon")]
#[inline]
unsafe fn broadcast_f16(bits: u16) -> float32x4_t {
    widen_f16x4_bits(vdup_n_u16(bits))
}

/// Widens the four fp16 values at `p + k·stride`, k = 0..4.
///
/// # Safety
/// The 2 bytes at each of those addresses must be readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load_f16x4_strided(p: *const u8, stride: usize) -> float32x4_t {
    // SAFETY: the caller guarantees each read.
    let h = |k: usize| unsafe { p.add(k * stride).cast::<u16>().read_unaligned() };
    widen_f16x4([h(0), h(1), h(2), h(3)])
}

/// Widens the four fp16 pairs (first, second) at `p + k·stride`, k = 0..4: a block's
/// (d, m) or a Q8_1 block's (d, s).
///
/// # Safety
/// The 4 bytes at each of those addresses must be readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load_f16_pairs_x4(p: *const u8, stride: usize) -> (float32x4_t, float32x4_t) {
    // SAFETY: the caller guarantees each read.
    let w = |k: usize| unsafe { p.add(k * stride).cast::<u32>().read_unaligned() };
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
unsafe fn split_nibbles(qs: uint8x16_t) -> (int8x16_t, int8x16_t) {
    (
        vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F))),
        vreinterpretq_s8_u8(vshrq_n_u8::<4>(qs)),
    )
}

/// Σ q·a over 32 elements (q = `lo` then `hi`, a = `a0` then `a1`) as four exact i32
/// partial sums, for |q| ≤ 15 (four products of at most 15·128 per i16 lane).
#[target_feature(enable = "neon")]
#[inline]
unsafe fn dot_i8x32_small(lo: int8x16_t, hi: int8x16_t, a0: int8x16_t, a1: int8x16_t) -> int32x4_t {
    let p = vmull_s8(vget_low_s8(lo), vget_low_s8(a0));
    let p = vmlal_high_s8(p, lo, a0);
    let p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(a1));
    vpaddlq_s16(vmlal_high_s8(p, hi, a1))
}

/// Lane k of the result is the sum of all four lanes of `v[k]`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn sum_each_of_four(v: &[int32x4_t]) -> int32x4_t {
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
