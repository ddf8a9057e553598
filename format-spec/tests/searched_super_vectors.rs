//! Golden vectors of the searched super-block codecs (SPEC.md §7.5.5):
//! tests/vectors/searched_super/<id>.json.
//!
//! Each id pins its encoder, so these files pin the bytes it writes for each input (and, for
//! rows with an importance vector, for that input and those weights) and the f32 bits its
//! layout's decoder returns. A normal run fails if any of them changes.
//! `HCT_BLESS=1 cargo test -p hct-format --test searched_super_vectors` rewrites them; doing
//! so for a released id is a spec violation (a new behaviour needs a new id).
//! compat-tests/scripts/check_searched_super_vectors.py reproduces every file from SPEC.md
//! alone and decodes it with PyPI gguf's own ggml dequantizers.

use hct_format::codec::int4::sample::gaussian_like;
use hct_format::codec::searched_super::find_searched_super;
mod common;

use common::vectors::{
    check_or_bless, input, plain, record_cases, record_refusals, same_bytes_at_1_and_2_threads,
    Case, Input, Refusal,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

const IDS: [&str; 2] = ["iq4_xs_mse_v1", "q6_k_mse_v1"];

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

fn cases() -> Vec<Input> {
    let mut outlier = gaussian_like(4, 256, 0.02);
    outlier[37] = 0.5;
    let mut negative_max = gaussian_like(5, 256, 1.0);
    negative_max[200] = -7.0;
    let mut ties = vec![0.0f32; 256];
    for (i, v) in ties.iter_mut().enumerate() {
        // Half-integers and repeated magnitudes: many elements sit exactly on a midpoint
        // for some candidate scale, exercising the ties-to-smaller-value rule.
        *v = ((i as i32 % 9) - 4) as f32 * 0.5;
    }
    let mut sparse = vec![0.0f32; 256];
    sparse[3] = 1.0;
    sparse[170] = -0.25;
    let mut zero_sub_blocks = gaussian_like(10, 256, 0.1);
    for v in &mut zero_sub_blocks[64..160] {
        *v = 0.0;
    }
    let mut unequal = gaussian_like(12, 256, 0.01);
    for v in &mut unequal[224..] {
        *v *= 300.0;
    }
    let mut weighted = input(
        "importance_weighted",
        "gaussian (seed 8, sigma 1, 256 elements) with column importance 1 except 1000 on columns 3 \
         and 40 and 0 on columns 10..20: the weights enter every error sum and every refit",
        gaussian_like(8, 256, 1.0),
    );
    let mut imp = vec![1.0f32; 256];
    imp[3] = 1000.0;
    imp[40] = 1000.0;
    for v in &mut imp[10..20] {
        *v = 0.0;
    }
    weighted.importance = Some(imp);
    vec![
        input(
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 768 elements, 3 super-blocks)",
            gaussian_like(1, 768, 0.02),
        ),
        input(
            "gaussian_unit",
            "sigma 1 (seed 2, 256 elements): normal-range binary16 scales",
            gaussian_like(2, 256, 1.0),
        ),
        input("zero_superblock", "all zeros: every byte 0", vec![0.0; 256]),
        input(
            "constant_superblock",
            "256 equal values: every sub-block puts them on one grid point",
            vec![0.3; 256],
        ),
        input(
            "outlier",
            "one large element (element 37) among small ones: its sub-block sets d",
            outlier,
        ),
        input(
            "negative_max",
            "the largest magnitude is negative: the two divisors map it to either end of the sub-scale range",
            negative_max,
        ),
        input("exact_ties", "half-integer values on midpoints", ties),
        input("sparse", "two non-zero elements among zeros", sparse),
        input(
            "zero_sub_blocks",
            "elements 64..160 zero: those sub-blocks take sub-scale 0",
            zero_sub_blocks,
        ),
        input(
            "unequal_sub_blocks",
            "the last 32 elements 300 times the rest: small sub-blocks need small sub-scales",
            unequal,
        ),
        input(
            "tiny_values",
            "values near 1e-5: binary16-subnormal super-scales",
            gaussian_like(6, 256, 1.0e-5),
        ),
        input(
            "below_binary16",
            "values near 1e-12: every sub-block scale rounds to 0, so every byte is 0",
            gaussian_like(7, 256, 1.0e-12),
        ),
        input(
            "large_values",
            "values near 1000: super-scales far above 1",
            gaussian_like(9, 256, 1000.0),
        ),
        weighted,
    ]
}

fn refusals() -> Vec<Input> {
    let mut nan = vec![0.1f32; 256];
    nan[7] = f32::NAN;
    let mut inf = vec![0.1f32; 512];
    inf[300] = f32::NEG_INFINITY;
    let mut huge = vec![0.1f32; 256];
    huge[40] = 3.0e38;
    vec![
        input("nan", "a NaN element", nan),
        input("infinity", "an infinite element", inf),
        input(
            "scale_overflow",
            "every candidate scale of the sub-block holding element 40 overflows binary16",
            huge,
        ),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/searched_super")
}

fn build(id: &str) -> VectorFile {
    let c = find_searched_super(id).unwrap();
    let encode = |x: &[f32], w: Option<&[f32]>, out: &mut [u8]| c.encode_row_weighted(x, w, out);
    let out = record_cases(id, c, cases(), &encode);
    let refused = record_refusals(id, c, refusals(), &plain(c));
    VectorFile {
        codec: id.into(),
        layout: c.layout().into(),
        spec: "format-spec/SPEC.md §7.5.5".into(),
        generator: "format-spec/tests/searched_super_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test searched_super_vectors)".into(),
        format: "Each case is one row of row_len elements. input_f32_bits / importance_f32_bits / decoded_f32_bits: \
                 one f32 per 8 hex digits, the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0); \
                 importance_f32_bits is absent when every column weighs 1. encoded_hex: the row's super-blocks as \
                 bytes (ggml's block layout named by `layout`). refused: rows the encoder must refuse."
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
fn encoders_give_the_same_bytes_whatever_the_thread_count() {
    let rows: Vec<Vec<f32>> = (0..16)
        .map(|s| gaussian_like(1000 + s, 512, 0.05))
        .collect();
    for id in IDS {
        same_bytes_at_1_and_2_threads(id, find_searched_super(id).unwrap(), &rows);
    }
}
