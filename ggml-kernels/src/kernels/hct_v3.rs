//! `hct_v3` spectral tiles (SPEC.md §7.6): 64 elements per block, a u64 bitmap of the kept
//! DCT-II coefficients, a binary16 scale `d`, then `ceil(K/2)` bytes of 4-bit codes, the
//! `i`-th kept coefficient in the low (even `i`) or high (odd `i`) nibble of byte `10 + i/2`.
//!
//! `to_float` adds, for each kept coefficient in ascending position (at most `K` of them),
//! the basis row `C[k][·]` times `(code − 8)·d` to 64 partial sums that start at `+0.0`: one
//! rounded multiply and one rounded add per element and coefficient. The reference sums all
//! 64 positions; the skipped ones contribute `±0`, which never changes a sum that starts at
//! `+0.0` (SPEC.md §7.6.3), so this is the reference bit for bit. Each output element is an
//! independent chain in coefficient order, so 8-wide (AVX2) and 4-wide (NEON) vectors over
//! the elements compute exactly the same chains.
//!
//! `vec_dot` with Q8_0 activations decodes each tile, then has one unit per 32-element
//! activation block: `s = Σ x'_j·a_j` over the block as eight lane sums (lane `l` adds
//! elements `l, l+8, l+16, l+24` in that order from `+0.0`) reduced by the reference's lane
//! tree, and the unit's term is `dy · s`; terms are accumulated like every other format's
//! (`lane[u mod 8] += term`, units ascending). Every ISA decodes with its own
//! `to_float` (bit-identical) and runs this same dot, so results agree everywhere. Decoding
//! costs `K` multiply-adds per element, which dominates: see compat-tests/results/spectral.md.

use hct_format::codec::spectral::basis::BASIS;

use super::portable::{reduce_lanes, LANES};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, check_vec_dot, KernelError, WeightFormat, QK};

/// Elements per tile.
pub const TILE: usize = 64;
const HEADER: usize = 10;
const Q8_0_BLOCK_BYTES: usize = 34;

/// The layout of the `hct_v3` id keeping `K` coefficients per tile.
pub const fn format(kept: usize) -> WeightFormat {
    match kept {
        16 => WeightFormat::HctV3K16,
        32 => WeightFormat::HctV3K32,
        45 => WeightFormat::HctV3K45,
        58 => WeightFormat::HctV3K58,
        63 => WeightFormat::HctV3K63,
        _ => panic!("no hct_v3 layout keeps this many coefficients"),
    }
}

/// The kept coefficients of one tile in ascending position: `(k, (code − 8)·d)`, at most
/// `K`, and how many there are.
#[inline(always)]
fn kept_coefficients<const K: usize>(tile: &[u8]) -> ([(usize, f32); 64], usize) {
    let mut bitmap = u64::from_le_bytes(tile[..8].try_into().expect("tile has 8 bitmap bytes"));
    let d = read_f16(tile, 8);
    let mut out = [(0usize, 0f32); 64];
    let mut i = 0;
    while bitmap != 0 && i < K {
        let k = bitmap.trailing_zeros() as usize;
        bitmap &= bitmap - 1;
        let byte = tile[HEADER + i / 2];
        let code = if i % 2 == 0 { byte & 0x0F } else { byte >> 4 };
        out[i] = (k, (code as i32 - 8) as f32 * d);
        i += 1;
    }
    (out, i)
}

/// Decodes one tile into 64 floats (portable).
#[inline(always)]
fn decode_tile<const K: usize>(tile: &[u8], out: &mut [f32; TILE]) {
    let (coeffs, count) = kept_coefficients::<K>(tile);
    accumulate(&coeffs[..count], out);
}

/// The inverse transform from `(k, ĉ[k])` pairs in ascending `k` (the others `±0`): 64
/// chains from `+0.0`, one rounded multiply and one rounded add per pair (portable). Shared
/// with the mixed-precision tiles, which differ only in how `ĉ` is stored.
#[inline(always)]
pub(crate) fn accumulate(coeffs: &[(usize, f32)], out: &mut [f32; TILE]) {
    *out = [0.0; TILE];
    for &(k, c) in coeffs {
        for (o, &b) in out.iter_mut().zip(&BASIS[k]) {
            *o += b * c;
        }
    }
}

/// Decodes a row through `decode` (whole tiles; the partial last tile through a buffer).
#[inline(always)]
pub(crate) fn decode_row(
    x: &[u8],
    y: &mut [f32],
    tile_bytes: usize,
    mut decode: impl FnMut(&[u8], &mut [f32; TILE]),
) {
    for (tile, out) in x.chunks_exact(tile_bytes).zip(y.chunks_mut(TILE)) {
        if let Ok(whole) = <&mut [f32; TILE]>::try_from(&mut *out) {
            decode(tile, whole);
        } else {
            let mut buf = [0f32; TILE];
            decode(tile, &mut buf);
            out.copy_from_slice(&buf[..out.len()]);
        }
    }
}

/// Decodes one row of `hct_v3` tiles keeping `K` coefficients.
pub fn to_float<const K: usize>(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
    let f = format(K);
    check_to_float(f, x.len(), y.len())?;
    decode_row(x, y, f.block_bytes(), decode_tile::<K>);
    Ok(())
}

/// The dot of one decoded tile's `units` (1 or 2) 32-element halves with their Q8_0
/// activation blocks, added to `lanes` from unit `first`.
#[inline(always)]
fn dot_tile(
    decoded: &[f32; TILE],
    act: &[u8],
    first: usize,
    units: usize,
    lanes: &mut [f32; LANES],
) {
    for h in 0..units {
        let block = &act[h * Q8_0_BLOCK_BYTES..(h + 1) * Q8_0_BLOCK_BYTES];
        let dy = read_f16(block, 0);
        let mut part = [0f32; LANES];
        for (j, &xv) in decoded[h * QK..(h + 1) * QK].iter().enumerate() {
            part[j % LANES] += xv * (block[2 + j] as i8) as f32;
        }
        lanes[(first + h) % LANES] += dy * reduce_lanes(&part);
    }
}

/// `vec_dot` of a row with `n` elements, decoding tiles with `decode`.
#[inline(always)]
pub(crate) fn vec_dot_with(
    f: WeightFormat,
    n: usize,
    x: &[u8],
    y: &[u8],
    mut decode: impl FnMut(&[u8], &mut [f32; TILE]),
) -> Result<f32, KernelError> {
    check_vec_dot(f, n, x.len(), y.len())?;
    let tb = f.block_bytes();
    let units = n / QK;
    let mut lanes = [0f32; LANES];
    let mut buf = [0f32; TILE];
    for (t, tile) in x.chunks_exact(tb).take(n.div_ceil(TILE)).enumerate() {
        decode(tile, &mut buf);
        let first = t * 2;
        let here = (units - first).min(2);
        dot_tile(
            &buf,
            &y[first * Q8_0_BLOCK_BYTES..],
            first,
            here,
            &mut lanes,
        );
    }
    Ok(reduce_lanes(&lanes))
}

/// Dot product of an `hct_v3` row with a Q8_0 activation row of `n` elements (portable).
pub fn vec_dot_q8_0<const K: usize>(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError> {
    vec_dot_with(format(K), n, x, y, decode_tile::<K>)
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    //! AVX2 `to_float`: the 64 partial sums in eight `__m256`, one multiply and one add per
    //! kept coefficient and vector (no FMA), as the portable chains.
    #![allow(unsafe_op_in_unsafe_fn)]
    use core::arch::x86_64::*;

    use super::*;
    use crate::kernels::KernelTable;

    #[target_feature(enable = "avx2,f16c")]
    unsafe fn decode_tile_avx2<const K: usize>(tile: &[u8], out: &mut [f32; TILE]) {
        let (coeffs, count) = kept_coefficients::<K>(tile);
        accumulate_avx2(&coeffs[..count], out);
    }

    /// The vector form of [`super::accumulate`]: the same 64 chains, eight lanes at a time.
    #[target_feature(enable = "avx2,f16c")]
    pub(crate) unsafe fn accumulate_avx2(coeffs: &[(usize, f32)], out: &mut [f32; TILE]) {
        let mut acc = [_mm256_setzero_ps(); 8];
        for &(k, c) in coeffs {
            let c = _mm256_set1_ps(c);
            let row = BASIS[k].as_ptr();
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: a basis row has 64 floats; v·8 + 8 ≤ 64.
                let b = unsafe { _mm256_loadu_ps(row.add(v * 8)) };
                *a = _mm256_add_ps(*a, _mm256_mul_ps(b, c));
            }
        }
        for (v, a) in acc.iter().enumerate() {
            // SAFETY: `out` has 64 floats; v·8 + 8 ≤ 64.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(v * 8), *a) };
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_float<const K: usize>(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        let f = format(K);
        check_to_float(f, x.len(), y.len())?;
        decode_row(x, y, f.block_bytes(), |t, o| unsafe {
            decode_tile_avx2::<K>(t, o)
        });
        Ok(())
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn vec_dot_q8_0<const K: usize>(
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        vec_dot_with(format(K), n, x, y, |t, o| unsafe {
            decode_tile_avx2::<K>(t, o)
        })
    }

    /// `table` with every `hct_v3` layout's AVX2 kernels.
    pub(crate) const fn overrides(table: KernelTable) -> KernelTable {
        macro_rules! each {
            ($t:expr; $($k:literal),*) => {{
                let mut t = $t;
                $(t = t.with_to_float(format($k), to_float::<$k>)
                       .with_vec_dot(format($k), vec_dot_q8_0::<$k>, None);)*
                t
            }};
        }
        each!(table; 16, 32, 45, 58, 63)
    }
}

#[cfg(target_arch = "aarch64")]
pub mod neon {
    //! NEON `to_float`: the 64 partial sums in sixteen 4-lane vectors, `vmulq` then `vaddq`
    //! per kept coefficient (never the fused `vfmaq`), as the portable chains.
    #![allow(unsafe_op_in_unsafe_fn)]
    use core::arch::aarch64::*;

    use super::*;
    use crate::kernels::KernelTable;

    #[target_feature(enable = "neon")]
    unsafe fn decode_tile_neon<const K: usize>(tile: &[u8], out: &mut [f32; TILE]) {
        let (coeffs, count) = kept_coefficients::<K>(tile);
        accumulate_neon(&coeffs[..count], out);
    }

    /// The vector form of [`super::accumulate`]: the same 64 chains, four lanes at a time.
    #[target_feature(enable = "neon")]
    pub(crate) unsafe fn accumulate_neon(coeffs: &[(usize, f32)], out: &mut [f32; TILE]) {
        let mut acc = [vdupq_n_f32(0.0); 16];
        for &(k, c) in coeffs {
            let c = vdupq_n_f32(c);
            let row = BASIS[k].as_ptr();
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: a basis row has 64 floats; v·4 + 4 ≤ 64.
                let b = unsafe { vld1q_f32(row.add(v * 4)) };
                *a = vaddq_f32(*a, vmulq_f32(b, c));
            }
        }
        for (v, a) in acc.iter().enumerate() {
            // SAFETY: `out` has 64 floats; v·4 + 4 ≤ 64.
            unsafe { vst1q_f32(out.as_mut_ptr().add(v * 4), *a) };
        }
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn to_float<const K: usize>(x: &[u8], y: &mut [f32]) -> Result<(), KernelError> {
        let f = format(K);
        check_to_float(f, x.len(), y.len())?;
        decode_row(x, y, f.block_bytes(), |t, o| unsafe {
            decode_tile_neon::<K>(t, o)
        });
        Ok(())
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn vec_dot_q8_0<const K: usize>(
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        vec_dot_with(format(K), n, x, y, |t, o| unsafe {
            decode_tile_neon::<K>(t, o)
        })
    }

    /// `table` with every `hct_v3` layout's NEON kernels.
    pub(crate) const fn overrides(table: KernelTable) -> KernelTable {
        macro_rules! each {
            ($t:expr; $($k:literal),*) => {{
                let mut t = $t;
                $(t = t.with_to_float(format($k), to_float::<$k>)
                       .with_vec_dot(format($k), vec_dot_q8_0::<$k>, None);)*
                t
            }};
        }
        each!(table; 16, 32, 45, 58, 63)
    }
}
