//! What every golden-vector test (`tests/*_vectors.rs`) does the same way: how a row is
//! recorded (f32 bit patterns and encoded bytes as hex), the bless-or-compare rule
//! (`HCT_BLESS=1` rewrites a file; a normal run fails on any difference, naming the first case
//! that moved), and the thread-count check every pinned encoder must pass. Each family keeps
//! its own inputs and its own file header; the JSON written here is what the independent numpy
//! checkers in compat-tests/scripts read, so field names and order are part of the files.

use hct_format::codec::{Codec, CodecError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::path::Path;

/// One input row of a golden file, with why it is there.
pub struct Input {
    pub name: &'static str,
    pub why: &'static str,
    pub x: Vec<f32>,
    /// Per-column importance for encoders that take it; `None` = every column weighs 1.
    pub importance: Option<Vec<f32>>,
}

pub fn input(name: &'static str, why: &'static str, x: Vec<f32>) -> Input {
    Input {
        name,
        why,
        x,
        importance: None,
    }
}

/// One recorded row: the input, the bytes the encoder wrote, the f32s the decoder returns.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Case {
    pub name: String,
    pub why: String,
    pub row_len: usize,
    pub input_f32_bits: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance_f32_bits: Option<String>,
    pub encoded_hex: String,
    pub decoded_f32_bits: String,
    /// Families with a lossless condition record whether the decoded row equals the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lossless: Option<bool>,
}

/// An input row the encoder must refuse.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Refusal {
    pub name: String,
    pub why: String,
    pub input_f32_bits: String,
}

/// f32 values as IEEE binary32 bit patterns, 8 hex digits each (3f800000 = 1.0).
pub fn bits(x: &[f32]) -> String {
    x.iter().map(|v| format!("{:08x}", v.to_bits())).collect()
}

/// How a family encodes one row: `(row, importance, out)`. Families without importance
/// weighting use [`plain`].
pub type Encoder<'a> = &'a dyn Fn(&[f32], Option<&[f32]>, &mut [u8]) -> Result<(), CodecError>;

/// The codec's own `encode_row`, for families that take no importance.
pub fn plain(
    c: &dyn Codec,
) -> impl Fn(&[f32], Option<&[f32]>, &mut [u8]) -> Result<(), CodecError> + '_ {
    move |x, _, out| c.encode_row(x, out)
}

fn row_buffer(id: &str, c: &dyn Codec, len: usize) -> Vec<u8> {
    let n = c
        .row_bytes(len as u64)
        .unwrap_or_else(|e| panic!("{id}: a {len}-element row: {e}"));
    vec![0u8; n as usize]
}

/// Encode and decode every input; any failure is a test failure naming the case.
pub fn record_cases(id: &str, c: &dyn Codec, inputs: Vec<Input>, encode: Encoder) -> Vec<Case> {
    inputs
        .into_iter()
        .map(|i| {
            let mut bytes = row_buffer(id, c, i.x.len());
            encode(&i.x, i.importance.as_deref(), &mut bytes)
                .unwrap_or_else(|e| panic!("{id} {}: {e}", i.name));
            let mut y = vec![0f32; i.x.len()];
            c.decode_row(&bytes, &mut y)
                .unwrap_or_else(|e| panic!("{id} {}: decoding: {e}", i.name));
            Case {
                name: i.name.into(),
                why: i.why.into(),
                row_len: i.x.len(),
                input_f32_bits: bits(&i.x),
                importance_f32_bits: i.importance.as_deref().map(bits),
                encoded_hex: hex::encode(&bytes),
                decoded_f32_bits: bits(&y),
                lossless: None,
            }
        })
        .collect()
}

/// Check that the encoder refuses every input, and record them.
pub fn record_refusals(
    id: &str,
    c: &dyn Codec,
    inputs: Vec<Input>,
    encode: Encoder,
) -> Vec<Refusal> {
    inputs
        .into_iter()
        .map(|i| {
            let mut bytes = row_buffer(id, c, i.x.len());
            assert!(
                encode(&i.x, i.importance.as_deref(), &mut bytes).is_err(),
                "{id} must refuse {}",
                i.name
            );
            Refusal {
                name: i.name.into(),
                why: i.why.into(),
                input_f32_bits: bits(&i.x),
            }
        })
        .collect()
}

/// With `HCT_BLESS=1`, write `got` to `path`; otherwise `got` must equal the file. On a
/// difference the first case that moved is named before the whole comparison fails.
pub fn check_or_bless<T: Serialize + DeserializeOwned + PartialEq + Debug>(path: &Path, got: &T) {
    if std::env::var("HCT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with HCT_BLESS=1)", path.display()));
    let want: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a vector file of this family: {e}", path.display()));
    if *got == want {
        return;
    }
    let (g, w) = (
        serde_json::to_value(got).unwrap(),
        serde_json::to_value(&want).unwrap(),
    );
    if let (Some(gc), Some(wc)) = (g["cases"].as_array(), w["cases"].as_array()) {
        for (gi, wi) in gc.iter().zip(wc) {
            assert_eq!(gi, wi, "{}: case {}", path.display(), wi["name"]);
        }
    }
    assert_eq!(*got, want, "{}", path.display());
}

/// Rows are independent: encoding a matrix's rows in parallel on a 1- and a 2-thread pool must
/// give the same bytes (the converter relies on this). `rows` must share one length.
pub fn same_bytes_at_1_and_2_threads(id: &str, c: &dyn Codec, rows: &[Vec<f32>]) {
    use rayon::prelude::*;
    let encode = |threads: usize| -> Vec<Vec<u8>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            rows.par_iter()
                .map(|x| {
                    let mut b = row_buffer(id, c, x.len());
                    c.encode_row(x, &mut b)
                        .unwrap_or_else(|e| panic!("{id}: {e}"));
                    b
                })
                .collect()
        })
    };
    assert_eq!(encode(1), encode(2), "{id}");
}
