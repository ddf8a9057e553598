//! What a plugin GGUF (`hct convert --gguf-mode plugin`) records so that it stays verifiable
//! after it leaves the HCT container: the HCT spec version, and per tensor its codec id and
//! the SHA-256 of its bytes in the GGUF. HCT-coded tensors are carried byte for byte, so their
//! digest is the container's own `payload_sha256`.
//!
//! The records are three parallel string arrays rather than three keys per tensor, so that
//! llama.cpp's metadata dump stays three lines long. A last key holds the SHA-256 of the
//! header as hct writes it without that key, so with the zero padding of the canonical
//! layout every byte of the file is covered.

use anyhow::Result;
use hct_format::gguf::{encode_header, GgufFile, GgufTensorInfo};
use hct_format::value::{Array, Value};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::exit;
use crate::CliError;

/// The HCT spec version (`major.minor`) the writer conforms to.
pub const KEY_SPEC_VERSION: &str = "hct.spec_version";
/// The producing tool and version.
pub const KEY_WRITER: &str = "hct.writer";
/// Every tensor of the file, in header order.
pub const KEY_TENSOR_NAMES: &str = "hct.tensor_names";
/// The HCT codec id of each tensor's bytes (`int4_opt_v1`, `ggml_q8_0`, `f32`).
pub const KEY_TENSOR_CODECS: &str = "hct.tensor_codecs";
/// The lower-case hex SHA-256 of each tensor's bytes.
pub const KEY_TENSOR_SHA256: &str = "hct.tensor_sha256";
/// The lower-case hex SHA-256 of the header (metadata and tensor infos, padded) that hct
/// writes for this file's metadata without this key.
pub const KEY_HEADER_SHA256: &str = "hct.gguf_header_sha256";

/// The header digest entry for a file whose other metadata is `metadata` (to be appended
/// last).
pub fn header_digest_entry(
    path: &std::path::Path,
    version: u32,
    metadata: &[(String, Value)],
    tensors: &[GgufTensorInfo],
) -> Result<(String, Value)> {
    // encode_header works in memory; its errors should name the file this header is for.
    let header = encode_header(version, metadata, tensors).map_err(|e| match e {
        hct_format::gguf::GgufError::InvalidWriterInput { reason, .. } => {
            hct_format::gguf::GgufError::InvalidWriterInput {
                path: path.to_path_buf(),
                reason,
            }
        }
        other => other,
    })?;
    Ok((
        KEY_HEADER_SHA256.into(),
        Value::string(hex::encode(Sha256::digest(&header))),
    ))
}

/// One tensor's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRecord {
    pub name: String,
    pub codec: String,
    pub sha256: [u8; 32],
}

/// The metadata entries that record `tensors`.
pub fn metadata_entries(tensors: &[TensorRecord]) -> Vec<(String, Value)> {
    let strings = |f: &dyn Fn(&TensorRecord) -> Vec<u8>| {
        Value::Array(Array::String(tensors.iter().map(f).collect()))
    };
    vec![
        (
            KEY_SPEC_VERSION.into(),
            Value::string(format!(
                "{}.{}",
                hct_format::container::SPEC_MAJOR,
                hct_format::container::SPEC_MINOR
            )),
        ),
        (
            KEY_WRITER.into(),
            Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
        ),
        (
            KEY_TENSOR_NAMES.into(),
            strings(&|t| t.name.as_bytes().to_vec()),
        ),
        (
            KEY_TENSOR_CODECS.into(),
            strings(&|t| t.codec.as_bytes().to_vec()),
        ),
        (
            KEY_TENSOR_SHA256.into(),
            strings(&|t| hex::encode(t.sha256).into_bytes()),
        ),
    ]
}

/// The records' consistency, the header digest and the canonical layout: everything but
/// the tensor data. Returns the spec version and each tensor's recorded SHA-256.
fn check_records(file: &GgufFile) -> Result<(String, Vec<[u8; 32]>)> {
    let path = file.path().display().to_string();
    let meta = file.metadata();
    let lookup = |key: &str| hct_format::value::lookup(meta, key);
    let invalid = |message: String| CliError {
        code: exit::INVALID,
        message: format!("{path}: {message}"),
    };
    let spec_version = lookup(KEY_SPEC_VERSION)
        .ok_or_else(|| {
            invalid(format!(
                "'{KEY_SPEC_VERSION}' is missing beside other HCT records"
            ))
        })?
        .as_str()
        .ok_or_else(|| invalid(format!("'{KEY_SPEC_VERSION}' is not a string")))?
        .to_string();
    let strings = |key: &str| -> Result<Vec<String>, CliError> {
        match lookup(key) {
            Some(Value::Array(Array::String(v))) => v
                .iter()
                .map(|s| String::from_utf8(s.clone()))
                .collect::<Result<_, _>>()
                .map_err(|_| invalid(format!("'{key}' holds a string that is not UTF-8"))),
            _ => Err(invalid(format!(
                "'{key}' is missing or not an array of strings"
            ))),
        }
    };
    // The writer lays tensors out back to back with zero padding, so every byte of the file
    // is header, a hashed tensor or checked padding.
    if !file.is_canonical_layout() {
        return Err(invalid(
            "bytes between or after the tensors are not the zero padding hct writes".into(),
        )
        .into());
    }
    let recorded_header = lookup(KEY_HEADER_SHA256)
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid(format!("'{KEY_HEADER_SHA256}' is missing or not a string")))?;
    let others: Vec<(String, Value)> = meta
        .iter()
        .filter(|(k, _)| k != KEY_HEADER_SHA256)
        .cloned()
        .collect();
    let infos: Vec<GgufTensorInfo> = file.tensors().iter().map(|t| t.info.clone()).collect();
    let (_, digest) = header_digest_entry(file.path(), file.version(), &others, &infos)?;
    if digest.as_str() != Some(recorded_header) {
        return Err(CliError {
            code: exit::CHECKSUM,
            message: format!(
                "{path}: header (metadata and tensor infos) SHA-256 {} does not match the recorded {recorded_header}",
                digest.as_str().unwrap_or_default()
            ),
        }
        .into());
    }
    let names = strings(KEY_TENSOR_NAMES)?;
    let codecs = strings(KEY_TENSOR_CODECS)?;
    let digests = strings(KEY_TENSOR_SHA256)?;
    let tensors = file.tensors();
    if names.len() != tensors.len()
        || codecs.len() != tensors.len()
        || digests.len() != tensors.len()
    {
        return Err(invalid(format!(
            "records for {}/{}/{} tensors (names/codecs/sha256), the file has {}",
            names.len(),
            codecs.len(),
            digests.len(),
            tensors.len()
        ))
        .into());
    }
    let mut expected = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        if names[i] != t.info.name {
            return Err(invalid(format!(
                "tensor #{i} is '{}' but the records name '{}'",
                t.info.name, names[i]
            ))
            .into());
        }
        let carried = t.info.tensor_type.hct_codec_id();
        if codecs[i] != carried {
            return Err(invalid(format!(
                "tensor '{}' is stored as {carried} but recorded as codec {}",
                t.info.name, codecs[i]
            ))
            .into());
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&digests[i], &mut digest).map_err(|_| {
            invalid(format!(
                "tensor '{}': recorded sha256 {:?} is not 64 hex digits",
                t.info.name, digests[i]
            ))
        })?;
        expected.push(digest);
    }
    Ok((spec_version, expected))
}

/// What `hct verify` found in a plugin GGUF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub spec_version: String,
    pub tensors: usize,
    pub bytes: u64,
}

const RECORD_KEYS: [&str; 5] = [
    KEY_SPEC_VERSION,
    KEY_TENSOR_NAMES,
    KEY_TENSOR_CODECS,
    KEY_TENSOR_SHA256,
    KEY_HEADER_SHA256,
];

/// For a conversion's source: `None` for a GGUF without HCT records, otherwise each
/// tensor's recorded SHA-256 after every check of [`verify`] except the tensor hashes
/// (which the conversion does while it streams the tensors). Any one record key makes the
/// file a plugin GGUF, so a damaged key name cannot turn it into an unchecked one.
pub fn records_if_plugin(file: &GgufFile) -> Result<Option<Vec<[u8; 32]>>> {
    if !has_records(file) {
        return Ok(None);
    }
    check_records(file).map(|(_, digests)| Some(digests))
}

fn has_records(file: &GgufFile) -> bool {
    RECORD_KEYS
        .iter()
        .any(|k| hct_format::value::lookup(file.metadata(), k).is_some())
}

/// Check every tensor of `file` against its record: same names in the same order, the codec
/// its GGUF type carries, the SHA-256 of its bytes (hashed in parallel), and zero padding
/// everywhere else. A file without
/// records is unsupported (exit 6), inconsistent records are invalid (exit 4), a digest that
/// differs is a checksum failure (exit 5) naming the tensor.
pub fn verify(file: &GgufFile) -> Result<VerifyReport> {
    let path = file.path().display().to_string();
    if !has_records(file) {
        return Err(CliError {
            code: exit::UNSUPPORTED,
            message: format!(
                "{path}: a GGUF without HCT records ('{KEY_SPEC_VERSION}' is absent): only plugin GGUFs \
                 (hct convert --gguf-mode plugin) carry checksums to verify"
            ),
        }
        .into());
    }
    let (spec_version, expected) = check_records(file)?;
    let tensors = file.tensors();
    let digests: Vec<String> = expected.iter().map(hex::encode).collect();
    let first_bad = (0..tensors.len())
        .into_par_iter()
        .filter(|&i| <[u8; 32]>::from(Sha256::digest(file.tensor_data(i))) != expected[i])
        .min();
    if let Some(i) = first_bad {
        let t = &tensors[i];
        return Err(CliError {
            code: exit::CHECKSUM,
            message: format!(
                "{path}: tensor '{}' (data at file offset {}, {} bytes): SHA-256 {} does not match the recorded {}",
                t.info.name,
                file.data_offset() + t.offset,
                t.size,
                hex::encode(Sha256::digest(file.tensor_data(i))),
                digests[i]
            ),
        }
        .into());
    }
    Ok(VerifyReport {
        spec_version,
        tensors: tensors.len(),
        bytes: tensors.iter().map(|t| t.size).sum(),
    })
}
