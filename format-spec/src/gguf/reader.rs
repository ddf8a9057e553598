//! A zero-copy GGUF reader: the header is parsed into owned values, tensor data stays in the
//! memory map and is handed out as slices.
//!
//! Every count, length and offset read from the file is checked against the bytes that
//! remain before it is used to index or allocate. The rules enforced are ggml's own
//! (`ggml/src/gguf.cpp` of the pinned llama.cpp): non-empty unique UTF-8 keys, at most 4
//! dimensions each within int64, an element count within int64, tensor names shorter than
//! 64 bytes, rows that are whole blocks, `general.alignment` a u32 power of two. Where ggml
//! is stricter than the format needs (it wants tensors packed back to back in header
//! order), this reader follows gguf-py instead and accepts any layout whose tensors are
//! aligned, inside the file and disjoint; [`GgufFile::is_canonical_layout`] tells which
//! kind a file is.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::GgufError;
use super::extension::{self, ExtensionType, TensorType, EXT_TYPE_BASE, KEY_EXT_TYPES};
use super::{
    align_up, GgufTensorInfo, DEFAULT_ALIGNMENT, GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_MAGIC,
    KEY_ALIGNMENT, MAX_ALIGNMENT, MAX_ARRAY_NESTING,
};
use crate::ggml_type::{GgmlType, GgmlTypeLookup};
use crate::value::{Array, Metadata, Value, ValueType};

/// One tensor of a GGUF file: what it is, and where its bytes are.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    pub info: GgufTensorInfo,
    /// Offset of the tensor's data from the start of the data section.
    pub offset: u64,
    /// Bytes of data (`GgmlType::row_bytes(ne[0]) * ne[1] * ne[2] * ne[3]`).
    pub size: u64,
    /// Absolute file offset of this tensor's entry in the header (for messages).
    pub header_offset: u64,
}

/// An open GGUF file (v2 or v3, little-endian).
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    bytes: Backing,
    header: Header,
}

impl GgufFile {
    /// Map `path` and parse its header. Tensor data is not read until asked for.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |action, source| GgufError::Io {
            path: path.clone(),
            action,
            source,
        };
        let file = File::open(&path).map_err(|e| io("cannot open", e))?;
        let meta = file.metadata().map_err(|e| io("cannot stat", e))?;
        if !meta.is_file() {
            return Err(io("cannot read", crate::output_file::not_a_file(&meta)));
        }
        let len = meta.len();
        let bytes = if len == 0 {
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only. If another process truncates or rewrites the
            // file while it is mapped, reads may fault or see new bytes; that is the
            // documented contract of every mmap-based model loader, llama.cpp's included.
            Backing::Mmap(unsafe { Mmap::map(&file) }.map_err(|e| io("cannot map", e))?)
        };
        let header = parse(bytes.as_slice(), &path)?;
        Ok(GgufFile {
            path,
            bytes,
            header,
        })
    }

    /// Parse a GGUF file held in memory (fuzzing, tests, data from elsewhere). Messages
    /// name the file `<memory>`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        let path = PathBuf::from("<memory>");
        let header = parse(&bytes, &path)?;
        Ok(GgufFile {
            path,
            bytes: Backing::Owned(bytes),
            header,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version field (2 or 3). Both share one layout.
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Alignment of the data section and of every tensor: `general.alignment` if present,
    /// otherwise 32.
    pub fn alignment(&self) -> u32 {
        self.header.alignment
    }

    /// Every key/value pair in file order, `general.alignment` included when present.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// Tensors in header order.
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.header.tensors
    }

    /// Index of the tensor called `name`.
    pub fn find_tensor(&self, name: &str) -> Option<usize> {
        self.header.tensors.iter().position(|t| t.info.name == name)
    }

    /// Tensor `i`'s bytes, straight from the map. Panics if `i >= tensors().len()`.
    pub fn tensor_data(&self, i: usize) -> &[u8] {
        let t = &self.header.tensors[i];
        // parse() checked that start + size lies inside the file, so both fit in usize.
        let start = (self.header.data_offset + t.offset) as usize;
        &self.bytes.as_slice()[start..start + t.size as usize]
    }

    /// Let tensor `i`'s mapped pages leave this process's resident set (they stay in the
    /// page cache; a later read faults them back in). A no-op for in-memory files or an
    /// index past the end.
    pub fn release_tensor(&self, i: usize) {
        let (Backing::Mmap(map), Some(t)) = (&self.bytes, self.header.tensors.get(i)) else {
            return;
        };
        let start = (self.header.data_offset + t.offset) as usize;
        crate::safetensors_io::release_range(map, start, t.size as usize);
    }

    /// Absolute file offset where the data section starts (end of header, aligned up).
    pub fn data_offset(&self) -> u64 {
        self.header.data_offset
    }

    pub fn file_len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// True if the file is laid out exactly as ggml's and gguf-py's writers (and
    /// [`super::GgufWriter`]) lay it out: tensors back to back in header order from offset 0,
    /// each padded with zeros to the alignment, and nothing after the last padding. Such a
    /// file is reproduced byte for byte by writing its metadata, tensor infos and data.
    pub fn is_canonical_layout(&self) -> bool {
        let h = &self.header;
        let bytes = self.bytes.as_slice();
        let align = h.alignment as u64;
        let mut expected = 0u64;
        for t in &h.tensors {
            if t.offset != expected {
                return false;
            }
            // Sizes and offsets were bounded by the file length, so no overflow here.
            expected = align_up(t.offset + t.size, align);
        }
        let end = h.data_offset + expected;
        if end != bytes.len() as u64 {
            return false;
        }
        let header_padding = &bytes[h.header_end as usize..h.data_offset as usize];
        let tensor_padding_is_zero = h.tensors.iter().all(|t| {
            let from = (h.data_offset + t.offset + t.size) as usize;
            let to = (h.data_offset + align_up(t.offset + t.size, align)) as usize;
            bytes[from..to].iter().all(|&b| b == 0)
        });
        header_padding.iter().all(|&b| b == 0) && tensor_padding_is_zero
    }
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Backing {
    Mmap(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn as_slice(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

#[derive(Debug)]
struct Header {
    version: u32,
    alignment: u32,
    metadata: Metadata,
    tensors: Vec<GgufTensor>,
    /// Offset just past the last tensor info.
    header_end: u64,
    data_offset: u64,
}

/// Upper bound on speculative capacity for lists whose in-memory element is larger than
/// its smallest encoding (strings, nested arrays, key/value pairs, tensor infos). Beyond
/// it the Vec grows as elements are actually parsed, so memory tracks real content and a
/// huge claimed count costs nothing before it is disproved.
const PREALLOC_CAP: u64 = 4096;

/// Smallest key/value pair: empty key length (8), type (4), one-byte scalar.
const MIN_KV_BYTES: usize = 8 + 4 + 1;
/// Smallest tensor info: name length (8), n_dims (4), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 4 + 8;

fn parse(bytes: &[u8], path: &Path) -> Result<Header, GgufError> {
    if bytes.is_empty() {
        return Err(GgufError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let mut cur = Cursor {
        bytes,
        pos: 0,
        path,
    };

    let magic = cur.take(4, &|| "magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic {
            path: path.to_path_buf(),
            found: [magic[0], magic[1], magic[2], magic[3]],
        });
    }
    let version = cur.u32(&|| "version".into())?;
    // A file written on a big-endian host reads here as a version with its low 16 bits
    // clear (3 becomes 0x0300_0000); ggml and gguf-py detect the byte order the same way.
    if version != 0 && version & 0xFFFF == 0 {
        return Err(GgufError::BigEndian {
            path: path.to_path_buf(),
            version: version.swap_bytes(),
        });
    }
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }

    let count_at = cur.pos;
    let n_tensors = cur.u64(&|| "tensor count".into())?;
    let n_kv_at = cur.pos;
    let n_kv = cur.u64(&|| "key/value count".into())?;
    // Every key/value pair and tensor info still has to fit in what follows.
    cur.check_count(n_kv, MIN_KV_BYTES, n_kv_at, &|| "key/value count".into())?;
    // n_kv * MIN_KV_BYTES <= remaining after the check above, so no overflow.
    let room_for_tensors = cur.remaining() as u64 - n_kv * MIN_KV_BYTES as u64;
    let max_tensors = room_for_tensors / MIN_TENSOR_INFO_BYTES as u64;
    if n_tensors > max_tensors {
        return Err(GgufError::CountTooLarge {
            path: path.to_path_buf(),
            context: "tensor count".into(),
            offset: count_at as u64,
            count: n_tensors,
            max: max_tensors,
        });
    }

    // Key/value section.
    let mut metadata: Metadata = Vec::with_capacity(n_kv.min(PREALLOC_CAP) as usize);
    let mut key_offsets: HashMap<String, u64> = HashMap::new();
    let mut alignment_at = 0u64;
    let mut ext_table_at = 0u64;
    for index in 0..n_kv {
        let key_at = cur.pos as u64;
        let raw = cur.string(&|| format!("key #{index}"))?;
        let key = std::str::from_utf8(raw).map_err(|_| GgufError::InvalidUtf8Key {
            path: path.to_path_buf(),
            index,
            offset: key_at,
        })?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey {
                path: path.to_path_buf(),
                index,
                offset: key_at,
            });
        }
        if let Some(&first_offset) = key_offsets.get(key) {
            return Err(GgufError::DuplicateKey {
                path: path.to_path_buf(),
                key: key.to_string(),
                offset: key_at,
                first_offset,
            });
        }
        key_offsets.insert(key.to_string(), key_at);
        let type_at = cur.pos as u64;
        let ty = cur.value_type(key, &|| format!("key '{key}' value type"))?;
        if key == KEY_ALIGNMENT {
            alignment_at = type_at;
        }
        if key == KEY_EXT_TYPES {
            ext_table_at = type_at;
        }
        let value = cur.value(ty, key, 0)?;
        metadata.push((key.to_string(), value));
    }

    let alignment = match crate::value::lookup(&metadata, KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() && *a <= MAX_ALIGNMENT => *a,
        Some(Value::U32(a)) if a.is_power_of_two() => {
            return Err(GgufError::AlignmentTooLarge {
                path: path.to_path_buf(),
                offset: alignment_at,
                alignment: *a,
                max: MAX_ALIGNMENT,
            })
        }
        Some(Value::U32(a)) => {
            return Err(GgufError::AlignmentNotPowerOfTwo {
                path: path.to_path_buf(),
                offset: alignment_at,
                alignment: *a,
            })
        }
        Some(other) => {
            return Err(GgufError::AlignmentWrongType {
                path: path.to_path_buf(),
                offset: alignment_at,
                found: other.value_type(),
            })
        }
    };

    let ext_table =
        extension::extension_table(&metadata).map_err(|e| GgufError::InvalidExtensionTable {
            path: path.to_path_buf(),
            offset: ext_table_at,
            reason: e.to_string(),
        })?;

    // Tensor infos.
    let mut tensors: Vec<GgufTensor> = Vec::with_capacity(n_tensors.min(PREALLOC_CAP) as usize);
    let mut name_offsets: HashMap<String, u64> = HashMap::new();
    for index in 0..n_tensors {
        let t = cur.tensor_info(index, &ext_table)?;
        if let Some(&first_offset) = name_offsets.get(&t.info.name) {
            return Err(GgufError::DuplicateTensorName {
                path: path.to_path_buf(),
                tensor: t.info.name,
                offset: t.header_offset,
                first_offset,
            });
        }
        name_offsets.insert(t.info.name.clone(), t.header_offset);
        tensors.push(t);
    }

    let header_end = cur.pos as u64;
    // Both writers pad the header to the alignment even with no tensors, and gguf-py's
    // reader always aligns, so the data section start is defined the same way for all files.
    let data_offset = align_up(header_end, alignment as u64);
    check_tensor_placement(&tensors, data_offset, alignment, bytes.len() as u64, path)?;

    Ok(Header {
        version,
        alignment,
        metadata,
        tensors,
        header_end,
        data_offset,
    })
}

fn check_tensor_placement(
    tensors: &[GgufTensor],
    data_offset: u64,
    alignment: u32,
    file_len: u64,
    path: &Path,
) -> Result<(), GgufError> {
    for t in tensors {
        if t.offset % alignment as u64 != 0 {
            return Err(GgufError::MisalignedTensorOffset {
                path: path.to_path_buf(),
                tensor: t.info.name.clone(),
                offset: t.header_offset,
                data_offset: t.offset,
                alignment,
            });
        }
        let start = data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size));
        if end.is_none_or(|e| e > file_len) {
            return Err(GgufError::TensorDataPastEnd {
                path: path.to_path_buf(),
                tensor: t.info.name.clone(),
                offset: t.header_offset,
                start: data_offset.saturating_add(t.offset),
                size: t.size,
                file_len,
            });
        }
    }

    // Disjointness: walk tensors by start, remembering the furthest end seen so far.
    // Equal starts are ordered by size so empty tensors never "overlap" their neighbour.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (tensors[i].offset, tensors[i].size));
    let mut furthest: Option<(usize, u64)> = None;
    for &i in &order {
        let t = &tensors[i];
        if let Some((j, end)) = furthest {
            if t.offset < end {
                return Err(GgufError::OverlappingTensors {
                    path: path.to_path_buf(),
                    first: tensors[j].info.name.clone(),
                    second: t.info.name.clone(),
                    first_end: data_offset + end,
                    second_start: data_offset + t.offset,
                });
            }
        }
        let end = t.offset + t.size;
        if furthest.is_none_or(|(_, e)| end > e) {
            furthest = Some((i, end));
        }
    }
    Ok(())
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

type Context<'c> = &'c dyn Fn() -> String;

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, context: Context) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                context: context(),
                offset: self.pos as u64,
                needed: n as u64,
                remaining: self.remaining() as u64,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, context: Context) -> Result<u32, GgufError> {
        let b = self.take(4, context)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, context: Context) -> Result<u64, GgufError> {
        let b = self.take(8, context)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// Refuse a count of elements that cannot fit in the remaining bytes.
    fn check_count(
        &self,
        count: u64,
        min_elem_bytes: usize,
        count_at: usize,
        context: Context,
    ) -> Result<(), GgufError> {
        let max = (self.remaining() / min_elem_bytes) as u64;
        if count > max {
            return Err(GgufError::CountTooLarge {
                path: self.path.to_path_buf(),
                context: context(),
                offset: count_at as u64,
                count,
                max,
            });
        }
        Ok(())
    }

    /// A u64 length followed by that many bytes.
    fn string(&mut self, context: Context) -> Result<&'a [u8], GgufError> {
        let at = self.pos;
        let len = self.u64(context)?;
        if len > self.remaining() as u64 {
            return Err(GgufError::StringPastEnd {
                path: self.path.to_path_buf(),
                context: context(),
                offset: at as u64,
                len,
                remaining: self.remaining() as u64,
            });
        }
        self.take(len as usize, context)
    }

    fn value_type(&mut self, key: &str, context: Context) -> Result<ValueType, GgufError> {
        let at = self.pos as u64;
        let id = self.u32(context)?;
        ValueType::from_u32(id).ok_or_else(|| GgufError::InvalidValueType {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            offset: at,
            type_id: id,
        })
    }

    /// One value of type `ty`; `depth` is the number of arrays enclosing it.
    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value, GgufError> {
        let ctx = || format!("key '{key}' value");
        Ok(match ty {
            ValueType::U8 => Value::U8(self.take(1, &ctx)?[0]),
            ValueType::I8 => Value::I8(self.take(1, &ctx)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array_of(&ctx)?)),
            ValueType::Bool => {
                let at = self.pos as u64;
                let byte = self.take(1, &ctx)?[0];
                Value::Bool(self.bool_byte(byte, key, at)?)
            }
            ValueType::String => Value::String(self.string(&ctx)?.to_vec()),
            ValueType::Array => Value::Array(self.array(key, depth + 1)?),
        })
    }

    fn array_of<const N: usize>(&mut self, context: Context) -> Result<[u8; N], GgufError> {
        let b = self.take(N, context)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn bool_byte(&self, byte: u8, key: &str, at: u64) -> Result<bool, GgufError> {
        match byte {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(GgufError::InvalidBool {
                path: self.path.to_path_buf(),
                key: key.to_string(),
                offset: at,
                byte,
            }),
        }
    }

    /// An array header (element type, count) and its elements; `depth` counts this array.
    fn array(&mut self, key: &str, depth: u32) -> Result<Array, GgufError> {
        let at = self.pos as u64;
        if depth > MAX_ARRAY_NESTING {
            return Err(GgufError::NestingTooDeep {
                path: self.path.to_path_buf(),
                key: key.to_string(),
                offset: at,
                max_depth: MAX_ARRAY_NESTING,
            });
        }
        let ctx = || format!("key '{key}' array");
        let elem = self.value_type(key, &ctx)?;
        let count_at = self.pos;
        let count = self.u64(&ctx)?;
        self.check_count(count, elem.min_encoded_size(), count_at, &ctx)?;
        // From here `count` elements provably fit in the remaining bytes, so `count` fits
        // in usize and fixed-width element lists can be allocated exactly.
        let n = count as usize;
        Ok(match elem {
            ValueType::U8 => Array::U8(self.take(n, &ctx)?.to_vec()),
            ValueType::I8 => Array::I8(self.take(n, &ctx)?.iter().map(|&b| b as i8).collect()),
            ValueType::U16 => Array::U16(self.fixed(n, &ctx, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.fixed(n, &ctx, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.fixed(n, &ctx, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.fixed(n, &ctx, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.fixed(n, &ctx, f32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.fixed(n, &ctx, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.fixed(n, &ctx, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.fixed(n, &ctx, f64::from_le_bytes)?),
            ValueType::Bool => {
                let start = self.pos as u64;
                let raw = self.take(n, &ctx)?;
                let mut out = Vec::with_capacity(n);
                for (i, &b) in raw.iter().enumerate() {
                    out.push(self.bool_byte(b, key, start + i as u64)?);
                }
                Array::Bool(out)
            }
            ValueType::String => {
                let mut out = Vec::with_capacity(count.min(PREALLOC_CAP) as usize);
                for _ in 0..n {
                    out.push(self.string(&ctx)?.to_vec());
                }
                Array::String(out)
            }
            ValueType::Array => {
                let mut out = Vec::with_capacity(count.min(PREALLOC_CAP) as usize);
                for _ in 0..n {
                    out.push(self.array(key, depth + 1)?);
                }
                Array::Array(out)
            }
        })
    }

    fn fixed<T, const N: usize>(
        &mut self,
        n: usize,
        context: Context,
        decode: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        // n * N <= remaining was checked by the caller; take() checks it again.
        let raw = self.take(n * N, context)?;
        Ok(raw
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                decode(a)
            })
            .collect())
    }

    fn tensor_info(&mut self, index: u64, ext_table: &[String]) -> Result<GgufTensor, GgufError> {
        let header_offset = self.pos as u64;
        let path = self.path.to_path_buf();
        let raw = self.string(&|| format!("tensor #{index} name"))?;
        let name = std::str::from_utf8(raw).map_err(|_| GgufError::InvalidUtf8TensorName {
            path: path.clone(),
            index,
            offset: header_offset,
        })?;
        // ggml keeps names in a char[GGML_MAX_NAME] with a terminating NUL, so a NUL inside
        // would cut the name short there: two tools would see two different names.
        if let Some(at) = name.bytes().position(|b| b == 0) {
            return Err(GgufError::NulInTensorName {
                path,
                index,
                offset: header_offset,
                at,
            });
        }
        if name.len() >= GGML_MAX_NAME {
            return Err(GgufError::TensorNameTooLong {
                path,
                index,
                offset: header_offset,
                len: name.len() as u64,
                max: GGML_MAX_NAME as u64 - 1,
            });
        }
        let name = name.to_string();
        let ctx = || format!("tensor '{name}'");
        let n_dims = self.u32(&ctx)?;
        if n_dims as usize > GGML_MAX_DIMS {
            return Err(GgufError::TooManyDims {
                path,
                tensor: name,
                offset: header_offset,
                n_dims,
                max: GGML_MAX_DIMS as u32,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for dim in 0..n_dims as usize {
            let value = self.u64(&ctx)?;
            // ggml reads ne[] as int64 and refuses negatives.
            if value > i64::MAX as u64 {
                return Err(GgufError::DimOutOfRange {
                    path,
                    tensor: name,
                    offset: header_offset,
                    dim,
                    value,
                });
            }
            dims.push(value);
        }
        let type_id = self.u32(&ctx)?;
        let data_offset = self.u64(&ctx)?;

        let tensor_type = match GgmlType::from_id(type_id) {
            GgmlTypeLookup::Live(t) => TensorType::Ggml(t),
            GgmlTypeLookup::Unknown(id) if id >= EXT_TYPE_BASE => {
                let index = id - EXT_TYPE_BASE;
                let Some(codec) = ext_table.get(index as usize) else {
                    return Err(GgufError::UndeclaredExtensionType {
                        path,
                        tensor: name,
                        offset: header_offset,
                        type_id: id,
                        index,
                        declared: ext_table.len(),
                    });
                };
                match ExtensionType::new(index, codec) {
                    Some(e) => TensorType::Extension(e),
                    None => {
                        return Err(GgufError::UnknownExtensionType {
                            path,
                            tensor: name,
                            offset: header_offset,
                            codec: codec.clone(),
                        })
                    }
                }
            }
            GgmlTypeLookup::Retired {
                id,
                name: type_name,
            } => {
                return Err(GgufError::RetiredTensorType {
                    path,
                    tensor: name,
                    offset: header_offset,
                    type_id: id,
                    type_name,
                })
            }
            GgmlTypeLookup::Unknown(id) => {
                return Err(GgufError::UnknownTensorType {
                    path,
                    tensor: name,
                    offset: header_offset,
                    type_id: id,
                })
            }
        };
        let info = GgufTensorInfo {
            name,
            dims,
            tensor_type,
        };
        let size = info
            .checked_byte_size()
            .map_err(|e| e.into_error(path, header_offset, &info))?;
        Ok(GgufTensor {
            info,
            offset: data_offset,
            size,
            header_offset,
        })
    }
}

/// Why a shape does not describe a storable tensor (shared by the reader and the writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShapeError {
    ElementCountOverflow,
    RowNotWholeBlocks,
    SizeOverflow,
}

impl ShapeError {
    fn into_error(self, path: PathBuf, offset: u64, info: &GgufTensorInfo) -> GgufError {
        let tensor = info.name.clone();
        match self {
            ShapeError::ElementCountOverflow => GgufError::ElementCountOverflow {
                path,
                tensor,
                offset,
                dims: info.dims.clone(),
            },
            ShapeError::RowNotWholeBlocks => GgufError::RowNotWholeBlocks {
                path,
                tensor,
                offset,
                type_name: info.tensor_type.name().to_string(),
                row_len: info.ne()[0],
                block_size: info.tensor_type.block_size(),
            },
            ShapeError::SizeOverflow => GgufError::TensorSizeOverflow {
                path,
                tensor,
                offset,
                dims: info.dims.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal hand-assembled GGUF: used to check single rules in isolation. Fixture
    /// tests in `tests/gguf_*.rs` check real files from gguf-py.
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(version.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b
    }

    fn push_str(b: &mut Vec<u8>, s: &[u8]) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s);
    }

    #[test]
    fn empty_header_parses_with_default_alignment() {
        let f = GgufFile::from_bytes(header(3, 0, 0)).unwrap();
        assert_eq!(f.version(), 3);
        assert_eq!(f.alignment(), 32);
        assert_eq!(f.data_offset(), 32);
        assert!(f.metadata().is_empty());
        assert!(f.tensors().is_empty());
        // 24 header bytes, no padding: not what a writer would produce.
        assert!(!f.is_canonical_layout());
        let mut padded = header(3, 0, 0);
        padded.resize(32, 0);
        assert!(GgufFile::from_bytes(padded).unwrap().is_canonical_layout());
    }

    #[test]
    fn bool_array_refuses_byte_two() {
        let mut b = header(3, 0, 1);
        push_str(&mut b, b"k");
        b.extend(9u32.to_le_bytes());
        b.extend(7u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend([1, 0, 2]);
        let err = GgufFile::from_bytes(b).unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::InvalidBool {
                    byte: 2,
                    offset: 51,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_nested_arrays_within_depth_parse() {
        let mut b = header(3, 0, 1);
        push_str(&mut b, b"nest");
        b.extend(9u32.to_le_bytes()); // array
        let mut level = Vec::new();
        // innermost: empty array of u8
        level.extend(0u32.to_le_bytes());
        level.extend(0u64.to_le_bytes());
        for _ in 1..MAX_ARRAY_NESTING {
            let mut outer = 9u32.to_le_bytes().to_vec();
            outer.extend(1u64.to_le_bytes());
            outer.extend(level);
            level = outer;
        }
        b.extend(&level);
        let f = GgufFile::from_bytes(b).unwrap();
        let Value::Array(outer) = &f.metadata()[0].1 else {
            panic!("not an array: {:?}", f.metadata()[0].1)
        };
        let mut a = outer;
        let mut depth = 1;
        while let Array::Array(inner) = a {
            assert_eq!(inner.len(), 1);
            a = &inner[0];
            depth += 1;
        }
        assert_eq!(depth, MAX_ARRAY_NESTING);
        assert_eq!(a, &Array::U8(vec![]));
    }

    #[test]
    fn alignment_must_be_u32() {
        let mut b = header(3, 0, 1);
        push_str(&mut b, KEY_ALIGNMENT.as_bytes());
        b.extend(10u32.to_le_bytes());
        b.extend(64u64.to_le_bytes());
        let err = GgufFile::from_bytes(b).unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::AlignmentWrongType {
                    found: ValueType::U64,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn alignment_must_be_power_of_two() {
        for bad in [0u32, 48] {
            let mut b = header(3, 0, 1);
            push_str(&mut b, KEY_ALIGNMENT.as_bytes());
            b.extend(4u32.to_le_bytes());
            b.extend(bad.to_le_bytes());
            let err = GgufFile::from_bytes(b).unwrap_err();
            assert!(
                matches!(err, GgufError::AlignmentNotPowerOfTwo { alignment, .. } if alignment == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn empty_key_refused() {
        let mut b = header(3, 0, 1);
        push_str(&mut b, b"");
        b.extend(0u32.to_le_bytes());
        b.push(0);
        let err = GgufFile::from_bytes(b).unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::EmptyKey {
                    index: 0,
                    offset: 24,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn tensor_name_of_64_bytes_refused_63_accepted() {
        for (len, ok) in [(63usize, true), (64, false)] {
            let mut b = header(3, 1, 0);
            push_str(&mut b, "x".repeat(len).as_bytes());
            b.extend(1u32.to_le_bytes());
            b.extend(1u64.to_le_bytes());
            b.extend(0u32.to_le_bytes()); // f32
            b.extend(0u64.to_le_bytes());
            b.resize(align_up(b.len() as u64, 32) as usize + 4, 0);
            let r = GgufFile::from_bytes(b);
            if ok {
                assert_eq!(r.unwrap().tensors()[0].size, 4);
            } else {
                let err = r.unwrap_err();
                assert!(
                    matches!(err, GgufError::TensorNameTooLong { len: 64, .. }),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn zero_sized_tensors_may_share_an_offset() {
        let mut b = header(3, 2, 0);
        for name in [&b"a"[..], b"b"] {
            push_str(&mut b, name);
            b.extend(2u32.to_le_bytes());
            b.extend(0u64.to_le_bytes());
            b.extend(4u64.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend(0u64.to_le_bytes());
        }
        b.resize(align_up(b.len() as u64, 32) as usize, 0);
        let f = GgufFile::from_bytes(b).unwrap();
        assert_eq!(f.tensor_data(0), &[] as &[u8]);
        assert_eq!(f.tensors()[1].info.dims, vec![0, 4]);
    }
}
