//! Golden vectors of the `hct_v3` spectral codecs (SPEC.md §7.6): tests/vectors/spectral/<id>.json.
//!
//! Each id pins its encoder, so these files pin the bytes it writes for each input and the
//! f32 bits its decoder returns. A normal run fails if any of them changes.
//! `HCT_BLESS=1 cargo test -p hct-format --test spectral_vectors` rewrites them; doing so for
//! a released id is a spec violation (a new behaviour needs a new id).
//! compat-tests/scripts/check_hct_v3_vectors.py reproduces every file from SPEC.md alone.

use hct_format::codec::int4::sample::gaussian_like;
use hct_format::codec::spectral::{self, CODECS};
use hct_format::codec::Codec;
mod common;

use common::vectors::{
    check_or_bless, input, plain, record_cases, record_refusals, same_bytes_at_1_and_2_threads,
    Case, Input, Refusal,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    codec: String,
    kept_per_tile: usize,
    /// `hct_v3m` ids only (SPEC.md §7.6.6): kept coefficients stored in binary16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fp16_per_tile: Option<usize>,
    spec: String,
    generator: String,
    format: String,
    cases: Vec<Case>,
    refused: Vec<Refusal>,
}

fn cases() -> Vec<Input> {
    let mut outlier = gaussian_like(4, 128, 0.02);
    outlier[77] = 0.5;
    // A ramp and a cosine of one basis frequency: smooth tiles whose energy sits in a few
    // coefficients, so many magnitudes are near zero and the tie-break decides positions.
    let ramp: Vec<f32> = (0..64).map(|i| i as f32 / 64.0 - 0.5).collect();
    let wave: Vec<f32> = (0..64)
        .map(|n| ((std::f64::consts::PI * (2 * n + 1) as f64 * 5.0 / 128.0).cos() * 0.25) as f32)
        .collect();
    let mut alternating = vec![0.0f32; 64];
    for (i, v) in alternating.iter_mut().enumerate() {
        *v = if i % 2 == 0 { 1.0 } else { -1.0 };
    }
    vec![
        input(
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 576 elements, 9 tiles)",
            gaussian_like(1, 576, 0.02),
        ),
        input(
            "gaussian_unit",
            "sigma 1 (seed 2, 128 elements): normal-range binary16 scales",
            gaussian_like(2, 128, 1.0),
        ),
        input(
            "zero_tile",
            "all zeros: every coefficient ties at 0, scale +0",
            vec![0.0; 64],
        ),
        input(
            "constant_tile",
            "64 equal values: only the DC coefficient is non-zero",
            vec![0.3; 64],
        ),
        input(
            "ramp",
            "a linear ramp: energy in the low odd coefficients",
            ramp,
        ),
        input("single_frequency", "0.25·cos of basis frequency 5", wave),
        input(
            "alternating",
            "+1, -1, ...: the highest frequencies",
            alternating,
        ),
        input(
            "outlier",
            "one large element (tile 1, element 13) among small ones",
            outlier,
        ),
        input(
            "partial_tiles",
            "rows of 100 elements: the last tile has 36 real elements, zero-padded",
            gaussian_like(3, 100, 0.05),
        ),
        input("one_element", "a row of one element", vec![-0.75]),
        input(
            "tiny_values",
            "values near 1e-6: binary16-subnormal scales",
            gaussian_like(6, 64, 1.0e-6),
        ),
        input(
            "below_binary16",
            "values near 1e-12: the scale rounds to +0 and every code is 8",
            gaussian_like(7, 64, 1.0e-12),
        ),
        input(
            "large_values",
            "values near 1000: scales in the upper binary16 range",
            gaussian_like(9, 64, 1000.0),
        ),
    ]
}

fn refusals() -> Vec<Input> {
    let mut nan = vec![0.1f32; 64];
    nan[7] = f32::NAN;
    let mut inf = vec![0.1f32; 128];
    inf[100] = f32::NEG_INFINITY;
    vec![
        input("nan", "a NaN element", nan),
        input("infinity", "an infinite element", inf),
        input(
            "scale_overflow",
            "the largest coefficient (8 × 60000 = 480000) over 7 exceeds binary16",
            vec![60000.0; 64],
        ),
        input(
            "coefficient_overflow",
            "3e38 everywhere: the DC sum overflows binary32",
            vec![3.0e38; 64],
        ),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/spectral")
}

fn build(c: &dyn Codec, kept: usize, high: Option<usize>) -> VectorFile {
    let id = c.id();
    // Every recorded row must also pass the stored-row rules `validate` applies.
    let encode = |x: &[f32], _: Option<&[f32]>, out: &mut [u8]| {
        c.encode_row(x, out)?;
        c.check_stored_row(out, x.len() as u64)
    };
    let out = record_cases(id, c, cases(), &encode);
    let refused = record_refusals(id, c, refusals(), &plain(c));
    VectorFile {
        codec: id.into(),
        kept_per_tile: kept,
        fp16_per_tile: high,
        spec: if high.is_some() { "format-spec/SPEC.md §7.6.6" } else { "format-spec/SPEC.md §7.6" }.into(),
        generator: "format-spec/tests/spectral_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test spectral_vectors)".into(),
        format: "Each case is one row of row_len elements. input_f32_bits / decoded_f32_bits: one f32 per 8 hex \
                 digits, the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0). encoded_hex: the \
                 row's tiles as bytes (SPEC.md §7.6.1). refused: rows the encoder must refuse."
            .replace("§7.6.1", if high.is_some() { "§7.6.6" } else { "§7.6.1" }),
        cases: out,
        refused,
    }
}

fn all_codecs() -> impl Iterator<Item = (&'static dyn Codec, usize, Option<usize>)> {
    let plain = CODECS.iter().map(|c| (c as &dyn Codec, c.kept(), None));
    let mixed = spectral::mixed::CODECS
        .iter()
        .map(|c| (c as &dyn Codec, c.kept(), Some(c.high())));
    plain.chain(mixed)
}

#[test]
fn golden_vectors_are_reproduced() {
    for (c, kept, high) in all_codecs() {
        check_or_bless(
            &dir().join(format!("{}.json", c.id())),
            &build(c, kept, high),
        );
    }
}

#[test]
fn encoders_give_the_same_bytes_whatever_the_thread_count() {
    let rows: Vec<Vec<f32>> = (0..16)
        .map(|s| gaussian_like(1000 + s, 192, 0.05))
        .collect();
    for (c, _, _) in all_codecs() {
        same_bytes_at_1_and_2_threads(c.id(), c, &rows);
    }
}
