//! NEON multi-row kernels ([`crate::gemm`]) for int4 g32 and g16 with Q8_0 activations, the
//! counterparts of [`super::avx2_gemm`]: every output bit for bit the row-pair kernel's of
//! [`super::neon`] (the reference's). The row-pair kernel works in half steps of four units
//! (lanes 0..4 or 4..8 of the eight); so does this one, sharing between pairs:
//!
//! - per activation row, once per call: each unit's Σa and the widened scale of the block it
//!   meets, per half step ([`ColumnTable`]);
//! - per weight row and half step, once per group of up to [`COLS`] activation rows: the
//!   split 4-bit codes and the widened (d, m).
//!
//! Rows longer than [`MAX_HALVES`] half steps take the generic tiled loop.

// Intrinsics are `unsafe fn`s on Rust 1.85; each body here already runs under the
// function's CPU-feature contract.
#![allow(unsafe_op_in_unsafe_fn)]

use core::arch::aarch64::*;
use std::mem::MaybeUninit;

use super::neon::{
    add_present, dot_i8x32_small, int4_term, load_f16_pairs_x4, load_f16x4_strided, reduce_lanes,
    split_nibbles, sum_each_of_four, widen_f16x4,
};
use super::{GemmArgs, Neon};
use crate::gemm::gemm_by_pairs;
use crate::layout::{int4_block_bytes, WeightFormat, Q8_0_BLOCK_BYTES};

/// Activation rows that share one unpacking of a weight row's half step.
const COLS: usize = 4;
/// Half steps of four units a row may have on this path (512 units).
const MAX_HALVES: usize = 128;
const G32_BLOCK: usize = int4_block_bytes(32);
const G16_BLOCK: usize = int4_block_bytes(16);

/// One activation row's per-half-step data: Σa of each unit (f32, exact) and the widened
/// scale of the block each unit meets, lane k for unit 4·half + k.
struct ColumnTable {
    asum: [MaybeUninit<float32x4_t>; MAX_HALVES],
    dy: [MaybeUninit<float32x4_t>; MAX_HALVES],
}

impl ColumnTable {
    fn new() -> ColumnTable {
        ColumnTable {
            asum: [MaybeUninit::uninit(); MAX_HALVES],
            dy: [MaybeUninit::uninit(); MAX_HALVES],
        }
    }
}

/// Which layout a kernel instance runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    G32,
    G16,
}

/// `int4_g32` × Q8_0 for a block of row pairs.
///
/// # Safety
/// [`GemmArgs`]' contract for the g32 layout; the CPU supports NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gemm_int4_g32(a: &GemmArgs) {
    if (a.n / 32).div_ceil(4) > MAX_HALVES {
        return gemm_by_pairs::<Neon, { WeightFormat::Int4G32 as usize }>(a);
    }
    gemm_int4::<{ Layout::G32 as u8 }>(a, a.n / 32)
}

/// `int4_g16` × Q8_0 for a block of row pairs.
///
/// # Safety
/// [`GemmArgs`]' contract for the g16 layout; the CPU supports NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gemm_int4_g16(a: &GemmArgs) {
    if (a.n / 16).div_ceil(4) > MAX_HALVES {
        return gemm_by_pairs::<Neon, { WeightFormat::Int4G16 as usize }>(a);
    }
    gemm_int4::<{ Layout::G16 as u8 }>(a, a.n / 16)
}

/// # Safety
/// As the public kernels; `units` ≤ 4·[`MAX_HALVES`].
#[target_feature(enable = "neon")]
#[inline]
unsafe fn gemm_int4<const L: u8>(a: &GemmArgs, units: usize) {
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
            unsafe { prepare::<L>(a.y.add((j0 + c) * a.by), units, table) };
        }
        for i in 0..a.nr {
            // SAFETY: weight row i, activation rows j0..j0 + cols and their outputs exist.
            unsafe {
                let row = a.x.add(i * a.bx);
                let ys = |c: usize| a.y.add((j0 + c).min(a.nc - 1) * a.by);
                let out = a.s.add(j0 * a.bs + i);
                match cols {
                    1 => row_int4::<L, 1>(row, [ys(0)], &tables, units, out, a.bs),
                    2 => row_int4::<L, 2>(row, [ys(0), ys(1)], &tables, units, out, a.bs),
                    3 => row_int4::<L, 3>(row, [ys(0), ys(1), ys(2)], &tables, units, out, a.bs),
                    _ => row_int4::<L, 4>(
                        row,
                        [ys(0), ys(1), ys(2), ys(3)],
                        &tables,
                        units,
                        out,
                        a.bs,
                    ),
                }
            }
        }
    }
}

/// Fills `t` for the half steps of the activation row at `y` (`units` weight units).
///
/// # Safety
/// `y` holds the Q8_0 blocks the row's units meet.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn prepare<const L: u8>(y: *const u8, units: usize, t: &mut ColumnTable) {
    for half in 0..units.div_ceil(4) {
        let start = 4 * half;
        let present = (units - start).min(4);
        let mut asums = [vdupq_n_s32(0); 4];
        if L == Layout::G32 as u8 {
            for (k, asum) in asums.iter_mut().enumerate().take(present) {
                // SAFETY: block start + k exists; quants at 2..34.
                let (a0, a1) = unsafe {
                    let ya = y.add((start + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
                    (vld1q_s8(ya), vld1q_s8(ya.add(16)))
                };
                *asum = vpaddlq_s16(vpadalq_s8(vpaddlq_s8(a0), a1));
            }
            // SAFETY: the scales of the present blocks only.
            t.dy[half].write(unsafe {
                load_f16x4_strided(y.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present)
            });
        } else {
            for (k, asum) in asums.iter_mut().enumerate().take(present) {
                let group = start + k;
                // SAFETY: group `group` meets 16 activations of block group / 2, which exists.
                let a = unsafe {
                    vld1q_s8(
                        y.add((group / 2) * Q8_0_BLOCK_BYTES + 2 + 16 * (group % 2))
                            .cast(),
                    )
                };
                *asum = vpaddlq_s16(vpaddlq_s8(a));
            }
            // SAFETY: blocks start / 2 and, when present, start / 2 + 1 exist.
            let h = |b: usize| unsafe {
                if 2 * b < present {
                    y.add((start / 2 + b) * Q8_0_BLOCK_BYTES)
                        .cast::<u16>()
                        .read_unaligned()
                } else {
                    0
                }
            };
            let (h0, h1) = (h(0), h(1));
            t.dy[half].write(widen_f16x4([h0, h0, h1, h1]));
        }
        t.asum[half].write(vcvtq_f32_s32(sum_each_of_four(&asums)));
    }
}

/// One weight row against `C` prepared activation rows; writes output c at `out + c·bs`.
///
/// # Safety
/// The row holds `units` units, each `ys[c]` the blocks they meet with `tables[c]` prepared
/// from it; the outputs are writable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn row_int4<const L: u8, const C: usize>(
    row: *const u8,
    ys: [*const u8; C],
    tables: &[ColumnTable; COLS],
    units: usize,
    out: *mut f32,
    bs: usize,
) {
    let mut acc = [[vdupq_n_f32(0.0); 2]; C];
    let whole = units / 4;
    for half in 0..whole {
        half_step::<L, C, 4>(row, &ys, tables, half, &mut acc);
    }
    match units % 4 {
        0 => {}
        1 => half_step::<L, C, 1>(row, &ys, tables, whole, &mut acc),
        2 => half_step::<L, C, 2>(row, &ys, tables, whole, &mut acc),
        _ => half_step::<L, C, 3>(row, &ys, tables, whole, &mut acc),
    }
    for (c, lanes) in acc.iter().enumerate() {
        // SAFETY: output c is writable (caller contract).
        unsafe { *out.add(c * bs) = reduce_lanes(*lanes) };
    }
}

/// Units 4·half .. 4·half + P of one row, added to lanes 4·(half mod 2) .. + P of each pair
/// (only the present lanes when P < 4, as the row-pair kernel does).
///
/// # Safety
/// As [`row_int4`]; the half step's P units exist.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn half_step<const L: u8, const C: usize, const P: usize>(
    row: *const u8,
    ys: &[*const u8; C],
    tables: &[ColumnTable; COLS],
    half: usize,
    acc: &mut [[float32x4_t; 2]; C],
) {
    let start = 4 * half;
    let zero = vdupq_n_s8(0);
    let g32 = L == Layout::G32 as u8;
    let block = if g32 { G32_BLOCK } else { G16_BLOCK };
    // Codes of each unit: g32 (lo, hi) 16 + 16; g16 in the low halves, 8 + 8.
    let mut codes = [(zero, zero); 4];
    for (k, c) in codes.iter_mut().enumerate().take(P) {
        // SAFETY: unit start + k of the row exists; its nibble bytes start at 4.
        *c = unsafe {
            let p = row.add((start + k) * block + 4);
            if g32 {
                split_nibbles(vld1q_u8(p))
            } else {
                let qs = vld1_u8(p);
                (
                    vcombine_s8(
                        vreinterpret_s8_u8(vand_u8(qs, vdup_n_u8(0x0F))),
                        vdup_n_s8(0),
                    ),
                    vcombine_s8(vreinterpret_s8_u8(vshr_n_u8::<4>(qs)), vdup_n_s8(0)),
                )
            }
        };
    }
    // SAFETY: the scales of the present units only.
    let (dx, mx) = unsafe { load_f16_pairs_x4(row.add(start * block), block, P) };
    for c in 0..C {
        let mut isums = [vdupq_n_s32(0); 4];
        for (k, isum) in isums.iter_mut().enumerate().take(P) {
            let (lo, hi) = codes[k];
            // SAFETY: the activations unit start + k meets exist (caller contract).
            *isum = unsafe {
                if g32 {
                    let ya = ys[c].add((start + k) * Q8_0_BLOCK_BYTES + 2).cast::<i8>();
                    dot_i8x32_small(lo, hi, vld1q_s8(ya), vld1q_s8(ya.add(16)))
                } else {
                    let group = start + k;
                    let a = vld1q_s8(
                        ys[c]
                            .add((group / 2) * Q8_0_BLOCK_BYTES + 2 + 16 * (group % 2))
                            .cast(),
                    );
                    // Eight products of at most 15·128 per i16 lane pair: exact.
                    vpaddlq_s16(vmlal_s8(
                        vmull_s8(vget_low_s8(lo), vget_low_s8(a)),
                        vget_low_s8(hi),
                        vget_high_s8(a),
                    ))
                }
            };
        }
        let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
        // SAFETY: prepare wrote every half step of this row's table.
        let (asum, dy) = unsafe {
            (
                tables[c].asum[half].assume_init(),
                tables[c].dy[half].assume_init(),
            )
        };
        let terms = int4_term(dx, mx, dy, isum, asum);
        let lanes = &mut acc[c][half % 2];
        *lanes = if P == 4 {
            vaddq_f32(*lanes, terms)
        } else {
            add_present(*lanes, terms, P)
        };
    }
}
