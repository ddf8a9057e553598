//! Hostile GGUF and safetensors inputs to `hct convert`: each gets a specific error naming
//! the file, a meaningful exit code, and no output file.

use hct_format::ggml_type::GgmlType;
use hct_format::gguf::{GgufTensorInfo, GgufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;

fn convert(input: &Path, dir: &Path) -> (i32, String, PathBuf) {
    let out = dir.join("out.hct");
    let o = Command::new(env!("CARGO_BIN_EXE_hct"))
        .arg("convert")
        .arg(input)
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (o.status.code().unwrap(), err, out)
}

fn expect_refused(bytes: &[u8], name: &str, code: i32, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, bytes).unwrap();
    let (got, err, out) = convert(&input, dir.path());
    assert_eq!(got, code, "{name}: {err}");
    assert!(err.contains(name), "error must name the file: {err}");
    assert!(
        err.contains(needle),
        "{name}: expected {needle:?} in: {err}"
    );
    assert!(!out.exists(), "{name}: an output file was left behind");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{name}: stray files {leftovers:?}");
}

/// One f32 tensor "t" of 4 elements. Layout: magic 0..4, version 4..8, tensor count 8..16,
/// kv count 16..24, name length 24..32, "t" 32, n_dims 33..37, ne0 37..45, type 45..49,
/// offset 49..57, padding to 64, data 64..80, padding to 96.
fn tiny_gguf() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.gguf");
    let info = GgufTensorInfo {
        name: "t".into(),
        dims: vec![4],
        tensor_type: GgmlType::from_name("f32").unwrap().into(),
    };
    let mut w = GgufWriter::create(&p, 3, &[], &[info]).unwrap();
    w.write_tensor_data(0, &[0u8; 16]).unwrap();
    w.finish().unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn hostile_gguf_inputs() {
    let good = tiny_gguf();
    assert_eq!(good.len(), 96, "data padded to the 32-byte alignment");
    expect_refused(&good[..40], "truncated.gguf", 4, "truncated");
    let mut b = good.clone();
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    expect_refused(&b, "absurd-count.gguf", 4, "1152921504606846976");
    let mut b = good.clone();
    b[45..49].copy_from_slice(&99u32.to_le_bytes());
    expect_refused(&b, "unknown-type.gguf", 6, "99");
    let mut b = good.clone();
    b[45..49].copy_from_slice(&31u32.to_le_bytes());
    expect_refused(&b, "retired-type.gguf", 6, "q4_0_4_4");
    let mut b = good.clone();
    b[37..45].copy_from_slice(&1000u64.to_le_bytes());
    expect_refused(&b, "more-than-file.gguf", 4, "t");
}

fn safetensors_with_header(header: &str, data_len: usize) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(&h);
    b.extend(std::iter::repeat_n(0u8, data_len));
    b
}

#[test]
fn hostile_safetensors_inputs() {
    let good = safetensors_with_header(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    expect_refused(
        &good[..good.len() - 3],
        "truncated.safetensors",
        4,
        "safetensors",
    );
    let mut b = good.clone();
    b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_refused(&b, "header-too-long.safetensors", 4, "safetensors");
    let overlap = safetensors_with_header(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        12,
    );
    expect_refused(&overlap, "overlap.safetensors", 4, "safetensors");
    let absurd = safetensors_with_header(
        r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
        8,
    );
    expect_refused(&absurd, "absurd-shape.safetensors", 4, "safetensors");
    let f4 = safetensors_with_header(
        r#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#,
        8,
    );
    expect_refused(&f4, "complex.safetensors", 6, "C64");
}
