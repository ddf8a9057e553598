//! ggml's microscaled 4-bit float types. Each nibble is an FP4 E2M1 code (sign bit, two
//! exponent bits, one mantissa bit); ggml keeps the code values doubled as small integers
//! (0, 1, 2, 3, 4, 6, 8, 12, then the same negated) and halves the scale to match.
//!
//! MXFP4 (32 elements, 17 bytes): an E8M0 scale byte `e` (the power 2^(e-127)) @0, then 16
//! nibble bytes, byte `j` holding element `j` low and `j + 16` high.
//!
//! NVFP4 (64 elements, 36 bytes): four unsigned E4M3 scale bytes @0 (one per 16 elements),
//! then 32 nibble bytes; sub-block `s` uses bytes `4 + 8s ..`, byte `j` holding element
//! `16s + j` low and `16s + j + 8` high.

/// FP4 E2M1 code → twice its value.
const E2M1_DOUBLED: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

pub(super) fn decode_mxfp4(block: &[u8], out: &mut [f32]) {
    let d = e8m0_halved(block[0]);
    for (j, &byte) in block[1..17].iter().enumerate() {
        out[j] = E2M1_DOUBLED[(byte & 0x0F) as usize] as f32 * d;
        out[j + 16] = E2M1_DOUBLED[(byte >> 4) as usize] as f32 * d;
    }
}

pub(super) fn decode_nvfp4(block: &[u8], out: &mut [f32]) {
    for sub in 0..4 {
        let d = ue4m3_halved(block[sub]);
        let qs = &block[4 + 8 * sub..4 + 8 * (sub + 1)];
        let y = &mut out[16 * sub..16 * (sub + 1)];
        for (j, &byte) in qs.iter().enumerate() {
            y[j] = E2M1_DOUBLED[(byte & 0x0F) as usize] as f32 * d;
            y[j + 8] = E2M1_DOUBLED[(byte >> 4) as usize] as f32 * d;
        }
    }
}

/// 2^(e-128): half the E8M0 scale, built from its bits (subnormal for e < 2). ggml never
/// treats e = 255 as NaN here, and neither does HCT.
fn e8m0_halved(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        (e as u32 - 1) << 23
    };
    f32::from_bits(bits)
}

/// Half the value of an unsigned E4M3 byte (bias 7, top bit ignored). ggml reads 0x7F,
/// E4M3's NaN, as zero. Every step is exact, so the value does not depend on operation order.
fn ue4m3_halved(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let exponent = ((x >> 3) & 0x0F) as i32;
    let mantissa = (x & 7) as f32;
    let raw = if exponent == 0 {
        mantissa * power_of_two(-9)
    } else {
        (1.0 + mantissa / 8.0) * power_of_two(exponent - 7)
    };
    raw * 0.5
}

/// 2^k for -126 ≤ k ≤ 127.
fn power_of_two(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_match_their_definitions() {
        assert_eq!(e8m0_halved(127), 0.5);
        assert_eq!(e8m0_halved(0) as f64, 2f64.powi(-128));
        assert_eq!(e8m0_halved(1) as f64, 2f64.powi(-127));
        assert_eq!(e8m0_halved(255) as f64, 2f64.powi(127));
        assert_eq!(ue4m3_halved(0x38), 0.5); // exponent 7, mantissa 0: 1.0
        assert_eq!(ue4m3_halved(0x7E), 224.0); // 448, the largest
        assert_eq!(ue4m3_halved(0x01), 2f32.powi(-10)); // subnormal 2^-9
        assert_eq!(ue4m3_halved(0x7F), 0.0);
    }
}
