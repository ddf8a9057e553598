//! `hct profiles` and `hct convert --profile NAME` through the binary, on a small llama-shaped
//! HCT file: the KV cache comes from the model's metadata by the stated formula, the rest of
//! the profile's memory becomes the size budget of the weights, and a profile whose KV cache
//! alone does not fit fails naming the shortfall in bytes, before any output appears.

use std::path::{Path, PathBuf};

use hct_format::container::{TensorDesc, Writer};
use hct_format::value::Value;
use hct_format::HctFile;

mod common;
use common::{hct, s};

const WIDTH: u64 = 256;

fn f32_payload(n: u64, seed: u64) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ((((i * 131 + seed * 17) % 1009) as f32 / 504.5 - 1.0) * 0.05).to_le_bytes())
        .collect()
}

/// One decoder layer of width 256 (4 heads of 64, 1 KV head) with `layers` in its metadata.
fn llama_like(dir: &Path, layers: u32) -> PathBuf {
    let path = dir.join(format!("llama-{layers}.hct"));
    let mut w = Writer::create(&path).unwrap();
    let tensors: [(&str, Vec<u64>); 5] = [
        ("token_embd.weight", vec![128, WIDTH]),
        ("blk.0.attn_q.weight", vec![WIDTH, WIDTH]),
        ("blk.0.attn_v.weight", vec![64, WIDTH]),
        ("blk.0.ffn_down.weight", vec![WIDTH, WIDTH]),
        ("output_norm.weight", vec![WIDTH]),
    ];
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let n: u64 = shape.iter().product();
        let desc = TensorDesc {
            name: name.to_string(),
            shape: shape.clone(),
            source_dtype: "f32".into(),
            codec: "f32".into(),
            codec_params: vec![],
        };
        w.add_tensor(desc, &f32_payload(n, i as u64)).unwrap();
    }
    w.finish(vec![
        ("general.architecture".into(), Value::string("llama")),
        ("llama.block_count".into(), Value::U32(layers)),
        ("llama.embedding_length".into(), Value::U32(WIDTH as u32)),
        ("llama.attention.head_count".into(), Value::U32(4)),
        ("llama.attention.head_count_kv".into(), Value::U32(1)),
    ])
    .unwrap();
    path
}

#[test]
fn profiles_are_listed_in_text_and_json() {
    let (code, stdout, err) = hct(&["profiles"]);
    assert_eq!(code, 0, "{err}");
    for name in ["phone-low-end", "phone-high-end", "tiny-160mb"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    let (code, stdout, err) = hct(&["profiles", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let low = v
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "phone-low-end")
        .unwrap();
    assert_eq!(low["memory_bytes"], 2_000_000_000u64);
    assert_eq!(low["context_tokens"], 4096);
    assert_eq!(low["kv_cache_type"], "f16");
}

#[test]
fn a_profile_budgets_the_weights_after_the_kv_cache() {
    let dir = tempfile::tempdir().unwrap();
    let src = llama_like(dir.path(), 1);
    let out = dir.path().join("fit.hct");
    let (code, stdout, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--profile",
        "phone-low-end",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // 1 layer × 4096 tokens × (1 × 64 + 1 × 64) elements × 2 bytes.
    assert_eq!(v["profile"]["kv_cache_bytes"], 1_048_576);
    assert_eq!(
        v["profile"]["weights_budget_bytes"],
        2_000_000_000u64 - 1_048_576
    );
    // A generous budget: every matrix gets the best budget codec.
    let f = HctFile::open(&out).unwrap();
    for name in ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"] {
        assert_eq!(f.tensor(name).unwrap().codec, "q8_0_mse_v1", "{name}");
    }
    assert_eq!(f.tensor("output_norm.weight").unwrap().codec, "f32");
    assert!(v["budget"].is_object());
}

#[test]
fn a_kv_cache_beyond_the_profile_fails_naming_the_shortfall() {
    let dir = tempfile::tempdir().unwrap();
    // 1,000 layers: 1000 × 2048 × 128 × 2 = 524,288,000 bytes of KV cache > 160 MB.
    let src = llama_like(dir.path(), 1000);
    let out = dir.path().join("nofit.hct");
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--profile", "tiny-160mb"]);
    assert_ne!(code, 0);
    assert!(err.contains("364288000 bytes more"), "{err}");
    assert!(!out.exists());
    // 305 layers: the KV cache (159,907,840 bytes) fits, the weights at their floors do not.
    let src305 = llama_like(dir.path(), 305);
    let (code, _, err) = hct(&["convert", s(&src305), s(&out), "--profile", "tiny-160mb"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("profile tiny-160mb") && err.contains("leave 92160 bytes for the weights"),
        "{err}"
    );
    assert!(err.contains("bytes more than the budget allows"), "{err}");
    assert!(!out.exists());
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--profile", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tiny-160mb"), "{err}");
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--profile",
        "tiny-160mb",
        "--codec",
        "f16",
    ]);
    assert_eq!(code, 2, "{err}");
}
