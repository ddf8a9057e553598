//! Extension tensor types: HCT codecs carried byte for byte in a GGUF file, for a ggml that
//! registers them at run time (the patch in `compat-tests/plugin/`).
//!
//! ggml gives such a type a slot number that exists only inside one process (it depends on
//! registration order, and upstream keeps adding built-in types), so a file never stores it.
//! Instead the tensor-info type field holds [`EXT_TYPE_BASE`]` + k`, where `k` indexes the
//! string array [`KEY_EXT_TYPES`] of codec ids. A reader refuses such an id when the file
//! has no such array or `k` is past its end, and when it does not know the codec's block
//! geometry (the tensor's byte size could not be computed). Unpatched ggml and gguf-py refuse
//! the id as an unknown type, so an extension tensor is never misread as something else.

use std::collections::HashSet;

use crate::ggml_type::GgmlType;
use crate::value::{Array, Value};

/// Metadata key: array of strings, the codec id of each extension type used in the file.
pub const KEY_EXT_TYPES: &str = "general.ggml_ext_types";
/// Tensor type id of the extension type at index 0 of [`KEY_EXT_TYPES`]. Far above ggml's
/// built-in ids (43 in the pinned ggml), so upstream can add types for a long time.
pub const EXT_TYPE_BASE: u32 = 0x10000;

/// The ggml block geometry `(elements, bytes)` of an HCT codec that can be an extension type:
/// a codec of this build whose rows are fixed-size blocks ([`crate::codec::BlockLayout`]) and
/// whose layout is not a ggml layout (ggml types, and HCT encoders writing a ggml layout's
/// bytes, keep the built-in ggml type in every GGUF).
pub fn extension_block_geometry(codec: &str) -> Option<(u32, u32)> {
    crate::codec::find(codec).and_then(extension_layout)
}

/// Every codec id that can be an extension type, in registry order.
pub fn extension_codecs() -> impl Iterator<Item = &'static str> {
    crate::codec::all()
        .into_iter()
        .filter(|c| extension_layout(*c).is_some())
        .map(|c| c.id())
}

fn extension_layout(codec: &dyn crate::codec::Codec) -> Option<(u32, u32)> {
    if GgmlType::from_hct_codec_id(codec.id()).is_some() {
        return None;
    }
    codec
        .block_layout()
        .filter(|l| !l.is_ggml_layout())
        .map(|l| (l.elements, l.bytes))
}

/// One extension type as a file uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionType {
    /// Position of `codec` in the file's [`KEY_EXT_TYPES`] array.
    pub index: u32,
    /// The HCT codec id (`int4_opt_v1`).
    pub codec: String,
    pub block_size: u32,
    pub type_size: u32,
}

impl ExtensionType {
    /// The extension type at `index` of the table, or `None` if `codec` has no block layout
    /// or the index cannot be encoded in a u32 type id.
    pub fn new(index: u32, codec: &str) -> Option<ExtensionType> {
        index.checked_add(EXT_TYPE_BASE)?;
        let (block_size, type_size) = extension_block_geometry(codec)?;
        Some(ExtensionType {
            index,
            codec: codec.to_string(),
            block_size,
            type_size,
        })
    }

    /// The type id stored in the tensor info.
    pub fn id(&self) -> u32 {
        EXT_TYPE_BASE + self.index
    }
}

/// A tensor's type in a GGUF file: one of ggml's built-in types, or an extension type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorType {
    Ggml(GgmlType),
    Extension(ExtensionType),
}

impl From<GgmlType> for TensorType {
    fn from(t: GgmlType) -> TensorType {
        TensorType::Ggml(t)
    }
}

impl TensorType {
    /// The id stored in the tensor info.
    pub fn id(&self) -> u32 {
        match self {
            TensorType::Ggml(t) => t.id,
            TensorType::Extension(e) => e.id(),
        }
    }

    /// ggml's name of a built-in type, the codec id of an extension type.
    pub fn name(&self) -> &str {
        match self {
            TensorType::Ggml(t) => t.name,
            TensorType::Extension(e) => &e.codec,
        }
    }

    pub fn block_size(&self) -> u32 {
        match self {
            TensorType::Ggml(t) => t.block_size,
            TensorType::Extension(e) => e.block_size,
        }
    }

    pub fn type_size(&self) -> u32 {
        match self {
            TensorType::Ggml(t) => t.type_size,
            TensorType::Extension(e) => e.type_size,
        }
    }

    /// Bytes of one row, or `None` if the row is not whole blocks or the size overflows.
    pub fn row_bytes(&self, row_len: u64) -> Option<u64> {
        let block = self.block_size() as u64;
        if row_len % block != 0 {
            return None;
        }
        (row_len / block).checked_mul(self.type_size() as u64)
    }

    /// The HCT codec id whose payload these bytes are.
    pub fn hct_codec_id(&self) -> String {
        match self {
            TensorType::Ggml(t) => t.hct_codec_id(),
            TensorType::Extension(e) => e.codec.clone(),
        }
    }

    pub fn as_ggml(&self) -> Option<&GgmlType> {
        match self {
            TensorType::Ggml(t) => Some(t),
            TensorType::Extension(_) => None,
        }
    }
}

/// The metadata entry declaring `codecs` as extension types 0, 1, … in that order.
pub fn extension_table_entry(codecs: &[&str]) -> (String, Value) {
    (
        KEY_EXT_TYPES.to_string(),
        Value::Array(Array::String(
            codecs.iter().map(|c| c.as_bytes().to_vec()).collect(),
        )),
    )
}

/// Why a [`KEY_EXT_TYPES`] value is not a usable table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TableError {
    NotStringArray,
    NotUtf8(usize),
    Duplicate(String),
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::NotStringArray => write!(f, "must be an array of strings"),
            TableError::NotUtf8(i) => write!(f, "entry {i} is not valid UTF-8"),
            TableError::Duplicate(c) => write!(f, "names '{c}' twice"),
        }
    }
}

/// The codec ids a [`KEY_EXT_TYPES`] value declares, in order (empty if the key is absent).
pub(crate) fn extension_table(metadata: &[(String, Value)]) -> Result<Vec<String>, TableError> {
    let Some(value) = crate::value::lookup(metadata, KEY_EXT_TYPES) else {
        return Ok(Vec::new());
    };
    let Value::Array(Array::String(entries)) = value else {
        return Err(TableError::NotStringArray);
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, raw) in entries.iter().enumerate() {
        let codec = std::str::from_utf8(raw).map_err(|_| TableError::NotUtf8(i))?;
        if !seen.insert(codec) {
            return Err(TableError::Duplicate(codec.to_string()));
        }
        out.push(codec.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_geometry() {
        let e = ExtensionType::new(2, "int4_opt_v1").unwrap();
        assert_eq!((e.id(), e.block_size, e.type_size), (0x10002, 16, 12));
        let t = TensorType::Extension(e);
        assert_eq!(t.row_bytes(576), Some(36 * 12));
        assert_eq!(t.row_bytes(577), None);
        assert_eq!(t.hct_codec_id(), "int4_opt_v1");
        assert!(
            ExtensionType::new(0, "ggml_q4_1").is_none(),
            "not an extension"
        );
        assert!(ExtensionType::new(u32::MAX - 0xFFFF, "int4_opt_v1").is_none());
        assert!(ExtensionType::new(u32::MAX - 0x10000, "int4_opt_v1").is_some());
    }

    #[test]
    fn table_parsing_refuses_what_is_ambiguous() {
        let ok = vec![extension_table_entry(&["int4_opt_v1", "int4_g32_fp16_v1"])];
        assert_eq!(
            extension_table(&ok).unwrap(),
            vec!["int4_opt_v1", "int4_g32_fp16_v1"]
        );
        assert_eq!(extension_table(&[]).unwrap(), Vec::<String>::new());
        let dup = vec![extension_table_entry(&["int4_opt_v1", "int4_opt_v1"])];
        assert_eq!(
            extension_table(&dup),
            Err(TableError::Duplicate("int4_opt_v1".into()))
        );
        let wrong = vec![(KEY_EXT_TYPES.to_string(), Value::string("int4_opt_v1"))];
        assert_eq!(extension_table(&wrong), Err(TableError::NotStringArray));
        let bad_utf8 = vec![(
            KEY_EXT_TYPES.to_string(),
            Value::Array(Array::String(vec![b"ok".to_vec(), vec![0xFF]])),
        )];
        assert_eq!(extension_table(&bad_utf8), Err(TableError::NotUtf8(1)));
    }
}
