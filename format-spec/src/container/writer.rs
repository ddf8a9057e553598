//! Writing containers, streaming: payloads go to disk as they are produced and are hashed on
//! the way; the header (which holds their offsets and checksums) follows them, and the
//! preamble is filled in last. The output exists under its real name only once complete:
//! everything goes to a temporary file in the same directory, which is fsynced and renamed
//! (SPEC.md §9). A writer dropped before `finish`, or a killed process, leaves no file at
//! the output path.

use super::error::{Error, ErrorKind};
use super::header::{
    align_up, is_identifier, Header, Preamble, TensorInfo, KEY_SPEC_MINOR, PREAMBLE_LEN,
    SPEC_MAJOR, SPEC_MINOR,
};
use super::limits::*;
use crate::codec;
use crate::value::Metadata;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// What the caller says about a tensor before its payload is written.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDesc {
    pub name: String,
    pub shape: Vec<u64>,
    pub source_dtype: String,
    pub codec: String,
    pub codec_params: Metadata,
}

/// The result of a completed write.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub file_len: u64,
    pub header_sha256: [u8; 32],
}

pub struct Writer {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
    pos: u64,
    header: Header,
    names: HashSet<String>,
    allow_unknown_codecs: bool,
    /// Whether some tensor was written entropy-coded (sets feature bit 0, SPEC.md §6.3).
    entropy_used: bool,
}

/// Output buffer size: large enough that payload writes are few big syscalls.
const WRITE_BUFFER: usize = 1 << 20;

impl Writer {
    /// Start writing `path`. Nothing appears at `path` until `finish`.
    pub fn create(path: impl AsRef<Path>) -> Result<Writer, Error> {
        let path = path.as_ref().to_path_buf();
        let tmp = crate::output_file::create_temp(&path).map_err(|e| {
            Error::new(
                &path,
                ErrorKind::Io {
                    op: "create the output",
                    source: e,
                },
            )
        })?;
        let mut w = Writer {
            path,
            out: BufWriter::with_capacity(WRITE_BUFFER, tmp),
            pos: 0,
            header: Header::default(),
            names: HashSet::new(),
            allow_unknown_codecs: false,
            entropy_used: false,
        };
        // Placeholder preamble; the real one is written by `finish`.
        w.write_all(&[0u8; PREAMBLE_LEN as usize])?;
        Ok(w)
    }

    /// Accept codec ids this build does not know (their payload lengths cannot be checked).
    /// For tools that copy tensors between files without decoding them.
    pub fn allow_unknown_codecs(&mut self, yes: bool) {
        self.allow_unknown_codecs = yes;
    }

    /// Write one tensor whose payload is already in memory.
    pub fn add_tensor(&mut self, desc: TensorDesc, payload: &[u8]) -> Result<(), Error> {
        let mut sink = self.begin_tensor(desc)?;
        sink.write(payload)?;
        sink.finish().map(drop)
    }

    /// Write one tensor whose decoded payload is in memory, entropy-coded with zstd at
    /// `level` where that pays (stored at most 97% of decoded, SPEC.md §6.3), otherwise
    /// plain. Returns whether it was coded. The decision and the bytes depend only on the
    /// payload, the level and the zstd library, never on threads.
    pub fn add_tensor_entropy(
        &mut self,
        mut desc: TensorDesc,
        payload: &[u8],
        level: i32,
    ) -> Result<bool, Error> {
        use super::entropy;
        desc.codec_params.retain(|(k, _)| k != entropy::PARAM_KEY);
        let geometry = codec::find(&desc.codec).and_then(|c| {
            let (rows, row_len) = codec::rows_of(&desc.shape)?;
            let row_bytes = c.row_bytes(row_len).ok()?;
            (rows.checked_mul(row_bytes)? == payload.len() as u64).then_some((rows, row_bytes))
        });
        let Some((rows, row_bytes)) = geometry else {
            // Unknown codec or wrong length: the plain path reports it.
            return self.add_tensor(desc, payload).map(|()| false);
        };
        let coded = entropy::encode(payload, entropy::Chunking::new(rows, row_bytes), level)
            .map_err(|e| {
                self.err(ErrorKind::Io {
                    op: "zstd-compress a payload",
                    source: e,
                })
            })?;
        if !entropy::pays(coded.len() as u64, payload.len() as u64) {
            return self.add_tensor(desc, payload).map(|()| false);
        }
        desc.codec_params.push((
            entropy::PARAM_KEY.into(),
            crate::value::Value::string(entropy::ZSTD),
        ));
        let mut sink = self.begin_tensor_unchecked(desc)?;
        sink.expected_len = None;
        sink.write(&coded)?;
        sink.finish()?;
        self.entropy_used = true;
        Ok(true)
    }

    /// Start a tensor whose payload will be streamed through the returned sink.
    pub fn begin_tensor(&mut self, desc: TensorDesc) -> Result<TensorSink<'_>, Error> {
        // Only `add_tensor_entropy` writes coded bytes; a desc carrying the marker from
        // elsewhere (say, copied from a coded source) would mislabel plain bytes.
        if desc
            .codec_params
            .iter()
            .any(|(k, _)| k == super::entropy::PARAM_KEY)
        {
            return Err(self.err(ErrorKind::Usage(format!(
                "tensor {:?}: '{}' is set by the writer's entropy stage, not by callers",
                desc.name,
                super::entropy::PARAM_KEY
            ))));
        }
        self.begin_tensor_unchecked(desc)
    }

    fn begin_tensor_unchecked(&mut self, desc: TensorDesc) -> Result<TensorSink<'_>, Error> {
        self.check_desc(&desc)?;
        let start = align_up(self.pos).expect("file offsets stay far below u64::MAX");
        self.pad_to(start)?;
        let expected_len = match codec::find(&desc.codec) {
            Some(c) => Some(codec::payload_len(c, &desc.shape).map_err(|source| {
                self.err(ErrorKind::Codec {
                    tensor: desc.name.clone(),
                    source,
                })
            })?),
            None => None,
        };
        Ok(TensorSink {
            writer: self,
            desc,
            start,
            expected_len,
            hasher: Sha256::new(),
        })
    }

    /// Payload length of the most recently finished tensor.
    pub fn last_tensor_len(&self) -> Option<u64> {
        self.header.tensors.last().map(|t| t.length)
    }

    /// Write the header and preamble, flush, fsync and rename into place.
    pub fn finish(mut self, metadata: Metadata) -> Result<Written, Error> {
        check_metadata(&metadata).map_err(|k| self.err(k))?;
        let mut metadata = metadata;
        // The reader's rule for the version bytes no checksum covers (SPEC.md §3.2).
        metadata.retain(|(k, _)| k != KEY_SPEC_MINOR);
        // A file is marked with the lowest minor version whose features it uses, so files
        // without entropy-coded tensors stay readable by 1.0 readers.
        let (minor, required_features) = if self.entropy_used {
            (
                super::entropy::ENTROPY_MINOR,
                super::entropy::FEATURE_ENTROPY,
            )
        } else {
            (SPEC_MINOR, 0)
        };
        if minor > 0 {
            metadata.push((KEY_SPEC_MINOR.into(), crate::value::Value::U16(minor)));
        }
        self.header.metadata = metadata;
        let header_offset = align_up(self.pos).expect("file offsets stay far below u64::MAX");
        self.pad_to(header_offset)?;
        let header = self.header.encode();
        if header.len() as u64 > MAX_HEADER_LEN {
            return Err(self.err(ErrorKind::HeaderTooLarge {
                len: header.len() as u64,
                max: MAX_HEADER_LEN,
            }));
        }
        self.write_all(&header)?;
        let header_sha256: [u8; 32] = Sha256::digest(&header).into();
        let preamble = Preamble {
            major: SPEC_MAJOR,
            minor,
            required_features,
            header_offset,
            header_len: header.len() as u64,
            header_sha256,
        };
        let path = self.path.clone();
        let io = |op, source| Error::new(&path, ErrorKind::Io { op, source });
        let mut tmp = self
            .out
            .into_inner()
            .map_err(|e| io("flush the output", e.into_error()))?;
        let file: &mut File = tmp.as_file_mut();
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io("seek to the preamble", e))?;
        file.write_all(&preamble.encode())
            .map_err(|e| io("write the preamble", e))?;
        file.sync_all().map_err(|e| io("fsync the output", e))?;
        let file_len = self.pos;
        crate::output_file::persist(tmp, &path)
            .map_err(|e| io("rename the temporary file into place", e))?;
        tracing::debug!(path = %path.display(), bytes = file_len, tensors = self.header.tensors.len(), "container written");
        Ok(Written {
            path,
            file_len,
            header_sha256,
        })
    }

    fn check_desc(&self, d: &TensorDesc) -> Result<(), Error> {
        let invalid = |what: &str, value: &str| {
            self.err(ErrorKind::InvalidIdentifier {
                what: format!("{what} of tensor {:?}", d.name),
                offset: 0,
                value: value.into(),
            })
        };
        if d.name.is_empty() {
            return Err(self.err(ErrorKind::EmptyTensorName {
                index: self.header.tensors.len() as u64,
                offset: 0,
            }));
        }
        if d.name.len() as u64 > MAX_TENSOR_NAME_LEN {
            return Err(self.err(ErrorKind::StringTooLong {
                what: format!("tensor name {:?}", d.name),
                offset: 0,
                len: d.name.len() as u64,
                max: MAX_TENSOR_NAME_LEN,
            }));
        }
        if self.names.contains(&d.name) {
            return Err(self.err(ErrorKind::DuplicateTensorName {
                name: d.name.clone(),
                offset: 0,
            }));
        }
        if self.header.tensors.len() as u64 >= MAX_TENSORS {
            return Err(self.err(ErrorKind::CountTooLarge {
                what: "tensors".into(),
                offset: 0,
                count: MAX_TENSORS + 1,
                max: MAX_TENSORS,
            }));
        }
        if d.shape.len() as u32 > MAX_DIMS {
            return Err(self.err(ErrorKind::TooManyDims {
                tensor: d.name.clone(),
                offset: 0,
                n_dims: d.shape.len() as u32,
                max: MAX_DIMS,
            }));
        }
        if codec::rows_of(&d.shape).is_none() {
            return Err(self.err(ErrorKind::ElementCountOverflow {
                tensor: d.name.clone(),
                shape: d.shape.clone(),
            }));
        }
        if !is_identifier(&d.codec, true) {
            return Err(invalid("codec id", &d.codec));
        }
        if !is_identifier(&d.source_dtype, false) {
            return Err(invalid("source dtype", &d.source_dtype));
        }
        if codec::find(&d.codec).is_none() && !self.allow_unknown_codecs {
            return Err(self.err(ErrorKind::UnknownCodec {
                tensor: d.name.clone(),
                codec: d.codec.clone(),
            }));
        }
        check_metadata(&d.codec_params).map_err(|k| self.err(k))
    }

    fn pad_to(&mut self, target: u64) -> Result<(), Error> {
        const ZEROS: [u8; 64] = [0; 64];
        while self.pos < target {
            let n = (target - self.pos).min(64) as usize;
            self.write_all(&ZEROS[..n])?;
        }
        Ok(())
    }

    fn write_all(&mut self, b: &[u8]) -> Result<(), Error> {
        self.out.write_all(b).map_err(|e| {
            Error::new(
                &self.path,
                ErrorKind::Io {
                    op: "write the output",
                    source: e,
                },
            )
        })?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.path, kind)
    }
}

/// Receives one tensor's payload; hashes while writing.
pub struct TensorSink<'w> {
    writer: &'w mut Writer,
    desc: TensorDesc,
    start: u64,
    expected_len: Option<u64>,
    hasher: Sha256,
}

impl TensorSink<'_> {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.hasher.update(bytes);
        self.writer.write_all(bytes)
    }

    /// Close the tensor: its length must be what the codec and shape require. Returns the
    /// payload's SHA-256 as recorded in the header.
    pub fn finish(self) -> Result<[u8; 32], Error> {
        let length = self.writer.pos - self.start;
        if let Some(expected) = self.expected_len {
            if expected != length {
                return Err(self.writer.err(ErrorKind::PayloadLengthMismatch {
                    tensor: self.desc.name,
                    codec: self.desc.codec,
                    shape: self.desc.shape,
                    expected,
                    actual: length,
                }));
            }
        }
        let d = self.desc;
        let sha256: [u8; 32] = self.hasher.finalize().into();
        self.writer.names.insert(d.name.clone());
        self.writer.header.tensors.push(TensorInfo {
            name: d.name,
            shape: d.shape,
            source_dtype: d.source_dtype,
            codec: d.codec,
            codec_params: d.codec_params,
            offset: self.start,
            length,
            sha256,
        });
        Ok(sha256)
    }
}

fn check_metadata(kvs: &Metadata) -> Result<(), ErrorKind> {
    if kvs.len() as u64 > MAX_METADATA_ENTRIES {
        return Err(ErrorKind::CountTooLarge {
            what: "metadata entries".into(),
            offset: 0,
            count: kvs.len() as u64,
            max: MAX_METADATA_ENTRIES,
        });
    }
    let mut seen = HashSet::with_capacity(kvs.len());
    for (k, v) in kvs {
        if k.len() as u64 > MAX_KEY_LEN {
            return Err(ErrorKind::StringTooLong {
                what: format!("metadata key {k:?}"),
                offset: 0,
                len: k.len() as u64,
                max: MAX_KEY_LEN,
            });
        }
        if !seen.insert(k.as_str()) {
            return Err(ErrorKind::DuplicateKey {
                key: k.clone(),
                offset: 0,
            });
        }
        if depth(v) > MAX_ARRAY_NESTING {
            return Err(ErrorKind::NestingTooDeep {
                what: format!("metadata key {k:?}"),
                offset: 0,
                max: MAX_ARRAY_NESTING,
            });
        }
    }
    Ok(())
}

fn depth(v: &crate::value::Value) -> u32 {
    fn array_depth(a: &crate::value::Array) -> u32 {
        match a {
            crate::value::Array::Array(items) => {
                1 + items.iter().map(array_depth).max().unwrap_or(0)
            }
            _ => 1,
        }
    }
    match v {
        crate::value::Value::Array(a) => array_depth(a),
        _ => 0,
    }
}
