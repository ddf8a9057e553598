//! `--target-bpw` and `--max-size` through the binary, on a small decoder-LM-shaped checkpoint
//! (Hugging Face Llama names, tied embedding): the budget is respected, floors hold, rows the
//! budget codecs cannot store are kept and said so, the choice is in --json, the file does
//! not depend on the thread count, an impossible budget fails before any output, and a
//! native GGUF export carries the chosen blocks byte for byte under ggml's types.

use std::path::{Path, PathBuf};

use hct_format::gguf::{GgufFile, TensorType};
use hct_format::HctFile;

mod common;
use common::{hct, s};

const D: usize = 96;
const FF: usize = 192;

/// Gaussian-like values (sum of three hashed uniforms) with a per-tensor scale.
fn values(n: usize, seed: u64, scale: f32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    (0..n)
        .flat_map(|_| ((next() + next() + next() - 1.5) * scale).to_le_bytes())
        .collect()
}

fn checkpoint(dir: &Path) -> PathBuf {
    use safetensors::{tensor::TensorView, Dtype};
    let mut specs: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![256, D]),
        ("model.norm.weight".into(), vec![D]),
        ("odd.weight".into(), vec![8, 100]),
    ];
    for l in 0..2 {
        for (m, shape) in [
            ("self_attn.q_proj", vec![D, D]),
            ("self_attn.k_proj", vec![D / 2, D]),
            ("self_attn.v_proj", vec![D / 2, D]),
            ("self_attn.o_proj", vec![D, D]),
            ("mlp.gate_proj", vec![FF, D]),
            ("mlp.up_proj", vec![FF, D]),
            ("mlp.down_proj", vec![D, FF]),
        ] {
            specs.push((format!("model.layers.{l}.{m}.weight"), shape));
        }
        specs.push((format!("model.layers.{l}.input_layernorm.weight"), vec![D]));
    }
    let data: Vec<Vec<u8>> = specs
        .iter()
        .enumerate()
        .map(|(i, (_, shape))| {
            let scale = 0.01 * (1 + i % 5) as f32;
            values(shape.iter().product(), i as u64 + 1, scale)
        })
        .collect();
    let views: Vec<(String, TensorView)> = specs
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

fn payload_bpw(f: &HctFile) -> f64 {
    let bytes: u64 = f.tensors().iter().map(|t| t.length).sum();
    let elems: u64 = f.tensors().iter().map(|t| t.element_count()).sum();
    bytes as f64 * 8.0 / elems as f64
}

#[test]
fn target_bpw_respects_budget_and_floors_and_reports_choices() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path());
    let mut previous: Option<(f64, f64)> = None;
    for target in ["6.0", "7.0", "9.0"] {
        let out = dir.path().join(format!("b{target}.hct"));
        let (code, stdout, err) = hct(&[
            "convert",
            s(&src),
            s(&out),
            "--target-bpw",
            target,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let alloc = &j["budget"]["allocation"];
        let chosen_bpw = alloc["payload_bits_per_weight"].as_f64().unwrap();
        let estimate = alloc["estimated_error"].as_f64().unwrap();
        let f = HctFile::open(&out).unwrap();
        let t: f64 = target.parse().unwrap();
        assert!(
            payload_bpw(&f) <= t,
            "{target}: file has {} bpw",
            payload_bpw(&f)
        );
        assert!((payload_bpw(&f) - chosen_bpw).abs() < 1e-9);
        // Floors: the tied embedding at q8_0, attn_v at q5_0 or above.
        assert_eq!(
            f.tensor("model.embed_tokens.weight").unwrap().codec,
            "q8_0_mse_v1"
        );
        for l in 0..2 {
            let v = &f
                .tensor(&format!("model.layers.{l}.self_attn.v_proj.weight"))
                .unwrap()
                .codec;
            assert!(v == "q5_0_mse_v1" || v == "q8_0_mse_v1", "{v}");
        }
        // Rows of 100 elements: no budget codec stores them, so they keep f32 and say why.
        assert_eq!(f.tensor("odd.weight").unwrap().codec, "f32");
        let kept = j["kept_at_source_precision"].as_array().unwrap();
        assert!(kept.iter().any(|k| k["name"] == "odd.weight"
            && k["reason"].as_str().unwrap().contains("multiple of 32")));
        // Every decided tensor is listed with its role, floor and one estimate per codec.
        let tensors = j["budget"]["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), 15);
        for t in tensors {
            assert_eq!(t["estimates"].as_array().unwrap().len(), 3, "{t}");
            assert_eq!(
                f.tensor(t["name"].as_str().unwrap()).unwrap().codec,
                t["codec"]
            );
        }
        // More bits never raise the estimated error.
        if let Some((b, e)) = previous {
            assert!(
                chosen_bpw >= b && estimate <= e,
                "{target}: {chosen_bpw} {estimate} after {b} {e}"
            );
        }
        previous = Some((chosen_bpw, estimate));
    }
}

#[test]
fn budget_output_is_identical_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path());
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("t{threads}.hct"));
        let (code, _, err) = hct(&[
            "convert",
            s(&src),
            s(&out),
            "--target-bpw",
            "6.5",
            "--threads",
            threads,
        ]);
        assert_eq!(code, 0, "{err}");
        files.push(std::fs::read(&out).unwrap());
    }
    assert!(files[0] == files[1]);
}

#[test]
fn impossible_budget_fails_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path());
    let out = dir.path().join("x.hct");
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--target-bpw", "3.0"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot be met") && err.contains("bits per weight"),
        "{err}"
    );
    assert!(!out.exists());
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--max-size", "1000"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot be met"), "{err}");
    assert!(!out.exists());
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--target-bpw",
        "6",
        "--codec",
        "f16",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn max_size_bounds_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path());
    let full = dir.path().join("full.hct");
    let (code, _, err) = hct(&["convert", s(&src), s(&full), "--target-bpw", "8.0"]);
    assert_eq!(code, 0, "{err}");
    let limit = std::fs::metadata(&full).unwrap().len();
    let out = dir.path().join("m.hct");
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--max-size",
        &limit.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::metadata(&out).unwrap().len() <= limit);
}

#[test]
fn native_gguf_export_carries_the_chosen_blocks_under_ggml_types() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path());
    let out = dir.path().join("b.hct");
    let (code, _, err) = hct(&["convert", s(&src), s(&out), "--target-bpw", "6.0"]);
    assert_eq!(code, 0, "{err}");
    let gguf = dir.path().join("b.gguf");
    let (code, _, err) = hct(&["convert", s(&out), s(&gguf)]);
    assert_eq!(code, 0, "{err}");
    let f = HctFile::open(&out).unwrap();
    let g = GgufFile::open(&gguf).unwrap();
    let mut seen = 0;
    for t in f.tensors() {
        let layout = match t.codec.as_str() {
            "iq4_nl_mse_v1" => "iq4_nl",
            "q5_0_mse_v1" => "q5_0",
            "q8_0_mse_v1" => "q8_0",
            _ => continue,
        };
        let i = g.find_tensor(&t.name).unwrap();
        match &g.tensors()[i].info.tensor_type {
            TensorType::Ggml(ty) => assert_eq!(ty.name, layout, "{}", t.name),
            other => panic!("{}: {other:?}", t.name),
        }
        assert!(g.tensor_data(i) == f.payload(t).unwrap(), "{}", t.name);
        seen += 1;
    }
    assert_eq!(seen, 15);
}

#[test]
fn plugin_menu_offers_hct_layouts_where_rows_fit_and_exports_them_as_extension_types() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path());
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("p{threads}.hct"));
        let (code, stdout, err) = hct(&[
            "convert",
            s(&src),
            s(&out),
            "--target-bpw",
            "6.0",
            "--budget-menu",
            "plugin",
            "--threads",
            threads,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(j["budget"]["allocation"]["menu"], "plugin");
        let f = HctFile::open(&out).unwrap();
        assert!(payload_bpw(&f) <= 6.0);
        for t in j["budget"]["tensors"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            let row_len = *f.tensor(name).unwrap().shape.last().unwrap();
            let est = t["estimates"].as_array().unwrap();
            // nl4_sh64_v1 stores rows of multiples of 64 only (down_proj's 192, not 96).
            let has_nl4 = est.iter().any(|e| e["codec"] == "nl4_sh64_v1");
            assert_eq!(has_nl4, row_len % 64 == 0, "{name}: {t}");
            assert_eq!(est.len(), if has_nl4 { 4 } else { 3 }, "{name}");
            // At the 4.5-bit level the lower sampled error wins.
            if t["codec"] == "nl4_sh64_v1" || t["codec"] == "iq4_nl_mse_v1" {
                let e = |c: &str| {
                    est.iter()
                        .find(|e| e["codec"] == c)
                        .map(|e| e["nmse"].as_f64().unwrap())
                };
                if let (Some(a), Some(b)) = (e("nl4_sh64_v1"), e("iq4_nl_mse_v1")) {
                    let want = if a < b {
                        "nl4_sh64_v1"
                    } else {
                        "iq4_nl_mse_v1"
                    };
                    assert_eq!(t["codec"], want, "{name}");
                }
            }
        }
        outputs.push(out);
    }
    let (a, b) = (
        std::fs::read(&outputs[0]).unwrap(),
        std::fs::read(&outputs[1]).unwrap(),
    );
    assert!(a == b, "1- and 2-thread files differ");
    let f = HctFile::open(&outputs[0]).unwrap();
    assert!(
        f.tensors().iter().any(|t| t.codec == "nl4_sh64_v1"),
        "gaussian down_proj rows: the shifted grid has the lower error"
    );
    // The plugin GGUF keeps those tensors as extension types, byte for byte.
    let gguf = dir.path().join("p.gguf");
    let (code, _, err) = hct(&["convert", s(&outputs[0]), s(&gguf), "--gguf-mode", "plugin"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = hct(&["verify", s(&gguf)]);
    assert_eq!(code, 0, "{err}");
}
