//! The converter's whole read → write path (`hct convert`, the same source files as the
//! binary) on an in-memory input. The first byte picks the input format, the second the
//! output format and options; the rest is the file. The oracle: no panic, no output when
//! the conversion fails, and when it succeeds an output that our own readers accept
//! (an HCT output must validate and verify).
#![no_main]
#![allow(dead_code)]

#[path = "memfile.rs"]
mod memfile;

#[path = "../../converter/src/convert/mod.rs"]
mod convert;
#[path = "../../converter/src/exit.rs"]
mod exit;
#[path = "../../converter/src/hf_export.rs"]
mod hf_export;
#[path = "../../converter/src/hf_export_spm.rs"]
mod hf_export_spm;
#[path = "../../converter/src/llama_gguf/mod.rs"]
mod llama_gguf;
#[path = "../../converter/src/output.rs"]
mod output;
#[path = "../../converter/src/plugin_gguf.rs"]
mod plugin_gguf;
#[path = "../../converter/src/profiles.rs"]
mod profiles;

/// The binary's error type that carries an exit code (defined in its main.rs).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

use clap::Parser;
use libfuzzer_sys::fuzz_target;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: convert::Args,
}

const OUTPUTS: [(&str, &[&str]); 8] = [
    ("hct", &[]),
    ("hct", &["--codec", "int4_opt_v1"]),
    ("hct", &["--codec", "ggml_q8_0"]),
    ("gguf", &[]),
    ("gguf", &["--gguf-mode", "plugin"]),
    ("gguf", &["--gguf-mode", "decoded", "--dtype", "f32"]),
    ("safetensors", &[]),
    ("safetensors", &["--dtype", "f16"]),
];

fuzz_target!(|data: &[u8]| {
    let [from, to, file @ ..] = data else { return };
    let from = ["hct", "gguf", "safetensors"][*from as usize % 3];
    let (to, options) = OUTPUTS[*to as usize % OUTPUTS.len()];
    let input = memfile::MemFile::new(file);
    let dir = tempfile::tempdir_in("/dev/shm").expect("tmpfs for outputs");
    let out = dir.path().join(format!("out.{to}"));
    let mut argv = vec![
        "convert".to_string(),
        input.path().display().to_string(),
        out.display().to_string(),
        "--from".into(),
        from.into(),
    ];
    argv.extend(options.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(argv).expect("the fixed command lines parse");
    match convert::run(cli.args) {
        Err(_) => assert!(!out.exists(), "a failed conversion left an output"),
        Ok(()) => match to {
            "hct" => {
                let f = hct_format::HctFile::open(&out).expect("our HCT output opens");
                f.validate().expect("our HCT output validates");
                f.verify().expect("our HCT output verifies");
            }
            "gguf" => {
                hct_format::gguf::GgufFile::open(&out).expect("our GGUF output opens");
            }
            _ => {
                hct_format::safetensors_io::Checkpoint::open(&out)
                    .expect("our safetensors output opens");
            }
        },
    }
});
