#!/usr/bin/env python3
"""Turn compat-tests/entropy/run.sh's rows.jsonl into the table of compat-tests/results/entropy.md.

usage: python3 compat-tests/entropy/report.py WORKDIR   (prints Markdown rows on stdout)
"""
import json
import re
import sys

# bc prints ".8" for 0.8, which rows written before that was fixed carry.
rows = [json.loads(re.sub(r":\.(\d)", r":0.\1", l))
        for l in open(f"{sys.argv[1]}/rows.jsonl") if l.strip()]
by_codec = {}
for r in rows:
    by_codec.setdefault(r["codec"], {})[r["level"]] = r
print("| codec | plain file | zstd:3 file | gain | zstd:19 file | gain | coded tensors (3 / 19) | "
      "entropy pass s (3 / 19) | decode GB/s (3 / 19) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for codec, lv in by_codec.items():
    base = next(iter(lv.values()))["base_bytes"]
    cells = []
    for level in (3, 19):
        r = lv.get(level)
        if r is None:
            cells.append(("–", "–"))
            continue
        size = r["decode"]["file_bytes"]
        cells.append((f"{size:,}", f"{base / size:.3f}x"))
    def both(key, fmt):
        return " / ".join(fmt(lv[l]) if l in lv else "–" for l in (3, 19))
    print(f"| `{codec}` | {base:,} | {cells[0][0]} | {cells[0][1]} | {cells[1][0]} | {cells[1][1]} | "
          f"{both('n', lambda r: str(r['decode']['coded_tensors']))} of {next(iter(lv.values()))['decode']['tensors']} | "
          f"{both('e', lambda r: format(r['encode_seconds'], '.1f'))} | "
          f"{both('d', lambda r: format(r['decode']['decode_gb_per_s'], '.2f'))} |")
