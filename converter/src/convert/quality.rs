//! Per-tensor reconstruction error, measured as the converter runs: every re-encoded tensor
//! reports its relative RMS error, cosine similarity and SNR against its source.

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
        let mut s = ErrorSums {
            n: x.len() as u64,
            ..Default::default()
        };
        for (&a, &b) in x.iter().zip(y) {
            let (a, b) = (a as f64, b as f64);
            s.xx += a * a;
            s.yy += b * b;
            s.xy += a * b;
            s.dd += (a - b) * (a - b);
        }
        s
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
