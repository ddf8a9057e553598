//! Every way a container can be wrong, one variant each, with the file, tensor and offset
//! in the message. Tests assert the variant, so each check has exactly one.

use crate::codec::CodecError;
use std::path::{Path, PathBuf};

/// An error about one container file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(path: impl AsRef<Path>, kind: ErrorKind) -> Error {
        Error {
            path: path.as_ref().to_path_buf(),
            kind,
        }
    }

    pub fn category(&self) -> Category {
        self.kind.category()
    }
}

/// What an error means for a caller deciding what to do (and for the CLI's exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The file could not be read or written.
    Io,
    /// The file breaks SPEC.md.
    Invalid,
    /// The file is well formed but a checksum does not match its bytes.
    Checksum,
    /// The file is well formed but uses something this build does not implement.
    Unsupported,
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("empty file: an HCT file starts with a 64-byte preamble")]
    Empty,
    #[error("truncated preamble: the file has {len} bytes, the preamble needs 64")]
    TruncatedPreamble { len: u64 },
    #[error(
        "not an HCT file: magic at offset 0 is {}, expected 89 48 43 54 0d 0a 1a 0a",
        hex_bytes(found)
    )]
    BadMagic { found: [u8; 8] },
    #[error("spec version {major}.{minor} at offset 8 is not supported: this reader implements major version {supported}")]
    UnsupportedMajor {
        major: u16,
        minor: u16,
        supported: u16,
    },
    #[error("required feature bits {bits:#010x} at offset 12 are unknown to this reader")]
    UnknownRequiredFeatures { bits: u32 },
    #[error(
        "header of {len} bytes at offset {offset} does not fit in the file of {file_len} bytes"
    )]
    HeaderOutOfBounds {
        offset: u64,
        len: u64,
        file_len: u64,
    },
    #[error("header length {len} exceeds the limit of {max} bytes")]
    HeaderTooLarge { len: u64, max: u64 },
    #[error("header offset {offset} is not where the spec puts it ({expected})")]
    HeaderMisplaced { offset: u64, expected: u64 },
    #[error("{count} bytes after the header at offset {offset}: the header must end the file")]
    TrailingData { offset: u64, count: u64 },
    #[error("header checksum mismatch: preamble says {expected}, header bytes hash to {actual}")]
    HeaderChecksumMismatch { expected: String, actual: String },
    #[error("truncated header: {what} at offset {offset} needs {need} bytes, {remaining} remain")]
    HeaderTruncated {
        what: String,
        offset: u64,
        need: u64,
        remaining: u64,
    },
    #[error("{count} unparsed bytes at the end of the header, from offset {offset}")]
    HeaderTrailingBytes { offset: u64, count: u64 },
    #[error("{what} at offset {offset} claims {count} entries, more than {max} (the bytes left or the spec's limit)")]
    CountTooLarge {
        what: String,
        offset: u64,
        count: u64,
        max: u64,
    },
    #[error("{what} at offset {offset}: unknown value type {type_id}")]
    InvalidValueType {
        what: String,
        offset: u64,
        type_id: u32,
    },
    #[error("{what} at offset {offset}: bool byte {byte}, expected 0 or 1")]
    InvalidBool { what: String, offset: u64, byte: u8 },
    #[error("{what} at offset {offset}: arrays nested deeper than {max}")]
    NestingTooDeep { what: String, offset: u64, max: u32 },
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },
    #[error("{what} at offset {offset} is {len} bytes long, the limit is {max}")]
    StringTooLong {
        what: String,
        offset: u64,
        len: u64,
        max: u64,
    },
    #[error(
        "{what} at offset {offset}: {value:?} is not a valid identifier ([a-z0-9_], 1 to 64 bytes)"
    )]
    InvalidIdentifier {
        what: String,
        offset: u64,
        value: String,
    },
    #[error("duplicate metadata key {key:?} at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    #[error("tensor #{index}: empty name at offset {offset}; a tensor name is 1 to 4096 bytes")]
    EmptyTensorName { index: u64, offset: u64 },
    #[error("spec minor version {minor} at offset 10 is not what the header records ({recorded}): the preamble is damaged")]
    MinorVersionMismatch { minor: u16, recorded: String },
    #[error("duplicate tensor name {name:?} at offset {offset}")]
    DuplicateTensorName { name: String, offset: u64 },
    #[error("tensor {tensor:?} at offset {offset}: {n_dims} dimensions, the limit is {max}")]
    TooManyDims {
        tensor: String,
        offset: u64,
        n_dims: u32,
        max: u32,
    },
    #[error("tensor {tensor:?}: element count of shape {shape:?} overflows u64")]
    ElementCountOverflow { tensor: String, shape: Vec<u64> },
    #[error("tensor {tensor:?}: payload offset {offset} is not a multiple of {alignment}")]
    MisalignedPayload {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor {tensor:?}: payload [{offset}, +{len}) runs past {limit} (the start of the header or the end of the file)")]
    PayloadOutOfBounds {
        tensor: String,
        offset: u64,
        len: u64,
        limit: u64,
    },
    #[error("tensor {tensor:?}: payload at offset {offset} overlaps the payload of {previous:?}, which ends at {previous_end}")]
    OverlappingPayloads {
        tensor: String,
        offset: u64,
        previous: String,
        previous_end: u64,
    },
    #[error("tensor {tensor:?}: payload at offset {offset} leaves a hole; the next payload must start at {expected}")]
    PayloadGap {
        tensor: String,
        offset: u64,
        expected: u64,
    },
    #[error("padding byte at offset {offset} is {byte:#04x}, padding must be zero")]
    NonZeroPadding { offset: u64, byte: u8 },
    #[error("tensor {tensor:?} uses codec {codec:?}, which this build does not know (known: see `hct codecs`)")]
    UnknownCodec { tensor: String, codec: String },
    #[error("tensor {tensor:?}: codec {codec} with shape {shape:?} needs a payload of {expected} bytes, the file has {actual}")]
    PayloadLengthMismatch {
        tensor: String,
        codec: String,
        shape: Vec<u64>,
        expected: u64,
        actual: u64,
    },
    #[error("tensor {tensor:?}, row {row} (file offset {offset}): {source}")]
    StoredRow {
        tensor: String,
        row: u64,
        offset: u64,
        #[source]
        source: CodecError,
    },
    #[error("tensor {tensor:?}: {source}")]
    Codec {
        tensor: String,
        #[source]
        source: CodecError,
    },
    #[error("tensor {tensor:?}: payload checksum mismatch: header says {expected}, payload hashes to {actual}")]
    PayloadChecksumMismatch {
        tensor: String,
        expected: String,
        actual: String,
    },
    #[error("not a valid safetensors file: {message}")]
    Safetensors { message: String },
    #[error("tensor {tensor:?} has dtype {dtype}, which HCT cannot carry")]
    UnsupportedDtype { tensor: String, dtype: String },
    #[error("no tensor named {name:?}")]
    NoSuchTensor { name: String },
    #[error("{0}")]
    Usage(String),
    #[error("tensor {tensor:?}: the payload is entropy-coded ('{key}' = {value:?}); this reader knows only \"zstd\" (SPEC.md §6.3)")]
    UnknownEntropy {
        tensor: String,
        key: &'static str,
        value: String,
    },
    #[error("tensor {tensor:?}: the payload is entropy-coded (SPEC.md §6.3) and has no zero-copy form; read it decoded")]
    EntropyCoded { tensor: String },
    #[error(
        "required feature bit 0 (entropy-coded payloads) at offset 12 {detail} (SPEC.md §6.3)"
    )]
    EntropyFeatureMismatch { detail: String },
    #[error("tensor {tensor:?}: entropy chunk index (payload at file offset {offset}): {detail}")]
    EntropyIndex {
        tensor: String,
        offset: u64,
        detail: String,
    },
    #[error("tensor {tensor:?}: entropy chunk {chunk} (zstd frame at file offset {offset}, {stored} bytes): {detail}")]
    EntropyFrame {
        tensor: String,
        chunk: u64,
        offset: u64,
        stored: u64,
        detail: String,
    },
    #[error("tensor {tensor:?}: cannot allocate {bytes} bytes for the decoded payload")]
    DecodedTooLarge { tensor: String, bytes: u64 },
}

impl ErrorKind {
    pub fn category(&self) -> Category {
        use ErrorKind::*;
        match self {
            Io { .. } => Category::Io,
            HeaderChecksumMismatch { .. } | PayloadChecksumMismatch { .. } => Category::Checksum,
            UnsupportedMajor { .. }
            | UnknownRequiredFeatures { .. }
            | UnknownCodec { .. }
            | UnknownEntropy { .. }
            | EntropyCoded { .. }
            | UnsupportedDtype { .. } => Category::Unsupported,
            Codec {
                source: CodecError::Unsupported { .. },
                ..
            } => Category::Unsupported,
            NoSuchTensor { .. } | Usage(_) => Category::Invalid,
            _ => Category::Invalid,
        }
    }
}

pub(crate) fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
