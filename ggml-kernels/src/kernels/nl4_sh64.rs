//! `nl4_sh64_v1` (SPEC.md §7.7): super-blocks of 64 elements, 36 bytes: a binary16
//! super-scale `d`, two block headers (7-bit signed sub-scale `s` in bits 1–7, shift bit `h` in
//! bit 0) and two blocks of 16 bytes of 4-bit codes into `G_h = G + 4h`, `G` the IQ4_NL
//! codebook. Element value `L·G_h[q]` with `L = d·s` (exact in f32).
//!
//! Reference (portable) kernels, and AVX2 and NEON versions that give the same bits. The
//! units of `vec_dot` are the 32-element blocks (two per super-block), each meeting one Q8_0
//! activation block: `isum = Σ G_h[q_j]·a_j` exact in i32 (|isum| ≤ 32·127·128 < 2^24), term
//! `(L·dy)·isum` in f32, `lane[u mod 8] += term` in unit order, then the common reduction.
//! The SIMD versions look the codes up in the block's 16-entry table (`pshufb`, `tbl`),
//! compute each unit's `isum` exactly in integers, and form the terms of eight units (AVX2)
//! or of two halves of four (NEON) at once with the reference's two f32 multiplies per term,
//! added lane-wise into the reference's eight lanes: the reference's operations on the same
//! operands, so the same bits; the shared harness checks it on both ISAs.

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
    //! AVX2: one `pshufb` looks the 32 codes of a block up in its 16-entry table; `isum` is `maddubs(|a|, sign(v, a))` then `pmaddwd` with ones, exact:
    //! `|a| ≤ 128` fits u8 (−128 included), `v·sign(a)` fits i8 (grid values are −127 …
    //! 117), and a pair sum is at most 2·128·127 < 2^15. Eight units (four super-blocks) make
    //! one step: their partial sums reduce with one `hadd` tree, and their scales `L·dy` are
    //! formed lane-wise.
    #![allow(unsafe_op_in_unsafe_fn)]

    use core::arch::x86_64::*;

    use super::*;
    use crate::kernels::avx2::{add_present, load_f16x8_strided, reduce_lanes, sum_each_of_eight};

    /// The 32 i8 grid values of the block whose 16 code bytes are at `codes`, in element order.
    ///
    /// # Safety
    /// AVX2; 16 bytes readable at `codes`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn values(codes: *const u8, table: __m128i) -> __m256i {
        // SAFETY: the caller's 16 bytes.
        let q = unsafe { _mm_loadu_si128(codes.cast()) };
        let mask = _mm_set1_epi8(0x0F);
        let lo = _mm_shuffle_epi8(table, _mm_and_si128(q, mask));
        let hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(q, 4), mask));
        _mm256_set_m128i(hi, lo)
    }

    /// The grid of a block header (its bit 0 picks `G` or `G + 4`).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn table(header: u8) -> __m128i {
        _mm_loadu_si128(TABLES[(header & 1) as usize].as_ptr().cast())
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        check_to_float(FORMAT, x.len(), y.len())?;
        for (sb, out) in x.chunks_exact(SUPER_BYTES).zip(y.chunks_exact_mut(SUPER)) {
            for b in 0..2 {
                let (l, _, _) = block_parts(sb, b);
                let lv = _mm256_set1_ps(l);
                // SAFETY: bytes 4 + 16b .. 20 + 16b of a whole super-block.
                let v = unsafe { values(sb.as_ptr().add(4 + 16 * b), table(sb[2 + b])) };
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

    /// The exact `isum` of one unit as eight i32 partial sums. The 16 code bytes and the
    /// table are broadcast to both 128-bit halves; the low half takes the low nibbles
    /// (elements 0..16), the high half the high nibbles (16..32), so one `pshufb` gives the
    /// values in the activations' order.
    ///
    /// # Safety
    /// AVX2; 16 code bytes at `codes` and 32 activation quants at `a`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn isum(codes: *const u8, header: u8, a: *const u8) -> __m256i {
        // SAFETY: a 16-byte table and the caller's bytes.
        let (table, q, a) = unsafe {
            (
                _mm256_broadcastsi128_si256(table(header)),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(codes.cast())),
                _mm256_loadu_si256(a.cast()),
            )
        };
        let shifted = _mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4));
        let v = _mm256_shuffle_epi8(table, _mm256_and_si256(shifted, _mm256_set1_epi8(0x0F)));
        let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(v, a));
        _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
    }

    /// The terms `(L·dy)·isum` of units base..base + present in lanes 0..present (zeros
    /// beyond).
    ///
    /// # Safety
    /// AVX2 and F16C; `base` and `present` (≤ 8) even, and units base..base + present whole
    /// super-block halves of the row at `xp` and whole Q8_0 blocks of the row at `yp`.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn terms(xp: *const u8, yp: *const u8, base: usize, present: usize) -> __m256 {
        let sb0 = xp.add(base / 2 * SUPER_BYTES);
        let mut isums = [_mm256_setzero_si256(); LANES];
        for (k, unit) in isums.iter_mut().enumerate().take(present) {
            let sb = sb0.add(k / 2 * SUPER_BYTES);
            *unit = isum(
                sb.add(4 + 16 * (k % 2)),
                *sb.add(2 + k % 2),
                yp.add((base + k) * Q8_0_BLOCK_BYTES + 2),
            );
        }
        let isum = sum_each_of_eight(&isums);
        let isum = _mm256_cvtepi32_ps(isum);
        // Each super-block's first four bytes: d (binary16), header 0, header 1.
        let word = |j: usize| {
            if 2 * j < present {
                // SAFETY: super-block base / 2 + j is present (caller contract).
                unsafe { sb0.add(j * SUPER_BYTES).cast::<i32>().read_unaligned() }
            } else {
                0
            }
        };
        let words = _mm_setr_epi32(word(0), word(1), word(2), word(3));
        // Unit k's d is its super-block's (k / 2), its header byte 2 + k % 2 of that word.
        let d = _mm256_cvtph_ps(_mm_shuffle_epi8(
            words,
            _mm_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13),
        ));
        let headers = _mm_shuffle_epi8(
            words,
            _mm_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1),
        );
        // s = (header as i8) >> 1, arithmetic, as the reference.
        let s = _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_cvtepi8_epi32(headers), 1));
        let l = _mm256_mul_ps(d, s);
        // SAFETY: the scales of the present activation blocks only are read.
        let dy = unsafe {
            load_f16x8_strided(yp.add(base * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present)
        };
        _mm256_mul_ps(_mm256_mul_ps(l, dy), isum)
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        check_vec_dot(FORMAT, n, x.len(), y.len())?;
        // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
        Ok(unsafe { dot_q8_0(n, x.as_ptr(), y.as_ptr()) })
    }

    /// [`vec_dot_q8_0`] after the C entry's checks (`n` a multiple of 32, non-null rows):
    /// a row that is not whole super-blocks gives NaN, as the checked kernel's error does
    /// through the entry.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C; `xp` and `yp` point at the weight and activation
    /// rows of `n` elements.
    #[target_feature(enable = "avx2,f16c")]
    pub(crate) unsafe fn dot_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
        if n % SUPER != 0 {
            return f32::NAN;
        }
        let units = n / QK;
        let mut acc = _mm256_setzero_ps();
        let mut base = 0;
        while units - base >= LANES {
            // SAFETY: units base..base + 8 exist (caller contract).
            acc = _mm256_add_ps(acc, unsafe { terms(xp, yp, base, LANES) });
            base += LANES;
        }
        // Rows are whole super-blocks, so 0, 2, 4 or 6 units remain; one arm per count so
        // each inlined step sees a constant count.
        // SAFETY (each arm): the remaining units exist (caller contract).
        acc = match units - base {
            2 => add_present(acc, unsafe { terms(xp, yp, base, 2) }, 2),
            4 => add_present(acc, unsafe { terms(xp, yp, base, 4) }, 4),
            6 => add_present(acc, unsafe { terms(xp, yp, base, 6) }, 6),
            _ => acc,
        };
        reduce_lanes(acc)
    }
}

#[cfg(target_arch = "aarch64")]
pub mod neon {
    //! NEON: `tbl` looks the 32 codes of a block up in its 16-entry table; `isum` is widening
    //! i8 multiplies (`smull`/`smlal2`: each i16 lane holds two products of at most
    //! 127·128, exact) and a pairwise widening add to four i32 partial sums. Four units (two
    //! super-blocks) make one half-step, as in the other NEON kernels.
    #![allow(unsafe_op_in_unsafe_fn)]

    use core::arch::aarch64::*;

    use super::*;
    use crate::kernels::neon::{
        add_present, load_f16x4_strided, reduce_lanes, sum_each_of_four, widen_f16x4,
    };

    /// The 32 i8 grid values of a block as (elements 0..16, elements 16..32).
    ///
    /// # Safety
    /// NEON; 16 bytes readable at `codes`.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn values(codes: *const u8, header: u8) -> (int8x16_t, int8x16_t) {
        // SAFETY: a 16-byte table and the caller's 16 bytes.
        let (table, q) = unsafe {
            (
                vld1q_s8(TABLES[(header & 1) as usize].as_ptr()),
                vld1q_u8(codes),
            )
        };
        (
            vqtbl1q_s8(table, vandq_u8(q, vdupq_n_u8(0x0F))),
            vqtbl1q_s8(table, vshrq_n_u8::<4>(q)),
        )
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn to_float(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        check_to_float(FORMAT, x.len(), y.len())?;
        for (sb, out) in x.chunks_exact(SUPER_BYTES).zip(y.chunks_exact_mut(SUPER)) {
            for b in 0..2 {
                let (l, _, _) = block_parts(sb, b);
                let lv = vdupq_n_f32(l);
                // SAFETY: bytes 4 + 16b .. 20 + 16b of a whole super-block.
                let (lo, hi) = unsafe { values(sb.as_ptr().add(4 + 16 * b), sb[2 + b]) };
                for (h, v) in [lo, hi].into_iter().enumerate() {
                    let w = [vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v)];
                    for (k, part) in w.into_iter().enumerate() {
                        let quads = [vmovl_s16(vget_low_s16(part)), vmovl_high_s16(part)];
                        for (j, q) in quads.into_iter().enumerate() {
                            let f = vmulq_f32(lv, vcvtq_f32_s32(q));
                            // SAFETY: out holds 64 floats; 32b + 16h + 8k + 4j + 4 ≤ 64.
                            unsafe {
                                vst1q_f32(out.as_mut_ptr().add(QK * b + 16 * h + 8 * k + 4 * j), f)
                            };
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The exact `isum` of one unit as four i32 partial sums.
    ///
    /// # Safety
    /// NEON; 16 code bytes at `codes`, 32 activation quants at `a`.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn isum(codes: *const u8, header: u8, a: *const u8) -> int32x4_t {
        // SAFETY: forwarded caller contract.
        let ((lo, hi), a0, a1) = unsafe {
            (
                values(codes, header),
                vld1q_s8(a.cast()),
                vld1q_s8(a.add(16).cast()),
            )
        };
        let p_lo = vmlal_high_s8(vmull_s8(vget_low_s8(lo), vget_low_s8(a0)), lo, a0);
        let p_hi = vmlal_high_s8(vmull_s8(vget_low_s8(hi), vget_low_s8(a1)), hi, a1);
        vpadalq_s16(vpaddlq_s16(p_lo), p_hi)
    }

    /// The terms `(L·dy)·isum` of units start..start + present in lanes 0..present.
    ///
    /// # Safety
    /// NEON; `start` and `present` (≤ 4) even, and units start..start + present whole
    /// super-block halves of the row at `xp` and whole Q8_0 blocks of the row at `yp`.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn terms(xp: *const u8, yp: *const u8, start: usize, present: usize) -> float32x4_t {
        let sb0 = xp.add(start / 2 * SUPER_BYTES);
        let mut isums = [vdupq_n_s32(0); 4];
        let mut d_bits = [0u16; 4];
        let mut s = [0i32; 4];
        for k in 0..present.min(4) {
            let sb = sb0.add(k / 2 * SUPER_BYTES);
            let header = *sb.add(2 + k % 2);
            isums[k] = isum(
                sb.add(4 + 16 * (k % 2)),
                header,
                yp.add((start + k) * Q8_0_BLOCK_BYTES + 2),
            );
            d_bits[k] = sb.cast::<u16>().read_unaligned();
            s[k] = ((header as i8) >> 1) as i32;
        }
        let isum = vcvtq_f32_s32(sum_each_of_four(&isums));
        // SAFETY: `s` holds four i32; the scales of the present activation blocks only.
        let (s, dy) = unsafe {
            (
                vcvtq_f32_s32(vld1q_s32(s.as_ptr())),
                load_f16x4_strided(yp.add(start * Q8_0_BLOCK_BYTES), Q8_0_BLOCK_BYTES, present),
            )
        };
        let l = vmulq_f32(widen_f16x4(d_bits), s);
        vmulq_f32(vmulq_f32(l, dy), isum)
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn vec_dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
        check_vec_dot(FORMAT, n, x.len(), y.len())?;
        // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
        Ok(unsafe { dot_q8_0(n, x.as_ptr(), y.as_ptr()) })
    }

    /// [`vec_dot_q8_0`] after the C entry's checks (`n` a multiple of 32, non-null rows):
    /// a row that is not whole super-blocks gives NaN, as the checked kernel's error does
    /// through the entry.
    ///
    /// # Safety
    /// The CPU must support NEON; `xp` and `yp` point at the weight and activation rows of
    /// `n` elements.
    #[target_feature(enable = "neon")]
    pub(crate) unsafe fn dot_q8_0(n: usize, xp: *const u8, yp: *const u8) -> f32 {
        if n % SUPER != 0 {
            return f32::NAN;
        }
        let units = n / QK;
        let mut acc = [vdupq_n_f32(0.0); 2];
        let mut base = 0;
        while units - base >= LANES {
            for (half, acc_half) in acc.iter_mut().enumerate() {
                // SAFETY: units base..base + 8 exist (caller contract).
                *acc_half = vaddq_f32(*acc_half, unsafe { terms(xp, yp, base + 4 * half, 4) });
            }
            base += LANES;
        }
        // Rows are whole super-blocks: 0, 2, 4 or 6 units remain. A half without units keeps
        // its lanes' sums untouched, as the reference does.
        for (half, acc_half) in acc.iter_mut().enumerate() {
            let start = base + 4 * half;
            if start < units {
                let present = (units - start).min(4);
                // SAFETY: units start..start + present exist (caller contract).
                *acc_half =
                    add_present(*acc_half, unsafe { terms(xp, yp, start, present) }, present);
            }
        }
        reduce_lanes(acc)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;

    use crate::platform::Backend;
    use crate::traits::all_traits_of;

    /// The unchecked SIMD entries get only the C entry's checks (`n` a multiple of 32), so
    /// they refuse a row that is not whole super-blocks themselves: NaN on every backend, as
    /// the reference's length error gives through the entry.
    #[test]
    fn c_entry_refuses_rows_of_partial_super_blocks_on_every_backend() {
        let x = [0u8; 2 * super::SUPER_BYTES];
        let y = [0u8; 4 * super::Q8_0_BLOCK_BYTES];
        for backend in Backend::available() {
            let t = all_traits_of(backend)
                .iter()
                .find(|t| t.codec_id == "nl4_sh64_v1")
                .expect("nl4_sh64_v1 has traits");
            let dot = |n: c_int| {
                let mut s = 1.0f32;
                // SAFETY: x and y hold two super-blocks and four Q8_0 blocks, more than any
                // n below reads; nrc = 1.
                unsafe { (t.vec_dot)(n, &mut s, 0, x.as_ptr().cast(), 0, y.as_ptr().cast(), 0, 1) };
                s
            };
            assert!(
                dot(96).is_nan(),
                "{:?}: 96 is not whole super-blocks",
                backend.isa()
            );
            assert!(dot(32).is_nan(), "{:?}", backend.isa());
            assert_eq!(dot(128), 0.0, "{:?}: zero rows dot to 0", backend.isa());
        }
    }
}
