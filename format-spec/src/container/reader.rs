//! Reading containers: `HctFile::open` maps the file and checks everything needed to hand
//! out payload slices safely; `validate` adds the codec-level rules; `verify` the checksums.

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
        let path = path.as_ref();
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
        Container::from_bytes(map, path)
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

    /// A tensor's payload, zero-copy.
    pub fn payload(&self, t: &TensorInfo) -> Result<&[u8], Error> {
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
            self.check_stored_rows(t, c)?;
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
                let payload = self.payload(t).map_or(&[][..], |p| p);
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
        let payload = self.payload(t)?;
        let start = (first_row * row_bytes) as usize;
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

    fn check_codec(&self, t: &TensorInfo) -> Result<&'static dyn codec::Codec, Error> {
        let c = self.codec_of(t)?;
        let expected = codec::payload_len(c, &t.shape).map_err(|source| {
            self.err(ErrorKind::Codec {
                tensor: t.name.clone(),
                source,
            })
        })?;
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

    /// Runs after `check_codec`, so the payload is exactly `rows × row_bytes` long and in
    /// bounds.
    fn check_stored_rows(&self, t: &TensorInfo, c: &dyn codec::Codec) -> Result<(), Error> {
        let Some((rows, row_len)) = codec::rows_of(&t.shape) else {
            return Ok(());
        };
        if rows == 0 || !c.has_stored_row_rules(row_len) {
            return Ok(());
        }
        let row_bytes = t.length / rows;
        let payload = &self.data.as_ref()[t.offset as usize..(t.offset + t.length) as usize];
        for (row, bytes) in payload.chunks_exact(row_bytes as usize).enumerate() {
            c.check_stored_row(bytes, row_len).map_err(|source| {
                self.err(ErrorKind::StoredRow {
                    tensor: t.name.clone(),
                    row: row as u64,
                    offset: t.offset + row as u64 * row_bytes,
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
