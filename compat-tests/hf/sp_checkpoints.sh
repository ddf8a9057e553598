#!/usr/bin/env bash
# Prints the path of a directory holding three small Hugging Face checkpoints with SentencePiece
# tokenizers, gemma2/, gemma3/ and llama2/, made by make_sp_checkpoint.py in the convert venv
# (sentencepiece trains the tokenizer on the pinned jargon text, transformers writes the
# tokenizer files and seeded random weights), built once into the peers cache.
# Each model.safetensors and tokenizer.model is pinned (pins.txt `<kind>-sp-safetensors`,
# `<kind>-sp-tokenizer-model`): a different hash means a peer changed its output, and
# everything stops.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
eval "$(bash "$here/../peers.sh" env)"
log() { printf '[sp-checkpoints %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pin() { awk -v k="$1" '$1 == k { print $2 }' "$here/../pins.txt"; }
venv="$(dirname "$(dirname "$HCT_CONVERT_PYTHON")")"
[[ -f "$venv/.done" ]] || { log "convert venv missing: run compat-tests/peers.sh build"; exit 1; }
script_hash="$(sha256sum "$here/make_sp_checkpoint.py" | cut -c1-12)"
out="$HCT_PEERS_CACHE/models/sp-checkpoints-$(basename "$venv")-$script_hash"
kinds=(gemma2 gemma3 llama2)
check() { # DIR KIND: the pinned files match
    local f key got want
    for f in model.safetensors tokenizer.model; do
        key="$2-sp-${f//./-}"; key="${key/model-safetensors/safetensors}"
        got="$(sha256sum "$1/$f" | cut -d' ' -f1)"; want="$(pin "$key")"
        if [[ -z "$want" ]]; then log "no pin yet: $key $got"
        elif [[ "$got" != "$want" ]]; then log "$1/$f sha256 $got, pinned $want ($key): the peer's output changed"; return 1
        fi
    done
}
exec 9>"$HCT_PEERS_CACHE/.lock-sp-checkpoints"
flock 9
if [[ ! -f "$out/.done" ]]; then
    rm -rf "$out.tmp"; mkdir -p "$out.tmp"
    for k in "${kinds[@]}"; do
        log "$k: sentencepiece + transformers (random weights, float32)"
        HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice "$HCT_CONVERT_PYTHON" "$here/make_sp_checkpoint.py" \
            "$k" "$HCT_JARGON_TXT" "$out.tmp/$k" >"$out.tmp/$k.log" 2>&1 || { tail -30 "$out.tmp/$k.log" >&2; exit 1; }
        check "$out.tmp/$k" "$k"
    done
    touch "$out.tmp/.done"
    rm -rf "$out"; mv "$out.tmp" "$out"
fi
for k in "${kinds[@]}"; do check "$out/$k" "$k" || { log "cached $out/$k does not match its pins"; exit 1; }; done
echo "$out"
