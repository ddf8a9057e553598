//! `hct convert --entropy` (SPEC.md §6.3): the same bytes whatever the thread count, a
//! lossless round trip back to the plain file, every output format reading coded tensors
//! decoded, and damage reported with the converter's exit codes.

use std::path::Path;
use std::process::{Command, Output};

use hct_format::HctFile;

/// A small checkpoint whose matrices zstd can shrink (coarse values) plus one it cannot.
fn checkpoint(path: &Path) {
    use safetensors::{tensor::TensorView, Dtype};
    let coarse = |n: usize, seed: u32| -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .flat_map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let x = ((i % 97) as f32 * 0.03).sin() * 0.05 + (s % 8) as f32 / 512.0;
                ((x * 256.0).round() / 256.0).to_le_bytes()
            })
            .collect()
    };
    let a = coarse(700 * 512, 1);
    let b = coarse(64 * 128, 2);
    let norm = coarse(512, 3);
    let views = vec![
        (
            "a.weight",
            TensorView::new(Dtype::F32, vec![700, 512], &a).unwrap(),
        ),
        (
            "b.weight",
            TensorView::new(Dtype::F32, vec![64, 128], &b).unwrap(),
        ),
        (
            "n.weight",
            TensorView::new(Dtype::F32, vec![512], &norm).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn hct(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(args)
        .args(files)
        .output()
        .unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

#[test]
fn entropy_output_is_deterministic_lossless_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    checkpoint(&d("m.safetensors"));
    ok(hct(
        &["convert", "--codec", "int4_g32_fp16_v1"],
        &[&d("m.safetensors"), &d("plain.hct")],
    ));
    for threads in ["1", "2"] {
        let out = d(&format!("z{threads}.hct"));
        ok(hct(
            &[
                "convert",
                "--codec",
                "int4_g32_fp16_v1",
                "--entropy",
                "zstd:5",
                "--threads",
                threads,
            ],
            &[&d("m.safetensors"), &out],
        ));
    }
    let z1 = std::fs::read(d("z1.hct")).unwrap();
    assert_eq!(z1, std::fs::read(d("z2.hct")).unwrap(), "1 vs 2 threads");
    let f = HctFile::open(d("z1.hct")).unwrap();
    let coded = f
        .tensors()
        .iter()
        .filter(|t| hct_format::container::is_entropy_coded(t))
        .count();
    assert!(coded >= 1, "nothing was coded");
    assert!(z1.len() < std::fs::read(d("plain.hct")).unwrap().len());
    ok(hct(&["validate"], &[&d("z1.hct")]));
    ok(hct(&["verify"], &[&d("z1.hct")]));
    // Decoding back gives the plain conversion byte for byte, and coded → safetensors the
    // same file as plain → safetensors.
    ok(hct(&["convert"], &[&d("z1.hct"), &d("back.hct")]));
    assert_eq!(
        std::fs::read(d("back.hct")).unwrap(),
        std::fs::read(d("plain.hct")).unwrap()
    );
    ok(hct(
        &["convert", "--dtype", "f32"],
        &[&d("z1.hct"), &d("z.safetensors")],
    ));
    ok(hct(
        &["convert", "--dtype", "f32"],
        &[&d("plain.hct"), &d("p.safetensors")],
    ));
    assert_eq!(
        std::fs::read(d("z.safetensors")).unwrap(),
        std::fs::read(d("p.safetensors")).unwrap()
    );
    // inspect --json reports stored and decoded sizes.
    let o = ok(hct(&["inspect", "--json"], &[&d("z1.hct")]));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["spec_version"], "1.1");
    let a = j["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "a.weight")
        .unwrap();
    assert_eq!(a["entropy_coded"], true);
    assert!(a["length"].as_u64().unwrap() < a["decoded_length"].as_u64().unwrap());
    // --entropy with a non-HCT output, or an unknown stage, is a usage error.
    let o = hct(
        &["convert", "--entropy", "zstd"],
        &[&d("plain.hct"), &d("x.safetensors")],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = hct(
        &["convert", "--entropy", "lz4"],
        &[&d("plain.hct"), &d("x.hct")],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn damaged_frames_stop_conversion_with_exit_5() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    checkpoint(&d("m.safetensors"));
    ok(hct(
        &["convert", "--entropy", "zstd"],
        &[&d("m.safetensors"), &d("z.hct")],
    ));
    let f = HctFile::open(d("z.hct")).unwrap();
    let t = f.tensor("a.weight").unwrap().clone();
    assert!(hct_format::container::is_entropy_coded(&t));
    drop(f);
    let mut bytes = std::fs::read(d("z.hct")).unwrap();
    // A byte inside the first frame (past the 8-byte count and the index).
    let chunks = u64::from_le_bytes(bytes[t.offset as usize..][..8].try_into().unwrap());
    let at = (t.offset + 8 + 16 * chunks + 20) as usize;
    bytes[at] ^= 0x10;
    std::fs::write(d("bad.hct"), &bytes).unwrap();
    for (cmd, out) in [("convert", Some(d("out.safetensors"))), ("verify", None)] {
        let mut files = vec![d("bad.hct")];
        files.extend(out.clone());
        let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let o = hct(&[cmd], &refs);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(5), "{cmd}: {err}");
        assert!(err.contains("a.weight"), "{cmd}: {err}");
        if let Some(out) = out {
            assert!(!out.exists(), "no output from a damaged input");
        }
    }
}
