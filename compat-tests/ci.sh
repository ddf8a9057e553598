#!/usr/bin/env bash
# Everything CI needs for the real peers, on a clean machine as root: prerequisites, fetch, build,
# then the compat checks. Exits non-zero on any failure; an unreachable registry is a failure here,
# never a skip. Uses the cache of peers.sh ($HCT_PEERS_CACHE, default ~/.cache/hct-peers), so a
# second run costs seconds plus the checks.
#
#   compat-tests/ci.sh                prerequisites + fetch + build + checks, including a full
#                                     recomputation of the baseline table compared with
#                                     results/baseline.json (exactly, on the build key it was made with)
#   compat-tests/ci.sh --no-baseline  the same without the baseline recomputation (saves ~5 minutes)
#
# The Rust tests in compat-tests/tests/ (cargo test -p hct-compat-tests) use the same cache; run
# them after this script.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS="$HERE/peers.sh"
T0=$SECONDS
step() { printf '\n=== [ci.sh +%ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { printf '\n=== [ci.sh] FAILED: %s\n' "$*" >&2; exit 1; }

WITH_BASELINE=1
case "${1:-}" in
    --no-baseline) WITH_BASELINE=0 ;;
    --baseline|"") ;;
    *) fail "unknown option $1 (--no-baseline)" ;;
esac

step "prerequisites (apt: compiler, dpkg tools; Python venv support)"
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v c++ >/dev/null || need_apt+=(g++)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
command -v flock >/dev/null || need_apt+=(util-linux)
command -v objdump >/dev/null || need_apt+=(binutils)
# compat-tests/plugin/build_patched.sh applies the ggml patch with patch(1).
command -v patch >/dev/null || need_apt+=(patch)
# apt-get download of the pinned text needs current package lists anyway.
apt-get update -q >/dev/null || fail "apt-get update: Debian's archive unreachable"
if ((${#need_apt[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null || fail "apt-get install ${need_apt[*]}"
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || fail "python3 lacks venv/ensurepip"

step "fetch (pinned sha256; PyPI and Debian)"
bash "$PEERS" fetch || fail "peers.sh fetch"

step "build (llama.cpp stock, venvs, model GGUFs)"
bash "$PEERS" build || fail "peers.sh build"
peers_exports="$(bash "$PEERS" env)" || fail "peers.sh env"
eval "$peers_exports"

step "C program linked against the built ggml: to_float of Q4_0/Q4_1/Q8_0 blocks, bit for bit"
smoke="$HCT_PEERS_WORK/ggml_traits_smoke"
mkdir -p "$HCT_PEERS_WORK"
cc -O2 -ffp-contract=off -Wall -Wextra -Werror -I"$HCT_GGML_INCLUDE" "$HERE/c/ggml_traits_smoke.c" -o "$smoke" \
    -L"$HCT_GGML_LIB" -lggml-base -lm -Wl,-rpath,"$HCT_GGML_LIB" || fail "compiling ggml_traits_smoke.c"
"$smoke" || fail "ggml_traits_smoke"

step "wrappers return sane numbers"
python_check() { "$HCT_PEERS_PYTHON" -c "$1" || fail "$2"; }
bash "$PEERS" ppl "$HCT_SMOLLM2_F32" --kl-base "$HCT_SMOLLM2_F32" >"$HCT_PEERS_WORK/ci-ppl-self.json" || fail "ppl wrapper"
python_check "
import json; r = json.load(open('$HCT_PEERS_WORK/ci-ppl-self.json'))
print('SmolLM2 F32 ppl', r['ppl'], 'self-KLD', r['kld_mean'], 'top1', r['top1_agreement'])
assert 5 < r['ppl'] < 80 and abs(r['kld_mean']) < 1e-3 and r['top1_agreement'] == 1.0, r
" "SmolLM2 perplexity / self-KL check"
bash "$PEERS" embed "$HCT_MINILM_F32" --reference "$HCT_MINILM_F32" >"$HCT_PEERS_WORK/ci-embed-self.json" || fail "embed wrapper"
python_check "
import json; r = json.load(open('$HCT_PEERS_WORK/ci-embed-self.json'))
print('MiniLM F32 self-cosine', r['mean_cosine'], 'dims', r['dims'])
assert r['dims'] == 384 and abs(r['mean_cosine'] - 1) < 1e-6, r
" "MiniLM self-cosine check"
bash "$PEERS" quantize "$HCT_MINILM_F32" Q4_0 >"$HCT_PEERS_WORK/ci-q4_0.json" || fail "quantize wrapper"
python_check "
import json; r = json.load(open('$HCT_PEERS_WORK/ci-q4_0.json'))
print('MiniLM Q4_0 bits/weight', r['bits_per_weight'])
# Q4_0 is 4.5 bits per weight; MiniLM keeps norms, biases (F32) and the token embedding (Q8_0) wider.
assert 4.5 <= r['bits_per_weight'] < 8, r
" "quantize/bpw check"

if ((WITH_BASELINE)); then
    step "baseline table reproduces results/baseline.json"
    bash "$PEERS" baseline --check || fail "baseline --check"
fi

step "done"
echo "compat-tests/ci.sh: all peer checks passed in $((SECONDS - T0)) s"
