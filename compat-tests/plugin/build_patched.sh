#!/usr/bin/env bash
# Build llama.cpp with the HCT plugin patch, beside the stock build of the peers cache.
#
#   build_patched.sh          build if needed (about as long as the stock build), print the build dir
#   build_patched.sh env      print `export HCT_LLAMA_PATCHED=... HCT_LLAMA_PATCHED_BIN=...` (fails if not built)
#   build_patched.sh status   say whether the build for the current patch exists
#   build_patched.sh bench    also build llama-bench in that build (for bench.sh)
#
# The pinned source (HCT_LLAMA_SRC of `peers.sh env`) is copied, ggml-ext-types.patch is applied
# with `patch -p1 --fuzz=0` (it must apply exactly, or the build stops), and the result is built
# with the stock recipe's cmake flags into
#   $HCT_PEERS_CACHE/llama.cpp/<build key>/patched-<sha256 of the patch, 16 hex>/
# so a changed patch gets a fresh build and an unchanged one is reused. Needs `peers.sh fetch build`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PATCH="$HERE/ggml-ext-types.patch"

# peers.sh lives in compat-tests/ (issue 5's branch); HCT_PEERS_SH can point at another copy.
PEERS_SH="${HCT_PEERS_SH:-$ROOT/compat-tests/peers.sh}"
[[ -f "$PEERS_SH" ]] || { echo "build_patched: $PEERS_SH not found (set HCT_PEERS_SH)" >&2; exit 1; }
eval "$(bash "$PEERS_SH" env)"

# The stock recipe (compat-tests/README.md), unchanged: only the source differs.
CMAKE_FLAGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON
             -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF)
# What run.sh (CI) needs; llama-bench is built on demand by `build_patched.sh bench` (bench.sh),
# which saves CI about two minutes of compiling on a clean machine.
TARGETS=(llama-perplexity llama-embedding llama-simple ggml ggml-base ggml-cpu llama)

PATCH_SHA16="$(sha256sum <"$PATCH" | cut -c1-16)"
DEST="$HCT_PEERS_CACHE/llama.cpp/$HCT_PEERS_BUILD_KEY/patched-$PATCH_SHA16"
TOOLS_BIN="$(dirname "$HCT_PEERS_PYTHON")"

log() { printf '[build_patched %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '\n[build_patched] ERROR: %s\n\n' "$*" >&2; exit 1; }

build() {
    [[ -f "$DEST/.done" ]] && return 0
    mkdir -p "$(dirname "$DEST")"
    exec 8>"$DEST.lock"
    flock 8 || die "cannot lock $DEST.lock"
    [[ -f "$DEST/.done" ]] && return 0
    rm -rf "$DEST"; mkdir -p "$DEST"
    log "copying the pinned source and applying $(basename "$PATCH") (sha256 ${PATCH_SHA16}...)"
    cp -a "$HCT_LLAMA_SRC" "$DEST/src"
    rm -f "$DEST/src/.done" "$DEST/src/.git"
    (cd "$DEST/src" && patch -p1 --fuzz=0 --batch --no-backup-if-mismatch <"$PATCH") >"$DEST/patch.log" 2>&1 ||
        { cat "$DEST/patch.log" >&2; die "the patch does not apply cleanly to $HCT_LLAMA_SRC"; }
    cp "$PATCH" "$DEST/ggml-ext-types.patch"
    log "building in $DEST/build (about as long as the stock build: 10-20 minutes on 2 cores)"
    local t0=$SECONDS
    PATH="$TOOLS_BIN:$PATH" cmake -S "$DEST/src" -B "$DEST/build" "${CMAKE_FLAGS[@]}" >"$DEST/configure.log" 2>&1 ||
        { tail -30 "$DEST/configure.log" >&2; die "cmake configure failed"; }
    PATH="$TOOLS_BIN:$PATH" ninja -C "$DEST/build" -j "$(nproc)" "${TARGETS[@]}" >"$DEST/build.log" 2>&1 ||
        { tail -40 "$DEST/build.log" >&2; die "the patched build failed"; }
    mkdir -p "$DEST/include"
    cp "$DEST/src"/ggml/include/*.h "$DEST/src"/include/llama*.h "$DEST/include/"
    ln -sfn build/bin "$DEST/bin"
    ln -sfn build/bin "$DEST/lib"
    echo "$((SECONDS - t0))" >"$DEST/build-seconds"
    touch "$DEST/.done"
    log "patched llama.cpp built in $((SECONDS - t0)) s"
}

case "${1:-build}" in
    build) build; echo "$DEST" ;;
    env)
        [[ -f "$DEST/.done" ]] || die "no patched build for this patch: run $0"
        printf 'export HCT_LLAMA_PATCHED=%q\nexport HCT_LLAMA_PATCHED_BIN=%q\nexport HCT_LLAMA_PATCHED_INCLUDE=%q\n' \
            "$DEST" "$DEST/bin" "$DEST/include"
        ;;
    bench)
        build
        [[ -x "$DEST/build/bin/llama-bench" ]] ||
            PATH="$TOOLS_BIN:$PATH" ninja -C "$DEST/build" -j "$(nproc)" llama-bench >>"$DEST/build.log" 2>&1 ||
            { tail -40 "$DEST/build.log" >&2; die "building llama-bench failed"; }
        echo "$DEST" ;;
    status)
        if [[ -f "$DEST/.done" ]]; then echo "built: $DEST"; else echo "not built: $DEST"; exit 1; fi ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
