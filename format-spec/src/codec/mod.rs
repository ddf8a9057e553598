//! Codecs: how a tensor's elements become payload bytes, and back.
//!
//! Every codec works on **rows**: a tensor of shape `[d0, …, dn-1]` is `d0·…·dn-2` rows of
//! `dn-1` elements (a 0-D tensor is one row of one element), and its payload is its rows'
//! encodings back to back (SPEC.md §6). Row-wise codecs let the converter stream any
//! tensor in bounded chunks and let kernels decode any range of rows.
//!
//! A codec id names one frozen bit layout *and* one frozen encoder (SPEC.md §7.1). The
//! registry below is the single place codecs plug in; a reader refuses any id not in it.

pub mod ggml;
pub mod int4;
mod raw;
pub mod searched;

use std::fmt;

/// What can go wrong inside a codec. Container-level errors wrap these with the file,
/// tensor and offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("codec {codec} cannot store a row of {row_len} elements: {reason}")]
    RowLength {
        codec: &'static str,
        row_len: u64,
        reason: String,
    },
    #[error("codec {codec} does not support {operation} in this build")]
    Unsupported {
        codec: &'static str,
        operation: &'static str,
    },
    #[error("codec {codec}: buffer of {actual} bytes where {expected} were expected")]
    BufferSize {
        codec: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("codec {codec} cannot encode this input: {detail}")]
    OutOfRange { codec: &'static str, detail: String },
    #[error(
        "codec {codec}: element position {position} of the row is padding of its last group and \
         holds code {code}, where an encoder must store 0 (row byte {byte})"
    )]
    NonZeroPaddingCode {
        codec: &'static str,
        position: u64,
        byte: u64,
        code: u8,
    },
}

/// One codec: its layout and its reference (scalar, obviously correct) encoder/decoder.
pub trait Codec: Send + Sync {
    /// The frozen id, e.g. `int4_opt_v1`.
    fn id(&self) -> &'static str;

    /// One line for `hct codecs` and `hct inspect`.
    fn summary(&self) -> &'static str;

    /// Bytes one row of `row_len` elements occupies, or why such a row cannot be stored.
    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError>;

    /// Whether stored rows of `row_len` elements carry bits beyond their values that the
    /// spec constrains (see `check_stored_row`); lets `validate` skip every other tensor.
    fn has_stored_row_rules(&self, _row_len: u64) -> bool {
        false
    }

    /// The rules a stored row must follow beyond its length, for `validate`: decoders
    /// ignore these bits, so a file breaking them still decodes, but no conforming encoder
    /// wrote it (SPEC.md §7.4.1: an int4 row's partial last group has code 0 in its padding
    /// positions). `row.len() == row_bytes(row_len)`.
    fn check_stored_row(&self, _row: &[u8], _row_len: u64) -> Result<(), CodecError> {
        Ok(())
    }

    /// Decode one row: `src.len() == row_bytes(dst.len())`.
    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError>;

    /// Encode one row: `dst.len() == row_bytes(src.len())`. Codecs whose encoder is not in
    /// this build (for example ggml types HCT only passes through) return `Unsupported`.
    fn encode_row(&self, _src: &[f32], _dst: &mut [u8]) -> Result<(), CodecError> {
        Err(CodecError::Unsupported {
            codec: self.id(),
            operation: "encoding",
        })
    }

    /// Whether `encode_row` is available.
    fn can_encode(&self) -> bool {
        false
    }

    /// Whether `decode_row` is available (passthrough ggml types may lack a decoder).
    fn can_decode(&self) -> bool {
        true
    }
}

impl fmt::Debug for dyn Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Codec({})", self.id())
    }
}

/// Look a codec up by id. `None` means this build does not know the id, and a reader must
/// refuse the tensor (SPEC.md §5.4).
pub fn find(id: &str) -> Option<&'static dyn Codec> {
    all().into_iter().find(|c| c.id() == id)
}

/// Every codec this build knows, in registry order.
pub fn all() -> Vec<&'static dyn Codec> {
    let mut v: Vec<&'static dyn Codec> = Vec::new();
    v.extend(raw::CODECS.iter().map(|c| c as &'static dyn Codec));
    v.extend(ggml::all());
    v.extend(int4::all());
    v.extend(searched::all());
    v
}

/// Rows and row length of a tensor shape (SPEC.md §6): the last dimension is the row.
/// Returns `None` when the element count overflows u64.
pub fn rows_of(shape: &[u64]) -> Option<(u64, u64)> {
    match shape.split_last() {
        None => Some((1, 1)),
        Some((&row_len, outer)) => {
            let rows = outer.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
            rows.checked_mul(row_len)?;
            Some((rows, row_len))
        }
    }
}

/// Payload bytes a tensor of `shape` takes under `codec`.
pub fn payload_len(codec: &dyn Codec, shape: &[u64]) -> Result<u64, CodecError> {
    let (rows, row_len) = rows_of(shape).ok_or_else(|| CodecError::RowLength {
        codec: codec.id(),
        row_len: 0,
        reason: "element count overflows u64".into(),
    })?;
    let row_bytes = codec.row_bytes(row_len)?;
    rows.checked_mul(row_bytes)
        .ok_or_else(|| CodecError::RowLength {
            codec: codec.id(),
            row_len,
            reason: "payload size overflows u64".into(),
        })
}

fn check_len(codec: &'static str, expected: u64, actual: usize) -> Result<(), CodecError> {
    if expected != actual as u64 {
        return Err(CodecError::BufferSize {
            codec,
            expected,
            actual: actual as u64,
        });
    }
    Ok(())
}
