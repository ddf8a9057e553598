//! `--imatrix FILE`: per-column importance from a file written by llama.cpp's `llama-imatrix`,
//! in either of its formats, read as `llama-quantize` reads them:
//!
//! - **GGUF** (the default output since the GGUF imatrix format appeared): for each weight
//!   `NAME`, an F32 tensor `NAME.in_sum2` of ggml shape `[n_cols, n_mat]` (Σ x² of the
//!   activations meeting each column, per expert matrix) and an F32 tensor `NAME.counts` of
//!   shape `[1, n_mat]` (how many activation rows were summed). Importance = `in_sum2 / count`;
//!   an expert with count 0 gets importance 1.
//! - **legacy `.dat`** (`--output-format dat`): little-endian `i32 n_entries`, then per entry
//!   `i32 name_len`, the name, `i32 ncall`, `i32 nval`, `nval × f32` (the mean Σx² times
//!   ncall); then `i32 chunks` and `i32 len` + the dataset name. Importance = value / ncall
//!   (the value itself when ncall ≤ 0).
//!
//! Entries are matched to tensors by name (llama.cpp's GGUF tensor names, so a GGUF source);
//! a 2-D weight uses its one matrix's `n_cols` values, which must equal its row length.
//! Every length is checked against the bytes that remain before anything is allocated.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hct_format::gguf::{GgufFile, TensorType};
use sha2::{Digest, Sha256};

/// Importance vectors by tensor name, and where they came from.
#[derive(Debug)]
pub struct Imatrix {
    /// `sha256:<hex>` of the file, recorded with every tensor it weighted.
    pub digest: String,
    /// `gguf` or `dat`.
    pub format: &'static str,
    entries: BTreeMap<String, Vec<f32>>,
}

impl Imatrix {
    pub fn load(path: &Path) -> Result<Imatrix> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read imatrix {}", path.display()))?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let (format, entries) = if bytes.starts_with(b"GGUF") {
            ("gguf", read_gguf(path)?)
        } else {
            (
                "dat",
                read_dat(&bytes).with_context(|| format!("imatrix {}", path.display()))?,
            )
        };
        if entries.is_empty() {
            bail!("imatrix {} holds no entries", path.display());
        }
        Ok(Imatrix {
            digest,
            format,
            entries,
        })
    }

    /// The column importance of `tensor`, whose rows have `row_len` elements, if the file
    /// has an entry for it; an error if the entry does not fit the tensor.
    pub fn columns(&self, tensor: &str, row_len: u64) -> Result<Option<&[f32]>> {
        let Some(v) = self.entries.get(tensor) else {
            return Ok(None);
        };
        if v.len() as u64 != row_len {
            bail!(
                "imatrix entry {tensor:?} has {} columns but the tensor's rows have {row_len} elements \
                 (3-D expert tensors are not supported)",
                v.len()
            );
        }
        Ok(Some(v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

fn read_gguf(path: &Path) -> Result<BTreeMap<String, Vec<f32>>> {
    let g = GgufFile::open(path).with_context(|| format!("imatrix {}", path.display()))?;
    let f32_of = |i: usize, what: &str| -> Result<Vec<f32>> {
        let t = &g.tensors()[i];
        if !matches!(t.info.tensor_type, TensorType::Ggml(ty) if ty.name == "f32") {
            bail!(
                "imatrix {}: {what} tensor {:?} is not F32",
                path.display(),
                t.info.name
            );
        }
        Ok(g.tensor_data(i)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let mut out = BTreeMap::new();
    for (i, t) in g.tensors().iter().enumerate() {
        let Some(name) = t.info.name.strip_suffix(".in_sum2") else {
            continue;
        };
        let counts_name = format!("{name}.counts");
        let c = g.find_tensor(&counts_name).with_context(|| {
            format!(
                "imatrix {}: {:?} has no {counts_name:?}",
                path.display(),
                t.info.name
            )
        })?;
        let sums = f32_of(i, "sums")?;
        let counts = f32_of(c, "counts")?;
        let ne = t.info.ne();
        if counts.is_empty() || ne[1] != counts.len() as u64 || sums.len() as u64 != ne[0] * ne[1] {
            bail!(
                "imatrix {}: {:?} is {:?} with {} counts",
                path.display(),
                t.info.name,
                ne,
                counts.len()
            );
        }
        let n_cols = ne[0] as usize;
        let mut v = Vec::with_capacity(sums.len());
        for (m, &count) in counts.iter().enumerate() {
            let s = &sums[m * n_cols..(m + 1) * n_cols];
            if count > 0.0 {
                v.extend(s.iter().map(|x| x / count));
            } else {
                v.extend(std::iter::repeat_n(1.0f32, n_cols));
            }
        }
        out.insert(name.to_string(), v);
    }
    Ok(out)
}

fn read_dat(bytes: &[u8]) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut at = 0usize;
    let i32_at = |what: &str, at: &mut usize| -> Result<i32> {
        let b = bytes
            .get(*at..*at + 4)
            .with_context(|| format!("offset {at}: file ends where {what} (i32) was expected"))?;
        *at += 4;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let n = i32_at("the entry count", &mut at)?;
    if n <= 0 {
        bail!("offset 0: entry count {n}, expected at least 1 (not a llama-imatrix file?)");
    }
    let mut out = BTreeMap::new();
    for e in 0..n {
        let len = i32_at("a name length", &mut at)?;
        let name = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0 && l <= bytes.len() - at)
            .and_then(|l| std::str::from_utf8(&bytes[at..at + l]).ok().map(|s| (s, l)))
            .with_context(|| format!("offset {}: entry {e}: bad name of length {len}", at - 4))?;
        at += name.1;
        let ncall = i32_at("ncall", &mut at)?;
        let nval = i32_at("nval", &mut at)?;
        let n_bytes = usize::try_from(nval)
            .ok()
            .and_then(|v| v.checked_mul(4))
            .filter(|&b| b <= bytes.len() - at)
            .with_context(|| {
                format!(
                    "offset {}: entry {:?}: {nval} values, but {} bytes remain",
                    at - 4,
                    name.0,
                    bytes.len() - at
                )
            })?;
        let v: Vec<f32> = bytes[at..at + n_bytes]
            .chunks_exact(4)
            .map(|b| {
                let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if ncall > 0 {
                    x / ncall as f32
                } else {
                    x
                }
            })
            .collect();
        at += n_bytes;
        out.insert(name.0.to_string(), v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dat(entries: &[(&str, i32, &[f32])]) -> Vec<u8> {
        let mut b = (entries.len() as i32).to_le_bytes().to_vec();
        for (name, ncall, v) in entries {
            b.extend((name.len() as i32).to_le_bytes());
            b.extend(name.as_bytes());
            b.extend(ncall.to_le_bytes());
            b.extend((v.len() as i32).to_le_bytes());
            for x in *v {
                b.extend(x.to_le_bytes());
            }
        }
        b.extend(10i32.to_le_bytes());
        b.extend(4i32.to_le_bytes());
        b.extend(b"text");
        b
    }

    #[test]
    fn legacy_values_are_divided_by_ncall() {
        let m = read_dat(&dat(&[
            ("a.weight", 4, &[8.0, 2.0]),
            ("b.weight", 0, &[3.0]),
        ]))
        .unwrap();
        assert_eq!(m["a.weight"], [2.0, 0.5]);
        assert_eq!(m["b.weight"], [3.0]);
    }

    #[test]
    fn truncated_or_lying_legacy_files_are_refused_with_offsets() {
        let good = dat(&[("a.weight", 1, &[1.0, 2.0])]);
        let err = read_dat(&good[..good.len() - 20]).unwrap_err().to_string();
        assert!(err.contains("2 values") && err.contains("offset"), "{err}");
        let mut huge = good.clone();
        huge[4 + 4 + 8 + 4..4 + 4 + 8 + 8].copy_from_slice(&i32::MAX.to_le_bytes());
        let err = read_dat(&huge).unwrap_err().to_string();
        assert!(err.contains("2147483647 values"), "{err}");
        assert!(read_dat(&0i32.to_le_bytes()).is_err());
        assert!(read_dat(&[1, 0]).is_err());
    }
}
