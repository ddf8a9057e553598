//! `hct convert --codec hct_v3 --codec-param retention=P`: the family name and its parameter
//! select the id, every coded tensor records the parameters, `inspect` shows them, and a
//! retention with no id is a usage error that names the ones there are.

mod common;
use common::{hct, s};

use hct_format::{HctFile, Value};

fn checkpoint(path: &std::path::Path) {
    use safetensors::{tensor::TensorView, Dtype};
    let w: Vec<u8> = (0..128 * 192)
        .flat_map(|i| (((i * 7919 % 1009) as f32 / 504.5 - 1.0) * 0.05).to_le_bytes())
        .collect();
    let b: Vec<u8> = (0..192).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let views = vec![
        (
            "layer.weight",
            TensorView::new(Dtype::F32, vec![128, 192], &w).unwrap(),
        ),
        (
            "layer.bias",
            TensorView::new(Dtype::F32, vec![192], &b).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn retention_selects_the_id_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.safetensors");
    checkpoint(&src);
    let out = dir.path().join("out.hct");
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--codec",
        "hct_v3",
        "--codec-param",
        "retention=0.5",
    ]);
    assert_eq!(code, 0, "{err}");
    let f = HctFile::open(&out).unwrap();
    f.validate().unwrap();
    let t = f.tensor("layer.weight").unwrap();
    assert_eq!(t.codec, "hct_v3_r50");
    let param = |k: &str| {
        t.codec_params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("hct.kept_per_tile"), Some(Value::U32(32)));
    assert_eq!(param("hct.retention"), Some(Value::F32(0.5)));
    assert_eq!(
        param("hct.tile").and_then(|v| v.as_str().map(String::from)),
        Some("1x64".into())
    );
    assert_eq!(f.tensor("layer.bias").unwrap().codec, "f32");
    let (code, listing, _) = hct(&["inspect", s(&out)]);
    assert_eq!(code, 0);
    let line = listing
        .lines()
        .find(|l| l.contains("layer.weight"))
        .unwrap();
    assert!(
        line.contains("hct_v3_r50")
            && line.contains("hct.kept_per_tile")
            && line.contains("hct.retention"),
        "{line}"
    );
}

#[test]
fn a_retention_without_an_id_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.safetensors");
    checkpoint(&src);
    let out = dir.path().join("out.hct");
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--codec",
        "hct_v3",
        "--codec-param",
        "retention=0.8",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("0.25, 0.50, 0.70, 0.90, 0.98"), "{err}");
    assert!(!out.exists());
    let (code, _, err) = hct(&[
        "convert",
        s(&src),
        s(&out),
        "--codec",
        "int4_opt_v1",
        "--codec-param",
        "retention=0.9",
    ]);
    assert_eq!(code, 2, "{err}");
}
