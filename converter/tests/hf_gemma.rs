//! `hct convert FOLDER out.gguf` on Gemma 2 / Gemma 3 checkpoints the test writes (config.json,
//! safetensors, a SentencePiece tokenizer.model encoded here, tokenizer.json and
//! tokenizer_config.json): llama.cpp's architecture keys, norms with 1 added (f32 and bf16),
//! no lm_head, Gemma 3's embedding cut to the vocabulary, the SentencePiece token list with
//! llama.cpp's types and scores, and clear refusals. The comparison with llama.cpp's own
//! converter and llama.cpp runs on real SentencePiece checkpoints is compat-tests/hf/ci_sp.sh
//! (CI) and compat-tests/hf/run.sh.

use std::path::Path;

use hct_format::gguf::GgufFile;
use hct_format::value::{lookup, Array, Value};
use safetensors::{tensor::TensorView, Dtype};
use serde_json::json;

mod common;
use common::{hct, s};

const HIDDEN: usize = 32;
const HEAD_DIM: usize = 16;
const FF: usize = 48;
const EMBD_ROWS: usize = 10;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A SentencePiece ModelProto with `pieces` (text, score, type) and a trainer_spec field.
fn sentencepiece_model(pieces: &[(&str, f32, u64)]) -> Vec<u8> {
    let mut out = vec![];
    for (text, score, ty) in pieces {
        let mut m = vec![0x0a];
        varint(text.len() as u64, &mut m);
        m.extend_from_slice(text.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        m.push(0x18);
        varint(*ty, &mut m);
        out.push(0x0a);
        varint(m.len() as u64, &mut out);
        out.extend(m);
    }
    out.extend([0x12, 2, 0x08, 0x01]);
    out
}

const PIECES: &[(&str, f32, u64)] = &[
    ("<pad>", 0.0, 3),
    ("<eos>", 0.0, 3),
    ("<bos>", 0.0, 3),
    ("<unk>", 0.0, 2),
    ("<start_of_turn>", 0.0, 4),
    ("<0x0A>", 0.0, 6),
    ("\u{2581}a", -1.0, 1),
    ("b", -2.0, 1),
];

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A Gemma checkpoint: `arch` is Gemma2ForCausalLM or Gemma3ForCausalLM; the final norm is
/// bf16, everything else f32; `vocab_size` in config.json may be below the embedding rows.
fn write_gemma(dir: &Path, arch: &str, vocab_size: usize, with_sp_model: bool) {
    let gemma3 = arch.starts_with("Gemma3");
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![];
    let mut push = |name: &str, shape: Vec<usize>, base: f32| {
        let n: usize = shape.iter().product();
        let vals: Vec<f32> = (0..n).map(|i| base + i as f32 / 64.0).collect();
        tensors.push((name.into(), Dtype::F32, shape, f32_bytes(&vals)));
    };
    push("model.embed_tokens.weight", vec![EMBD_ROWS, HIDDEN], 0.0);
    push("lm_head.weight", vec![EMBD_ROWS, HIDDEN], 0.0);
    let mut layer_names = vec![
        ("input_layernorm.weight", vec![HIDDEN]),
        ("post_attention_layernorm.weight", vec![HIDDEN]),
        ("pre_feedforward_layernorm.weight", vec![HIDDEN]),
        ("post_feedforward_layernorm.weight", vec![HIDDEN]),
        ("self_attn.q_proj.weight", vec![2 * HEAD_DIM, HIDDEN]),
        ("self_attn.k_proj.weight", vec![HEAD_DIM, HIDDEN]),
        ("self_attn.v_proj.weight", vec![HEAD_DIM, HIDDEN]),
        ("self_attn.o_proj.weight", vec![HIDDEN, 2 * HEAD_DIM]),
        ("mlp.gate_proj.weight", vec![FF, HIDDEN]),
        ("mlp.up_proj.weight", vec![FF, HIDDEN]),
        ("mlp.down_proj.weight", vec![HIDDEN, FF]),
    ];
    if gemma3 {
        layer_names.push(("self_attn.q_norm.weight", vec![HEAD_DIM]));
        layer_names.push(("self_attn.k_norm.weight", vec![HEAD_DIM]));
    }
    for (n, shape) in layer_names {
        push(&format!("model.layers.0.{n}"), shape, -0.25);
    }
    // bf16 0.5 and 0.0078125 (2^-7): + 1 gives 1.5 and 1.0078125, both exact in bf16.
    let bf: Vec<u8> = (0..HIDDEN)
        .flat_map(|i| {
            let x: f32 = if i % 2 == 0 { 0.5 } else { 0.0078125 };
            ((x.to_bits() >> 16) as u16).to_le_bytes()
        })
        .collect();
    tensors.push(("model.norm.weight".into(), Dtype::BF16, vec![HIDDEN], bf));
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    let mut config = json!({
        "architectures": [arch], "hidden_size": HIDDEN, "intermediate_size": FF,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": HEAD_DIM, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
        "vocab_size": vocab_size, "sliding_window": 64, "bos_token_id": 2, "eos_token_id": 1,
        "pad_token_id": 0, "final_logit_softcapping": 30.0,
    });
    if gemma3 {
        config["rope_theta"] = json!(1000000.0);
        config["rope_local_base_freq"] = json!(10000.0);
        config["final_logit_softcapping"] = json!(null);
        config["rope_scaling"] = json!({"rope_type": "linear", "factor": 8.0});
    } else {
        config["attn_logit_softcapping"] = json!(50.0);
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    if with_sp_model {
        std::fs::write(dir.join("tokenizer.model"), sentencepiece_model(PIECES)).unwrap();
    }
    let vocab: serde_json::Map<String, serde_json::Value> = PIECES
        .iter()
        .enumerate()
        .map(|(i, (t, _, _))| (t.to_string(), json!(i)))
        .collect();
    let added: Vec<_> = (0..5)
        .map(|i| json!({"id": i, "content": PIECES[i].0, "special": true}))
        .collect();
    let tokenizer = json!({
        "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
        "pre_tokenizer": null,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<bos>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}},
        "model": {"type": "BPE", "byte_fallback": true, "vocab": vocab, "merges": []},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let decoder: serde_json::Map<String, serde_json::Value> = (0..5)
        .map(|i| {
            (
                i.to_string(),
                json!({"content": PIECES[i].0, "special": true}),
            )
        })
        .collect();
    let tc = json!({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                    "unk_token": "<unk>", "add_bos_token": true, "add_eos_token": false,
                    "added_tokens_decoder": decoder});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
}

fn convert(dir: &Path, arch: &str, vocab_size: usize) -> GgufFile {
    let ck = dir.join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_gemma(&ck, arch, vocab_size, true);
    let out = dir.join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_eq!(code, 0, "{err}");
    GgufFile::open(&out).unwrap()
}

fn key<'g>(g: &'g GgufFile, k: &str) -> &'g Value {
    lookup(g.metadata(), k).unwrap_or_else(|| panic!("{k} missing"))
}

fn f32s(g: &GgufFile, name: &str) -> Vec<f32> {
    let i = g
        .find_tensor(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    g.tensor_data(i)
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn gemma2_gets_norms_plus_one_softcaps_and_sentencepiece_vocab() {
    let dir = tempfile::tempdir().unwrap();
    let g = convert(dir.path(), "Gemma2ForCausalLM", EMBD_ROWS);
    assert_eq!(key(&g, "general.architecture").as_str(), Some("gemma2"));
    assert!(matches!(key(&g, "gemma2.attn_logit_softcapping"), Value::F32(x) if *x == 50.0));
    assert!(matches!(key(&g, "gemma2.final_logit_softcapping"), Value::F32(x) if *x == 30.0));
    assert!(matches!(
        key(&g, "gemma2.attention.sliding_window"),
        Value::U32(64)
    ));
    assert!(matches!(
        key(&g, "tokenizer.ggml.add_space_prefix"),
        Value::Bool(false)
    ));
    assert_eq!(key(&g, "tokenizer.ggml.model").as_str(), Some("llama"));
    // Norms: HF stores w for (1 + w); f32 gets w + 1, the bf16 final norm too, in bf16.
    let attn_norm = f32s(&g, "blk.0.attn_norm.weight");
    assert_eq!(attn_norm[0], 0.75);
    assert_eq!(attn_norm[1], 0.75 + 1.0 / 64.0);
    let i = g.find_tensor("output_norm.weight").unwrap();
    let out_norm: Vec<f32> = g
        .tensor_data(i)
        .chunks(2)
        .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
        .collect();
    assert_eq!(&out_norm[..2], &[1.5, 1.0078125]);
    // Projections are not touched, and q/k rows keep Hugging Face's order (NeoX rotary).
    assert_eq!(f32s(&g, "blk.0.attn_q.weight")[0], -0.25);
    assert!(g.find_tensor("output.weight").is_none(), "lm_head is tied");
    // The vocabulary: types from tokenizer.model (user-defined pieces are normal), control
    // tokens of added_tokens_decoder with score -1000.
    let Value::Array(Array::I32(types)) = key(&g, "tokenizer.ggml.token_type") else {
        panic!("token types")
    };
    assert_eq!(types, &[3, 3, 3, 3, 3, 6, 1, 1, 5, 5]);
    let Value::Array(Array::F32(scores)) = key(&g, "tokenizer.ggml.scores") else {
        panic!("scores")
    };
    assert_eq!(
        &scores[..8],
        &[-1000.0, -1000.0, -1000.0, -1000.0, -1000.0, 0.0, -1.0, -2.0]
    );
    assert_eq!(&scores[8..], &[-10000.0, -10000.0]);
    let Value::Array(Array::String(tokens)) = key(&g, "tokenizer.ggml.tokens") else {
        panic!("tokens")
    };
    assert_eq!(tokens[9], b"[PAD9]");
    assert!(matches!(
        key(&g, "tokenizer.ggml.add_bos_token"),
        Value::Bool(true)
    ));
    assert!(matches!(
        key(&g, "tokenizer.ggml.bos_token_id"),
        Value::U32(2)
    ));
}

#[test]
fn gemma3_cuts_embedding_to_vocabulary_and_keeps_q_k_norms() {
    let dir = tempfile::tempdir().unwrap();
    let g = convert(dir.path(), "Gemma3ForCausalLM", 8);
    assert_eq!(key(&g, "general.architecture").as_str(), Some("gemma3"));
    let i = g.find_tensor("token_embd.weight").unwrap();
    assert_eq!(g.tensors()[i].info.dims, vec![HIDDEN as u64, 8]);
    assert_eq!(g.tensor_data(i).len(), 8 * HIDDEN * 4);
    assert_eq!(f32s(&g, "blk.0.attn_q_norm.weight")[0], 0.75);
    assert!(matches!(key(&g, "gemma3.rope.freq_base_swa"), Value::F32(x) if *x == 10000.0));
    assert!(matches!(key(&g, "gemma3.rope.scaling.factor"), Value::F32(x) if *x == 8.0));
    assert!(lookup(g.metadata(), "gemma3.final_logit_softcapping").is_none());
    assert!(lookup(g.metadata(), "gemma3.attn_logit_softcapping").is_none());
}

#[test]
fn gemma_without_tokenizer_model_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_gemma(&ck, "Gemma2ForCausalLM", EMBD_ROWS, false);
    let out = dir.path().join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_ne!(code, 0);
    assert!(err.contains("tokenizer.model"), "{err}");
    assert!(!out.exists());
}

#[test]
fn damaged_tokenizer_model_is_refused_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_gemma(&ck, "Gemma2ForCausalLM", EMBD_ROWS, true);
    let model = sentencepiece_model(PIECES);
    std::fs::write(ck.join("tokenizer.model"), &model[..model.len() / 2]).unwrap();
    let out = dir.path().join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_ne!(code, 0);
    assert!(
        err.contains("tokenizer.model") && err.contains("offset"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn unsupported_architecture_lists_gemma() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_gemma(&ck, "GemmaForCausalLM", EMBD_ROWS, true);
    let out = dir.path().join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("\"GemmaForCausalLM\"")
            && err.contains("Gemma2ForCausalLM")
            && err.contains("Gemma3ForCausalLM"),
        "{err}"
    );
    assert!(!out.exists());
}
