//! Attacks on `hct convert` found by hostile testing (damaged sources, output-path tricks,
//! amplification, surprising output), one test each, named after the attack. Each checks
//! the exit code, that the message names what is wrong, and that nothing is left behind.

use hct_format::value::{Metadata, Value};
use hct_format::{TensorDesc, Writer};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

fn hct(args: &[&OsStr]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    (o.status.code().unwrap_or(-1), err)
}

fn convert(input: &Path, output: &Path, extra: &[&str]) -> (i32, String) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("convert"), input.as_os_str(), output.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    hct(&args)
}

fn f32_payload(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (((i * 37) % 101) as f32 / 50.0 - 1.0).to_le_bytes())
        .collect()
}

fn desc(name: &str, shape: &[u64], codec: &str) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        source_dtype: codec.into(),
        codec: codec.into(),
        codec_params: vec![],
    }
}

/// An HCT file with an f32 matrix `w` [4, 64] and an f32 vector `b` [64].
fn small_hct(path: &Path, meta: Metadata) {
    let mut w = Writer::create(path).unwrap();
    w.add_tensor(desc("w", &[4, 64], "f32"), &f32_payload(256))
        .unwrap();
    w.add_tensor(desc("b", &[64], "f32"), &f32_payload(64))
        .unwrap();
    w.finish(meta).unwrap();
}

/// Names of the files in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Offset of the first byte of tensor `name`'s payload in an HCT file.
fn payload_offset(path: &Path, name: &str) -> usize {
    let f = hct_format::HctFile::open(path).unwrap();
    f.tensor(name).unwrap().offset as usize
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

/// Item 1. Attack: flip one payload byte of an HCT file and convert it; before, the damage
/// was re-hashed into a new "valid" file with exit 0. Every output format and the
/// re-encoding path must refuse with exit 5 naming the tensor, and write nothing.
#[test]
fn damaged_hct_payload_is_refused_by_every_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    flip(&src, payload_offset(&src, "w") + 100);
    let cases: [(&str, &[&str]); 6] = [
        ("copy.hct", &[]),
        ("reencoded.hct", &["--codec", "int4_g32_fp16_v1"]),
        ("out.gguf", &[]),
        (
            "decoded.gguf",
            &["--gguf-mode", "decoded", "--dtype", "f16"],
        ),
        ("out.safetensors", &[]),
        ("decoded.safetensors", &["--dtype", "bf16"]),
    ];
    for (name, extra) in cases {
        let out = dir.path().join(name);
        let (code, err) = convert(&src, &out, extra);
        assert_eq!(code, 5, "{name}: {err}");
        assert!(
            err.contains("\"w\"") && err.contains("in.hct"),
            "{name}: {err}"
        );
        assert!(err.contains("checksum"), "{name}: {err}");
        assert!(!out.exists(), "{name}: output written from damaged data");
    }
    assert_eq!(listing(dir.path()), ["in.hct"], "leftover files");
}

/// Item 1. Attack: flip one tensor byte of a plugin GGUF (which records every tensor's
/// SHA-256) and convert it back to HCT or safetensors.
#[test]
fn damaged_plugin_gguf_tensor_is_refused_by_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    let q = dir.path().join("q.hct");
    let (code, err) = convert(&src, &q, &["--codec", "int4_opt_v1"]);
    assert_eq!(code, 0, "{err}");
    let plugin = dir.path().join("plugin.gguf");
    let (code, err) = convert(&q, &plugin, &["--gguf-mode", "plugin"]);
    assert_eq!(code, 0, "{err}");
    // The intact file converts.
    let back = dir.path().join("back.hct");
    let (code, err) = convert(&plugin, &back, &[]);
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(&back).unwrap();
    let g = hct_format::gguf::GgufFile::open(&plugin).unwrap();
    let i = g.find_tensor("w").unwrap();
    let at = (g.data_offset() + g.tensors()[i].offset) as usize + 5;
    drop(g);
    flip(&plugin, at);
    for (name, extra) in [
        ("back.hct", &[][..]),
        ("back.safetensors", &["--dtype", "f32"][..]),
    ] {
        let out = dir.path().join(name);
        let (code, err) = convert(&plugin, &out, extra);
        assert_eq!(code, 5, "{name}: {err}");
        assert!(
            err.contains("\"w\"") && err.contains("plugin.gguf"),
            "{name}: {err}"
        );
        assert!(!out.exists());
    }
}

/// Item 2. Attack: put a FIFO, a symlink, a directory or a device node at the output path.
/// Before, the final rename replaced it with a regular file (exit 0); as root,
/// `hct convert x.hct /dev/null` replaced the device. Now: exit 3, target untouched.
#[test]
fn output_path_that_is_not_a_regular_file_is_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    let precious = dir.path().join("precious.gguf");
    std::fs::write(&precious, b"keep").unwrap();

    let fifo = dir.path().join("fifo.gguf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let link = dir.path().join("link.gguf");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let subdir = dir.path().join("dir.gguf");
    std::fs::create_dir(&subdir).unwrap();
    let mut targets = vec![
        (fifo.clone(), "FIFO"),
        (link.clone(), "symbolic link"),
        (subdir.clone(), "directory"),
    ];
    // A device node of our own (the null device's numbers), when we may create one.
    let dev = dir.path().join("dev.gguf");
    let c = std::ffi::CString::new(dev.to_str().unwrap()).unwrap();
    // SAFETY: mknod with a valid C string; the node lives in our temporary directory.
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0 {
        targets.push((dev.clone(), "character device"));
    } else {
        eprintln!("not root: the device-node case is skipped");
    }
    for (target, what) in &targets {
        let (code, err) = convert(&src, target, &[]);
        assert_eq!(code, 3, "{what}: {err}");
        assert!(
            err.contains(what) && err.contains("not a regular file"),
            "{what}: {err}"
        );
        let ft = std::fs::symlink_metadata(target).unwrap().file_type();
        assert!(!ft.is_file(), "{what} was replaced by a regular file");
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(std::fs::read_link(&link).unwrap(), precious);
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep");
    for f in listing(dir.path()) {
        assert!(!f.ends_with(".tmp"), "temporary file left: {f}");
    }
}

/// Item 3. Attack: a valid 2 KB HCT carrying `general.alignment` = 2^22 becomes a GGUF
/// padded to tens of MiB (and a 57-byte GGUF with 2^31 one of 2 GiB). Refused now.
#[test]
fn huge_alignment_key_does_not_amplify_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(
        &src,
        vec![("general.alignment".into(), Value::U32(1 << 22))],
    );
    let out = dir.path().join("out.gguf");
    let (code, err) = convert(&src, &out, &[]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("general.alignment") && err.contains("4194304"),
        "{err}"
    );
    assert!(!out.exists());
    // Item 10: the plugin mode encodes the header in memory first; its error named the
    // file `<memory>` instead of the output.
    let (code, err) = convert(&src, &out, &["--gguf-mode", "plugin"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("out.gguf") && !err.contains("<memory>"),
        "{err}"
    );
    assert!(!out.exists());

    let mut g = b"GGUF".to_vec();
    g.extend(3u32.to_le_bytes());
    g.extend(0u64.to_le_bytes());
    g.extend(1u64.to_le_bytes());
    g.extend(17u64.to_le_bytes());
    g.extend(b"general.alignment");
    g.extend(4u32.to_le_bytes());
    g.extend((1u32 << 31).to_le_bytes());
    assert_eq!(g.len(), 57);
    let tiny = dir.path().join("tiny.gguf");
    std::fs::write(&tiny, &g).unwrap();
    let out = dir.path().join("big.gguf");
    let (code, err) = convert(&tiny, &out, &["--to", "gguf"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("2147483648") && err.contains("tiny.gguf"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A safetensors file of `n` one-element f32 tensors.
fn many_tensor_safetensors(path: &Path, n: usize) {
    let mut header = String::from("{");
    for i in 0..n {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""t{i}":{{"dtype":"F32","shape":[1],"data_offsets":[{},{}]}}"#,
            i * 4,
            i * 4 + 4
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.resize(b.len() + 4 * n, 0);
    std::fs::write(path, b).unwrap();
}

/// Item 4. Attack: 160,000 tiny tensors (an 11 MB file). Releasing each tensor's pages
/// searched the tensor list linearly, so the conversion was quadratic and did not finish in
/// 30 s. Not a speed test: the bound is many times the linear time, far below quadratic.
#[test]
fn many_tiny_tensors_do_not_take_quadratic_time() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("many.safetensors");
    many_tensor_safetensors(&src, 160_000);
    let start = std::time::Instant::now();
    let out = dir.path().join("many.hct");
    let (code, err) = convert(&src, &out, &[]);
    assert_eq!(code, 0, "{err}");
    let secs = start.elapsed().as_secs_f64();
    assert!(secs < 120.0, "160,000 tensors took {secs:.0} s");
    let f = hct_format::HctFile::open(&out).unwrap();
    assert_eq!(f.tensors().len(), 160_000);
}

/// Item 6. Attack: a tensor named `__metadata__` became a safetensors file our own reader
/// (and every other) rejects, with exit 0. Refused now (exit 6), nothing written.
#[test]
fn tensor_named_metadata_key_is_refused_for_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    let mut w = Writer::create(&src).unwrap();
    w.add_tensor(desc("__metadata__", &[2], "f32"), &f32_payload(2))
        .unwrap();
    w.finish(vec![]).unwrap();
    let out = dir.path().join("out.safetensors");
    let (code, err) = convert(&src, &out, &[]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("__metadata__") && err.contains("in.hct"),
        "{err}"
    );
    assert_eq!(listing(dir.path()), ["in.hct"]);
}

/// Item 6. Attack: `hf.file.<name>` keys naming dotfiles, nested paths or unknown files
/// were all written by `--side-files`. Only the checkpoint files the reader records are
/// written now, atomically; the rest are skipped.
#[test]
fn side_files_are_limited_to_known_checkpoint_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    let file = |name: &str, text: &str| (format!("hf.file.{name}"), Value::string(text));
    small_hct(
        &src,
        vec![
            file("config.json", "{}"),
            file("1_Pooling/config.json", "{\"pooling\":1}"),
            file(".bashrc", "evil"),
            file("deep/nested/x.json", "evil"),
            file("weights.bin", "evil"),
        ],
    );
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("model.safetensors");
    let (code, err) = convert(&src, &out, &["--side-files"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        listing(&outdir),
        ["1_Pooling", "config.json", "model.safetensors"]
    );
    assert_eq!(listing(&outdir.join("1_Pooling")), ["config.json"]);
    assert_eq!(std::fs::read(outdir.join("config.json")).unwrap(), b"{}");
}

/// Item 8. Attack: command-line mistakes exited 1 ("failure") instead of 2 ("usage"), I/O
/// failures writing safetensors 1 instead of 3, a missing decoder 1 instead of 6, and an
/// absurd --threads failed with a doubled OS message naming nothing.
#[test]
fn exit_codes_match_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    let out_hct = dir.path().join("o.hct");
    let out_gguf = dir.path().join("o.gguf");
    let usage: [(&Path, &[&str], &str); 6] = [
        (&out_hct, &["--codec", "no_such_codec"], "no_such_codec"),
        (&out_gguf, &["--codec", "f16"], "--codec"),
        (&out_hct, &["--keep", "[unclosed"], "[unclosed"),
        (&dir.path().join("o.weird"), &[], "o.weird"),
        (&out_gguf, &["--gguf-mode", "decoded"], "--dtype"),
        (&out_hct, &["--threads", "100000000"], "--threads"),
    ];
    for (out, extra, needle) in usage {
        let (code, err) = convert(&src, out, extra);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    // A codec the output format cannot hold, without --dtype to decode it.
    let q = dir.path().join("q.hct");
    let (code, err) = convert(&src, &q, &["--codec", "int4_opt_v1"]);
    assert_eq!(code, 0, "{err}");
    for out in ["q.gguf", "q.safetensors"] {
        let (code, err) = convert(&q, &dir.path().join(out), &[]);
        assert_eq!(code, 2, "{out}: {err}");
        assert!(
            err.contains("--dtype") && err.contains("\"w\""),
            "{out}: {err}"
        );
    }
    let (code, err) = convert(&src, &dir.path().join("missing-dir/o.safetensors"), &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("missing-dir"), "{err}");

    let q81 = dir.path().join("q81.hct");
    let mut w = Writer::create(&q81).unwrap();
    w.add_tensor(desc("q", &[1, 32], "ggml_q8_1"), &[0u8; 36])
        .unwrap();
    w.finish(vec![]).unwrap();
    let (code, err) = convert(&q81, &dir.path().join("q.safetensors"), &["--dtype", "f32"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("ggml_q8_1") && err.contains("\"q\""), "{err}");
    assert!(listing(dir.path()).iter().all(|f| f.ends_with(".hct")));
}

/// Item 10. Attack: error paths that printed the OS text twice, or called a directory
/// "no such device" (mmap's ENODEV).
#[test]
fn error_messages_say_it_once_and_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    for out in ["nowhere/o.hct", "nowhere/o.gguf", "nowhere/o.safetensors"] {
        let (code, err) = convert(&src, &dir.path().join(out), &[]);
        assert_eq!(code, 3, "{err}");
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
        assert!(err.contains("nowhere"), "{err}");
    }
    let d = dir.path().join("folder.hct");
    std::fs::create_dir(&d).unwrap();
    let (_, err) = hct(&[OsStr::new("inspect"), d.as_os_str()]);
    assert!(
        err.contains("directory") && !err.contains("No such device"),
        "{err}"
    );
    for cmd in ["validate", "verify"] {
        let (code, err) = hct(&[OsStr::new(cmd), d.as_os_str()]);
        assert_eq!(code, 3, "{cmd}: {err}");
        assert!(
            err.contains("directory") && !err.contains("No such device"),
            "{cmd}: {err}"
        );
    }
    let (code, err) = convert(&d, &dir.path().join("o.gguf"), &["--from", "hct"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("directory") && !err.contains("No such device"),
        "{err}"
    );
}

/// Item 12. Attack: a killed conversion left `.NAME.XXXXXX.tmp` beside the output for ever;
/// the next run of the same output removes it (it holds no lock).
#[test]
fn stale_temporary_file_is_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    for out in ["o.hct", "o.gguf", "o.safetensors"] {
        let stale = dir.path().join(format!(".{out}.Xy12Zw.tmp"));
        std::fs::write(&stale, b"half a file").unwrap();
        let (code, err) = convert(&src, &dir.path().join(out), &[]);
        assert_eq!(code, 0, "{err}");
        assert!(!stale.exists(), "{out}: stale temporary file survived");
    }
}

/// Item 12. Attack (inconsistency): safetensors outputs were 0600, the others 0644. All
/// formats now get what any new file gets under the umask.
#[test]
fn output_mode_is_the_same_for_every_format() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.hct");
    small_hct(&src, vec![]);
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"").unwrap();
    let expected = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
    for out in ["o.hct", "o.gguf", "o.safetensors"] {
        let p = dir.path().join(out);
        let (code, err) = convert(&src, &p, &[]);
        assert_eq!(code, 0, "{err}");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, expected,
            "{out}: mode {mode:o}, a new file gets {expected:o}"
        );
    }
}

/// Item 12. Attack: a safetensors header with a tensor name twice (JSON keeps the last one,
/// so tools disagree on the data). Refused, exit 4, naming the key.
#[test]
fn duplicate_json_keys_in_safetensors_header_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, header) in [
        (
            "dup-tensor.safetensors",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        ),
        (
            "dup-meta.safetensors",
            r#"{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        ),
    ] {
        let mut h = header.to_string();
        while h.len() % 8 != 0 {
            h.push(' ');
        }
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend(h.as_bytes());
        b.resize(b.len() + 8, 0);
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        let out = dir.path().join("o.hct");
        let (code, err) = convert(&p, &out, &[]);
        assert_eq!(code, 4, "{name}: {err}");
        assert!(
            err.contains("appears twice") && err.contains(name),
            "{name}: {err}"
        );
        assert!(!out.exists());
    }
}

/// Item 9. Attack: shrink the input while it is mapped. The next access past the new end
/// raised SIGBUS and the process died without a word. Now: a message and exit 3, no output.
#[test]
fn input_truncated_during_conversion_reports_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.safetensors");
    let rows = 8192usize;
    let cols = 4096usize;
    let data = vec![0x3cu8; rows * cols * 4];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, cols], &data)
            .unwrap();
    safetensors::serialize_to_file([("w", view)], None, &src).unwrap();
    drop(data);
    let out = dir.path().join("o.hct");
    let child = Command::new(env!("CARGO_BIN_EXE_hct"))
        .args(["convert", "--codec", "int4_opt_v1", "--threads", "1"])
        .arg(&src)
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the conversion has started writing, then cut the input short.
    let start = std::time::Instant::now();
    while !listing(dir.path()).iter().any(|f| f.ends_with(".tmp")) {
        assert!(start.elapsed().as_secs() < 60, "conversion never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&src)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("SIGBUS") && err.contains("shorter"), "{err}");
    assert!(!out.exists());
}

/// Found by the `convert` fuzz target: ggml accepts `ne = [0, 2^40, 2^40]` as an empty
/// tensor (it multiplies innermost first, reaching 0 at once), but HCT's order is the
/// reverse, where the running product overflows before the 0. The export's element count
/// overflowed (a panic in debug builds); now the input is refused for every output.
#[test]
fn empty_gguf_tensor_with_huge_dimensions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = b"GGUF".to_vec();
    g.extend(3u32.to_le_bytes());
    g.extend(1u64.to_le_bytes()); // tensors
    g.extend(0u64.to_le_bytes()); // metadata entries
    g.extend(1u64.to_le_bytes());
    g.extend(b"w");
    g.extend(3u32.to_le_bytes());
    for ne in [0u64, 1 << 40, 1 << 40] {
        g.extend(ne.to_le_bytes());
    }
    g.extend(0u32.to_le_bytes()); // F32
    g.extend(0u64.to_le_bytes()); // offset
    g.resize(g.len().next_multiple_of(32), 0);
    let src = dir.path().join("empty.gguf");
    std::fs::write(&src, &g).unwrap();
    for (name, extra) in [
        ("out.hct", &[][..]),
        ("out.gguf", &[][..]),
        ("out.safetensors", &[][..]),
        ("plugin.gguf", &["--gguf-mode", "plugin"][..]),
    ] {
        let out = dir.path().join(name);
        let (code, err) = convert(&src, &out, extra);
        assert_eq!(code, 4, "{name}: {err}");
        assert!(
            err.contains("empty.gguf") && err.contains("\"w\"") && err.contains("2^64"),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}");
    }
}
