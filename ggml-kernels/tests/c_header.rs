//! `include/hct.h` and the library must agree. Two checks:
//!
//! 1. The header is what cbindgen generates from `src/capi/` today, byte for byte: a changed
//!    Rust signature, struct or constant without a regenerated header fails here.
//!    `HCT_BLESS_HEADER=1 cargo test -p hct-kernels --test c_header` rewrites it.
//! 2. A C program compiled against the checked-in header and linked with the `libhct.a`
//!    this test run built: it takes the address of every function the header declares (a
//!    declared function missing from the library fails to link), prints `sizeof`, alignment
//!    and every field offset of every struct the header defines (compared here with the Rust
//!    layouts), and calls the API on the spec's golden file.
//!
//! The C compiler is `cc`, or `$HCT_TEST_CC`; `$HCT_TEST_RUNNER` (e.g. "qemu-aarch64 -L
//! /usr/aarch64-linux-gnu") runs the program when the tests themselves are cross-compiled
//! (ci-aarch64.sh sets both).

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use hct::capi::codec::hct_codec_traits;
use hct::capi::file::hct_tensor_info;
use hct::capi::hct_version_info;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("include/hct.h")
}

#[test]
fn header_is_what_cbindgen_generates_from_the_sources() {
    // The C API's root module; cbindgen follows its `mod` declarations.
    check_generated_header("cbindgen.toml", "src/capi/mod.rs", &header_path());
}

#[test]
fn plugin_header_is_what_cbindgen_generates_from_the_sources() {
    check_generated_header(
        "cbindgen-ggml.toml",
        "src/ggml_ext.rs",
        &crate_dir().join("include/hct_ggml.h"),
    );
    let header = std::fs::read_to_string(crate_dir().join("include/hct_ggml.h")).unwrap();
    assert_eq!(
        declared_functions(&header),
        ["hct_ggml_register_all", "hct_ggml_stats_json"],
        "the plugin header declares exactly the plugin's entry points"
    );
}

/// Generates a header from `source` with `config` and compares it with `header`, or rewrites
/// `header` with `HCT_BLESS_HEADER=1`.
fn check_generated_header(config: &str, source: &str, header: &std::path::Path) {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join(config)).expect("cbindgen config");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join(source))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen parses {source}: {e}"))
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    if std::env::var_os("HCT_BLESS_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(header, &generated).expect("write the header");
        return;
    }
    let checked_in = std::fs::read_to_string(header).unwrap_or_default();
    if checked_in != generated {
        let first_difference = checked_in
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}: header has\n  {a}\nsources give\n  {b}", i + 1))
            .unwrap_or_else(|| "one is a prefix of the other".into());
        panic!(
            "{} is out of date with {source} ({first_difference}).\n\
             Regenerate it: HCT_BLESS_HEADER=1 cargo test -p hct-kernels --test c_header",
            header.display()
        );
    }
}

#[test]
fn c_program_links_against_libhct_and_agrees_on_layouts() {
    let header = std::fs::read_to_string(header_path()).expect("include/hct.h");
    let plugin_header =
        std::fs::read_to_string(crate_dir().join("include/hct_ggml.h")).expect("hct_ggml.h");
    let mut functions = declared_functions(&header);
    functions.extend(declared_functions(&plugin_header));
    assert!(
        functions.len() >= 16,
        "the header declares the API: {functions:?}"
    );
    let structs = declared_structs(&header);

    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("abi_check.c");
    std::fs::write(&source, c_program(&functions, &structs)).unwrap();
    let exe = work.path().join("abi_check");
    let lib = static_library();
    let cc = std::env::var("HCT_TEST_CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(crate_dir().join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .arg(&lib)
        // What a Rust staticlib needs from the system on Linux (rustc --print
        // native-static-libs).
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lgcc_s", "-lc"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} (set HCT_TEST_CC): {e}"));
    assert!(
        compiled.status.success(),
        "compiling and linking against {} failed:\n{}",
        lib.display(),
        String::from_utf8_lossy(&compiled.stderr)
    );

    let golden = crate_dir().join("../format-spec/tests/golden/minimal-v1.0.hct");
    let mut run = match std::env::var("HCT_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut c = Command::new(words.next().unwrap());
            c.args(words).arg(&exe);
            c
        }
        _ => Command::new(&exe),
    };
    let ran = run.arg(&golden).output().expect("run the C program");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "the C program failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    println!("{stdout}");
    assert!(
        stdout.contains(&format!("functions {}", functions.len())),
        "{stdout}"
    );
    // The C program's library dispatches as this process does (same CPU, same HCT_ISA).
    let isa = hct::platform::active().isa().name();
    assert!(stdout.contains(&format!(", isa {isa}\n")), "{stdout}");

    // Every struct and field the header defines, against the Rust layout.
    let rust = rust_layouts();
    let mut from_c = BTreeMap::new();
    for line in stdout.lines().filter_map(|l| l.strip_prefix("layout ")) {
        let (key, value) = line.split_once(' ').expect("layout KEY VALUE");
        from_c.insert(key.to_string(), value.parse::<usize>().expect("a number"));
    }
    assert_eq!(
        from_c, rust,
        "C layouts (left, from include/hct.h) differ from the Rust ones (right)"
    );
}

/// Names of the functions the header declares: `hct_name(` at the start of a parameter list
/// (function-pointer typedefs read `(*hct_name_t)(`, so they do not match).
fn declared_functions(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in header.match_indices("hct_") {
        let rest = &header[at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let preceded_by_identifier = header[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded_by_identifier && rest[len..].starts_with('(') {
            let name = rest[..len].to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Each `typedef struct NAME { … } NAME;` with its field names, in order.
fn declared_structs(header: &str) -> Vec<(String, Vec<String>)> {
    let mut structs = Vec::new();
    let mut rest = header;
    while let Some(start) = rest.find("typedef struct ") {
        let after = &rest[start + "typedef struct ".len()..];
        let name_end = after.find([' ', ';']).unwrap();
        let name = after[..name_end].to_string();
        let after_name = &after[name_end..];
        if !after_name.trim_start().starts_with('{') {
            rest = after_name; // an opaque type
            continue;
        }
        let body_end = after_name.find('}').expect("struct body ends");
        let body = &after_name[after_name.find('{').unwrap() + 1..body_end];
        let fields = strip_comments(body)
            .split(';')
            .map(str::trim)
            .filter(|decl| !decl.is_empty())
            .map(|decl| {
                let decl = decl.split('[').next().unwrap();
                let start = decl
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                decl[start..].to_string()
            })
            .collect();
        structs.push((name, fields));
        rest = &after_name[body_end..];
    }
    structs
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("comment ends") + start + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn c_program(functions: &[String], structs: &[(String, Vec<String>)]) -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n#include \"hct.h\"\n#include \"hct_ggml.h\"\n\n",
    );
    c.push_str("typedef void (*any_function)(void);\nstatic const any_function functions[] = {\n");
    for f in functions {
        c.push_str(&format!("    (any_function) {f},\n"));
    }
    c.push_str("};\n\n");
    c.push_str(include_str!("c/abi_check_main.c"));
    c.push_str("\nstatic void print_layouts(void) {\n");
    for (name, fields) in structs {
        c.push_str(&format!(
            "    printf(\"layout {name}.size %zu\\n\", sizeof({name}));\n    \
             printf(\"layout {name}.align %zu\\n\", _Alignof({name}));\n"
        ));
        for field in fields {
            c.push_str(&format!(
                "    printf(\"layout {name}.{field} %zu\\n\", offsetof({name}, {field}));\n"
            ));
        }
    }
    c.push_str("}\n");
    c
}

/// Size, alignment and field offsets of every `#[repr(C)]` struct of the C API. A struct
/// or field the header has and this table lacks (or the reverse) fails the comparison.
fn rust_layouts() -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    macro_rules! layout {
        ($t:ident: $($field:ident),* $(,)?) => {
            m.insert(concat!(stringify!($t), ".size").to_string(), size_of::<$t>());
            m.insert(concat!(stringify!($t), ".align").to_string(), align_of::<$t>());
            $(m.insert(
                concat!(stringify!($t), ".", stringify!($field)).to_string(),
                offset_of!($t, $field),
            );)*
        };
    }
    layout!(hct_version_info: library_major, library_minor, library_patch, spec_major,
        spec_minor, text);
    layout!(hct_codec_traits: codec_id, blck_size, type_size, to_float, vec_dot, vec_dot_type,
        vec_dot_type_name, nrows, from_float);
    layout!(hct_tensor_info: name, name_len, codec_id, source_dtype, n_dims, dims, n_rows,
        row_len, payload, payload_len, payload_offset, traits);
    m
}

/// The `libhct.a` of this build: cargo builds the library with all its crate types before
/// the integration tests, into the `deps/` directory beside them (the copy one level up is
/// only refreshed by `cargo build`, so it may be stale or absent).
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().expect("target/<profile>/deps/<test>");
    let lib = deps.join("libhct.a");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}
