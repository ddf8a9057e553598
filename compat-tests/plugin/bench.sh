#!/usr/bin/env bash
# Speed of HCT files in llama.cpp through libhct, against stock llama.cpp on the same model, in
# one run: `llama-bench -p 256 -n 64 -r R -t 2` on SmolLM2-135M as
#   plugin int4_opt_v1, plugin int4_g32_fp16_v1 (patched llama.cpp + libhct, fast mode),
#   stock Q4_1, Q4_K_M, F16 (llama-quantize of the same F32 model).
# The models are benchmarked in interleaved rounds (one repetition of each per round), so a change
# in machine load during the run hits every model alike. Prints one JSON object: tokens/s per model
# (median over rounds), and the plugin's ratios to each stock type.
#
#   bench.sh [ROUNDS]        default 5 rounds; needs `peers.sh fetch build` and build_patched.sh
#   HCT_BENCH_PERF=DIR       also `perf record` one pp and one tg run of plugin int4_opt_v1 and
#                            stock Q4_1 into DIR (where the time goes)
# Not part of CI: timings are for people, checks are in run.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PEERS_SH="${HCT_PEERS_SH:-$root/compat-tests/peers.sh}"
export HCT_PEERS_SH="$PEERS_SH"
eval "$(bash "$PEERS_SH" env)"
rounds="${1:-5}"
py="$HCT_PEERS_PYTHON"
bash "$here/build_patched.sh" bench >&2
eval "$(bash "$here/build_patched.sh" env)"
cargo build --release --locked -p hct-convert -p hct-kernels --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
libhct="$root/target/release/libhct.so"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

models=() names=() tools=()
for codec in int4_opt_v1 int4_g32_fp16_v1; do
    "$hct" convert "$HCT_SMOLLM2_F32" "$work/$codec.hct" --codec "$codec" >&2
    "$hct" convert "$work/$codec.hct" "$work/$codec.plugin.gguf" --gguf-mode plugin >&2
    models+=("$work/$codec.plugin.gguf"); names+=("plugin $codec"); tools+=(plugin)
done
for t in Q4_1 Q4_K_M F16; do
    models+=("$(bash "$PEERS_SH" quantize "$HCT_SMOLLM2_F32" "$t" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["path"])')")
    names+=("stock $t"); tools+=(stock)
done

bench_once() {  # TOOL MODEL -> llama-bench JSON (pp256 and tg64, one repetition)
    if [[ $1 == plugin ]]; then
        LD_PRELOAD="$libhct" HCT_PLUGIN_MODE=fast "$HCT_LLAMA_PATCHED_BIN/llama-bench" -m "$2" -p 256 -n 64 -r 1 -t 2 -o json 2>/dev/null
    else
        "$HCT_LLAMA_BIN/llama-bench" -m "$2" -p 256 -n 64 -r 1 -t 2 -o json 2>/dev/null
    fi
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 0; r < rounds; r++)); do
    for i in "${!models[@]}"; do
        bench_once "${tools[$i]}" "${models[$i]}" >"$work/bench.$i.$r.json"
        printf '[bench] round %d/%d: %s\n' "$((r + 1))" "$rounds" "${names[$i]}" >&2
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if [[ -n "${HCT_BENCH_PERF:-}" ]]; then
    mkdir -p "$HCT_BENCH_PERF"
    for kind in pp tg; do
        args=(-p 256 -n 0); [[ $kind == tg ]] && args=(-p 0 -n 64)
        perf record -q -g -o "$HCT_BENCH_PERF/plugin-opt.$kind.data" env LD_PRELOAD="$libhct" \
            "$HCT_LLAMA_PATCHED_BIN/llama-bench" -m "${models[0]}" "${args[@]}" -r 2 -t 2 >/dev/null 2>&1
        perf record -q -g -o "$HCT_BENCH_PERF/stock-q4_1.$kind.data" \
            "$HCT_LLAMA_BIN/llama-bench" -m "${models[2]}" "${args[@]}" -r 2 -t 2 >/dev/null 2>&1
    done
fi

"$py" - "$work" "$rounds" "$load_before" "$load_after" "${names[@]}" <<'PY'
import json, statistics, sys
work, rounds, load_before, load_after, names = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
rows = {}
for i, name in enumerate(names):
    per = {"pp": [], "tg": []}
    for r in range(rounds):
        for rec in json.load(open(f"{work}/bench.{i}.{r}.json")):
            per["pp" if rec["n_prompt"] > 0 else "tg"].append(rec["avg_ts"])
    rows[name] = {k: {"tokens_per_s_median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in per.items()}
med = lambda n, k: rows[n][k]["tokens_per_s_median"]
ratios = {p: {s: {k: round(med(p, k) / med(s, k), 3) for k in ("pp", "tg")} for s in names if s.startswith("stock")}
          for p in names if p.startswith("plugin")}
print(json.dumps({"bench": "llama-bench -p 256 -n 64 -t 2", "rounds": rounds, "load_average_before": load_before,
                  "load_average_after": load_after, "tokens_per_s": rows, "plugin_over_stock": ratios}, indent=1))
PY
