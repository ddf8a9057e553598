//! Per-call speed of the SeedLM (`seedlm_c8p3_s{16,12,8}_v1`, SPEC.md §7.9) and
//! vector-quantization (`vq8_r2x256_g32_v1`, §7.10) kernels on every backend this CPU runs:
//! one cache-resident row of 576 and 1536 elements (SmolLM2-135M's hidden and FFN widths),
//! `to_float` and `vec_dot` with Q8_0 activations, single thread.
//!
//! The kernels' speed does not depend on the values, so rows are random bytes (every bit
//! pattern is a valid SeedLM or VQ block, every VQ scale code a finite scale); Q8_0
//! activations get a scale of 1. SeedLM's per-seed basis table is built before timing;
//! its one-off build time is printed on its own line. Each case is timed as a batch of calls,
//! the batches interleaved across cases so machine load hits all alike, and the best batch is
//! kept.
//!
//! `cargo bench -p hct-kernels --bench seedlm_vq [-- --trials N]`

use std::hint::black_box;
use std::time::Instant;

use hct::platform::Backend;
use hct::WeightFormat;

const WIDTHS: [usize; 2] = [576, 1536];
const FORMATS: [WeightFormat; 4] = [
    WeightFormat::SeedLmS16,
    WeightFormat::SeedLmS12,
    WeightFormat::SeedLmS8,
    WeightFormat::Vq8R2x256G32,
];
/// Calls per timed batch.
const CALLS: usize = 2000;

struct Case {
    format: WeightFormat,
    n: usize,
    backend: Backend,
    x: Vec<u8>,
    y: Vec<u8>,
    best_to_float: f64,
    best_vec_dot: f64,
}

fn main() {
    let trials = trials_from_args().unwrap_or(15);
    let mut rng = 0x5EED_1234_u64;
    let mut cases = Vec::new();
    for format in FORMATS {
        // The first call builds the basis table for this seed width (SeedLM); time it once.
        let start = Instant::now();
        let mut out = vec![0.0f32; 32];
        Backend::scalar()
            .to_float(format, &vec![0u8; format.block_bytes()], &mut out)
            .expect("one block decodes");
        println!(
            "first call ({}, builds any table): {:.1} ms",
            format.name(),
            start.elapsed().as_secs_f64() * 1e3
        );
        for n in WIDTHS {
            let x = random_bytes(&mut rng, format.row_bytes(n).expect("whole blocks"));
            let ab = format.activation().block_bytes();
            let mut y = random_bytes(&mut rng, n / 32 * ab);
            for block in y.chunks_exact_mut(ab) {
                block[..2].copy_from_slice(&0x3C00u16.to_le_bytes());
            }
            for backend in Backend::available() {
                cases.push(Case {
                    format,
                    n,
                    backend,
                    x: x.clone(),
                    y: y.clone(),
                    best_to_float: f64::INFINITY,
                    best_vec_dot: f64::INFINITY,
                });
            }
        }
    }
    for _ in 0..trials {
        for case in &mut cases {
            let mut out = vec![0.0f32; case.n];
            let start = Instant::now();
            for _ in 0..CALLS {
                case.backend
                    .to_float(case.format, black_box(&case.x), &mut out)
                    .expect("valid row");
                black_box(&out);
            }
            let ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
            case.best_to_float = case.best_to_float.min(ns);
            let start = Instant::now();
            for _ in 0..CALLS {
                black_box(
                    case.backend
                        .vec_dot(case.format, case.n, black_box(&case.x), black_box(&case.y))
                        .expect("valid rows"),
                );
            }
            let ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
            case.best_vec_dot = case.best_vec_dot.min(ns);
        }
    }
    println!("\nbest of {trials} batches of {CALLS} calls, ns per call (one row)\n");
    println!("| layout | n | backend | to_float ns | vec_dot ns |");
    println!("|---|---:|---|---:|---:|");
    for c in &cases {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} |",
            c.format.name(),
            c.n,
            c.backend.isa().name(),
            c.best_to_float,
            c.best_vec_dot
        );
    }
}

fn random_bytes(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (*state >> 56) as u8
        })
        .collect()
}

fn trials_from_args() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--trials")?;
    args.get(i + 1)?.parse().ok()
}
