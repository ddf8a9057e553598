//! `hct`: convert, inspect, validate and verify HCT containers.

mod cmd;
mod convert;
mod exit;
mod llama_gguf;
mod output;
mod plugin_gguf;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hct",
    version,
    about = "Convert, inspect, validate and verify HCT containers of compressed LLM weights",
    long_about = "HCT stores a model's tensors under versioned, frozen codecs (int4_opt_v1, ggml_q4_k, f16, ...) \
with a SHA-256 per tensor and over the header, every payload 64-byte aligned for mmap and SIMD.\n\n\
Typical use:\n  hct inspect model.hct            what is inside (add --json for scripts)\n  \
hct validate model.hct           check the file against SPEC.md (structure, limits, codecs)\n  \
hct verify model.hct             recompute every checksum",
    after_help = exit::HELP
)]
struct Cli {
    /// Log more (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Convert(convert::Args),
    Inspect(cmd::inspect::Args),
    Validate(cmd::check::ValidateArgs),
    Verify(cmd::check::VerifyArgs),
    Codecs(cmd::codecs::Args),
}

/// An error that carries its own exit code (for failures that are not a file's fault).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of our output goes away
    // (`hct inspect big.hct | head`) instead of failing on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Bad input must never show a Rust backtrace; a panic is our bug, reported as such.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("hct: internal error (please report): {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    output::init_logging(cli.verbose);
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Convert(a) => convert::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Validate(a) => cmd::check::validate(a),
        Command::Verify(a) => cmd::check::verify(a),
        Command::Codecs(a) => cmd::codecs::run(a),
    });
    match result {
        Ok(Ok(())) => ExitCode::from(exit::OK),
        Ok(Err(e)) => {
            eprintln!("hct: error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
        Err(_) => ExitCode::from(exit::FAILURE),
    }
}
