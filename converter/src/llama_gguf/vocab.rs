//! `tokenizer.json` (+ `tokenizer_config.json`, `config.json`) → llama.cpp's `tokenizer.*`
//! keys: the token list and types, BPE merges, the pre-tokenizer name, special tokens and
//! whether to add them, the chat template, the normalizer flags.
//!
//! The pre-tokenizer: llama.cpp's `tokenizer.ggml.pre` selects the regular expressions its BPE
//! tokenizer splits text with. llama.cpp's Python converter finds the name by tokenizing a
//! fixed text with the Python tokenizer and hashing the ids. With no Python tokenizer here,
//! we read what the hash stands for directly: the `pre_tokenizer` steps of `tokenizer.json`
//! (the split patterns and byte-level mapping), recognised structurally for the families
//! llama.cpp names. A structure we do not recognise is refused, never guessed, because a
//! wrong name loads fine and then tokenizes differently.

use super::arch::{Family, Hparams};
use super::hf_files::{HfFiles, JsonObject};
use super::special::special_tokens;
use anyhow::{bail, Context, Result};
use hct_format::value::{Array, Metadata, Value};
use serde_json::Value as Json;

/// llama.cpp's token types (gguf `TokenType`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// A vocabulary bigger than this is refused before anything is sized by it.
pub(super) const MAX_VOCAB: u32 = 1 << 24;

/// The split pattern of Qwen2's tokenizer: Llama 3's with digits one by one.
pub(crate) const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split pattern of Llama 3's tokenizer (`Split` step before a byte-level mapping).
pub(crate) const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.*` keys, and the number of tokens when the vocabulary is SentencePiece's
/// (Gemma 3 keeps that many embedding rows).
pub fn vocab_entries(
    files: &HfFiles,
    hp: &Hparams,
    config: &JsonObject,
) -> Result<(Metadata, Option<u32>)> {
    let tok_json = files.require_json("tokenizer.json", "holds the vocabulary llama.cpp needs")?;
    let tok = JsonObject::new("tokenizer.json", &tok_json)?;
    // Gemma's vocabulary is always SentencePiece's; a llama-family checkpoint's is when it has
    // a tokenizer.model (Llama 2, Mistral v0.1), as llama.cpp's converter decides.
    let sentencepiece = match hp.family {
        Family::Gemma2 | Family::Gemma3 => true,
        Family::Llama => files.has("tokenizer.model"),
        Family::Bert | Family::Qwen2 => false,
    };
    if sentencepiece {
        let added = added_tokens(&tok)?;
        let (mut m, n) = super::spm_vocab::spm_entries(files, config, &tok, &added)?;
        if matches!(hp.family, Family::Gemma2 | Family::Gemma3) {
            m.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false)));
        } else if let Some(tc) = files.json("tokenizer_config.json")? {
            if let Some(p) = tc.get("add_prefix_space").and_then(Json::as_bool) {
                m.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(p)));
            }
        }
        return Ok((m, Some(n)));
    }
    let tc_json = files.json("tokenizer_config.json")?;
    let model = tok
        .get("model")
        .context("tokenizer.json: no \"model\" object")?;
    let model = JsonObject::new("tokenizer.json model", model)?;
    let model_type = model.str("type").unwrap_or("?");
    let ggml_model = match (hp.family, model_type) {
        (Family::Bert, "WordPiece") => "bert",
        (Family::Llama | Family::Qwen2, "BPE") if model.bool("byte_fallback") != Some(true) => {
            "gpt2"
        }
        (Family::Llama | Family::Qwen2, "BPE") => return Err(super::unsupported(
            "tokenizer.json: a SentencePiece-style BPE vocabulary (byte_fallback, as in Llama 2 \
                 and Mistral) needs the checkpoint's tokenizer.model, which it lacks; byte-level \
                 BPE (Llama 3, SmolLM2) needs only tokenizer.json"
                .into(),
        )),
        (f, t) => {
            return Err(super::unsupported(format!(
                "tokenizer.json: a {t} vocabulary with a {} model is not supported; {} uses {}",
                hp.hf_arch,
                f.gguf_name(),
                if f == Family::Bert {
                    "WordPiece"
                } else {
                    "byte-level BPE"
                }
            )))
        }
    };
    let pre = pre_tokenizer_name(&tok, hp.family)?;

    let added = added_tokens(&tok)?;
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .context("tokenizer.json: model.vocab is not an object of token → id")?;
    let mut max_id: Option<u32> = None;
    let mut pairs: Vec<(u32, &str)> = Vec::with_capacity(vocab.len() + added.len());
    for (text, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .with_context(|| {
                format!("tokenizer.json: model.vocab[{text:?}] = {id} is not a token id")
            })?;
        pairs.push((id, text.as_str()));
    }
    for a in &added {
        pairs.push((a.id, a.content.as_str()));
    }
    for &(id, _) in &pairs {
        max_id = Some(max_id.map_or(id, |m| m.max(id)));
    }
    let n_vocab = match hp.vocab_size {
        Some(n) => n,
        None => max_id.map_or(0, |m| m + 1),
    };
    if n_vocab > MAX_VOCAB {
        bail!("config.json: vocab_size {n_vocab} is above {MAX_VOCAB}, larger than any real vocabulary");
    }
    if let Some(m) = max_id {
        if m >= n_vocab {
            bail!("tokenizer.json has token id {m}, but config.json vocab_size is {n_vocab}");
        }
    }
    let mut texts: Vec<Option<&str>> = vec![None; n_vocab as usize];
    for (id, text) in pairs {
        // An added token that is also in the vocabulary keeps one entry.
        texts[id as usize] = Some(text);
    }
    let mut tokens: Vec<Vec<u8>> = Vec::with_capacity(n_vocab as usize);
    let mut types: Vec<i32> = Vec::with_capacity(n_vocab as usize);
    for (i, t) in texts.iter().enumerate() {
        let Some(text) = t else {
            tokens.push(format!("[PAD{i}]").into_bytes());
            types.push(UNUSED);
            continue;
        };
        let (mut text, ty) = match added.iter().find(|a| a.content == *text) {
            Some(a) if a.special || looks_special(text) => (text.to_string(), CONTROL),
            // llama.cpp expects user-defined tokens with plain spaces.
            Some(_) => (text.replace('\u{2581}', " "), USER_DEFINED),
            None => (text.to_string(), NORMAL),
        };
        if ggml_model == "bert" && ty != CONTROL {
            // llama.cpp's WordPiece marks word starts, not continuations: `##ing` → `ing`,
            // `play` → `▁play`.
            text = match text.strip_prefix("##") {
                Some(rest) => rest.to_string(),
                None => format!("\u{2581}{text}"),
            };
        }
        tokens.push(text.into_bytes());
        types.push(ty);
    }

    let mut m: Metadata = vec![];
    let tc = match &tc_json {
        Some(v) => Some(JsonObject::new("tokenizer_config.json", v)?),
        None => None,
    };
    if hp.family == Family::Llama {
        if let Some(p) = tc.as_ref().and_then(|tc| tc.bool("add_prefix_space")) {
            m.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(p)));
        }
    }
    if hp.family == Family::Bert {
        let n = config.u32("type_vocab_size")?.unwrap_or(1);
        m.push(("tokenizer.ggml.token_type_count".into(), Value::U32(n)));
    }
    m.push(("tokenizer.ggml.model".into(), Value::string(ggml_model)));
    m.push(("tokenizer.ggml.pre".into(), Value::string(pre)));
    m.push((
        "tokenizer.ggml.tokens".into(),
        Value::Array(Array::String(tokens)),
    ));
    m.push((
        "tokenizer.ggml.token_type".into(),
        Value::Array(Array::I32(types)),
    ));
    if ggml_model == "gpt2" {
        let merges = merges(&model)?;
        m.push((
            "tokenizer.ggml.merges".into(),
            Value::Array(Array::String(merges)),
        ));
    }
    let n_vocab_limit = (ggml_model == "bert").then_some(n_vocab);
    let sp = special_tokens(files, &tok, tc.as_ref(), config, &added, n_vocab_limit)?;
    push_specials(&mut m, sp);
    let (lower, strip) = normalizer_flags(tok.get("normalizer"));
    if let Some(v) = lower {
        m.push(("tokenizer.ggml.normalizer.lowercase".into(), Value::Bool(v)));
    }
    if let Some(v) = strip {
        m.push((
            "tokenizer.ggml.normalizer.strip_accents".into(),
            Value::Bool(v),
        ));
    }
    Ok((m, None))
}

/// The special-token ids, whether to add bos/eos/sep, and the chat template.
pub(super) fn push_specials(m: &mut Metadata, sp: super::special::Specials) {
    // llama.cpp no longer reads a cls key (deprecated; bos stands for it) and its converter
    // does not write one: neither do we.
    for (typ, id) in sp.ids.iter().filter(|(t, _)| *t != "cls") {
        m.push((format!("tokenizer.ggml.{}", id_key(typ)), Value::U32(*id)));
    }
    for (typ, add) in &sp.add {
        if matches!(*typ, "bos" | "eos" | "sep") {
            m.push((format!("tokenizer.ggml.add_{typ}_token"), Value::Bool(*add)));
        }
    }
    if let Some(t) = sp.chat_template {
        m.push(("tokenizer.chat_template".into(), Value::string(t)));
    }
}

fn id_key(typ: &str) -> String {
    match typ {
        "unk" => "unknown_token_id".into(),
        "sep" => "seperator_token_id".into(), // sic: llama.cpp's key
        "pad" => "padding_token_id".into(),
        t => format!("{t}_token_id"),
    }
}

/// Added tokens whose text looks like a control token although not flagged special.
pub(super) fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// The llama.cpp pre-tokenizer name for a `tokenizer.json`, from its structure.
fn pre_tokenizer_name(tok: &JsonObject, family: Family) -> Result<&'static str> {
    let pre = tok.get("pre_tokenizer");
    let steps: Vec<&Json> = match pre {
        None => vec![],
        Some(p) if p.get("type").and_then(Json::as_str) == Some("Sequence") => p
            .get("pretokenizers")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(p) => vec![p],
    };
    let ty = |s: &Json| {
        s.get("type")
            .and_then(Json::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let flag = |s: &Json, k: &str| s.get(k).and_then(Json::as_bool);
    let byte_level = |s: &Json, regex: bool| {
        ty(s) == "ByteLevel"
            && flag(s, "add_prefix_space") != Some(true)
            && flag(s, "use_regex").unwrap_or(true) == regex
    };
    let split_regex = |s: &Json| -> Option<String> {
        (ty(s) == "Split"
            && s.get("behavior").and_then(Json::as_str) == Some("Isolated")
            && flag(s, "invert") != Some(true))
        .then(|| s.get("pattern")?.get("Regex")?.as_str().map(str::to_string))?
    };
    let name = match (family, steps.as_slice()) {
        // WordPiece: llama.cpp ignores the name for WPM vocabularies and splits on whitespace
        // and punctuation as BertPreTokenizer does; this is the name its converter gives the
        // uncased BERT vocabulary all-MiniLM and bge share.
        (Family::Bert, [s]) if ty(s) == "BertPreTokenizer" => "jina-v2-en",
        // GPT-2's byte-level regex alone.
        (Family::Llama | Family::Qwen2, [s]) if byte_level(s, true) => "gpt-2",
        // Digits one by one, then GPT-2's regex: SmolLM's tokenizer.
        (Family::Llama | Family::Qwen2, [d, s])
            if ty(d) == "Digits"
                && flag(d, "individual_digits") == Some(true)
                && byte_level(s, true) =>
        {
            "smollm"
        }
        // Llama 3's split pattern, then a byte-level mapping without its own regex.
        (Family::Llama | Family::Qwen2, [sp, s])
            if split_regex(sp).as_deref() == Some(LLAMA3_SPLIT) && byte_level(s, false) =>
        {
            "llama-bpe"
        }
        // Qwen2's split pattern, then a byte-level mapping without its own regex.
        (Family::Llama | Family::Qwen2, [sp, s])
            if split_regex(sp).as_deref() == Some(QWEN2_SPLIT) && byte_level(s, false) =>
        {
            "qwen2"
        }
        _ => {
            return Err(super::unsupported(format!(
                "tokenizer.json: pre-tokenizer {} is not one this build recognises ({}); \
             llama.cpp would split text differently under a wrong guess, so it is not guessed",
                pre.map_or("(none)".to_string(), |p| {
                    let s = p.to_string();
                    if s.len() > 300 {
                        format!("{}…", s.chars().take(300).collect::<String>())
                    } else {
                        s
                    }
                }),
                match family {
                    Family::Bert => "BertPreTokenizer",
                    _ => {
                        "GPT-2 byte-level, SmolLM digits + byte-level, Llama 3 or Qwen2 split + byte-level"
                    }
                }
            )))
        }
    };
    Ok(name)
}

pub struct AddedToken {
    pub id: u32,
    pub content: String,
    pub special: bool,
}

fn added_tokens(tok: &JsonObject) -> Result<Vec<AddedToken>> {
    let Some(list) = tok.get("added_tokens") else {
        return Ok(vec![]);
    };
    let list = list
        .as_array()
        .context("tokenizer.json: added_tokens is not a list")?;
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            let id = a
                .get("id")
                .and_then(Json::as_u64)
                .and_then(|i| u32::try_from(i).ok());
            let content = a.get("content").and_then(Json::as_str);
            match (id, content) {
                (Some(id), Some(content)) => Ok(AddedToken {
                    id,
                    content: content.to_string(),
                    special: a.get("special").and_then(Json::as_bool).unwrap_or(false),
                }),
                _ => bail!(
                    "tokenizer.json: added_tokens[{i}] lacks an integer id or a content string"
                ),
            }
        })
        .collect()
}

/// BPE merges as llama.cpp stores them: `"left right"`, a space inside a part written as
/// U+0120 (the list-of-pairs form of newer tokenizer.json files allows spaces).
fn merges(model: &JsonObject) -> Result<Vec<Vec<u8>>> {
    let list = model
        .get("merges")
        .and_then(Json::as_array)
        .context("tokenizer.json: a BPE model without a merges list")?;
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            if let Some(s) = m.as_str() {
                return Ok(s.as_bytes().to_vec());
            }
            let pair = m.as_array().filter(|p| p.len() == 2);
            match pair.and_then(|p| Some((p[0].as_str()?, p[1].as_str()?))) {
                Some((a, b)) => {
                    let esc = |s: &str| s.replace(' ', "\u{120}");
                    Ok(format!("{} {}", esc(a), esc(b)).into_bytes())
                }
                None => {
                    bail!("tokenizer.json: model.merges[{i}] is neither \"a b\" nor [\"a\", \"b\"]")
                }
            }
        })
        .collect()
}

/// `lowercase`, `strip_accents` from the normalizer (alone, BertNormalizer, or a Sequence).
fn normalizer_flags(n: Option<&Json>) -> (Option<bool>, Option<bool>) {
    let mut lower = None;
    let mut strip = None;
    fn walk(n: &Json, lower: &mut Option<bool>, strip: &mut Option<bool>) {
        match n.get("type").and_then(Json::as_str) {
            Some("Lowercase") => *lower = Some(true),
            Some("StripAccents") => *strip = Some(true),
            Some("BertNormalizer") => {
                if let Some(b) = n.get("lowercase").and_then(Json::as_bool) {
                    *lower = Some(b);
                }
                if let Some(b) = n.get("strip_accents").and_then(Json::as_bool) {
                    *strip = Some(b);
                }
            }
            Some("Sequence") => {
                for m in n
                    .get("normalizers")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    walk(m, lower, strip);
                }
            }
            _ => {}
        }
    }
    if let Some(n) = n {
        walk(n, &mut lower, &mut strip);
    }
    (lower, strip)
}
