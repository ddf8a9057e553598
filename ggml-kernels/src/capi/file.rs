//! Containers through C: open a `.hct` file read-only over mmap, list and look up its
//! tensors, hand out zero-copy payload pointers, verify checksums and decode rows to f32.
//!
//! Everything `hct_open` returns is checked the way `hct_format` checks it (structure,
//! limits, placement, the header checksum), so payload pointers are always inside the
//! mapping. Payload checksums are checked only on request (`hct_tensor_verify`,
//! `hct_verify`): hashing a whole model at every load is the caller's choice. A payload's
//! length is checked against its codec and shape before any row of it is decoded.

use std::ffi::{c_char, c_int, CString};
use std::path::Path;

use hct_format::codec::{self, Codec};
use hct_format::container::{Category, Error as FormatError, ErrorKind, HctFile, TensorInfo};
use sha2::{Digest, Sha256};

use super::codec::{find as find_codec_traits, hct_codec_traits};
use super::{
    c_str_arg, guard, set_error, Failure, HCT_ERR_CHECKSUM, HCT_ERR_INVALID_FILE, HCT_ERR_IO,
    HCT_ERR_NOT_FOUND, HCT_ERR_UNSUPPORTED, HCT_MAX_DIMS,
};
use crate::layout::WeightFormat;
use crate::platform::active;
use crate::traits::traits_for;

/// An open container (opaque). Immutable: safe to share between threads.
#[allow(non_camel_case_types)]
pub struct hct_file {
    file: HctFile,
    tensors: Vec<TensorRecord>,
    /// Tensor indices sorted by name bytes, for `hct_tensor_find`.
    by_name: Vec<u32>,
}

/// One tensor as `hct_tensor_get_info` describes it. Pointers stay valid until `hct_close`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct hct_tensor_info {
    /// The name, `name_len` bytes of UTF-8 followed by a NUL. The spec allows U+0000 inside
    /// a name, so `name_len`, not the first NUL, is authoritative.
    pub name: *const c_char,
    pub name_len: usize,
    /// The codec id, e.g. "int4_opt_v1" (NUL-terminated ASCII).
    pub codec_id: *const c_char,
    /// What the tensor was converted from, e.g. "bf16" (NUL-terminated ASCII).
    pub source_dtype: *const c_char,
    pub n_dims: u32,
    /// The shape, outermost first (row-major: `dims[n_dims - 1]` is contiguous; GGUF's `ne`
    /// is this list reversed); entries from `n_dims` on are 0.
    pub dims: [u64; HCT_MAX_DIMS],
    /// `dims[0] * … * dims[n_dims - 2]` rows of `row_len = dims[n_dims - 1]` elements; a 0-D
    /// tensor is one row of one element.
    pub n_rows: u64,
    pub row_len: u64,
    /// The payload inside the mapping (64-byte aligned) and its length in bytes.
    pub payload: *const u8,
    pub payload_len: u64,
    /// The payload's offset in the file.
    pub payload_offset: u64,
    /// The codec's kernels, or NULL if libhct has none for it (the tensor can still be
    /// decoded when the codec is one `hct_format` decodes, e.g. f16 or ggml_q4_k).
    pub traits: *const hct_codec_traits,
}

/// Opens `path` read-only over mmap and checks its structure and header checksum. On
/// success `*out` is the file (close it with `hct_close`); on failure `*out` is NULL and the
/// status says why (`HCT_ERR_IO`, `HCT_ERR_INVALID_FILE`, `HCT_ERR_CHECKSUM`,
/// `HCT_ERR_UNSUPPORTED`).
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hct_open(path: *const c_char, out: *mut *mut hct_file) -> c_int {
    guard("hct_open", || {
        check_out(out, "out")?;
        // SAFETY: out is non-NULL and aligned; (caller contract) writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: forwarded caller contract.
        let path = path_from_bytes(unsafe { c_str_arg(path, "path") }?)?;
        let file = HctFile::open(path).map_err(format_failure)?;
        let handle = Box::new(hct_file::new(file)?);
        // SAFETY: as above.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Closes a file from `hct_open`, unmapping it: every pointer obtained from it becomes
/// invalid. NULL is ignored. Closing twice is undefined.
///
/// # Safety
/// `file` must be NULL or a file from `hct_open` not yet closed, used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn hct_close(file: *mut hct_file) {
    if !file.is_null() {
        // SAFETY: (caller contract) the pointer came from Box::into_raw in hct_open and is
        // closed once. Dropping cannot panic into C: dropping an HctFile only unmaps.
        drop(unsafe { Box::from_raw(file) });
    }
}

/// Number of tensors, or −1 (and `HCT_ERR_INVALID_ARGUMENT`) for a NULL file.
///
/// # Safety
/// `file` must be NULL or an open file.
#[no_mangle]
pub unsafe extern "C" fn hct_tensor_count(file: *const hct_file) -> i64 {
    // SAFETY: forwarded caller contract.
    match unsafe { file_arg(file) } {
        Ok(f) => f.tensors.len() as i64,
        Err(e) => {
            set_error(e.status, format!("hct_tensor_count: {}", e.message));
            -1
        }
    }
}

/// Finds the tensor named `name` (NUL-terminated, compared byte-wise) and writes its index
/// to `*index`; `HCT_ERR_NOT_FOUND` if there is none.
///
/// # Safety
/// `file` must be NULL or open; `name` NULL or NUL-terminated; `index` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hct_tensor_find(
    file: *const hct_file,
    name: *const c_char,
    index: *mut i64,
) -> c_int {
    guard("hct_tensor_find", || {
        // SAFETY: forwarded caller contract.
        let f = unsafe { file_arg(file) }?;
        // SAFETY: forwarded caller contract.
        let name = unsafe { c_str_arg(name, "name") }?;
        check_out(index, "index")?;
        let found = f
            .by_name
            .binary_search_by(|&i| f.tensors[i as usize].name_bytes().cmp(name))
            .map_err(|_| {
                Failure::new(
                    HCT_ERR_NOT_FOUND,
                    format!(
                        "{}: no tensor named {:?}",
                        f.file.path().display(),
                        String::from_utf8_lossy(name)
                    ),
                )
            })?;
        // SAFETY: index is non-NULL and aligned; (caller contract) writable.
        unsafe { index.write(i64::from(f.by_name[found])) };
        Ok(())
    })
}

/// Describes tensor `index` (0 ≤ index < `hct_tensor_count`) in `*out`.
///
/// # Safety
/// `file` must be NULL or open; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hct_tensor_get_info(
    file: *const hct_file,
    index: i64,
    out: *mut hct_tensor_info,
) -> c_int {
    guard("hct_tensor_get_info", || {
        // SAFETY: forwarded caller contract.
        let f = unsafe { file_arg(file) }?;
        let (t, record) = f.tensor(index)?;
        check_out(out, "out")?;
        let payload = f.file.payload(t).map_err(format_failure)?;
        let mut dims = [0u64; HCT_MAX_DIMS];
        dims[..t.shape.len()].copy_from_slice(&t.shape);
        let info = hct_tensor_info {
            name: record.name.as_ptr().cast(),
            name_len: record.name.len() - 1,
            codec_id: record.codec_id.as_ptr(),
            source_dtype: record.source_dtype.as_ptr(),
            n_dims: t.shape.len() as u32,
            dims,
            n_rows: record.rows,
            row_len: record.row_len,
            payload: payload.as_ptr(),
            payload_len: t.length,
            payload_offset: t.offset,
            traits: record
                .traits
                .map_or(std::ptr::null(), |t| t as *const hct_codec_traits),
        };
        // SAFETY: out is non-NULL and aligned; (caller contract) writable.
        unsafe { out.write(info) };
        Ok(())
    })
}

/// Checks tensor `index`'s payload against its SHA-256 in the header: `HCT_OK` or
/// `HCT_ERR_CHECKSUM` (the message names the tensor and both hashes).
///
/// # Safety
/// `file` must be NULL or open.
#[no_mangle]
pub unsafe extern "C" fn hct_tensor_verify(file: *const hct_file, index: i64) -> c_int {
    guard("hct_tensor_verify", || {
        // SAFETY: forwarded caller contract.
        let f = unsafe { file_arg(file) }?;
        let (t, _) = f.tensor(index)?;
        f.verify(t)
    })
}

/// Checks every tensor's payload checksum, in file order; the first mismatch is reported.
///
/// # Safety
/// `file` must be NULL or open.
#[no_mangle]
pub unsafe extern "C" fn hct_verify(file: *const hct_file) -> c_int {
    guard("hct_verify", || {
        // SAFETY: forwarded caller contract.
        let f = unsafe { file_arg(file) }?;
        f.file.tensors().iter().try_for_each(|t| f.verify(t))
    })
}

/// Decodes rows `first_row .. first_row + n_rows` of tensor `index` to f32 into `out`,
/// which holds `out_len` floats (at least `n_rows * row_len`). Codecs with kernels decode
/// through the active kernels (bit-identical to the reference on every ISA); others through
/// `hct_format`'s reference decoders. `HCT_ERR_UNSUPPORTED` for a codec neither knows.
///
/// # Safety
/// `file` must be NULL or open; `out` NULL or `out_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn hct_tensor_decode_rows(
    file: *const hct_file,
    index: i64,
    first_row: u64,
    n_rows: u64,
    out: *mut f32,
    out_len: u64,
) -> c_int {
    guard("hct_tensor_decode_rows", || {
        // SAFETY: forwarded caller contract.
        let f = unsafe { file_arg(file) }?;
        let (t, record) = f.tensor(index)?;
        let label = || format!("tensor {:?} in {}", t.name, f.file.path().display());
        if first_row
            .checked_add(n_rows)
            .is_none_or(|end| end > record.rows)
        {
            return Err(Failure::invalid_argument(format!(
                "{}: rows {first_row}..{first_row}+{n_rows} requested, the tensor has {} rows",
                label(),
                record.rows
            )));
        }
        let needed = n_rows
            .checked_mul(record.row_len)
            .filter(|&n| n <= isize::MAX as u64 / 4)
            .ok_or_else(|| {
                Failure::invalid_argument(format!(
                    "{}: {n_rows} rows of {} floats do not fit in memory",
                    label(),
                    record.row_len
                ))
            })?;
        if out_len < needed {
            return Err(Failure::invalid_argument(format!(
                "{}: out holds {out_len} floats, {n_rows} rows of {} need {needed}",
                label(),
                record.row_len
            )));
        }
        if needed == 0 {
            return Ok(());
        }
        check_out(out, "out")?;
        let decoder = f.decoder(t, record)?;
        let row_len = record.row_len as usize;
        let row_bytes = decoder.row_bytes;
        let payload = f.file.payload(t).map_err(format_failure)?;
        // SAFETY: out is non-NULL and aligned; (caller contract) it holds out_len ≥ needed
        // floats, and needed fits in isize bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(out, needed as usize) };
        // The payload is exactly rows · row_bytes (checked by decoder()), so the rows asked
        // for are inside it.
        let start = first_row as usize * row_bytes;
        for (i, dst) in out.chunks_exact_mut(row_len).enumerate() {
            let src = &payload[start + i * row_bytes..][..row_bytes];
            decoder.decode_row(src, dst).map_err(|message| {
                Failure::new(
                    HCT_ERR_INVALID_FILE,
                    format!("{}, row {}: {message}", label(), first_row + i as u64),
                )
            })?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------

struct TensorRecord {
    /// The name's bytes followed by a NUL.
    name: Box<[u8]>,
    codec_id: CString,
    source_dtype: CString,
    rows: u64,
    row_len: u64,
    traits: Option<&'static hct_codec_traits>,
}

impl TensorRecord {
    fn name_bytes(&self) -> &[u8] {
        &self.name[..self.name.len() - 1]
    }
}

/// How one tensor's rows are decoded.
struct RowDecoder {
    kind: DecoderKind,
    row_bytes: usize,
}

enum DecoderKind {
    Kernel(WeightFormat),
    Reference(&'static dyn Codec),
}

impl RowDecoder {
    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), String> {
        match self.kind {
            DecoderKind::Kernel(format) => active()
                .to_float(format, src, dst)
                .map_err(|e| e.to_string()),
            DecoderKind::Reference(codec) => codec.decode_row(src, dst).map_err(|e| e.to_string()),
        }
    }
}

impl hct_file {
    fn new(file: HctFile) -> Result<hct_file, Failure> {
        let path = file.path().display().to_string();
        let tensors = file
            .tensors()
            .iter()
            .map(|t| {
                // HctFile::open refused element counts that overflow.
                let (rows, row_len) = codec::rows_of(&t.shape).ok_or_else(|| {
                    Failure::new(
                        HCT_ERR_INVALID_FILE,
                        format!("{path}: tensor {:?}: element count overflows", t.name),
                    )
                })?;
                let mut name = Vec::with_capacity(t.name.len() + 1);
                name.extend_from_slice(t.name.as_bytes());
                name.push(0);
                Ok(TensorRecord {
                    name: name.into_boxed_slice(),
                    codec_id: identifier(&t.codec),
                    source_dtype: identifier(&t.source_dtype),
                    rows,
                    row_len,
                    traits: find_codec_traits(t.codec.as_bytes()),
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let mut by_name: Vec<u32> = (0..tensors.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| {
            tensors[a as usize]
                .name_bytes()
                .cmp(tensors[b as usize].name_bytes())
        });
        Ok(hct_file {
            file,
            tensors,
            by_name,
        })
    }

    fn tensor(&self, index: i64) -> Result<(&TensorInfo, &TensorRecord), Failure> {
        usize::try_from(index)
            .ok()
            .and_then(|i| Some((self.file.tensors().get(i)?, self.tensors.get(i)?)))
            .ok_or_else(|| {
                Failure::invalid_argument(format!(
                    "tensor index {index} is out of range: {} has {} tensors",
                    self.file.path().display(),
                    self.tensors.len()
                ))
            })
    }

    fn verify(&self, t: &TensorInfo) -> Result<(), Failure> {
        // The checksum covers the stored bytes, entropy-coded or not (SPEC.md §6.3).
        let payload = self.file.stored_payload(t).map_err(format_failure)?;
        let actual: [u8; 32] = Sha256::digest(payload).into();
        if actual == t.sha256 {
            return Ok(());
        }
        Err(format_failure(FormatError::new(
            self.file.path(),
            ErrorKind::PayloadChecksumMismatch {
                tensor: t.name.clone(),
                expected: hex(&t.sha256),
                actual: hex(&actual),
            },
        )))
    }

    /// The decoder of a tensor, once its payload length is checked against codec and shape.
    fn decoder(&self, t: &TensorInfo, record: &TensorRecord) -> Result<RowDecoder, Failure> {
        let err = |kind| format_failure(FormatError::new(self.file.path(), kind));
        // An entropy-coded payload is not codec bytes (SPEC.md §6.3); libhct decodes from
        // the mapping only, so it refuses such a tensor (HCT_ERR_UNSUPPORTED).
        if hct_format::container::is_entropy_coded(t) {
            return Err(err(ErrorKind::EntropyCoded {
                tensor: t.name.clone(),
            }));
        }
        let row_len = usize::try_from(record.row_len).map_err(|_| {
            Failure::invalid_argument(format!(
                "tensor {:?}: rows of {} elements are too long for this machine",
                t.name, record.row_len
            ))
        })?;
        let (kind, row_bytes) = match traits_for(&t.codec) {
            Some(kernel) => {
                let bytes = kernel.format.row_bytes(row_len).map_err(|e| {
                    Failure::new(HCT_ERR_INVALID_FILE, format!("tensor {:?}: {e}", t.name))
                })?;
                (DecoderKind::Kernel(kernel.format), bytes as u64)
            }
            None => {
                let codec = codec::find(&t.codec).ok_or_else(|| {
                    err(ErrorKind::UnknownCodec {
                        tensor: t.name.clone(),
                        codec: t.codec.clone(),
                    })
                })?;
                if !codec.can_decode() {
                    return Err(Failure::new(
                        HCT_ERR_UNSUPPORTED,
                        format!(
                            "tensor {:?}: codec {} has no decoder in this build",
                            t.name, t.codec
                        ),
                    ));
                }
                let bytes = codec.row_bytes(record.row_len).map_err(|source| {
                    err(ErrorKind::Codec {
                        tensor: t.name.clone(),
                        source,
                    })
                })?;
                (DecoderKind::Reference(codec), bytes)
            }
        };
        let expected = record.rows.checked_mul(row_bytes);
        if expected != Some(t.length) {
            return Err(err(ErrorKind::PayloadLengthMismatch {
                tensor: t.name.clone(),
                codec: t.codec.clone(),
                shape: t.shape.clone(),
                expected: expected.unwrap_or(u64::MAX),
                actual: t.length,
            }));
        }
        Ok(RowDecoder {
            kind,
            // Equal to a payload length, so it fits in usize.
            row_bytes: row_bytes as usize,
        })
    }
}

/// # Safety
/// `file` must be NULL or a file from `hct_open` not yet closed.
unsafe fn file_arg<'a>(file: *const hct_file) -> Result<&'a hct_file, Failure> {
    // SAFETY: (caller contract) non-NULL means open.
    unsafe { file.as_ref() }.ok_or_else(|| Failure::invalid_argument("file is NULL"))
}

fn check_out<T>(p: *mut T, what: &str) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::invalid_argument(format!("{what} is NULL")));
    }
    if !p.is_aligned() {
        return Err(Failure::invalid_argument(format!(
            "{what} is not aligned to {} bytes",
            std::mem::align_of::<T>()
        )));
    }
    Ok(())
}

fn format_failure(e: FormatError) -> Failure {
    let status = match e.category() {
        Category::Io => HCT_ERR_IO,
        Category::Invalid => HCT_ERR_INVALID_FILE,
        Category::Checksum => HCT_ERR_CHECKSUM,
        Category::Unsupported => HCT_ERR_UNSUPPORTED,
    };
    Failure::new(status, e.to_string())
}

fn path_from_bytes(bytes: &[u8]) -> Result<&Path, Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes)
            .map(Path::new)
            .map_err(|_| Failure::invalid_argument("path is not UTF-8"))
    }
}

/// Codec ids and dtypes are ASCII identifiers (SPEC.md §5), so never hold NUL; should one,
/// it is cut there rather than failing the open.
fn identifier(s: &str) -> CString {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("cut at the first NUL")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
