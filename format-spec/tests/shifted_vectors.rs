//! Golden vectors of the shifted non-uniform family (SPEC.md §7.7): one file per id,
//! tests/vectors/shifted/<id>.json (`nl4_sh64_v1`, `nl5_sh64_v1`, `nl6_sh64_v1`), each from the
//! same inputs.
//!
//! Each id pins its encoder, so each file pins the bytes it writes for each input (and, for a
//! row with an importance vector, for that input and those weights) and the f32 bits its
//! decoder returns. A normal run fails if any of them changes.
//! `HCT_BLESS=1 cargo test -p hct-format --test shifted_vectors` rewrites them; doing so for a
//! released id is a spec violation (a new behaviour needs a new id).
//! compat-tests/scripts/check_shifted_vectors.py reproduces the files from SPEC.md alone.

use hct_format::codec::int4::sample::gaussian_like;
use hct_format::codec::shifted::{Shifted, NL4_SH64_V1, NL5_SH64_V1, NL6_SH64_V1};
use hct_format::codec::Codec;
mod common;

use common::vectors::{
    check_or_bless, input, plain, record_cases, record_refusals, same_bytes_at_1_and_2_threads,
    Case, Input, Refusal,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every id of the family; each gets its own vector file.
const FAMILY: [&Shifted; 3] = [&NL4_SH64_V1, &NL5_SH64_V1, &NL6_SH64_V1];

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    codec: String,
    spec: String,
    generator: String,
    format: String,
    cases: Vec<Case>,
    refused: Vec<Refusal>,
}

fn cases() -> Vec<Input> {
    let mut outlier = gaussian_like(4, 128, 0.02);
    outlier[37] = 0.5;
    let mut negative_max = gaussian_like(5, 64, 1.0);
    negative_max[0] = -7.0;
    let mut ties = vec![0.0f32; 64];
    for (i, v) in ties.iter_mut().enumerate() {
        *v = ((i as i32 % 9) - 4) as f32 * 0.5;
    }
    let mut sparse = vec![0.0f32; 64];
    sparse[3] = 1.0;
    sparse[49] = -0.25;
    let mut one_block_zero = gaussian_like(10, 64, 0.1);
    for v in &mut one_block_zero[32..] {
        *v = 0.0;
    }
    let mut unequal_blocks = gaussian_like(12, 64, 0.01);
    for v in &mut unequal_blocks[32..] {
        *v *= 300.0;
    }
    let mut weighted = input(
        "importance_weighted",
        "gaussian (seed 8, sigma 1, 128 elements) with column importance 1 except 1000 on columns 3 and \
         40 and 0 on columns 10..20: the weights enter every error sum and every least-squares refit",
        gaussian_like(8, 128, 1.0),
    );
    let mut imp = vec![1.0f32; 128];
    imp[3] = 1000.0;
    imp[40] = 1000.0;
    for v in &mut imp[10..20] {
        *v = 0.0;
    }
    weighted.importance = Some(imp);
    vec![
        input(
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 576 elements, 9 super-blocks)",
            gaussian_like(1, 576, 0.02),
        ),
        input(
            "gaussian_unit",
            "sigma 1 (seed 2, 192 elements): normal-range binary16 scales",
            gaussian_like(2, 192, 1.0),
        ),
        input("zero_superblock", "all zeros: every byte 0", vec![0.0; 64]),
        input(
            "constant_superblock",
            "64 equal values: every candidate puts them on one grid point",
            vec![0.3; 64],
        ),
        input(
            "outlier",
            "one large element in a small-valued row (super-block 0, block 1, element 5)",
            outlier,
        ),
        input(
            "negative_max",
            "the largest magnitude is negative: negative sub-scales",
            negative_max,
        ),
        input("exact_ties", "half-integer values on midpoints", ties),
        input("sparse", "two non-zero elements among zeros", sparse),
        input(
            "one_block_zero",
            "block 1 all zeros: its sub-scale is 0",
            one_block_zero,
        ),
        input(
            "unequal_blocks",
            "block 1 300 times larger than block 0: block 0's sub-scale is small and coarse",
            unequal_blocks,
        ),
        input(
            "tiny_values",
            "values near 1e-4: binary16-subnormal super-scales",
            gaussian_like(6, 64, 1.0e-4),
        ),
        input(
            "below_binary16",
            "values near 1e-9: every super-scale candidate rounds to 0, so the super-block is zero",
            gaussian_like(7, 64, 1.0e-9),
        ),
        input(
            "large_values",
            "values near 1000",
            gaussian_like(9, 64, 1000.0),
        ),
        weighted,
    ]
}

fn refusals() -> Vec<Input> {
    let mut nan = vec![0.1f32; 64];
    nan[7] = f32::NAN;
    let mut inf = vec![0.1f32; 128];
    inf[100] = f32::NEG_INFINITY;
    let mut huge = vec![0.1f32; 64];
    huge[40] = 3.0e38;
    vec![
        input("nan", "a NaN element", nan),
        input("infinity", "an infinite element", inf),
        input(
            "scale_overflow",
            "block 1: every candidate scale overflows binary16",
            huge,
        ),
    ]
}

fn path(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/vectors/shifted/{id}.json"))
}

fn build(c: &Shifted) -> VectorFile {
    let id = c.id();
    let encode = |x: &[f32], w: Option<&[f32]>, out: &mut [u8]| c.encode_row_weighted(x, w, out);
    let out = record_cases(id, c, cases(), &encode);
    let refused = record_refusals(id, c, refusals(), &plain(c));
    VectorFile {
        codec: id.into(),
        spec: "format-spec/SPEC.md §7.7".into(),
        generator: "format-spec/tests/shifted_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test shifted_vectors)".into(),
        format: format!(
            "Each case is one row of row_len elements. input_f32_bits / importance_f32_bits / decoded_f32_bits: \
             one f32 per 8 hex digits, the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0); \
             importance_f32_bits is absent when every column weighs 1. encoded_hex: the row's {}-byte \
             super-blocks. refused: rows the encoder must refuse.",
            c.super_bytes()
        ),
        cases: out,
        refused,
    }
}

#[test]
fn golden_vectors_are_reproduced() {
    for c in FAMILY {
        check_or_bless(&path(c.id()), &build(c));
    }
}

#[test]
fn encoder_gives_the_same_bytes_whatever_the_thread_count() {
    let rows: Vec<Vec<f32>> = (0..16)
        .map(|s| gaussian_like(1000 + s, 192, 0.05))
        .collect();
    for c in FAMILY {
        same_bytes_at_1_and_2_threads(c.id(), c, &rows);
    }
}
