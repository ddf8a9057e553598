//! `hct convert FOLDER out.gguf` on a Hugging Face checkpoint: a tiny llama-family model the test
//! writes (config.json, byte-level BPE tokenizer.json, tokenizer_config.json with a chat
//! template, safetensors) must come out with llama.cpp's keys and tensor names, q/k rows in
//! llama.cpp's rotary order, the same bytes at 1 and 2 threads and through an HCT file (also
//! re-encoded to int4, in plugin mode), and an unsupported architecture must be refused with
//! an error that names it, leaving no output. The checks against llama.cpp itself (its own
//! converter, perplexity, embeddings) are in compat-tests/hf/run.sh.

use std::path::Path;

use hct_format::gguf::{GgufFile, TensorType};
use hct_format::value::{lookup, Array, Value};
use serde_json::json;

mod common;
use common::{hct, s};

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = HIDDEN / HEADS;
const FF: usize = 96;
const VOCAB: usize = 12;

/// Row r of every matrix holds the value r in each element, so a row's origin is readable.
fn rows_tagged(rows: usize, cols: usize) -> Vec<u8> {
    (0..rows)
        .flat_map(|r| std::iter::repeat_n((r as f32).to_le_bytes(), cols).flatten())
        .collect()
}

fn write_checkpoint(dir: &Path, architecture: &str) {
    write_checkpoint_with(dir, architecture, false);
}

/// With `qkv_bias`, the q/k/v projections get biases (Qwen2).
fn write_checkpoint_with(dir: &Path, architecture: &str, qkv_bias: bool) {
    use safetensors::{tensor::TensorView, Dtype};
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
        (
            "model.embed_tokens.weight".into(),
            vec![VOCAB, HIDDEN],
            rows_tagged(VOCAB, HIDDEN),
        ),
        (
            "model.norm.weight".into(),
            vec![HIDDEN],
            rows_tagged(1, HIDDEN),
        ),
    ];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        let kv = KV_HEADS * HEAD_DIM;
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
            let (r, c) = if shape.len() == 1 {
                (1, shape[0])
            } else {
                (shape[0], shape[1])
            };
            tensors.push((format!("{p}.{n}"), shape, rows_tagged(r, c)));
        }
        if qkv_bias {
            for (n, len) in [("q_proj", HIDDEN), ("k_proj", kv), ("v_proj", kv)] {
                tensors.push((
                    format!("{p}.self_attn.{n}.bias"),
                    vec![len],
                    rows_tagged(1, len),
                ));
            }
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    let config = json!({
        "architectures": [architecture], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": FF, "num_hidden_layers": 2,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
        "vocab_size": VOCAB, "bos_token_id": 0, "eos_token_id": 1, "tie_word_embeddings": true,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let tokenizer = json!({
        "version": "1.0",
        "added_tokens": [
            {"id": 0, "content": "<|im_start|>", "special": true, "normalized": false},
            {"id": 1, "content": "<|im_end|>", "special": true, "normalized": false},
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "model": {"type": "BPE", "byte_fallback": false,
                  "vocab": {"<|im_start|>": 0, "<|im_end|>": 1, "a": 2, "b": 3, "ab": 4, "Ġ": 5,
                            "Ġa": 6, "c": 7, "abc": 8, "1": 9, "2": 10},
                  "merges": [["a", "b"], ["Ġ", "a"], ["ab", "c"]]},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let tc = json!({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                    "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
}

fn u32_key(g: &GgufFile, k: &str) -> u32 {
    match lookup(g.metadata(), k) {
        Some(Value::U32(v)) => *v,
        other => panic!("{k}: {other:?}"),
    }
}

fn str_key<'g>(g: &'g GgufFile, k: &str) -> &'g str {
    lookup(g.metadata(), k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{k} missing"))
}

/// The row tag (see `rows_tagged`) of each row of an F32 tensor.
fn row_tags(g: &GgufFile, name: &str) -> Vec<f32> {
    let i = g
        .find_tensor(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    let cols = g.tensors()[i].info.dims[0] as usize;
    g.tensor_data(i)
        .chunks(cols * 4)
        .map(|r| f32::from_le_bytes(r[..4].try_into().unwrap()))
        .collect()
}

#[test]
fn llama_checkpoint_gets_llama_cpp_keys_names_and_rope_row_order() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_checkpoint(&ck, "LlamaForCausalLM");
    let out = dir.path().join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out), "--threads", "1"]);
    assert_eq!(code, 0, "{err}");
    let g = GgufFile::open(&out).unwrap();
    assert_eq!(str_key(&g, "general.architecture"), "llama");
    assert_eq!(u32_key(&g, "llama.block_count"), 2);
    assert_eq!(u32_key(&g, "llama.attention.head_count"), HEADS as u32);
    assert_eq!(
        u32_key(&g, "llama.attention.head_count_kv"),
        KV_HEADS as u32
    );
    assert_eq!(u32_key(&g, "llama.rope.dimension_count"), HEAD_DIM as u32);
    assert_eq!(u32_key(&g, "llama.vocab_size"), VOCAB as u32);
    assert_eq!(u32_key(&g, "general.file_type"), 0);
    assert!(
        matches!(lookup(g.metadata(), "llama.rope.freq_base"), Some(Value::F32(x)) if *x == 100000.0)
    );
    assert_eq!(str_key(&g, "tokenizer.ggml.model"), "gpt2");
    assert_eq!(str_key(&g, "tokenizer.ggml.pre"), "smollm");
    assert_eq!(u32_key(&g, "tokenizer.ggml.bos_token_id"), 0);
    assert_eq!(u32_key(&g, "tokenizer.ggml.eos_token_id"), 1);
    assert!(matches!(
        lookup(g.metadata(), "tokenizer.ggml.add_bos_token"),
        Some(Value::Bool(false))
    ));
    assert!(str_key(&g, "tokenizer.chat_template").starts_with("{% for m in messages"));
    let Some(Value::Array(Array::String(tokens))) = lookup(g.metadata(), "tokenizer.ggml.tokens")
    else {
        panic!("no token list")
    };
    // Id 11 is in no vocabulary: a placeholder, typed unused.
    assert_eq!(tokens.len(), VOCAB);
    assert_eq!(tokens[11], b"[PAD11]");
    let Some(Value::Array(Array::I32(types))) = lookup(g.metadata(), "tokenizer.ggml.token_type")
    else {
        panic!("no token types")
    };
    assert_eq!(&types[..3], &[3, 3, 1]);
    assert_eq!(types[11], 5);
    let Some(Value::Array(Array::String(merges))) = lookup(g.metadata(), "tokenizer.ggml.merges")
    else {
        panic!("no merges")
    };
    assert_eq!(merges[0], b"a b");
    assert!(!g
        .metadata()
        .iter()
        .any(|(k, _)| k.starts_with("hf.") || k.starts_with("hct.")));

    let mut names: Vec<&str> = g.tensors().iter().map(|t| t.info.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names.len(), 2 + 2 * 9);
    for n in [
        "token_embd.weight",
        "output_norm.weight",
        "blk.1.attn_q.weight",
        "blk.1.attn_k.weight",
        "blk.0.ffn_gate.weight",
        "blk.0.ffn_down.weight",
        "blk.0.attn_norm.weight",
        "blk.0.ffn_norm.weight",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    // q: per head of 16 rows, llama.cpp's order interleaves the halves: 0, 8, 1, 9, ...
    let q = row_tags(&g, "blk.0.attn_q.weight");
    let head: Vec<f32> = (0..HEAD_DIM / 2)
        .flat_map(|i| [i as f32, (i + HEAD_DIM / 2) as f32])
        .collect();
    assert_eq!(&q[..HEAD_DIM], &head[..]);
    assert_eq!(q[HEAD_DIM], HEAD_DIM as f32);
    // k has the KV heads' count of heads.
    let k = row_tags(&g, "blk.0.attn_k.weight");
    assert_eq!(k.len(), KV_HEADS * HEAD_DIM);
    assert_eq!(&k[..HEAD_DIM], &head[..]);
    // v is not reordered.
    let v = row_tags(&g, "blk.0.attn_v.weight");
    assert_eq!(
        v,
        (0..KV_HEADS * HEAD_DIM)
            .map(|r| r as f32)
            .collect::<Vec<_>>()
    );

    // Same bytes at 2 threads, and through an HCT file.
    let out2 = dir.path().join("m2.gguf");
    assert_eq!(hct(&["convert", s(&ck), s(&out2), "--threads", "2"]).0, 0);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    let h = dir.path().join("m.hct");
    assert_eq!(hct(&["convert", s(&ck), s(&h)]).0, 0);
    let out3 = dir.path().join("m3.gguf");
    assert_eq!(hct(&["convert", s(&h), s(&out3)]).0, 0);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out3).unwrap());
}

#[test]
fn int4_rows_move_whole_in_plugin_mode() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_checkpoint(&ck, "LlamaForCausalLM");
    let h = dir.path().join("q.hct");
    assert_eq!(
        hct(&["convert", s(&ck), s(&h), "--codec", "int4_opt_v1"]).0,
        0
    );
    let out = dir.path().join("p.gguf");
    let (code, _, err) = hct(&["convert", s(&h), s(&out), "--gguf-mode", "plugin"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = hct(&["verify", s(&out)]);
    assert_eq!(code, 0, "plugin records match the reordered bytes: {err}");
    let g = GgufFile::open(&out).unwrap();
    let f = hct_format::HctFile::open(&h).unwrap();
    let src = f.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    let src = f.payload(src).unwrap();
    let i = g.find_tensor("blk.0.attn_q.weight").unwrap();
    assert!(matches!(
        g.tensors()[i].info.tensor_type,
        TensorType::Extension(_)
    ));
    let dst = g.tensor_data(i);
    let row = src.len() / HIDDEN;
    // Output row 1 of head 0 is source row HEAD_DIM / 2, byte for byte.
    assert_eq!(
        &dst[row..2 * row],
        &src[(HEAD_DIM / 2) * row..(HEAD_DIM / 2 + 1) * row]
    );
    assert_eq!(&dst[..row], &src[..row]);
}

#[test]
fn unsupported_architecture_is_named_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_checkpoint(&ck, "GPTNeoXForCausalLM");
    let out = dir.path().join("m.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_eq!(code, 6, "exit code 6, unsupported: {err}");
    assert!(
        err.contains("GPTNeoXForCausalLM")
            && err.contains("LlamaForCausalLM")
            && err.contains("BertModel"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

/// Rewrites one JSON file of the checkpoint.
fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn bad_checkpoint_files_get_errors_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    let out = dir.path().join("m.gguf");
    type Spoil = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Spoil, &[&str])> = vec![
        (
            "a vocabulary size nothing may be sized by",
            Box::new(|ck: &Path| {
                edit_json(&ck.join("config.json"), |v| {
                    v["vocab_size"] = json!(4_000_000_000u64)
                })
            }),
            &["vocab_size", "4000000000"],
        ),
        (
            "config.json that is not JSON",
            Box::new(|ck: &Path| std::fs::write(ck.join("config.json"), b"{not json").unwrap()),
            &["config.json", "not valid JSON"],
        ),
        (
            "heads that do not divide the q rows",
            Box::new(|ck: &Path| {
                edit_json(&ck.join("config.json"), |v| {
                    v["num_attention_heads"] = json!(3)
                })
            }),
            &["model.layers.0.self_attn.q_proj.weight", "3 heads"],
        ),
        (
            "a token id beyond the vocabulary",
            Box::new(|ck: &Path| {
                edit_json(&ck.join("tokenizer.json"), |v| {
                    v["model"]["vocab"]["zz"] = json!(99)
                })
            }),
            &["tokenizer.json", "99", "vocab_size"],
        ),
        (
            "a pre-tokenizer nobody recognises",
            Box::new(|ck: &Path| {
                edit_json(&ck.join("tokenizer.json"), |v| {
                    v["pre_tokenizer"] = json!({"type": "Whitespace"})
                })
            }),
            &["pre-tokenizer", "Whitespace"],
        ),
    ];
    for (what, spoil, needles) in cases {
        write_checkpoint(&ck, "LlamaForCausalLM");
        spoil(&ck);
        let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
        assert_ne!(code, 0, "{what}");
        for n in needles {
            assert!(err.contains(n), "{what}: {n:?} not in {err}");
        }
        assert!(!out.exists(), "{what}: no output");
    }
}

/// The real thing, without Python at test time: all-MiniLM-L6-v2's folder from the peers cache,
/// converted by `hct`, against the GGUF llama.cpp's own converter made from the same folder (pinned
/// by sha256 in compat-tests/pins.txt). Every key but the model-card ones llama.cpp reads from
/// README.md must be equal in type and value, every tensor equal in name, shape, type and bytes.
/// Skips loudly without the peers cache (fails under CI=true).
#[test]
fn minilm_folder_gives_llama_cpp_converters_gguf() {
    let Some(env) =
        hct_compat_tests::peers_env_or_skip("minilm_folder_gives_llama_cpp_converters_gguf")
    else {
        return;
    };
    let folder = env.path("HCT_MINILM_HF").unwrap();
    let reference = GgufFile::open(env.path("HCT_MINILM_F32").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("minilm.gguf");
    let (code, _, err) = hct(&["convert", s(&folder), s(&out)]);
    assert_eq!(code, 0, "{err}");
    let ours = GgufFile::open(&out).unwrap();
    let model_card = |k: &str| {
        [
            "general.name",
            "general.license",
            "general.tags",
            "general.languages",
            "general.organization",
            "general.dataset.",
        ]
        .iter()
        .any(|p| k.starts_with(p))
    };
    let mut compared = 0;
    for (k, v) in reference.metadata().iter().filter(|(k, _)| !model_card(k)) {
        let mine =
            lookup(ours.metadata(), k).unwrap_or_else(|| panic!("{k} missing from hct's GGUF"));
        assert!(mine.bit_eq(v), "{k}: hct {mine:?} vs llama.cpp {v:?}");
        compared += 1;
    }
    for (k, _) in ours.metadata().iter().filter(|(k, _)| !model_card(k)) {
        assert!(
            lookup(reference.metadata(), k).is_some(),
            "{k} only in hct's GGUF"
        );
    }
    assert!(compared > 25, "only {compared} keys compared");
    assert_eq!(ours.tensors().len(), reference.tensors().len());
    for (i, t) in reference.tensors().iter().enumerate() {
        let j = ours
            .find_tensor(&t.info.name)
            .unwrap_or_else(|| panic!("{} missing from hct's GGUF", t.info.name));
        assert_eq!(ours.tensors()[j].info, t.info, "{}", t.info.name);
        assert!(
            ours.tensor_data(j) == reference.tensor_data(i),
            "{} bytes",
            t.info.name
        );
    }
}

/// Qwen2's split pattern (as its tokenizer.json spells it), before a byte-level mapping.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[test]
fn qwen2_checkpoint_keeps_hugging_face_row_order_and_biases() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    write_checkpoint_with(&ck, "Qwen2ForCausalLM", true);
    edit_json(&ck.join("tokenizer.json"), |v| {
        v["pre_tokenizer"] = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        ]})
    });
    let out = dir.path().join("q.gguf");
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_eq!(code, 0, "{err}");
    let g = GgufFile::open(&out).unwrap();
    assert_eq!(str_key(&g, "general.architecture"), "qwen2");
    assert_eq!(str_key(&g, "tokenizer.ggml.pre"), "qwen2");
    assert_eq!(
        u32_key(&g, "qwen2.attention.head_count_kv"),
        KV_HEADS as u32
    );
    // llama.cpp's converter writes neither for Qwen2 (no head_dim in this config).
    assert!(lookup(g.metadata(), "qwen2.vocab_size").is_none());
    assert!(lookup(g.metadata(), "qwen2.attention.key_length").is_none());
    let q = row_tags(&g, "blk.0.attn_q.weight");
    assert_eq!(
        q,
        (0..HIDDEN).map(|r| r as f32).collect::<Vec<_>>(),
        "q rows stay in place"
    );
    for b in [
        "blk.1.attn_q.bias",
        "blk.1.attn_k.bias",
        "blk.1.attn_v.bias",
    ] {
        assert!(g.find_tensor(b).is_some(), "{b}");
    }
    // A split pattern that is neither Qwen2's nor Llama 3's is refused, not guessed.
    edit_json(&ck.join("tokenizer.json"), |v| {
        v["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] =
            json!(QWEN2_SPLIT.replace(r"\p{N}|", r"\p{N}{1,2}|"))
    });
    let (code, _, err) = hct(&["convert", s(&ck), s(&out)]);
    assert_eq!(code, 6, "{err}");
}
