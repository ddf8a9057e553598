//! `hct convert model.gguf DIR --to hf`: a llama checkpoint the test writes goes to a GGUF and
//! back to a Hugging Face folder, which must hold the original tensors byte for byte (q/k rows
//! back in Hugging Face's order), a config with the same hyperparameters and a tokenizer.json
//! with the same vocabulary, merges and pre-tokenizer; converted again, it gives the same GGUF.
//! Refusals: an existing output, a SentencePiece vocabulary, another architecture. The check
//! by transformers itself (same logits, same token ids) is compat-tests/hf/run.sh
//! (`check_hf_export.py`).

use std::path::Path;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::{json, Value};

mod common;
use common::{hct, s};

const HIDDEN: usize = 32;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FF: usize = 40;
const VOCAB: usize = 8;

fn write_llama(dir: &Path) {
    let mut tensors: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN]),
        ("model.norm.weight".into(), vec![HIDDEN]),
        ("lm_head.weight".into(), vec![VOCAB, HIDDEN]),
    ];
    let kv = KV_HEADS * HIDDEN / HEADS;
    for (n, shape) in [
        ("input_layernorm.weight", vec![HIDDEN]),
        ("post_attention_layernorm.weight", vec![HIDDEN]),
        ("self_attn.q_proj.weight", vec![HIDDEN, HIDDEN]),
        ("self_attn.k_proj.weight", vec![kv, HIDDEN]),
        ("self_attn.v_proj.weight", vec![kv, HIDDEN]),
        ("self_attn.o_proj.weight", vec![HIDDEN, HIDDEN]),
        ("mlp.gate_proj.weight", vec![FF, HIDDEN]),
        ("mlp.up_proj.weight", vec![FF, HIDDEN]),
        ("mlp.down_proj.weight", vec![HIDDEN, FF]),
    ] {
        tensors.push((format!("model.layers.0.{n}"), shape));
    }
    // Every element distinct, so any misplaced row or element shows.
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .enumerate()
        .map(|(t, (_, shape))| {
            let n: usize = shape.iter().product();
            (0..n)
                .flat_map(|i| ((t * 10_000 + i) as f32 * 0.001).to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&data)
        .map(|((n, s), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": FF, "num_hidden_layers": 1, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0, "vocab_size": VOCAB, "bos_token_id": 0, "eos_token_id": 1,
        "tie_word_embeddings": false, "rope_scaling": {"rope_type": "linear", "factor": 2.0},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let tokenizer = json!({
        "added_tokens": [
            {"id": 0, "content": "<|im_start|>", "special": true},
            {"id": 1, "content": "<|im_end|>", "special": true},
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "model": {"type": "BPE", "byte_fallback": false,
                  "vocab": {"<|im_start|>": 0, "<|im_end|>": 1, "a": 2, "b": 3, "ab": 4, "Ġ": 5,
                            "Ġa": 6, "1": 7},
                  "merges": [["a", "b"], ["Ġ", "a"]]},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let tc = json!({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                    "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn gguf_to_hf_folder_restores_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_llama(&ck);
    let gguf = dir.path().join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&gguf)]);
    assert_eq!(code, 0, "{err}");
    let back = dir.path().join("back");
    let (code, _, err) = hct(&["convert", s(&gguf), s(&back), "--to", "hf"]);
    assert_eq!(code, 0, "{err}");

    let orig = std::fs::read(ck.join("model.safetensors")).unwrap();
    let ours = std::fs::read(back.join("model.safetensors")).unwrap();
    let (a, b) = (
        SafeTensors::deserialize(&orig).unwrap(),
        SafeTensors::deserialize(&ours).unwrap(),
    );
    let mut names_a = a.names();
    let mut names_b = b.names();
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b);
    for n in names_a {
        let (x, y) = (a.tensor(n).unwrap(), b.tensor(n).unwrap());
        assert_eq!(x.shape(), y.shape(), "{n}");
        assert!(x.data() == y.data(), "{n}: bytes differ");
    }

    let c = read_json(&back.join("config.json"));
    assert_eq!(c["architectures"][0], "LlamaForCausalLM");
    assert_eq!(c["num_key_value_heads"], KV_HEADS);
    assert_eq!(c["tie_word_embeddings"], false);
    assert_eq!(c["rope_scaling"]["rope_type"], "linear");
    // The f32 the GGUF holds, exactly (1e-5 is not an f32).
    assert_eq!(c["rms_norm_eps"].as_f64().unwrap() as f32, 1e-5f32);
    let t = read_json(&back.join("tokenizer.json"));
    assert_eq!(t["model"]["vocab"]["Ġa"], 6);
    assert_eq!(t["model"]["merges"][1], json!(["Ġ", "a"]));
    assert_eq!(t["pre_tokenizer"]["pretokenizers"][0]["type"], "Digits");
    assert_eq!(t["added_tokens"][1]["content"], "<|im_end|>");
    let tc = read_json(&back.join("tokenizer_config.json"));
    assert_eq!(tc["eos_token"], "<|im_end|>");
    assert!(tc["chat_template"].as_str().unwrap().contains("messages"));

    // The exported folder is a checkpoint hct converts to the same GGUF.
    let again = dir.path().join("again.gguf");
    let (code, _, err) = hct(&["convert", s(&back), s(&again)]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&gguf).unwrap());
    // Nothing but the folder was left beside it.
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["again.gguf", "back", "ck", "m.gguf"]);
}

#[test]
fn existing_output_and_unsupported_sources_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_llama(&ck);
    let gguf = dir.path().join("m.gguf");
    assert_eq!(hct(&["convert", s(&ck), s(&gguf)]).0, 0);
    let (code, _, err) = hct(&["convert", s(&gguf), s(&ck), "--to", "hf"]);
    assert_eq!(
        code, 2,
        "an existing folder is refused as a usage error: {err}"
    );
    assert!(err.contains("exists"), "{err}");

    // A GGUF without llama.cpp's keys (a plain safetensors → GGUF) has no layout to restore.
    let plain = dir.path().join("plain.gguf");
    let st = dir.path().join("w.safetensors");
    std::fs::copy(ck.join("model.safetensors"), &st).unwrap();
    assert_eq!(hct(&["convert", s(&st), s(&plain)]).0, 0);
    let out = dir.path().join("out");
    let (code, _, err) = hct(&["convert", s(&plain), s(&out), "--to", "hf"]);
    assert_ne!(code, 0);
    assert!(err.contains("general.architecture"), "{err}");
    assert!(!out.exists());
}

/// A protobuf varint, for the tokenizer.model below.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A SentencePiece `ModelProto` with just its pieces (field 1: text, score, type).
fn sentencepiece_model(pieces: &[(&str, f32, u64)]) -> Vec<u8> {
    let mut out = vec![];
    for (text, score, kind) in pieces {
        let mut p = vec![0x0a];
        varint(text.len() as u64, &mut p);
        p.extend_from_slice(text.as_bytes());
        p.push(0x15);
        p.extend_from_slice(&score.to_le_bytes());
        p.push(0x18);
        varint(*kind, &mut p);
        out.push(0x0a);
        varint(p.len() as u64, &mut out);
        out.extend_from_slice(&p);
    }
    out
}

#[test]
fn a_sentencepiece_vocabulary_goes_back_to_the_same_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_llama(&ck);
    // With a tokenizer.model the llama family's vocabulary is SentencePiece's (as Llama 2's),
    // its special tokens named as transformers saves them.
    let pieces: Vec<(&str, f32, u64)> = vec![
        ("<unk>", 0.0, 2),
        ("<s>", 0.0, 3),
        ("</s>", 0.0, 3),
        ("<0x41>", 0.0, 6),
        ("a", -3.0, 1),
        ("b", -4.0, 1),
        ("ab", -2.0, 1),
        ("\u{2581}ab", -1.0, 1),
    ];
    let model = sentencepiece_model(&pieces);
    std::fs::write(ck.join("tokenizer.model"), &model).unwrap();
    let special = |c: &str| json!({"content": c, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true});
    let tokenizer = json!({
        "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
                         {"id": 2, "content": "</s>", "special": true}],
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}]},
        "model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []},
    });
    std::fs::write(ck.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let tc = json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": true,
                    "add_eos_token": false,
                    "added_tokens_decoder": {"0": special("<unk>"), "1": special("<s>"), "2": special("</s>")}});
    std::fs::write(ck.join("tokenizer_config.json"), tc.to_string()).unwrap();
    let mut config = read_json(&ck.join("config.json"));
    config["bos_token_id"] = json!(1);
    config["eos_token_id"] = json!(2);
    std::fs::write(ck.join("config.json"), config.to_string()).unwrap();
    let gguf = dir.path().join("sp.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&gguf)]);
    assert_eq!(code, 0, "{err}");
    let back = dir.path().join("back");
    let (code, _, err) = hct(&["convert", s(&gguf), s(&back), "--to", "hf"]);
    assert_eq!(code, 0, "{err}");
    let again = dir.path().join("again.gguf");
    let (code, _, err) = hct(&["convert", s(&back), s(&again)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&gguf).unwrap() == std::fs::read(&again).unwrap(),
        "the exported folder converts back to the same GGUF"
    );
    // The fast tokenizer's merges come from the scores: "ab" = "a" + "b"; "▁ab" has no split
    // into two pieces ("▁" is none), so no merge of its own.
    let tj = read_json(&back.join("tokenizer.json"));
    assert_eq!(tj["model"]["vocab"]["\u{2581}ab"], 7);
    assert_eq!(tj["model"]["merges"], json!([["a", "b"]]));
    assert_eq!(tj["model"]["byte_fallback"], true);
    let tc = read_json(&back.join("tokenizer_config.json"));
    assert_eq!(tc["tokenizer_class"], "LlamaTokenizer");
    assert_eq!(tc["added_tokens_decoder"]["1"]["content"], "<s>");
}
