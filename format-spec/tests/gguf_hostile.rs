//! Hostile and broken GGUF files: each is refused with its own error variant, before any
//! allocation sized by the bad field, and without a panic. Most cases are one field of a
//! real gguf-py file (tests/data/gguf/all_types.gguf) changed in place.

use std::path::{Path, PathBuf};

use hct_format::gguf::{GgufError, GgufFile, MAX_ALIGNMENT, MAX_ARRAY_NESTING};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gguf")
        .join(name)
}

fn base() -> Vec<u8> {
    std::fs::read(fixture("all_types.gguf")).unwrap()
}

fn refuse(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("hostile file accepted"),
        Err(e) => e,
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Offset of key `key`'s length field in `bytes`.
fn key_at(bytes: &[u8], key: &str) -> usize {
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend(key.as_bytes());
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("key {key} not in fixture"))
}

/// Offset of the value (after the type id) of a scalar key.
fn value_at(bytes: &[u8], key: &str) -> usize {
    key_at(bytes, key) + 8 + key.len() + 4
}

/// Field offsets of tensor `i`'s header entry.
struct TensorFields {
    name: usize,
    n_dims: usize,
    dims: usize,
    type_id: usize,
    offset: usize,
}

fn tensor_fields(bytes: &[u8], i: usize) -> TensorFields {
    let f = GgufFile::from_bytes(bytes.to_vec()).unwrap();
    let t = &f.tensors()[i];
    let h = t.header_offset as usize;
    let n_dims = h + 8 + t.info.name.len();
    let dims = n_dims + 4;
    let type_id = dims + 8 * t.info.dims.len();
    TensorFields {
        name: h + 8,
        n_dims,
        dims,
        type_id,
        offset: type_id + 4,
    }
}

fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(version.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend(n_kv.to_le_bytes());
    b
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.gguf");
    std::fs::write(&p, b"").unwrap();
    let err = GgufFile::open(&p).unwrap_err();
    assert!(matches!(err, GgufError::EmptyFile { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&p.display().to_string()),
        "{err}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = GgufFile::open("/nonexistent/model.gguf").unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err}");
}

#[test]
fn truncated_header() {
    let b = base();
    for len in 1..24 {
        let err = refuse(b[..len].to_vec());
        assert!(
            matches!(err, GgufError::Truncated { .. }),
            "len {len}: {err}"
        );
    }
    let err = refuse(b[..10].to_vec());
    assert!(
        matches!(err, GgufError::Truncated { offset: 8, needed: 8, remaining: 2, ref context, .. } if context == "tensor count"),
        "{err}"
    );
}

#[test]
fn every_truncation_before_the_last_tensor_ends_is_refused() {
    let b = base();
    let f = GgufFile::from_bytes(b.clone()).unwrap();
    let last = f.tensors().iter().map(|t| t.offset + t.size).max().unwrap();
    let end = (f.data_offset() + last) as usize;
    for len in 0..end {
        assert!(
            GgufFile::from_bytes(b[..len].to_vec()).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
    // Only the last tensor's padding may be missing: readers never need it.
    assert!(GgufFile::from_bytes(b[..end].to_vec()).is_ok());
}

#[test]
fn wrong_magic() {
    let mut b = base();
    b[..4].copy_from_slice(b"GGML");
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::BadMagic { found, .. } if &found == b"GGML"),
        "{err}"
    );
}

#[test]
fn version_1_and_unknown_versions() {
    for v in [0u32, 1, 4, 0xFFFF] {
        let mut b = base();
        put_u32(&mut b, 4, v);
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::UnsupportedVersion { version, .. } if version == v),
            "{err}"
        );
    }
}

#[test]
fn big_endian_file_from_gguf_py() {
    let err = GgufFile::open(fixture("big_endian.gguf")).unwrap_err();
    assert!(
        matches!(err, GgufError::BigEndian { version: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("big-endian"), "{err}");
    let mut b = base();
    b[4..8].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(refuse(b), GgufError::BigEndian { version: 2, .. }));
}

#[test]
fn absurd_tensor_count() {
    for count in [1u64 << 60, u64::MAX, 1 << 20] {
        let mut b = base();
        put_u64(&mut b, 8, count);
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::CountTooLarge { count: c, offset: 8, .. } if c == count),
            "{err}"
        );
    }
}

#[test]
fn absurd_kv_count() {
    for count in [1u64 << 60, u64::MAX] {
        let mut b = base();
        put_u64(&mut b, 16, count);
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::CountTooLarge { count: c, offset: 16, .. } if c == count),
            "{err}"
        );
    }
}

#[test]
fn absurd_array_count() {
    let mut b = base();
    let at = value_at(&b, "tokenizer.ggml.tokens") + 4;
    put_u64(&mut b, at, 1 << 60);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::CountTooLarge { count, .. } if count == 1 << 60),
        "{err}"
    );
}

#[test]
fn string_length_past_eof() {
    let mut b = base();
    let at = value_at(&b, "test.string");
    put_u64(&mut b, at, 1 << 62);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::StringPastEnd { len, .. } if len == 1 << 62),
        "{err}"
    );

    let mut b = base();
    let at = key_at(&b, "test.u8");
    put_u64(&mut b, at, u64::MAX);
    assert!(matches!(refuse(b), GgufError::StringPastEnd { .. }));

    let mut b = base();
    let at = tensor_fields(&b, 0).name - 8;
    put_u64(&mut b, at, 1 << 40);
    assert!(matches!(refuse(b), GgufError::StringPastEnd { .. }));
}

#[test]
fn unknown_value_type() {
    let mut b = base();
    let at = value_at(&b, "test.u8") - 4;
    put_u32(&mut b, at, 13);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::InvalidValueType { type_id: 13, ref key, .. } if key == "test.u8"),
        "{err}"
    );
    // An array's element type too.
    let mut b = base();
    let at = value_at(&b, "test.arr.u16");
    put_u32(&mut b, at, 0xFFFF_FFFF);
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::InvalidValueType {
                type_id: 0xFFFF_FFFF,
                ..
            }
        ),
        "{err}"
    );
}

/// One key whose value is `levels` arrays nested in one another (innermost empty u8).
fn nested_arrays(levels: usize) -> Vec<u8> {
    let mut b = header(3, 0, 1);
    b.extend(4u64.to_le_bytes());
    b.extend(b"deep");
    b.extend(9u32.to_le_bytes());
    for _ in 1..levels {
        b.extend(9u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
    }
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b
}

#[test]
fn nesting_too_deep() {
    let ok = MAX_ARRAY_NESTING as usize;
    assert!(GgufFile::from_bytes(nested_arrays(ok)).is_ok());
    let err = refuse(nested_arrays(ok + 1));
    assert!(
        matches!(err, GgufError::NestingTooDeep { max_depth, ref key, .. } if max_depth == MAX_ARRAY_NESTING && key == "deep"),
        "{err}"
    );
    // A million levels: refused at level 9, no stack overflow.
    assert!(matches!(
        refuse(nested_arrays(1_000_000)),
        GgufError::NestingTooDeep { .. }
    ));
}

#[test]
fn invalid_bool() {
    let mut b = base();
    let at = value_at(&b, "test.bool_true");
    b[at] = 2;
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::InvalidBool { byte: 2, offset, ref key, .. } if offset == at as u64 && key == "test.bool_true"),
        "{err}"
    );
}

#[test]
fn unknown_tensor_type_id() {
    for id in [43u32, 1000, 0xFFFF] {
        let mut b = base();
        let at = tensor_fields(&b, 0).type_id;
        put_u32(&mut b, at, id);
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::UnknownTensorType { type_id, .. } if type_id == id),
            "{err}"
        );
    }
}

#[test]
fn retired_tensor_type_id_is_named() {
    let mut b = base();
    let fields = tensor_fields(&b, 0);
    put_u32(&mut b, fields.type_id, 31);
    let err = refuse(b);
    let header_offset = fields.name - 8;
    assert!(
        matches!(
            err,
            GgufError::RetiredTensorType {
                type_id: 31,
                type_name: "q4_0_4_4",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "<memory>: tensor 'token_embd.weight' at header offset {header_offset}: \
             type id 31 is q4_0_4_4, which ggml removed from GGUF files"
        )
    );
    for (id, name) in hct_format::ggml_type::RETIRED_GGML_TYPES {
        let mut b = base();
        put_u32(&mut b, fields.type_id, *id);
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::RetiredTensorType { type_name, .. } if type_name == *name),
            "{err}"
        );
    }
}

#[test]
fn ne_product_overflow() {
    // blk.0.attn_k.weight is q4_0 [32, 3, 2].
    let mut b = base();
    let f = tensor_fields(&b, 2);
    put_u64(&mut b, f.dims, 1 << 32);
    put_u64(&mut b, f.dims + 8, 1 << 31);
    put_u64(&mut b, f.dims + 16, 2);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::ElementCountOverflow { ref dims, .. } if dims == &[1 << 32, 1 << 31, 2]),
        "{err}"
    );
    // A single ne beyond int64 (ggml reads it as negative).
    let mut b = base();
    put_u64(&mut b, f.dims + 8, 1 << 63);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::DimOutOfRange { dim: 1, .. }),
        "{err}"
    );
}

#[test]
fn empty_tensor_with_huge_other_dims_is_empty_not_an_overflow() {
    // Found by cargo-fuzz: ne = [0, 2^40, 2^40, 2^40] has no elements (ggml accepts it),
    // but the product of ne[1..] overflows u64 if it is ever formed.
    let mut b = header(3, 1, 0);
    b.extend(1u64.to_le_bytes());
    b.push(b'e');
    b.extend(4u32.to_le_bytes());
    for d in [0u64, 1 << 40, 1 << 40, 1 << 40] {
        b.extend(d.to_le_bytes());
    }
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.resize(96, 0);
    let f = GgufFile::from_bytes(b).unwrap();
    assert_eq!(f.tensors()[0].size, 0);
    assert_eq!(f.tensor_data(0), &[] as &[u8]);
}

#[test]
fn ne0_not_a_multiple_of_block_size() {
    // token_embd.weight is q8_0 [64, 8].
    let mut b = base();
    let at = tensor_fields(&b, 0).dims;
    put_u64(&mut b, at, 48);
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::RowNotWholeBlocks {
                row_len: 48,
                block_size: 32,
                ref type_name,
                ..
            } if type_name == "q8_0"
        ),
        "{err}"
    );
}

#[test]
fn too_many_dims() {
    let mut b = base();
    let at = tensor_fields(&b, 0).n_dims;
    put_u32(&mut b, at, 5);
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::TooManyDims {
                n_dims: 5,
                max: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tensor_data_past_eof() {
    let b = base();
    let f = GgufFile::from_bytes(b.clone()).unwrap();
    let last = f.tensors().last().unwrap();
    let end = (f.data_offset() + last.offset + last.size) as usize;
    let err = refuse(b[..end - 1].to_vec());
    assert!(
        matches!(err, GgufError::TensorDataPastEnd { ref tensor, .. } if tensor == "a.4d.tensor"),
        "{err}"
    );
    // Offsets far away, including one where offset + size overflows u64.
    for offset in [1u64 << 40, !31] {
        let mut b = base();
        let at = tensor_fields(&b, 1).offset;
        put_u64(&mut b, at, offset);
        let err = refuse(b);
        assert!(matches!(err, GgufError::TensorDataPastEnd { .. }), "{err}");
    }
}

#[test]
fn overlapping_tensors() {
    // token_embd.weight is [0, 544); move blk.0.attn_q.weight (160 bytes) into it.
    let mut b = base();
    let at = tensor_fields(&b, 1).offset;
    put_u64(&mut b, at, 512);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::OverlappingTensors { ref first, ref second, .. }
            if first == "token_embd.weight" && second == "blk.0.attn_q.weight"),
        "{err}"
    );
    // Same start.
    let mut b = base();
    put_u64(&mut b, at, 0);
    assert!(matches!(refuse(b), GgufError::OverlappingTensors { .. }));
}

#[test]
fn misaligned_tensor_offset() {
    let mut b = base();
    let at = tensor_fields(&b, 1).offset;
    put_u64(&mut b, at, 545);
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::MisalignedTensorOffset {
                data_offset: 545,
                alignment: 32,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn duplicate_tensor_name() {
    let mut b = base();
    let at = tensor_fields(&b, 2).name;
    b[at..at + 19].copy_from_slice(b"blk.0.attn_q.weight");
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::DuplicateTensorName { ref tensor, .. } if tensor == "blk.0.attn_q.weight"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_tensor_name() {
    let mut b = base();
    let at = tensor_fields(&b, 3).name;
    b[at] = 0xC0;
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::InvalidUtf8TensorName { index: 3, .. }),
        "{err}"
    );
}

#[test]
fn duplicate_key() {
    let mut b = base();
    let at = key_at(&b, "test.arr.i16") + 8;
    b[at..at + 12].copy_from_slice(b"test.arr.u16");
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::DuplicateKey { ref key, offset, .. } if key == "test.arr.u16" && offset == (at - 8) as u64),
        "{err}"
    );
}

#[test]
fn invalid_utf8_key() {
    let mut b = base();
    let at = key_at(&b, "test.u8") + 8;
    b[at] = 0xFF;
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::InvalidUtf8Key { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn alignment_not_a_power_of_two() {
    let mut b = std::fs::read(fixture("custom_alignment.gguf")).unwrap();
    let at = value_at(&b, "general.alignment");
    put_u32(&mut b, at, 48);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::AlignmentNotPowerOfTwo { alignment: 48, .. }),
        "{err}"
    );
}

/// Deterministic byte mutations of a real file: whatever the outcome, no panic, and an
/// accepted file hands out only in-bounds tensor data.
#[test]
fn mutated_files_never_panic() {
    let b = base();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let mut m = b.clone();
        // Mutate the header mostly: that is where the parser's decisions are.
        let span = if next() % 4 == 0 {
            m.len()
        } else {
            2048.min(m.len())
        };
        for _ in 0..1 + next() % 4 {
            let at = (next() % span as u64) as usize;
            m[at] = match next() % 4 {
                0 => 0,
                1 => 0xFF,
                _ => next() as u8,
            };
        }
        match GgufFile::from_bytes(m) {
            Ok(f) => {
                accepted += 1;
                for i in 0..f.tensors().len() {
                    assert_eq!(f.tensor_data(i).len() as u64, f.tensors()[i].size);
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
}

/// Attack: a 57-byte file asks for 2^31-byte alignment, so a converter pads its output to
/// gigabytes. Alignments above `MAX_ALIGNMENT` are refused, naming key and offset.
#[test]
fn huge_alignment_is_refused() {
    let mut b = header(3, 0, 1);
    b.extend((KEY.len() as u64).to_le_bytes());
    b.extend(KEY.as_bytes());
    b.extend(4u32.to_le_bytes()); // u32
    b.extend((1u32 << 31).to_le_bytes());
    assert_eq!(b.len(), 57);
    let err = refuse(b.clone());
    assert!(
        matches!(
            err,
            GgufError::AlignmentTooLarge {
                alignment: 0x8000_0000,
                max: MAX_ALIGNMENT,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("general.alignment"), "{err}");
    // The largest accepted value still opens.
    let at = b.len() - 4;
    b[at..].copy_from_slice(&MAX_ALIGNMENT.to_le_bytes());
    b.resize(MAX_ALIGNMENT as usize, 0);
    GgufFile::from_bytes(b).unwrap();
}
const KEY: &str = "general.alignment";

/// Attack: a tensor name with an interior NUL, which ggml (a C string) would read as a
/// shorter name than every Rust or Python reader does.
#[test]
fn tensor_name_with_interior_nul_is_refused() {
    let mut b = base();
    let f = tensor_fields(&b, 0);
    b[f.name] = 0;
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::NulInTensorName {
                index: 0,
                at: 0,
                ..
            }
        ),
        "{err}"
    );
}
