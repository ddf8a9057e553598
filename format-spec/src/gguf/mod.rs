//! GGUF (v2, v3; little-endian): a zero-copy reader over mmap and a streaming writer.
//!
//! Written here because no GGUF crate was fit when measured: gguf-rs 0.1.8 turns metadata
//! into JSON (integer widths lost), keeps only 3 entries of tokenizer arrays by default,
//! copies the whole file on "mmap", reports wrong sizes for BF16, MXFP4, IQ4_NL and the
//! integer types, and wrote a file with two tensors at one offset; gguf-rs-lib rejects keys
//! containing `-`; ggus panics on TQ1_0/TQ2_0/MXFP4; candle's reader stops at the first IQ
//! or TQ tensor. This module is fuzzed and checked against PyPI's `gguf` (llama.cpp's own
//! Python reader).
//!
//! The layout, as ggml (`ggml/src/gguf.cpp`) and gguf-py read and write it:
//!
//! | field | encoding |
//! |---|---|
//! | magic | `"GGUF"` |
//! | version | u32 (2 and 3 share this layout; 1 used 32-bit counts and is retired) |
//! | tensor count, key/value count | u64 each |
//! | key/value pairs | key (u64 length + bytes), value type (u32), value |
//! | tensor infos | name (string), n_dims (u32 ≤ 4), ne\[n_dims\] (u64, innermost first), ggml type (u32), offset (u64, from the data section) |
//! | padding | zeros up to the alignment |
//! | data section | each tensor's bytes, then zeros up to the alignment |
//!
//! Values: scalars little-endian; bool one byte (0 or 1); string a u64 length and bytes;
//! array an element type (u32), a count (u64) and the elements, where an element of an
//! array of arrays is itself an element type, a count and elements. The alignment is
//! `general.alignment` (a u32 power of two) if present, otherwise 32.
//!
//! Metadata is [`crate::value::Metadata`], whose type ids are GGUF's own.
//!
//! Besides ggml's built-in types, a tensor may have an extension type: an HCT codec named by
//! string in the metadata, for a ggml patched to register HCT codecs ([`extension`]).

mod error;
pub mod extension;
mod reader;
mod writer;

pub use error::GgufError;
pub use extension::{ExtensionType, TensorType, EXT_TYPE_BASE, KEY_EXT_TYPES};
pub use reader::{GgufFile, GgufTensor};
pub use writer::{encode_header, GgufWriter, TensorDataWriter};

use reader::ShapeError;

/// The first four bytes of every GGUF file.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
/// The version new files get (ggml's `GGUF_VERSION`).
pub const GGUF_VERSION: u32 = 3;
/// Alignment when `general.alignment` is absent (ggml's `GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// The key that sets the alignment.
pub const KEY_ALIGNMENT: &str = "general.alignment";
/// Largest `general.alignment` accepted, read or written (SPEC.md §8). ggml only asks for a
/// non-zero power of two; up to 2^31 lets a 57-byte file demand gigabytes of padding. 64 KiB
/// covers the largest page size mmap users meet (aarch64 with 64 KiB pages).
pub const MAX_ALIGNMENT: u32 = 1 << 16;
/// ggml's `GGML_MAX_DIMS`: a tensor has at most this many dimensions.
pub const GGML_MAX_DIMS: usize = 4;
/// ggml's `GGML_MAX_NAME`: names are stored NUL-terminated in this many bytes, so a name
/// has at most 63 bytes.
pub const GGML_MAX_NAME: usize = 64;
/// Deepest array nesting accepted (an array of arrays is 2). ggml itself refuses nested
/// arrays; gguf-py writes them; the bound keeps recursion and hostile files in check.
pub const MAX_ARRAY_NESTING: u32 = 8;

/// What describes a tensor in a GGUF header, apart from where its data lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// Dimensions as stored, ggml order: `dims[0]` is the innermost (row length). Kept at
    /// the stored length (0 to 4 entries) because writers differ on trailing 1s.
    pub dims: Vec<u64>,
    pub tensor_type: TensorType,
}

impl GgufTensorInfo {
    /// The four-entry `ne` ggml works with (missing dimensions are 1).
    pub fn ne(&self) -> [u64; 4] {
        let mut ne = [1u64; 4];
        for (slot, &d) in ne.iter_mut().zip(&self.dims) {
            *slot = d;
        }
        ne
    }

    /// Number of elements; saturates at u64::MAX for shapes no parser accepts.
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Bytes of data, or `None` if the shape is not storable (too many dimensions, counts
    /// beyond int64, rows that are not whole blocks).
    pub fn byte_size(&self) -> Option<u64> {
        if self.dims.len() > GGML_MAX_DIMS {
            return None;
        }
        self.checked_byte_size().ok()
    }

    /// ggml's rules, in ggml's order: every ne within int64, their product within int64,
    /// the row a whole number of blocks, the byte size within u64.
    pub(crate) fn checked_byte_size(&self) -> Result<u64, ShapeError> {
        let mut elements: u64 = 1;
        for &d in &self.dims {
            elements = elements
                .checked_mul(d)
                .filter(|&e| e <= i64::MAX as u64)
                .ok_or(ShapeError::ElementCountOverflow)?;
        }
        let ne = self.ne();
        if ne.iter().any(|&d| d > i64::MAX as u64) {
            return Err(ShapeError::ElementCountOverflow);
        }
        if ne[0] % self.tensor_type.block_size() as u64 != 0 {
            return Err(ShapeError::RowNotWholeBlocks);
        }
        // Like ggml, a zero anywhere makes an empty tensor whatever the other dimensions
        // are (their product may then exceed any integer type: it is never formed).
        if elements == 0 {
            return Ok(0);
        }
        let row = self
            .tensor_type
            .row_bytes(ne[0])
            .ok_or(ShapeError::SizeOverflow)?;
        // With no zero dimension, ne[1] * ne[2] * ne[3] <= the element count <= i64::MAX.
        let rows = ne[1] * ne[2] * ne[3];
        row.checked_mul(rows).ok_or(ShapeError::SizeOverflow)
    }
}

/// `x` rounded up to a multiple of `align` (a power of two); saturates instead of wrapping.
pub(crate) fn align_up(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1)
        .map(|v| v & !(align - 1))
        .unwrap_or(!(align - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml_type::GgmlType;

    fn info(ty: &str, dims: &[u64]) -> GgufTensorInfo {
        GgufTensorInfo {
            name: "t".into(),
            dims: dims.to_vec(),
            tensor_type: GgmlType::from_name(ty).unwrap().into(),
        }
    }

    #[test]
    fn byte_sizes_follow_block_layout() {
        assert_eq!(
            info("q4_1", &[576, 576]).byte_size(),
            Some(576 / 32 * 20 * 576)
        );
        assert_eq!(info("q6_K", &[256, 3, 2]).byte_size(), Some(210 * 6));
        assert_eq!(
            info("f32", &[]).byte_size(),
            Some(4),
            "a 0-d tensor holds one element"
        );
        assert_eq!(info("f16", &[7, 0]).byte_size(), Some(0));
        // Found by the fuzzer: an empty tensor whose other dimensions multiply past u64.
        assert_eq!(
            info("f32", &[0, 1 << 40, 1 << 40, 1 << 40]).byte_size(),
            Some(0)
        );
        assert_eq!(
            info("q8_0", &[31, 0]).checked_byte_size(),
            Err(ShapeError::RowNotWholeBlocks),
            "ggml checks the row even for an empty tensor"
        );
        assert_eq!(
            info("q8_0", &[33]).checked_byte_size(),
            Err(ShapeError::RowNotWholeBlocks)
        );
    }

    #[test]
    fn overflowing_shapes_are_refused_not_wrapped() {
        assert_eq!(
            info("f32", &[1 << 62, 2]).checked_byte_size(),
            Err(ShapeError::ElementCountOverflow)
        );
        // ggml checks the product in order, so a later zero does not rescue an overflow.
        assert_eq!(
            info("f32", &[1 << 62, 4, 0]).checked_byte_size(),
            Err(ShapeError::ElementCountOverflow)
        );
        // Elements fit in int64, bytes (8 per f64) do not fit in u64.
        assert_eq!(
            info("f64", &[1 << 62]).checked_byte_size(),
            Err(ShapeError::SizeOverflow)
        );
        assert_eq!(info("f32", &[1, 2, 3, 4, 5]).byte_size(), None);
    }

    #[test]
    fn align_up_rounds_and_saturates() {
        assert_eq!(align_up(0, 32), 0);
        assert_eq!(align_up(1, 32), 32);
        assert_eq!(align_up(64, 32), 64);
        assert_eq!(align_up(u64::MAX - 3, 32), !31);
    }
}
