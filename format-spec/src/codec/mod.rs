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
pub mod searched_super;
pub mod seedlm;
pub mod shifted;
pub mod spectral;
pub mod ternary;
pub mod vq;

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

/// The geometry of a block codec, stated once: the GGUF extension table, the GGUF export's
/// carry-as-ggml rule and libhct's kernels all derive from it.
///
/// A block codec stores each row as `ceil(row_len / elements)` blocks of `bytes` bytes
/// (or `row_len / elements` when partial blocks are not allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLayout {
    /// Elements per block (per group for the int4 codecs): ggml's `blck_size`.
    pub elements: u32,
    /// Bytes per block: ggml's `type_size`.
    pub bytes: u32,
    /// Whether a row may end in a partial block, stored as a whole block whose padding
    /// positions the codec's section constrains (HCT layouts); ggml layouts refuse such rows.
    pub partial_last_block: bool,
    /// The ggml type (by ggml's name, e.g. `q4_1`) whose blocks are these bytes exactly,
    /// when one is: a tensor of whole blocks then exports to a native GGUF as that type,
    /// byte for byte, and stock llama.cpp runs it.
    pub same_bytes_as_ggml: Option<&'static str>,
}

impl BlockLayout {
    /// Bytes of a row of `row_len` elements, or `None` when the row cannot be stored (a
    /// partial block where none is allowed) or its size overflows u64.
    pub const fn row_bytes(&self, row_len: u64) -> Option<u64> {
        let elements = self.elements as u64;
        if !self.partial_last_block && row_len % elements != 0 {
            return None;
        }
        row_len.div_ceil(elements).checked_mul(self.bytes as u64)
    }

    /// Whether every row this layout can store is a row of a ggml type, byte for byte (a
    /// ggml layout, whatever encoder wrote it): such tensors keep that ggml type in every
    /// GGUF, plugin GGUFs included. An HCT layout that only sometimes coincides with a ggml
    /// type (`int4_g32_fp16_v1`: Q4_1's bytes, but rows may end in a partial group) is not.
    pub const fn is_ggml_layout(&self) -> bool {
        self.same_bytes_as_ggml.is_some() && !self.partial_last_block
    }

    /// The ggml type carrying these bytes for a row of `row_len` elements: ggml holds only
    /// whole blocks, so a row with a partial block has none.
    pub fn ggml_type_for_row(&self, row_len: u64) -> Option<crate::ggml_type::GgmlType> {
        let name = self.same_bytes_as_ggml?;
        let t = crate::ggml_type::GgmlType::from_name(name)?;
        (row_len % t.block_size as u64 == 0).then_some(t)
    }
}

/// One codec: its layout and its reference (scalar, obviously correct) encoder/decoder.
pub trait Codec: Send + Sync {
    /// The frozen id, e.g. `int4_opt_v1`.
    fn id(&self) -> &'static str;

    /// One line for `hct codecs` and `hct inspect`.
    fn summary(&self) -> &'static str;

    /// Bytes one row of `row_len` elements occupies, or why such a row cannot be stored.
    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError>;

    /// The block geometry of a codec whose rows are fixed-size blocks (every ggml layout,
    /// the int4 family); `None` for element codecs (`f32`, `bf16`, …).
    fn block_layout(&self) -> Option<BlockLayout> {
        None
    }

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

    /// Informative codec parameters a writer records in the tensor entry of every tensor
    /// this codec encodes (SPEC.md §4.3), e.g. an `hct_v3` id's retention; the id alone
    /// defines the bytes.
    fn encoder_params(&self) -> Vec<(String, crate::Value)> {
        Vec::new()
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
    v.extend(searched_super::all());
    v.extend(ternary::all());
    v.extend(spectral::all());
    v.extend(spectral::mixed::all());
    v.extend(seedlm::all());
    v.push(&vq::CODEC);
    v.extend(shifted::all());
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
