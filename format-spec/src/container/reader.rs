//! Reading containers: `HctFile::open` maps the file and checks everything needed to hand
//! out payload slices safely; `validate` adds the codec-level rules; `verify` the checksums.

use super::entropy::{self, Chunking, EntropyError, Frames};
use super::error::{Error, ErrorKind};
use super::header::{
    align_up, Header, Preamble, TensorInfo, ALIGNMENT, KEY_SPEC_MINOR, PREAMBLE_LEN,
};
use super::limits::MAX_HEADER_LEN;
use crate::codec;
use crate::value::{lookup, Metadata, Value};
use memmap2::Mmap;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A container over any byte store; `HctFile` is the memory-mapped one.
pub struct Container<B: AsRef<[u8]>> {
    path: PathBuf,
    data: B,
    preamble: Preamble,
    header: Header,
}

/// A container read from disk through mmap: payloads are zero-copy slices of the mapping.
pub type HctFile = Container<Mmap>;

impl HctFile {
    /// Map and parse a file. Structure, limits, placement and the header checksum are
    /// checked here; call `validate` for codec rules and `verify` for payload checksums.
    pub fn open(path: impl AsRef<Path>) -> Result<HctFile, Error> {
        Self::open_as(path.as_ref(), path.as_ref())
    }

    /// `open`, with errors naming `label` instead of `path` (for a file standing in for
    /// another, such as a decoded copy of an entropy-coded input).
    pub fn open_as(path: &Path, label: &Path) -> Result<HctFile, Error> {
        let io = |op, source| Error::new(path, ErrorKind::Io { op, source });
        let file = File::open(path).map_err(|e| io("open the file", e))?;
        let meta = file.metadata().map_err(|e| io("read the file's size", e))?;
        if !meta.is_file() {
            return Err(io("read the file", crate::output_file::not_a_file(&meta)));
        }
        let len = meta.len();
        if len == 0 {
            return Err(Error::new(path, ErrorKind::Empty));
        }
        // SAFETY: the mapping is read-only. Another process truncating the file while it is
        // mapped would fault on access; like every mmap-based model loader, HCT accepts that
        // (SPEC.md §9 tells writers to replace files by rename, never rewrite in place).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io("map the file", e))?;
        Container::from_bytes(map, label)
    }
}

impl HctFile {
    /// Let a tensor's mapped pages leave this process's resident set (they stay in the
    /// page cache; a later read faults them back in), so streaming a large file does not
    /// keep all of it resident.
    pub fn release(&self, t: &TensorInfo) {
        if let (Ok(offset), Ok(len)) = (usize::try_from(t.offset), usize::try_from(t.length)) {
            if offset
                .checked_add(len)
                .is_some_and(|end| end <= self.data.len())
            {
                crate::safetensors_io::release_range(&self.data, offset, len);
            }
        }
    }
}

impl<B: AsRef<[u8]> + Sync> Container<B> {
    /// Parse a container held in memory. `path` only labels errors.
    pub fn from_bytes(data: B, path: impl AsRef<Path>) -> Result<Container<B>, Error> {
        let path = path.as_ref().to_path_buf();
        match parse(data.as_ref()) {
            Ok((preamble, header)) => Ok(Container {
                path,
                data,
                preamble,
                header,
            }),
            Err(kind) => Err(Error::new(&path, kind)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn preamble(&self) -> &Preamble {
        &self.preamble
    }
    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }
    pub fn meta(&self, key: &str) -> Option<&Value> {
        lookup(&self.header.metadata, key)
    }
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.header.tensors.iter().find(|t| t.name == name)
    }
    pub fn file_len(&self) -> u64 {
        self.data.as_ref().len() as u64
    }
    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// A tensor's payload, zero-copy: the bytes its codec defines. An entropy-coded tensor
    /// (SPEC.md §6.3) has no such slice in the file and is refused here, so no caller can
    /// mistake its stored bytes for codec bytes; read it with `decoded_payload`, or copy it
    /// verbatim with `stored_payload`.
    pub fn payload(&self, t: &TensorInfo) -> Result<&[u8], Error> {
        if is_entropy_coded(t) {
            return Err(self.err(ErrorKind::EntropyCoded {
                tensor: t.name.clone(),
            }));
        }
        self.stored_payload(t)
    }

    /// The payload bytes as stored in the file (what `payload_sha256` covers), zero-copy,
    /// whether or not they are entropy-coded.
    pub fn stored_payload(&self, t: &TensorInfo) -> Result<&[u8], Error> {
        let end = t.offset.checked_add(t.length);
        end.and_then(|end| self.data.as_ref().get(t.offset as usize..end as usize))
            .ok_or_else(|| {
                self.err(ErrorKind::PayloadOutOfBounds {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    len: t.length,
                    limit: self.preamble.header_offset,
                })
            })
    }

    /// The codec-level rules of SPEC.md §5.4 and §6: every codec id known to this build,
    /// every payload exactly as long as its codec and shape require, padding all zero, and
    /// each codec's rules for the bits of a stored row that decoders ignore (§7.4.1).
    /// Returns the first violation in file order.
    pub fn validate(&self) -> Result<(), Error> {
        for t in &self.header.tensors {
            let c = self.check_codec(t)?;
            if c.has_stored_row_rules(codec::rows_of(&t.shape).map_or(0, |r| r.1)) {
                self.check_stored_rows(t, c, &self.decoded_payload(t)?)?;
            } else if is_entropy_coded(t) {
                // Decoding every frame checks that each yields exactly the index's size.
                self.decoded_payload(t)?;
            }
        }
        let mut pos = PREAMBLE_LEN;
        for t in &self.header.tensors {
            self.check_zero(pos, t.offset)?;
            pos = t.offset + t.length;
        }
        self.check_zero(pos, self.preamble.header_offset)
    }

    /// Every payload's sha256 against the header, hashed in parallel (the header's own
    /// checksum was checked at open). The error names the first damaged tensor in file
    /// order; `verify_all` lists every one.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let report = self.verify_all();
        match report.damaged.first() {
            Some(d) => Err(self.err(ErrorKind::PayloadChecksumMismatch {
                tensor: d.tensor.clone(),
                expected: d.expected.clone(),
                actual: d.actual.clone(),
            })),
            None => Ok(report),
        }
    }

    /// Every payload's sha256 against the header, hashed in parallel; the report lists
    /// every damaged tensor in file order (none when the file is intact).
    pub fn verify_all(&self) -> VerifyReport {
        let digests: Vec<[u8; 32]> = self
            .header
            .tensors
            .par_iter()
            .map(|t| {
                // `open` checked every payload against the file's bounds.
                let payload = self.stored_payload(t).map_or(&[][..], |p| p);
                Sha256::digest(payload).into()
            })
            .collect();
        let damaged = self
            .header
            .tensors
            .iter()
            .zip(&digests)
            .filter(|(t, actual)| t.sha256 != **actual)
            .map(|(t, actual)| DamagedPayload {
                tensor: t.name.clone(),
                expected: hex::encode(t.sha256),
                actual: hex::encode(actual),
            })
            .collect();
        VerifyReport {
            tensors: digests.len(),
            payload_bytes: self.header.tensors.iter().map(|t| t.length).sum(),
            header_sha256: hex::encode(self.preamble.header_sha256),
            damaged,
        }
    }

    /// The codec of a tensor, or the error a reader must give for an unknown one.
    pub fn codec_of(&self, t: &TensorInfo) -> Result<&'static dyn codec::Codec, Error> {
        codec::find(&t.codec).ok_or_else(|| {
            self.err(ErrorKind::UnknownCodec {
                tensor: t.name.clone(),
                codec: t.codec.clone(),
            })
        })
    }

    /// Decode rows `[first_row, first_row + out.len() / row_len)` of a tensor to f32.
    pub fn decode_rows(
        &self,
        t: &TensorInfo,
        first_row: u64,
        out: &mut [f32],
    ) -> Result<(), Error> {
        let codec = self.check_codec(t)?;
        let (rows, row_len) = codec::rows_of(&t.shape).expect("element count checked at open");
        let cerr = |source| {
            self.err(ErrorKind::Codec {
                tensor: t.name.clone(),
                source,
            })
        };
        let row_bytes = codec.row_bytes(row_len).map_err(cerr)?;
        let row_len_usize =
            usize::try_from(row_len).map_err(|_| self.usage("row too long for this machine"))?;
        if row_len_usize == 0 {
            return Ok(());
        }
        if out.len() % row_len_usize != 0 {
            return Err(self.usage("output length is not a whole number of rows"));
        }
        let n = (out.len() / row_len_usize) as u64;
        if first_row.checked_add(n).is_none_or(|end| end > rows) {
            return Err(self.usage("row range past the tensor's last row"));
        }
        let (payload, start) = if is_entropy_coded(t) {
            // Only the chunks that hold the rows are decoded (SPEC.md §6.3).
            let frames = self.frames(t, codec)?;
            let ch = frames.chunking();
            if n == 0 {
                return Ok(());
            }
            let chunks = ch.chunk_of_row(first_row)..ch.chunk_of_row(first_row + n - 1) + 1;
            let first = ch.chunk_rows(chunks.start).start;
            let len = (ch.chunk_rows(chunks.end - 1).end - first) * row_bytes;
            let mut buf = self.alloc_decoded(t, len)?;
            frames
                .decode_chunks(chunks, &mut buf)
                .map_err(|e| self.entropy_err(t, e))?;
            (Cow::Owned(buf), ((first_row - first) * row_bytes) as usize)
        } else {
            (
                Cow::Borrowed(self.payload(t)?),
                (first_row * row_bytes) as usize,
            )
        };
        for (i, dst) in out.chunks_exact_mut(row_len_usize).enumerate() {
            let src = &payload[start + i * row_bytes as usize..][..row_bytes as usize];
            codec.decode_row(src, dst).map_err(cerr)?;
        }
        Ok(())
    }

    /// Decode a whole tensor to f32.
    pub fn decode_f32(&self, t: &TensorInfo) -> Result<Vec<f32>, Error> {
        let n = usize::try_from(t.element_count())
            .map_err(|_| self.usage("tensor too large for this machine"))?;
        let mut out = vec![0f32; n];
        self.decode_rows(t, 0, &mut out)?;
        Ok(out)
    }

    /// Whether a tensor is entropy-coded with a transform this reader knows; an unknown
    /// transform is an error for that tensor, like an unknown codec (SPEC.md §6.3).
    pub fn entropy_coded(&self, t: &TensorInfo) -> Result<bool, Error> {
        match lookup(&t.codec_params, entropy::PARAM_KEY) {
            None => Ok(false),
            Some(Value::String(b)) if b == entropy::ZSTD.as_bytes() => Ok(true),
            Some(v) => Err(self.err(ErrorKind::UnknownEntropy {
                tensor: t.name.clone(),
                key: entropy::PARAM_KEY,
                value: match v {
                    Value::String(b) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("a value of type {}", other.value_type()),
                },
            })),
        }
    }

    /// The length of a tensor's decoded payload, from its codec and shape.
    pub fn decoded_len(&self, t: &TensorInfo) -> Result<u64, Error> {
        let c = self.codec_of(t)?;
        codec::payload_len(c, &t.shape).map_err(|source| {
            self.err(ErrorKind::Codec {
                tensor: t.name.clone(),
                source,
            })
        })
    }

    /// A tensor's decoded payload: zero-copy for a plain tensor; for an entropy-coded one
    /// an owned buffer of exactly the size its codec and shape give, every frame checked to
    /// decode to its chunk's size (SPEC.md §6.3).
    pub fn decoded_payload(&self, t: &TensorInfo) -> Result<Cow<'_, [u8]>, Error> {
        let c = self.check_codec(t)?;
        if !self.entropy_coded(t)? {
            return self.payload(t).map(Cow::Borrowed);
        }
        let frames = self.frames(t, c)?;
        let n = self.decoded_len(t)?;
        let mut buf = self.alloc_decoded(t, n)?;
        frames
            .decode_chunks(0..frames.chunking().chunks(), &mut buf)
            .map_err(|e| self.entropy_err(t, e))?;
        Ok(Cow::Owned(buf))
    }

    /// A tensor's stored payload as a checked chunk index over its frames.
    pub fn frames(&self, t: &TensorInfo, c: &dyn codec::Codec) -> Result<Frames<'_>, Error> {
        let cerr = |source| {
            self.err(ErrorKind::Codec {
                tensor: t.name.clone(),
                source,
            })
        };
        let (rows, row_len) = codec::rows_of(&t.shape).expect("element count checked at open");
        let row_bytes = c.row_bytes(row_len).map_err(cerr)?;
        Frames::parse(self.stored_payload(t)?, Chunking::new(rows, row_bytes))
            .map_err(|e| self.entropy_err(t, e))
    }

    fn alloc_decoded(&self, t: &TensorInfo, n: u64) -> Result<Vec<u8>, Error> {
        let too_large = || {
            self.err(ErrorKind::DecodedTooLarge {
                tensor: t.name.clone(),
                bytes: n,
            })
        };
        let len = usize::try_from(n).map_err(|_| too_large())?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len).map_err(|_| too_large())?;
        buf.resize(len, 0);
        Ok(buf)
    }

    fn entropy_err(&self, t: &TensorInfo, e: EntropyError) -> Error {
        self.err(match e {
            EntropyError::Index { at, detail } => ErrorKind::EntropyIndex {
                tensor: t.name.clone(),
                offset: t.offset + at,
                detail,
            },
            EntropyError::Frame {
                chunk,
                at,
                stored,
                detail,
            } => ErrorKind::EntropyFrame {
                tensor: t.name.clone(),
                chunk,
                offset: t.offset + at,
                stored,
                detail,
            },
        })
    }

    fn check_codec(&self, t: &TensorInfo) -> Result<&'static dyn codec::Codec, Error> {
        let c = self.codec_of(t)?;
        let expected = self.decoded_len(t)?;
        if self.entropy_coded(t)? {
            self.frames(t, c)?;
            return Ok(c);
        }
        if expected != t.length {
            return Err(self.err(ErrorKind::PayloadLengthMismatch {
                tensor: t.name.clone(),
                codec: t.codec.clone(),
                shape: t.shape.clone(),
                expected,
                actual: t.length,
            }));
        }
        Ok(c)
    }

    /// Runs after `check_codec`, so the decoded payload is exactly `rows × row_bytes` long.
    /// For an entropy-coded tensor the offset named is its payload's (the row has no file
    /// offset of its own).
    fn check_stored_rows(
        &self,
        t: &TensorInfo,
        c: &dyn codec::Codec,
        payload: &[u8],
    ) -> Result<(), Error> {
        let Some((rows, row_len)) = codec::rows_of(&t.shape) else {
            return Ok(());
        };
        if rows == 0 || !c.has_stored_row_rules(row_len) {
            return Ok(());
        }
        let row_bytes = payload.len() as u64 / rows;
        let coded = is_entropy_coded(t);
        for (row, bytes) in payload.chunks_exact(row_bytes as usize).enumerate() {
            c.check_stored_row(bytes, row_len).map_err(|source| {
                self.err(ErrorKind::StoredRow {
                    tensor: t.name.clone(),
                    row: row as u64,
                    offset: t.offset + if coded { 0 } else { row as u64 * row_bytes },
                    source,
                })
            })?;
        }
        Ok(())
    }

    fn check_zero(&self, from: u64, to: u64) -> Result<(), Error> {
        let bytes = &self.data.as_ref()[from as usize..to as usize];
        match bytes.iter().position(|&b| b != 0) {
            None => Ok(()),
            Some(i) => Err(self.err(ErrorKind::NonZeroPadding {
                offset: from + i as u64,
                byte: bytes[i],
            })),
        }
    }

    fn err(&self, kind: ErrorKind) -> Error {
        Error::new(&self.path, kind)
    }

    fn usage(&self, msg: &str) -> Error {
        self.err(ErrorKind::Usage(msg.into()))
    }
}

/// What `verify` checked, and what it found damaged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub tensors: usize,
    pub payload_bytes: u64,
    pub header_sha256: String,
    /// Tensors whose payload does not hash to the header's sha256, in file order.
    pub damaged: Vec<DamagedPayload>,
}

/// One payload that does not match its checksum; digests in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedPayload {
    pub tensor: String,
    pub expected: String,
    pub actual: String,
}

/// Everything `open` checks, over the file's bytes (SPEC.md §3–§6, §8).
fn parse(bytes: &[u8]) -> Result<(Preamble, Header), ErrorKind> {
    let file_len = bytes.len() as u64;
    let preamble = Preamble::parse(bytes)?;
    let (offset, len) = (preamble.header_offset, preamble.header_len);
    if len > MAX_HEADER_LEN {
        return Err(ErrorKind::HeaderTooLarge {
            len,
            max: MAX_HEADER_LEN,
        });
    }
    let end = offset.checked_add(len).filter(|&end| end <= file_len);
    let Some(end) = end else {
        return Err(ErrorKind::HeaderOutOfBounds {
            offset,
            len,
            file_len,
        });
    };
    if offset < PREAMBLE_LEN || offset % ALIGNMENT != 0 {
        return Err(ErrorKind::HeaderMisplaced {
            offset,
            expected: offset.max(PREAMBLE_LEN).div_ceil(ALIGNMENT) * ALIGNMENT,
        });
    }
    if end < file_len {
        return Err(ErrorKind::TrailingData {
            offset: end,
            count: file_len - end,
        });
    }
    let header_bytes = &bytes[offset as usize..end as usize];
    let actual: [u8; 32] = Sha256::digest(header_bytes).into();
    // Under cargo-fuzz the checksum comparison is skipped: otherwise almost every mutated
    // header would stop here and the parser behind it would go unfuzzed.
    if actual != preamble.header_sha256 && !cfg!(fuzzing) {
        return Err(ErrorKind::HeaderChecksumMismatch {
            expected: hex::encode(preamble.header_sha256),
            actual: hex::encode(actual),
        });
    }
    let header = Header::parse(header_bytes, offset)?;
    check_minor_version(&preamble, &header)?;
    check_entropy_feature(&preamble, &header)?;
    check_placement(&header, offset)?;
    Ok((preamble, header))
}

/// The preamble's minor version is covered by no checksum, so a file with a minor version
/// above 0 records it again in the header as `hct.spec_minor` (u16), and the two must agree;
/// a file without the key has minor version 0 (SPEC.md §3.2). A damaged minor version is
/// then caught like any other damaged byte.
fn check_minor_version(preamble: &Preamble, header: &Header) -> Result<(), ErrorKind> {
    let recorded = lookup(&header.metadata, KEY_SPEC_MINOR);
    let ok = match recorded {
        None => preamble.minor == 0,
        Some(Value::U16(m)) => *m == preamble.minor,
        Some(_) => false,
    };
    if ok {
        return Ok(());
    }
    Err(ErrorKind::MinorVersionMismatch {
        minor: preamble.minor,
        recorded: match recorded {
            None => format!("no '{KEY_SPEC_MINOR}' key, so 0"),
            Some(Value::U16(m)) => format!("'{KEY_SPEC_MINOR}' = {m}"),
            Some(v) => format!("'{KEY_SPEC_MINOR}' of type {}, not u16", v.value_type()),
        },
    })
}

/// Whether a tensor's parameters mark its payload as entropy-coded (whatever the transform).
pub fn is_entropy_coded(t: &TensorInfo) -> bool {
    lookup(&t.codec_params, entropy::PARAM_KEY).is_some()
}

/// Feature bit 0 is set exactly when some tensor is entropy-coded (SPEC.md §6.3): the bit
/// stops readers that predate the transform, and the per-tensor marker inside the
/// checksummed header catches a cleared bit, so neither can be damaged unnoticed.
fn check_entropy_feature(preamble: &Preamble, header: &Header) -> Result<(), ErrorKind> {
    let bit = preamble.required_features & entropy::FEATURE_ENTROPY != 0;
    let coded = header.tensors.iter().find(|t| is_entropy_coded(t));
    match (bit, coded) {
        (true, None) => Err(ErrorKind::EntropyFeatureMismatch {
            detail: "is set, but no tensor is entropy-coded".into(),
        }),
        (false, Some(t)) => Err(ErrorKind::EntropyFeatureMismatch {
            detail: format!(
                "is clear, but tensor {:?} carries '{}'",
                t.name,
                entropy::PARAM_KEY
            ),
        }),
        _ => Ok(()),
    }
}

/// Payloads lie in table order, each at the first multiple of 64 after the previous one
/// (the first at 64), and the header at the first multiple of 64 after the last payload:
/// no overlaps, no holes, nothing unaccounted for (SPEC.md §6.2).
fn check_placement(header: &Header, header_offset: u64) -> Result<(), ErrorKind> {
    let mut expected = PREAMBLE_LEN;
    let mut previous = "the preamble".to_string();
    for t in &header.tensors {
        if t.offset % ALIGNMENT != 0 {
            return Err(ErrorKind::MisalignedPayload {
                tensor: t.name.clone(),
                offset: t.offset,
                alignment: ALIGNMENT,
            });
        }
        let end = t
            .offset
            .checked_add(t.length)
            .filter(|&end| end <= header_offset);
        let Some(end) = end else {
            return Err(ErrorKind::PayloadOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                len: t.length,
                limit: header_offset,
            });
        };
        if t.offset < expected {
            return Err(ErrorKind::OverlappingPayloads {
                tensor: t.name.clone(),
                offset: t.offset,
                previous,
                previous_end: expected,
            });
        }
        if t.offset > expected {
            return Err(ErrorKind::PayloadGap {
                tensor: t.name.clone(),
                offset: t.offset,
                expected,
            });
        }
        expected = align_up(end).expect("end <= header offset, far below u64::MAX");
        previous = t.name.clone();
    }
    if header_offset != expected {
        return Err(ErrorKind::HeaderMisplaced {
            offset: header_offset,
            expected,
        });
    }
    Ok(())
}
