//! The peers' wrappers give real, sane numbers, and a program links against the real ggml.
//!
//! Needs `compat-tests/peers.sh fetch build`; without it each test prints a loud SKIPPED notice,
//! or fails when `CI=true`.

use std::path::Path;
use std::process::Command;

use hct_compat_tests::{peers_env_or_skip, run_wrapper};

fn number(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("wrapper JSON has no number {key}: {v}"))
}

#[test]
fn smollm2_baseline_perplexity_is_sane_and_matches_itself() {
    let Some(env) = peers_env_or_skip("smollm2_baseline_perplexity_is_sane_and_matches_itself")
    else {
        return;
    };
    let base = env.var("HCT_SMOLLM2_F32").unwrap();
    let plain = run_wrapper(&["ppl", base]).unwrap();
    let ppl = number(&plain, "ppl");
    // About 22 on English prose for this model (measured with this build and setting); anything far outside means the
    // model, the text or the tool is broken.
    assert!(
        ppl.is_finite() && (5.0..80.0).contains(&ppl),
        "SmolLM2 perplexity {ppl}"
    );

    let against_itself = run_wrapper(&["ppl", base, "--kl-base", base]).unwrap();
    // The saved base logits are stored as 16-bit log-probabilities, so the self-KLD is tiny but
    // not necessarily zero; the arg-max must agree everywhere.
    assert!(
        number(&against_itself, "kld_mean").abs() < 1e-3,
        "{against_itself}"
    );
    assert_eq!(
        number(&against_itself, "top1_agreement"),
        1.0,
        "{against_itself}"
    );
    assert!(
        (number(&against_itself, "ppl") - ppl).abs() < 1e-3 * ppl,
        "{against_itself}"
    );
}

#[test]
fn minilm_embeddings_match_themselves_and_survive_q8_0() {
    let Some(env) = peers_env_or_skip("minilm_embeddings_match_themselves_and_survive_q8_0") else {
        return;
    };
    let f32_model = env.var("HCT_MINILM_F32").unwrap();
    let same = run_wrapper(&["embed", f32_model, "--reference", f32_model]).unwrap();
    assert_eq!(same["dims"].as_u64(), Some(384), "{same}");
    assert!((number(&same, "mean_cosine") - 1.0).abs() < 1e-6, "{same}");

    let q8 = run_wrapper(&["quantize", f32_model, "Q8_0"]).unwrap();
    let bpw = number(&q8, "bits_per_weight");
    // Q8_0 is 8.5 bits per weight; norms and biases stay F32, so the file's average sits a bit above.
    assert!(
        (8.5..9.5).contains(&bpw),
        "MiniLM Q8_0 bits per weight {bpw}"
    );
    let q8_path = q8["path"].as_str().unwrap();
    let cos = run_wrapper(&["embed", q8_path, "--reference", f32_model]).unwrap();
    let mean = number(&cos, "mean_cosine");
    assert!(mean > 0.99 && mean < 1.0, "MiniLM Q8_0 mean cosine {mean}");
}

#[test]
fn a_c_program_links_the_real_ggml_and_decodes_q4_1_exactly() {
    let Some(env) = peers_env_or_skip("a_c_program_links_the_real_ggml_and_decodes_q4_1_exactly")
    else {
        return;
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/ggml_traits_smoke.c");
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ggml_traits_smoke");
    let include = env.var("HCT_GGML_INCLUDE").unwrap();
    let lib = env.var("HCT_GGML_LIB").unwrap();
    let cc = Command::new("cc")
        .args(["-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{include}"))
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{lib}"))
        .args(["-lggml-base", "-lm"])
        .arg(format!("-Wl,-rpath,{lib}"))
        .output()
        .expect("running cc");
    assert!(
        cc.status.success(),
        "compiling the C smoke test failed:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = Command::new(&exe)
        .output()
        .expect("running the C smoke test");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "ggml_traits_smoke failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // 3 traits checks + 3 types x 256 blocks x 32 values.
    assert!(
        stdout.contains("ggml_traits_smoke: 24579 passed, 0 failed"),
        "{stdout}"
    );
}
