//! The ggml-native codecs against vectors from the real peers (ggml's C reference and
//! PyPI gguf), written by compat-tests/scripts/make_ggml_vectors.py into
//! tests/vectors/ggml/<type>.json. Every comparison is of bits, not of values.

use hct_format::codec::{self, Codec};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ggml")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vector_dir())
        .expect("vector directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn str_field<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key}"))
}

/// "3f800000bf800000…" → f32 bits, eight hex digits (a big-endian u32) per value.
fn parse_bits(hex: &str) -> Vec<u32> {
    assert_eq!(hex.len() % 8, 0, "f32 bit string length");
    hex.as_bytes()
        .chunks(8)
        .map(|c| u32::from_str_radix(std::str::from_utf8(c).unwrap(), 16).expect("hex u32"))
        .collect()
}

fn codec_of(doc: &Value) -> &'static dyn Codec {
    let id = str_field(doc, "codec");
    let c = codec::find(id).unwrap_or_else(|| panic!("codec {id} not registered"));
    let block = doc["block_size"].as_u64().unwrap();
    let size = doc["type_size"].as_u64().unwrap();
    assert_eq!(c.row_bytes(block), Ok(size), "{id}: block geometry");
    c
}

#[test]
fn decoders_match_peer_vectors_bit_for_bit() {
    let mut checked = 0;
    for path in vector_files() {
        let doc = load(&path);
        let c = codec_of(&doc);
        assert!(c.can_decode(), "{} has vectors but no decoder", c.id());
        for case in doc["decode"].as_array().expect("decode cases") {
            let note = str_field(case, "note");
            let input = hex::decode(str_field(case, "input_hex")).expect("input hex");
            let expected = parse_bits(str_field(case, "expected_f32_bits"));
            let mut out = vec![f32::NAN; expected.len()];
            c.decode_row(&input, &mut out)
                .unwrap_or_else(|e| panic!("{} ({note}): {e}", c.id()));
            for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                assert_eq!(
                    got.to_bits(),
                    *want,
                    "{} ({note}) element {i}: got {got:e} ({:08x}), want {:e} ({want:08x})",
                    c.id(),
                    got.to_bits(),
                    f32::from_bits(*want)
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no decode vectors found");
}

#[test]
fn encoders_match_peer_vectors_bit_for_bit() {
    let mut encoders_seen = Vec::new();
    for path in vector_files() {
        let doc = load(&path);
        let Some(cases) = doc.get("encode").and_then(Value::as_array) else {
            continue;
        };
        let c = codec_of(&doc);
        assert!(
            c.can_encode(),
            "{} has encode vectors but no encoder",
            c.id()
        );
        for case in cases {
            let note = str_field(case, "note");
            let input: Vec<f32> = parse_bits(str_field(case, "input_f32_bits"))
                .into_iter()
                .map(f32::from_bits)
                .collect();
            let expected = hex::decode(str_field(case, "expected_hex")).expect("expected hex");
            let mut out = vec![0xA5u8; expected.len()];
            c.encode_row(&input, &mut out)
                .unwrap_or_else(|e| panic!("{} ({note}): {e}", c.id()));
            assert_eq!(
                hex::encode(&out),
                hex::encode(&expected),
                "{} ({note})",
                c.id()
            );
        }
        encoders_seen.push(c.id());
    }
    encoders_seen.sort();
    assert_eq!(encoders_seen, ["ggml_q4_0", "ggml_q4_1", "ggml_q8_0"]);
}

#[test]
fn every_ggml_decoder_and_encoder_has_vectors() {
    let covered: Vec<String> = vector_files()
        .iter()
        .map(|p| str_field(&load(p), "codec").to_string())
        .collect();
    for c in codec::ggml::all() {
        if c.can_decode() || c.can_encode() {
            assert!(
                covered.iter().any(|id| id == c.id()),
                "{} has no vectors",
                c.id()
            );
        }
    }
}

#[test]
fn vector_files_record_their_sources() {
    for path in vector_files() {
        let doc = load(&path);
        assert_eq!(str_field(&doc["peer_versions"], "gguf"), "0.19.0");
        assert!(str_field(&doc, "expected_from").len() > 10);
    }
}
