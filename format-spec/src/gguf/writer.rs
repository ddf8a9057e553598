//! A streaming GGUF writer: header first (offsets computed from sizes), then each tensor's
//! bytes in header order, each padded with zeros to the alignment. Only one tensor's data
//! needs to be in memory at a time, and the output path only ever holds a complete file.
//!
//! The layout is exactly the one ggml (`gguf_write_to_file`, llama-quantize) and gguf-py's
//! `GGUFWriter` produce: the header is zero-padded to the alignment even when there are
//! no tensors, tensor i starts at the sum of the padded sizes of tensors 0..i, and the
//! last tensor is padded too. So given a file's own metadata, tensor infos and data, the
//! output is that file byte for byte.
//!
//! The alignment is not a separate input: like every GGUF reader, the writer takes it from
//! `general.alignment` in the metadata (default 32), so the file cannot disagree with
//! itself. The key is written only if it is in the metadata, where the metadata puts it.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::GgufError;
use super::extension::{self, ExtensionType, TensorType, KEY_EXT_TYPES};
use super::{
    align_up, GgufTensorInfo, DEFAULT_ALIGNMENT, GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_MAGIC,
    KEY_ALIGNMENT, MAX_ALIGNMENT, MAX_ARRAY_NESTING,
};
use crate::value::{Array, Value};

/// Writes one GGUF file. Create it with the whole header, feed every tensor's bytes in
/// order, then [`finish`](GgufWriter::finish). Dropping it unfinished deletes the
/// temporary file and leaves the output path untouched.
#[derive(Debug)]
pub struct GgufWriter {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
    alignment: u64,
    tensors: Vec<PlannedTensor>,
    /// Index of the tensor whose data comes next.
    next: usize,
    /// Bytes of tensor `next` written so far (nonzero only while a sink is open or was
    /// abandoned mid-tensor).
    partial: u64,
}

#[derive(Debug)]
struct PlannedTensor {
    name: String,
    size: u64,
}

/// An `io::Write` sink for one tensor's bytes; see [`GgufWriter::tensor_writer`]. It
/// refuses bytes beyond the tensor's size; [`finish`](TensorDataWriter::finish) checks the
/// size is complete and writes the padding.
#[derive(Debug)]
pub struct TensorDataWriter<'w> {
    writer: &'w mut GgufWriter,
}

impl GgufWriter {
    /// Validate the header, compute tensor offsets, and write the header to a temporary
    /// file beside `path`. `version` is 2 or 3; the header is identical for both.
    pub fn create(
        path: impl AsRef<Path>,
        version: u32,
        metadata: &[(String, Value)],
        tensors: &[GgufTensorInfo],
    ) -> Result<GgufWriter, GgufError> {
        let path = path.as_ref().to_path_buf();
        let invalid = |reason: String| GgufError::InvalidWriterInput {
            path: path.clone(),
            reason,
        };
        let plan = plan_header(version, metadata, tensors).map_err(invalid)?;

        let tmp = crate::output_file::create_temp(&path).map_err(|e| GgufError::Io {
            path: path.clone(),
            action: "cannot create the output",
            source: e,
        })?;
        let mut writer = GgufWriter {
            path,
            out: BufWriter::with_capacity(1 << 20, tmp),
            alignment: plan.alignment,
            tensors: tensors
                .iter()
                .zip(&plan.sizes)
                .map(|(t, &size)| PlannedTensor {
                    name: t.name.clone(),
                    size,
                })
                .collect(),
            next: 0,
            partial: 0,
        };
        writer.write_all_io(&plan.header)?;
        Ok(writer)
    }

    /// Write tensor `i`'s complete data (tensors go in header order) and its padding.
    pub fn write_tensor_data(&mut self, i: usize, bytes: &[u8]) -> Result<(), GgufError> {
        let sink = self.tensor_writer(i)?;
        let expected = sink.writer.tensors[i].size;
        if bytes.len() as u64 != expected {
            return Err(GgufError::TensorSizeMismatch {
                path: sink.writer.path.clone(),
                tensor: sink.writer.tensors[i].name.clone(),
                expected,
                got: bytes.len() as u64,
            });
        }
        sink.writer.write_all_io(bytes)?;
        sink.writer.partial = expected;
        sink.finish()
    }

    /// A sink for tensor `i`'s data, for producers that emit a tensor in pieces.
    pub fn tensor_writer(&mut self, i: usize) -> Result<TensorDataWriter<'_>, GgufError> {
        // An abandoned, incomplete tensor blocks everything after it: the file would be
        // misaligned from there on.
        if self.partial != 0 {
            let t = &self.tensors[self.next];
            return Err(GgufError::TensorSizeMismatch {
                path: self.path.clone(),
                tensor: t.name.clone(),
                expected: t.size,
                got: self.partial,
            });
        }
        if i != self.next || i >= self.tensors.len() {
            let tensor = match self.tensors.get(self.next) {
                Some(t) => t.name.clone(),
                None => String::from("<none: all tensors written>"),
            };
            return Err(GgufError::TensorOutOfOrder {
                path: self.path.clone(),
                tensor,
                expected: self.next,
                got: i,
            });
        }
        Ok(TensorDataWriter { writer: self })
    }

    /// Check every tensor was written, flush, fsync, and rename into place.
    pub fn finish(self) -> Result<(), GgufError> {
        if let Some(t) = self.tensors.get(self.next) {
            return Err(GgufError::MissingTensorData {
                path: self.path.clone(),
                tensor: t.name.clone(),
                index: self.next,
            });
        }
        let path = self.path;
        let io = |action, source| GgufError::Io {
            path: path.clone(),
            action,
            source,
        };
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| io("cannot flush", e.into_error()))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io("cannot fsync", e))?;
        crate::output_file::persist(tmp, &path)
            .map_err(|e| io("cannot rename the temporary file into place", e))?;
        Ok(())
    }

    fn write_all_io(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        self.out.write_all(bytes).map_err(|e| GgufError::Io {
            path: self.path.clone(),
            action: "cannot write",
            source: e,
        })
    }
}

/// The header bytes [`GgufWriter`] writes for these inputs, padded to the alignment (what
/// ggml calls the file's meta data): everything before the first tensor's data.
pub fn encode_header(
    version: u32,
    metadata: &[(String, Value)],
    tensors: &[GgufTensorInfo],
) -> Result<Vec<u8>, GgufError> {
    plan_header(version, metadata, tensors)
        .map(|plan| plan.header)
        .map_err(|reason| GgufError::InvalidWriterInput {
            path: PathBuf::from("<memory>"),
            reason,
        })
}

impl TensorDataWriter<'_> {
    /// Check the tensor's bytes are complete and write its padding.
    pub fn finish(self) -> Result<(), GgufError> {
        let w = self.writer;
        let t = &w.tensors[w.next];
        if w.partial != t.size {
            return Err(GgufError::TensorSizeMismatch {
                path: w.path.clone(),
                tensor: t.name.clone(),
                expected: t.size,
                got: w.partial,
            });
        }
        let mut pad = (align_up(t.size, w.alignment) - t.size) as usize;
        while pad > 0 {
            let n = pad.min(ZEROS.len());
            w.write_all_io(&ZEROS[..n])?;
            pad -= n;
        }
        w.next += 1;
        w.partial = 0;
        Ok(())
    }
}

impl Write for TensorDataWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let w = &mut *self.writer;
        let size = w.tensors[w.next].size;
        if buf.len() as u64 > size - w.partial {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "tensor '{}' is {size} bytes; {} written, {} more offered",
                    w.tensors[w.next].name,
                    w.partial,
                    buf.len()
                ),
            ));
        }
        let n = w.out.write(buf)?;
        w.partial += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.out.flush()
    }
}

const ZEROS: [u8; 4096] = [0; 4096];

// ---------------------------------------------------------------------------------------
// Validation and encoding
// ---------------------------------------------------------------------------------------

struct HeaderPlan {
    header: Vec<u8>,
    alignment: u64,
    sizes: Vec<u64>,
}

fn plan_header(
    version: u32,
    metadata: &[(String, Value)],
    tensors: &[GgufTensorInfo],
) -> Result<HeaderPlan, String> {
    if !(2..=3).contains(&version) {
        return Err(format!("GGUF version {version} (only 2 and 3)"));
    }
    let alignment = validate_metadata(metadata)? as u64;
    let sizes = validate_tensors(tensors)?;
    validate_extension_types(metadata, tensors)?;
    let header = header_bytes(version, metadata, tensors, &sizes, alignment);
    Ok(HeaderPlan {
        header,
        alignment,
        sizes,
    })
}

/// The alignment the metadata implies; refuses metadata no GGUF reader would accept back.
fn validate_metadata(metadata: &[(String, Value)]) -> Result<u32, String> {
    let mut seen = std::collections::HashSet::new();
    for (key, value) in metadata {
        if key.is_empty() {
            return Err("an empty metadata key".into());
        }
        if !seen.insert(key.as_str()) {
            return Err(format!("metadata key '{key}' appears twice"));
        }
        if let Value::Array(a) = value {
            if array_depth(a) > MAX_ARRAY_NESTING {
                return Err(format!(
                    "metadata key '{key}': arrays nested deeper than {MAX_ARRAY_NESTING} levels"
                ));
            }
        }
    }
    match crate::value::lookup(metadata, KEY_ALIGNMENT) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() && *a <= MAX_ALIGNMENT => Ok(*a),
        Some(Value::U32(a)) if a.is_power_of_two() => Err(format!(
            "'{KEY_ALIGNMENT}' is {a}, more than the {MAX_ALIGNMENT} GGUF readers here accept"
        )),
        Some(v) => Err(format!(
            "'{KEY_ALIGNMENT}' must be a u32 power of two, is {} {v}",
            v.value_type()
        )),
    }
}

fn array_depth(a: &Array) -> u32 {
    match a {
        Array::Array(inner) => 1 + inner.iter().map(array_depth).max().unwrap_or(0),
        _ => 1,
    }
}

/// Each tensor's byte size; refuses what ggml's reader would refuse.
fn validate_tensors(tensors: &[GgufTensorInfo]) -> Result<Vec<u64>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut sizes = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.contains('\0') {
            return Err(format!(
                "tensor {:?}: a NUL byte in the name; ggml would read it cut short",
                t.name
            ));
        }
        if t.name.len() >= GGML_MAX_NAME {
            return Err(format!(
                "tensor '{}': name of {} bytes, ggml allows at most {}",
                t.name,
                t.name.len(),
                GGML_MAX_NAME - 1
            ));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(format!("tensor '{}' appears twice", t.name));
        }
        if t.dims.len() > GGML_MAX_DIMS {
            return Err(format!(
                "tensor '{}': {} dimensions, ggml allows at most {GGML_MAX_DIMS}",
                t.name,
                t.dims.len()
            ));
        }
        let size = t.checked_byte_size().map_err(|e| {
            format!(
                "tensor '{}': shape {:?} of type {} is not storable ({e:?})",
                t.name,
                t.dims,
                t.tensor_type.name()
            )
        })?;
        sizes.push(size);
    }
    Ok(sizes)
}

/// Every extension type must be the entry of the file's table at its index, with the block
/// geometry readers will derive from the codec id: otherwise the file would not read back.
fn validate_extension_types(
    metadata: &[(String, Value)],
    tensors: &[GgufTensorInfo],
) -> Result<(), String> {
    let table = extension::extension_table(metadata)
        .map_err(|e| format!("metadata key '{KEY_EXT_TYPES}' {e}"))?;
    for t in tensors {
        let TensorType::Extension(e) = &t.tensor_type else {
            continue;
        };
        if table.get(e.index as usize) != Some(&e.codec) {
            return Err(format!(
                "tensor '{}': extension type '{}' is not entry {} of '{KEY_EXT_TYPES}' {table:?}",
                t.name, e.codec, e.index
            ));
        }
        if ExtensionType::new(e.index, &e.codec).as_ref() != Some(e) {
            return Err(format!(
                "tensor '{}': extension type '{}' with blocks of {} elements in {} bytes is not a known layout",
                t.name, e.codec, e.block_size, e.type_size
            ));
        }
    }
    Ok(())
}

fn header_bytes(
    version: u32,
    metadata: &[(String, Value)],
    tensors: &[GgufTensorInfo],
    sizes: &[u64],
    alignment: u64,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(GGUF_MAGIC);
    b.extend(version.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_str(&mut b, key.as_bytes());
        b.extend((value.value_type() as u32).to_le_bytes());
        put_value(&mut b, value);
    }
    let mut offset = 0u64;
    for (t, &size) in tensors.iter().zip(sizes) {
        put_str(&mut b, t.name.as_bytes());
        b.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(t.tensor_type.id().to_le_bytes());
        b.extend(offset.to_le_bytes());
        offset += align_up(size, alignment);
    }
    let padded = align_up(b.len() as u64, alignment) as usize;
    b.resize(padded, 0);
    b
}

fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend_from_slice(s);
}

fn put_value(b: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => b.push(*x),
        Value::I8(x) => b.extend(x.to_le_bytes()),
        Value::U16(x) => b.extend(x.to_le_bytes()),
        Value::I16(x) => b.extend(x.to_le_bytes()),
        Value::U32(x) => b.extend(x.to_le_bytes()),
        Value::I32(x) => b.extend(x.to_le_bytes()),
        Value::U64(x) => b.extend(x.to_le_bytes()),
        Value::I64(x) => b.extend(x.to_le_bytes()),
        Value::F32(x) => b.extend(x.to_le_bytes()),
        Value::F64(x) => b.extend(x.to_le_bytes()),
        Value::Bool(x) => b.push(*x as u8),
        Value::String(s) => put_str(b, s),
        Value::Array(a) => put_array(b, a),
    }
}

fn put_array(b: &mut Vec<u8>, a: &Array) {
    b.extend((a.elem_type() as u32).to_le_bytes());
    b.extend((a.len() as u64).to_le_bytes());
    match a {
        Array::U8(v) => b.extend_from_slice(v),
        Array::I8(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::U16(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::I16(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::U32(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::I32(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::U64(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::I64(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::F32(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::F64(v) => v.iter().for_each(|x| b.extend(x.to_le_bytes())),
        Array::Bool(v) => v.iter().for_each(|&x| b.push(x as u8)),
        Array::String(v) => v.iter().for_each(|s| put_str(b, s)),
        Array::Array(v) => v.iter().for_each(|inner| put_array(b, inner)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml_type::GgmlType;
    use crate::gguf::GgufFile;

    fn f32_tensor(name: &str, dims: &[u64]) -> GgufTensorInfo {
        GgufTensorInfo {
            name: name.into(),
            dims: dims.to_vec(),
            tensor_type: GgmlType::from_name("f32").unwrap().into(),
        }
    }

    #[test]
    fn dropped_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.gguf");
        let mut w = GgufWriter::create(&out, 3, &[], &[f32_tensor("a", &[2])]).unwrap();
        w.write_tensor_data(0, &[0; 8]).unwrap();
        drop(w);
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file removed"
        );
    }

    #[test]
    fn streamed_and_whole_writes_agree_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let meta = vec![
            ("general.alignment".to_string(), Value::U32(64)),
            ("k".to_string(), Value::string("v")),
        ];
        let tensors = [f32_tensor("a", &[3]), f32_tensor("b", &[2, 2])];
        let data_b: Vec<u8> = (0u8..16).collect();

        let whole = dir.path().join("whole.gguf");
        let mut w = GgufWriter::create(&whole, 3, &meta, &tensors).unwrap();
        w.write_tensor_data(0, &[1; 12]).unwrap();
        w.write_tensor_data(1, &data_b).unwrap();
        w.finish().unwrap();

        let streamed = dir.path().join("streamed.gguf");
        let mut w = GgufWriter::create(&streamed, 3, &meta, &tensors).unwrap();
        let mut s = w.tensor_writer(0).unwrap();
        s.write_all(&[1; 5]).unwrap();
        s.write_all(&[1; 7]).unwrap();
        s.finish().unwrap();
        let mut s = w.tensor_writer(1).unwrap();
        for chunk in data_b.chunks(3) {
            s.write_all(chunk).unwrap();
        }
        s.finish().unwrap();
        w.finish().unwrap();

        let a = std::fs::read(&whole).unwrap();
        assert_eq!(a, std::fs::read(&streamed).unwrap());
        let f = GgufFile::open(&whole).unwrap();
        assert_eq!(f.alignment(), 64);
        assert_eq!(f.data_offset() % 64, 0);
        assert_eq!(f.tensors()[1].offset, 64);
        assert_eq!(f.tensor_data(1), &data_b[..]);
        assert_eq!(a.len() as u64, f.data_offset() + 128);
        assert!(f.is_canonical_layout());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&whole).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn sink_refuses_extra_bytes_and_short_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.gguf");
        let tensors = [f32_tensor("a", &[2]), f32_tensor("b", &[1])];
        let mut w = GgufWriter::create(&out, 3, &[], &tensors).unwrap();
        let mut s = w.tensor_writer(0).unwrap();
        assert!(s.write_all(&[0; 9]).is_err());
        s.write_all(&[0; 4]).unwrap();
        let err = s.finish().unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::TensorSizeMismatch {
                    expected: 8,
                    got: 4,
                    ..
                }
            ),
            "{err}"
        );
        // The abandoned partial tensor blocks everything after it.
        let err = w.write_tensor_data(0, &[0; 8]).unwrap_err();
        assert!(matches!(err, GgufError::TensorSizeMismatch { .. }), "{err}");
        let err = w.finish().unwrap_err();
        assert!(
            matches!(err, GgufError::MissingTensorData { index: 0, .. }),
            "{err}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn order_and_completeness_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.gguf");
        let tensors = [f32_tensor("a", &[2]), f32_tensor("b", &[1])];
        let mut w = GgufWriter::create(&out, 3, &[], &tensors).unwrap();
        let err = w.write_tensor_data(1, &[0; 4]).unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::TensorOutOfOrder {
                    expected: 0,
                    got: 1,
                    ..
                }
            ),
            "{err}"
        );
        let err = w.write_tensor_data(0, &[0; 7]).unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::TensorSizeMismatch {
                    expected: 8,
                    got: 7,
                    ..
                }
            ),
            "{err}"
        );
        w.write_tensor_data(0, &[0; 8]).unwrap();
        let err = w.finish().unwrap_err();
        assert!(
            matches!(err, GgufError::MissingTensorData { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn invalid_inputs_are_refused_before_any_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.gguf");
        let q8 = GgufTensorInfo {
            name: "q".into(),
            dims: vec![33],
            tensor_type: GgmlType::from_name("q8_0").unwrap().into(),
        };
        type Case = (u32, Vec<(String, Value)>, Vec<GgufTensorInfo>);
        let cases: Vec<Case> = vec![
            (1, vec![], vec![]),
            (3, vec![("".into(), Value::U8(0))], vec![]),
            (
                3,
                vec![("a".into(), Value::U8(0)), ("a".into(), Value::U8(1))],
                vec![],
            ),
            (3, vec![(KEY_ALIGNMENT.into(), Value::U32(48))], vec![]),
            (3, vec![(KEY_ALIGNMENT.into(), Value::U64(64))], vec![]),
            (
                3,
                vec![],
                vec![f32_tensor("a", &[1]), f32_tensor("a", &[1])],
            ),
            (3, vec![], vec![f32_tensor(&"n".repeat(64), &[1])]),
            (3, vec![], vec![f32_tensor("a", &[1, 1, 1, 1, 1])]),
            (3, vec![], vec![q8]),
        ];
        for (version, meta, tensors) in cases {
            let err = GgufWriter::create(&out, version, &meta, &tensors).unwrap_err();
            assert!(matches!(err, GgufError::InvalidWriterInput { .. }), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
