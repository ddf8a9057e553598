//! `hct convert --codec` writes the same bytes whatever the thread count: chunks are
//! encoded ahead of the writer, across tensor boundaries, and must still land in file
//! order. Each re-encoded payload is compared with the codec's own encoder applied row by
//! row, so a chunk written out of order or to the wrong tensor cannot pass.

use std::path::Path;
use std::process::Command;

use hct_format::codec;
use hct_format::HctFile;

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((((i * 7919 + seed * 104_729) % 65_521) as f32 / 32_760.5) - 1.0) * 0.1)
        .collect()
}

/// A multi-chunk matrix (more than 2^21 elements), small matrices that are one chunk each,
/// a vector and an integer tensor, interleaved.
fn checkpoint(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    use safetensors::{tensor::TensorView, Dtype};
    let shapes: Vec<(&str, Vec<usize>)> = vec![
        ("a.big.weight", vec![2200, 1024]),
        ("b.norm.weight", vec![1024]),
        ("c.small.weight", vec![64, 96]),
        ("d.mid.weight", vec![300, 512]),
        ("f.small.weight", vec![16, 32]),
    ];
    let floats: Vec<(String, Vec<usize>, Vec<f32>)> = shapes
        .iter()
        .enumerate()
        .map(|(i, (n, s))| (n.to_string(), s.clone(), values(s.iter().product(), i)))
        .collect();
    let bytes: Vec<Vec<u8>> = floats
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let ids: Vec<u8> = (0..16i64).flat_map(|i| i.to_le_bytes()).collect();
    let mut views: Vec<(&str, TensorView)> = floats
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.as_str(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    views.push((
        "e.ids",
        TensorView::new(Dtype::I64, vec![1, 16], &ids).unwrap(),
    ));
    safetensors::serialize_to_file(views, None, path).unwrap();
    floats
}

fn convert(src: &Path, out: &Path, codec: &str, threads: &str) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(["convert", "--json", "--codec", codec, "--threads", threads])
        .arg(src)
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn output_is_the_same_for_every_thread_count_and_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.safetensors");
    let floats = checkpoint(&src);
    for codec_id in [
        "int4_g32_fp16_v1",
        "int4_opt_v1",
        "hct_v3_r90",
        "hct_v3m_r90_h4_v1",
    ] {
        let mut first: Option<(Vec<u8>, serde_json::Value)> = None;
        for threads in ["1", "2", "3"] {
            let out = dir.path().join(format!("{codec_id}-{threads}.hct"));
            let summary = convert(&src, &out, codec_id, threads);
            let bytes = std::fs::read(&out).unwrap();
            let quality: Vec<_> = summary["tensor_reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["quality"].clone())
                .collect();
            let quality = serde_json::Value::Array(quality);
            match &first {
                None => first = Some((bytes, quality)),
                Some((b, q)) => {
                    assert!(
                        *b == bytes,
                        "{codec_id}: --threads {threads} differs from 1"
                    );
                    assert_eq!(*q, quality, "{codec_id}: quality at --threads {threads}");
                }
            }
        }
        let f = HctFile::open(dir.path().join(format!("{codec_id}-1.hct"))).unwrap();
        f.verify().unwrap();
        let c = codec::find(codec_id).unwrap();
        for (name, shape, v) in &floats {
            let t = f.tensor(name).unwrap();
            if shape.len() < 2 {
                assert_eq!(t.codec, "f32", "{name}");
                continue;
            }
            assert_eq!(t.codec, codec_id, "{name}");
            let row_len = shape[1];
            let row_bytes = c.row_bytes(row_len as u64).unwrap() as usize;
            let mut expected = vec![0u8; shape[0] * row_bytes];
            for (x, out) in v
                .chunks_exact(row_len)
                .zip(expected.chunks_exact_mut(row_bytes))
            {
                c.encode_row(x, out).unwrap();
            }
            assert!(f.payload(t).unwrap() == expected, "{codec_id}: {name}");
        }
        assert_eq!(f.tensor("e.ids").unwrap().codec, "i64");
    }
}
