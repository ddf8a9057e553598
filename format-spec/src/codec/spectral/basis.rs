//! The 64-point orthonormal DCT-II basis of `hct_v3` (SPEC.md §7.6.2), as binary32 constants.
//!
//! `C[k][n] = s_k · cos(π·(2n+1)·k / 128)`, `s_0 = 1/8`, `s_k = √2/8` for `k ≥ 1`, each
//! entry rounded once, to nearest, from the exact real value. Every entry for `k ≥ 1` is
//! `±T[j]` for one of the 65 values below (`cos` is even and `cos(π − a) = −cos(a)`), so the
//! table is stated as those 65 bit patterns and a folding rule: no platform `cos` takes part
//! in any decoder's or encoder's arithmetic, and every machine uses the same 4,096 numbers.

/// Tile length: coefficients and elements per tile.
pub const N: usize = 64;

/// `T[j] = binary32(√2/8 · cos(π·j/128))`, `j = 0 … 64`, as bit patterns (`T[64] = +0`
/// exactly). Checked against a 200-bit evaluation when the table was written, and against
/// a binary64 evaluation by this module's tests.
pub const T_BITS: [u32; 65] = [
    0x3e3504f3, 0x3e34f6fe, 0x3e34cd21, 0x3e348763, 0x3e3425ce, 0x3e33a872, 0x3e330f61, 0x3e325ab4,
    0x3e318a86, 0x3e309ef7, 0x3e2f982b, 0x3e2e764c, 0x3e2d3986, 0x3e2be20a, 0x3e2a700c, 0x3e28e3c6,
    0x3e273d75, 0x3e257d59, 0x3e23a3b9, 0x3e21b0dd, 0x3e1fa512, 0x3e1d80a8, 0x3e1b43f5, 0x3e18ef51,
    0x3e168317, 0x3e13ffa8, 0x3e116566, 0x3e0eb4b9, 0x3e0bee0a, 0x3e0911c7, 0x3e062061, 0x3e031a4c,
    0x3e000000, 0x3df9a3ee, 0x3df3215c, 0x3dec794d, 0x3de5acc6, 0x3ddebcd5, 0x3dd7aa8b, 0x3dd076ff,
    0x3dc9234e, 0x3dc1b099, 0x3dba2005, 0x3db272be, 0x3daaa9f2, 0x3da2c6d5, 0x3d9aca9e, 0x3d92b689,
    0x3d8a8bd4, 0x3d824bc1, 0x3d73ef2f, 0x3d63213d, 0x3d523045, 0x3d411ee4, 0x3d2fefbb, 0x3d1ea570,
    0x3d0d42af, 0x3cf7944a, 0x3cd47d09, 0x3cb14504, 0x3c8df1a9, 0x3c5510d4, 0x3c0e1d7b, 0x3b8e2871,
    0x00000000,
];

/// `C[k][n]` as a bit pattern: `k = 0` gives `1/8` (exact); otherwise `m = (2n+1)·k mod 256`
/// folds onto `T` with a sign (SPEC.md §7.6.2).
pub const fn entry_bits(k: usize, n: usize) -> u32 {
    const SIGN: u32 = 0x8000_0000;
    if k == 0 {
        return 0x3e00_0000; // 0.125
    }
    let m = ((2 * n + 1) * k) % 256;
    let (j, negative) = if m <= 64 {
        (m, false)
    } else if m <= 128 {
        (128 - m, true)
    } else if m <= 192 {
        (m - 128, true)
    } else {
        (256 - m, false)
    };
    let t = T_BITS[j];
    // T[64] is +0 and stays +0: its sign never matters to a sum (SPEC.md §7.6.2), and the
    // spec fixes it so that the table has one spelling.
    if negative && t != 0 {
        t | SIGN
    } else {
        t
    }
}

const fn build() -> [[f32; N]; N] {
    let mut c = [[0f32; N]; N];
    let mut k = 0;
    while k < N {
        let mut n = 0;
        while n < N {
            c[k][n] = f32::from_bits(entry_bits(k, n));
            n += 1;
        }
        k += 1;
    }
    c
}

/// The basis, `BASIS[k][n] = C[k][n]`: row `k` is coefficient `k`'s contribution to the
/// tile's 64 elements, contiguous so a decoder adds one row per kept coefficient.
pub static BASIS: [[f32; N]; N] = build();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_the_rounded_cosine() {
        for j in 0..=64usize {
            let exact =
                std::f64::consts::SQRT_2 / 8.0 * (std::f64::consts::PI * j as f64 / 128.0).cos();
            let want = if j == 64 { 0.0f32 } else { exact as f32 };
            assert_eq!(T_BITS[j], want.to_bits(), "T[{j}]");
        }
        for k in 0..N {
            for n in 0..N {
                let s = if k == 0 {
                    0.125
                } else {
                    std::f64::consts::SQRT_2 / 8.0
                };
                let v = s * (std::f64::consts::PI * ((2 * n + 1) * k) as f64 / 128.0).cos();
                assert!((BASIS[k][n] as f64 - v).abs() < 1e-8, "C[{k}][{n}]");
            }
        }
    }

    #[test]
    fn basis_is_orthonormal_to_binary32_accuracy() {
        for a in 0..N {
            for b in 0..N {
                let dot: f64 = (0..N)
                    .map(|n| BASIS[a][n] as f64 * BASIS[b][n] as f64)
                    .sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-6, "rows {a} and {b}: {dot}");
            }
        }
    }
}
