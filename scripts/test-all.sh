#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs (Rust components,
# Debian and PyPI packages), builds, runs the unit and integration tests, the aarch64
# (NEON) tests under qemu, and the tests against real peers (llama.cpp built from source,
# PyPI gguf/safetensors, real models). Safe to re-run: installs and peer builds are cached.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n== %s\n' "$*"; }

say "build (release)"
cargo build --release --workspace --locked

say "unit and integration tests"
cargo test --workspace --locked

if [ -f ggml-kernels/ci-aarch64.sh ]; then
  say "aarch64 (NEON) kernel tests under qemu"
  bash ggml-kernels/ci-aarch64.sh
fi

if [ -f compat-tests/ci.sh ]; then
  say "peers: fetch, build and check llama.cpp, models and text"
  bash compat-tests/ci.sh
  say "conversions judged by the peers (gguf-py, safetensors, llama-perplexity)"
  bash compat-tests/convert/run.sh
fi
say "all test stages passed"
