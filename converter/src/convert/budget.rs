//! `--target-bpw` / `--max-size`: choose each weight matrix's codec under a size budget.
//!
//! The menu is the searched-scale codecs that write ggml's own block bytes (SPEC.md §7.5),
//! so the result runs in stock llama.cpp through a native GGUF export:
//! `iq4_nl_mse_v1` (4.5 bits per weight), `q5_0_mse_v1` (5.5), `q8_0_mse_v1` (8.5). All three
//! store 32-element blocks, so they fit any row whose length is a multiple of 32 (ggml's
//! 256-element k-quant layouts cannot store rows of 576, SmolLM2's width).
//!
//! With `--budget-menu plugin` the levels also offer the HCT layouts of SPEC.md §7.7, for
//! files run by llama.cpp with the HCT plugin: 4.5 bits (`iq4_nl_mse_v1` | `nl4_sh64_v1`), 5.5
//! (`q5_0_mse_v1` | `nl5_sh64_v1`), 6.5 (`nl6_sh64_v1` alone: a level only this menu has) and
//! 8.5 (`q8_0_mse_v1`). Per matrix, a level's codec is the one with the least sampled error
//! among those that can store its rows (the first listed on a tie); the HCT layouts need rows
//! of whole 64-element super-blocks, so a matrix with rows of 96 has no 6.5 level and skips
//! from 5.5 to 8.5. The floors are the same codecs' levels: the output and tied embedding at
//! 8.5 (only `q8_0_mse_v1`), `attn_v` at 5.5 (`q5_0_mse_v1` or `nl5_sh64_v1`), others at 4.5.
//!
//! Without calibration data, the estimate of model error is the sum over weight matrices of
//! each matrix's normalized squared error `Σ(w − w')² / Σw²`: every matrix's relative
//! output noise counts
//! the same, whatever its size. Each matrix's error under each codec is measured by encoding
//! a fixed sample of its rows. Every matrix starts at its role's floor; then, while the
//! budget allows, the single upgrade with the largest error reduction per added byte is
//! applied (ties: earlier tensor, then cheaper codec). With `--imatrix`, squared errors are
//! weighted by column importance. Floors: the output matrix, and the
//! token embedding when it doubles as the output (tied: no output matrix but a final norm
//! before one), at `q8_0_mse_v1`, as llama-quantize
//! keeps them at 8 bits or more; `attn_v` at `q5_0_mse_v1`; everything else
//! `iq4_nl_mse_v1`. Everything here is computed in a fixed order, so the choice does not
//! depend on the thread count.

use super::imatrix::Imatrix;
use super::plan::Plan;
use super::source::SrcTensor;
use super::to_hct::decoder;
use super::transcode::encode_weighted;
use anyhow::{bail, Context, Result};
use hct_format::codec;
use rayon::prelude::*;
use serde::Serialize;

/// The ggml codecs the budget chooses from, cheapest first (the whole `ggml` menu; floors are
/// among them).
pub const MENU: [&str; 3] = ["iq4_nl_mse_v1", "q5_0_mse_v1", "q8_0_mse_v1"];

/// One size level: its ggml codec (`None`: a level only the plugin menu has) and the HCT
/// layouts of the same size that `--budget-menu plugin` adds, in tie-break order.
pub struct Level {
    pub ggml: Option<&'static str>,
    pub hct: &'static [&'static str],
}

/// Every level, cheapest first.
pub const LEVELS: [Level; 4] = [
    Level {
        ggml: Some("iq4_nl_mse_v1"),
        hct: &["nl4_sh64_v1"],
    },
    Level {
        ggml: Some("q5_0_mse_v1"),
        hct: &["nl5_sh64_v1"],
    },
    Level {
        ggml: None,
        hct: &["nl6_sh64_v1"],
    },
    Level {
        ggml: Some("q8_0_mse_v1"),
        hct: &[],
    },
];

/// Which codecs a level may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Menu {
    /// ggml block layouts only: the file runs in stock llama.cpp after a native export.
    #[default]
    Ggml,
    /// ggml layouts and HCT layouts of the same sizes: for llama.cpp with the HCT plugin
    /// (export with `--gguf-mode plugin`).
    Plugin,
}

impl Menu {
    /// This menu's levels, cheapest first, each its candidates in tie-break order (the ggml
    /// menu: `MENU`, one codec per level).
    fn levels(self) -> Vec<Vec<&'static str>> {
        LEVELS
            .iter()
            .map(|l| {
                let mut v: Vec<&'static str> = l.ggml.into_iter().collect();
                if self == Menu::Plugin {
                    v.extend(l.hct);
                }
                v
            })
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// Rows sampled per matrix for the error estimate (evenly spaced, first row included).
pub(super) const SAMPLE_ROWS: u64 = 64;

/// What the budget must respect.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Payload bits per weight over every tensor of the file (payload bytes · 8 / elements).
    BitsPerWeight(f64),
    /// The whole output file, header included, in bytes.
    MaxFileBytes(u64),
}

/// A tensor's role, for floors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Output,
    TiedEmbedding,
    Embedding,
    AttnV,
    FfnDown,
    Other,
}

/// One matrix's estimate under one codec.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub codec: &'static str,
    pub payload_bytes: u64,
    /// Normalized squared error on the sampled rows.
    pub nmse: f64,
}

/// What the budget decided for one matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub role: Role,
    pub floor: &'static str,
    pub codec: &'static str,
    pub estimates: Vec<Estimate>,
}

/// The allocation as a whole, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Allocation {
    pub target: Target,
    pub menu: Menu,
    /// Payload bytes the budget allows (after the fixed tensors and, for --max-size, the
    /// header and alignment).
    pub budget_payload_bytes: u64,
    pub chosen_payload_bytes: u64,
    pub fixed_payload_bytes: u64,
    pub elements: u64,
    pub payload_bits_per_weight: f64,
    /// Σ nmse over the chosen codecs: the quantity the allocation minimises.
    pub estimated_error: f64,
    #[serde(skip)]
    pub decisions: Vec<(String, Decision)>,
}

pub(super) fn role_of(name: &str, has_output: bool) -> Role {
    let n = name.to_ascii_lowercase();
    if n == "output.weight" || n.ends_with("lm_head.weight") {
        Role::Output
    } else if n.contains("token_embd")
        || n.contains("embed_tokens")
        || n.contains("word_embeddings")
    {
        if has_output {
            Role::Embedding
        } else {
            Role::TiedEmbedding
        }
    } else if n.contains("attn_v.") || n.contains("v_proj") || n.contains("attention.self.value") {
        Role::AttnV
    } else if n.contains("ffn_down") || n.contains("down_proj") {
        Role::FfnDown
    } else {
        Role::Other
    }
}

/// Whether the token embedding is only an embedding: false for a decoder LM without an
/// output matrix (tied: its final norm feeds the embedding), true otherwise, including
/// encoders like BERT, which have neither an output matrix nor a final norm.
pub(super) fn has_output_matrix(tensors: &[SrcTensor<'_>]) -> bool {
    tensors
        .iter()
        .any(|t| matches!(role_of(&t.name, true), Role::Output))
        || !tensors.iter().any(|t| is_final_norm(&t.name))
}

/// The norm before a decoder LM's output projection, in GGUF and Hugging Face naming.
fn is_final_norm(name: &str) -> bool {
    name == "output_norm.weight"
        || name == "model.norm.weight"
        || name.ends_with("final_layernorm.weight")
}

fn floor_of(role: Role) -> &'static str {
    match role {
        Role::Output | Role::TiedEmbedding => "q8_0_mse_v1",
        Role::AttnV => "q5_0_mse_v1",
        Role::Embedding | Role::FfnDown | Role::Other => "iq4_nl_mse_v1",
    }
}

/// Choose codecs for the matrices `plan` would re-encode (its `--codec` default is ignored;
/// `--keep` and `--codec-for` still win). `header_bytes` bounds the header and alignment
/// for `MaxFileBytes`.
pub fn allocate(
    tensors: &[SrcTensor<'_>],
    plan: &Plan,
    target: Target,
    menu: Menu,
    imatrix: Option<&Imatrix>,
    header_bytes: u64,
) -> Result<Allocation> {
    // A decoder LM without an output matrix multiplies by its token embedding instead
    // (tied); an encoder like BERT has neither an output matrix nor a final norm.
    let has_output = has_output_matrix(tensors);
    let elements: u64 = tensors
        .iter()
        .map(|t| t.shape.iter().product::<u64>())
        .sum();
    // Which tensors the budget decides: weight matrices the plan would give a codec, whose
    // rows every menu codec can store.
    let mut fixed_payload_bytes = 0u64;
    let mut chosen: Vec<(usize, Role)> = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        let choice = plan.codec_for(&t.name, &t.shape, &t.codec);
        let row_len = *t.shape.last().unwrap_or(&1);
        let decided = choice.codec == super::plan::BUDGET_MARK
            && MENU
                .iter()
                .all(|c| codec::find(c).is_some_and(|c| c.row_bytes(row_len).is_ok()));
        if decided {
            chosen.push((i, role_of(&t.name, has_output)));
        } else {
            let id = if choice.codec == super::plan::BUDGET_MARK {
                &t.codec
            } else {
                &choice.codec
            };
            let c = codec::find(id)
                .with_context(|| format!("tensor {:?}: unknown codec {id}", t.name))?;
            fixed_payload_bytes += codec::payload_len(c, &t.shape)
                .with_context(|| format!("tensor {:?} under {id}", t.name))?;
        }
    }
    let budget_total = match target {
        Target::BitsPerWeight(bpw) => {
            if !(bpw.is_finite() && bpw > 0.0) {
                bail!("--target-bpw must be a positive number, got {bpw}");
            }
            (bpw * elements as f64 / 8.0).floor() as u64
        }
        Target::MaxFileBytes(b) => b.saturating_sub(header_bytes),
    };
    // Refuse an impossible budget before the (slow) error estimates.
    let mut at_floors = fixed_payload_bytes;
    for &(i, role) in &chosen {
        let c = codec::find(floor_of(role)).expect("floor codecs are registered");
        at_floors += codec::payload_len(c, &tensors[i].shape)?;
    }
    if at_floors > budget_total {
        let what = match target {
            Target::BitsPerWeight(_) => format!(
                "the smallest choice (every matrix at its floor) is {:.4} bits per weight",
                at_floors as f64 * 8.0 / elements as f64
            ),
            Target::MaxFileBytes(_) => format!(
                "the smallest choice (every matrix at its floor) needs {at_floors} bytes of payload plus about {header_bytes} of header and alignment, {} bytes more than the budget allows",
                at_floors - budget_total
            ),
        };
        bail!("the size budget cannot be met: {what} (floors: output and tied token embedding q8_0_mse_v1, attn_v q5_0_mse_v1, others iq4_nl_mse_v1)");
    }
    let levels = menu.levels();
    let all_estimates: Vec<Vec<Estimate>> = chosen
        .par_iter()
        .map(|&(i, _)| estimate(&tensors[i], &levels, imatrix))
        .collect::<Result<_>>()?;
    // Per matrix and level, the candidate with the least error (first on a tie); `None` where
    // no candidate of the level stores the matrix's rows (only levels without a ggml codec:
    // every decided matrix's rows fit every `MENU` codec).
    let estimates: Vec<Vec<Option<Estimate>>> = all_estimates
        .iter()
        .map(|est| {
            levels
                .iter()
                .map(|candidates| {
                    let mut best: Option<&Estimate> = None;
                    for c in candidates {
                        if let Some(e) = est.iter().find(|e| e.codec == *c) {
                            if best.is_none_or(|b| e.nmse < b.nmse) {
                                best = Some(e);
                            }
                        }
                    }
                    best.cloned()
                })
                .collect()
        })
        .collect();
    let mut level: Vec<usize> = chosen
        .iter()
        .map(|&(_, role)| {
            levels
                .iter()
                .position(|l| l.contains(&floor_of(role)))
                .expect("floor in menu")
        })
        .collect();
    let at = |k: usize, l: usize| {
        estimates[k][l]
            .as_ref()
            .expect("the floor's and chosen levels have estimates")
    };
    let bytes_at = |k: usize, l: usize| at(k, l).payload_bytes;
    let mut total = fixed_payload_bytes
        + (0..chosen.len())
            .map(|k| bytes_at(k, level[k]))
            .sum::<u64>();
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for k in 0..chosen.len() {
            let (cur_b, cur_e) = (bytes_at(k, level[k]), at(k, level[k]).nmse);
            for l in level[k] + 1..levels.len() {
                let Some(up) = &estimates[k][l] else { continue };
                let add = up.payload_bytes - cur_b;
                if add == 0 || total + add > budget_total {
                    continue;
                }
                let gain = (cur_e - up.nmse) / add as f64;
                if gain > 0.0 && best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, k, l));
                }
            }
        }
        let Some((_, k, l)) = best else { break };
        total += bytes_at(k, l) - bytes_at(k, level[k]);
        level[k] = l;
    }
    let decisions: Vec<(String, Decision)> = chosen
        .iter()
        .zip(all_estimates)
        .zip(&level)
        .enumerate()
        .map(|(k, ((&(i, role), est), &l))| {
            (
                tensors[i].name.clone(),
                Decision {
                    role,
                    floor: floor_of(role),
                    codec: at(k, l).codec,
                    estimates: est,
                },
            )
        })
        .collect();
    let estimated_error = decisions
        .iter()
        .map(|(_, d)| {
            d.estimates
                .iter()
                .find(|e| e.codec == d.codec)
                .map_or(0.0, |e| e.nmse)
        })
        .sum();
    Ok(Allocation {
        target,
        menu,
        budget_payload_bytes: budget_total,
        chosen_payload_bytes: total,
        fixed_payload_bytes,
        elements,
        payload_bits_per_weight: total as f64 * 8.0 / elements.max(1) as f64,
        estimated_error,
        decisions,
    })
}

/// Encode a fixed sample of the matrix's rows under every codec of `levels` that can store
/// them; the normalized squared error of each.
fn estimate(
    t: &SrcTensor<'_>,
    levels: &[Vec<&'static str>],
    imatrix: Option<&Imatrix>,
) -> Result<Vec<Estimate>> {
    let from = decoder(&t.codec, &t.name)?;
    let (rows, row_len) = codec::rows_of(&t.shape)
        .with_context(|| format!("tensor {:?}: shape overflows", t.name))?;
    let in_row = from.row_bytes(row_len)? as usize;
    let n = row_len as usize;
    // With --imatrix, errors are weighted by column importance, as the encoders weight them.
    let importance: Option<Vec<f32>> = match imatrix {
        Some(m) => m
            .columns(&t.name, row_len)
            .with_context(|| format!("tensor {:?}", t.name))?
            .map(<[f32]>::to_vec),
        None => None,
    };
    let sample = rows.min(SAMPLE_ROWS);
    let mut x = vec![0f32; n];
    let mut y = vec![0f32; n];
    let mut out = Vec::new();
    for &id in levels.iter().flatten() {
        let to = codec::find(id).expect("menu codecs are registered");
        if to.row_bytes(row_len).is_err() {
            continue;
        }
        let mut bytes = vec![0u8; to.row_bytes(row_len)? as usize];
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for s in 0..sample {
            let r = (s * rows / sample) as usize;
            let src = t
                .data
                .get(r * in_row..(r + 1) * in_row)
                .with_context(|| format!("tensor {:?}: payload shorter than its shape", t.name))?;
            from.decode_row(src, &mut x)?;
            encode_weighted(to, &x, importance.as_deref(), &mut bytes)
                .with_context(|| format!("tensor {:?} row {r} under {id}", t.name))?;
            to.decode_row(&bytes, &mut y)?;
            for j in 0..n {
                let c = importance.as_ref().map_or(1.0, |v| v[j] as f64);
                let (a, b) = (x[j] as f64, y[j] as f64);
                num += c * (a - b) * (a - b);
                den += c * a * a;
            }
        }
        out.push(Estimate {
            codec: id,
            payload_bytes: codec::payload_len(to, &t.shape)?,
            nmse: if den > 0.0 { num / den } else { 0.0 },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_in_gguf_and_hugging_face_names() {
        assert_eq!(role_of("output.weight", true), Role::Output);
        assert_eq!(role_of("lm_head.weight", true), Role::Output);
        assert_eq!(role_of("token_embd.weight", false), Role::TiedEmbedding);
        assert_eq!(role_of("token_embd.weight", true), Role::Embedding);
        assert_eq!(
            role_of("model.embed_tokens.weight", false),
            Role::TiedEmbedding
        );
        assert_eq!(role_of("blk.3.attn_v.weight", true), Role::AttnV);
        assert_eq!(
            role_of("model.layers.3.self_attn.v_proj.weight", true),
            Role::AttnV
        );
        assert_eq!(role_of("blk.3.ffn_down.weight", true), Role::FfnDown);
        assert_eq!(role_of("blk.3.attn_q.weight", true), Role::Other);
        for c in MENU {
            assert!(codec::searched::find_searched(c).is_some(), "{c}");
        }
        // Each level's codecs store the same bytes per row; levels grow strictly.
        let mut previous = 0;
        for l in &LEVELS {
            let ids: Vec<&str> = l.ggml.into_iter().chain(l.hct.iter().copied()).collect();
            let bytes: Vec<u64> = ids
                .iter()
                .map(|c| codec::find(c).unwrap().row_bytes(576).unwrap())
                .collect();
            assert!(bytes.iter().all(|&b| b == bytes[0]), "{ids:?}: {bytes:?}");
            assert!(bytes[0] > previous, "{ids:?}");
            previous = bytes[0];
        }
        assert_eq!(
            Menu::Ggml.levels(),
            MENU.iter().map(|c| vec![*c]).collect::<Vec<_>>()
        );
        assert_eq!(
            Menu::Plugin.levels(),
            [
                vec!["iq4_nl_mse_v1", "nl4_sh64_v1"],
                vec!["q5_0_mse_v1", "nl5_sh64_v1"],
                vec!["nl6_sh64_v1"],
                vec!["q8_0_mse_v1"],
            ]
        );
        for r in [
            Role::Output,
            Role::TiedEmbedding,
            Role::Embedding,
            Role::AttnV,
            Role::FfnDown,
            Role::Other,
        ] {
            assert!(MENU.contains(&floor_of(r)));
        }
    }
}
