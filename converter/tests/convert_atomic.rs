//! A conversion killed with SIGKILL halfway leaves no file at the output path: output goes
//! to a temporary file beside it and is renamed only when complete (SPEC.md §9).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn write_synthetic_safetensors(path: &Path, rows: usize, cols: usize) {
    let data: Vec<u8> = (0..rows * cols)
        .flat_map(|i| ((i % 977) as f32 * 0.001).to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, cols], &data)
            .unwrap();
    safetensors::serialize_to_file([("w", view)], None, path).unwrap();
}

#[test]
fn sigkill_mid_conversion_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    write_synthetic_safetensors(&input, 16384, 4096); // 256 MiB of f32
    let output = dir.path().join("out.hct");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(["convert", "--codec", "bf16", "--threads", "1"])
        .arg(&input)
        .arg(&output)
        .spawn()
        .unwrap();
    // Wait until the temporary file has real content, then kill without warning.
    let start = Instant::now();
    let mut saw_partial = false;
    while start.elapsed() < Duration::from_secs(120) {
        let partial = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name().to_string_lossy().ends_with(".tmp")
                    && e.metadata().map(|m| m.len() > (1 << 20)).unwrap_or(false)
            });
        if partial {
            saw_partial = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        saw_partial,
        "conversion finished before it could be interrupted; make the input larger"
    );
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        !output.exists(),
        "a killed conversion left a file at the output path"
    );
}
