//! SentencePiece vocabularies (Gemma, Llama 2, Mistral v0.1): llama.cpp's `llama` tokenizer
//! model, read from the checkpoint's `tokenizer.model` as llama.cpp's own converter reads it.
//!
//! The token list has `vocab_size` entries (from `config.json`, else the model's piece count):
//! each piece with its score and type (unknown, control, unused and byte pieces keep their
//! type; normal and user-defined pieces are normal), ids the model does not fill are
//! `[PAD<id>]`, unused, score -10000. Tokens named by `added_tokens.json` become user-defined
//! and those of `tokenizer_config.json`'s `added_tokens_decoder` control (special, or looking
//! special) or user-defined (with `▁` written as a space), both with score -1000. There are no
//! merges: llama.cpp's SentencePiece tokenizer merges by score.

use super::hf_files::{HfFiles, JsonObject};
use super::sentencepiece::{pieces, PieceType};
use super::special::special_tokens;
use super::vocab::{looks_special, AddedToken, MAX_VOCAB};
use anyhow::{bail, Context, Result};
use hct_format::value::{Array, Metadata, Value};
use serde_json::Value as Json;

/// llama.cpp's token types, as its converter writes them for SentencePiece vocabularies.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// The `tokenizer.*` keys of a SentencePiece vocabulary, and how many tokens it has.
pub fn spm_entries(
    files: &HfFiles,
    config: &JsonObject,
    tok: &JsonObject,
    added: &[AddedToken],
) -> Result<(Metadata, u32)> {
    let model = files.bytes("tokenizer.model").with_context(|| {
        "the checkpoint has no tokenizer.model (metadata key hf.file.tokenizer.model), \
         which holds this SentencePiece vocabulary's scores and types"
    })?;
    let pieces = pieces(model)?;
    let n_vocab = match config.u32("vocab_size")? {
        Some(n) => n,
        None => u32::try_from(pieces.len()).unwrap_or(u32::MAX),
    };
    if n_vocab > MAX_VOCAB {
        bail!("config.json: vocab_size {n_vocab} is above {MAX_VOCAB}, larger than any real vocabulary");
    }
    let n = n_vocab as usize;
    let mut tokens: Vec<Vec<u8>> = (0..n).map(|i| format!("[PAD{i}]").into_bytes()).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![UNUSED; n];
    if pieces.len() > n {
        tracing::warn!(
            pieces = pieces.len(),
            vocab_size = n,
            "tokenizer.model has more pieces than config.json's vocab_size; the rest are left out"
        );
    }
    for (id, p) in pieces.into_iter().take(n).enumerate() {
        types[id] = match p.kind {
            PieceType::Unknown => UNKNOWN,
            PieceType::Control => CONTROL,
            PieceType::Unused => UNUSED,
            PieceType::Byte => BYTE,
            PieceType::Normal | PieceType::UserDefined => NORMAL,
        };
        tokens[id] = p.text;
        scores[id] = p.score;
    }
    if let Some(extra) = files.json("added_tokens.json")? {
        let map = extra
            .as_object()
            .context("added_tokens.json: expected an object of token → id")?;
        for (text, id) in map {
            let id = id
                .as_u64()
                .with_context(|| format!("added_tokens.json: {text:?} → {id} is not a token id"))?;
            if id >= n as u64 {
                tracing::warn!(id, text, "added token beyond the vocabulary, skipped");
                continue;
            }
            tokens[id as usize] = text.as_bytes().to_vec();
            scores[id as usize] = -1000.0;
            types[id as usize] = USER_DEFINED;
        }
    }
    let tc_json = files.json("tokenizer_config.json")?;
    let tc = match &tc_json {
        Some(v) => Some(JsonObject::new("tokenizer_config.json", v)?),
        None => None,
    };
    if let Some(decoder) = tc.as_ref().and_then(|tc| tc.get("added_tokens_decoder")) {
        let map = decoder
            .as_object()
            .context("tokenizer_config.json: added_tokens_decoder is not an object")?;
        for (key, data) in map {
            let id: u64 = key.parse().with_context(|| {
                format!("tokenizer_config.json: added_tokens_decoder key {key:?} is not a token id")
            })?;
            let content = data
                .get("content")
                .and_then(Json::as_str)
                .with_context(|| {
                    format!(
                        "tokenizer_config.json: added_tokens_decoder[{key}] has no content string"
                    )
                })?;
            if id >= n as u64 {
                tracing::warn!(id, content, "added token beyond the vocabulary, skipped");
                continue;
            }
            let special = data.get("special").and_then(Json::as_bool) == Some(true);
            let i = id as usize;
            if special || looks_special(content) {
                types[i] = CONTROL;
                tokens[i] = content.as_bytes().to_vec();
            } else {
                // llama.cpp expects user-defined tokens with plain spaces.
                types[i] = USER_DEFINED;
                tokens[i] = content.replace('\u{2581}', " ").into_bytes();
            }
            scores[i] = -1000.0;
        }
    }

    let mut m: Metadata = vec![
        ("tokenizer.ggml.model".into(), Value::string("llama")),
        ("tokenizer.ggml.pre".into(), Value::string("default")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(Array::String(tokens)),
        ),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array(Array::F32(scores)),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(Array::I32(types)),
        ),
    ];
    let sp = special_tokens(files, tok, tc.as_ref(), config, added, Some(n_vocab))?;
    super::vocab::push_specials(&mut m, sp);
    Ok((m, n_vocab))
}
