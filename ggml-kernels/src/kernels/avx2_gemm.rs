//! AVX2 multi-row kernels ([`crate::gemm`]) for the int4 layouts with Q8_0 activations that
//! the plugin registers: g32 (`int4_g32_fp16_v1`) and g16 (`int4_g16_fp16_v1`,
//! `int4_opt_v1`). Every output is bit for bit the row-pair kernel's of [`super::avx2`], hence
//! the reference's: the same exact i32 sums per unit, the same f32 term per unit, the same
//! lanes and the same final reduction. What changes is what a block of pairs shares instead
//! of recomputing per pair:
//!
//! - per activation row, once per call: each unit's Σa (exact in i32, then f32) and its
//!   widened fp16 scale, in the lane order of a step ([`ColumnTable`]);
//! - per weight row and step of eight units, once per group of up to [`COLS`] activation
//!   rows: the unpacked 4-bit codes and the widened (d, m).
//!
//! Per pair remain the integer products, their reduction to one i32 per unit, and the f32
//! terms. Rows longer than [`MAX_STEPS`] steps (g32 rows above 16,384 elements, g16 above
//! 8,192) take the generic tiled loop over the row-pair kernel, with the same results.

// Intrinsics are `unsafe fn`s on Rust 1.85; each body here already runs under the
// function's CPU-feature contract.
#![allow(unsafe_op_in_unsafe_fn)]

use core::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::avx2::{
    add_present, add_present_by_pairs, dot_u4_i8, g16_pair, g16_scales, int4_term,
    load_f16_pairs_x8, load_f16x8_strided, reduce_lanes, sum_each_half_of_four_unordered,
    sum_each_of_eight, sum_i8,
};
use super::{Avx2, GemmArgs};
use crate::gemm::gemm_by_pairs;
use crate::layout::{int4_block_bytes, WeightFormat, Q8_0_BLOCK_BYTES};

/// Activation rows that share one unpacking of a weight row's step.
const COLS: usize = 4;
/// Steps of eight units a row may have on this path (512 units).
const MAX_STEPS: usize = 64;
const G32_BLOCK: usize = int4_block_bytes(32);
const G16_BLOCK: usize = int4_block_bytes(16);

/// One activation row's per-step data: Σa of each unit (f32, exact) and the widened scale of
/// the block each unit meets, lane k holding the unit the row kernel puts in lane k.
struct ColumnTable {
    asum: [MaybeUninit<__m256>; MAX_STEPS],
    dy: [MaybeUninit<__m256>; MAX_STEPS],
}

impl ColumnTable {
    fn new() -> ColumnTable {
        ColumnTable {
            asum: [MaybeUninit::uninit(); MAX_STEPS],
            dy: [MaybeUninit::uninit(); MAX_STEPS],
        }
    }
}

/// `int4_g32` × Q8_0 for a block of row pairs.
///
/// # Safety
/// [`GemmArgs`]' contract for the g32 layout; the CPU supports AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn gemm_int4_g32(a: &GemmArgs) {
    let units = a.n / 32;
    if units.div_ceil(8) > MAX_STEPS {
        return gemm_by_pairs::<Avx2, { WeightFormat::Int4G32 as usize }>(a);
    }
    let mut tables = [
        ColumnTable::new(),
        ColumnTable::new(),
        ColumnTable::new(),
        ColumnTable::new(),
    ];
    for j0 in (0..a.nc).step_by(COLS) {
        let cols = (a.nc - j0).min(COLS);
        for (c, table) in tables.iter_mut().enumerate().take(cols) {
            // SAFETY: activation row j0 + c exists (caller contract).
            unsafe { prepare_g32(a.y.add((j0 + c) * a.by), units, table) };
        }
        for i in 0..a.nr {
            // SAFETY: weight row i, activation rows j0.. j0 + cols and their outputs exist.
            unsafe {
                let row = a.x.add(i * a.bx);
                let ys = |c: usize| a.y.add((j0 + c).min(a.nc - 1) * a.by);
                let out = a.s.add(j0 * a.bs + i);
                match cols {
                    1 => row_g32::<1>(row, [ys(0)], &tables, units, out, a.bs),
                    2 => row_g32::<2>(row, [ys(0), ys(1)], &tables, units, out, a.bs),
                    3 => row_g32::<3>(row, [ys(0), ys(1), ys(2)], &tables, units, out, a.bs),
                    _ => row_g32::<4>(row, [ys(0), ys(1), ys(2), ys(3)], &tables, units, out, a.bs),
                }
            }
        }
    }
}

/// Fills `t` for the g32 steps of the activation row at `y` (`units` blocks).
///
/// # Safety
/// `y` holds `units` whole Q8_0 blocks; units ≤ 8·[`MAX_STEPS`].
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn prepare_g32(y: *const u8, units: usize, t: &mut ColumnTable) {
    for step in 0..units.div_ceil(8) {
        let base = step * 8;
        let present = (units - base).min(8);
        let mut asums = [_mm256_setzero_si256(); 8];
        for (k, asum) in asums.iter_mut().enumerate().take(present) {
            // SAFETY: block base + k exists; its quants are bytes 2..34.
            *asum = sum_i8(unsafe {
                _mm256_loadu_si256(y.add((base + k) * Q8_0_BLOCK_BYTES + 2).cast())
            });
        }
        t.asum[step].write(_mm256_cvtepi32_ps(sum_each_of_eight(&asums)));
        // SAFETY: the scales of the present blocks only.
        t.dy[step].write(unsafe {
            load_f16x8_strided(y.add(base * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present)
        });
    }
}

/// One g32 weight row against `C` prepared activation rows; writes output c at `out + c·bs`.
///
/// # Safety
/// The row holds `units` blocks, each `ys[c]` `units` Q8_0 blocks with `tables[c]` prepared
/// from it; the outputs are writable.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn row_g32<const C: usize>(
    row: *const u8,
    ys: [*const u8; C],
    tables: &[ColumnTable; COLS],
    units: usize,
    out: *mut f32,
    bs: usize,
) {
    let mut acc = [_mm256_setzero_ps(); C];
    let whole = units / 8;
    for step in 0..whole {
        step_g32::<C, 8>(row, &ys, tables, step, &mut acc);
    }
    // One arm per count, so that each step sees a constant count (as the row-pair kernel).
    match units % 8 {
        0 => {}
        1 => step_g32::<C, 1>(row, &ys, tables, whole, &mut acc),
        2 => step_g32::<C, 2>(row, &ys, tables, whole, &mut acc),
        3 => step_g32::<C, 3>(row, &ys, tables, whole, &mut acc),
        4 => step_g32::<C, 4>(row, &ys, tables, whole, &mut acc),
        5 => step_g32::<C, 5>(row, &ys, tables, whole, &mut acc),
        6 => step_g32::<C, 6>(row, &ys, tables, whole, &mut acc),
        _ => step_g32::<C, 7>(row, &ys, tables, whole, &mut acc),
    }
    for (c, lanes) in acc.iter().enumerate() {
        // SAFETY: output c is writable (caller contract).
        unsafe { *out.add(c * bs) = reduce_lanes(*lanes) };
    }
}

/// Units 8·step .. 8·step + P of one g32 row, added to each pair's lanes (only the present
/// lanes when P < 8, as the row-pair kernel does).
///
/// # Safety
/// As [`row_g32`]; the step's P units exist.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn step_g32<const C: usize, const P: usize>(
    row: *const u8,
    ys: &[*const u8; C],
    tables: &[ColumnTable; COLS],
    step: usize,
    acc: &mut [__m256; C],
) {
    let base = step * 8;
    let low_nibbles = _mm_set1_epi8(0x0F);
    let mut q = [_mm256_setzero_si256(); 8];
    for (k, codes) in q.iter_mut().enumerate().take(P) {
        // SAFETY: block base + k of the row exists; its 16 nibble bytes start at 4.
        let qs = unsafe { _mm_loadu_si128(row.add((base + k) * G32_BLOCK + 4).cast()) };
        let lo = _mm_and_si128(qs, low_nibbles);
        let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low_nibbles);
        *codes = _mm256_set_m128i(hi, lo);
    }
    // SAFETY: the scales of the present blocks only.
    let (dx, mx) = unsafe { load_f16_pairs_x8(row.add(base * G32_BLOCK), G32_BLOCK, P) };
    for c in 0..C {
        let mut isums = [_mm256_setzero_si256(); 8];
        for k in 0..P {
            // SAFETY: block base + k of activation row c exists; quants at 2..34.
            let a =
                unsafe { _mm256_loadu_si256(ys[c].add((base + k) * Q8_0_BLOCK_BYTES + 2).cast()) };
            isums[k] = dot_u4_i8(q[k], a);
        }
        let isum = _mm256_cvtepi32_ps(sum_each_of_eight(&isums));
        // SAFETY: prepare_g32 wrote every step of this row's table.
        let (asum, dy) = unsafe {
            (
                tables[c].asum[step].assume_init(),
                tables[c].dy[step].assume_init(),
            )
        };
        let terms = int4_term(dx, mx, dy, isum, asum);
        acc[c] = if P == 8 {
            _mm256_add_ps(acc[c], terms)
        } else {
            add_present(acc[c], terms, P)
        };
    }
}

/// `int4_g16` × Q8_0 for a block of row pairs (lanes in the row-pair kernel's order
/// [0, 2, 4, 6, 1, 3, 5, 7] until the final permute).
///
/// # Safety
/// [`GemmArgs`]' contract for the g16 layout; the CPU supports AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn gemm_int4_g16(a: &GemmArgs) {
    let units = a.n / 16;
    if units.div_ceil(8) > MAX_STEPS {
        return gemm_by_pairs::<Avx2, { WeightFormat::Int4G16 as usize }>(a);
    }
    let mut tables = [
        ColumnTable::new(),
        ColumnTable::new(),
        ColumnTable::new(),
        ColumnTable::new(),
    ];
    for j0 in (0..a.nc).step_by(COLS) {
        let cols = (a.nc - j0).min(COLS);
        for (c, table) in tables.iter_mut().enumerate().take(cols) {
            // SAFETY: activation row j0 + c exists (caller contract).
            unsafe { prepare_g16(a.y.add((j0 + c) * a.by), units, table) };
        }
        for i in 0..a.nr {
            // SAFETY: weight row i, activation rows j0.. j0 + cols and their outputs exist.
            unsafe {
                let row = a.x.add(i * a.bx);
                let ys = |c: usize| a.y.add((j0 + c).min(a.nc - 1) * a.by);
                let out = a.s.add(j0 * a.bs + i);
                match cols {
                    1 => row_g16::<1>(row, [ys(0)], &tables, units, out, a.bs),
                    2 => row_g16::<2>(row, [ys(0), ys(1)], &tables, units, out, a.bs),
                    3 => row_g16::<3>(row, [ys(0), ys(1), ys(2)], &tables, units, out, a.bs),
                    _ => row_g16::<4>(row, [ys(0), ys(1), ys(2), ys(3)], &tables, units, out, a.bs),
                }
            }
        }
    }
}

/// Fills `t` for the g16 steps of the activation row at `y` (`units` groups, an even number:
/// a step's eight groups meet four Q8_0 blocks, groups 2k and 2k + 1 halves of block k).
///
/// # Safety
/// `y` holds `units / 2` whole Q8_0 blocks; units ≤ 8·[`MAX_STEPS`].
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn prepare_g16(y: *const u8, units: usize, t: &mut ColumnTable) {
    for step in 0..units.div_ceil(8) {
        let first = step * 4;
        let pairs = (units / 2 - first).min(4);
        let mut asums = [_mm256_setzero_si256(); 4];
        let mut dy_bits = 0u64;
        for (k, asum) in asums.iter_mut().enumerate().take(pairs) {
            // SAFETY: block first + k exists: scale at 0, quants at 2..34.
            let (a, dy) = unsafe {
                let yb = y.add((first + k) * Q8_0_BLOCK_BYTES);
                (
                    _mm256_loadu_si256(yb.add(2).cast()),
                    yb.cast::<u16>().read_unaligned(),
                )
            };
            *asum = sum_i8(a);
            dy_bits |= u64::from(dy) << (16 * k);
        }
        t.asum[step].write(_mm256_cvtepi32_ps(sum_each_half_of_four_unordered(&asums)));
        // Groups 2k and 2k + 1 both meet block k: lanes k and 4 + k.
        t.dy[step].write(_mm256_cvtph_ps(_mm_set1_epi64x(dy_bits as i64)));
    }
}

/// One g16 weight row against `C` prepared activation rows; writes output c at `out + c·bs`.
///
/// # Safety
/// As [`row_g32`], for g16 groups.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn row_g16<const C: usize>(
    row: *const u8,
    ys: [*const u8; C],
    tables: &[ColumnTable; COLS],
    units: usize,
    out: *mut f32,
    bs: usize,
) {
    let mut acc = [_mm256_setzero_ps(); C];
    let whole = units / 8;
    for step in 0..whole {
        step_g16::<C, 4>(row, &ys, tables, step, &mut acc);
    }
    match (units % 8) / 2 {
        0 => {}
        1 => step_g16::<C, 1>(row, &ys, tables, whole, &mut acc),
        2 => step_g16::<C, 2>(row, &ys, tables, whole, &mut acc),
        _ => step_g16::<C, 3>(row, &ys, tables, whole, &mut acc),
    }
    let natural = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (c, lanes) in acc.iter().enumerate() {
        // SAFETY: output c is writable (caller contract).
        unsafe { *out.add(c * bs) = reduce_lanes(_mm256_permutevar8x32_ps(*lanes, natural)) };
    }
}

/// Group pairs 4·step .. 4·step + P of one g16 row (groups 8·step .. 8·step + 2P).
///
/// # Safety
/// As [`row_g16`]; the step's P pairs exist.
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn step_g16<const C: usize, const P: usize>(
    row: *const u8,
    ys: &[*const u8; C],
    tables: &[ColumnTable; COLS],
    step: usize,
    acc: &mut [__m256; C],
) {
    let first = step * 4;
    let mut q = [_mm256_setzero_si256(); 4];
    let mut heads = [_mm_setzero_ps(); 4];
    for k in 0..P {
        // SAFETY: groups 2(first + k) and 2(first + k) + 1 of the row exist.
        (heads[k], q[k]) = unsafe { g16_pair(row.add(2 * (first + k) * G16_BLOCK)) };
    }
    let (dx, mx) = g16_scales(&heads);
    for c in 0..C {
        let mut isums = [_mm256_setzero_si256(); 4];
        for k in 0..P {
            // SAFETY: block first + k of activation row c exists; quants at 2..34.
            let a =
                unsafe { _mm256_loadu_si256(ys[c].add((first + k) * Q8_0_BLOCK_BYTES + 2).cast()) };
            isums[k] = dot_u4_i8(q[k], a);
        }
        let isum = _mm256_cvtepi32_ps(sum_each_half_of_four_unordered(&isums));
        // SAFETY: prepare_g16 wrote every step of this row's table.
        let (asum, dy) = unsafe {
            (
                tables[c].asum[step].assume_init(),
                tables[c].dy[step].assume_init(),
            )
        };
        let terms = int4_term(dx, mx, dy, isum, asum);
        acc[c] = if P == 4 {
            _mm256_add_ps(acc[c], terms)
        } else {
            add_present_by_pairs(acc[c], terms, P)
        };
    }
}
