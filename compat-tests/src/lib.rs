//! Helpers shared by the compat tests (peers: llama.cpp, PyPI gguf/safetensors).
//!
//! The peers themselves (a pinned llama.cpp build, SmolLM2, MiniLM, the jargon text) are fetched
//! and built by `compat-tests/peers.sh fetch build` into a cache outside the checkout. These
//! helpers find that cache and call its JSON-returning wrappers.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

/// Paths of the built peers, as printed by `peers.sh env --json` (`HCT_LLAMA_BIN`, `HCT_GGML_INCLUDE`,
/// `HCT_GGML_LIB`, `HCT_SMOLLM2_F32`, `HCT_MINILM_F32`, `HCT_TEXT_SLICE`, ...).
#[derive(Debug, Clone)]
pub struct PeersEnv {
    vars: BTreeMap<String, String>,
}

impl PeersEnv {
    /// The value of one `HCT_*` variable.
    pub fn var(&self, name: &str) -> Result<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("peers.sh env printed no {name}"))
    }

    /// The value of one `HCT_*` variable as a path.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        self.var(name).map(PathBuf::from)
    }

    /// A llama.cpp tool of the stock build, e.g. `llama_tool("llama-perplexity")`.
    pub fn llama_tool(&self, tool: &str) -> Result<PathBuf> {
        Ok(self.path("HCT_LLAMA_BIN")?.join(tool))
    }

    /// All variables, for passing to a child process.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

/// The `compat-tests/peers.sh` script of this checkout.
pub fn peers_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers.sh")
}

/// The built peers, or an error saying how to build them.
pub fn peers_env() -> Result<PeersEnv> {
    let out = Command::new("bash")
        .arg(peers_script())
        .args(["env", "--json"])
        .output()
        .context("running compat-tests/peers.sh env --json")?;
    if !out.status.success() {
        bail!(
            "peers are not built ({}): run compat-tests/peers.sh fetch build",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let vars: BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).context("parsing peers.sh env --json")?;
    Ok(PeersEnv { vars })
}

/// For tests that need the peers: the env when built; when not, `None` after a loud SKIPPED
/// notice, except under CI (`CI=true`), where a missing peer is a failure, never a silent pass.
pub fn peers_env_or_skip(test: &str) -> Option<PeersEnv> {
    match peers_env() {
        Ok(env) => Some(env),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{test}: peers required under CI but unavailable: {e:#}")
        }
        Err(e) => {
            // Written to the real stderr, not through eprintln!, which the test harness captures
            // and hides for passing tests: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: {e:#}\n*** run compat-tests/peers.sh fetch build to enable it\n"
            );
            None
        }
    }
}

/// Run one JSON-returning wrapper (`ppl`, `embed`, `quantize`, `bpw`) and return its JSON.
///
/// ```no_run
/// let ppl = hct_compat_tests::run_wrapper(&["ppl", "/path/model.gguf"]).unwrap();
/// println!("{}", ppl["ppl"]);
/// ```
pub fn run_wrapper(args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new("bash")
        .arg(peers_script())
        .args(args)
        .output()
        .with_context(|| format!("running peers.sh {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "peers.sh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing the JSON of peers.sh {}", args.join(" ")))
}
