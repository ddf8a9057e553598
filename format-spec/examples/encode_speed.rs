//! Encoder speed of any codecs on Gaussian-like rows, per CPU-second of this process (so a
//! busy machine slows the wall clock, not the figure), with the relative squared error.
//!
//!   cargo run --release -p hct-format --example encode_speed -- [--elements N] ID...
//!
//! One thread, rows of 576 elements (SmolLM2's width), sigma 0.02.

use hct_format::codec::{find, int4::sample::gaussian_like};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one rusage struct into the zeroed value we pass.
    let usage = unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        r
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut elements: usize = 576 * 64;
    let mut ids = Vec::new();
    while let Some(a) = args.next() {
        if a == "--elements" {
            elements = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--elements N");
        } else {
            ids.push(a);
        }
    }
    const ROW: usize = 576;
    let rows = elements.div_ceil(ROW);
    let x: Vec<Vec<f32>> = (0..rows)
        .map(|r| gaussian_like(r as u64 + 1, ROW, 0.02))
        .collect();
    for id in ids {
        let Some(c) = find(&id) else {
            eprintln!("{id}: unknown codec");
            continue;
        };
        let row_bytes = c.row_bytes(ROW as u64).expect("576-element rows") as usize;
        let mut out = vec![0u8; row_bytes];
        let mut y = vec![0f32; ROW];
        let (mut err, mut energy) = (0.0f64, 0.0f64);
        let mut encode_seconds = 0.0;
        for row in &x {
            let t = cpu_seconds();
            c.encode_row(row, &mut out).expect("encodable row");
            encode_seconds += cpu_seconds() - t;
            c.decode_row(&out, &mut y).expect("decodable row");
            for (a, b) in row.iter().zip(&y) {
                err += (*a as f64 - *b as f64).powi(2);
                energy += (*a as f64).powi(2);
            }
        }
        println!(
            "{id}: {:.4} Melem per CPU-second, {:.3} bits per weight, relative squared error {:.4} ({} elements)",
            (rows * ROW) as f64 / encode_seconds / 1e6,
            row_bytes as f64 * 8.0 / ROW as f64,
            err / energy,
            rows * ROW
        );
    }
}
