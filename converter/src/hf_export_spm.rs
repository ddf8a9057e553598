//! A SentencePiece vocabulary of a llama.cpp GGUF (`tokenizer.ggml.model` = `llama`) written back
//! as a Hugging Face folder's `tokenizer.model`, `tokenizer.json` and the SentencePiece parts of
//! `tokenizer_config.json` (Llama 2, Mistral v0.1). llama.cpp's converter (and `hct`) read the
//! vocabulary from `tokenizer.model`; `tokenizer.json` is what transformers' fast tokenizer
//! loads, written as transformers' own Llama converter writes it from a `tokenizer.model` (its
//! merges derived from the piece scores the same way), and it carries the added tokens and the
//! post-processor the forward conversion reads.
//!
//! What the GGUF keeps, and so what is rebuilt faithfully: every piece's text, score and type,
//! the special ids, whether bos/eos are added and the dummy prefix. What it does not keep and is
//! set here: the model type (BPE: llama.cpp merges by score, which is SentencePiece's BPE), byte
//! fallback (on when there are byte pieces), the identity normalizer with whitespace escaped
//! and not collapsed (what llama.cpp does), and whitespace-only pieces allowed when the
//! vocabulary has such pieces. Training options (corpus, `split_digits`, ...) are lost; they do
//! not change how a trained model encodes.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;

/// llama.cpp's token types; SentencePiece's piece types use the same numbers.
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

/// The score llama.cpp's converter gives tokens named by `added_tokens_decoder`: such a token
/// came from there and goes back there.
const ADDED_SCORE: f32 = -1000.0;

/// A GGUF's SentencePiece vocabulary: one text, score and llama.cpp type per token, and the
/// special ids.
pub struct SpmVocab<'a> {
    pub tokens: &'a [String],
    pub scores: &'a [f32],
    pub types: &'a [i32],
    pub unk: Option<u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    pub add_dummy_prefix: bool,
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u64, wire: u64, out: &mut Vec<u8>) {
    varint((field << 3) | wire, out);
}

fn bytes_field(field: u64, b: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn int_field(field: u64, v: i64, out: &mut Vec<u8>) {
    key(field, 0, out);
    // Negative int32 values are ten-byte varints in protobuf.
    varint(v as u64, out);
}

impl SpmVocab<'_> {
    /// The unknown token, which a SentencePiece model cannot load without: named by the GGUF or
    /// the first token typed unknown.
    fn unk_id(&self) -> Result<u32> {
        if let Some(u) = self.unk {
            return Ok(u);
        }
        match self.types.iter().position(|&t| t == UNKNOWN) {
            Some(i) => Ok(i as u32),
            None => bail!(
                "the GGUF's SentencePiece vocabulary has no unknown token (tokenizer.ggml.unknown_token_id, or a token of type 2), which a tokenizer.model must have"
            ),
        }
    }

    /// The `ModelProto` bytes of `tokenizer.model`.
    pub fn model_proto(&self) -> Result<Vec<u8>> {
        let unk = self.unk_id()?;
        let mut out = Vec::new();
        for (i, text) in self.tokens.iter().enumerate() {
            // The unknown token is the model's unknown piece even where llama.cpp's converter
            // typed it control (it was named by added_tokens_decoder).
            let kind = if i as u32 == unk {
                UNKNOWN
            } else {
                self.types[i]
            };
            if !(1..=6).contains(&kind) {
                bail!(
                    "tokenizer.ggml.token_type[{i}] = {kind}, not a SentencePiece piece type (1 to 6)"
                );
            }
            let mut p = Vec::with_capacity(text.len() + 12);
            bytes_field(1, text.as_bytes(), &mut p);
            key(2, 5, &mut p);
            p.extend_from_slice(&self.scores[i].to_le_bytes());
            int_field(3, kind as i64, &mut p);
            bytes_field(1, &p, &mut out);
        }
        let name = |id: Option<u32>, default: &str| -> String {
            id.map(|i| self.tokens[i as usize].clone())
                .unwrap_or_else(|| default.to_string())
        };
        let id = |v: Option<u32>| v.map_or(-1, i64::from);
        let whitespace_only = self
            .tokens
            .iter()
            .any(|t| t.chars().count() > 1 && t.chars().all(|c| c == '\u{2581}'));
        let mut trainer = Vec::new();
        int_field(3, 2, &mut trainer); // model_type BPE
        int_field(4, self.tokens.len() as i64, &mut trainer); // vocab_size
        if whitespace_only {
            int_field(26, 1, &mut trainer); // allow_whitespace_only_pieces
        }
        if self.types.contains(&BYTE) {
            int_field(35, 1, &mut trainer); // byte_fallback
        }
        int_field(40, i64::from(unk), &mut trainer);
        int_field(41, id(self.bos), &mut trainer);
        int_field(42, id(self.eos), &mut trainer);
        int_field(43, id(self.pad), &mut trainer);
        bytes_field(45, name(Some(unk), "<unk>").as_bytes(), &mut trainer);
        bytes_field(46, name(self.bos, "<s>").as_bytes(), &mut trainer);
        bytes_field(47, name(self.eos, "</s>").as_bytes(), &mut trainer);
        bytes_field(48, name(self.pad, "<pad>").as_bytes(), &mut trainer);
        bytes_field(2, &trainer, &mut out);
        let mut normalizer = Vec::new();
        bytes_field(1, b"identity", &mut normalizer);
        int_field(3, i64::from(self.add_dummy_prefix), &mut normalizer);
        int_field(4, 0, &mut normalizer); // remove_extra_whitespaces
        int_field(5, 1, &mut normalizer); // escape_whitespaces
        bytes_field(3, &normalizer, &mut out);
        Ok(out)
    }

    /// The tokens `added_tokens_decoder` and `tokenizer.json`'s `added_tokens` list.
    fn added(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.types.iter().enumerate().filter_map(|(i, t)| {
            (matches!(*t, CONTROL | USER_DEFINED) && self.scores[i] == ADDED_SCORE)
                .then_some((i, *t == CONTROL))
        })
    }

    /// BPE merges from piece scores, as transformers derives them from a SentencePiece model:
    /// every split of a piece into two pieces, ranked by the whole piece's score (higher
    /// first), then by the lengths of the left and right parts (longer first); ties keep the
    /// order of the piece's id, then of the parts' ids. transformers' Llama converter scores
    /// the first three ids 0.
    fn merges(&self) -> Vec<(String, String)> {
        let mut id: HashMap<&str, usize> = HashMap::with_capacity(self.tokens.len());
        for (i, t) in self.tokens.iter().enumerate() {
            id.insert(t.as_str(), i);
        }
        let score = |i: usize| if i < 3 { 0.0 } else { self.scores[i] };
        struct Merge<'a> {
            left: &'a str,
            right: &'a str,
            score: f32,
            len: (usize, usize),
        }
        let mut merges: Vec<Merge> = vec![];
        let mut seen = std::collections::HashSet::with_capacity(self.tokens.len());
        for t in self.tokens {
            // A repeated piece counts once, with its last id's score (Python dict semantics).
            if !seen.insert(t.as_str()) {
                continue;
            }
            let whole = score(id[t.as_str()]);
            let mut local: Vec<Merge> = t
                .char_indices()
                .skip(1)
                .filter_map(|(at, _)| {
                    let (l, r) = t.split_at(at);
                    (id.contains_key(l) && id.contains_key(r)).then(|| Merge {
                        left: l,
                        right: r,
                        score: whole,
                        len: (l.chars().count(), r.chars().count()),
                    })
                })
                .collect();
            local.sort_by_key(|m| (id[m.left], id[m.right]));
            merges.extend(local);
        }
        // Stable, descending: equal keys keep their order, as Python's sorted(reverse=True).
        merges.sort_by(|a, b| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.len.cmp(&a.len))
        });
        merges
            .into_iter()
            .map(|m| (m.left.to_string(), m.right.to_string()))
            .collect()
    }

    /// `tokenizer.json` for transformers' fast Llama tokenizer (non-legacy: the dummy prefix is
    /// the slow tokenizer's business; the fast one's pre-tokenizer only maps spaces).
    pub fn tokenizer_json(&self, add_bos: bool) -> Result<Json> {
        let unk = self.unk_id()?;
        let mut vocab = Map::new();
        for (i, t) in self.tokens.iter().enumerate() {
            vocab.insert(t.clone(), json!(i));
        }
        let merges: Vec<Json> = self
            .merges()
            .into_iter()
            .map(|(l, r)| json!([l, r]))
            .collect();
        let added: Vec<Json> = self
            .added()
            .map(|(i, special)| {
                json!({"id": i, "content": self.tokens[i], "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": !special, "special": special})
            })
            .collect();
        let post = match (add_bos, self.bos) {
            (true, Some(b)) => {
                let bos = &self.tokens[b as usize];
                json!({"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {bos.clone(): {"id": bos, "ids": [b], "tokens": [bos]}}})
            }
            _ => json!({"type": "TemplateProcessing",
                "single": [{"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {}}),
        };
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "never", "split": false},
            "post_processor": post,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]},
            "model": {"type": "BPE", "dropout": null, "unk_token": self.tokens[unk as usize],
                      "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
                      "byte_fallback": self.types.contains(&BYTE), "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        }))
    }

    /// `tokenizer_config.json`'s `added_tokens_decoder`: the control and user-defined tokens
    /// llama.cpp's converter took from there (score -1000), so that reading the folder again
    /// types and scores them the same.
    pub fn added_tokens_decoder(&self) -> Json {
        let mut m = Map::new();
        for (i, special) in self.added() {
            m.insert(
                i.to_string(),
                json!({"content": self.tokens[i], "lstrip": false, "normalized": !special,
                       "rstrip": false, "single_word": false, "special": special}),
            );
        }
        Json::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama_gguf::sentencepiece::{pieces, PieceType};

    #[test]
    fn the_model_reads_back_through_the_converters_own_parser() {
        let tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<0x41>", "\u{2581}\u{2581}", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [-1000.0, -1000.0, -1000.0, 0.0, -1.0, -2.5];
        let types = [CONTROL, CONTROL, CONTROL, BYTE, 1, 1];
        let v = SpmVocab {
            tokens: &tokens,
            scores: &scores,
            types: &types,
            unk: Some(0),
            bos: Some(1),
            eos: Some(2),
            pad: None,
            add_dummy_prefix: true,
        };
        let p = pieces(&v.model_proto().unwrap()).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(
            p[0].kind,
            PieceType::Unknown,
            "the unknown token is the unknown piece"
        );
        assert_eq!(p[1].kind, PieceType::Control);
        assert_eq!(p[3].kind, PieceType::Byte);
        assert_eq!(p[5].text, b"a");
        assert_eq!(p[5].score, -2.5);
        let d = v.added_tokens_decoder();
        assert_eq!(d.as_object().unwrap().len(), 3);
        assert_eq!(d["1"]["content"], "<s>");
        assert_eq!(d["1"]["special"], true);
    }

    #[test]
    fn merges_are_ranked_by_score_then_by_the_lengths_of_their_parts() {
        let tokens: Vec<String> = ["<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [
            -1000.0, -1000.0, -1000.0, -6.0, -7.0, -8.0, -5.0, -1.0, -3.0,
        ];
        let types = [CONTROL, CONTROL, CONTROL, 1, 1, 1, 1, 1, 1];
        let v = SpmVocab {
            tokens: &tokens,
            scores: &scores,
            types: &types,
            unk: Some(0),
            bos: Some(1),
            eos: Some(2),
            pad: None,
            add_dummy_prefix: true,
        };
        let expected: Vec<(String, String)> = [("b", "c"), ("ab", "c"), ("a", "bc"), ("a", "b")]
            .iter()
            .map(|(l, r)| (l.to_string(), r.to_string()))
            .collect();
        // "bc" scores best; "abc"'s two splits tie on score, the longer left part first.
        assert_eq!(v.merges(), expected);
    }

    #[test]
    fn a_vocabulary_without_an_unknown_token_is_refused() {
        let tokens = vec!["a".to_string()];
        let v = SpmVocab {
            tokens: &tokens,
            scores: &[0.0],
            types: &[1],
            unk: None,
            bos: None,
            eos: None,
            pad: None,
            add_dummy_prefix: true,
        };
        let e = v.model_proto().unwrap_err().to_string();
        assert!(e.contains("no unknown token"), "{e}");
    }
}
