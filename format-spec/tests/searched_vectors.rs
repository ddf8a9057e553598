//! Golden vectors of the searched-scale codecs (SPEC.md §7.5): tests/vectors/searched/<id>.json.
//!
//! Each id pins its encoder, so these files pin the bytes it writes for each input (and, for
//! rows with an importance vector, for that input and those weights) and the f32 bits its
//! layout's decoder returns. A normal run fails if any of them changes.
//! `HCT_BLESS=1 cargo test -p hct-format --test searched_vectors` rewrites them; doing so for
//! a released id is a spec violation (a new behaviour needs a new id).
//! compat-tests/scripts/check_searched_vectors.py reproduces every file from SPEC.md alone.

use hct_format::codec::int4::sample::gaussian_like;
use hct_format::codec::searched::find_searched;
mod common;

use common::vectors::{
    check_or_bless, input, plain, record_cases, record_refusals, same_bytes_at_1_and_2_threads,
    Case, Input, Refusal,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

const IDS: [&str; 5] = [
    "iq4_nl_mse_v1",
    "iq4_nl_x2_v1",
    "q4_0_mse_v1",
    "q5_0_mse_v1",
    "q8_0_mse_v1",
];

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
    let mut outlier = gaussian_like(4, 64, 0.02);
    outlier[37] = 0.5;
    let mut negative_max = gaussian_like(5, 32, 1.0);
    negative_max[0] = -7.0;
    let mut ties = vec![0.0f32; 32];
    for (i, v) in ties.iter_mut().enumerate() {
        // Half-integers and repeated magnitudes: many elements sit exactly on a midpoint
        // for some candidate scale, exercising the ties-to-smaller-value rule.
        *v = ((i as i32 % 9) - 4) as f32 * 0.5;
    }
    let mut sparse = vec![0.0f32; 32];
    sparse[3] = 1.0;
    sparse[17] = -0.25;
    let mut weighted = input(
        "importance_weighted",
        "gaussian (seed 8, sigma 1, 64 elements) with column importance 1 except 1000 on columns 3 and 40 \
         and 0 on columns 10..20: the weights enter every error sum and every least-squares refit",
        gaussian_like(8, 64, 1.0),
    );
    let mut imp = vec![1.0f32; 64];
    imp[3] = 1000.0;
    imp[40] = 1000.0;
    for v in &mut imp[10..20] {
        *v = 0.0;
    }
    weighted.importance = Some(imp);
    vec![
        input(
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 256 elements, 8 blocks)",
            gaussian_like(1, 256, 0.02),
        ),
        input(
            "gaussian_unit",
            "sigma 1 (seed 2, 96 elements): normal-range binary16 scales",
            gaussian_like(2, 96, 1.0),
        ),
        input("zero_block", "all zeros: the all-zero block (d = +0)", vec![0.0; 32]),
        input(
            "constant_block",
            "32 equal values: every candidate puts them on one grid point",
            vec![0.3; 32],
        ),
        input(
            "outlier",
            "one large element in a small-valued block (block 1, element 5): the search trades the \
             outlier against the rest",
            outlier,
        ),
        input(
            "negative_max",
            "the largest magnitude is negative: the two bases map it to either end of the grid",
            negative_max,
        ),
        input("exact_ties", "half-integer values on midpoints", ties),
        input("sparse", "two non-zero elements among zeros", sparse),
        input(
            "tiny_values",
            "values near 1e-7: binary16-subnormal scales",
            gaussian_like(6, 32, 1.0e-7),
        ),
        input(
            "below_binary16",
            "values near 1e-12: every candidate scale rounds to 0, so the zero block wins",
            gaussian_like(7, 32, 1.0e-12),
        ),
        input(
            "large_values",
            "values near 1000: scales near the top of binary16 for the 4-bit grids",
            gaussian_like(9, 32, 1000.0),
        ),
        weighted,
    ]
}

fn refusals() -> Vec<Input> {
    let mut nan = vec![0.1f32; 32];
    nan[7] = f32::NAN;
    let mut inf = vec![0.1f32; 64];
    inf[50] = f32::NEG_INFINITY;
    let mut huge = vec![0.1f32; 32];
    huge[0] = 3.0e38;
    vec![
        input("nan", "a NaN element", nan),
        input("infinity", "an infinite element", inf),
        input(
            "scale_overflow",
            "every candidate scale overflows binary16",
            huge,
        ),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/searched")
}

fn build(id: &str) -> VectorFile {
    let c = find_searched(id).unwrap();
    let encode = |x: &[f32], w: Option<&[f32]>, out: &mut [u8]| c.encode_row_weighted(x, w, out);
    let out = record_cases(id, c, cases(), &encode);
    let refused = record_refusals(id, c, refusals(), &plain(c));
    VectorFile {
        codec: id.into(),
        layout: c.layout().into(),
        spec: "format-spec/SPEC.md §7.5".into(),
        generator: "format-spec/tests/searched_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test searched_vectors)".into(),
        format: "Each case is one row of row_len elements. input_f32_bits / importance_f32_bits / decoded_f32_bits: \
                 one f32 per 8 hex digits, the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0); \
                 importance_f32_bits is absent when every column weighs 1. encoded_hex: the row's blocks as bytes \
                 (ggml's block layout named by `layout`). refused: rows the encoder must refuse."
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
        .map(|s| gaussian_like(1000 + s, 128, 0.05))
        .collect();
    for id in IDS {
        same_bytes_at_1_and_2_threads(id, find_searched(id).unwrap(), &rows);
    }
}
