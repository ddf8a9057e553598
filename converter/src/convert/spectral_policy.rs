//! Encoder policies that give each weight matrix its own `hct_v3` retention (SPEC.md §7.6.7,
//! §7.6.8). They only choose among the registered ids `hct_v3_r25` … `hct_v3_r98`, so the
//! files they write hold ordinary `hct_v3` tensors; the choice and what it was based on are
//! recorded in each tensor's codec parameters and in the --json summary.
//!
//! - `--codec hct_v3 --codec-param target_cos=T` (adaptive): per matrix, the smallest
//!   retention whose cosine on a fixed sample of rows reaches `T`, r98 when none does; the
//!   token embedding and the output matrix are held at r98 (too few bits there is the
//!   failure the spectral design reports: the embedding is crushed first).
//! - `--codec hct_v3 --codec-param policy=role`: a fixed table from the tensor's role.
//!
//! Roles come from the size budget's rules (`budget::role_of`), and the sample is the
//! budget's: `SAMPLE_ROWS` evenly spaced rows, the first included, measured in a fixed order,
//! so the choice does not depend on the thread count.

use super::budget::{self, Role, SAMPLE_ROWS};
use super::plan::{Plan, BUDGET_MARK};
use super::source::SrcTensor;
use super::to_hct::decoder;
use anyhow::{Context, Result};
use hct_format::codec::{self, Codec};
use hct_format::value::{Metadata, Value};
use rayon::prelude::*;
use serde::Serialize;

/// The retentions the adaptive policy tries, smallest first: every registered `hct_v3` id.
pub const LADDER: [&str; 5] = [
    "hct_v3_r25",
    "hct_v3_r50",
    "hct_v3_r70",
    "hct_v3_r90",
    "hct_v3_r98",
];

/// Where the adaptive policy starts for a role: the embedding and output at the top rung.
fn adaptive_floor(role: Role) -> &'static str {
    match role {
        Role::Output | Role::TiedEmbedding | Role::Embedding => "hct_v3_r98",
        Role::AttnV | Role::FfnDown | Role::Other => "hct_v3_r25",
    }
}

/// `policy=role`: the retention of each role. The embedding and output matrices take the
/// most (every token's representation passes through them); `attn_v` and `ffn_down` the
/// next, as llama.cpp's k-quant mixes give those two a larger type than the rest; the
/// remaining projections (q, k, attention output, gate, up) r70.
pub fn role_retention(role: Role) -> &'static str {
    match role {
        Role::Output | Role::TiedEmbedding | Role::Embedding => "hct_v3_r98",
        Role::AttnV | Role::FfnDown => "hct_v3_r90",
        Role::Other => "hct_v3_r70",
    }
}

/// A per-tensor retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The smallest retention whose sampled cosine reaches this target.
    TargetCosine(f64),
    /// The fixed table of `role_retention`.
    Role,
}

impl Policy {
    /// How the policy is recorded in `hct.policy`.
    pub fn describe(&self) -> String {
        match self {
            Policy::TargetCosine(t) => format!("target_cos={t}"),
            Policy::Role => "role".to_string(),
        }
    }
}

/// The policy asked for by `--codec hct_v3` and its `--codec-param`s, `None` when they name
/// no policy (a plain `retention=` or another codec), or a usage message.
pub fn from_args(codec: Option<&str>, params: &[String]) -> Result<Option<Policy>, String> {
    if codec != Some("hct_v3") {
        return Ok(None);
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let names_policy = |k: &str| k == "target_cos" || k == "policy";
    if !pairs.iter().any(|(k, _)| names_policy(k)) {
        return Ok(None);
    }
    if pairs.len() != 1 || params.len() != 1 {
        return Err(
            "codec hct_v3: target_cos= and policy= each choose the retention per tensor; give exactly one of them and no other --codec-param"
                .into(),
        );
    }
    match pairs[0] {
        ("target_cos", v) => {
            let t: f64 = v.parse().map_err(|_| {
                format!(
                    "--codec-param target_cos={v}: not a number (a cosine in (0, 1], e.g. 0.99)"
                )
            })?;
            if !(t > 0.0 && t <= 1.0) {
                return Err(format!(
                    "--codec-param target_cos={v}: the target must be in (0, 1]"
                ));
            }
            Ok(Some(Policy::TargetCosine(t)))
        }
        ("policy", "role") => Ok(Some(Policy::Role)),
        (_, v) => Err(format!(
            "--codec-param policy={v}: unknown policy (known: role)"
        )),
    }
}

/// One retention tried on a matrix's sampled rows.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub codec: &'static str,
    pub cosine: f64,
}

/// What the policy chose for one matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub name: String,
    pub role: Role,
    pub codec: &'static str,
    /// Adaptive only: the sampled cosine of `codec`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampled_cosine: Option<f64>,
    /// Adaptive only: true when no retention reached the target and the largest was taken.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub target_missed: bool,
    /// Adaptive only: every retention tried, in ladder order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trials: Vec<Trial>,
}

/// The policy's choices, in file order.
#[derive(Debug, Clone, Serialize)]
pub struct Choices {
    pub policy: Policy,
    pub sampled_rows_per_matrix: u64,
    pub tensors: Vec<Decision>,
}

impl Choices {
    /// The codec parameters recording a tensor's choice (SPEC.md §7.6.7, §7.6.8).
    pub fn provenance(&self, d: &Decision) -> Metadata {
        let role = serde_json::to_value(d.role)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let mut p = vec![
            (
                "hct.policy".to_string(),
                Value::string(self.policy.describe()),
            ),
            ("hct.role".to_string(), Value::string(role)),
        ];
        if let Some(c) = d.sampled_cosine {
            p.push(("hct.sampled_cosine".to_string(), Value::F64(c)));
            p.push((
                "hct.sampled_rows".to_string(),
                Value::U64(self.sampled_rows_per_matrix),
            ));
        }
        p
    }
}

/// Choose a retention for every weight matrix `plan` leaves to the policy (a plan built by
/// `Plan::for_budget`: `--keep`, `--codec-for` and the vector rules still apply first).
pub fn choose(tensors: &[SrcTensor<'_>], plan: &Plan, policy: Policy) -> Result<Choices> {
    let has_output = budget::has_output_matrix(tensors);
    let decided: Vec<(usize, Role)> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| plan.codec_for(&t.name, &t.shape, &t.codec).codec == BUDGET_MARK)
        .map(|(i, t)| (i, budget::role_of(&t.name, has_output)))
        .collect();
    let tensors = decided
        .par_iter()
        .map(|&(i, role)| decide(&tensors[i], role, policy))
        .collect::<Result<Vec<_>>>()?;
    Ok(Choices {
        policy,
        sampled_rows_per_matrix: SAMPLE_ROWS,
        tensors,
    })
}

fn decide(t: &SrcTensor<'_>, role: Role, policy: Policy) -> Result<Decision> {
    let mut d = Decision {
        name: t.name.clone(),
        role,
        codec: role_retention(role),
        sampled_cosine: None,
        target_missed: false,
        trials: vec![],
    };
    let Policy::TargetCosine(target) = policy else {
        return Ok(d);
    };
    let start = LADDER
        .iter()
        .position(|c| *c == adaptive_floor(role))
        .expect("floors are on the ladder");
    for &id in &LADDER[start..] {
        let cosine = sampled_cosine(t, id)?;
        d.trials.push(Trial { codec: id, cosine });
        d.codec = id;
        d.sampled_cosine = Some(cosine);
        if cosine >= target {
            return Ok(d);
        }
    }
    d.target_missed = true;
    Ok(d)
}

/// Cosine between the sampled rows and their round trip through `id`: the rows
/// `⌊s·rows/S⌋` for `s = 0 … S−1`, `S = min(rows, SAMPLE_ROWS)`, each decoded from the
/// source to binary32; `Σxy / √(Σxx·Σyy)` with binary64 sums over the sampled rows in that
/// order and each row's elements in index order. Both sums zero: 1 (the round trip is
/// exact); one of them zero: 0.
pub fn sampled_cosine(t: &SrcTensor<'_>, id: &str) -> Result<f64> {
    let from = decoder(&t.codec, &t.name)?;
    let to: &dyn Codec =
        codec::find(id).with_context(|| format!("internal: unknown codec {id}"))?;
    let (rows, row_len) = codec::rows_of(&t.shape)
        .with_context(|| format!("tensor {:?}: shape overflows", t.name))?;
    let in_row = from.row_bytes(row_len)? as usize;
    let n = usize::try_from(row_len)
        .with_context(|| format!("tensor {:?}: rows of {row_len} elements", t.name))?;
    let mut x = vec![0f32; n];
    let mut y = vec![0f32; n];
    let mut bytes = vec![0u8; to.row_bytes(row_len)? as usize];
    let (mut sxy, mut sxx, mut syy) = (0f64, 0f64, 0f64);
    let sample = rows.min(SAMPLE_ROWS);
    for s in 0..sample {
        let r = (s * rows / sample) as usize;
        let src = t.data.get(r * in_row..(r + 1) * in_row).with_context(|| {
            format!(
                "tensor {:?}: payload shorter than its shape (row {r} of {rows})",
                t.name
            )
        })?;
        from.decode_row(src, &mut x)
            .with_context(|| format!("tensor {:?} row {r}", t.name))?;
        to.encode_row(&x, &mut bytes)
            .with_context(|| format!("tensor {:?} row {r} under {id}", t.name))?;
        to.decode_row(&bytes, &mut y)?;
        for (&a, &b) in x.iter().zip(&y) {
            let (a, b) = (a as f64, b as f64);
            sxy += a * b;
            sxx += a * a;
            syy += b * b;
        }
    }
    Ok(match (sxx == 0.0, syy == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        _ => sxy / (sxx * syy).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hct_format::codec::spectral;

    fn args(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn policies_parse_and_mixtures_are_usage_errors() {
        assert_eq!(
            from_args(Some("hct_v3"), &args(&["target_cos=0.99"])),
            Ok(Some(Policy::TargetCosine(0.99)))
        );
        assert_eq!(
            from_args(Some("hct_v3"), &args(&["policy=role"])),
            Ok(Some(Policy::Role))
        );
        assert_eq!(
            from_args(Some("hct_v3"), &args(&["retention=0.9"])),
            Ok(None)
        );
        assert_eq!(from_args(Some("f16"), &args(&["target_cos=0.9"])), Ok(None));
        assert_eq!(from_args(None, &[]), Ok(None));
        for bad in [
            &["target_cos=0.99", "retention=0.9"][..],
            &["target_cos=x"],
            &["target_cos=1.5"],
            &["target_cos=0"],
            &["target_cos=NaN"],
            &["policy=size"],
            &["policy=role", "policy=role"],
        ] {
            assert!(from_args(Some("hct_v3"), &args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_ladder_is_every_hct_v3_id_by_retention_and_tables_use_it() {
        let ids: Vec<&str> = spectral::CODECS.iter().map(|c| c.id()).collect();
        assert_eq!(ids, LADDER);
        let kept: Vec<usize> = LADDER
            .iter()
            .map(|id| spectral::find(id).unwrap().kept())
            .collect();
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "{kept:?}");
        for r in [
            Role::Output,
            Role::TiedEmbedding,
            Role::Embedding,
            Role::AttnV,
            Role::FfnDown,
            Role::Other,
        ] {
            assert!(LADDER.contains(&role_retention(r)));
            assert!(LADDER.contains(&adaptive_floor(r)));
        }
    }
}
