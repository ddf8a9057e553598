//! `hct`: convert, inspect, validate and verify HCT containers.

mod cmd;
mod convert;
mod exit;
mod hf_export;
mod hf_export_spm;
mod llama_gguf;
mod output;
mod plugin_gguf;
mod profiles;

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
    Profiles(cmd::profiles::Args),
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
    #[cfg(unix)]
    bus_error::install();
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
        Command::Profiles(a) => cmd::profiles::run(a),
    });
    match result {
        Ok(Ok(())) => ExitCode::from(exit::OK),
        Ok(Err(e)) => {
            eprintln!("hct: error: {}", message_of(&e));
            ExitCode::from(exit::code_for(&e))
        }
        Err(_) => ExitCode::from(exit::FAILURE),
    }
}

/// The error chain on one line, each cause after a colon, leaving out causes whose text
/// the line already holds (library errors that print their OS error as well as chaining
/// it would otherwise show it twice).
fn message_of(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Inputs are memory-mapped, so a file truncated by another process while we read it
/// raises SIGBUS on the next access to a page past its new end. Without a handler the
/// process dies silently; this one says what happened and exits with the I/O code. The
/// output never appears (it is renamed into place only when complete), and the temporary
/// file left beside it is removed by the next run that writes the same output.
#[cfg(unix)]
mod bus_error {
    const MESSAGE: &[u8] = b"hct: error: an input file became shorter while it was being read \
(SIGBUS on a mapped page); nothing was written at the output path\n";

    extern "C" fn on_sigbus(_: libc::c_int) {
        // SAFETY: write(2) and _exit(2) are async-signal-safe; MESSAGE is static.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(crate::exit::IO as libc::c_int);
        }
    }

    pub fn install() {
        // SAFETY: installing a handler before any thread starts; the handler only calls
        // async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    }
}
