//! What a checkpoint tensor needs before llama.cpp can use it: rows reordered (the llama
//! family's q/k), the trailing rows dropped (Gemma 3's embedding rows beyond the vocabulary),
//! or 1 added to every element (Gemma's RMS norms, which Hugging Face stores as `w` and
//! applies as `1 + w`, where llama.cpp multiplies by the stored weight).
//!
//! Reordering and dropping rows move whole rows, so they work under every codec. Adding 1
//! changes values, so it is done on plain float tensors only (f32, f16, bf16; norms keep their
//! source precision under every `--codec`), in f32 and rounded back to the tensor's type to
//! nearest-even, which is what `torch` does for `w + 1` on a tensor of that type.

use super::rows::{self, RowOrder};
use anyhow::{bail, Result};
use half::{bf16, f16};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorFix {
    Rows(RowOrder),
    /// Keep the first `rows` rows; the tensor's shape already says so.
    FirstRows(u64),
    PlusOne,
}

/// `data` (a payload of `codec_id`) as the GGUF stores it. `shape` is the GGUF's shape (after
/// `FirstRows`, the kept rows). Borrowed when nothing changes or only a prefix is kept.
pub fn apply<'a>(
    data: &'a [u8],
    shape: &[u64],
    codec_id: &str,
    fix: Option<TensorFix>,
) -> Result<Cow<'a, [u8]>> {
    match fix {
        None => Ok(Cow::Borrowed(data)),
        Some(TensorFix::Rows(order)) => rows::arrange(data, shape, codec_id, Some(order)),
        Some(TensorFix::FirstRows(keep)) => {
            let c = hct_format::codec::find(codec_id)
                .ok_or_else(|| anyhow::anyhow!("unknown codec {codec_id}"))?;
            let row_len: u64 = shape.iter().skip(1).product();
            let row_bytes = c.row_bytes(row_len)?;
            let Some(n) = keep
                .checked_mul(row_bytes)
                .filter(|&n| n <= data.len() as u64)
            else {
                bail!(
                    "{} bytes hold fewer than the {keep} rows of {row_bytes} bytes to keep",
                    data.len()
                );
            };
            Ok(Cow::Borrowed(&data[..n as usize]))
        }
        Some(TensorFix::PlusOne) => plus_one(data, codec_id).map(Cow::Owned),
    }
}

fn plus_one(data: &[u8], codec_id: &str) -> Result<Vec<u8>> {
    let width = match codec_id {
        "f32" => 4,
        "f16" | "bf16" => 2,
        c => bail!(
            "1 must be added to this norm for llama.cpp, which this build does on f32, f16 and \
             bf16 tensors only, not under codec {c}"
        ),
    };
    if !data.len().is_multiple_of(width) {
        bail!(
            "payload of {} bytes is not a whole number of {codec_id} values",
            data.len()
        );
    }
    let mut out = Vec::with_capacity(data.len());
    for v in data.chunks_exact(width) {
        match codec_id {
            "f32" => {
                let x = f32::from_le_bytes([v[0], v[1], v[2], v[3]]) + 1.0;
                out.extend_from_slice(&x.to_le_bytes());
            }
            "f16" => {
                let x = f16::from_le_bytes([v[0], v[1]]).to_f32() + 1.0;
                out.extend_from_slice(&f16::from_f32(x).to_le_bytes());
            }
            _ => {
                let x = bf16::from_le_bytes([v[0], v[1]]).to_f32() + 1.0;
                out.extend_from_slice(&bf16::from_f32(x).to_le_bytes());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_one_rounds_like_the_source_type() {
        let x: Vec<u8> = [0.5f32, -1.0, 3.0e-8]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let got = apply(&x, &[3], "f32", Some(TensorFix::PlusOne)).unwrap();
        let got: Vec<f32> = got
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(got, [1.5, 0.0, 1.0]);
        // bf16: 1 + 2^-9 is between two bf16 values (spacing 2^-7 at 1): rounds to 1.
        let b = bf16::from_f32(1.0 / 512.0).to_le_bytes();
        let got = apply(&b, &[1], "bf16", Some(TensorFix::PlusOne)).unwrap();
        assert_eq!(bf16::from_le_bytes([got[0], got[1]]).to_f32(), 1.0);
        assert!(apply(&[0u8; 18], &[32], "q8_0", Some(TensorFix::PlusOne)).is_err());
    }

    #[test]
    fn first_rows_is_a_prefix_and_checks_length() {
        let data: Vec<u8> = (0..24).collect();
        let got = apply(&data, &[2, 3], "f32", Some(TensorFix::FirstRows(2))).unwrap();
        assert_eq!(&*got, &data[..24]);
        let got = apply(&data, &[1, 3], "f32", Some(TensorFix::FirstRows(1))).unwrap();
        assert_eq!(&*got, &data[..12]);
        assert!(apply(&data, &[3, 3], "f32", Some(TensorFix::FirstRows(3))).is_err());
    }
}
