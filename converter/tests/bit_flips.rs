//! The integrity property, through the command line: every single-bit flip of a small real
//! HCT file, and of a small real plugin GGUF, is refused by `hct validate` or `hct verify`,
//! AND by `hct convert` (which then writes nothing). Every bit of both files is tried.

use std::path::Path;
use std::process::Command;

fn hct(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    (o.status.code().unwrap_or(-1), err)
}

fn ok(args: &[&str]) {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let (code, err) = hct(&args);
    assert_eq!(code, 0, "{err}");
}

/// Flip every bit of `good` in turn (spread over two threads); for each damaged copy,
/// `checks` (which must refuse) and `convert` (must refuse and write nothing). Returns
/// the number of flips tried.
fn every_flip(good: &[u8], ext: &str, checks: &[&[&str]], out_ext: &str) -> usize {
    let bits = good.len() * 8;
    let missed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for part in 0..2 {
            let missed = &missed;
            s.spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let f = dir.path().join(format!("flipped.{ext}"));
                let out = dir.path().join(format!("out.{out_ext}"));
                for bit in (part..bits).step_by(2) {
                    let mut b = good.to_vec();
                    b[bit / 8] ^= 1 << (bit % 8);
                    std::fs::write(&f, &b).unwrap();
                    let checked = checks.iter().any(|c| {
                        let mut args: Vec<&std::ffi::OsStr> =
                            c.iter().map(std::ffi::OsStr::new).collect();
                        args.push(f.as_os_str());
                        hct(&args).0 != 0
                    });
                    let (code, _) = hct(&["convert".as_ref(), f.as_os_str(), out.as_os_str()]);
                    let converted = code == 0;
                    if !checked || converted || out.exists() {
                        missed
                            .lock()
                            .unwrap()
                            .push((bit / 8, bit % 8, checked, converted));
                        let _ = std::fs::remove_file(&out);
                    }
                }
                let left: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert_eq!(left.len(), 1, "leftover files: {left:?}");
            });
        }
    });
    let missed = missed.into_inner().unwrap();
    assert!(
        missed.is_empty(),
        "{} of {bits} flips not refused (byte, bit, caught by checks, converted): {missed:?}",
        missed.len()
    );
    bits
}

fn small_hct(path: &Path) {
    let mut w = hct_format::Writer::create(path).unwrap();
    let values: Vec<u8> = (0..32)
        .flat_map(|i| (i as f32 * 0.25 - 3.0).to_le_bytes())
        .collect();
    w.add_tensor(
        hct_format::TensorDesc {
            name: "w".into(),
            shape: vec![1, 32],
            source_dtype: "f32".into(),
            codec: "f32".into(),
            codec_params: vec![],
        },
        &values,
    )
    .unwrap();
    w.finish(vec![(
        "general.name".into(),
        hct_format::Value::string("flip"),
    )])
    .unwrap();
}

#[test]
fn every_bit_flip_of_an_hct_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.hct");
    small_hct(&p);
    let good = std::fs::read(&p).unwrap();
    let n = every_flip(&good, "hct", &[&["verify"], &["validate"]], "hct");
    eprintln!(
        "HCT: {n} single-bit flips of a {}-byte file, all refused",
        good.len()
    );
}

#[test]
fn every_bit_flip_of_a_plugin_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.hct");
    small_hct(&p);
    let q = dir.path().join("q.hct");
    ok(&[
        "convert",
        p.to_str().unwrap(),
        q.to_str().unwrap(),
        "--codec",
        "int4_opt_v1",
    ]);
    let g = dir.path().join("p.gguf");
    ok(&[
        "convert",
        q.to_str().unwrap(),
        g.to_str().unwrap(),
        "--gguf-mode",
        "plugin",
    ]);
    ok(&["verify", g.to_str().unwrap()]);
    let good = std::fs::read(&g).unwrap();
    let n = every_flip(&good, "gguf", &[&["verify"]], "hct");
    eprintln!(
        "plugin GGUF: {n} single-bit flips of a {}-byte file, all refused",
        good.len()
    );
}
