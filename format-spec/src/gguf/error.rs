//! Every way a GGUF file (or a request to write one) can be wrong, one variant each.
//!
//! Messages start with the file's path and, where there is one, name the key or tensor and
//! the absolute byte offset of the offending field, so a user can find it with a hex dump.

use std::path::PathBuf;

use crate::value::ValueType;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: file is empty, not a GGUF file")]
    EmptyFile { path: PathBuf },

    #[error(
        "{path}: {context} at offset {offset}: needs {needed} bytes but the file ends after {remaining}"
    )]
    Truncated {
        path: PathBuf,
        context: String,
        offset: u64,
        needed: u64,
        remaining: u64,
    },

    #[error("{path}: magic is {found:02x?}, expected \"GGUF\" (47 47 55 46): not a GGUF file")]
    BadMagic { path: PathBuf, found: [u8; 4] },

    #[error(
        "{path}: big-endian GGUF (version {version} byte-swapped); only little-endian files are supported"
    )]
    BigEndian { path: PathBuf, version: u32 },

    #[error("{path}: GGUF version {version} is not supported (only versions 2 and 3; version 1 was retired by ggml)")]
    UnsupportedVersion { path: PathBuf, version: u32 },

    #[error(
        "{path}: {context} at offset {offset}: count {count} is impossible, at most {max} fit in the bytes that remain"
    )]
    CountTooLarge {
        path: PathBuf,
        context: String,
        offset: u64,
        count: u64,
        max: u64,
    },

    #[error(
        "{path}: {context} at offset {offset}: string of {len} bytes runs past the end of the file ({remaining} bytes remain)"
    )]
    StringPastEnd {
        path: PathBuf,
        context: String,
        offset: u64,
        len: u64,
        remaining: u64,
    },

    #[error("{path}: key #{index} at offset {offset} is not valid UTF-8")]
    InvalidUtf8Key {
        path: PathBuf,
        index: u64,
        offset: u64,
    },

    #[error("{path}: key #{index} at offset {offset} is empty")]
    EmptyKey {
        path: PathBuf,
        index: u64,
        offset: u64,
    },

    #[error(
        "{path}: key '{key}' at offset {offset} appears twice (first at offset {first_offset})"
    )]
    DuplicateKey {
        path: PathBuf,
        key: String,
        offset: u64,
        first_offset: u64,
    },

    #[error("{path}: key '{key}' at offset {offset}: value type id {type_id} is not a GGUF value type (0..=12)")]
    InvalidValueType {
        path: PathBuf,
        key: String,
        offset: u64,
        type_id: u32,
    },

    #[error(
        "{path}: key '{key}' at offset {offset}: arrays nested deeper than {max_depth} levels"
    )]
    NestingTooDeep {
        path: PathBuf,
        key: String,
        offset: u64,
        max_depth: u32,
    },

    #[error("{path}: key '{key}' at offset {offset}: bool byte is {byte}, must be 0 or 1")]
    InvalidBool {
        path: PathBuf,
        key: String,
        offset: u64,
        byte: u8,
    },

    #[error("{path}: key 'general.alignment' at offset {offset} has type {found}, must be u32")]
    AlignmentWrongType {
        path: PathBuf,
        offset: u64,
        found: ValueType,
    },

    #[error(
        "{path}: key 'general.alignment' at offset {offset} is {alignment}, not a power of two"
    )]
    AlignmentNotPowerOfTwo {
        path: PathBuf,
        offset: u64,
        alignment: u32,
    },

    #[error("{path}: key 'general.alignment' at offset {offset} is {alignment}, more than the {max} this reader accepts")]
    AlignmentTooLarge {
        path: PathBuf,
        offset: u64,
        alignment: u32,
        max: u32,
    },

    #[error("{path}: tensor #{index} at header offset {offset}: name has a NUL byte at position {at}; ggml would read it cut short there")]
    NulInTensorName {
        path: PathBuf,
        index: u64,
        offset: u64,
        at: usize,
    },

    #[error("{path}: tensor #{index} at header offset {offset}: name is not valid UTF-8")]
    InvalidUtf8TensorName {
        path: PathBuf,
        index: u64,
        offset: u64,
    },

    #[error(
        "{path}: tensor #{index} at header offset {offset}: name is {len} bytes, ggml allows at most {max}"
    )]
    TensorNameTooLong {
        path: PathBuf,
        index: u64,
        offset: u64,
        len: u64,
        max: u64,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset} appears twice (first at header offset {first_offset})")]
    DuplicateTensorName {
        path: PathBuf,
        tensor: String,
        offset: u64,
        first_offset: u64,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: {n_dims} dimensions, ggml allows at most {max}")]
    TooManyDims {
        path: PathBuf,
        tensor: String,
        offset: u64,
        n_dims: u32,
        max: u32,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: ne[{dim}] = {value} exceeds the int64 range ggml uses")]
    DimOutOfRange {
        path: PathBuf,
        tensor: String,
        offset: u64,
        dim: usize,
        value: u64,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: element count of shape {dims:?} overflows int64")]
    ElementCountOverflow {
        path: PathBuf,
        tensor: String,
        offset: u64,
        dims: Vec<u64>,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: type id {type_id} is not a ggml type this build knows")]
    UnknownTensorType {
        path: PathBuf,
        tensor: String,
        offset: u64,
        type_id: u32,
    },

    #[error("{path}: key 'general.ggml_ext_types' at offset {offset} {reason}")]
    InvalidExtensionTable {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: type id {type_id} is extension type #{index}, but the file declares {declared} extension types in 'general.ggml_ext_types'")]
    UndeclaredExtensionType {
        path: PathBuf,
        tensor: String,
        offset: u64,
        type_id: u32,
        index: u32,
        declared: usize,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: extension type '{codec}' is not an HCT codec with a block layout this build knows")]
    UnknownExtensionType {
        path: PathBuf,
        tensor: String,
        offset: u64,
        codec: String,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: type id {type_id} is {type_name}, which ggml removed from GGUF files")]
    RetiredTensorType {
        path: PathBuf,
        tensor: String,
        offset: u64,
        type_id: u32,
        type_name: &'static str,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: row of {row_len} elements is not a whole number of {type_name} blocks ({block_size} elements)")]
    RowNotWholeBlocks {
        path: PathBuf,
        tensor: String,
        offset: u64,
        type_name: String,
        row_len: u64,
        block_size: u32,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: byte size of shape {dims:?} overflows")]
    TensorSizeOverflow {
        path: PathBuf,
        tensor: String,
        offset: u64,
        dims: Vec<u64>,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: data offset {data_offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensorOffset {
        path: PathBuf,
        tensor: String,
        offset: u64,
        data_offset: u64,
        alignment: u32,
    },

    #[error("{path}: tensor '{tensor}' at header offset {offset}: data [{start}, {start}+{size}) runs past the end of the file ({file_len} bytes)")]
    TensorDataPastEnd {
        path: PathBuf,
        tensor: String,
        offset: u64,
        start: u64,
        size: u64,
        file_len: u64,
    },

    #[error("{path}: tensors '{first}' (data ends at file offset {first_end}) and '{second}' (data starts at file offset {second_start}) overlap")]
    OverlappingTensors {
        path: PathBuf,
        first: String,
        second: String,
        first_end: u64,
        second_start: u64,
    },

    /// A writer was asked for something GGUF (or ggml's reader) cannot hold.
    #[error("{path}: cannot write: {reason}")]
    InvalidWriterInput { path: PathBuf, reason: String },

    #[error("{path}: tensor '{tensor}': expected {expected} bytes of data, got {got}")]
    TensorSizeMismatch {
        path: PathBuf,
        tensor: String,
        expected: u64,
        got: u64,
    },

    #[error(
        "{path}: tensor #{got} written out of order, tensor #{expected} ('{tensor}') comes next"
    )]
    TensorOutOfOrder {
        path: PathBuf,
        tensor: String,
        expected: usize,
        got: usize,
    },

    #[error("{path}: finished with tensor '{tensor}' (#{index}) and later ones not written")]
    MissingTensorData {
        path: PathBuf,
        tensor: String,
        index: usize,
    },
}

impl GgufError {
    /// What the error means for a caller (and the CLI's exit codes), as for HCT files.
    pub fn category(&self) -> crate::container::Category {
        use crate::container::Category;
        match self {
            GgufError::Io { .. } => Category::Io,
            GgufError::BigEndian { .. }
            | GgufError::UnsupportedVersion { .. }
            | GgufError::UnknownTensorType { .. }
            | GgufError::UnknownExtensionType { .. }
            | GgufError::RetiredTensorType { .. } => Category::Unsupported,
            _ => Category::Invalid,
        }
    }
}
