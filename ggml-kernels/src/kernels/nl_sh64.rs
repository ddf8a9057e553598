//! `nl5_sh64_v1` and `nl6_sh64_v1` (SPEC.md §7.7): the shifted non-uniform family of
//! `nl4_sh64_v1` with 5- and 6-bit codes. A super-block of 64 elements is a binary16
//! super-scale `d`, two block headers (7-bit signed sub-scale `s` in bits 1–7, shift bit `h`
//! in bit 0) and two blocks of codes; element value `L·G_h[q]` with `L = d·s` (exact in f32)
//! and `G_h` the codec's grid, shifted when `h` is set.
//!
//! A block's codes (20 bytes for 5 bits, 24 for 6) open with the 16 bytes of low nibbles
//! exactly as `nl4_sh64_v1` (element `j` low nibble of byte `j`, element `j + 16` high
//! nibble), then hold the high bits: for 5 bits a little-endian u32 whose bit `i` is bit 4 of
//! code `i`; for 6 bits eight bytes, byte `16 + i mod 8` holding bits 4–5 of code `i` at bit
//! `2·(i div 8)`.
//!
//! The kernels are generic over the code width `BITS` (5 or 6). `vec_dot` has the structure
//! and the accumulation order of `nl4_sh64_v1`'s, which has its own module because its
//! 16-entry tables need one lookup per code, and its speed is kept as it is: units are the
//! 32-element blocks, `isum = Σ G_h[q_j]·a_j` exact in i32 (|isum| ≤ 32·127·128 < 2^24), term
//! `(L·dy)·isum` in f32, `lane[u mod 8] += term` in unit order, then the common reduction.
//! The SIMD versions compute the same `isum` exactly in integers and the same two f32
//! multiplies per term on the same operands, added lane-wise into the reference's eight
//! lanes: the same bits; the shared harness checks it on both ISAs.

use std::sync::LazyLock;

use hct_format::codec::shifted::{Shifted, NL5_SH64_V1, NL6_SH64_V1, SUPER};

use super::portable::{reduce_lanes, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

const Q8_0_BLOCK_BYTES: usize = WeightFormat::Q8_0.block_bytes();

/// The layout of the `BITS`-bit member.
const fn format(bits: usize) -> WeightFormat {
    match bits {
        5 => WeightFormat::Nl5Sh64,
        6 => WeightFormat::Nl6Sh64,
        _ => panic!("the family's 5- and 6-bit members only"),
    }
}

/// Bytes of one block's codes: 16 of low nibbles, then `4·(BITS − 4)` of high bits.
const fn block_bytes(bits: usize) -> usize {
    16 + 4 * (bits - 4)
}

/// Bytes per super-block: `d`, two headers, two blocks of codes.
const fn super_bytes(bits: usize) -> usize {
    4 + 2 * block_bytes(bits)
}

// The geometry stated here is the reference crate's.
const _: () = assert!(format(5).block_bytes() == super_bytes(5) && super_bytes(5) == 44);
const _: () = assert!(format(6).block_bytes() == super_bytes(6) && super_bytes(6) == 52);
const _: () = assert!(format(5).block_len() == SUPER && format(6).block_len() == SUPER);
const _: () = assert!(NL5_SH64_V1.super_bytes() == 44 && NL6_SH64_V1.super_bytes() == 52);

/// A member's two grids (`h` = 0, 1) as i8 tables of 64 entries, the first `2^BITS` used
/// (every grid value is within −127 … 127, SPEC.md §7.7).
type Tables = [[i8; 64]; 2];

fn tables_of(codec: &Shifted) -> Tables {
    let mut t = [[0i8; 64]; 2];
    for (h, table) in t.iter_mut().enumerate() {
        for (slot, &v) in table.iter_mut().zip(codec.grid(h)) {
            *slot = i8::try_from(v).expect("grid values fit i8 (SPEC.md §7.7)");
        }
    }
    t
}

static TABLES_5: LazyLock<Tables> = LazyLock::new(|| tables_of(&NL5_SH64_V1));
static TABLES_6: LazyLock<Tables> = LazyLock::new(|| tables_of(&NL6_SH64_V1));

/// The grids of the `BITS`-bit member (built once; kernels fetch them once per row).
#[inline]
fn tables(bits: usize) -> &'static Tables {
    match bits {
        5 => &TABLES_5,
        _ => &TABLES_6,
    }
}

/// The 32 codes of one block (element order) from its code bytes.
#[inline(always)]
fn block_codes<const BITS: usize>(codes: &[u8]) -> [u8; QK] {
    let mut q = [0u8; QK];
    for j in 0..QK / 2 {
        q[j] = codes[j] & 0x0F;
        q[j + QK / 2] = codes[j] >> 4;
    }
    if BITS == 5 {
        let high = u32::from_le_bytes([codes[16], codes[17], codes[18], codes[19]]);
        for (i, c) in q.iter_mut().enumerate() {
            *c |= (((high >> i) & 1) as u8) << 4;
        }
    } else {
        for (i, c) in q.iter_mut().enumerate() {
            *c |= ((codes[16 + i % 8] >> (2 * (i / 8))) & 3) << 4;
        }
    }
    q
}

/// Block `b` (0 or 1) of super-block `sb`: its scale `L = d·s`, its grid, its code bytes.
#[inline(always)]
fn block_parts<'a, const BITS: usize>(
    sb: &'a [u8],
    b: usize,
    tables: &'static Tables,
) -> (f32, &'static [i8; 64], &'a [u8]) {
    let d = read_f16(sb, 0);
    let header = sb[2 + b];
    let s = ((header as i8) >> 1) as f32;
    let bb = block_bytes(BITS);
    (
        d * s,
        &tables[(header & 1) as usize],
        &sb[4 + bb * b..4 + bb * (b + 1)],
    )
}

/// Decodes one row (`y.len()` a multiple of 64).
pub fn to_float<const BITS: usize>(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    check_to_float(format(BITS), x.len(), y.len())?;
    let tables = tables(BITS);
    for (sb, out) in x
        .chunks_exact(super_bytes(BITS))
        .zip(y.chunks_exact_mut(SUPER))
    {
        for b in 0..2 {
            let (l, table, codes) = block_parts::<BITS>(sb, b, tables);
            let q = block_codes::<BITS>(codes);
            for (o, &c) in out[QK * b..QK * (b + 1)].iter_mut().zip(&q) {
                *o = l * table[c as usize] as f32;
            }
        }
    }
    Ok(())
}

/// The term of unit `u` given its exact integer sum.
#[inline(always)]
fn term<const BITS: usize>(
    x: &[u8],
    y: &[u8],
    u: usize,
    isum: i32,
    tables: &'static Tables,
) -> f32 {
    let sb = &x[(u / 2) * super_bytes(BITS)..];
    let (l, _, _) = block_parts::<BITS>(sb, u % 2, tables);
    let dy = read_f16(y, u * Q8_0_BLOCK_BYTES);
    (l * dy) * isum as f32
}

/// The exact integer sum of unit `u`, portably.
#[inline(always)]
fn isum_portable<const BITS: usize>(x: &[u8], y: &[u8], u: usize, tables: &'static Tables) -> i32 {
    let (_, table, codes) = block_parts::<BITS>(&x[(u / 2) * super_bytes(BITS)..], u % 2, tables);
    let q = block_codes::<BITS>(codes);
    let a = &y[u * Q8_0_BLOCK_BYTES + 2..(u + 1) * Q8_0_BLOCK_BYTES];
    q.iter()
        .zip(a)
        .map(|(&c, &a)| table[c as usize] as i32 * a as i8 as i32)
        .sum()
}

/// Dot product of a row with a Q8_0 activation row of `n` elements (`n` a multiple of 64).
pub fn vec_dot_q8_0<const BITS: usize>(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    let superblocks = check_vec_dot(format(BITS), n, x.len(), y.len())?;
    let tables = tables(BITS);
    let mut lanes = [0.0f32; LANES];
    for u in 0..2 * superblocks {
        lanes[u % LANES] += term::<BITS>(x, y, u, isum_portable::<BITS>(x, y, u, tables), tables);
    }
    Ok(reduce_lanes(&lanes))
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    //! AVX2: a block's 32 codes become 32 table indices in element order (the low nibbles as
    //! in `nl4_sh64_v1`, the high bits spread to one byte per element), looked up with one
    //! `pshufb` per 16-entry quarter of the grid and blended on the high bits (two lookups
    //! for 5 bits, four for 6). `isum` is then `maddubs(|a|, sign(v, a))` and `pmaddwd` with
    //! ones, exact: `|a| ≤ 128` fits u8, `v·sign(a)` fits i8 (grid values are within
    //! −127 … 127), and a pair sum is at most 2·128·127 < 2^15. Eight units (four
    //! super-blocks) make one step, as in `nl4_sh64_v1`.
    #![allow(unsafe_op_in_unsafe_fn)]

    use core::arch::x86_64::*;

    use super::*;
    use crate::kernels::avx2::{add_present, load_f16x8_strided, reduce_lanes, sum_each_of_eight};
    use crate::kernels::KernelTable;

    /// The 32 i8 grid values of the block whose code bytes are at `codes`, in element order.
    ///
    /// # Safety
    /// AVX2; the block's `block_bytes(BITS)` bytes readable at `codes`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn values<const BITS: usize>(codes: *const u8, table: &[i8; 64]) -> __m256i {
        // SAFETY: the caller's first 16 bytes.
        let q = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(codes.cast()) });
        // Low half: low nibbles (elements 0..16); high half: high nibbles (16..32).
        let nib = _mm256_and_si256(
            _mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)),
            _mm256_set1_epi8(0x0F),
        );
        // Quarter k of the grid (entries 16k .. 16k + 16), in both halves, looked up.
        let look = |k: usize| {
            // SAFETY: 16k + 16 ≤ 64 entries.
            let t = unsafe { _mm_loadu_si128(table.as_ptr().add(16 * k).cast()) };
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(t), nib)
        };
        if BITS == 5 {
            // SAFETY: bytes 16..20 of the block.
            let high = unsafe { codes.add(16).cast::<i32>().read_unaligned() };
            // Byte i gets byte i / 8 of the u32, then keeps its bit i mod 8.
            let spread = _mm256_shuffle_epi8(
                _mm256_set1_epi32(high),
                _mm256_setr_epi8(
                    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
                ),
            );
            let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
            _mm256_blendv_epi8(look(0), look(1), set)
        } else {
            // SAFETY: bytes 16..24 of the block.
            let high = unsafe { codes.add(16).cast::<i64>().read_unaligned() };
            // 64-bit lane k holds elements 8k .. 8k + 8, whose bits 4–5 are at bit 2k of
            // bytes 0..8: shift lane k by 2k and keep two bits per byte.
            let sel = _mm256_and_si256(
                _mm256_srlv_epi64(_mm256_set1_epi64x(high), _mm256_setr_epi64x(0, 2, 4, 6)),
                _mm256_set1_epi8(3),
            );
            // blendv reads bit 7 of each byte: bit 0 of `sel` moved there, then bit 1 (a
            // 16-bit shift carries only zeros or the other byte's bits below bit 7).
            let bit0 = _mm256_slli_epi16(sel, 7);
            let bit1 = _mm256_slli_epi16(sel, 6);
            let low = _mm256_blendv_epi8(look(0), look(1), bit0);
            let high = _mm256_blendv_epi8(look(2), look(3), bit0);
            _mm256_blendv_epi8(low, high, bit1)
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_float<const BITS: usize>(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        check_to_float(format(BITS), x.len(), y.len())?;
        let tables = tables(BITS);
        for (sb, out) in x
            .chunks_exact(super_bytes(BITS))
            .zip(y.chunks_exact_mut(SUPER))
        {
            for b in 0..2 {
                let (l, table, _) = block_parts::<BITS>(sb, b, tables);
                let lv = _mm256_set1_ps(l);
                // SAFETY: block b's code bytes of a whole super-block.
                let v =
                    unsafe { values::<BITS>(sb.as_ptr().add(4 + block_bytes(BITS) * b), table) };
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

    /// The exact `isum` of one unit as eight i32 partial sums.
    ///
    /// # Safety
    /// AVX2; the block's code bytes at `codes` and 32 activation quants at `a`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn isum<const BITS: usize>(codes: *const u8, table: &[i8; 64], a: *const u8) -> __m256i {
        // SAFETY: forwarded caller contract.
        let (v, a) = unsafe { (values::<BITS>(codes, table), _mm256_loadu_si256(a.cast())) };
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
    unsafe fn terms<const BITS: usize>(
        xp: *const u8,
        yp: *const u8,
        base: usize,
        present: usize,
        tables: &Tables,
    ) -> __m256 {
        let sbb = super_bytes(BITS);
        let sb0 = xp.add(base / 2 * sbb);
        let mut isums = [_mm256_setzero_si256(); LANES];
        for (k, unit) in isums.iter_mut().enumerate().take(present) {
            let sb = sb0.add(k / 2 * sbb);
            *unit = isum::<BITS>(
                sb.add(4 + block_bytes(BITS) * (k % 2)),
                &tables[(*sb.add(2 + k % 2) & 1) as usize],
                yp.add((base + k) * Q8_0_BLOCK_BYTES + 2),
            );
        }
        let isum = _mm256_cvtepi32_ps(sum_each_of_eight(&isums));
        // Each super-block's first four bytes: d (binary16), header 0, header 1.
        let word = |j: usize| {
            if 2 * j < present {
                // SAFETY: super-block base / 2 + j is present (caller contract).
                unsafe { sb0.add(j * sbb).cast::<i32>().read_unaligned() }
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
    pub unsafe fn vec_dot_q8_0<const BITS: usize>(
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        check_vec_dot(format(BITS), n, x.len(), y.len())?;
        // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
        Ok(unsafe { dot_q8_0::<BITS>(n, x.as_ptr(), y.as_ptr()) })
    }

    /// [`vec_dot_q8_0`] after the C entry's checks (`n` a multiple of 32, non-null rows):
    /// a row that is not whole super-blocks gives NaN, as the checked kernel's error does
    /// through the entry.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C; `xp` and `yp` point at the weight and activation
    /// rows of `n` elements.
    #[target_feature(enable = "avx2,f16c")]
    pub(crate) unsafe fn dot_q8_0<const BITS: usize>(
        n: usize,
        xp: *const u8,
        yp: *const u8,
    ) -> f32 {
        if n % SUPER != 0 {
            return f32::NAN;
        }
        let tables = tables(BITS);
        let units = n / QK;
        let mut acc = _mm256_setzero_ps();
        let mut base = 0;
        while units - base >= LANES {
            // SAFETY: units base..base + 8 exist (caller contract).
            acc = _mm256_add_ps(acc, unsafe { terms::<BITS>(xp, yp, base, LANES, tables) });
            base += LANES;
        }
        // Rows are whole super-blocks, so 0, 2, 4 or 6 units remain; one arm per count so
        // each inlined step sees a constant count.
        // SAFETY (each arm): the remaining units exist (caller contract).
        acc = match units - base {
            2 => add_present(acc, unsafe { terms::<BITS>(xp, yp, base, 2, tables) }, 2),
            4 => add_present(acc, unsafe { terms::<BITS>(xp, yp, base, 4, tables) }, 4),
            6 => add_present(acc, unsafe { terms::<BITS>(xp, yp, base, 6, tables) }, 6),
            _ => acc,
        };
        reduce_lanes(acc)
    }

    /// `table` with both members' AVX2 kernels.
    pub(crate) const fn overrides(table: KernelTable) -> KernelTable {
        table
            .with_to_float(format(5), to_float::<5>)
            .with_vec_dot(format(5), vec_dot_q8_0::<5>, Some(dot_q8_0::<5>))
            .with_to_float(format(6), to_float::<6>)
            .with_vec_dot(format(6), vec_dot_q8_0::<6>, Some(dot_q8_0::<6>))
    }
}

#[cfg(target_arch = "aarch64")]
pub mod neon {
    //! NEON: a block's 32 codes become 32 table indices (the low nibbles as in
    //! `nl4_sh64_v1`, the high bits moved to bits 4–5 of each byte) looked up in the whole
    //! grid at once, `tbl` over two (5 bits) or four (6 bits) registers. `isum` is widening
    //! i8 multiplies (each i16 lane two products of at most 127·128, exact) and a pairwise
    //! widening add to four i32 partial sums. Four units (two super-blocks) make one
    //! half-step, as in `nl4_sh64_v1`.
    #![allow(unsafe_op_in_unsafe_fn)]

    use core::arch::aarch64::*;

    use super::*;
    use crate::kernels::neon::{
        add_present, load_f16x4_strided, reduce_lanes, sum_each_of_four, widen_f16x4,
    };
    use crate::kernels::KernelTable;

    /// 5 bits: which byte of the u32 holds each element's bit (elements 0..16, 16..32).
    static HIGH_BYTE: [[u8; 16]; 2] = [
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
        [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3],
    ];
    /// 6 bits: minus the bit position of each element's two bits (a right shift).
    static HIGH_SHIFT: [[i8; 16]; 2] = [
        [0, 0, 0, 0, 0, 0, 0, 0, -2, -2, -2, -2, -2, -2, -2, -2],
        [
            -4, -4, -4, -4, -4, -4, -4, -4, -6, -6, -6, -6, -6, -6, -6, -6,
        ],
    ];

    /// The 32 i8 grid values of a block as (elements 0..16, elements 16..32).
    ///
    /// # Safety
    /// NEON; the block's `block_bytes(BITS)` bytes readable at `codes`.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn values<const BITS: usize>(
        codes: *const u8,
        table: &[i8; 64],
    ) -> (int8x16_t, int8x16_t) {
        // SAFETY: the caller's bytes; the static tables.
        let q = unsafe { vld1q_u8(codes) };
        let low = [vandq_u8(q, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(q)];
        let mut idx = [vdupq_n_u8(0); 2];
        if BITS == 5 {
            // SAFETY: bytes 16..20 of the block.
            let high = unsafe { codes.add(16).cast::<u32>().read_unaligned() };
            let high = vreinterpretq_u8_u32(vdupq_n_u32(high));
            let bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
            for h in 0..2 {
                // SAFETY: a static 16-byte table.
                let spread = vqtbl1q_u8(high, unsafe { vld1q_u8(HIGH_BYTE[h].as_ptr()) });
                let top = vandq_u8(vtstq_u8(spread, bit), vdupq_n_u8(0x10));
                idx[h] = vorrq_u8(low[h], top);
            }
        } else {
            // SAFETY: bytes 16..24 of the block.
            let high = unsafe { vld1_u8(codes.add(16)) };
            let high = vcombine_u8(high, high);
            for h in 0..2 {
                // SAFETY: a static 16-byte table.
                let shift = unsafe { vld1q_s8(HIGH_SHIFT[h].as_ptr()) };
                let two = vandq_u8(vshlq_u8(high, shift), vdupq_n_u8(3));
                idx[h] = vorrq_u8(low[h], vshlq_n_u8::<4>(two));
            }
        }
        if BITS == 5 {
            // SAFETY: 32 of the table's 64 entries.
            let t = unsafe { vld1q_s8_x2(table.as_ptr()) };
            (vqtbl2q_s8(t, idx[0]), vqtbl2q_s8(t, idx[1]))
        } else {
            // SAFETY: the table's 64 entries.
            let t = unsafe { vld1q_s8_x4(table.as_ptr()) };
            (vqtbl4q_s8(t, idx[0]), vqtbl4q_s8(t, idx[1]))
        }
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn to_float<const BITS: usize>(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        check_to_float(format(BITS), x.len(), y.len())?;
        let tables = tables(BITS);
        for (sb, out) in x
            .chunks_exact(super_bytes(BITS))
            .zip(y.chunks_exact_mut(SUPER))
        {
            for b in 0..2 {
                let (l, table, _) = block_parts::<BITS>(sb, b, tables);
                let lv = vdupq_n_f32(l);
                // SAFETY: block b's code bytes of a whole super-block.
                let (lo, hi) =
                    unsafe { values::<BITS>(sb.as_ptr().add(4 + block_bytes(BITS) * b), table) };
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
    /// NEON; the block's code bytes at `codes`, 32 activation quants at `a`.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn isum<const BITS: usize>(
        codes: *const u8,
        table: &[i8; 64],
        a: *const u8,
    ) -> int32x4_t {
        // SAFETY: forwarded caller contract.
        let ((lo, hi), a0, a1) = unsafe {
            (
                values::<BITS>(codes, table),
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
    unsafe fn terms<const BITS: usize>(
        xp: *const u8,
        yp: *const u8,
        start: usize,
        present: usize,
        tables: &Tables,
    ) -> float32x4_t {
        let sbb = super_bytes(BITS);
        let sb0 = xp.add(start / 2 * sbb);
        let mut isums = [vdupq_n_s32(0); 4];
        let mut d_bits = [0u16; 4];
        let mut s = [0i32; 4];
        for k in 0..present.min(4) {
            let sb = sb0.add(k / 2 * sbb);
            let header = *sb.add(2 + k % 2);
            isums[k] = isum::<BITS>(
                sb.add(4 + block_bytes(BITS) * (k % 2)),
                &tables[(header & 1) as usize],
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
    pub unsafe fn vec_dot_q8_0<const BITS: usize>(
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        check_vec_dot(format(BITS), n, x.len(), y.len())?;
        // SAFETY: check_vec_dot found the whole rows of n elements in x and y.
        Ok(unsafe { dot_q8_0::<BITS>(n, x.as_ptr(), y.as_ptr()) })
    }

    /// [`vec_dot_q8_0`] after the C entry's checks (`n` a multiple of 32, non-null rows):
    /// a row that is not whole super-blocks gives NaN, as the checked kernel's error does
    /// through the entry.
    ///
    /// # Safety
    /// The CPU must support NEON; `xp` and `yp` point at the weight and activation rows of
    /// `n` elements.
    #[target_feature(enable = "neon")]
    pub(crate) unsafe fn dot_q8_0<const BITS: usize>(
        n: usize,
        xp: *const u8,
        yp: *const u8,
    ) -> f32 {
        if n % SUPER != 0 {
            return f32::NAN;
        }
        let tables = tables(BITS);
        let units = n / QK;
        let mut acc = [vdupq_n_f32(0.0); 2];
        let mut base = 0;
        while units - base >= LANES {
            for (half, acc_half) in acc.iter_mut().enumerate() {
                // SAFETY: units base..base + 8 exist (caller contract).
                *acc_half = vaddq_f32(*acc_half, unsafe {
                    terms::<BITS>(xp, yp, base + 4 * half, 4, tables)
                });
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
                *acc_half = add_present(
                    *acc_half,
                    unsafe { terms::<BITS>(xp, yp, start, present, tables) },
                    present,
                );
            }
        }
        reduce_lanes(acc)
    }

    /// `table` with both members' NEON kernels.
    pub(crate) const fn overrides(table: KernelTable) -> KernelTable {
        table
            .with_to_float(format(5), to_float::<5>)
            .with_vec_dot(format(5), vec_dot_q8_0::<5>, Some(dot_q8_0::<5>))
            .with_to_float(format(6), to_float::<6>)
            .with_vec_dot(format(6), vec_dot_q8_0::<6>, Some(dot_q8_0::<6>))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;

    use hct_format::codec::Codec;

    use super::*;
    use crate::harness::Rng;
    use crate::platform::Backend;
    use crate::traits::all_traits_of;

    /// The unchecked SIMD entries get only the C entry's checks (`n` a multiple of 32), so
    /// they refuse a row that is not whole super-blocks themselves: NaN on every backend.
    #[test]
    fn c_entry_refuses_rows_of_partial_super_blocks_on_every_backend() {
        for (id, bits) in [("nl5_sh64_v1", 5), ("nl6_sh64_v1", 6)] {
            let x = vec![0u8; 2 * super_bytes(bits)];
            let y = [0u8; 4 * Q8_0_BLOCK_BYTES];
            for backend in Backend::available() {
                let t = all_traits_of(backend)
                    .iter()
                    .find(|t| t.codec_id == id)
                    .unwrap_or_else(|| panic!("{id} has traits"));
                let dot = |n: c_int| {
                    let mut s = 1.0f32;
                    // SAFETY: x and y hold two super-blocks and four Q8_0 blocks, more than
                    // any n below reads; nrc = 1.
                    unsafe {
                        (t.vec_dot)(n, &mut s, 0, x.as_ptr().cast(), 0, y.as_ptr().cast(), 0, 1)
                    };
                    s
                };
                assert!(
                    dot(96).is_nan(),
                    "{id} {:?}: 96 is not whole super-blocks",
                    backend.isa()
                );
                assert!(dot(32).is_nan(), "{id} {:?}", backend.isa());
                assert_eq!(
                    dot(128),
                    0.0,
                    "{id} {:?}: zero rows dot to 0",
                    backend.isa()
                );
            }
        }
    }

    /// Rows the reference encoder makes from weight-like values (every code of both grids
    /// in use): every backend decodes them as `hct-format` does, bit for bit, and dots them
    /// with Q8_0 activations as the portable kernel does.
    #[test]
    fn encoded_rows_decode_as_the_reference_and_dot_alike_on_every_backend() {
        let mut rng = Rng::new(0x4e4c_5f53_4836_34);
        for (codec, bits) in [(&NL5_SH64_V1, 5usize), (&NL6_SH64_V1, 6)] {
            let f = format(bits);
            for n in [64usize, 576, 2048] {
                // A heavy-tailed row: sums of uniforms, a few outliers, one zero block.
                let mut w: Vec<f32> = (0..n)
                    .map(|_| {
                        let s: f32 = (0..4)
                            .map(|_| (rng.below(2001) as f32 - 1000.0) / 1000.0)
                            .sum();
                        if rng.below(50) == 0 {
                            8.0 * s
                        } else {
                            s * 0.02
                        }
                    })
                    .collect();
                w[32..64].fill(0.0);
                let mut x = vec![0u8; codec.row_bytes(n as u64).unwrap() as usize];
                codec.encode_row(&w, &mut x).unwrap();
                let mut want = vec![0f32; n];
                codec.decode_row(&x, &mut want).unwrap();
                let a: Vec<f32> = (0..n)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                    .collect();
                let mut y = vec![0u8; f.activation().row_bytes(n).unwrap()];
                crate::quantize::quantize_row_q8_0(&a, &mut y).unwrap();
                let expect = Backend::scalar().vec_dot(f, n, &x, &y).unwrap();
                for backend in Backend::available() {
                    let mut got = vec![f32::NAN; n];
                    backend.to_float(f, &x, &mut got).unwrap();
                    for (j, (g, e)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(
                            g.to_bits(),
                            e.to_bits(),
                            "{} {:?} n {n} elem {j}",
                            codec.id(),
                            backend.isa()
                        );
                    }
                    let dot = backend.vec_dot(f, n, &x, &y).unwrap();
                    assert_eq!(
                        dot.to_bits(),
                        expect.to_bits(),
                        "{} {:?} n {n}",
                        codec.id(),
                        backend.isa()
                    );
                }
                // And the dot is the decoded rows' dot, to f32 rounding.
                let mut ad = vec![0f32; n];
                Backend::scalar()
                    .to_float(WeightFormat::Q8_0, &y, &mut ad)
                    .unwrap();
                let exact: f64 = want
                    .iter()
                    .zip(&ad)
                    .map(|(&w, &a)| w as f64 * a as f64)
                    .sum();
                let mag: f64 = want
                    .iter()
                    .zip(&ad)
                    .map(|(&w, &a)| (w as f64 * a as f64).abs())
                    .sum();
                assert!(
                    (expect as f64 - exact).abs() <= 16.0 * f32::EPSILON as f64 * mag,
                    "{} n {n}: {expect} vs {exact}",
                    codec.id()
                );
            }
        }
    }
}
