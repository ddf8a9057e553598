//! Golden vectors of the ternary codecs (SPEC.md §7.8): tests/vectors/ternary/<id>.json.
//!
//! Each id pins its encoder, so these files pin the bytes it writes for each input and the
//! f32 bits its layout's decoder returns. A normal run fails if any of them changes.
//! `HCT_BLESS=1 cargo test -p hct-format --test ternary_vectors` rewrites them; doing so for
//! a released id is a spec violation (a new behaviour needs a new id).
//! compat-tests/scripts/check_ternary_vectors.py reproduces every file from SPEC.md alone and
//! decodes every row with PyPI gguf's own TQ1_0/TQ2_0 dequantizers.

use hct_format::codec::int4::sample::gaussian_like;
use hct_format::codec::ternary::find_ternary;
use hct_format::codec::Codec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

const IDS: [&str; 2] = ["tq1_0_absmean_v1", "tq2_0_absmean_v1"];

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    codec: String,
    layout: String,
    spec: String,
    generator: String,
    format: String,
    cases: Vec<Case>,
    refused: Vec<Refusal>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Case {
    name: String,
    why: String,
    row_len: usize,
    input_f32_bits: String,
    encoded_hex: String,
    decoded_f32_bits: String,
    /// Whether the decoded row equals the input exactly (the lossless case of §7.8.3).
    lossless: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Refusal {
    name: String,
    why: String,
    input_f32_bits: String,
}

struct Input {
    name: &'static str,
    why: &'static str,
    x: Vec<f32>,
}

fn input(name: &'static str, why: &'static str, x: Vec<f32>) -> Input {
    Input { name, why, x }
}

/// A ternary row: magnitude `a` (a binary16 value) with signs and zeros from a seeded pattern.
fn ternary(seed: u64, len: usize, a: f32) -> Vec<f32> {
    gaussian_like(seed, len, 1.0)
        .iter()
        .map(|&g| {
            if g > 0.6 {
                a
            } else if g < -0.6 {
                -a
            } else {
                0.0
            }
        })
        .collect()
}

fn cases() -> Vec<Input> {
    let mut outlier = gaussian_like(4, 256, 0.02);
    outlier[37] = 0.5;
    let mut ties = vec![0.0f32; 256];
    // γ = (64·0.5 + 64·0.25 + 128·0.125) / 256 = 0.25: half the elements sit exactly on γ/2.
    for (i, v) in ties.iter_mut().enumerate() {
        *v = match i % 4 {
            0 => 0.5,
            1 => -0.25,
            2 => 0.125, // exactly γ/2: rounds to 0 (ties to even)
            _ => -0.125,
        };
    }
    let mut sparse = vec![0.0f32; 256];
    sparse[3] = 1.0;
    sparse[200] = -0.25;
    let mut near_floor = vec![0.0f32; 256];
    // γ is below BitNet's floor 1e-5, so the threshold is 5e-6 rather than γ/2.
    near_floor[0] = 6.0e-6;
    near_floor[1] = -4.0e-6;
    near_floor[2] = 1.0e-5;
    vec![
        input(
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 512 elements, 2 blocks)",
            gaussian_like(1, 512, 0.02),
        ),
        input(
            "gaussian_unit",
            "sigma 1 (seed 2, 256 elements)",
            gaussian_like(2, 256, 1.0),
        ),
        input(
            "already_ternary",
            "±a and zeros with a = binary16(0.0123): decodes exactly to the input",
            ternary(3, 512, half::f16::from_f32(0.0123).to_f32()),
        ),
        input(
            "zero_block",
            "all zeros: the zero block (d = +0, codes 0)",
            vec![0.0; 256],
        ),
        input(
            "constant_block",
            "256 equal values: every code +1, d = binary16(0.3), not exact",
            vec![0.3; 256],
        ),
        input(
            "outlier",
            "one large element in a small-valued block (element 37): it raises γ for the rest",
            outlier,
        ),
        input("exact_ties", "elements exactly at γ/2 round to 0", ties),
        input("sparse", "two non-zero elements among zeros", sparse),
        input(
            "below_gamma_floor",
            "absmean below 1e-5: the threshold is 1e-5/2",
            near_floor,
        ),
        input(
            "below_binary16",
            "values near 1e-9: the scale rounds to 0, so the zero block is written",
            gaussian_like(7, 256, 1.0e-9),
        ),
        input(
            "large_values",
            "values near 1000: scales in the upper binary16 range",
            gaussian_like(9, 256, 1000.0),
        ),
    ]
}

fn refusals() -> Vec<Input> {
    let mut nan = vec![0.1f32; 256];
    nan[7] = f32::NAN;
    let mut inf = vec![0.1f32; 512];
    inf[300] = f32::NEG_INFINITY;
    vec![
        input("nan", "a NaN element", nan),
        input("infinity", "an infinite element", inf),
        input(
            "scale_overflow",
            "the least-squares scale (1e6) overflows binary16",
            vec![1.0e6; 256],
        ),
    ]
}

fn bits(x: &[f32]) -> String {
    x.iter().map(|v| format!("{:08x}", v.to_bits())).collect()
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ternary")
}

fn build(id: &str) -> VectorFile {
    let c = find_ternary(id).unwrap();
    let mut out = Vec::new();
    for i in cases() {
        let mut bytes = vec![0u8; c.row_bytes(i.x.len() as u64).unwrap() as usize];
        c.encode_row(&i.x, &mut bytes)
            .unwrap_or_else(|e| panic!("{id} {}: {e}", i.name));
        let mut y = vec![0f32; i.x.len()];
        c.decode_row(&bytes, &mut y).unwrap();
        out.push(Case {
            name: i.name.into(),
            why: i.why.into(),
            row_len: i.x.len(),
            input_f32_bits: bits(&i.x),
            encoded_hex: hex::encode(&bytes),
            decoded_f32_bits: bits(&y),
            lossless: bits(&y) == bits(&i.x),
        });
    }
    let mut refused = Vec::new();
    for i in refusals() {
        let mut bytes = vec![0u8; c.row_bytes(i.x.len() as u64).unwrap() as usize];
        assert!(
            c.encode_row(&i.x, &mut bytes).is_err(),
            "{id} must refuse {}",
            i.name
        );
        refused.push(Refusal {
            name: i.name.into(),
            why: i.why.into(),
            input_f32_bits: bits(&i.x),
        });
    }
    VectorFile {
        codec: id.into(),
        layout: c.layout().into(),
        spec: "format-spec/SPEC.md §7.8".into(),
        generator: "format-spec/tests/ternary_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test ternary_vectors)".into(),
        format: "Each case is one row of row_len elements. input_f32_bits / decoded_f32_bits: one f32 per 8 hex \
                 digits, the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0). encoded_hex: the \
                 row's blocks as bytes (ggml's block layout named by `layout`). lossless: the decoded row equals \
                 the input bit for bit. refused: rows the encoder must refuse."
            .into(),
        cases: out,
        refused,
    }
}

#[test]
fn golden_vectors_are_reproduced() {
    let bless = std::env::var("HCT_BLESS").is_ok_and(|v| v == "1");
    for id in IDS {
        let got = build(id);
        let path = dir().join(format!("{id}.json"));
        if bless {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless with HCT_BLESS=1)", path.display()));
        let want: VectorFile = serde_json::from_str(&text).unwrap();
        for (g, w) in got.cases.iter().zip(&want.cases) {
            assert_eq!(g, w, "{id}: case {}", w.name);
        }
        assert_eq!(got, want, "{id}");
    }
}

#[test]
fn the_already_ternary_case_is_lossless_and_the_others_are_not() {
    let f = build("tq2_0_absmean_v1");
    let lossless: Vec<&str> = f
        .cases
        .iter()
        .filter(|c| c.lossless)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(lossless, ["already_ternary", "zero_block"]);
}

#[test]
fn encoders_give_the_same_bytes_whatever_the_thread_count() {
    use rayon::prelude::*;
    for id in IDS {
        let c = find_ternary(id).unwrap();
        let rows: Vec<Vec<f32>> = (0..16)
            .map(|s| gaussian_like(1000 + s, 512, 0.05))
            .collect();
        let encode = |threads: usize| -> Vec<Vec<u8>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                rows.par_iter()
                    .map(|x| {
                        let mut b = vec![0u8; c.row_bytes(512).unwrap() as usize];
                        c.encode_row(x, &mut b).unwrap();
                        b
                    })
                    .collect()
            })
        };
        assert_eq!(encode(1), encode(2), "{id}");
    }
}
