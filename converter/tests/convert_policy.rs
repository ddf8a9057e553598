//! The default codec policy through the binary, on a BERT-shaped checkpoint (all-MiniLM-L6-v2's
//! names and shapes): `--codec` re-encodes the weight matrices but keeps the position and
//! token-type embeddings, which llama.cpp adds to activations, byte for byte at source
//! precision, says so in the summary and in --json, and a native GGUF export carries them
//! as F32; `--codec-for` can still force a codec on them.

use std::path::{Path, PathBuf};

use hct_format::gguf::{GgufFile, TensorType};
use hct_format::HctFile;

mod common;
use common::{hct, s};

const HIDDEN: usize = 384;
const POSITION: &str = "embeddings.position_embeddings.weight";
const TOKEN_TYPE: &str = "embeddings.token_type_embeddings.weight";
const WORD: &str = "embeddings.word_embeddings.weight";
const QUERY: &str = "encoder.layer.0.attention.self.query.weight";

fn f32_bytes(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ((((i * 131 + seed * 17) % 1009) as f32 / 504.5 - 1.0) * 0.05).to_le_bytes())
        .collect()
}

/// MiniLM's embedding block and one attention matrix, at MiniLM's shapes (the vocabulary
/// cut to 1024 rows to keep the test small), plus its int64 `position_ids`.
fn bert_like(dir: &Path) -> PathBuf {
    use safetensors::{tensor::TensorView, Dtype};
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "embeddings.position_ids",
            Dtype::I64,
            vec![1, 512],
            (0..512i64).flat_map(|i| i.to_le_bytes()).collect(),
        ),
        (
            WORD,
            Dtype::F32,
            vec![1024, HIDDEN],
            f32_bytes(1024 * HIDDEN, 1),
        ),
        (
            POSITION,
            Dtype::F32,
            vec![512, HIDDEN],
            f32_bytes(512 * HIDDEN, 2),
        ),
        (
            TOKEN_TYPE,
            Dtype::F32,
            vec![2, HIDDEN],
            f32_bytes(2 * HIDDEN, 3),
        ),
        (
            "embeddings.LayerNorm.weight",
            Dtype::F32,
            vec![HIDDEN],
            f32_bytes(HIDDEN, 4),
        ),
        (
            QUERY,
            Dtype::F32,
            vec![HIDDEN, HIDDEN],
            f32_bytes(HIDDEN * HIDDEN, 5),
        ),
    ];
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

#[test]
fn added_embeddings_keep_source_precision_and_export_as_f32() {
    let dir = tempfile::tempdir().unwrap();
    let src = bert_like(dir.path());
    let out = dir.path().join("q.hct");
    let (code, stdout, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--codec",
        "int4_g32_fp16_v1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let kept: Vec<&str> = summary["kept_at_source_precision"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["codec"], "f32");
            assert!(k["reason"]
                .as_str()
                .unwrap()
                .contains("added to activations"));
            k["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kept, [POSITION, TOKEN_TYPE]);
    assert_eq!(summary["re_encoded_tensors"], 2);

    let f = HctFile::open(&out).unwrap();
    f.verify().unwrap();
    let source = hct_format::safetensors_io::Checkpoint::open(&src).unwrap();
    for name in [POSITION, TOKEN_TYPE] {
        let t = f.tensor(name).unwrap();
        assert_eq!(t.codec, "f32", "{name}");
        let st = source.tensors().iter().find(|t| t.name == name).unwrap();
        assert_eq!(
            f.payload(t).unwrap(),
            source.data(st),
            "{name} carried byte for byte"
        );
    }
    for name in [WORD, QUERY] {
        assert_eq!(f.tensor(name).unwrap().codec, "int4_g32_fp16_v1", "{name}");
    }

    // The text summary names them too.
    let (code, stdout, err) = hct(&["convert", s(&src), s(&out), "--codec", "int4_g32_fp16_v1"]);
    assert_eq!(code, 0, "{err}");
    for name in [POSITION, TOKEN_TYPE] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(name) && l.contains("kept at f32")),
            "{stdout}"
        );
    }

    // A native GGUF export carries the int4_g32 matrices as Q4_1 and the added ones as F32,
    // which is what llama.cpp's add accepts.
    let gguf = dir.path().join("q.gguf");
    let (code, _, err) = hct(&["convert", s(&out), s(&gguf)]);
    assert_eq!(code, 0, "{err}");
    let g = GgufFile::open(&gguf).unwrap();
    let type_of = |name: &str| {
        let t = &g.tensors()[g.find_tensor(name).unwrap()];
        match &t.info.tensor_type {
            TensorType::Ggml(t) => t.name.to_string(),
            TensorType::Extension(e) => e.codec.clone(),
        }
    };
    assert_eq!(type_of(POSITION), "f32");
    assert_eq!(type_of(TOKEN_TYPE), "f32");
    assert_eq!(type_of(QUERY), "q4_1");
}

#[test]
fn codec_for_still_forces_a_codec_on_added_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let src = bert_like(dir.path());
    let out = dir.path().join("forced.hct");
    let (code, stdout, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--codec",
        "int4_g32_fp16_v1",
        "--codec-for",
        "*.position_embeddings.weight=int4_g32_fp16_v1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let kept: Vec<&str> = summary["kept_at_source_precision"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, [TOKEN_TYPE]);
    let f = HctFile::open(&out).unwrap();
    assert_eq!(f.tensor(POSITION).unwrap().codec, "int4_g32_fp16_v1");
    assert_eq!(f.tensor(TOKEN_TYPE).unwrap().codec, "f32");
}
