#!/usr/bin/env bash
# Prints the path of a Hugging Face folder of SmolLM2-135M-Instruct made from the pinned Q4_1 GGUF
# by `transformers` (make_smollm2_hf.py, convert venv), building it once into the peers cache.
# Its model.safetensors is pinned (pins.txt `smollm2-hf-safetensors`): a different hash means
# the peer changed its output, and everything stops.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
eval "$(bash "$here/../peers.sh" env)"
log() { printf '[smollm2-hf %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pin() { awk -v k="$1" '$1 == k { print $2 }' "$here/../pins.txt"; }
venv="$(dirname "$(dirname "$HCT_CONVERT_PYTHON")")"
[[ -f "$venv/.done" ]] || { log "convert venv missing: run compat-tests/peers.sh build"; exit 1; }
smol_dir="$(dirname "$HCT_SMOLLM2_Q4_1")"
out="$smol_dir/hf-by-transformers-$(basename "$venv")"
expected="$(pin smollm2-hf-safetensors)"
exec 9>"$HCT_PEERS_CACHE/.lock-smollm2-hf"
flock 9
if [[ ! -f "$out/.done" ]]; then
    # transformers reads GGUF through the gguf package: the one of the same llama.cpp tree.
    sdist16="$(basename "$HCT_LLAMA_SRC")"
    if [[ ! -f "$venv/.gguf-$sdist16" ]]; then
        "$HCT_CONVERT_PYTHON" -m pip install -q --no-deps "$HCT_LLAMA_SRC/gguf-py"
        touch "$venv/.gguf-$sdist16"
    fi
    # transformers also wants accelerate to load a GGUF; it and its one missing dependency go
    # into a side directory, pinned, so the shared convert venv stays as peers.sh made it.
    extra="$venv/../pyextra-accelerate-1.10.1"
    if [[ ! -f "$extra/.done" ]]; then
        rm -rf "$extra"
        "$HCT_CONVERT_PYTHON" -m pip install -q --no-deps --target "$extra" accelerate==1.10.1 psutil==7.1.0
        touch "$extra/.done"
    fi
    log "transformers: SmolLM2 Q4_1 GGUF -> Hugging Face folder (float32)"
    rm -rf "$out.tmp"
    PYTHONPATH="$extra" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$HCT_CONVERT_PYTHON" "$here/make_smollm2_hf.py" \
        "$smol_dir" "$(basename "$HCT_SMOLLM2_Q4_1")" "$out.tmp" >"$smol_dir/hf-by-transformers.log" 2>&1 ||
        { tail -30 "$smol_dir/hf-by-transformers.log" >&2; exit 1; }
    got="$(sha256sum "$out.tmp/model.safetensors" | cut -d' ' -f1)"
    if [[ -n "$expected" && "$got" != "$expected" ]]; then
        log "model.safetensors sha256 $got, pinned $expected: the peer's output changed"; exit 1
    fi
    [[ -n "$expected" ]] || log "no pin yet: smollm2-hf-safetensors $got"
    touch "$out.tmp/.done"
    rm -rf "$out"; mv "$out.tmp" "$out"
fi
got="$(sha256sum "$out/model.safetensors" | cut -d' ' -f1)"
[[ -z "$expected" || "$got" == "$expected" ]] || { log "cached $out/model.safetensors does not match its pin"; exit 1; }
echo "$out"
