//! Hugging Face safetensors checkpoints: one file, or shards listed by
//! `model.safetensors.index.json`, read zero-copy over mmap through the `safetensors` crate
//! (which checks each shard's header, bounds and overlaps), plus the small files a user
//! needs beside the weights (config, tokenizer), recorded so that nothing is lost.

use crate::container::{Error, ErrorKind};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Files beside a checkpoint that HCT records as metadata (`hf.file.<name>`), so a
/// converted model stays usable: architecture, tokenizer, generation defaults.
pub const SIDE_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "chat_template.jinja",
];

/// Largest side file recorded (a tokenizer.json is a few MB; weights are not side files).
pub const MAX_SIDE_FILE: u64 = 64 << 20;

/// One tensor of a checkpoint.
#[derive(Debug, Clone)]
pub struct StTensor {
    pub name: String,
    pub dtype: Dtype,
    /// Row-major, outermost first (as safetensors and HCT both order it).
    pub shape: Vec<u64>,
    shard: usize,
    start: usize,
    end: usize,
}

impl StTensor {
    /// The HCT codec id that carries this dtype unchanged.
    pub fn codec_id(&self) -> &'static str {
        codec_for_dtype(self.dtype).expect("dtypes are checked when the checkpoint is opened")
    }
}

struct Shard {
    path: PathBuf,
    map: Mmap,
}

/// An opened checkpoint.
pub struct Checkpoint {
    shards: Vec<Shard>,
    tensors: Vec<StTensor>,
    /// `__metadata__` of every shard, merged (shards of one checkpoint agree on it).
    metadata: BTreeMap<String, String>,
    /// Side files found beside the weights: (name, bytes).
    side_files: Vec<(String, Vec<u8>)>,
    /// The index's own `metadata` object, as JSON text, when sharded.
    index_metadata: Option<String>,
}

/// The HCT codec id for a safetensors dtype, or `None` for dtypes HCT cannot carry (sub-byte
/// and FNUZ floats, complex), which are refused by name.
pub fn codec_for_dtype(d: Dtype) -> Option<&'static str> {
    Some(match d {
        Dtype::F32 => "f32",
        Dtype::F16 => "f16",
        Dtype::BF16 => "bf16",
        Dtype::F64 => "f64",
        Dtype::I8 => "i8",
        Dtype::U8 => "u8",
        Dtype::I16 => "i16",
        Dtype::U16 => "u16",
        Dtype::I32 => "i32",
        Dtype::U32 => "u32",
        Dtype::I64 => "i64",
        Dtype::U64 => "u64",
        Dtype::BOOL => "bool",
        Dtype::F8_E4M3 => "f8_e4m3",
        Dtype::F8_E5M2 => "f8_e5m2",
        Dtype::F8_E8M0 => "f8_e8m0",
        _ => return None,
    })
}

/// The safetensors dtype that carries an HCT codec's bytes unchanged.
pub fn dtype_for_codec(codec: &str) -> Option<Dtype> {
    Some(match codec {
        "f32" => Dtype::F32,
        "f16" => Dtype::F16,
        "bf16" => Dtype::BF16,
        "f64" => Dtype::F64,
        "i8" => Dtype::I8,
        "u8" => Dtype::U8,
        "i16" => Dtype::I16,
        "u16" => Dtype::U16,
        "i32" => Dtype::I32,
        "u32" => Dtype::U32,
        "i64" => Dtype::I64,
        "u64" => Dtype::U64,
        "bool" => Dtype::BOOL,
        "f8_e4m3" => Dtype::F8_E4M3,
        "f8_e5m2" => Dtype::F8_E5M2,
        "f8_e8m0" => Dtype::F8_E8M0,
        _ => return None,
    })
}

impl Checkpoint {
    /// Open `path`: a `.safetensors` file, a `model.safetensors.index.json`, or a directory
    /// holding either.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint, Error> {
        let path = path.as_ref();
        if path.is_dir() {
            let index = path.join("model.safetensors.index.json");
            let single = path.join("model.safetensors");
            return if index.is_file() {
                Self::open_index(&index)
            } else if single.is_file() {
                Self::open_files(path, &[single], None)
            } else {
                Err(Error::new(
                    path,
                    ErrorKind::Usage(
                        "directory has neither model.safetensors.index.json nor model.safetensors"
                            .into(),
                    ),
                ))
            };
        }
        if path.to_string_lossy().ends_with(".json") {
            return Self::open_index(path);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::open_files(dir, &[path.to_path_buf()], None)
    }

    fn open_index(index: &Path) -> Result<Checkpoint, Error> {
        let err = |m: String| Error::new(index, ErrorKind::Safetensors { message: m });
        let text = std::fs::read(index).map_err(|e| {
            Error::new(
                index,
                ErrorKind::Io {
                    op: "read the index",
                    source: e,
                },
            )
        })?;
        let json: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| err(format!("index is not JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| err("index has no \"weight_map\" object".into()))?;
        let mut shard_names: Vec<String> = Vec::new();
        for (tensor, shard) in map {
            let shard = shard
                .as_str()
                .ok_or_else(|| err(format!("weight_map entry for {tensor:?} is not a string")))?;
            // Shard names are plain file names: an index must not reach outside its folder.
            if shard.contains('/') || shard.contains('\\') || shard == ".." || shard.is_empty() {
                return Err(err(format!("weight_map entry for {tensor:?} names {shard:?}, which is not a file name in the index's folder")));
            }
            if !shard_names.iter().any(|s| s == shard) {
                shard_names.push(shard.to_string());
            }
        }
        shard_names.sort();
        let dir = index.parent().unwrap_or(Path::new("."));
        let files: Vec<PathBuf> = shard_names.iter().map(|s| dir.join(s)).collect();
        let index_metadata = json.get("metadata").map(|m| m.to_string());
        let ckpt = Self::open_files(dir, &files, index_metadata)?;
        // Every tensor the index lists must be in the shard it names, and vice versa.
        for (tensor, shard) in map {
            let t = ckpt.tensors.iter().find(|t| &t.name == tensor);
            match t {
                Some(t)
                    if ckpt.shards[t.shard]
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy() == shard.as_str().unwrap_or(""))
                        == Some(true) => {}
                Some(t) => {
                    return Err(err(format!(
                        "index puts tensor {tensor:?} in {shard}, but it is in {}",
                        ckpt.shards[t.shard].path.display()
                    )))
                }
                None => {
                    return Err(err(format!(
                        "index lists tensor {tensor:?} in {shard}, which does not contain it"
                    )))
                }
            }
        }
        if ckpt.tensors.len() != map.len() {
            let extra = ckpt
                .tensors
                .iter()
                .find(|t| !map.contains_key(&t.name))
                .map(|t| t.name.clone())
                .unwrap_or_default();
            return Err(err(format!(
                "shards hold tensor {extra:?}, which the index does not list"
            )));
        }
        Ok(ckpt)
    }

    fn open_files(
        dir: &Path,
        files: &[PathBuf],
        index_metadata: Option<String>,
    ) -> Result<Checkpoint, Error> {
        let mut shards = Vec::new();
        let mut tensors = Vec::new();
        let mut metadata = BTreeMap::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (si, p) in files.iter().enumerate() {
            let io = |op, e| Error::new(p, ErrorKind::Io { op, source: e });
            let f = File::open(p).map_err(|e| io("open the shard", e))?;
            let fmeta = f.metadata().map_err(|e| io("read the shard's size", e))?;
            if !fmeta.is_file() {
                return Err(io("read the shard", crate::output_file::not_a_file(&fmeta)));
            }
            // SAFETY: read-only mapping; see HctFile::open for the truncation caveat.
            let map = unsafe { Mmap::map(&f) }.map_err(|e| io("map the shard", e))?;
            // Before the crate parses it: with a repeated key it would silently keep one.
            if let Some(header) = header_json(&map) {
                check_unique_keys(header)
                    .map_err(|message| Error::new(p, ErrorKind::Safetensors { message }))?;
            }
            let st = SafeTensors::deserialize(&map).map_err(|e| {
                Error::new(
                    p,
                    ErrorKind::Safetensors {
                        message: e.to_string(),
                    },
                )
            })?;
            let (header_len, meta) = SafeTensors::read_metadata(&map).map_err(|e| {
                Error::new(
                    p,
                    ErrorKind::Safetensors {
                        message: e.to_string(),
                    },
                )
            })?;
            let data_start = 8 + header_len;
            if let Some(m) = meta.metadata() {
                for (k, v) in m {
                    metadata.insert(k.clone(), v.clone());
                }
            }
            // File order (by offset) is the order a user sees with other tools.
            for name in meta.offset_keys() {
                let info = meta
                    .info(&name)
                    .expect("offset_keys come from the same header");
                let dtype = info.dtype;
                if codec_for_dtype(dtype).is_none() {
                    return Err(Error::new(
                        p,
                        ErrorKind::UnsupportedDtype {
                            tensor: name,
                            dtype: format!("{dtype:?}"),
                        },
                    ));
                }
                if let Some(prev) = seen.insert(name.clone(), si) {
                    return Err(Error::new(
                        p,
                        ErrorKind::Safetensors {
                            message: format!(
                                "tensor {name:?} is also in {}",
                                files[prev].display()
                            ),
                        },
                    ));
                }
                let view = st.tensor(&name).map_err(|e| {
                    Error::new(
                        p,
                        ErrorKind::Safetensors {
                            message: e.to_string(),
                        },
                    )
                })?;
                debug_assert_eq!(view.data().len(), info.data_offsets.1 - info.data_offsets.0);
                tensors.push(StTensor {
                    name,
                    dtype,
                    shape: info.shape.iter().map(|&d| d as u64).collect(),
                    shard: si,
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                });
            }
            shards.push(Shard {
                path: p.clone(),
                map,
            });
        }
        let side_files = read_side_files(dir)?;
        Ok(Checkpoint {
            shards,
            tensors,
            metadata,
            side_files,
            index_metadata,
        })
    }

    pub fn tensors(&self) -> &[StTensor] {
        &self.tensors
    }

    /// A tensor's bytes, zero-copy from the shard's mapping.
    pub fn data(&self, t: &StTensor) -> &[u8] {
        &self.shards[t.shard].map[t.start..t.end]
    }

    pub fn shard_path(&self, t: &StTensor) -> &Path {
        &self.shards[t.shard].path
    }

    /// Hint the kernel that a tensor's pages are no longer needed by this process, so a
    /// streaming conversion's resident memory stays near one tensor, not the whole model.
    pub fn release(&self, t: &StTensor) {
        release_range(&self.shards[t.shard].map, t.start, t.end - t.start);
    }

    /// The merged `__metadata__`.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn side_files(&self) -> &[(String, Vec<u8>)] {
        &self.side_files
    }

    pub fn index_metadata(&self) -> Option<&str> {
        self.index_metadata.as_deref()
    }

    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| (t.end - t.start) as u64).sum()
    }
}

/// Drop our mapping's pages for a byte range (they stay in the page cache). Best effort.
pub fn release_range(map: &Mmap, start: usize, len: usize) {
    // madvise works on whole pages; round inward so neighbours' pages are untouched.
    const PAGE: usize = 4096;
    let first = start.div_ceil(PAGE) * PAGE;
    let end = (start + len) / PAGE * PAGE;
    if end > first {
        // SAFETY: DONTNEED on a private read-only file mapping only drops our page-table
        // entries; later reads fault the same file bytes back in, so no data changes.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first)
        };
    }
}

fn read_side_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    for name in SIDE_FILES {
        let p = dir.join(name);
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if !meta.is_file() || meta.len() > MAX_SIDE_FILE {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|e| {
            Error::new(
                &p,
                ErrorKind::Io {
                    op: "read a file beside the checkpoint",
                    source: e,
                },
            )
        })?;
        out.push((name.to_string(), bytes));
    }
    Ok(out)
}

/// The header's JSON bytes, when the length prefix fits in the file.
fn header_json(file: &[u8]) -> Option<&[u8]> {
    let n = u64::from_le_bytes(file.get(..8)?.try_into().ok()?);
    let end = usize::try_from(n).ok()?.checked_add(8)?;
    file.get(8..end)
}

/// JSON allows a key twice and serde keeps the last one, so two tools can read different
/// tensors out of one header. Refuse duplicates at the top level (tensor names) and inside
/// `__metadata__`.
fn check_unique_keys(header: &[u8]) -> Result<(), String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    use std::collections::HashSet;
    use std::fmt;

    /// A JSON object whose keys are checked for repeats; `nested` also checks the value
    /// of `__metadata__`.
    struct UniqueKeys {
        nested: bool,
    }

    impl<'de> Visitor<'de> for UniqueKeys {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if self.nested && key == "__metadata__" {
                    map.next_value_seed(UniqueKeys { nested: false })?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
                if !seen.insert(key.clone()) {
                    return Err(serde::de::Error::custom(format!("key {key:?} {DUPLICATE}")));
                }
            }
            Ok(())
        }
    }

    impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    // Only a repeated key is reported here; any other defect is left to the crate's parser
    // and its messages.
    let mut de = serde_json::Deserializer::from_slice(header);
    match de.deserialize_map(UniqueKeys { nested: true }) {
        Err(e) if e.to_string().contains(DUPLICATE) => Err(e.to_string()),
        _ => Ok(()),
    }
}

const DUPLICATE: &str = "appears twice in the header";
