//! `hct_v3m` mixed-precision spectral tiles (SPEC.md §7.6.6): 64 elements per block, a u64
//! bitmap of the `K` kept DCT-II coefficients, a binary16 scale `d`, `H` position bytes and
//! `H` binary16 values for the largest kept coefficients, then `ceil((K−H)/2)` bytes of 4-bit
//! codes for the other kept positions (ascending, low nibble first).
//!
//! Decoding builds the 64 dequantized coefficients exactly as the spec's decoder (positions
//! ≥ 64 ignored, a later binary16 value wins a repeated position, codes only for bitmap
//! positions not listed), then runs `hct_v3`'s inverse over the non-zero ones in ascending
//! position: the skipped `±0` coefficients add `±0` to chains that start at `+0.0`, which
//! changes nothing (SPEC.md §7.6.3). The inverse and the Q8_0 dot are `hct_v3`'s own, so
//! AVX2 and NEON `to_float` are bit-identical to the portable one for the same reason.

use super::hct_v3::{accumulate, decode_row, vec_dot_with, TILE};
use crate::fp16::read_f16;
use crate::layout::{check_to_float, KernelError, WeightFormat};

const HEADER: usize = 10;

/// The layout of the `hct_v3m` id keeping `K` coefficients, `H` of them in binary16.
pub const fn format(kept: usize, high: usize) -> WeightFormat {
    match (kept, high) {
        (45, 4) => WeightFormat::HctV3mK45H4,
        (58, 4) => WeightFormat::HctV3mK58H4,
        _ => panic!("no hct_v3m layout keeps these coefficients"),
    }
}

/// `H`, the binary16 coefficients per tile, of an `hct_v3m` layout (`None` for any other).
pub const fn fp16_per_tile(f: WeightFormat) -> Option<usize> {
    match f {
        WeightFormat::HctV3mK45H4 | WeightFormat::HctV3mK58H4 => Some(4),
        _ => None,
    }
}

/// The non-zero dequantized coefficients of one tile in ascending position, and how many.
#[inline(always)]
fn coefficients<const K: usize, const H: usize>(tile: &[u8]) -> ([(usize, f32); TILE], usize) {
    let bitmap = u64::from_le_bytes(tile[..8].try_into().expect("tile has 8 bitmap bytes"));
    let d = read_f16(tile, 8);
    let positions = &tile[HEADER..HEADER + H];
    let mut listed = 0u64;
    for &p in positions {
        if (p as usize) < TILE {
            listed |= 1u64 << p;
        }
    }
    let mut c = [0f32; TILE];
    let mut codes = bitmap & !listed;
    let code_at = HEADER + 3 * H;
    let mut i = 0;
    while codes != 0 && i < K - H {
        let k = codes.trailing_zeros() as usize;
        codes &= codes - 1;
        let byte = tile[code_at + i / 2];
        let code = if i % 2 == 0 { byte & 0x0F } else { byte >> 4 };
        c[k] = (code as i32 - 8) as f32 * d;
        i += 1;
    }
    for (j, &p) in positions.iter().enumerate() {
        if (p as usize) < TILE {
            c[p as usize] = read_f16(tile, HEADER + H + 2 * j);
        }
    }
    let mut out = [(0usize, 0f32); TILE];
    let mut count = 0;
    for (k, &v) in c.iter().enumerate() {
        // NaN != 0, so a NaN coefficient is kept and poisons its chains as the reference's.
        if v != 0.0 {
            out[count] = (k, v);
            count += 1;
        }
    }
    (out, count)
}

#[inline(always)]
fn decode_tile<const K: usize, const H: usize>(tile: &[u8], out: &mut [f32; TILE]) {
    let (coeffs, count) = coefficients::<K, H>(tile);
    accumulate(&coeffs[..count], out);
}

/// Decodes one row of `hct_v3m` tiles (portable).
pub fn to_float<const K: usize, const H: usize>(
    x: &[u8],
    y: &mut [f32],
) -> Result<(), KernelError> {
    let f = format(K, H);
    check_to_float(f, x.len(), y.len())?;
    decode_row(x, y, f.block_bytes(), decode_tile::<K, H>);
    Ok(())
}

/// Dot product of an `hct_v3m` row with a Q8_0 activation row of `n` elements (portable).
pub fn vec_dot_q8_0<const K: usize, const H: usize>(
    n: usize,
    x: &[u8],
    y: &[u8],
) -> Result<f32, KernelError> {
    vec_dot_with(format(K, H), n, x, y, decode_tile::<K, H>)
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    //! AVX2: the coefficients as the portable path, `hct_v3`'s AVX2 inverse.
    #![allow(unsafe_op_in_unsafe_fn)]
    use super::*;
    use crate::kernels::hct_v3::avx2::accumulate_avx2;
    use crate::kernels::KernelTable;

    #[target_feature(enable = "avx2,f16c")]
    unsafe fn decode_tile_avx2<const K: usize, const H: usize>(tile: &[u8], out: &mut [f32; TILE]) {
        let (coeffs, count) = coefficients::<K, H>(tile);
        accumulate_avx2(&coeffs[..count], out);
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn to_float<const K: usize, const H: usize>(
        x: &[u8],
        y: &mut [f32],
    ) -> Result<(), KernelError> {
        let f = format(K, H);
        check_to_float(f, x.len(), y.len())?;
        decode_row(x, y, f.block_bytes(), |t, o| unsafe {
            decode_tile_avx2::<K, H>(t, o)
        });
        Ok(())
    }

    /// # Safety
    /// The CPU must support AVX2 and F16C.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn vec_dot_q8_0<const K: usize, const H: usize>(
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        vec_dot_with(format(K, H), n, x, y, |t, o| unsafe {
            decode_tile_avx2::<K, H>(t, o)
        })
    }

    /// `table` with every `hct_v3m` layout's AVX2 kernels.
    pub(crate) const fn overrides(table: KernelTable) -> KernelTable {
        table
            .with_to_float(format(45, 4), to_float::<45, 4>)
            .with_vec_dot(format(45, 4), vec_dot_q8_0::<45, 4>, None)
            .with_to_float(format(58, 4), to_float::<58, 4>)
            .with_vec_dot(format(58, 4), vec_dot_q8_0::<58, 4>, None)
    }
}

#[cfg(target_arch = "aarch64")]
pub mod neon {
    //! NEON: the coefficients as the portable path, `hct_v3`'s NEON inverse.
    #![allow(unsafe_op_in_unsafe_fn)]
    use super::*;
    use crate::kernels::hct_v3::neon::accumulate_neon;
    use crate::kernels::KernelTable;

    #[target_feature(enable = "neon")]
    unsafe fn decode_tile_neon<const K: usize, const H: usize>(tile: &[u8], out: &mut [f32; TILE]) {
        let (coeffs, count) = coefficients::<K, H>(tile);
        accumulate_neon(&coeffs[..count], out);
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn to_float<const K: usize, const H: usize>(
        x: &[u8],
        y: &mut [f32],
    ) -> Result<(), KernelError> {
        let f = format(K, H);
        check_to_float(f, x.len(), y.len())?;
        decode_row(x, y, f.block_bytes(), |t, o| unsafe {
            decode_tile_neon::<K, H>(t, o)
        });
        Ok(())
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn vec_dot_q8_0<const K: usize, const H: usize>(
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        vec_dot_with(format(K, H), n, x, y, |t, o| unsafe {
            decode_tile_neon::<K, H>(t, o)
        })
    }

    /// `table` with every `hct_v3m` layout's NEON kernels.
    pub(crate) const fn overrides(table: KernelTable) -> KernelTable {
        table
            .with_to_float(format(45, 4), to_float::<45, 4>)
            .with_vec_dot(format(45, 4), vec_dot_q8_0::<45, 4>, None)
            .with_to_float(format(58, 4), to_float::<58, 4>)
            .with_vec_dot(format(58, 4), vec_dot_q8_0::<58, 4>, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hct_format::codec::spectral::mixed::CODECS;
    use hct_format::codec::Codec;

    /// Every tile of an encoded row, and tiles of random bytes (stray positions, repeated
    /// positions, NaN values): the kernel decodes as the format crate's reference, bit for bit
    /// (NaNs as NaNs).
    #[test]
    fn portable_decode_is_the_reference_bit_for_bit() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for c in &CODECS {
            let tb = c.row_bytes(64).unwrap() as usize;
            let x: Vec<f32> = (0..64 * 16)
                .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let mut row = vec![0u8; c.row_bytes(x.len() as u64).unwrap() as usize];
            c.encode_row(&x, &mut row).unwrap();
            for _ in 0..64 {
                let mut t: Vec<u8> = (0..tb).map(|_| next() as u8).collect();
                // Some positions in range so the binary16 path is exercised.
                for p in &mut t[HEADER..HEADER + c.high()] {
                    if *p % 4 != 0 {
                        *p %= 64;
                    }
                }
                row.extend_from_slice(&t);
            }
            let n = row.len() / tb * 64;
            let mut want = vec![0f32; n];
            c.decode_row(&row, &mut want).unwrap();
            let mut got = vec![0f32; n];
            match c.kept() {
                45 => to_float::<45, 4>(&row, &mut got).unwrap(),
                58 => to_float::<58, 4>(&row, &mut got).unwrap(),
                k => panic!("no kernel for K = {k}"),
            }
            // Equal bits, or both NaN: which NaN's payload an add propagates is left open by
            // IEEE 754 and by Rust (the compiler may commute the operands), as in the harness.
            let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            if let Some(i) = (0..n).find(|&i| !same(got[i], want[i])) {
                panic!(
                    "{}: element {i} (tile {}): kernel {:08x}, reference {:08x}; tile {:02x?}",
                    c.id(),
                    i / 64,
                    got[i].to_bits(),
                    want[i].to_bits(),
                    &row[i / 64 * tb..(i / 64 + 1) * tb]
                );
            }
        }
    }
}
