//! Extension tensor types (plugin GGUFs): what reads back, and every way such a file or
//! request can be wrong. Hostile files are valid files written by our writer with one field
//! changed in place.

use hct_format::container::Category;
use hct_format::ggml_type::GgmlType;
use hct_format::gguf::extension::extension_table_entry;
use hct_format::gguf::{
    ExtensionType, GgufError, GgufFile, GgufTensorInfo, GgufWriter, TensorType, EXT_TYPE_BASE,
    KEY_EXT_TYPES,
};
use hct_format::value::{Array, Value};

fn ext(index: u32, codec: &str) -> TensorType {
    TensorType::Extension(ExtensionType::new(index, codec).unwrap())
}

/// A plugin-style file: an f32 norm, an int4_opt_v1 matrix [3 rows of 32] and an
/// int4_g32_fp16_v1 matrix [2 rows of 64], with the table [int4_opt_v1, int4_g32_fp16_v1].
fn plugin_file() -> (Vec<u8>, Vec<Vec<u8>>) {
    let tensors = vec![
        GgufTensorInfo {
            name: "norm".into(),
            dims: vec![32],
            tensor_type: GgmlType::from_name("f32").unwrap().into(),
        },
        GgufTensorInfo {
            name: "a".into(),
            dims: vec![32, 3],
            tensor_type: ext(0, "int4_opt_v1"),
        },
        GgufTensorInfo {
            name: "b".into(),
            dims: vec![64, 2],
            tensor_type: ext(1, "int4_g32_fp16_v1"),
        },
    ];
    let data: Vec<Vec<u8>> = vec![
        (0..128).map(|i| i as u8).collect(),
        (0..3 * 2 * 12).map(|i| (i * 7) as u8).collect(),
        (0..2 * 2 * 20).map(|i| (i * 13) as u8).collect(),
    ];
    let meta = vec![
        ("general.architecture".to_string(), Value::string("llama")),
        extension_table_entry(&["int4_opt_v1", "int4_g32_fp16_v1"]),
    ];
    (write(&meta, &tensors, &data).unwrap(), data)
}

fn write(
    meta: &[(String, Value)],
    tensors: &[GgufTensorInfo],
    data: &[Vec<u8>],
) -> Result<Vec<u8>, GgufError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.gguf");
    let mut w = GgufWriter::create(&p, 3, meta, tensors)?;
    for (i, d) in data.iter().enumerate() {
        w.write_tensor_data(i, d)?;
    }
    w.finish()?;
    Ok(std::fs::read(p).unwrap())
}

fn refuse(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("hostile file accepted"),
        Err(e) => e,
    }
}

/// Offset of tensor `i`'s type field.
fn type_field(bytes: &[u8], i: usize) -> usize {
    let f = GgufFile::from_bytes(bytes.to_vec()).unwrap();
    let t = &f.tensors()[i];
    t.header_offset as usize + 8 + t.info.name.len() + 4 + 8 * t.info.dims.len()
}

fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn extension_tensors_read_back_with_their_codec_and_bytes() {
    let (bytes, data) = plugin_file();
    let f = GgufFile::from_bytes(bytes).unwrap();
    let t = f.tensors();
    assert_eq!(t[1].info.tensor_type, ext(0, "int4_opt_v1"));
    assert_eq!(t[1].info.tensor_type.id(), EXT_TYPE_BASE);
    assert_eq!(t[2].info.tensor_type.id(), EXT_TYPE_BASE + 1);
    assert_eq!(t[2].info.tensor_type.hct_codec_id(), "int4_g32_fp16_v1");
    assert_eq!((t[1].size, t[2].size), (72, 80));
    for (i, d) in data.iter().enumerate() {
        assert_eq!(f.tensor_data(i), &d[..]);
    }
    assert!(f.is_canonical_layout());
}

#[test]
fn an_extension_id_without_a_table_is_refused() {
    let (bytes, _) = plugin_file();
    // Rename the table's key so the file no longer declares it (same length).
    let mut b = bytes.clone();
    let at = find(&b, KEY_EXT_TYPES.as_bytes());
    b[at..at + 7].copy_from_slice(b"genxxxx");
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::UndeclaredExtensionType { declared: 0, index: 0, ref tensor, .. } if tensor == "a"
        ),
        "{err}"
    );
    assert_eq!(err.category(), Category::Invalid);

    // An index past the table's end.
    let mut b = bytes;
    let at = type_field(&b, 2);
    b[at..at + 4].copy_from_slice(&(EXT_TYPE_BASE + 2).to_le_bytes());
    let err = refuse(b);
    assert!(
        matches!(
            err,
            GgufError::UndeclaredExtensionType {
                declared: 2,
                index: 2,
                ..
            }
        ),
        "{err}"
    );
    for id in [EXT_TYPE_BASE + 0x7FFF, u32::MAX] {
        let (mut b, _) = plugin_file();
        let at = type_field(&b, 1);
        b[at..at + 4].copy_from_slice(&id.to_le_bytes());
        assert!(matches!(
            refuse(b),
            GgufError::UndeclaredExtensionType { .. }
        ));
    }
}

#[test]
fn a_runtime_slot_number_is_never_read_as_an_extension() {
    // ggml's extension slots follow its built-in ids (43 onwards in the patched ggml): a file
    // holding one is refused like any unknown type, table or not.
    for id in [43u32, 50, EXT_TYPE_BASE - 1] {
        let (mut b, _) = plugin_file();
        let at = type_field(&b, 1);
        b[at..at + 4].copy_from_slice(&id.to_le_bytes());
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::UnknownTensorType { type_id, .. } if type_id == id),
            "{err}"
        );
    }
}

#[test]
fn an_unknown_codec_in_the_table_is_refused_when_used() {
    let (bytes, _) = plugin_file();
    let at = find(&bytes, b"int4_opt_v1");
    let mut b = bytes;
    b[at..at + 11].copy_from_slice(b"int9_opt_v1");
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::UnknownExtensionType { ref codec, ref tensor, .. } if codec == "int9_opt_v1" && tensor == "a"),
        "{err}"
    );
    assert_eq!(err.category(), Category::Unsupported);
    assert!(err.to_string().contains("int9_opt_v1"));

    // Unused unknown entries are harmless.
    let tensors = [GgufTensorInfo {
        name: "n".into(),
        dims: vec![4],
        tensor_type: GgmlType::from_name("f32").unwrap().into(),
    }];
    let meta = [extension_table_entry(&["hct_v9"])];
    let b = write(&meta, &tensors, &[vec![0; 16]]).unwrap();
    assert!(GgufFile::from_bytes(b).is_ok());
}

#[test]
fn a_malformed_table_is_refused() {
    let tensors = [GgufTensorInfo {
        name: "n".into(),
        dims: vec![4],
        tensor_type: GgmlType::from_name("f32").unwrap().into(),
    }];
    let data = [vec![0u8; 16]];
    // The writer will not produce duplicate entries: indexes would be ambiguous.
    let dup = [extension_table_entry(&["int4_opt_v1", "int4_opt_v1"])];
    let err = write(&dup, &tensors, &data).unwrap_err();
    assert!(matches!(err, GgufError::InvalidWriterInput { .. }), "{err}");

    // A plain string, or an array of anything but strings, is not a table.
    for value in [
        Value::string("int4_opt_v1"),
        Value::Array(Array::U32(vec![1])),
    ] {
        let b = write_unchecked_table(value, &tensors, &data);
        let err = refuse(b);
        assert!(
            matches!(err, GgufError::InvalidExtensionTable { ref reason, .. } if reason.contains("array of strings")),
            "{err}"
        );
    }
}

/// A file whose extension table is `value`, which our writer refuses to write: written with
/// the table under another key of the same length, then renamed in place.
fn write_unchecked_table(value: Value, tensors: &[GgufTensorInfo], data: &[Vec<u8>]) -> Vec<u8> {
    let decoy = "general.ggml_ext_typez";
    assert_eq!(decoy.len(), KEY_EXT_TYPES.len());
    let mut b = write(&[(decoy.to_string(), value)], tensors, data).unwrap();
    let at = find(&b, decoy.as_bytes());
    b[at..at + decoy.len()].copy_from_slice(KEY_EXT_TYPES.as_bytes());
    b
}

#[test]
fn duplicate_table_entries_in_a_file_are_refused() {
    // Our writer refuses to produce it: rewrite the second entry (16 bytes) into a copy of
    // the first (11 bytes) and close the gap, which keeps the rest of the file intact.
    let (bytes, _) = plugin_file();
    let at = find(&bytes, b"int4_g32_fp16_v1");
    let mut b = bytes;
    let len_at = at - 8;
    b[len_at..len_at + 8].copy_from_slice(&11u64.to_le_bytes());
    b[at..at + 11].copy_from_slice(b"int4_opt_v1");
    b.drain(at + 11..at + 16);
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::InvalidExtensionTable { ref reason, .. } if reason.contains("twice")),
        "{err}"
    );
}

#[test]
fn extension_rows_must_be_whole_blocks_and_data_must_fit() {
    let (bytes, _) = plugin_file();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    let t = &f.tensors()[1];
    let dims_at = t.header_offset as usize + 8 + t.info.name.len() + 4;
    let mut b = bytes.clone();
    b[dims_at..dims_at + 8].copy_from_slice(&24u64.to_le_bytes());
    let err = refuse(b);
    assert!(
        matches!(err, GgufError::RowNotWholeBlocks { row_len: 24, block_size: 16, ref type_name, .. } if type_name == "int4_opt_v1"),
        "{err}"
    );
    // More rows than the data holds.
    let mut b = bytes;
    b[dims_at + 8..dims_at + 16].copy_from_slice(&1_000_000u64.to_le_bytes());
    assert!(matches!(refuse(b), GgufError::TensorDataPastEnd { .. }));
}

#[test]
fn the_writer_refuses_extension_types_the_file_would_not_declare() {
    let tensors = |t: TensorType| {
        vec![GgufTensorInfo {
            name: "a".into(),
            dims: vec![32],
            tensor_type: t,
        }]
    };
    let data = [vec![0u8; 24]];
    // No table.
    let err = write(&[], &tensors(ext(0, "int4_opt_v1")), &data).unwrap_err();
    assert!(
        matches!(err, GgufError::InvalidWriterInput { ref reason, .. } if reason.contains("not entry 0")),
        "{err}"
    );
    // Table names another codec at that index.
    let meta = [extension_table_entry(&["int4_g16_fp16_v1"])];
    let err = write(&meta, &tensors(ext(0, "int4_opt_v1")), &data).unwrap_err();
    assert!(matches!(err, GgufError::InvalidWriterInput { .. }), "{err}");
    // A geometry that is not the codec's.
    let mut wrong = ExtensionType::new(0, "int4_opt_v1").unwrap();
    wrong.type_size = 13;
    let meta = [extension_table_entry(&["int4_opt_v1"])];
    let err = write(
        &meta,
        &tensors(TensorType::Extension(wrong)),
        &[vec![0u8; 26]],
    )
    .unwrap_err();
    assert!(
        matches!(err, GgufError::InvalidWriterInput { ref reason, .. } if reason.contains("not a known layout")),
        "{err}"
    );
    // And the right one is fine.
    assert!(write(&meta, &tensors(ext(0, "int4_opt_v1")), &data).is_ok());
}
