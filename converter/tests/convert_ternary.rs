//! Ternary codecs through the binary (SPEC.md §7.8): SmolLM2-shaped rows of 576 (not whole
//! 256-element blocks) fail the conversion naming the tensor unless --fallback-codec is given;
//! with it they take the fallback and the summary says which and why; rows of whole blocks
//! take the ternary codec, and a native GGUF export carries them as TQ1_0/TQ2_0 byte for byte.
//! An already-ternary matrix comes back exactly.

use std::path::{Path, PathBuf};

use hct_format::gguf::{GgufFile, TensorType};
use hct_format::HctFile;

mod common;
use common::{hct, s};

const Q: &str = "blk.0.attn_q.weight"; // rows of 576
const DOWN: &str = "blk.0.ffn_down.weight"; // rows of 1536
const TERNARY: &str = "blk.0.ffn_up.weight"; // rows of 512, values ±a and 0

fn f32_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

fn wavy(n: usize, seed: usize) -> Vec<u8> {
    f32_bytes((0..n).map(|i| (((i * 131 + seed * 17) % 1009) as f32 / 504.5 - 1.0) * 0.05))
}

/// a = 0.0123 rounded to binary16, so the row meets §7.8.3's lossless condition.
fn ternary_values(n: usize) -> Vec<f32> {
    let a = half::f16::from_f32(0.0123).to_f32();
    (0..n)
        .map(|i| match (i * 7 + i / 13) % 5 {
            0 | 1 => a,
            2 => -a,
            _ => 0.0,
        })
        .collect()
}

fn model(dir: &Path) -> PathBuf {
    use safetensors::{tensor::TensorView, Dtype};
    let tensors: Vec<(&str, Vec<usize>, Vec<u8>)> = vec![
        (Q, vec![64, 576], wavy(64 * 576, 1)),
        (DOWN, vec![32, 1536], wavy(32 * 1536, 2)),
        (
            TERNARY,
            vec![16, 512],
            f32_bytes(ternary_values(16 * 512).into_iter()),
        ),
        ("blk.0.attn_norm.weight", vec![576], wavy(576, 3)),
    ];
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, sh, b)| (*n, TensorView::new(Dtype::F32, sh.clone(), b).unwrap()))
        .collect();
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

#[test]
fn rows_not_of_whole_blocks_fail_naming_the_tensor_without_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let src = model(dir.path());
    let out = dir.path().join("t.hct");
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--codec", "tq2_0_absmean_v1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(Q) && err.contains("576") && err.contains("256"),
        "{err}"
    );
    assert!(!out.exists(), "no partial output");
    // The fallback needs --codec, and must be a codec this build encodes.
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--fallback-codec", "ggml_q4_0"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--codec",
        "tq2_0_absmean_v1",
        "--fallback-codec",
        "ggml_q2_k",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ggml_q2_k"), "{err}");
}

#[test]
fn fallback_is_listed_and_ternary_tensors_export_to_gguf_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let src = model(dir.path());
    for (codec, ggml) in [("tq1_0_absmean_v1", "tq1_0"), ("tq2_0_absmean_v1", "tq2_0")] {
        let out = dir.path().join(format!("{codec}.hct"));
        let (code, stdout, err) = hct(&[
            "convert",
            s(&src),
            s(&out),
            "--codec",
            codec,
            "--fallback-codec",
            "ggml_q4_0",
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let fell: Vec<(&str, &str)> = summary["fell_back"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["codec"].as_str().unwrap()))
            .collect();
        assert_eq!(fell, [(Q, "ggml_q4_0")]);
        let f = HctFile::open(&out).unwrap();
        f.verify().unwrap();
        assert_eq!(f.tensor(Q).unwrap().codec, "ggml_q4_0");
        assert_eq!(f.tensor(DOWN).unwrap().codec, codec);
        assert_eq!(f.tensor(TERNARY).unwrap().codec, codec);
        assert_eq!(f.tensor("blk.0.attn_norm.weight").unwrap().codec, "f32");

        // Lossless for the already-ternary matrix: decode it back to f32 safetensors.
        let back = dir.path().join(format!("{codec}.safetensors"));
        let (code, _, err) = hct(&["convert", s(&out), s(&back), "--dtype", "f32"]);
        assert_eq!(code, 0, "{err}");
        let st = hct_format::safetensors_io::Checkpoint::open(&back).unwrap();
        let t = st.tensors().iter().find(|t| t.name == TERNARY).unwrap();
        assert_eq!(st.data(t), f32_bytes(ternary_values(16 * 512).into_iter()));

        // Native GGUF: the ternary payloads under ggml's own type, byte for byte.
        let gguf = dir.path().join(format!("{codec}.gguf"));
        let (code, _, err) = hct(&["convert", s(&out), s(&gguf)]);
        assert_eq!(code, 0, "{err}");
        let g = GgufFile::open(&gguf).unwrap();
        for name in [DOWN, TERNARY] {
            let i = g.find_tensor(name).unwrap();
            match &g.tensors()[i].info.tensor_type {
                TensorType::Ggml(t) => assert_eq!(t.name, ggml, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(
                g.tensor_data(i),
                f.payload(f.tensor(name).unwrap()).unwrap(),
                "{name}"
            );
        }
    }
}
