//! Faults during `hct convert`: SIGKILL at random moments (120 trials over every input
//! format, every output format and the re-encoding codecs), and a full file system
//! (ENOSPC on a small tmpfs, when this process may mount one). After a fault the output
//! path holds either nothing or the complete, correct file, never a partial one; a
//! temporary file a kill leaves behind is removed by the next run of the same conversion.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hct"))
}

fn run(args: &[&str]) {
    let o = bin().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A safetensors checkpoint of a few f32 matrices and vectors, ~24 MiB.
fn checkpoint(path: &Path) {
    let shapes: [(&str, Vec<usize>); 4] = [
        ("embed.weight", vec![1024, 1024]),
        ("layer.0.w", vec![1536, 1024]),
        ("layer.0.norm", vec![1024]),
        ("layer.1.w", vec![1024, 3072]),
    ];
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .iter()
        .map(|(n, s)| {
            let count: usize = s.iter().product();
            let bytes = (0..count)
                .flat_map(|i| ((i * 7919 % 1009) as f32 / 504.5 - 1.0).to_le_bytes())
                .collect();
            (n.to_string(), s.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (n.clone(), v)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

struct Case {
    input: PathBuf,
    output: &'static str,
    args: &'static [&'static str],
    reference: Vec<u8>,
    micros: u64,
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn sigkill_at_random_points_never_leaves_a_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let st = d.join("in.safetensors");
    checkpoint(&st);
    let hct = d.join("in.hct");
    run(&["convert", st.to_str().unwrap(), hct.to_str().unwrap()]);
    let q = d.join("q.hct");
    run(&[
        "convert",
        st.to_str().unwrap(),
        q.to_str().unwrap(),
        "--codec",
        "int4_opt_v1",
    ]);
    let gguf = d.join("in.gguf");
    run(&["convert", hct.to_str().unwrap(), gguf.to_str().unwrap()]);

    let specs: [(&Path, &'static str, &'static [&'static str]); 8] = [
        (&st, "a.hct", &[]),
        (&st, "b.hct", &["--codec", "int4_opt_v1"]),
        (&st, "c.hct", &["--codec", "ggml_q8_0"]),
        (&hct, "d.gguf", &[]),
        (&hct, "e.safetensors", &[]),
        (&gguf, "f.hct", &["--codec", "int4_g32_fp16_v1"]),
        (&q, "g.gguf", &["--gguf-mode", "plugin"]),
        (&q, "h.safetensors", &["--dtype", "f16"]),
    ];
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut cases = Vec::new();
    for (input, output, args) in specs {
        let out = out_dir.join(output);
        let start = Instant::now();
        let mut a = vec!["convert", input.to_str().unwrap(), out.to_str().unwrap()];
        a.extend(args);
        run(&a);
        let micros = start.elapsed().as_micros() as u64;
        cases.push(Case {
            input: input.to_path_buf(),
            output,
            args,
            reference: std::fs::read(&out).unwrap(),
            micros,
        });
        std::fs::remove_file(&out).unwrap();
    }

    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let trials = 120;
    let (mut killed, mut finished, mut partial, mut leftovers) = (0, 0, 0, 0);
    for trial in 0..trials {
        let c = &cases[trial % cases.len()];
        let out = out_dir.join(c.output);
        // Anywhere from process start to a little past the uninterrupted run time.
        let delay = Duration::from_micros(next() % (c.micros * 6 / 5 + 1));
        let mut child = bin()
            .arg("convert")
            .arg(&c.input)
            .arg(&out)
            .args(c.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        } else {
            killed += 1;
        }
        if let Ok(bytes) = std::fs::read(&out) {
            if bytes != c.reference {
                partial += 1;
                eprintln!(
                    "trial {trial}: {} differs from the complete output",
                    c.output
                );
            }
        }
        let tmp = temp_files(&out_dir);
        leftovers += tmp.len();
        // The next run of the same conversion completes and sweeps the leftovers.
        let mut a = vec!["convert", c.input.to_str().unwrap(), out.to_str().unwrap()];
        a.extend(c.args);
        run(&a);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            c.reference,
            "trial {trial}: rerun differs"
        );
        assert!(
            temp_files(&out_dir).is_empty(),
            "trial {trial}: {tmp:?} survived the rerun"
        );
        std::fs::remove_file(&out).unwrap();
    }
    eprintln!(
        "SIGKILL: {trials} trials over {} conversions: {killed} killed mid-run, {finished} finished \
         first, {partial} partial outputs, {leftovers} temporary files left by kills (all removed \
         by the next run)",
        cases.len()
    );
    assert_eq!(partial, 0);
    assert!(
        killed >= trials / 2,
        "too few kills landed mid-run: {killed}"
    );
}

/// Unmounts on drop, so a failing assertion does not leave the mount behind.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_file_system_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("in.safetensors");
    checkpoint(&st);
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?): the ENOSPC test is skipped");
        return;
    }
    let _guard = Tmpfs(mnt.clone());
    let mut failures = 0;
    for (output, args) in [
        ("a.hct", &[][..]),
        ("b.hct", &["--codec", "int4_opt_v1"][..]),
        ("c.gguf", &[][..]),
        ("d.safetensors", &[][..]),
    ] {
        let out = mnt.join(output);
        let o = bin()
            .arg("convert")
            .arg(&st)
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // int4 output (~7 MB of 24 MB) does not fit either, at 4 MiB.
        assert_eq!(o.status.code(), Some(3), "{output}: {err}");
        assert!(err.contains("No space left on device"), "{output}: {err}");
        assert!(
            err.contains(output),
            "{output}: the message must name the output: {err}"
        );
        assert!(!out.exists(), "{output}: partial output");
        assert!(temp_files(&mnt).is_empty(), "{output}: temporary file left");
        failures += 1;
    }
    eprintln!("ENOSPC: {failures} conversions into a 4 MiB tmpfs, all exit 3, no file left");
}
