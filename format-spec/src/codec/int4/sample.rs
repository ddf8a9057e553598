//! Deterministic Gaussian-like samples for golden vectors, tests, examples and benchmarks.
//!
//! SplitMix64 (Steele, Lea, Flood 2014) drives an Irwin–Hall sum of 12 uniforms minus 6
//! (mean 0, variance 1, tails cut at ±6). Irwin–Hall rather than Box–Muller because it uses
//! only IEEE-exact operations (integer mixing, f64 add and multiply): `ln` and `cos` differ
//! between math libraries in their last bit, and the samples must be reproducible bit for
//! bit in any language (compat-tests/scripts/check_int4_vectors.py regenerates them).
//! The cut tails do not hide the outlier case: the golden vectors plant outliers explicitly.

/// SplitMix64: `state += 0x9e3779b97f4a7c15`, then the 64-bit finalizer below.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1): the top 53 bits, times 2^-53 (exact).
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Irwin–Hall: twelve uniforms summed left to right from 0.0, minus 6.0.
    pub fn next_gaussian_like(&mut self) -> f64 {
        let mut sum = 0.0f64;
        for _ in 0..12 {
            sum += self.next_unit();
        }
        sum - 6.0
    }
}

/// `len` samples `(g · sigma) as f32` (f64 product, then one rounding to nearest even) from
/// a generator seeded with `seed`.
pub fn gaussian_like(seed: u64, len: usize, sigma: f64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..len)
        .map(|_| (rng.next_gaussian_like() * sigma) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_its_published_sequence() {
        // First outputs for seed 0, as listed with the reference C implementation.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn samples_look_standard() {
        let xs = gaussian_like(7, 100_000, 1.0);
        let n = xs.len() as f64;
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert!(xs.iter().all(|x| x.abs() <= 6.0));
    }
}
