//! The `hct` binary against damaged copies of the golden file: every single-byte flip is
//! caught, by `verify` (naming the tensor) for payload bytes and by `validate` for
//! everything else, with the documented exit codes and no backtrace.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hct() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hct"))
}

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/tests/golden/minimal-v1.0.hct")
}

fn run(args: &[&str], file: &Path) -> (i32, String) {
    let out = hct().args(args).arg(file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    (out.status.code().unwrap(), stderr)
}

#[test]
fn golden_file_passes_every_check() {
    for cmd in ["inspect", "validate", "verify"] {
        assert_eq!(run(&[cmd], &golden()).0, 0, "{cmd}");
    }
}

#[test]
fn every_single_byte_flip_is_caught() {
    let original = std::fs::read(golden()).unwrap();
    let f = hct_format::HctFile::open(golden()).unwrap();
    let payload_owner = |i: u64| {
        f.tensors()
            .iter()
            .find(|t| i >= t.offset && i < t.offset + t.length)
            .map(|t| t.name.clone())
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipped.hct");
    for i in 0..original.len() {
        if (10..12).contains(&i) {
            continue; // a different minor version is legitimately accepted
        }
        let mut b = original.clone();
        b[i] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        match payload_owner(i as u64) {
            Some(tensor) => {
                let (code, err) = run(&["verify"], &path);
                assert_eq!(code, 5, "flip at {i}: {err}");
                assert!(
                    err.contains(&format!("tensor {tensor:?}")),
                    "flip at {i}: {err}"
                );
            }
            None => {
                let (code, err) = run(&["validate"], &path);
                assert!(
                    code == 4 || code == 5 || code == 6,
                    "flip at {i} gave exit {code}: {err}"
                );
            }
        }
    }
}

#[test]
fn verify_names_every_damaged_tensor() {
    let mut bytes = std::fs::read(golden()).unwrap();
    let f = hct_format::HctFile::open(golden()).unwrap();
    // The golden file has two tensors; damage both (that an intact tensor is not named is
    // checked by hct-format's container tests).
    let payloads: Vec<_> = f.tensors().iter().filter(|t| t.length > 0).collect();
    assert!(payloads.len() >= 2);
    let (first, last) = (payloads[0], payloads[payloads.len() - 1]);
    bytes[first.offset as usize] ^= 0x01;
    bytes[(last.offset + last.length - 1) as usize] ^= 0x80;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two-damaged.hct");
    std::fs::write(&path, &bytes).unwrap();

    let (code, err) = run(&["verify"], &path);
    assert_eq!(code, 5, "{err}");
    for t in [first, last] {
        assert!(err.contains(&format!("tensor {:?}", t.name)), "{err}");
    }
    assert!(err.contains("2 of 2 payloads"), "{err}");

    let out = hct()
        .args(["verify", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let damaged: Vec<&str> = v["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tensor"].as_str().unwrap())
        .collect();
    assert_eq!(damaged, [first.name.as_str(), last.name.as_str()]);
    assert_eq!(v["damaged"][0]["expected"], hex::encode(first.sha256));
}

#[test]
fn exit_codes_for_missing_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(&["validate"], &dir.path().join("missing.hct")).0, 3);
    let foreign = dir.path().join("foreign.hct");
    std::fs::write(
        &foreign,
        b"GGUF\x03\0\0\0 not an hct file at all, but long enough to have a preamble",
    )
    .unwrap();
    let (code, err) = run(&["inspect"], &foreign);
    assert_eq!(code, 4);
    assert!(err.contains("not an HCT file"), "{err}");
    let out = hct().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
