//! Special tokens: which ids a model's bos, eos, unk, sep, pad and mask are, whether its tokenizer
//! adds bos/eos/sep around a sequence, and its chat template, read from `tokenizer.json`'s
//! post-processor, `tokenizer_config.json` and `config.json` as llama.cpp's converter reads them.

use super::hf_files::{HfFiles, JsonObject};
use super::vocab::AddedToken;
use anyhow::Result;
use serde_json::Value as Json;

/// Special token ids, whether the tokenizer adds bos/eos/sep, and the chat template.
pub struct Specials {
    pub ids: Vec<(&'static str, u32)>,
    pub add: Vec<(&'static str, bool)>,
    pub chat_template: Option<String>,
}

/// An insertion-ordered map keyed by special-token kind.
fn set<V>(v: &mut Vec<(&'static str, V)>, k: &'static str, val: V, overwrite: bool) {
    match v.iter_mut().find(|(kk, _)| *kk == k) {
        Some(e) if overwrite => e.1 = val,
        Some(_) => {}
        None => v.push((k, val)),
    }
}

fn get<'v, V>(v: &'v [(&'static str, V)], k: &str) -> Option<&'v V> {
    v.iter().find(|(kk, _)| *kk == k).map(|(_, x)| x)
}

/// Which special tokens a model has and adds, read as llama.cpp's converter reads them: the
/// names in `tokenizer_config.json` (bos falling back to cls, eos to sep), what the
/// post-processor puts around a sequence, and the ids in `config.json`.
pub fn special_tokens(
    files: &HfFiles,
    tok: &JsonObject,
    tc: Option<&JsonObject>,
    config: &JsonObject,
    added: &[AddedToken],
    n_vocab: Option<u32>,
) -> Result<Specials> {
    let mut kinds: Vec<&'static str> = vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
    let mut names: Vec<(&'static str, String)> = vec![];
    if let Some(tc) = tc {
        for &k in &kinds {
            let entry = tc.get(&format!("{k}_token"));
            let name = entry.and_then(|e| {
                e.as_str()
                    .or_else(|| e.get("content").and_then(Json::as_str))
            });
            if let Some(n) = name {
                names.push((k, n.to_string()));
            }
        }
        if get(&names, "bos").is_none() {
            if let Some(c) = get(&names, "cls").cloned() {
                set(&mut names, "bos", c, false);
            }
        }
        if get(&names, "eos").is_none() {
            if let Some(s) = get(&names, "sep").cloned() {
                set(&mut names, "eos", s, false);
            }
        }
    }
    let name_is =
        |names: &[(&'static str, String)], k: &str, v: &str| get(names, k).is_some_and(|n| n == v);
    let mut add: Vec<(&'static str, bool)> = vec![];
    let pp = tok.get("post_processor");
    let processors: Vec<&Json> = match pp {
        None => vec![],
        Some(p) => match p.get("processors").and_then(Json::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![p],
        },
    };
    let special_id = |e: &Json| -> Option<String> {
        e.get("SpecialToken")?
            .get("id")?
            .as_str()
            .map(str::to_string)
    };
    let seq_id =
        |e: &Json| -> Option<String> { e.get("Sequence")?.get("id")?.as_str().map(str::to_string) };
    for p in processors {
        match p.get("type").and_then(Json::as_str) {
            Some("ByteLevel") => {
                set(&mut add, "bos", false, false);
                set(&mut add, "eos", false, false);
            }
            Some("RobertaProcessing") => {
                for k in ["bos", "eos", "sep"] {
                    set(&mut add, k, true, true);
                }
                if tc.is_some() {
                    let from = |field: &str| p.get(field)?.get(0)?.as_str().map(str::to_string);
                    if get(&names, "cls").is_none() {
                        if let Some(c) = from("cls").or_else(|| get(&names, "bos").cloned()) {
                            set(&mut names, "cls", c, false);
                        }
                    }
                    if get(&names, "sep").is_none() {
                        if let Some(s) = from("sep").or_else(|| get(&names, "eos").cloned()) {
                            set(&mut names, "sep", s, false);
                        }
                    }
                }
            }
            Some("TemplateProcessing") => {
                let single: Vec<&Json> = p
                    .get("single")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let pair: Vec<&Json> = p
                    .get("pair")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let mut first = None;
                let mut last = None;
                if single.len() > 1 {
                    first = special_id(single[0]);
                    if let Some(f) = &first {
                        if tc.is_some() && !name_is(&names, "bos", f) && !name_is(&names, "cls", f)
                        {
                            set(&mut names, "bos", f.clone(), false);
                            set(&mut names, "cls", f.clone(), false);
                        }
                        let is_start = name_is(&names, "bos", f) || name_is(&names, "cls", f);
                        set(&mut add, "bos", is_start || tc.is_none(), true);
                    }
                    last = special_id(single[single.len() - 1]);
                    if let Some(l) = &last {
                        if tc.is_some() && !name_is(&names, "eos", l) {
                            // The old eos becomes end-of-turn, the trailing token the eos.
                            if let Some(old) = get(&names, "eos").cloned() {
                                if !kinds.contains(&"eot") {
                                    kinds.push("eot");
                                    set(&mut names, "eot", old, true);
                                }
                            }
                            set(&mut names, "eos", l.clone(), true);
                        }
                        set(&mut add, "eos", true, true);
                    }
                }
                if !pair.is_empty() {
                    let start = usize::from(first.is_some() && special_id(pair[0]) == first);
                    let stop =
                        usize::from(last.is_some() && special_id(pair[pair.len() - 1]) == last);
                    if pair.len() >= start + stop {
                        let mid = &pair[start..pair.len() - stop];
                        let is_ab = mid.len() >= 2
                            && seq_id(mid[0]).as_deref() == Some("A")
                            && seq_id(mid[mid.len() - 1]).as_deref() == Some("B");
                        if is_ab && mid.len() > 2 {
                            let inner = &mid[1..mid.len() - 1];
                            let is_sep = |e: &Json| {
                                special_id(e).is_some_and(|s| {
                                    name_is(&names, "sep", &s) || name_is(&names, "eos", &s)
                                })
                            };
                            let add_sep = (is_sep(inner[0]) && last.is_none())
                                || (inner.len() == 2 && is_sep(inner[1]));
                            set(&mut add, "sep", add_sep, true);
                            if add_sep && tc.is_some() && get(&names, "sep").is_none() {
                                if let Some(e) = get(&names, "eos").cloned() {
                                    set(&mut names, "sep", e, false);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut ids: Vec<(&'static str, u32)> = vec![];
    let set_id = |ids: &mut Vec<(&'static str, u32)>, k: &'static str, id: u32| {
        if n_vocab.is_none_or(|n| id < n) {
            set(ids, k, id, false);
        } else {
            tracing::warn!(
                kind = k,
                id,
                "special token id beyond the vocabulary, skipped"
            );
        }
    };
    let mut chat_template = None;
    if let Some(tc) = tc {
        match tc.get("chat_template") {
            Some(Json::String(s)) => chat_template = Some(s.clone()),
            Some(_) => tracing::warn!(
                "tokenizer_config.json: chat_template is not a single string; not carried"
            ),
            // Newer transformers save the template beside the config instead.
            None => chat_template = files.text("chat_template.jinja")?,
        }
        for &k in &kinds {
            if let Some(b) = tc.bool(&format!("add_{k}_token")) {
                set(&mut add, k, b, false);
            }
            if let Some(name) = get(&names, k) {
                if let Some(a) = added.iter().find(|a| &a.content == name) {
                    set_id(&mut ids, k, a.id);
                }
            }
        }
    }
    for &k in &kinds {
        // Some configs list several ids (Llama 3.1's eos); like llama.cpp's converter, only
        // a single integer is taken.
        let id = config
            .get(&format!("{k}_token_id"))
            .and_then(Json::as_u64)
            .and_then(|i| u32::try_from(i).ok());
        if let Some(id) = id {
            set_id(&mut ids, k, id);
        }
    }
    Ok(Specials {
        ids,
        add,
        chat_template,
    })
}
