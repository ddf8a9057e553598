#!/usr/bin/env bash
# Speed of HCT files in llama.cpp through libhct against stock llama.cpp on the same models, in one
# run: `llama-bench -p 256 -n 64 -t 1,2 -r 1` per model and round, on
#   smollm2  SmolLM2-135M (the F32 GGUF of the peers cache): compute-bound, cache-resident rows
#   1b       the memory-bound model of compat-tests/bench/bench_model.sh (llama architecture,
#            ~1.07 B parameters, random F16 weights, SmolLM2's tokenizer)
# each as
#   plugin int4_g32_fp16_v1        patched llama.cpp + libhct, fast mode (multi-row kernel)
#   plugin int4_g32_fp16_v1 pairs  the same with HCT_PLUGIN_GEMM=0 (vec_dot per row pair, as before
#                                  the multi-row hook): what the hook itself is worth
#   plugin int4_opt_v1             fast mode (multi-row kernel)
#   stock Q4_1, Q4_K_M, F16        llama-quantize of the same source model
# Plugin rows code every 2-D tensor (token embedding / tied output included). Every row runs the same
# llama-bench program (the stock build's: the patch changes no line of it); plugin rows load the
# patched build's libraries instead (LD_LIBRARY_PATH, which the dynamic linker searches before the
# binary's RUNPATH) plus libhct (LD_PRELOAD), so stock and plugin differ in the libraries only.
# Rounds are
# interleaved (one repetition of each model per round), so a change in machine load during the run
# hits every model alike; the machine's streaming-read bandwidth (compat-tests/bench/read_bw.c) is
# measured before and after. Prints one JSON object: tokens/s per model set, model, test and thread
# count (median, min, max over rounds), same-run ratios, load averages, and generation speed
# against bandwidth (weight bytes per token × tokens/s ÷ read GB/s).
#
#   bench.sh [ROUNDS]            default 3 rounds; needs `peers.sh fetch build`
#   HCT_BENCH_SETS="smollm2 1b"  which model sets (default both)
#   HCT_BENCH_THREADS=1,2        llama-bench thread counts (default 1,2)
#   HCT_BENCH_ONLY="NAME|NAME"   keep only these models (e.g. "plugin int4_g32_fp16_v1|stock Q4_1")
#   HCT_BENCH_PATCHED_LIBS=DIR   the patched libraries (default: the patched build's lib directory)
#   HCT_BENCH_MODEL_DIR=DIR      the 1b set from an existing bench_model.sh directory (not remade)
#   HCT_BENCH_KEEP=DIR           keep the raw llama-bench JSON of every run there
#   HCT_BENCH_PERF=DIR           also `perf record` pp and tg of plugin int4_g32_fp16_v1 and stock Q4_1
#                                on each set, 2 threads, into DIR (where the time goes)
# Not part of CI: timings are for people, checks are in run.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PEERS_SH="${HCT_PEERS_SH:-$root/compat-tests/peers.sh}"
export HCT_PEERS_SH="$PEERS_SH"
eval "$(bash "$PEERS_SH" env)"
rounds="${1:-3}"
sets="${HCT_BENCH_SETS:-smollm2 1b}"
py="$HCT_PEERS_PYTHON"
if [[ -z "${HCT_BENCH_PATCHED_LIBS:-}" ]]; then
    bash "$here/build_patched.sh" >&2
    eval "$(bash "$here/build_patched.sh" env)"
    HCT_BENCH_PATCHED_LIBS="$HCT_LLAMA_PATCHED/lib"
fi
patched_libs="$HCT_BENCH_PATCHED_LIBS"
[[ -e "$patched_libs/libggml-cpu.so" ]] || { echo "bench.sh: no patched ggml in $patched_libs" >&2; exit 1; }
[[ -x "$HCT_LLAMA_BIN/llama-bench" ]] || { echo "bench.sh: no stock llama-bench in $HCT_LLAMA_BIN" >&2; exit 1; }
cargo build --release --locked -p hct-convert -p hct-kernels --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
libhct="$root/target/release/libhct.so"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cc -O2 -march=native -pthread "$root/compat-tests/bench/read_bw.c" -o "$work/read_bw"

# models[i] = "SET|NAME|TOOL|PATH" (TOOL: stock, plugin, plugin-pairs)
models=()
for set in $sets; do
    case "$set" in
        smollm2)
            for codec in int4_g32_fp16_v1 int4_opt_v1; do
                "$hct" convert "$HCT_SMOLLM2_F32" "$work/$codec.hct" --codec "$codec" >&2
                "$hct" convert "$work/$codec.hct" "$work/$codec.plugin.gguf" --gguf-mode plugin >&2
            done
            src="$HCT_SMOLLM2_F32"
            q() { bash "$PEERS_SH" quantize "$src" "$1" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["path"])'; }
            stock=("Q4_1|$(q Q4_1)" "Q4_K_M|$(q Q4_K_M)" "F16|$(q F16)")
            plugin_dir="$work"
            ;;
        1b)
            dir="${HCT_BENCH_MODEL_DIR:-$(bash "$root/compat-tests/bench/bench_model.sh")}"
            stock=("Q4_1|$dir/Q4_1.gguf" "Q4_K_M|$dir/Q4_K_M.gguf" "F16|$dir/f16.gguf")
            plugin_dir="$dir"
            ;;
        *) echo "bench.sh: unknown model set '$set' (smollm2, 1b)" >&2; exit 2 ;;
    esac
    models+=("$set|plugin int4_g32_fp16_v1|plugin|$plugin_dir/int4_g32_fp16_v1.plugin.gguf"
             "$set|plugin int4_g32_fp16_v1 pairs|plugin-pairs|$plugin_dir/int4_g32_fp16_v1.plugin.gguf"
             "$set|plugin int4_opt_v1|plugin|$plugin_dir/int4_opt_v1.plugin.gguf")
    for s in "${stock[@]}"; do models+=("$set|stock ${s%%|*}|stock|${s#*|}"); done
done
if [[ -n "${HCT_BENCH_ONLY:-}" ]]; then
    kept=()
    for m in "${models[@]}"; do
        IFS='|' read -r _ name _ _ <<<"$m"
        [[ "|$HCT_BENCH_ONLY|" == *"|$name|"* ]] && kept+=("$m")
    done
    models=("${kept[@]}")
fi

bench_once() {  # TOOL MODEL -> llama-bench JSON (pp256 and tg64 at 1 and 2 threads, one repetition)
    local args=(-m "$2" -p 256 -n 64 -t "${HCT_BENCH_THREADS:-1,2}" -r 1 -o json)
    case "$1" in
        plugin) LD_LIBRARY_PATH="$patched_libs" LD_PRELOAD="$libhct" HCT_PLUGIN_MODE=fast \
                    "$HCT_LLAMA_BIN/llama-bench" "${args[@]}" 2>/dev/null ;;
        plugin-pairs) LD_LIBRARY_PATH="$patched_libs" LD_PRELOAD="$libhct" HCT_PLUGIN_MODE=fast HCT_PLUGIN_GEMM=0 \
                    "$HCT_LLAMA_BIN/llama-bench" "${args[@]}" 2>/dev/null ;;
        stock) "$HCT_LLAMA_BIN/llama-bench" "${args[@]}" 2>/dev/null ;;
    esac
}
"$work/read_bw" 1 2 >"$work/bw.before.jsonl"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
loads=()
for ((r = 0; r < rounds; r++)); do
    for i in "${!models[@]}"; do
        IFS='|' read -r set name tool path <<<"${models[$i]}"
        bench_once "$tool" "$path" >"$work/bench.$i.$r.json"
        [[ -z "${HCT_BENCH_KEEP:-}" ]] || { mkdir -p "$HCT_BENCH_KEEP"; cp "$work/bench.$i.$r.json" "$HCT_BENCH_KEEP/"; }
        printf '[bench %s] round %d/%d: %s %s (load %s)\n' "$(date +%H:%M:%S)" "$((r + 1))" "$rounds" "$set" "$name" \
            "$(cut -d' ' -f1 /proc/loadavg)" >&2
    done
    loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
"$work/read_bw" 1 2 >"$work/bw.after.jsonl"

if [[ -n "${HCT_BENCH_PERF:-}" ]]; then
    mkdir -p "$HCT_BENCH_PERF"
    for i in "${!models[@]}"; do
        IFS='|' read -r set name tool path <<<"${models[$i]}"
        [[ "$name" == "plugin int4_g32_fp16_v1" || "$name" == "stock Q4_1" ]] || continue
        tag="$set.${name// /-}"
        for kind in pp tg; do
            args=(-m "$path" -p 256 -n 0 -r 1 -t 2); [[ $kind == tg ]] && args=(-m "$path" -p 0 -n 64 -r 1 -t 2)
            if [[ $tool == stock ]]; then
                perf record -q -g -o "$HCT_BENCH_PERF/$tag.$kind.data" "$HCT_LLAMA_BIN/llama-bench" "${args[@]}" >/dev/null 2>&1
            else
                perf record -q -g -o "$HCT_BENCH_PERF/$tag.$kind.data" env LD_LIBRARY_PATH="$patched_libs" \
                    LD_PRELOAD="$libhct" "$HCT_LLAMA_BIN/llama-bench" "${args[@]}" >/dev/null 2>&1
            fi
        done
    done
fi

printf '%s\n' "${models[@]}" >"$work/models.txt"
# Bytes a generated token reads: every tensor of 2+ dimensions (the token embedding counts once,
# as the tied output matrix reads it whole; its per-token row lookup is negligible). hct reads
# plugin GGUFs, which gguf-py refuses.
for i in "${!models[@]}"; do
    IFS='|' read -r _ _ _ path <<<"${models[$i]}"
    "$hct" inspect "$path" --json | "$py" -c 'import json,sys; print(sum(t["length"] for t in json.load(sys.stdin)["tensors"] if len(t["shape"]) >= 2))' \
        >"$work/weight_bytes.$i"
done
[[ -z "${HCT_BENCH_KEEP:-}" ]] || cp "$work/models.txt" "$work"/weight_bytes.* "$work"/bw.*.jsonl "$HCT_BENCH_KEEP/"
printf '%s\n' "${loads[@]}" >"$work/loads.txt"
"$py" - "$work" "$rounds" "$load_before" "$load_after" <<'PY'
import json, statistics, sys
work, rounds, load_before, load_after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
models = [l.rstrip("\n").split("|") for l in open(f"{work}/models.txt")]
bw = {}
for when in ("before", "after"):
    for line in open(f"{work}/bw.{when}.jsonl"):
        rec = json.loads(line)
        bw.setdefault(rec["threads"], []).append(rec["read_gb_per_s"])
read_gbs = {t: max(v) for t, v in bw.items()}  # the better of before/after: the machine's, less the noise

out = {}
for i, (set_, name, tool, path) in enumerate(models):
    per = {}
    for r in range(rounds):
        for rec in json.load(open(f"{work}/bench.{i}.{r}.json")):
            test = "pp256" if rec["n_prompt"] > 0 else "tg64"
            per.setdefault(f"{test}_t{rec['n_threads']}", []).append(rec["avg_ts"])
    row = {k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "max": round(max(v), 2)}
           for k, v in sorted(per.items())}
    wb = int(open(f"{work}/weight_bytes.{i}").read())
    row["weight_bytes_per_token"] = wb
    for t in (1, 2):
        key = f"tg64_t{t}"
        if key in row and t in read_gbs:
            # fraction of the machine's streaming-read bandwidth generation uses
            row[f"tg_bandwidth_fraction_t{t}"] = round(wb * row[key]["median"] / (read_gbs[t] * 1e9), 3)
    out.setdefault(set_, {})[name] = row

pairs = [("plugin int4_g32_fp16_v1", "stock Q4_1"), ("plugin int4_g32_fp16_v1 pairs", "stock Q4_1"),
         ("plugin int4_g32_fp16_v1", "plugin int4_g32_fp16_v1 pairs"),
         ("plugin int4_opt_v1", "stock Q4_1"), ("plugin int4_opt_v1", "stock Q4_K_M"),
         ("plugin int4_g32_fp16_v1", "stock F16")]
ratios = {}
for set_, rows in out.items():
    for a, b in pairs:
        if a in rows and b in rows:
            ratios.setdefault(set_, {})[f"{a} / {b}"] = {
                k: round(rows[a][k]["median"] / rows[b][k]["median"], 3)
                for k in rows[a] if isinstance(rows[a][k], dict) and k in rows[b]}
print(json.dumps({"bench": "llama-bench -p 256 -n 64 -r 1 per round", "rounds": rounds,
                  "load_average_before": load_before, "load_average_after_each_round": open(f"{work}/loads.txt").read().split("\n")[:-1],
                  "load_average_after": load_after, "read_gb_per_s": read_gbs, "read_gb_per_s_runs": bw,
                  "tokens_per_s": out, "ratios": ratios}, indent=1))
PY
