//! Exit codes, documented in `hct --help`. Scripts branch on them, so they never change
//! meaning once released.

use hct_format::container::Category;

pub const OK: u8 = 0;
/// Something failed that none of the codes below describes.
pub const FAILURE: u8 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: u8 = 2;
/// A file could not be read or written.
pub const IO: u8 = 3;
/// An input file breaks its format's rules (HCT, GGUF or safetensors).
pub const INVALID: u8 = 4;
/// A checksum does not match: the file was damaged after it was written.
pub const CHECKSUM: u8 = 5;
/// The file is well formed but uses something this build does not implement
/// (an unknown codec id, a newer major version, an unsupported dtype).
pub const UNSUPPORTED: u8 = 6;

pub const HELP: &str = "\
Exit codes:
  0  success
  1  failure not covered below
  2  usage error (bad command line)
  3  I/O error (cannot read or write a file)
  4  invalid file (breaks the HCT, GGUF or safetensors format)
  5  checksum mismatch (the file was damaged after it was written)
  6  unsupported (well formed, but needs a codec, version or dtype this build lacks)";

/// The exit code for an error chain: the first error in it that has a category decides.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        let category = cause
            .downcast_ref::<hct_format::Error>()
            .map(|e| e.category())
            .or_else(|| {
                cause
                    .downcast_ref::<hct_format::gguf::GgufError>()
                    .map(|e| e.category())
            });
        if let Some(c) = category {
            return match c {
                Category::Io => IO,
                Category::Invalid => INVALID,
                Category::Checksum => CHECKSUM,
                Category::Unsupported => UNSUPPORTED,
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::CliError>() {
            return e.code;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return IO;
        }
    }
    FAILURE
}

/// A usage error (exit 2) with this message.
pub fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    crate::CliError {
        code: USAGE,
        message: message.to_string(),
    }
    .into()
}

/// An invalid-input error (exit 4) with this message.
pub fn invalid(message: impl std::fmt::Display) -> anyhow::Error {
    crate::CliError {
        code: INVALID,
        message: message.to_string(),
    }
    .into()
}

/// An unsupported-feature error (exit 6) with this message.
pub fn unsupported(message: impl std::fmt::Display) -> anyhow::Error {
    crate::CliError {
        code: UNSUPPORTED,
        message: message.to_string(),
    }
    .into()
}
