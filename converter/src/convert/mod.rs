//! `hct convert`: between safetensors, GGUF and HCT, streaming, tensor by tensor.

mod budget;
mod codec_params;
mod imatrix;
mod plan;
mod quality;
pub mod source;
mod spectral_policy;
mod to_gguf;
mod to_hct;
pub mod to_safetensors;
mod transcode;

use crate::{exit, output};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use quality::Quality;
use serde::Serialize;
use serde_json::json;
use source::Source;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Convert a checkpoint between safetensors, GGUF and HCT.
///
/// Formats come from the file names (`.hct`, `.gguf`, `.safetensors`, a sharded
/// checkpoint's `model.safetensors.index.json` or its folder) or from --from/--to.
/// Tensors are carried through byte for byte unless a codec is asked for:
///
///   hct convert model.safetensors model.hct                  lossless repackaging
///   hct convert ./Llama-3-8B/ llama.hct --codec int4_opt_v1   weight matrices to int4
///   hct convert model.hct model.safetensors --dtype f32       decode everything to f32
///   hct convert model.hct model.gguf --gguf-mode plugin       for llama.cpp + libhct
///
/// --codec applies to weight matrices (2 or more dimensions, float source); vectors
/// (norms, biases) keep their source precision, and so do the learned position and
/// token-type embeddings that BERT- and GPT-2-style models add to activations instead of
/// multiplying (`*.position_embeddings.weight`, `*.token_type_embeddings.weight`,
/// `*.position_embedding.weight`, `*.wpe.weight`, GGUF `position_embd.weight` and
/// `token_types.weight`): ggml cannot add a quantized tensor, so llama.cpp could not run
/// them. The summary (and --json, as `kept_because`) lists tensors kept for that reason.
/// --keep and --codec-for override all of this by tensor-name pattern (`*` and `?`
/// wildcards). The output appears only when complete.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Input: .hct, .gguf, .safetensors, model.safetensors.index.json, or a checkpoint folder.
    input: PathBuf,
    /// Output file (with --to hf, the folder to create).
    output: PathBuf,
    /// Input format, when the file name does not say.
    #[arg(long, value_enum)]
    from: Option<Format>,
    /// Output format, when the file name does not say. `hf`: a Hugging Face folder
    /// (config.json, tokenizer files, model.safetensors) from a llama.cpp GGUF of the llama
    /// family, q/k rows back in Hugging Face's order.
    #[arg(long, value_enum)]
    to: Option<Format>,
    /// Codec for weight matrices, e.g. int4_opt_v1, f16 (`hct codecs` lists them).
    #[arg(long, value_name = "ID")]
    codec: Option<String>,
    /// A parameter of a codec family named by --codec (repeatable), e.g. `--codec hct_v3
    /// --codec-param retention=0.9` selects hct_v3_r90 (retention 0.25, 0.5, 0.7, 0.9, 0.98).
    /// Per-matrix retention: `target_cos=0.99` takes the smallest whose cosine on 64 sampled
    /// rows reaches the target (token embedding and output at 0.98); `policy=role` takes it
    /// from the tensor's role (SPEC.md §7.6.7, §7.6.8). The choice is in --json.
    #[arg(long, value_name = "KEY=VALUE", requires = "codec")]
    codec_param: Vec<String>,
    /// Keep tensors matching PATTERN at source precision (repeatable), e.g. '*embd*'.
    #[arg(long, value_name = "PATTERN")]
    keep: Vec<String>,
    /// Give tensors matching PATTERN this codec (repeatable; first match wins),
    /// e.g. 'output.weight=f16'.
    #[arg(long, value_name = "PATTERN=ID")]
    codec_for: Vec<String>,
    /// Element type for tensors that must be decoded on the way out (safetensors, GGUF).
    #[arg(long, value_name = "DTYPE", value_parser = ["f32", "f16", "bf16"])]
    dtype: Option<String>,
    /// With a GGUF output, which llama.cpp it is for. native: stock llama.cpp (ggml layouts
    /// carried, int4_g32_fp16_v1 as Q4_1, other codecs decoded to --dtype). plugin: llama.cpp
    /// with the HCT plugin patch and libhct (HCT codecs kept byte for byte as extension types,
    /// with every tensor's codec and SHA-256 recorded for `hct verify`). decoded: every
    /// tensor decoded to --dtype except plain element types (f32 norms).
    #[arg(long, value_enum, default_value = "native", value_name = "MODE")]
    gguf_mode: to_gguf::GgufMode,
    /// Same as --gguf-mode decoded.
    #[arg(long, requires = "dtype", conflicts_with = "gguf_mode")]
    decode_all: bool,
    /// With a safetensors output: also write the config and tokenizer files recorded from the
    /// source checkpoint into the output's folder.
    #[arg(long)]
    side_files: bool,
    /// Worker threads (default: all cores; at most 1024). The output is identical whatever
    /// the count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Choose each weight matrix's codec (iq4_nl_mse_v1, q5_0_mse_v1 or q8_0_mse_v1, all
    /// ggml block layouts for stock llama.cpp) to minimise an estimate of model error with
    /// at most this many payload bits per weight over the whole file (e.g. 5.5).
    #[arg(long, value_name = "BITS", conflicts_with_all = ["codec", "max_size"])]
    target_bpw: Option<f64>,
    /// Like --target-bpw, with a limit on the whole output file in bytes instead.
    #[arg(long, value_name = "BYTES", conflicts_with = "codec")]
    max_size: Option<u64>,
    /// Fit a device profile (`hct profiles`): the profile's memory less the model's KV cache
    /// at the profile's context length becomes the --max-size of the weights.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["codec", "target_bpw", "max_size"])]
    profile: Option<String>,
    /// Codec for the weight matrices whose rows --codec cannot store (e.g. ternary codecs
    /// need rows of whole 256-element blocks); without it such a matrix fails the
    /// conversion. Each tensor that takes it is listed with the reason.
    #[arg(long, value_name = "ID", requires = "codec")]
    fallback_codec: Option<String>,
    /// Codecs --target-bpw / --max-size choose from. ggml: ggml block layouts (stock
    /// llama.cpp): 4.5, 5.5 and 8.5 bits per weight. plugin: also HCT layouts, for llama.cpp
    /// with the HCT plugin (export with --gguf-mode plugin): nl4_sh64_v1 beside iq4_nl_mse_v1
    /// at 4.5, nl5_sh64_v1 beside q5_0_mse_v1 at 5.5, and a 6.5 level of nl6_sh64_v1 alone
    /// (rows of multiples of 64 only); floors as with ggml.
    #[arg(long, value_enum, default_value = "ggml", value_name = "MENU")]
    budget_menu: budget::Menu,
    /// Weight the searched encoders' error (and the budget's estimate) by per-column
    /// importance from a llama-imatrix file (GGUF or legacy .dat), matched by tensor name;
    /// each tensor it weighted records the file's SHA-256. Default: no calibration data.
    #[arg(long, value_name = "FILE")]
    imatrix: Option<PathBuf>,
    /// Print a JSON summary (per-tensor codecs, sizes and errors) on stdout.
    #[arg(long)]
    json: bool,
    /// With an HCT output: store each payload as zstd frames over chunks of whole rows
    /// (level 1-22, default 3) where that saves at least 3% of its bytes (SPEC.md §6.3).
    /// Readers decode on read; such tensors lose zero-copy mmap. Needs a 1.1 reader.
    #[arg(long, value_name = "zstd[:LEVEL]")]
    entropy: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Hct,
    Gguf,
    Safetensors,
    Hf,
}

/// What happened to one tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<u64>,
    pub source_codec: String,
    pub codec: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub elements: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Why the default policy kept this weight matrix at source precision under --codec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<&'static str>,
    /// Why this weight matrix took --fallback-codec instead of --codec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_because: Option<&'static str>,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .map_err(|e| anyhow!("cannot start {n} worker threads: {e}"))?;
    }
    source::check_exists(&a.input)?;
    let from = match a.from {
        Some(f) => f,
        None => detect(&a.input).map_err(exit::usage)?,
    };
    let to = match a.to {
        Some(f) => f,
        None => detect(&a.output).map_err(exit::usage)?,
    };
    let profile = match &a.profile {
        Some(name) => Some(crate::profiles::find(name).map_err(exit::usage)?),
        None => None,
    };
    let mut budget_target = match (a.target_bpw, a.max_size) {
        (Some(b), _) => Some(budget::Target::BitsPerWeight(b)),
        (None, Some(m)) => Some(budget::Target::MaxFileBytes(m)),
        (None, None) => None,
    };
    // A profile's weight budget depends on the model (its KV cache); set once it is open.
    if profile.is_some() {
        budget_target = Some(budget::Target::MaxFileBytes(0));
    }
    let spectral_policy =
        spectral_policy::from_args(a.codec.as_deref(), &a.codec_param).map_err(exit::usage)?;
    if spectral_policy.is_some() && a.fallback_codec.is_some() {
        return Err(exit::usage(
            "--fallback-codec does not apply to hct_v3 policies: hct_v3 stores rows of any length",
        ));
    }
    let mut plan = match (budget_target, spectral_policy) {
        (Some(_), _) | (None, Some(_)) => plan::Plan::for_budget(&a.keep, &a.codec_for),
        (None, None) => plan::Plan::new(
            codec_params::resolve(a.codec.clone(), &a.codec_param).map_err(exit::usage)?,
            &a.keep,
            &a.codec_for,
        )
        .and_then(|p| p.with_fallback(a.fallback_codec.clone())),
    }
    .map_err(exit::usage)?;
    if to != Format::Hct
        && (a.codec.is_some() || !a.codec_for.is_empty() || budget_target.is_some())
    {
        return Err(exit::usage(
            "--codec, --codec-for, --target-bpw and --max-size choose HCT codecs; convert to .hct first, then export",
        ));
    }
    let entropy = match &a.entropy {
        Some(s) if to != Format::Hct => {
            return Err(exit::usage(format!(
                "--entropy {s} applies to HCT output only"
            )))
        }
        Some(s) => Some(hct_format::container::entropy::parse_spec(s).map_err(exit::usage)?),
        None => None,
    };
    let gguf_mode = if a.decode_all {
        to_gguf::GgufMode::Decoded
    } else {
        a.gguf_mode
    };
    if gguf_mode == to_gguf::GgufMode::Decoded && a.dtype.is_none() {
        return Err(exit::usage(
            "--gguf-mode decoded needs --dtype (f32, f16 or bf16)",
        ));
    }
    // Refuse a device, FIFO, symlink or directory at the output path before any work.
    if to == Format::Hf {
        if std::fs::symlink_metadata(&a.output).is_ok() {
            return Err(exit::usage(format!(
                "{} exists; --to hf creates a new folder",
                a.output.display()
            )));
        }
    } else {
        hct_format::output_file::check_target(&a.output)
            .with_context(|| format!("cannot write {}", a.output.display()))?;
    }
    let start = Instant::now();
    let src = Source::open(&a.input, from)?;
    let fit = match &profile {
        Some(p) => {
            let fit = crate::profiles::fit(p, &src.metadata()?)?;
            budget_target = Some(budget::Target::MaxFileBytes(fit.weights_budget_bytes));
            Some(fit)
        }
        None => None,
    };
    let imatrix = match &a.imatrix {
        Some(p) => Some(imatrix::Imatrix::load(p)?),
        None => None,
    };
    if let Some(m) = &imatrix {
        tracing::info!("imatrix: {} entries, {} ({})", m.len(), m.digest, m.format);
    }
    let allocation = match budget_target {
        Some(target) => {
            let tensors = src.tensors();
            let header = header_bound(&src, &tensors)?;
            let alloc = budget::allocate(
                &tensors,
                &plan,
                target,
                a.budget_menu,
                imatrix.as_ref(),
                header,
            )
            .map_err(|e| match &fit {
                Some(f) => e.context(format!(
                    "profile {}: {} bytes less a KV cache of {} bytes leave {} bytes for the weights",
                    f.profile.name, f.profile.memory_bytes, f.kv_cache_bytes, f.weights_budget_bytes
                )),
                None => e,
            })?;
            if alloc.decisions.is_empty() {
                bail!("no weight matrix has rows the budget codecs can store (multiples of 32 elements)");
            }
            plan.decided = alloc
                .decisions
                .iter()
                .map(|(n, d)| (n.clone(), d.codec.to_string()))
                .collect();
            Some(alloc)
        }
        None => None,
    };
    // A retention per weight matrix (hct_v3 policies): chosen before any output, recorded in
    // each tensor's codec parameters.
    let policy_choices = match spectral_policy {
        Some(p) => {
            let choices = spectral_policy::choose(&src.tensors(), &plan, p)?;
            for d in &choices.tensors {
                plan.decided.insert(d.name.clone(), d.codec.to_string());
                plan.provenance
                    .insert(d.name.clone(), choices.provenance(d));
            }
            Some(choices)
        }
        None => None,
    };
    let total = src.total_bytes();
    let progress = progress_bar(total);
    let reports = match to {
        Format::Hct => to_hct::write_hct(
            &src,
            &a.output,
            &plan,
            vec![],
            imatrix.as_ref(),
            entropy,
            &progress,
        )?,
        Format::Safetensors => {
            let r =
                to_safetensors::write_safetensors(&src, &a.output, a.dtype.as_deref(), &progress)?;
            if a.side_files {
                let dir = a
                    .output
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let files = to_safetensors::restore_side_files(&src, dir)?;
                tracing::info!(?files, "side files written");
            }
            r
        }
        Format::Gguf => {
            to_gguf::write_gguf(&src, &a.output, gguf_mode, a.dtype.as_deref(), &progress)?
        }
        Format::Hf => {
            crate::hf_export::write_hf_folder(&src, &a.output, a.dtype.as_deref(), &progress)?
        }
    };
    progress.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    summarize(
        &a,
        from,
        to,
        &reports,
        secs,
        allocation.as_ref(),
        fit.as_ref(),
        policy_choices.as_ref(),
    )
}

/// An upper bound on everything but the payloads in the HCT file `src` becomes: the
/// preamble, up to 63 padding bytes per payload, and a header whose codec ids are all as
/// long as an id can be (64 bytes).
fn header_bound(src: &Source, tensors: &[source::SrcTensor<'_>]) -> Result<u64> {
    use hct_format::container::header::Header;
    use hct_format::TensorInfo;
    let mut metadata = src.metadata()?;
    metadata.push((
        "hct.writer".into(),
        hct_format::Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
    ));
    let header = Header {
        metadata,
        tensors: tensors
            .iter()
            .map(|t| TensorInfo {
                name: t.name.clone(),
                shape: t.shape.clone(),
                source_dtype: t.source_dtype.clone(),
                codec: "x".repeat(64),
                codec_params: {
                    let mut p = t.codec_params.clone();
                    p.push((
                        "hct.encoder".into(),
                        hct_format::Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
                    ));
                    p
                },
                offset: 0,
                length: 0,
                sha256: [0; 32],
            })
            .collect(),
    };
    Ok(64 + 64 * (tensors.len() as u64 + 1) + header.encode().len() as u64)
}

/// The size of the output: a file's, or the files' of a folder (`--to hf`).
fn output_bytes(p: &Path) -> Result<u64> {
    let meta = std::fs::metadata(p)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for e in std::fs::read_dir(p)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

pub fn detect(p: &Path) -> Result<Format> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if p.is_dir() || name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json") {
        return Ok(Format::Safetensors);
    }
    if name.ends_with(".hct") {
        return Ok(Format::Hct);
    }
    if name.ends_with(".gguf") {
        return Ok(Format::Gguf);
    }
    bail!(
        "cannot tell the format of {} from its name; pass --from/--to (hct, gguf, safetensors)",
        p.display()
    )
}

fn progress_bar(total: u64) -> ProgressBar {
    // indicatif draws only when stderr is a terminal, so scripts and CI stay quiet.
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("template is valid"),
    );
    pb
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    a: &Args,
    from: Format,
    to: Format,
    reports: &[TensorReport],
    secs: f64,
    budget: Option<&budget::Allocation>,
    fit: Option<&crate::profiles::Fit>,
    policy: Option<&spectral_policy::Choices>,
) -> Result<()> {
    if let Some(budget::Target::MaxFileBytes(max)) = budget.map(|b| b.target) {
        let size = std::fs::metadata(&a.output)?.len();
        if size > max {
            bail!(
                "internal: {} is {size} bytes, over --max-size {max}",
                a.output.display()
            );
        }
    }
    let file_bytes = output_bytes(&a.output)?;
    let bytes_in: u64 = reports.iter().map(|r| r.bytes_in).sum();
    let elements: u64 = reports.iter().map(|r| r.elements).sum();
    let changed: Vec<&TensorReport> = reports.iter().filter(|r| r.quality.is_some()).collect();
    let kept: Vec<&TensorReport> = reports
        .iter()
        .filter(|r| r.kept_because.is_some())
        .collect();
    let q_elems: u64 = changed.iter().map(|r| r.elements).sum();
    let q_bytes: u64 = changed.iter().map(|r| r.bytes_out).sum();
    let bpw_file = if elements > 0 {
        file_bytes as f64 * 8.0 / elements as f64
    } else {
        0.0
    };
    let bpw_q = if q_elems > 0 {
        q_bytes as f64 * 8.0 / q_elems as f64
    } else {
        0.0
    };
    if a.json {
        output::print_json(&json!({
            "input": a.input, "output": a.output, "from": from, "to": to,
            "tensors": reports.len(), "re_encoded_tensors": changed.len(),
            "kept_at_source_precision": kept.iter().map(|r| json!({
                "name": r.name, "codec": r.codec, "reason": r.kept_because,
            })).collect::<Vec<_>>(),
            "fell_back": reports.iter().filter(|r| r.fallback_because.is_some()).map(|r| json!({
                "name": r.name, "codec": r.codec, "reason": r.fallback_because,
            })).collect::<Vec<_>>(),
            "bytes_in": bytes_in, "file_bytes": file_bytes, "elements": elements,
            "bits_per_weight_whole_file": bpw_file,
            "bits_per_weight_re_encoded": bpw_q,
            "seconds": secs, "input_gb_per_s": bytes_in as f64 / secs / 1e9,
            "tensor_reports": reports,
            "profile": fit,
            "budget": budget.map(|b| json!({
                "allocation": b,
                "tensors": b.decisions.iter().map(|(name, d)| json!({
                    "name": name, "role": d.role, "floor": d.floor, "codec": d.codec,
                    "estimates": d.estimates,
                })).collect::<Vec<_>>(),
            })),
            "spectral_policy": policy,
        }));
        return Ok(());
    }
    for r in &changed {
        let q = r.quality.expect("filtered on quality");
        println!(
            "  {:40} {:>8} → {:<16} rel.err {:.5}  cos {:.6}  SNR {:6.2} dB",
            r.name, r.source_codec, r.codec, q.rel_rms_error, q.cosine, q.snr_db
        );
    }
    for r in &kept {
        let why = r.kept_because.expect("filtered on kept_because");
        println!("  {:40} kept at {}: {why}", r.name, r.codec);
    }
    for r in reports.iter().filter(|r| r.fallback_because.is_some()) {
        let why = r.fallback_because.expect("filtered on fallback_because");
        println!("  {:40} took {}: {why}", r.name, r.codec);
    }
    if let Some(f) = fit {
        println!(
            "profile {}: {} bytes = KV cache {} bytes ({} tokens of {}: {} layers × {} KV heads × ({} + {}) head dims) + weights budget {} bytes",
            f.profile.name,
            f.profile.memory_bytes,
            f.kv_cache_bytes,
            f.profile.context_tokens,
            f.profile.kv_cache_type,
            f.geometry.layers,
            f.geometry.heads_kv,
            f.geometry.head_dim_k,
            f.geometry.head_dim_v,
            f.weights_budget_bytes
        );
    }
    if let Some(p) = policy {
        println!(
            "hct_v3 policy {} ({} sampled rows per matrix):",
            p.policy.describe(),
            p.sampled_rows_per_matrix
        );
        for d in &p.tensors {
            let trials: Vec<String> = d
                .trials
                .iter()
                .map(|t| format!("{} {:.6}", t.codec, t.cosine))
                .collect();
            println!(
                "  {:40} {:?} → {}{}{}",
                d.name,
                d.role,
                d.codec,
                if trials.is_empty() {
                    String::new()
                } else {
                    format!("   [{}]", trials.join(", "))
                },
                if d.target_missed {
                    "  (no retention reached the target)"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(b) = budget {
        println!("size budget: {:?}; error estimate Σ normalized squared error (sampled rows) per codec:", b.target);
        for (name, d) in &b.decisions {
            let est: Vec<String> = d
                .estimates
                .iter()
                .map(|e| {
                    format!(
                        "{}{} {:.3e}",
                        if e.codec == d.codec { "*" } else { "" },
                        e.codec,
                        e.nmse
                    )
                })
                .collect();
            println!(
                "  {name:40} {:?} (floor {}) → {}   [{}]",
                d.role,
                d.floor,
                d.codec,
                est.join(", ")
            );
        }
        println!(
            "  chose {:.4} payload bits per weight ({} of {} budget bytes), estimated error {:.4e}",
            b.payload_bits_per_weight,
            b.chosen_payload_bytes,
            b.budget_payload_bytes,
            b.estimated_error
        );
    }
    println!(
        "{} → {}: {} tensors ({} re-encoded), {} → {}, {:.3} bits per weight over the whole file{}, {:.1} s",
        a.input.display(),
        a.output.display(),
        reports.len(),
        changed.len(),
        output::bytes(bytes_in),
        output::bytes(file_bytes),
        bpw_file,
        if q_elems > 0 { format!(" ({bpw_q:.3} over re-encoded tensors)") } else { String::new() },
        secs
    );
    Ok(())
}
