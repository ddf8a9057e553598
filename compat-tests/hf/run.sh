#!/usr/bin/env bash
# From a Hugging Face folder to llama.cpp: llama.cpp's convert_hf_to_gguf.py (pinned, convert venv)
# and `hct convert FOLDER out.gguf` on the same folders (all-MiniLM-L6-v2 as fetched; SmolLM2 as
# transformers saves it from the pinned GGUF, see smollm2_hf.sh), then:
#   - the two GGUFs have the same metadata (keys, types, values; deliberate differences listed)
#     and the same tensors (names, shapes, types, bytes), judged by llama.cpp's gguf-py;
#   - stock llama.cpp gives the same perplexity (SmolLM2) and the same embeddings (MiniLM);
#   - hct's output is identical at 1 and 2 threads and through an HCT file;
#   - peak RSS and wall time of both converters, same run (/usr/bin/time -v).
# Then the SentencePiece checkpoints of sp_checkpoints.sh (Gemma 2, Gemma 3, Llama 2, random
# weights) and config variants of them (rope_scaling linear and yarn; Gemma 3 with more embedding
# rows than tokens): the same GGUF comparison, and on both GGUFs the same perplexity, the same
# saved logits (llama-perplexity --kl-divergence-base files, byte for byte) and the same greedy
# continuation (llama-simple).
# The reverse direction (smollm2-to-hf): SmolLM2's folder -> hct's GGUF -> `hct convert --to hf`,
# judged by transformers against the original folder (check_hf_export.py) and against llama.cpp's
# own logits on the GGUF (to_hf_vs_llama.sh). llama2-to-hf: the same for the Llama 2 SentencePiece
# checkpoint, plus convert_hf_to_gguf.py on the exported folder against the original's.
# Arguments: the models to check (default all): minilm smollm2 qwen2 gemma2 gemma3 llama2
# llama2-rope-linear llama2-rope-yarn llama2-rope-llama3 gemma3-trim smollm2-to-hf llama2-to-hf.
# Results: one JSON object per line on stdout. Needs `compat-tests/peers.sh fetch build`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/compat-tests/hf"
eval "$(bash "$root/compat-tests/peers.sh" env)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
work="${HCT_HF_WORK:-$(mktemp -d)}"
trap '[ -n "${HCT_HF_WORK:-}" ] || rm -rf "$work"' EXIT
say() { printf '\n== %s\n' "$*" >&2; }
py="$HCT_PEERS_PYTHON"

# measured NAME CMD...: runs CMD under /usr/bin/time -v, prints a JSON line with wall time and peak RSS.
measured() {
    local name="$1"; shift
    /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 ||
        { tail -30 "$work/$name.log" >&2; echo "$name failed" >&2; exit 1; }
    "$py" - "$name" "$work/$name.time" <<'PY'
import json, re, sys
t = open(sys.argv[2]).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t)
h, m, s = (float(x) if x else 0.0 for x in wall.groups())
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(json.dumps({"step": sys.argv[1], "wall_s": round(h * 3600 + m * 60 + s, 2), "peak_rss_mib": round(rss / 1024, 1)}))
PY
}

py_convert() { # NAME FOLDER OUT
    measured "$1" env HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$HCT_CONVERT_PYTHON" \
        "$HCT_LLAMA_SRC/convert_hf_to_gguf.py" "$2" --outtype f32 --outfile "$3"
}

# Keys that differ on purpose (see the README section "From Hugging Face to llama.cpp"): the model
# card fields convert_hf_to_gguf.py reads from README.md (not a file HCT carries) and the name it
# derives from the folder name.
allow=()
for k in general.name general.basename general.finetune general.organization general.license general.tags \
         general.languages general.dataset. general.base_model. general.repo_url general.version; do
    allow+=(--allow-key-prefix "$k")
done

check_model() { # NAME FOLDER
    local m="$1" dir="$2"
    say "$m: convert_hf_to_gguf.py and hct convert on $dir"
    py_convert "$m-python" "$dir" "$work/$m.py.gguf"
    measured "$m-hct-t1" "$hct" convert "$dir" "$work/$m.hct.gguf" --threads 1
    measured "$m-hct-t2" "$hct" convert "$dir" "$work/$m.hct-t2.gguf" --threads 2
    cmp "$work/$m.hct.gguf" "$work/$m.hct-t2.gguf"
    "$hct" convert "$dir" "$work/$m.hct" >/dev/null
    "$hct" convert "$work/$m.hct" "$work/$m.via-hct.gguf" >/dev/null
    cmp "$work/$m.hct.gguf" "$work/$m.via-hct.gguf"
    echo "{\"model\": \"$m\", \"hct_threads_1_vs_2_identical\": true, \"folder_vs_via_hct_identical\": true}"
    "$py" "$here/compare_gguf.py" "$work/$m.py.gguf" "$work/$m.hct.gguf" "${allow[@]}" >"$work/$m.compare.json" ||
        { cat "$work/$m.compare.json" >&2; echo "$m: GGUFs differ" >&2; exit 1; }
    "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({"model": sys.argv[2], "keys_compared": r["keys_compared"], "keys_equal": r["keys_equal"], "tensors_identical": r["tensors_identical"], "deliberate_differences": sorted({(d["key"].split(".")[0] + "." + d["key"].split(".")[1] + (".*" if d["key"].count(".") > 1 else "")) for d in r["deliberate_differences"]})}))' \
        "$work/$m.compare.json" "$m"
}

models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(minilm smollm2 qwen2 gemma2 gemma3 llama2 llama2-rope-linear llama2-rope-yarn llama2-rope-llama3 gemma3-trim smollm2-to-hf llama2-to-hf)
want() { [[ " ${models[*]} " == *" $1 "* ]]; }

if want minilm; then
check_model minilm "$HCT_MINILM_HF"
say "minilm: llama-embedding on both"
bash "$root/compat-tests/peers.sh" embed "$work/minilm.py.gguf" --vectors >"$work/minilm.py.embed.json"
bash "$root/compat-tests/peers.sh" embed "$work/minilm.hct.gguf" --vectors >"$work/minilm.hct.embed.json"
"$py" - "$work/minilm.py.embed.json" "$work/minilm.hct.embed.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
same = a["vectors"] == b["vectors"]
print(json.dumps({"model": "minilm", "sentences": a["sentences"], "embeddings_identical": same}))
sys.exit(0 if same else 1)
PY
fi

if want smollm2 || want qwen2; then
smol_hf="$(bash "$here/smollm2_hf.sh")"
check_model smollm2 "$smol_hf"
say "smollm2: llama-perplexity on both"
a=$(bash "$root/compat-tests/peers.sh" ppl "$work/smollm2.py.gguf")
b=$(bash "$root/compat-tests/peers.sh" ppl "$work/smollm2.hct.gguf")
"$py" - "$a" "$b" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"model": "smollm2", "ppl_python_gguf": a["ppl"], "ppl_hct_gguf": b["ppl"], "equal": a["ppl"] == b["ppl"]}))
sys.exit(0 if a["ppl"] == b["ppl"] else 1)
PY
say "qwen2: SmolLM2's weights under Qwen2's name with zero q/k/v biases (make_qwen2_relabel.py)"
HF_HUB_OFFLINE=1 "$HCT_CONVERT_PYTHON" "$here/make_qwen2_relabel.py" "$smol_hf" "$work/qwen2-relabel"
check_model qwen2 "$work/qwen2-relabel"
c=$(bash "$root/compat-tests/peers.sh" ppl "$work/qwen2.hct.gguf")
"$py" - "$b" "$c" <<'PY'
import json, sys
llama, qwen2 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
# The same function computed by two llama.cpp graphs (llama with reordered rows, qwen2 NeoX-style
# with biases): equal up to float rounding.
close = abs(qwen2["ppl"] / llama["ppl"] - 1) < 1e-3
print(json.dumps({"model": "qwen2-relabeled-smollm2", "ppl_as_qwen2": qwen2["ppl"], "ppl_as_llama": llama["ppl"], "within_0.1%": close}))
sys.exit(0 if close else 1)
PY
fi

# same_run NAME: llama.cpp on NAME's two GGUFs: perplexity, saved logits, greedy continuation.
same_run() {
    local m="$1" side
    say "$m: llama-perplexity (saving logits) and llama-simple on both"
    for side in py hct; do
        # llama.cpp's logger does not always flush its last lines at exit on these small, fast
        # models ("printed no final estimate"): up to three runs.
        local try
        for try in 1 2 3; do
            bash "$root/compat-tests/peers.sh" ppl "$work/$m.$side.gguf" >"$work/$m.$side.ppl.json" && break
            [[ $try -lt 3 ]] || exit 1
        done
        nice "$HCT_LLAMA_BIN/llama-perplexity" -m "$work/$m.$side.gguf" -f "$HCT_TEXT_SLICE" -c 256 --chunks 16 \
            -t 2 --kl-divergence-base "$work/$m.$side.logits" >"$work/$m.$side.logits.log" 2>&1 ||
            { tail -20 "$work/$m.$side.logits.log" >&2; exit 1; }
        nice "$HCT_LLAMA_BIN/llama-simple" -m "$work/$m.$side.gguf" -n 32 "The hacker said that" \
            >"$work/$m.$side.greedy.txt" 2>"$work/$m.$side.greedy.log" ||
            { tail -20 "$work/$m.$side.greedy.log" >&2; exit 1; }
    done
    "$py" - "$m" "$work/$m" <<'PY'
import filecmp, json, sys
m, base = sys.argv[1], sys.argv[2]
ppl = {s: json.load(open(f"{base}.{s}.ppl.json"))["ppl"] for s in ("py", "hct")}
logits = filecmp.cmp(f"{base}.py.logits", f"{base}.hct.logits", shallow=False)
greedy = {s: open(f"{base}.{s}.greedy.txt", encoding="utf-8", errors="replace").read() for s in ("py", "hct")}
ok = ppl["py"] == ppl["hct"] and logits and greedy["py"] == greedy["hct"]
print(json.dumps({"model": m, "ppl_python_gguf": ppl["py"], "ppl_hct_gguf": ppl["hct"],
                  "saved_logits_identical": logits, "greedy_identical": greedy["py"] == greedy["hct"],
                  "greedy_text": greedy["hct"][:120]}))
sys.exit(0 if ok else 1)
PY
}

# variant BASE NAME PYTHON-EXPR: a folder NAME beside BASE's files with config.json edited by
# PYTHON-EXPR (on dict `c`); the weights are symlinked, not copied.
variant() {
    local base="$1" name="$2" expr="$3" f
    rm -rf "$work/$name"; mkdir -p "$work/$name"
    for f in "$base"/*; do [[ "$(basename "$f")" == config.json ]] || ln -s "$f" "$work/$name/"; done
    "$py" - "$base/config.json" "$work/$name/config.json" "$expr" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
    echo "$work/$name"
}

if want gemma2 || want gemma3 || want llama2 || want llama2-rope-linear || want llama2-rope-yarn || want llama2-rope-llama3 || want gemma3-trim; then
    sp="$(bash "$here/sp_checkpoints.sh")"
    for m in gemma2 gemma3 llama2; do
        want "$m" || continue
        check_model "$m" "$sp/$m"
        same_run "$m"
    done
    if want llama2-rope-linear; then
        check_model llama2-rope-linear "$(variant "$sp/llama2" llama2-rope-linear 'c["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}')"
        same_run llama2-rope-linear
    fi
    if want llama2-rope-yarn; then
        check_model llama2-rope-yarn "$(variant "$sp/llama2" llama2-rope-yarn 'c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512, "beta_fast": 32.0, "beta_slow": 1.0}; c["max_position_embeddings"] = 2048')"
        same_run llama2-rope-yarn
    fi
    if want llama2-rope-llama3; then
        # Llama 3.1's scaling: no keys, a generated rope_freqs tensor (3 of its 32 values blended).
        check_model llama2-rope-llama3 "$(variant "$sp/llama2" llama2-rope-llama3 'c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}; c["rope_theta"] = 500000.0; c["max_position_embeddings"] = 131072')"
        same_run llama2-rope-llama3
    fi
    if want gemma3-trim; then
        # Gemma 3's checkpoints have more embedding rows than the vocabulary; llama.cpp keeps one per token.
        check_model gemma3-trim "$(variant "$sp/gemma3" gemma3-trim 'c["vocab_size"] = 2000')"
        same_run gemma3-trim
    fi
fi

if want smollm2-to-hf; then
    say "smollm2: folder -> GGUF -> --to hf, judged by transformers against the original folder"
    smol_hf="$(bash "$here/smollm2_hf.sh")"
    "$hct" convert "$smol_hf" "$work/smollm2-rt.gguf" >/dev/null
    rm -rf "$work/smollm2-back"
    measured smollm2-to-hf-hct "$hct" convert "$work/smollm2-rt.gguf" "$work/smollm2-back" --to hf
    "$hct" convert "$work/smollm2-back" "$work/smollm2-rt2.gguf" >/dev/null
    cmp "$work/smollm2-rt.gguf" "$work/smollm2-rt2.gguf"
    echo '{"model": "smollm2-to-hf", "gguf_of_exported_folder_identical": true}'
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice "$HCT_CONVERT_PYTHON" "$here/check_hf_export.py" \
        "$smol_hf" "$work/smollm2-back" "$HCT_TEXT_SLICE" 2>"$work/smollm2-to-hf.log" ||
        { tail -20 "$work/smollm2-to-hf.log" >&2; exit 1; }
    say "smollm2: the exported folder in transformers against llama.cpp's raw logits on the GGUF"
    bash "$here/to_hf_vs_llama.sh" smollm2
fi

if want llama2-to-hf; then
    say "llama2 (SentencePiece): folder -> GGUF -> --to hf, judged by transformers, by llama.cpp's converter and against llama.cpp"
    l2="$(bash "$here/sp_checkpoints.sh")/llama2"
    "$hct" convert "$l2" "$work/llama2-rt.gguf" >/dev/null
    rm -rf "$work/llama2-back"
    "$hct" convert "$work/llama2-rt.gguf" "$work/llama2-back" --to hf >/dev/null
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice "$HCT_CONVERT_PYTHON" "$here/check_hf_export.py" \
        "$l2" "$work/llama2-back" "$HCT_TEXT_SLICE" 2>"$work/llama2-to-hf.log" ||
        { tail -20 "$work/llama2-to-hf.log" >&2; exit 1; }
    # llama.cpp's own converter reads the exported folder (its tokenizer.model through the
    # sentencepiece library) into the GGUF it makes of the original folder.
    py_convert llama2-original-python "$l2" "$work/llama2-orig.py.gguf"
    py_convert llama2-exported-python "$work/llama2-back" "$work/llama2-back.py.gguf"
    "$py" "$here/compare_gguf.py" "$work/llama2-orig.py.gguf" "$work/llama2-back.py.gguf" "${allow[@]}" \
        >"$work/llama2-back.compare.json" || { cat "$work/llama2-back.compare.json" >&2; exit 1; }
    "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({"model": "llama2-to-hf", "convert_hf_to_gguf_original_vs_exported": {k: r[k] for k in ("keys_compared", "keys_equal", "tensors_identical")}, "differing_keys": sorted(d["key"] for d in r["deliberate_differences"])}))' \
        "$work/llama2-back.compare.json"
    bash "$here/to_hf_vs_llama.sh" llama2
fi

venv="$(dirname "$(dirname "$HCT_CONVERT_PYTHON")")"
echo "{\"python_side_install_mib\": $(du -sm "$venv" | cut -f1), \"venv\": \"$(basename "$venv")\"}"
echo "hf checks: all passed" >&2
