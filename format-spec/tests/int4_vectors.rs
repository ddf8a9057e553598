//! Golden vectors of the int4 codecs (SPEC.md §7.4): tests/vectors/int4/<codec>.json.
//!
//! The codec id freezes the encoder as well as the layout, so these files pin the exact
//! bytes each encoder produces for each input, and the exact f32 bits its decoder returns.
//! A normal run fails if any of them changes. `HCT_BLESS=1 cargo test -p hct-format --test
//! int4_vectors` rewrites the files; doing so for a released id is a spec violation (a new
//! behaviour needs a new id), so only bless while an id is still unreleased.
//!
//! Every input is built below by `cases()`, and each case says what bug it is shaped to
//! catch. Gaussian-like inputs come from `int4::sample` (SplitMix64 + Irwin–Hall, IEEE-exact
//! arithmetic only), so compat-tests/scripts/check_int4_vectors.py can regenerate them.

use hct_format::codec::{self, int4, Codec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every int4 codec of this build; each must have its vector file, and every file in
/// tests/vectors/int4/ must name one of them.
fn ids() -> Vec<&'static str> {
    int4::all().iter().map(|c| c.id()).collect()
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    codec: String,
    group_size: usize,
    block_bytes: usize,
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
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Refusal {
    name: String,
    why: String,
    input_f32_bits: String,
}

/// One input row and the reason it is in the vectors.
struct Input {
    name: &'static str,
    why: &'static str,
    x: Vec<f32>,
}

fn input(name: &'static str, why: &'static str, x: Vec<f32>) -> Input {
    Input { name, why, x }
}

fn gaussian(seed: u64, len: usize, sigma: f64) -> Vec<f32> {
    int4::sample::gaussian_like(seed, len, sigma)
}

/// Rows that every int4 codec must encode. Lengths are chosen so that every group size
/// sees whole and partial groups.
fn cases() -> Vec<Input> {
    let mut v = vec![
        input(
            "gaussian_weights",
            "typical weight row (sigma 0.02, seed 1, 256 elements): every group has its own d and m; \
             the opt encoder's refinement changes most groups",
            gaussian(1, 256, 0.02),
        ),
        input(
            "gaussian_unit",
            "sigma 1 (seed 2, 96 elements): normal-range fp16 d and m with many significant bits",
            gaussian(2, 96, 1.0),
        ),
        input(
            "constant_exact",
            "all elements 0.125: hi == lo, so d == 0 and every code is 0 (no division by zero)",
            vec![0.125; 32],
        ),
        input(
            "constant_inexact",
            "all elements 0.1: d == 0 and m is 0.1 rounded to binary16, which the decoder returns",
            vec![0.1; 32],
        ),
        input(
            "spans_zero",
            "-1 + 2k/31 for k = 0..31 (computed in f64, rounded to f32): negative m, codes across the range",
            (0..32).map(|k| (-1.0 + 2.0 * k as f64 / 31.0) as f32).collect(),
        ),
        input(
            "all_negative",
            "-1 + 0.05 g (seed 3, 64 elements): every element and m negative",
            gaussian(3, 64, 0.05).iter().map(|&g| g - 1.0).collect(),
        ),
        input(
            "tiny_range_subnormal_d",
            "3e-4 u - 1.5e-4 (u uniform, seed 4, 64 elements): d about 2e-5, a binary16 subnormal",
            {
                let mut rng = int4::sample::SplitMix64::new(4);
                (0..64)
                    .map(|_| (3e-4 * rng.next_unit() - 1.5e-4) as f32)
                    .collect()
            },
        ),
        input(
            "range_below_fp16_resolution",
            "0.25 + k 2^-24 for k = 0..7, repeated: (hi - lo)/15 < 2^-25 rounds to d = +0, codes 0",
            (0..64)
                .map(|k| 0.25 + (k % 8) as f32 * 2f32.powi(-24))
                .collect(),
        ),
        input(
            "f32_subnormal_inputs",
            "f32 subnormals (k 1e-40): below binary16 range, so d = 0 and m = +0 or -0",
            (0..32).map(|k| (k as f32 - 7.0) * 1e-40).collect(),
        ),
        input(
            "outlier",
            "sigma 0.02 (seed 5, 64 elements) with 1.0 at 5 and -0.75 at 40: one element stretches \
             its group's range, the others collapse onto few codes",
            {
                let mut x = gaussian(5, 64, 0.02);
                x[5] = 1.0;
                x[40] = -0.75;
                x
            },
        ),
        input(
            "ties_unit_scale",
            "each 8-element chunk holds 0, 15 and halves k + 1/2: d = 1, m = 0, so (x - m)/d is \
             exactly a tie and must round to the even code (ggml's +0.5 truncation rounds up)",
            ties(0.0, 1.0),
        ),
        input(
            "ties_scaled",
            "as ties_unit_scale, scaled by 2^-7 and shifted by -0.5 (all exact): ties with m != 0",
            ties(-0.5, 2f32.powi(-7)),
        ),
        input(
            "signed_zero_minimum",
            "-0.0 before 0.0 in elements 0..32, 0.0 before -0.0 in 32..64, the rest positive: \
             the first minimum wins, so m is -0 (bits 8000) in the first and +0 in the second",
            {
                let mut x: Vec<f32> = (0..64).map(|k| 0.125 * (k % 16) as f32 + 0.5).collect();
                x[0] = -0.0;
                x[1] = 0.0;
                x[32] = 0.0;
                x[33] = -0.0;
                x
            },
        ),
        input(
            "large_but_representable",
            "-60000 + 120000 k/31 (f64, to f32): d = 8000 and m = -60000, far from binary16 overflow's edge",
            (0..32)
                .map(|k| (-60000.0 + 120000.0 * k as f64 / 31.0) as f32)
                .collect(),
        ),
        input(
            "minimum_rounds_down_to_65504",
            "65519 everywhere: above binary16's largest finite 65504 but rounds down to it, so \
             accepted (65520 would round to infinity and be refused)",
            vec![65519.0; 16],
        ),
    ];
    for (len, seed) in [(1usize, 11u64), (7, 12), (16, 13), (33, 14), (100, 15)] {
        let name: &'static str = match len {
            1 => "row_len_1",
            7 => "row_len_7",
            16 => "row_len_16",
            33 => "row_len_33",
            _ => "row_len_100",
        };
        v.push(input(
            name,
            "sigma 0.02 row whose length is not a multiple of some or all group sizes: the \
             partial last group takes a whole block, its statistics use only its real \
             elements, its padding codes are 0, and only real elements are decoded",
            gaussian(seed, len, 0.02),
        ));
    }
    v
}

/// 96 elements: each 8-element chunk `[0, 15, h, h+1, …]` with halves `h` cycling through
/// 0.5..14.5, mapped by `m + d·t` (exact for the scales used), so every group of 8, 16 or
/// 32 has min `m` and max `m + 15d`, hence `d`, `m` exactly, and ties everywhere else.
fn ties(m: f32, d: f32) -> Vec<f32> {
    let mut t = Vec::with_capacity(96);
    let mut half = 0;
    for _ in 0..12 {
        t.push(0.0f32);
        t.push(15.0);
        for _ in 0..6 {
            t.push(half as f32 + 0.5);
            half = (half + 1) % 15;
        }
    }
    t.iter().map(|&t| m + d * t).collect()
}

/// Rows every int4 codec must refuse with `CodecError::OutOfRange`.
fn refusals() -> Vec<Input> {
    let base = || gaussian(21, 40, 0.02);
    let with = |i: usize, v: f32| {
        let mut x = base();
        x[i] = v;
        x
    };
    vec![
        input(
            "nan",
            "a NaN in the last (partial) group",
            with(35, f32::NAN),
        ),
        input(
            "plus_infinity",
            "+inf in the first group",
            with(3, f32::INFINITY),
        ),
        input("minus_infinity", "-inf", with(20, f32::NEG_INFINITY)),
        input(
            "scale_overflow",
            "1e6 in a group of small values: (hi - lo)/15 > 65519.99, d would be infinite",
            with(9, 1e6),
        ),
        input(
            "minimum_overflow",
            "-70000 in a group: m would be -infinity in binary16",
            with(17, -70000.0),
        ),
        input(
            "huge_constant",
            "1e30 everywhere: d = 0 is fine but m overflows",
            vec![1e30; 16],
        ),
    ]
}

fn bits_hex(x: &[f32]) -> String {
    x.iter().map(|v| format!("{:08x}", v.to_bits())).collect()
}

fn parse_bits(hex: &str) -> Vec<f32> {
    assert_eq!(hex.len() % 8, 0, "f32 bit string length");
    hex.as_bytes()
        .chunks(8)
        .map(|c| f32::from_bits(u32::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()))
        .collect()
}

fn encode(c: &dyn Codec, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0xA5u8; c.row_bytes(x.len() as u64).unwrap() as usize];
    c.encode_row(x, &mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", c.id()));
    out
}

fn decode(c: &dyn Codec, bytes: &[u8], len: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; len];
    c.decode_row(bytes, &mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", c.id()));
    out
}

fn vector_path(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/int4")
        .join(format!("{id}.json"))
}

/// The vector file as the current code produces it.
fn build(id: &str) -> VectorFile {
    let c = codec::find(id).unwrap();
    let n = int4::find(id).unwrap().group_size();
    let cases = cases()
        .into_iter()
        .map(|i| {
            let bytes = encode(c, &i.x);
            Case {
                name: i.name.into(),
                why: i.why.into(),
                row_len: i.x.len(),
                input_f32_bits: bits_hex(&i.x),
                decoded_f32_bits: bits_hex(&decode(c, &bytes, i.x.len())),
                encoded_hex: hex::encode(&bytes),
            }
        })
        .collect();
    let refused = refusals()
        .into_iter()
        .map(|i| Refusal {
            name: i.name.into(),
            why: i.why.into(),
            input_f32_bits: bits_hex(&i.x),
        })
        .collect();
    VectorFile {
        codec: id.into(),
        group_size: n,
        block_bytes: int4::block_bytes(n),
        spec: "format-spec/SPEC.md §7.4".into(),
        generator: "format-spec/tests/int4_vectors.rs (HCT_BLESS=1 cargo test -p hct-format --test int4_vectors)".into(),
        format: "Each case is one row of row_len elements. input_f32_bits / decoded_f32_bits: one f32 per 8 hex digits, \
                 the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0). encoded_hex: the row's \
                 ceil(row_len/group_size) blocks as bytes. refused: rows the encoder must refuse (NaN, infinity, \
                 binary16 overflow of d or m)."
            .into(),
        cases,
        refused,
    }
}

fn load(id: &str) -> VectorFile {
    let path = vector_path(id);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with HCT_BLESS=1)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blessing() -> bool {
    std::env::var_os("HCT_BLESS").is_some_and(|v| v == "1")
}

#[test]
fn bless_or_check_vector_files_match_their_construction() {
    for id in ids() {
        let built = build(id);
        let path = vector_path(id);
        if blessing() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&built).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let stored = load(id);
        // Field by field, so a failure names the case.
        assert_eq!(stored.codec, id);
        assert_eq!(stored.group_size, built.group_size, "{id}");
        assert_eq!(stored.block_bytes, built.block_bytes, "{id}");
        assert_eq!(stored.cases.len(), built.cases.len(), "{id}: case count");
        for (s, b) in stored.cases.iter().zip(&built.cases) {
            assert_eq!(s.name, b.name, "{id}: case order");
            assert_eq!(
                s.input_f32_bits, b.input_f32_bits,
                "{id} {}: input generator changed",
                s.name
            );
        }
        assert_eq!(stored, built, "{id}: vector file is stale");
    }
}

#[test]
fn encoders_reproduce_golden_bytes() {
    if blessing() {
        return;
    }
    for id in ids() {
        let c = codec::find(id).unwrap();
        for case in load(id).cases {
            let x = parse_bits(&case.input_f32_bits);
            assert_eq!(x.len(), case.row_len, "{id} {}", case.name);
            assert_eq!(
                hex::encode(encode(c, &x)),
                case.encoded_hex,
                "{id} {}: encoder output changed — a frozen id's bytes must never change",
                case.name
            );
        }
    }
}

#[test]
fn decoders_reproduce_golden_bits() {
    if blessing() {
        return;
    }
    for id in ids() {
        let c = codec::find(id).unwrap();
        for case in load(id).cases {
            let bytes = hex::decode(&case.encoded_hex).unwrap();
            let got = decode(c, &bytes, case.row_len);
            let want = parse_bits(&case.decoded_f32_bits);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    w.to_bits(),
                    "{id} {} element {i}: {g:e} vs {w:e}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn encoders_refuse_golden_refusals() {
    if blessing() {
        return;
    }
    for id in ids() {
        let c = codec::find(id).unwrap();
        let file = load(id);
        assert!(!file.refused.is_empty());
        for case in file.refused {
            let x = parse_bits(&case.input_f32_bits);
            let mut out = vec![0u8; c.row_bytes(x.len() as u64).unwrap() as usize];
            let err = c.encode_row(&x, &mut out).unwrap_err();
            assert!(
                matches!(err, codec::CodecError::OutOfRange { codec, .. } if codec == id),
                "{id} {}: {err}",
                case.name
            );
        }
    }
}

#[test]
fn every_vector_file_is_of_a_registered_int4_codec() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/int4");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            ids().contains(&stem.as_str()),
            "{}: no int4 codec of this build has this id",
            path.display()
        );
        assert_eq!(load(&stem).codec, stem, "{}: codec field", path.display());
    }
}

#[test]
fn golden_inputs_exercise_what_they_claim() {
    // Guards the vectors themselves: if a construction stops producing its edge case,
    // the vectors silently stop testing it.
    let g16 = codec::find("int4_g16_fp16_v1").unwrap();
    let by_name = |name: &str| cases().into_iter().find(|c| c.name == name).unwrap().x;
    let d_bits = |bytes: &[u8]| u16::from_le_bytes([bytes[0], bytes[1]]);
    let m_bits = |bytes: &[u8]| u16::from_le_bytes([bytes[2], bytes[3]]);

    let tiny = encode(g16, &by_name("tiny_range_subnormal_d"));
    for block in tiny.chunks(12) {
        let d = d_bits(block);
        assert!(
            d != 0 && d < 0x0400,
            "d {d:04x} should be a binary16 subnormal"
        );
    }
    let below = encode(g16, &by_name("range_below_fp16_resolution"));
    assert!(below.chunks(12).all(|b| d_bits(b) == 0));
    let zeros = encode(g16, &by_name("signed_zero_minimum"));
    assert_eq!(m_bits(&zeros[0..]), 0x8000);
    assert_eq!(m_bits(&zeros[24..]), 0x0000, "group 2 starts at element 32");
    for (name, d, m) in [
        ("ties_unit_scale", 0x3c00, 0x0000),
        ("ties_scaled", 0x2000, 0xb800),
    ] {
        let bytes = encode(g16, &by_name(name));
        assert!(
            bytes.chunks(12).all(|b| d_bits(b) == d && m_bits(b) == m),
            "{name}"
        );
    }
    let opt = codec::find("int4_opt_v1").unwrap();
    let x = by_name("gaussian_weights");
    let changed = encode(g16, &x)
        .chunks(12)
        .zip(encode(opt, &x).chunks(12))
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        changed >= 8,
        "opt refinement changed only {changed} of 16 groups"
    );
}
