//! What the CLI integration tests share.

use std::path::Path;
use std::process::Command;

/// Runs the `hct` binary of this build: (exit code, stdout, stderr). A panic is never an
/// acceptable way to fail, whatever the test expects, so any run that panicked fails here.
pub fn hct(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// A test path as a command-line argument (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
