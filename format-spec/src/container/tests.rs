//! Container tests: round trips, and one test per way a file can be wrong, each asserting
//! the exact error kind. Hostile files are built by re-assembling real writer output with
//! a patched header (and a recomputed checksum, so the check under test is the one hit).

use super::*;
use crate::value::{metadata_bit_eq, Array, Metadata, Value};
use sha2::{Digest, Sha256};

pub(crate) fn rich_metadata() -> Metadata {
    let vocab: Vec<Vec<u8>> = (0..50_000)
        .map(|i| format!("tok{i}▁").into_bytes())
        .collect();
    vec![
        ("general.architecture".into(), Value::string("llama")),
        ("u8".into(), Value::U8(250)),
        ("i8".into(), Value::I8(-7)),
        ("u16".into(), Value::U16(65_000)),
        ("i16".into(), Value::I16(-30_000)),
        ("u32".into(), Value::U32(4_000_000_000)),
        ("i32".into(), Value::I32(-2_000_000_000)),
        ("u64".into(), Value::U64(u64::MAX)),
        ("i64".into(), Value::I64(i64::MIN)),
        ("f32".into(), Value::F32(f32::from_bits(0x7fc0_1234))),
        ("f64".into(), Value::F64(-0.0)),
        ("bool".into(), Value::Bool(true)),
        (
            "not-utf8 string".into(),
            Value::String(vec![0xff, 0xfe, b'x']),
        ),
        ("empty i32 array".into(), Value::Array(Array::I32(vec![]))),
        (
            "bools".into(),
            Value::Array(Array::Bool(vec![true, false, true])),
        ),
        (
            "f64s".into(),
            Value::Array(Array::F64(vec![1.5, f64::NAN, f64::NEG_INFINITY])),
        ),
        (
            "nested".into(),
            Value::Array(Array::Array(vec![
                Array::String(vec![b"a".to_vec(), b"".to_vec()]),
                Array::Array(vec![Array::U16(vec![1, 2]), Array::Array(vec![])]),
                Array::I64(vec![]),
            ])),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(Array::String(vocab)),
        ),
    ]
}

fn desc(name: &str, shape: &[u64], codec: &str) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        source_dtype: codec.into(),
        codec: codec.into(),
        codec_params: vec![],
    }
}

/// A small valid file: three tensors (f32, f16, bf16), the second with codec params.
fn sample(dir: &std::path::Path, metadata: Metadata) -> std::path::PathBuf {
    let path = dir.join("sample.hct");
    let mut w = Writer::create(&path).unwrap();
    w.add_tensor(desc("a.f32", &[2, 3], "f32"), &(0..24).collect::<Vec<u8>>())
        .unwrap();
    let mut d = desc("b.f16", &[5], "f16");
    d.codec_params = vec![("note".into(), Value::string("param"))];
    w.add_tensor(d, &[1u8; 10]).unwrap();
    w.add_tensor(desc("c.bf16", &[1, 1, 4], "bf16"), &[2u8; 8])
        .unwrap();
    w.finish(metadata).unwrap();
    path
}

/// Rebuild a file from its payload region and new header bytes, with a correct checksum.
fn reassemble(original: &[u8], header: &[u8]) -> Vec<u8> {
    let pre = Preamble::parse(original).unwrap();
    let mut out = original[..pre.header_offset as usize].to_vec();
    out.extend_from_slice(header);
    let p = Preamble {
        header_len: header.len() as u64,
        header_sha256: Sha256::digest(header).into(),
        ..pre
    };
    out[..64].copy_from_slice(&p.encode());
    out
}

fn header_of(bytes: &[u8]) -> Header {
    let c = Container::from_bytes(bytes.to_vec(), "t").unwrap();
    c.header().clone()
}

fn with_header(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header_of(bytes);
    edit(&mut h);
    reassemble(bytes, &h.encode())
}

fn open_err(bytes: Vec<u8>) -> ErrorKind {
    match Container::from_bytes(bytes, "hostile.hct") {
        Ok(_) => panic!("hostile file was accepted"),
        Err(e) => {
            assert_eq!(
                e.path,
                std::path::Path::new("hostile.hct"),
                "errors name the file"
            );
            e.kind
        }
    }
}

fn validate_err(bytes: Vec<u8>) -> ErrorKind {
    let c = Container::from_bytes(bytes, "hostile.hct").expect("structure is fine");
    c.validate().expect_err("validate must refuse").kind
}

fn valid_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::read(sample(dir.path(), vec![("k".into(), Value::U32(1))])).unwrap()
}

#[test]
fn round_trip_rich_metadata_and_float_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let meta = rich_metadata();
    let path = sample(dir.path(), meta.clone());
    let f = HctFile::open(&path).unwrap();
    assert!(metadata_bit_eq(f.metadata(), &meta));
    f.validate().unwrap();
    f.verify().unwrap();
    let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a.f32", "b.f16", "c.bf16"]);
    let a = f.tensor("a.f32").unwrap();
    assert_eq!(a.shape, [2, 3]);
    assert_eq!(f.payload(a).unwrap(), (0..24).collect::<Vec<u8>>());
    assert_eq!(
        f.tensor("b.f16").unwrap().codec_params,
        vec![("note".to_string(), Value::string("param"))]
    );
    for t in f.tensors() {
        assert_eq!(t.offset % ALIGNMENT, 0);
    }
    // Writing the parsed header again reproduces the file byte for byte.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(reassemble(&bytes, &f.header().encode()), bytes);
}

#[test]
fn float_payloads_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.hct");
    let mut w = Writer::create(&path).unwrap();
    let xs = [1.0f32, -2.0, 0.5, 3.25];
    let codec = crate::codec::find("f16").unwrap();
    let mut payload = vec![0u8; 8];
    codec.encode_row(&xs, &mut payload).unwrap();
    w.add_tensor(desc("x", &[2, 2], "f16"), &payload).unwrap();
    w.finish(vec![]).unwrap();
    let f = HctFile::open(&path).unwrap();
    assert_eq!(f.decode_f32(&f.tensors()[0]).unwrap(), xs);
    let mut row = [0f32; 2];
    f.decode_rows(&f.tensors()[0], 1, &mut row).unwrap();
    assert_eq!(row, [0.5, 3.25]);
    assert!(
        f.decode_rows(&f.tensors()[0], 2, &mut row).is_err(),
        "row past the end"
    );
}

#[test]
fn empty_file() {
    assert!(matches!(open_err(vec![]), ErrorKind::Empty));
}

#[test]
fn truncated_preamble() {
    let b = valid_bytes();
    assert!(matches!(
        open_err(b[..40].to_vec()),
        ErrorKind::TruncatedPreamble { len: 40 }
    ));
}

#[test]
fn wrong_magic() {
    let mut b = valid_bytes();
    b[1] = b'G';
    assert!(matches!(open_err(b), ErrorKind::BadMagic { .. }));
    assert!(matches!(
        open_err(b"GGUF\x03\0\0\0".to_vec()),
        ErrorKind::BadMagic { .. }
    ));
}

#[test]
fn future_major_version_is_refused() {
    let mut b = valid_bytes();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(
        open_err(b),
        ErrorKind::UnsupportedMajor { major: 2, .. }
    ));
}

#[test]
fn newer_minor_version_recorded_in_the_header_is_accepted() {
    let mut b = with_header(&valid_bytes(), |h| {
        h.metadata.push((KEY_SPEC_MINOR.into(), Value::U16(7)));
    });
    b[10..12].copy_from_slice(&7u16.to_le_bytes());
    let c = Container::from_bytes(b, "t").unwrap();
    assert_eq!(c.preamble().minor, 7);
    c.validate().unwrap();
}

/// Attack: flip a bit of the preamble's minor version, which no checksum covers (§3.2).
#[test]
fn flipped_minor_version_bits_are_refused() {
    let good = valid_bytes();
    for bit in 0..16 {
        let mut b = good.clone();
        b[10 + bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(open_err(b), ErrorKind::MinorVersionMismatch { .. }),
            "bit {bit}"
        );
    }
    let mut recorded = with_header(&good, |h| {
        h.metadata.push((KEY_SPEC_MINOR.into(), Value::U16(3)));
    });
    recorded[10..12].copy_from_slice(&3u16.to_le_bytes());
    Container::from_bytes(recorded.clone(), "t").unwrap();
    recorded[10] ^= 0x04;
    assert!(matches!(
        open_err(recorded),
        ErrorKind::MinorVersionMismatch { minor: 7, .. }
    ));
}

/// Attack: a tensor with an empty name (SPEC.md §4.3 requires 1 to 4,096 bytes).
#[test]
fn empty_tensor_name_is_refused() {
    let b = with_header(&valid_bytes(), |h| h.tensors[1].name.clear());
    assert!(matches!(
        open_err(b),
        ErrorKind::EmptyTensorName { index: 1, .. }
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty-name.hct");
    let mut w = Writer::create(&path).unwrap();
    let err = w.add_tensor(desc("", &[1], "f32"), &[0u8; 4]).unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::EmptyTensorName { .. }),
        "{err}"
    );
    drop(w);
    assert!(!path.exists());
}

/// Attack: every single-bit flip of a small real file, anywhere in it, is refused by
/// open, validate or verify (SPEC.md §5.3 with the minor-version rule of §3.2).
#[test]
fn every_single_bit_flip_is_detected() {
    let good = valid_bytes();
    let mut missed = Vec::new();
    for byte in 0..good.len() {
        for bit in 0..8 {
            let mut b = good.clone();
            b[byte] ^= 1 << bit;
            let caught = match Container::from_bytes(b, "flipped.hct") {
                Err(_) => true,
                Ok(c) => c.validate().is_err() || c.verify().is_err(),
            };
            if !caught {
                missed.push((byte, bit));
            }
        }
    }
    assert!(
        missed.is_empty(),
        "undetected flips (byte, bit): {missed:?}"
    );
}

#[test]
fn unknown_required_feature_is_refused() {
    // Bit 0 (entropy-coded payloads, 1.1) is known; bit 1 is not.
    let mut b = valid_bytes();
    b[12] = 2;
    assert!(matches!(
        open_err(b),
        ErrorKind::UnknownRequiredFeatures { bits: 2 }
    ));
    // Bit 0 in a file with no entropy-coded tensor is refused too (SPEC.md §6.3).
    let mut b = valid_bytes();
    b[12] = 1;
    assert!(matches!(
        open_err(b),
        ErrorKind::EntropyFeatureMismatch { .. }
    ));
}

#[test]
fn header_length_past_end_of_file() {
    let mut b = valid_bytes();
    let len = b.len() as u64;
    b[24..32].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(open_err(b), ErrorKind::HeaderOutOfBounds { .. }));
    let mut b = valid_bytes();
    b[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(open_err(b), ErrorKind::HeaderTooLarge { .. }));
}

#[test]
fn header_checksum_mismatch() {
    let mut b = valid_bytes();
    let last = b.len() - 1;
    b[last] ^= 0x01;
    assert!(matches!(
        open_err(b),
        ErrorKind::HeaderChecksumMismatch { .. }
    ));
}

#[test]
fn trailing_data_after_header() {
    let mut b = valid_bytes();
    b.push(0);
    assert!(matches!(
        open_err(b),
        ErrorKind::TrailingData { count: 1, .. }
    ));
}

#[test]
fn non_utf8_tensor_name() {
    let b = valid_bytes();
    let mut header = header_of(&b).encode();
    let at = header.windows(5).position(|w| w == b"a.f32").unwrap();
    header[at] = 0xff;
    assert!(matches!(
        open_err(reassemble(&b, &header)),
        ErrorKind::InvalidUtf8 { .. }
    ));
}

#[test]
fn duplicate_tensor_name() {
    let b = with_header(&valid_bytes(), |h| h.tensors[1].name = "a.f32".into());
    match open_err(b) {
        ErrorKind::DuplicateTensorName { name, .. } => assert_eq!(name, "a.f32"),
        k => panic!("{k}"),
    }
}

#[test]
fn duplicate_metadata_key() {
    let b = with_header(&valid_bytes(), |h| {
        h.metadata.push(("k".into(), Value::U8(2)))
    });
    assert!(matches!(open_err(b), ErrorKind::DuplicateKey { .. }));
}

#[test]
fn too_many_dimensions() {
    let b = with_header(&valid_bytes(), |h| h.tensors[0].shape = vec![1; 9]);
    assert!(matches!(
        open_err(b),
        ErrorKind::TooManyDims {
            n_dims: 9,
            max: 8,
            ..
        }
    ));
}

#[test]
fn element_count_overflow() {
    let b = with_header(&valid_bytes(), |h| {
        h.tensors[0].shape = vec![1 << 32, 1 << 32]
    });
    assert!(matches!(
        open_err(b),
        ErrorKind::ElementCountOverflow { .. }
    ));
}

#[test]
fn misaligned_payload() {
    let b = with_header(&valid_bytes(), |h| h.tensors[1].offset += 8);
    assert!(matches!(open_err(b), ErrorKind::MisalignedPayload { .. }));
}

#[test]
fn payload_past_end_of_file() {
    let b = with_header(&valid_bytes(), |h| h.tensors[2].length = 1 << 40);
    assert!(matches!(open_err(b), ErrorKind::PayloadOutOfBounds { .. }));
    let b = with_header(&valid_bytes(), |h| h.tensors[2].offset = u64::MAX - 63);
    assert!(matches!(open_err(b), ErrorKind::PayloadOutOfBounds { .. }));
}

#[test]
fn overlapping_payloads() {
    let b = with_header(&valid_bytes(), |h| {
        h.tensors[1].offset = h.tensors[0].offset
    });
    match open_err(b) {
        ErrorKind::OverlappingPayloads {
            tensor, previous, ..
        } => assert_eq!((tensor.as_str(), previous.as_str()), ("b.f16", "a.f32")),
        k => panic!("{k}"),
    }
}

#[test]
fn hole_between_payloads() {
    let b = with_header(&valid_bytes(), |h| {
        h.tensors[0].length = 0;
    });
    assert!(matches!(open_err(b), ErrorKind::PayloadGap { .. }));
}

#[test]
fn unknown_codec_names_tensor_and_id() {
    let b = with_header(&valid_bytes(), |h| {
        h.tensors[1].codec = "int9_magic_v7".into()
    });
    let c = Container::from_bytes(b.clone(), "x.hct").expect("inspect can still list it");
    assert_eq!(c.tensors()[1].codec, "int9_magic_v7");
    let e = c.validate().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("b.f16") && msg.contains("int9_magic_v7") && msg.contains("x.hct"),
        "{msg}"
    );
    assert!(matches!(e.kind, ErrorKind::UnknownCodec { .. }));
    assert_eq!(e.category(), Category::Unsupported);
    assert!(matches!(
        c.decode_f32(&c.tensors()[1]).unwrap_err().kind,
        ErrorKind::UnknownCodec { .. }
    ));
}

#[test]
fn payload_length_wrong_for_codec_and_shape() {
    let b = with_header(&valid_bytes(), |h| h.tensors[1].shape = vec![4]);
    match validate_err(b) {
        ErrorKind::PayloadLengthMismatch {
            tensor,
            expected,
            actual,
            ..
        } => {
            assert_eq!((tensor.as_str(), expected, actual), ("b.f16", 8, 10))
        }
        k => panic!("{k}"),
    }
}

#[test]
fn verify_all_lists_every_damaged_tensor() {
    let mut b = valid_bytes();
    let c = Container::from_bytes(b.clone(), "t").unwrap();
    assert!(
        c.tensors().len() >= 3,
        "the fixture needs an undamaged tensor too"
    );
    assert!(c.verify_all().damaged.is_empty());
    let (first, last) = (&c.tensors()[0], c.tensors().last().unwrap());
    let expected_last = hex::encode(last.sha256);
    let names = [first.name.clone(), last.name.clone()];
    let (off_first, off_last) = (first.offset as usize, last.offset as usize);
    b[off_last] ^= 0x01;
    b[off_first + 1] ^= 0x40;
    let c = Container::from_bytes(b, "t").unwrap();
    let report = c.verify_all();
    assert_eq!(report.tensors, c.tensors().len());
    let damaged: Vec<&str> = report.damaged.iter().map(|d| d.tensor.as_str()).collect();
    assert_eq!(
        damaged,
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let d = &report.damaged[1];
    assert_eq!(d.expected, expected_last);
    assert_ne!(d.actual, d.expected);
    let payload = c.payload(c.tensors().last().unwrap()).unwrap();
    assert_eq!(d.actual, hex::encode(Sha256::digest(payload)));
    // `verify` still fails, naming the first in file order.
    match c.verify().unwrap_err().kind {
        ErrorKind::PayloadChecksumMismatch { tensor, .. } => assert_eq!(tensor, names[0]),
        k => panic!("{k}"),
    }
}

#[test]
fn payload_checksum_mismatch_names_tensor() {
    let mut b = valid_bytes();
    let c = Container::from_bytes(b.clone(), "t").unwrap();
    let off = c.tensor("b.f16").unwrap().offset as usize;
    b[off + 3] ^= 0x80;
    let c = Container::from_bytes(b, "t").unwrap();
    c.validate().unwrap();
    match c.verify().unwrap_err().kind {
        ErrorKind::PayloadChecksumMismatch { tensor, .. } => assert_eq!(tensor, "b.f16"),
        k => panic!("{k}"),
    }
}

/// SPEC.md §7.4.1: an int4 row whose last group is partial stores code 0 in the padding
/// positions; decoders ignore them, `validate` names the tensor, row and element.
#[test]
fn int4_padding_codes_must_be_zero() {
    let dir = tempfile::tempdir().unwrap();
    let codec = crate::codec::find("int4_g16_fp16_v1").unwrap();
    // Rows of 20 elements: one whole group of 16, then 4 real elements and 12 of padding.
    let xs: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
    let row_bytes = codec.row_bytes(20).unwrap() as usize;
    let mut payload = vec![0u8; 2 * row_bytes];
    for (src, dst) in xs.chunks(20).zip(payload.chunks_mut(row_bytes)) {
        codec.encode_row(src, dst).unwrap();
    }
    let write = |name: &str, payload: &[u8]| {
        let path = dir.path().join(name);
        let mut w = Writer::create(&path).unwrap();
        w.add_tensor(desc("w", &[2, 20], "int4_g16_fp16_v1"), payload)
            .unwrap();
        w.finish(vec![]).unwrap();
        std::fs::read(&path).unwrap()
    };
    let good = write("good.hct", &payload);
    Container::from_bytes(good, "good")
        .unwrap()
        .validate()
        .unwrap();

    // Row 1's last block (12 bytes: d, m, 8 code bytes): group position 4, the first
    // padding position (row element 16 + 4 = 20), is the low nibble of block byte 4 + 4.
    let last_block = 2 * row_bytes - 12;
    let mut bad = payload.clone();
    bad[last_block + 4 + 4] |= 0x03;
    let decoded_bad = {
        let mut out = [0f32; 20];
        codec.decode_row(&bad[row_bytes..], &mut out).unwrap();
        out
    };
    let mut decoded_good = [0f32; 20];
    codec
        .decode_row(&payload[row_bytes..], &mut decoded_good)
        .unwrap();
    assert_eq!(decoded_bad, decoded_good, "decoders ignore padding codes");
    let file = write("bad.hct", &bad);
    let c = Container::from_bytes(file, "bad").unwrap();
    let t_offset = c.tensors()[0].offset;
    match c.validate().unwrap_err().kind {
        ErrorKind::StoredRow {
            tensor,
            row,
            offset,
            source: crate::codec::CodecError::NonZeroPaddingCode { position, code, .. },
        } => {
            assert_eq!((tensor.as_str(), row, position, code), ("w", 1, 20, 3));
            assert_eq!(offset, t_offset + row_bytes as u64);
        }
        other => panic!("unexpected {other:?}"),
    }

    // Row 0, group position 15 (row element 31): the high nibble of block byte 4 + 7.
    let mut bad = payload.clone();
    bad[row_bytes - 12 + 4 + 7] |= 0x50;
    let c = Container::from_bytes(write("bad2.hct", &bad), "bad2").unwrap();
    assert!(matches!(
        c.validate().unwrap_err().kind,
        ErrorKind::StoredRow {
            row: 0,
            source: crate::codec::CodecError::NonZeroPaddingCode {
                position: 31,
                code: 5,
                ..
            },
            ..
        }
    ));
}

#[test]
fn nonzero_padding_is_refused() {
    let mut b = valid_bytes();
    let c = Container::from_bytes(b.clone(), "t").unwrap();
    let t = &c.tensors()[0];
    b[(t.offset + t.length) as usize] = 7;
    assert!(matches!(
        validate_err(b),
        ErrorKind::NonZeroPadding { byte: 7, .. }
    ));
}

#[test]
fn array_of_2_pow_60_entries_is_refused_before_allocation() {
    let b = valid_bytes();
    // Metadata with one u64 array, whose count we then patch to 2^60.
    let h = with_header(&b, |h| {
        h.metadata = vec![("huge".into(), Value::Array(Array::U64(vec![7])))]
    });
    let hdr = Preamble::parse(&h).unwrap();
    let mut header = h[hdr.header_offset as usize..].to_vec();
    // header: u64 count, key (8 + 4), u32 type=array, u32 elem type, u64 count
    let count_at = 8 + 8 + 4 + 4 + 4;
    assert_eq!(&header[count_at..count_at + 8], &1u64.to_le_bytes());
    header[count_at..count_at + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    match open_err(reassemble(&b, &header)) {
        ErrorKind::CountTooLarge { count, .. } => assert_eq!(count, 1 << 60),
        k => panic!("{k}"),
    }
}

#[test]
fn tensor_count_is_bounded_by_header_size() {
    let b = valid_bytes();
    let mut header = header_of(&b).encode();
    // metadata: count(8) + key "k"(8+1) + type(4) + u32(4) = 25 bytes, then the tensor count.
    header[25..33].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        open_err(reassemble(&b, &header)),
        ErrorKind::CountTooLarge { .. }
    ));
}

#[test]
fn deeply_nested_arrays_are_refused() {
    let mut a = Array::U8(vec![1]);
    for _ in 0..9 {
        a = Array::Array(vec![a]);
    }
    let b = with_header(&valid_bytes(), |h| {
        h.metadata = vec![("deep".into(), Value::Array(a))]
    });
    assert!(matches!(open_err(b), ErrorKind::NestingTooDeep { .. }));
}

#[test]
fn invalid_bool_and_value_type() {
    let b = with_header(&valid_bytes(), |h| {
        h.metadata = vec![("b".into(), Value::Bool(true))]
    });
    let pre = Preamble::parse(&b).unwrap();
    let mut header = b[pre.header_offset as usize..].to_vec();
    let at = 8 + 8 + 1 + 4; // count, key "b", type id → the bool byte
    header[at] = 2;
    assert!(matches!(
        open_err(reassemble(&b, &header)),
        ErrorKind::InvalidBool { byte: 2, .. }
    ));
    header[at] = 1;
    header[at - 4..at].copy_from_slice(&13u32.to_le_bytes());
    assert!(matches!(
        open_err(reassemble(&b, &header)),
        ErrorKind::InvalidValueType { type_id: 13, .. }
    ));
}

#[test]
fn truncated_header_field() {
    let b = valid_bytes();
    let header = header_of(&b).encode();
    assert!(matches!(
        open_err(reassemble(&b, &header[..header.len() - 5])),
        ErrorKind::HeaderTruncated { .. }
    ));
}

#[test]
fn writer_refuses_bad_tensors_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.hct");
    let mut w = Writer::create(&path).unwrap();
    let e = w
        .add_tensor(desc("x", &[3], "f32"), &[0u8; 11])
        .unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::PayloadLengthMismatch {
            expected: 12,
            actual: 11,
            ..
        }
    ));
    assert!(matches!(
        w.add_tensor(desc("y", &[3], "nope_v1"), &[])
            .unwrap_err()
            .kind,
        ErrorKind::UnknownCodec { .. }
    ));
    assert!(matches!(
        w.add_tensor(desc("z", &[3], "Bad-Id"), &[])
            .unwrap_err()
            .kind,
        ErrorKind::InvalidIdentifier { .. }
    ));
    drop(w);
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file removed"
    );
}

#[test]
fn flipping_any_header_or_preamble_byte_is_caught_at_open() {
    let b = valid_bytes();
    let pre = Preamble::parse(&b).unwrap();
    let header_range = pre.header_offset as usize..b.len();
    for i in (0..64).chain(header_range) {
        let mut m = b.clone();
        m[i] ^= 0x01;
        // Minor version bytes (10..12) and the checksum's own bytes are covered too: a
        // different minor is legitimately accepted, nothing else is.
        if (10..12).contains(&i) {
            continue;
        }
        assert!(
            Container::from_bytes(m, "t").is_err(),
            "flip at {i} accepted"
        );
    }
}
