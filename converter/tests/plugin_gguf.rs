//! `hct convert --gguf-mode plugin` and `hct verify` on plugin GGUFs, through the binary:
//! HCT-coded tensors stay byte for byte as extension types, the records make every byte of
//! the file checkable, and a plugin GGUF converts back to the same HCT payloads.

use std::path::{Path, PathBuf};
use std::process::Command;

use hct_format::ggml_type::GgmlType;
use hct_format::gguf::{GgufFile, GgufTensorInfo, GgufWriter, TensorType, KEY_EXT_TYPES};
use hct_format::value::{Array, Value};
use hct_format::HctFile;

fn hct(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap(), stderr)
}

/// A small llama-like GGUF of f32 tensors: two int4-able matrices, a norm, and a matrix whose
/// rows (40) are not whole groups of 16.
fn source(dir: &Path) -> PathBuf {
    let shapes: [(&str, Vec<u64>); 4] = [
        ("token_embd.weight", vec![64, 6]),
        ("blk.0.attn_q.weight", vec![64, 64]),
        ("blk.0.attn_norm.weight", vec![64]),
        ("blk.0.odd.weight", vec![40, 3]),
    ];
    let f32 = GgmlType::from_name("f32").unwrap();
    let infos: Vec<GgufTensorInfo> = shapes
        .iter()
        .map(|(name, dims)| GgufTensorInfo {
            name: name.to_string(),
            dims: dims.clone(),
            tensor_type: f32.into(),
        })
        .collect();
    let meta = vec![("general.architecture".to_string(), Value::string("llama"))];
    let path = dir.join("src.gguf");
    let mut w = GgufWriter::create(&path, 3, &meta, &infos).unwrap();
    for (i, info) in infos.iter().enumerate() {
        let n: u64 = info.dims.iter().product();
        let bytes: Vec<u8> = (0..n)
            .flat_map(|k| (((k * 37 + i as u64 * 11) % 101) as f32 / 50.0 - 1.0).to_le_bytes())
            .collect();
        w.write_tensor_data(i, &bytes).unwrap();
    }
    w.finish().unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn plugin_gguf_carries_hct_payloads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let model = dir.path().join("m.hct");
    let plugin = dir.path().join("p.gguf");
    assert_eq!(
        hct(&["convert", s(&src), s(&model), "--codec", "int4_opt_v1"]).0,
        0
    );

    // The 40-wide rows are not whole blocks: without --dtype the export refuses, naming it.
    let (code, err) = hct(&["convert", s(&model), s(&plugin), "--gguf-mode", "plugin"]);
    assert_ne!(code, 0);
    assert!(err.contains("blk.0.odd.weight"), "{err}");
    assert!(!plugin.exists());
    let (code, err) = hct(&[
        "convert",
        s(&model),
        s(&plugin),
        "--gguf-mode",
        "plugin",
        "--dtype",
        "f32",
    ]);
    assert_eq!(code, 0, "{err}");

    let g = GgufFile::open(&plugin).unwrap();
    let h = HctFile::open(&model).unwrap();
    assert_eq!(
        hct_format::value::lookup(g.metadata(), KEY_EXT_TYPES),
        Some(&Value::Array(Array::String(vec![b"int4_opt_v1".to_vec()])))
    );
    for (i, t) in g.tensors().iter().enumerate() {
        let entry = h.tensors().iter().find(|e| e.name == t.info.name).unwrap();
        match t.info.name.as_str() {
            "token_embd.weight" | "blk.0.attn_q.weight" => {
                assert!(
                    matches!(&t.info.tensor_type, TensorType::Extension(e) if e.codec == "int4_opt_v1")
                );
                assert_eq!(g.tensor_data(i), h.payload(entry).unwrap(), "byte for byte");
            }
            _ => assert_eq!(t.info.tensor_type.name(), "f32", "{}", t.info.name),
        }
    }
    assert_eq!(hct(&["verify", s(&plugin)]).0, 0);

    // Every single-bit flip anywhere in the file is caught; in tensor data it is a checksum
    // failure naming the tensor.
    let original = std::fs::read(&plugin).unwrap();
    let owner = |i: u64| {
        g.tensors()
            .iter()
            .find(|t| {
                let start = g.data_offset() + t.offset;
                i >= start && i < start + t.size
            })
            .map(|t| t.info.name.clone())
    };
    let flipped = dir.path().join("flipped.gguf");
    let step = (original.len() / 700).max(1);
    for i in (0..original.len())
        .step_by(step)
        .chain([original.len() - 1])
    {
        let mut b = original.clone();
        b[i] ^= 0x04;
        std::fs::write(&flipped, &b).unwrap();
        let (code, err) = hct(&["verify", s(&flipped)]);
        match owner(i as u64) {
            Some(tensor) => {
                assert_eq!(code, 5, "flip at {i}: {err}");
                assert!(err.contains(&format!("tensor '{tensor}'")), "{err}");
            }
            None => assert!(matches!(code, 4..=6), "flip at {i} gave exit {code}: {err}"),
        }
    }

    // A plugin GGUF is a GGUF source like any other: back to HCT, same codecs and payloads.
    let back = dir.path().join("back.hct");
    assert_eq!(hct(&["convert", s(&plugin), s(&back)]).0, 0);
    let b = HctFile::open(&back).unwrap();
    for e in b.tensors() {
        if e.name != "blk.0.odd.weight" {
            let orig = h.tensors().iter().find(|o| o.name == e.name).unwrap();
            assert_eq!(e.codec, orig.codec);
            assert_eq!(b.payload(e).unwrap(), h.payload(orig).unwrap());
        }
    }
    assert!(
        !b.metadata()
            .iter()
            .any(|(k, _)| k == KEY_EXT_TYPES || k.starts_with("hct.tensor")),
        "the plugin file's own records are not model metadata"
    );
}

#[test]
fn verify_refuses_a_gguf_without_records() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (code, err) = hct(&["verify", s(&src)]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("plugin GGUFs"), "{err}");
}
