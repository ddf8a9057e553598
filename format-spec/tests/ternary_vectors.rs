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
mod common;

use common::vectors::{
    check_or_bless, input, plain, record_cases, record_refusals, same_bytes_at_1_and_2_threads,
    Case, Input, Refusal,
};
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

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ternary")
}

fn build(id: &str) -> VectorFile {
    let c = find_ternary(id).unwrap();
    let mut out = record_cases(id, c, cases(), &plain(c));
    for case in &mut out {
        case.lossless = Some(case.decoded_f32_bits == case.input_f32_bits);
    }
    let refused = record_refusals(id, c, refusals(), &plain(c));
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
    for id in IDS {
        check_or_bless(&dir().join(format!("{id}.json")), &build(id));
    }
}

#[test]
fn the_already_ternary_case_is_lossless_and_the_others_are_not() {
    let f = build("tq2_0_absmean_v1");
    let lossless: Vec<&str> = f
        .cases
        .iter()
        .filter(|c| c.lossless == Some(true))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(lossless, ["already_ternary", "zero_block"]);
}

#[test]
fn encoders_give_the_same_bytes_whatever_the_thread_count() {
    let rows: Vec<Vec<f32>> = (0..16)
        .map(|s| gaussian_like(1000 + s, 512, 0.05))
        .collect();
    for id in IDS {
        same_bytes_at_1_and_2_threads(id, find_ternary(id).unwrap(), &rows);
    }
}
