#!/usr/bin/env bash
# Merge what run.sh found into the checked-in corpus, keeping only inputs that add
# coverage (libFuzzer -merge=1), so corpus/<target> stays small.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
for t in "${@:-hct_read gguf_read safetensors_read convert capi_open}"; do
    for tt in $t; do
        mkdir -p "corpus/$tt.new"
        nice -n 19 cargo +nightly fuzz run -a --release "$tt" "corpus/$tt.new" "corpus/$tt" \
            "target/corpus-work/$tt" "target/seeds/$tt" -- -merge=1 -close_fd_mask=1 \
            >/dev/null 2>&1
        rm -rf "corpus/$tt"
        mv "corpus/$tt.new" "corpus/$tt"
        echo "$tt: $(ls "corpus/$tt" | wc -l) inputs, $(du -sh "corpus/$tt" | cut -f1)"
    done
done
