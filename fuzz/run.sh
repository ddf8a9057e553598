#!/usr/bin/env bash
# Fuzz every target for a stated time, one at a time at low priority, and print the totals.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 300 s, all five)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target
# starts from its checked-in corpus (corpus/<target>) plus seeds made from the repository's
# real files (seeds.sh); new inputs go to a scratch corpus under target/, so the
# checked-in one changes only when `run.sh` is followed by `minimize.sh`. Crashes land in
# artifacts/<target>/ and are reported; the script exits non-zero if there are any.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hct_read gguf_read safetensors_read convert capi_open)

bash "$here/seeds.sh" >/dev/null
# Debug assertions on (-a): integer overflow and debug_assert! checks count as crashes.
cargo +nightly fuzz build -a --release
printf '%-18s %14s %8s %10s %8s\n' target executions seconds corpus crashes
total=0
crashes_total=0
for t in "${targets[@]}"; do
    work="$here/target/corpus-work/$t"
    mkdir -p "$work" "artifacts/$t" "corpus/$t"
    log="$here/target/fuzz-$t.log"
    # -close_fd_mask=1: the converter prints a summary on stdout for every success.
    nice -n 19 cargo +nightly fuzz run -a --release "$t" "$work" "corpus/$t" "target/seeds/$t" -- \
        -max_total_time="$secs" -close_fd_mask=1 -print_final_stats=1 -rss_limit_mb=3072 \
        -timeout=30 >"$log" 2>&1 || true
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}' || true)
    execs=${execs:-0}
    size=$(ls "$work" | wc -l)
    crashes=$(find "artifacts/$t" -type f | wc -l)
    printf '%-18s %14s %8s %10s %8s\n' "$t" "$execs" "$secs" "$size" "$crashes"
    total=$((total + execs))
    crashes_total=$((crashes_total + crashes))
done
printf '%-18s %14s\n' total "$total"
[ "$crashes_total" -eq 0 ] || { echo "crashes in fuzz/artifacts/: turn each into a regression test"; exit 1; }
