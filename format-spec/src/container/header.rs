//! The preamble and header (SPEC.md §3–§5): their in-memory form, parser and encoder.

use super::error::ErrorKind;
use super::limits::*;
use super::wire::{Cursor, Encoder};
use crate::value::Metadata;
use std::collections::HashSet;

/// `\x89HCT\r\n\x1a\n`: the high bit catches 7-bit channels, CR LF and LF catch line-ending
/// conversion, and ^Z stops `type` on Windows (the PNG reasoning; SPEC.md §3.1).
pub const MAGIC: [u8; 8] = [0x89, b'H', b'C', b'T', 0x0d, 0x0a, 0x1a, 0x0a];
pub const SPEC_MAJOR: u16 = 1;
pub const SPEC_MINOR: u16 = 0;
/// Where a file with a minor version above 0 records it again, inside the checksummed
/// header, because the preamble's version bytes are covered by no checksum (SPEC.md §3.2).
pub const KEY_SPEC_MINOR: &str = "hct.spec_minor";
pub const PREAMBLE_LEN: u64 = 64;
/// Every payload and the header start at a multiple of this (SPEC.md §6.2).
pub const ALIGNMENT: u64 = 64;
/// Required-feature bits this reader understands: bit 0, entropy-coded payloads (1.1).
pub const KNOWN_REQUIRED_FEATURES: u32 = super::entropy::FEATURE_ENTROPY;

/// The fixed 64 bytes at offset 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    pub major: u16,
    pub minor: u16,
    pub required_features: u32,
    pub header_offset: u64,
    pub header_len: u64,
    pub header_sha256: [u8; 32],
}

impl Preamble {
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&self.required_features.to_le_bytes());
        b[16..24].copy_from_slice(&self.header_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.header_len.to_le_bytes());
        b[32..64].copy_from_slice(&self.header_sha256);
        b
    }

    /// Parse and check the preamble of a file of `file_len` bytes whose first bytes are
    /// `bytes`. Checks magic, version and features; bounds are checked by the reader.
    pub fn parse(bytes: &[u8]) -> Result<Preamble, ErrorKind> {
        if bytes.is_empty() {
            return Err(ErrorKind::Empty);
        }
        if (bytes.len() as u64) < PREAMBLE_LEN {
            // A short file that does not even start with the magic is not HCT at all.
            let n = bytes.len().min(8);
            if bytes[..n] != MAGIC[..n] {
                let mut found = [0u8; 8];
                found[..n].copy_from_slice(&bytes[..n]);
                return Err(ErrorKind::BadMagic { found });
            }
            return Err(ErrorKind::TruncatedPreamble {
                len: bytes.len() as u64,
            });
        }
        let mut found = [0u8; 8];
        found.copy_from_slice(&bytes[0..8]);
        if found != MAGIC {
            return Err(ErrorKind::BadMagic { found });
        }
        let le16 = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let le32 = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let le64 = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let (major, minor) = (le16(8), le16(10));
        if major != SPEC_MAJOR {
            return Err(ErrorKind::UnsupportedMajor {
                major,
                minor,
                supported: SPEC_MAJOR,
            });
        }
        let required_features = le32(12);
        if required_features & !KNOWN_REQUIRED_FEATURES != 0 {
            return Err(ErrorKind::UnknownRequiredFeatures {
                bits: required_features & !KNOWN_REQUIRED_FEATURES,
            });
        }
        let mut header_sha256 = [0u8; 32];
        header_sha256.copy_from_slice(&bytes[32..64]);
        Ok(Preamble {
            major,
            minor,
            required_features,
            header_offset: le64(16),
            header_len: le64(24),
            header_sha256,
        })
    }
}

/// The parsed header: file metadata and the tensor table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
}

/// One tensor table entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Outermost dimension first; the last dimension is contiguous (the row).
    pub shape: Vec<u64>,
    /// What the tensor was in its source file (`bf16`, `ggml_q4_1`, …); informative.
    pub source_dtype: String,
    pub codec: String,
    pub codec_params: Metadata,
    /// Absolute file offset of the payload.
    pub offset: u64,
    pub length: u64,
    pub sha256: [u8; 32],
}

impl TensorInfo {
    /// Number of elements (checked when the header was parsed).
    pub fn element_count(&self) -> u64 {
        self.shape.iter().product()
    }
}

impl Header {
    /// Encode to the header bytes of SPEC.md §4.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u64(self.metadata.len() as u64);
        encode_kvs(&mut e, &self.metadata);
        e.u64(self.tensors.len() as u64);
        for t in &self.tensors {
            e.string(t.name.as_bytes());
            e.u32(t.shape.len() as u32);
            for &d in &t.shape {
                e.u64(d);
            }
            e.string(t.source_dtype.as_bytes());
            e.string(t.codec.as_bytes());
            e.u64(t.codec_params.len() as u64);
            encode_kvs(&mut e, &t.codec_params);
            e.u64(t.offset);
            e.u64(t.length);
            e.bytes(&t.sha256);
        }
        e.buf
    }

    /// Parse header bytes that start at file offset `base`. Checks the header's own
    /// structure and limits (SPEC.md §4, §8); payload placement is checked by the reader.
    pub fn parse(bytes: &[u8], base: u64) -> Result<Header, ErrorKind> {
        let mut c = Cursor::new(bytes, base);
        let metadata = parse_kvs(&mut c, "metadata")?;

        let n_tensors = c.count(TENSOR_ENTRY_MIN_LEN, MAX_TENSORS, &|| "tensor count".into())?;
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut names = HashSet::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name_offset = c.offset();
            let name = c.string(MAX_TENSOR_NAME_LEN, &|| format!("name of tensor #{i}"))?;
            if name.is_empty() {
                return Err(ErrorKind::EmptyTensorName {
                    index: i,
                    offset: name_offset,
                });
            }
            let label = name.clone();
            let n_dims_offset = c.offset();
            let n_dims = c.u32(&|| format!("dimension count of tensor {label:?}"))?;
            if n_dims > MAX_DIMS {
                return Err(ErrorKind::TooManyDims {
                    tensor: name,
                    offset: n_dims_offset,
                    n_dims,
                    max: MAX_DIMS,
                });
            }
            let mut shape = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                shape.push(c.u64(&|| format!("dimension {d} of tensor {label:?}"))?);
            }
            if shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .is_none()
            {
                return Err(ErrorKind::ElementCountOverflow {
                    tensor: name,
                    shape,
                });
            }
            let source_dtype = identifier(
                &mut c,
                &|| format!("source dtype of tensor {label:?}"),
                false,
            )?;
            let codec = identifier(&mut c, &|| format!("codec id of tensor {label:?}"), true)?;
            let codec_params = parse_kvs(&mut c, &format!("codec parameters of tensor {label:?}"))?;
            let offset = c.u64(&|| format!("payload offset of tensor {label:?}"))?;
            let length = c.u64(&|| format!("payload length of tensor {label:?}"))?;
            let sha256 = c.bytes32(&|| format!("sha256 of tensor {label:?}"))?;
            if !names.insert(name.clone()) {
                return Err(ErrorKind::DuplicateTensorName {
                    name,
                    offset: name_offset,
                });
            }
            tensors.push(TensorInfo {
                name,
                shape,
                source_dtype,
                codec,
                codec_params,
                offset,
                length,
                sha256,
            });
        }
        if c.remaining() > 0 {
            return Err(ErrorKind::HeaderTrailingBytes {
                offset: c.offset(),
                count: c.remaining() as u64,
            });
        }
        Ok(Header { metadata, tensors })
    }
}

/// Smallest encoding of a tensor entry: empty name, 0 dims, two empty identifiers, no
/// params, offset, length, sha256. Bounds the tensor count by the header's size.
const TENSOR_ENTRY_MIN_LEN: usize = 8 + 4 + 8 + 8 + 8 + 8 + 8 + 32;
/// Smallest key/value entry: empty key, type id, one byte of value.
const KV_MIN_LEN: usize = 8 + 4 + 1;

fn encode_kvs(e: &mut Encoder, kvs: &Metadata) {
    for (k, v) in kvs {
        e.string(k.as_bytes());
        e.typed_value(v);
    }
}

fn parse_kvs(c: &mut Cursor<'_>, section: &str) -> Result<Metadata, ErrorKind> {
    let n = c.count(KV_MIN_LEN, MAX_METADATA_ENTRIES, &|| {
        format!("{section} entry count")
    })?;
    let mut kvs = Vec::with_capacity(n as usize);
    let mut seen = HashSet::with_capacity(n as usize);
    for i in 0..n {
        let key_offset = c.offset();
        let key = c.string(MAX_KEY_LEN, &|| format!("key of {section} entry #{i}"))?;
        let label = key.clone();
        let ty = c.value_type(&|| format!("type of {section} key {label:?}"))?;
        let value = c.value(ty, &|| format!("value of {section} key {label:?}"))?;
        if !seen.insert(key.clone()) {
            return Err(ErrorKind::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        kvs.push((key, value));
    }
    Ok(kvs)
}

/// Codec ids are `[a-z0-9_]{1,64}`; source dtypes may also use upper case (`F8_E4M3`).
fn identifier(
    c: &mut Cursor<'_>,
    what: &dyn Fn() -> String,
    lower_only: bool,
) -> Result<String, ErrorKind> {
    let offset = c.offset();
    let s = c.string(MAX_IDENTIFIER_LEN, what)?;
    if !is_identifier(&s, lower_only) {
        return Err(ErrorKind::InvalidIdentifier {
            what: what(),
            offset,
            value: s,
        });
    }
    Ok(s)
}

pub fn is_identifier(s: &str, lower_only: bool) -> bool {
    !s.is_empty()
        && s.len() as u64 <= MAX_IDENTIFIER_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'_'
                || (!lower_only && b.is_ascii_uppercase())
        })
}

/// Round `x` up to the next multiple of `ALIGNMENT`.
pub fn align_up(x: u64) -> Option<u64> {
    x.checked_add(ALIGNMENT - 1)
        .map(|v| v / ALIGNMENT * ALIGNMENT)
}
