//! The golden file of SPEC.md §12: the reader accepts it, sees exactly the documented
//! content, and the writer reproduces it byte for byte from the same inputs.
//! `HCT_BLESS=1 cargo test -p hct-format --test golden` rewrites it (then update SPEC.md's
//! hex dump: a changed golden file means a changed format, which needs a new spec version).

use hct_format::value::{metadata_bit_eq, Array, Metadata, Value};
use hct_format::{HctFile, TensorDesc, Writer};
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/minimal-v1.0.hct")
}

fn metadata() -> Metadata {
    vec![
        ("general.name".into(), Value::string("golden")),
        ("answer".into(), Value::U32(42)),
        ("pair".into(), Value::Array(Array::I16(vec![-1, 2]))),
    ]
}

/// f32 [2, 2] = [1, -2, 0.5, 0]; bf16 [3] = [1, -1, 0.5] (0x3f80, 0xbf80, 0x3f00).
fn tensors() -> Vec<(TensorDesc, Vec<u8>)> {
    let f32s: Vec<u8> = [1.0f32, -2.0, 0.5, 0.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let bf16s: Vec<u8> = [0x3f80u16, 0xbf80, 0x3f00]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let d = |name: &str, shape: &[u64], codec: &str| TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        source_dtype: codec.into(),
        codec: codec.into(),
        codec_params: vec![],
    };
    vec![
        (d("w", &[2, 2], "f32"), f32s),
        (d("b", &[3], "bf16"), bf16s),
    ]
}

fn write(path: &std::path::Path) {
    let mut w = Writer::create(path).unwrap();
    for (desc, payload) in tensors() {
        w.add_tensor(desc, &payload).unwrap();
    }
    w.finish(metadata()).unwrap();
}

#[test]
fn writer_reproduces_golden_file_byte_for_byte() {
    if std::env::var_os("HCT_BLESS").is_some() {
        write(&golden_path());
    }
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.hct");
    write(&fresh);
    let expected = std::fs::read(golden_path()).expect("golden file is checked in");
    assert_eq!(
        std::fs::read(&fresh).unwrap(),
        expected,
        "writer output differs from the golden file"
    );
}

#[test]
fn reader_accepts_golden_file_and_sees_its_content() {
    let f = HctFile::open(golden_path()).unwrap();
    f.validate().unwrap();
    f.verify().unwrap();
    assert!(metadata_bit_eq(f.metadata(), &metadata()));
    assert_eq!(f.tensors().len(), 2);
    let w = f.tensor("w").unwrap();
    assert_eq!((w.offset, w.length), (64, 16));
    assert_eq!(f.decode_f32(w).unwrap(), [1.0, -2.0, 0.5, 0.0]);
    let b = f.tensor("b").unwrap();
    assert_eq!((b.offset, b.length), (128, 6));
    assert_eq!(f.decode_f32(b).unwrap(), [1.0, -1.0, 0.5]);
    assert_eq!(f.preamble().header_offset, 192);
    assert_eq!(hex::encode(w.sha256), sha256_hex(f.payload(w).unwrap()));
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}
