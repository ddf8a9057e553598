//! IEEE binary16 ↔ binary32, exact and branch-light, for the scalar kernels.
//!
//! The kernels convert their own scales instead of calling `half`'s slice conversion
//! (measured about 4x slower than F16C in a default build). Widening is exact,
//! so the scalar path, F16C's `vcvtph2ps` and NEON's `fcvtl` agree on every finite input.
//! A signalling NaN comes out quiet, as both instructions deliver it.

/// Widens binary16 bits to f32. Exact for every input; NaNs come out quiet.
pub const fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let mant = (h & 0x3FF) as u32;
    let bits = if exp == 0x1F {
        let quiet = if mant != 0 { 0x0040_0000 } else { 0 };
        sign | 0x7F80_0000 | quiet | (mant << 13)
    } else if exp != 0 {
        sign | ((exp + (127 - 15)) << 23) | (mant << 13)
    } else if mant == 0 {
        sign
    } else {
        // Subnormal: mant · 2^-24 = 1.f · 2^(top - 24), top = index of mant's highest bit.
        let top = 31 - mant.leading_zeros();
        let frac = (mant << (23 - top)) & 0x007F_FFFF;
        sign | ((top + 127 - 24) << 23) | frac
    };
    f32::from_bits(bits)
}

/// Narrows an f32 to binary16 bits, rounding to nearest, ties to even; overflow gives ±inf.
/// A NaN becomes `sign | 0x7E00`, the value ggml's `GGML_FP32_TO_FP16` produces.
pub const fn f32_to_f16_bits(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xFF) as i32;
    let mant = x & 0x007F_FFFF;
    if exp == 0xFF {
        return sign | if mant != 0 { 0x7E00 } else { 0x7C00 };
    }
    let half_exp = exp - 127 + 15;
    if half_exp >= 0x1F {
        return sign | 0x7C00;
    }
    if half_exp >= 1 {
        // Normal: drop 13 mantissa bits with round-to-nearest-even. A carry out of the
        // mantissa correctly bumps the exponent, up to infinity.
        let truncated = ((half_exp as u32) << 10) | (mant >> 13);
        let rest = mant & 0x1FFF;
        let round_up = rest > 0x1000 || (rest == 0x1000 && (truncated & 1) == 1);
        return sign | (truncated + round_up as u32) as u16;
    }
    // Subnormal or zero result: value / 2^-24 = significand · 2^(half_exp - 14).
    let shift = (14 - half_exp) as u32;
    if shift > 24 {
        // Below 2^-25: rounds to zero (exactly 2^-25 ties to the even zero too).
        return sign;
    }
    let significand = if exp == 0 { mant } else { mant | 0x0080_0000 };
    let truncated = significand >> shift;
    let rest = significand & ((1 << shift) - 1);
    let halfway = 1 << (shift - 1);
    let round_up = rest > halfway || (rest == halfway && (truncated & 1) == 1);
    sign | (truncated + round_up as u32) as u16
}

/// Reads the little-endian binary16 at `bytes[at..at + 2]` as f32.
#[inline(always)]
pub(crate) fn read_f16(bytes: &[u8], at: usize) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn widening_matches_half_on_every_input() {
        for h in 0..=u16::MAX {
            let ours = f16_bits_to_f32(h);
            let theirs = f16::from_bits(h).to_f32();
            if theirs.is_nan() {
                assert!(ours.is_nan(), "{h:#06x}");
                // Same sign and payload, quiet bit set.
                assert_eq!(
                    ours.to_bits(),
                    theirs.to_bits() | 0x0040_0000,
                    "{h:#06x}: NaN must come out quiet"
                );
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{h:#06x}");
            }
        }
    }

    #[test]
    fn narrowing_matches_half_round_to_nearest_even() {
        let check = |bits: u32| {
            let f = f32::from_bits(bits);
            let ours = f32_to_f16_bits(f);
            if f.is_nan() {
                assert_eq!(
                    ours,
                    ((bits >> 16) as u16 & 0x8000) | 0x7E00,
                    "{bits:#010x}"
                );
            } else {
                assert_eq!(ours, f16::from_f32(f).to_bits(), "{bits:#010x} = {f:e}");
            }
        };
        // Every f32 whose low 11 bits are a tie/near-tie pattern around each binary16
        // rounding boundary, across the whole exponent range, plus a dense sweep.
        for exp in 0u32..=0xFF {
            for mant_hi in (0u32..(1 << 10)).step_by(7) {
                for low in [0u32, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF] {
                    let mant = (mant_hi << 13) | low;
                    for sign in [0u32, 0x8000_0000] {
                        check(sign | (exp << 23) | (mant & 0x7F_FFFF));
                    }
                }
            }
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2_000_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            check((state >> 32) as u32);
        }
    }

    #[test]
    fn round_trip_of_every_finite_half_is_identity() {
        for h in 0..=u16::MAX {
            let f = f16_bits_to_f32(h);
            if !f.is_nan() {
                assert_eq!(f32_to_f16_bits(f), h, "{h:#06x}");
            }
        }
    }
}
