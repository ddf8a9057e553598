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
use hct_format::codec::Codec;
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

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Case {
    name: String,
    why: String,
    row_len: usize,
    input_f32_bits: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    importance_f32_bits: Option<String>,
    encoded_hex: String,
    decoded_f32_bits: String,
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
    importance: Option<Vec<f32>>,
}

fn input(name: &'static str, why: &'static str, x: Vec<f32>) -> Input {
    Input {
        name,
        why,
        x,
        importance: None,
    }
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

fn bits(x: &[f32]) -> String {
    x.iter().map(|v| format!("{:08x}", v.to_bits())).collect()
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/searched")
}

fn build(id: &str) -> VectorFile {
    let c = find_searched(id).unwrap();
    let mut out = Vec::new();
    for i in cases() {
        let mut bytes = vec![0u8; c.row_bytes(i.x.len() as u64).unwrap() as usize];
        c.encode_row_weighted(&i.x, i.importance.as_deref(), &mut bytes)
            .unwrap_or_else(|e| panic!("{id} {}: {e}", i.name));
        let mut y = vec![0f32; i.x.len()];
        c.decode_row(&bytes, &mut y).unwrap();
        out.push(Case {
            name: i.name.into(),
            why: i.why.into(),
            row_len: i.x.len(),
            input_f32_bits: bits(&i.x),
            importance_f32_bits: i.importance.as_deref().map(bits),
            encoded_hex: hex::encode(&bytes),
            decoded_f32_bits: bits(&y),
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
fn encoders_give_the_same_bytes_whatever_the_thread_count() {
    // Rows are independent: encoding the rows of a matrix in parallel on a 1- and a 2-thread
    // pool must give the same bytes (the converter relies on this).
    use rayon::prelude::*;
    for id in IDS {
        let c = find_searched(id).unwrap();
        let rows: Vec<Vec<f32>> = (0..16)
            .map(|s| gaussian_like(1000 + s, 128, 0.05))
            .collect();
        let encode = |threads: usize| -> Vec<Vec<u8>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                rows.par_iter()
                    .map(|x| {
                        let mut b = vec![0u8; c.row_bytes(128).unwrap() as usize];
                        c.encode_row(x, &mut b).unwrap();
                        b
                    })
                    .collect()
            })
        };
        assert_eq!(encode(1), encode(2), "{id}");
    }
}
