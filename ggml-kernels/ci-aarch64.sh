#!/usr/bin/env bash
# Runs hct-kernels' tests on AArch64 under qemu user-mode emulation, so the NEON kernels are
# checked for real against the scalar reference on any x86-64 host. Installs what it needs
# (Debian packages, the Rust target) only when missing. Run from anywhere in the checkout.
set -euo pipefail

workspace="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=aarch64-unknown-linux-gnu

need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need_apt+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
if [ ${#need_apt[@]} -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}"
fi

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

# Linker and qemu runner come from .cargo/config.toml at the workspace root.
cd "$workspace"
start=$(date +%s)
# HCT_TEST_REQUIRE_ISA turns "NEON not detected, skipping" into a failure. tests/c_header.rs
# compiles a C program against the aarch64 libhct.a and runs it: with the cross compiler, and
# under qemu (the test itself already runs under qemu, but a process it starts does not).
export HCT_TEST_CC=aarch64-linux-gnu-gcc
export HCT_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
HCT_TEST_REQUIRE_ISA=neon cargo test -p hct-kernels --target "$target" "$@"
# The codecs' golden vectors and the container's tests must pass on aarch64 too: the same
# bytes and bits as on x86-64 (a codec id promises that on every CPU).
cargo test -p hct-format --target "$target" --lib --test int4_vectors --test int4_properties \
    --test ggml_vectors --test golden --test spectral_vectors --test shifted_vectors "$@"
echo "ci-aarch64: hct-kernels and hct-format tests passed under qemu-aarch64 in $(( $(date +%s) - start )) s"
