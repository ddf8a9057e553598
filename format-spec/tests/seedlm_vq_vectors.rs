//! Golden vectors of the SeedLM codecs (SPEC.md §7.9, tests/vectors/seedlm/<id>.json) and the
//! vector-quantization codec (§7.10, tests/vectors/vq/<id>.json).
//!
//! Each id pins its encoder, so these files pin the bytes it writes for each input and the f32
//! bits its decoder returns; a normal run fails if any of them changes.
//! `HCT_BLESS=1 cargo test -p hct-format --test seedlm_vq_vectors` rewrites them; doing so for
//! a released id is a spec violation (a new behaviour needs a new id).
//! compat-tests/scripts/check_seedlm_vq_vectors.py reproduces every file from SPEC.md alone.

use hct_format::codec::find;
use hct_format::codec::int4::sample::gaussian_like;
use hct_format::codec::seedlm::SubBlock;
use hct_format::codec::vq::{CODEBOOK_1, CODEBOOK_2};
mod common;

use common::vectors::{
    check_or_bless, input, plain, record_cases, record_refusals, same_bytes_at_1_and_2_threads,
    Case, Input, Refusal,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

const IDS: [(&str, &str); 4] = [
    ("seedlm_c8p3_s16_v1", "seedlm"),
    ("seedlm_c8p3_s12_v1", "seedlm"),
    ("seedlm_c8p3_s8_v1", "seedlm"),
    ("vq8_r2x256_g32_v1", "vq"),
];

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    codec: String,
    spec: String,
    generator: String,
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    codebooks_sha256: Option<String>,
    cases: Vec<Case>,
    refused: Vec<Refusal>,
}

fn cases() -> Vec<(&'static str, &'static str, Vec<f32>)> {
    let mut exact = [0f32; 8];
    SubBlock {
        seed: 200,
        exponent: 10,
        coeffs: [3, -5, 7],
    }
    .decode(&mut exact);
    let mut exact_row = gaussian_like(7, 32, 0.01);
    exact_row[8..16].copy_from_slice(&exact);
    let mut outlier = gaussian_like(3, 64, 0.02);
    outlier[37] = 2.5;
    let mut sparse = vec![0f32; 32];
    sparse[3] = 0.5;
    sparse[20] = -0.25;
    sparse[31] = 1.0e-3;
    let mut negative_peak = gaussian_like(4, 32, 0.05);
    negative_peak[12] = -1.75;
    vec![
        (
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 64 elements)",
            gaussian_like(1, 64, 0.02),
        ),
        (
            "gaussian_large",
            "sigma 3 (seed 2, 64 elements)",
            gaussian_like(2, 64, 3.0),
        ),
        ("zero", "all zeros: the zero start is kept", vec![0.0; 32]),
        ("constant", "every element 0.125", vec![0.125; 32]),
        ("sparse", "three non-zeros among zeros", sparse),
        (
            "outlier",
            "one element of 2.5 among sigma-0.02 weights",
            outlier,
        ),
        ("negative_peak", "a large negative element", negative_peak),
        (
            "exact_sub_block",
            "elements 8..16 are seed 200, e 10, c (3, -5, 7) decoded exactly",
            exact_row,
        ),
        (
            "tiny",
            "values near 1e-7: the smallest scales",
            gaussian_like(5, 32, 1.0e-7),
        ),
        (
            "subnormal",
            "f32 subnormal inputs",
            (0..32).map(|i| f32::from_bits(1 + 977 * i)).collect(),
        ),
        (
            "huge",
            "values near 1e30: coefficients and scales saturate",
            gaussian_like(6, 32, 1.0e30),
        ),
    ]
}

fn refusals() -> Vec<(&'static str, &'static str, Vec<f32>)> {
    let with = |i: usize, v: f32| {
        let mut x = gaussian_like(9, 32, 0.02);
        x[i] = v;
        x
    };
    vec![
        ("nan", "element 5 is NaN", with(5, f32::NAN)),
        ("inf", "element 30 is +inf", with(30, f32::INFINITY)),
        ("neg_inf", "element 0 is -inf", with(0, f32::NEG_INFINITY)),
    ]
}

fn dir(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(family)
}

fn codebooks_sha256() -> String {
    let mut h = Sha256::new();
    for book in [&CODEBOOK_1, &CODEBOOK_2] {
        for entry in book.iter() {
            h.update(entry.map(|v| v as u8));
        }
    }
    hex::encode(h.finalize())
}

fn inputs(rows: Vec<(&'static str, &'static str, Vec<f32>)>) -> Vec<Input> {
    rows.into_iter()
        .map(|(name, why, x)| input(name, why, x))
        .collect()
}

fn build(id: &str, family: &str) -> VectorFile {
    let c = find(id).unwrap();
    let out = record_cases(id, c, inputs(cases()), &plain(c));
    let refused = record_refusals(id, c, inputs(refusals()), &plain(c));
    let vq = family == "vq";
    VectorFile {
        codec: id.into(),
        spec: if vq { "format-spec/SPEC.md §7.10" } else { "format-spec/SPEC.md §7.9" }.into(),
        generator: "format-spec/tests/seedlm_vq_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test seedlm_vq_vectors)".into(),
        format: "Each case is one row of row_len elements. input_f32_bits / decoded_f32_bits: one f32 per 8 hex \
                 digits, the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0). encoded_hex: the row's \
                 blocks as bytes. refused: rows the encoder must refuse. codebooks_sha256 (vq): SHA-256 of C1 then C2, \
                 256 entries each, 8 signed bytes per entry in order."
            .into(),
        codebooks_sha256: vq.then(codebooks_sha256),
        cases: out,
        refused,
    }
}

#[test]
fn golden_vectors_are_reproduced() {
    for (id, family) in IDS {
        check_or_bless(&dir(family).join(format!("{id}.json")), &build(id, family));
    }
}

#[test]
fn encoders_give_the_same_bytes_whatever_the_thread_count() {
    for (id, _) in IDS {
        // s16 searches 65,536 seeds per block: a short row keeps the test quick.
        let len = if id.contains("s16") { 32 } else { 128 };
        let rows: Vec<Vec<f32>> = (0..8).map(|s| gaussian_like(1000 + s, len, 0.05)).collect();
        same_bytes_at_1_and_2_threads(id, find(id).unwrap(), &rows);
    }
}
