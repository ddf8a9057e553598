//! Per-tensor reconstruction error, measured as the converter runs (CODECS.md: quality
//! is reported as measured error per tensor).

use serde::Serialize;

/// Running sums over (original x, reconstruction y) pairs, in f64. Chunks are summed in
/// a fixed order so the figures do not depend on the thread count.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorSums {
    pub n: u64,
    pub xx: f64,
    pub yy: f64,
    pub xy: f64,
    pub dd: f64,
}

impl ErrorSums {
    pub fn of(x: &[f32], y: &[f32]) -> ErrorSums {
        // LANES independent partial sums per figure, combined in a fixed order at the end:
        // one running sum is a chain of dependent f64 additions, which held the whole
        // measurement to one element per add latency (a sixth of the converter's time on
        // int4_g32_fp16_v1). The result still depends only on the data, not on threads.
        const LANES: usize = 4;
        let mut lanes = [[0f64; LANES]; 4];
        let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
        let (x_rest, y_rest) = (xc.remainder(), yc.remainder());
        for (xs, ys) in xc.zip(yc) {
            for i in 0..LANES {
                let (a, b) = (xs[i] as f64, ys[i] as f64);
                lanes[0][i] += a * a;
                lanes[1][i] += b * b;
                lanes[2][i] += a * b;
                lanes[3][i] += (a - b) * (a - b);
            }
        }
        for (i, (&a, &b)) in x_rest.iter().zip(y_rest).enumerate() {
            let (a, b) = (a as f64, b as f64);
            lanes[0][i] += a * a;
            lanes[1][i] += b * b;
            lanes[2][i] += a * b;
            lanes[3][i] += (a - b) * (a - b);
        }
        let [xx, yy, xy, dd] = lanes.map(|l| l.iter().sum());
        ErrorSums {
            n: x.len().min(y.len()) as u64,
            xx,
            yy,
            xy,
            dd,
        }
    }

    pub fn add(&mut self, o: &ErrorSums) {
        self.n += o.n;
        self.xx += o.xx;
        self.yy += o.yy;
        self.xy += o.xy;
        self.dd += o.dd;
    }

    pub fn report(&self) -> Quality {
        let rel_rms = if self.xx > 0.0 {
            (self.dd / self.xx).sqrt()
        } else {
            0.0
        };
        let cosine = if self.xx > 0.0 && self.yy > 0.0 {
            self.xy / (self.xx.sqrt() * self.yy.sqrt())
        } else {
            1.0
        };
        let snr_db = if self.dd > 0.0 {
            10.0 * (self.xx / self.dd).log10()
        } else {
            f64::INFINITY
        };
        Quality {
            rel_rms_error: rel_rms,
            cosine,
            snr_db,
        }
    }
}

/// Relative RMS error ‖x−y‖/‖x‖, cosine similarity, and SNR in dB (10·log10 ‖x‖²/‖x−y‖²).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Quality {
    pub rel_rms_error: f64,
    pub cosine: f64,
    pub snr_db: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_a_plain_loop_and_give_the_figures() {
        let x: Vec<f32> = (0..1003)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let y: Vec<f32> = x.iter().map(|v| (v * 16.0).round() / 16.0).collect();
        let s = ErrorSums::of(&x, &y);
        let (mut xx, mut yy, mut xy, mut dd) = (0f64, 0f64, 0f64, 0f64);
        for (&a, &b) in x.iter().zip(&y) {
            let (a, b) = (a as f64, b as f64);
            xx += a * a;
            yy += b * b;
            xy += a * b;
            dd += (a - b) * (a - b);
        }
        assert_eq!(s.n, 1003);
        for (got, want) in [(s.xx, xx), (s.yy, yy), (s.xy, xy), (s.dd, dd)] {
            assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
        }
        let q = s.report();
        assert!((q.rel_rms_error - (dd / xx).sqrt()).abs() < 1e-12);
        assert!(q.cosine > 0.999 && q.cosine <= 1.0 + 1e-12);
        assert!((q.snr_db - 10.0 * (xx / dd).log10()).abs() < 1e-9);
        let exact = ErrorSums::of(&x, &x).report();
        assert_eq!((exact.rel_rms_error, exact.snr_db), (0.0, f64::INFINITY));
    }
}
