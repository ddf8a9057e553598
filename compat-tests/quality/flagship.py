#!/usr/bin/env python3
"""Searched-scale encoders and the size budget against llama.cpp's types, in one run.

HCT rows write ggml's own block bytes (SPEC.md §7.5), so they are exported natively
(`hct convert X.hct X.gguf`, ggml layouts carried byte for byte) and run by STOCK llama.cpp
exactly like llama-quantize's files: same kernels, same Q8 activations. Both sides are
measured with the same tool, text, sentences, context and threads:

- SmolLM2-135M on the dithered F32 base: llama-perplexity KL divergence against the base
  (mean, p99) and top-1 agreement; bits per weight = the GGUF's tensor bytes × 8 / elements
  (the same definition for every row).
- all-MiniLM-L6-v2: mean embedding cosine against the F32 model.

Rows: each new codec with the token embedding at Q8_0 (`q8_0_mse_v1`); `--target-bpw` at
4.25, 4.5, 4.85, 5.5, 6.5 (and 6.0); llama.cpp Q4_0, IQ4_NL,
IQ4_XS, Q4_K_S, Q4_K_M, Q5_K_M, Q6_K, Q8_0 (default mixes, no imatrix). Also checks that 1
and 2 encoder threads give byte-identical files (every MiniLM row), and times the encoder beside llama-quantize
(whole process, same run). Writes compat-tests/results/flagship.{json,md,png}.

  compat-tests/quality/flagship.sh          (builds hct, then runs this with the tools Python)
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# HCT_FLAGSHIP_HCT: a frozen copy of the binary, so that files encoded ahead (--encode-only) and
# the measuring run use the same build while the tree changes.
HCT = Path(os.environ.get("HCT_FLAGSHIP_HCT", ROOT / "target" / "release" / "hct"))
PEERS = ROOT / "compat-tests" / "peers.sh"
CODECS = ["iq4_nl_mse_v1", "iq4_nl_x2_v1", "q5_0_mse_v1", "q8_0_mse_v1"]
TARGETS = [4.25, 4.5, 4.85, 5.5, 6.0, 6.5]
# HCT layouts (SPEC.md §7.7): exported as plugin GGUFs and run by the patched llama.cpp with
# libhct (HCT_PLUGIN_MODE=fast: libhct's kernels), rows labelled "… (plugin)".
PLUGIN_CODECS = ["nl4_sh64_v1", "nl5_sh64_v1", "nl6_sh64_v1"]
PLUGIN_TARGETS = [4.25, 4.5, 4.85, 5.4, 5.5, 6.0, 6.5]
# The llama-quantize type each HCT encoder is timed against (nearest in size and kind).
NEAREST_TYPE = {"iq4_nl_mse_v1": "IQ4_NL", "nl4_sh64_v1 (plugin)": "IQ4_NL",
                "nl5_sh64_v1 (plugin)": "Q5_0", "nl6_sh64_v1 (plugin)": "Q6_K"}
LLAMA = ["Q4_0", "IQ4_NL", "IQ4_XS", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]
EMBED = ["--codec-for", "token_embd.weight=q8_0_mse_v1"]
# Added (not multiplied) embedding tables stay at source precision, as llama-quantize keeps them.
KEEP = ["--keep", "position_embd.weight", "--keep", "token_types.weight"]


def run(cmd, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-4000:]}")
    return r


def peers(*args):
    return json.loads(run(["bash", PEERS, *args]).stdout)


def token_embd_type(gguf):
    from gguf import GGUFReader
    for t in GGUFReader(gguf).tensors:
        if t.name == "token_embd.weight":
            return t.tensor_type.name
    return None


def hct_row(base, label, args, work, check_threads, plugin=False):
    """base GGUF → HCT with `args` → native GGUF (plugin GGUF with `plugin`). Returns
    (row, gguf path) or (row, None)."""
    tag = label.replace(" ", "_")
    hct = work / f"{tag}.hct"
    cmd = [HCT, "convert", base, hct, *args, *KEEP, "--threads", "2", "--json"]
    reused = reuse_encoded(base, tag, args, hct)
    if reused is not None:
        r, seconds = reused
    else:
        t0 = time.monotonic()
        r = run(cmd, check=False)
        seconds = time.monotonic() - t0
    if r.returncode != 0:
        return {"codec": label, "kind": "hct", "infeasible": r.stderr.strip().removeprefix("hct: error: ")}, None
    summary = json.loads(r.stdout)
    row = {"codec": label, "kind": "hct", "encode_seconds_2_threads": round(seconds, 2),
           "hct_bits_per_weight_whole_file": summary["bits_per_weight_whole_file"]}
    if summary.get("budget"):
        b = summary["budget"]
        row["budget"] = b["allocation"]
        counts = {}
        for t in b["tensors"]:
            counts[t["codec"]] = counts.get(t["codec"], 0) + 1
        row["budget_codec_counts"] = counts
    if check_threads:
        again = work / f"{tag}.t1.hct"
        run([HCT, "convert", base, again, *args, *KEEP, "--threads", "1"])
        if hct.read_bytes() != again.read_bytes():
            sys.exit(f"{label}: 1-thread and 2-thread outputs differ")
        again.unlink()
        row["threads_1_and_2_identical"] = True
    gguf = work / f"{tag}.gguf"
    if plugin:
        # Extension types are not readable by gguf-py: bits per weight from the conversion's
        # own report (payload bytes are the GGUF's tensor bytes, byte for byte).
        run([HCT, "convert", hct, gguf, "--gguf-mode", "plugin"])
        hct.unlink()
        run([HCT, "verify", gguf])
        reps = summary["tensor_reports"]
        row["gguf_bits_per_weight"] = 8.0 * sum(r["bytes_out"] for r in reps) / sum(r["elements"] for r in reps)
        types = {}
        for r in reps:
            types[r["codec"]] = types.get(r["codec"], 0) + 1
        row["tensor_types"] = types
        row["token_embd_type"] = next((r["codec"] for r in reps if r["name"] == "token_embd.weight"), None)
        return row, gguf
    run([HCT, "convert", hct, gguf])  # native: ggml layouts carried byte for byte
    hct.unlink()
    b = peers("bpw", gguf)
    row["gguf_bits_per_weight"] = b["bits_per_weight"]
    row["tensor_types"] = b["tensor_types"]
    row["token_embd_type"] = token_embd_type(gguf)
    return row, gguf


def reuse_encoded(base, tag, args, hct):
    """With HCT_FLAGSHIP_REUSE=DIR: a file DIR/TAG.hct encoded earlier by
    `flagship.py --encode-only` from the same base, arguments and hct binary (checked through
    DIR/TAG.meta.json) is moved into place instead of encoding again; its conversion summary
    and encode seconds come from that run. Returns (completed-process-like, seconds) or None."""
    d = os.environ.get("HCT_FLAGSHIP_REUSE")
    if not d or not (Path(d) / f"{tag}.meta.json").exists():
        return None
    meta = json.loads((Path(d) / f"{tag}.meta.json").read_text())
    if meta["key"] != encode_key(base, args):
        print(f"{tag}: pre-encoded file is stale (base, arguments or hct binary changed): encoding again", file=sys.stderr)
        return None
    os.replace(Path(d) / f"{tag}.hct", hct)
    (Path(d) / f"{tag}.meta.json").unlink()
    run([HCT, "verify", hct])
    return subprocess.CompletedProcess([], meta["returncode"], meta["stdout"], meta["stderr"]), meta["seconds"]


def encode_key(base, args):
    import hashlib
    h = hashlib.sha256()
    for part in (Path(HCT).read_bytes(), str(base).encode(), json.dumps([*args, *KEEP]).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def encode_only(base, jobs, d):
    """Encode `jobs` (label, args) into DIR for a later run with HCT_FLAGSHIP_REUSE=DIR."""
    d.mkdir(parents=True, exist_ok=True)
    for label, args in jobs:
        tag = label.replace(" ", "_")
        t0 = time.monotonic()
        r = run([HCT, "convert", base, d / f"{tag}.hct", *args, *KEEP, "--threads", "2", "--json"], check=False)
        meta = {"key": encode_key(base, args), "returncode": r.returncode, "stdout": r.stdout,
                "stderr": r.stderr, "seconds": time.monotonic() - t0}
        (d / f"{tag}.meta.json").write_text(json.dumps(meta))
        print(f"{label}: encoded in {meta['seconds']:.0f} s (exit {r.returncode})", file=sys.stderr)


def llama_row(base, t):
    q = peers("quantize", base, t)
    return {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "gguf_bits_per_weight": q["bits_per_weight"],
            "tensor_types": q["tensor_types"], "token_embd_type": token_embd_type(q["path"])}, q["path"]


def rows_for(base, measure, work, thread_check, quick, codecs=CODECS, targets=TARGETS, llama=LLAMA,
             save=lambda rows: None, plugin_measure=None, plugin_codecs=PLUGIN_CODECS,
             plugin_targets=PLUGIN_TARGETS):
    rows = []
    jobs = [(c, ["--codec", c, *EMBED], False) for c in codecs] + \
           [(f"bpw {t}", ["--target-bpw", str(t)], False) for t in targets]
    if plugin_measure is not None:
        jobs += [(f"{c} (plugin)", ["--codec", c, *EMBED], True) for c in plugin_codecs] + \
                [(f"bpw {t} (plugin)", ["--target-bpw", str(t), "--budget-menu", "plugin"], True)
                 for t in plugin_targets]
    for label, args, plugin in jobs:
        row, gguf = hct_row(base, label, args, work, thread_check, plugin)
        if gguf is not None:
            row.update((plugin_measure if plugin else measure)(gguf))
            gguf.unlink()
        row["runtime"] = "llama.cpp + HCT plugin (libhct kernels)" if plugin else "stock llama.cpp"
        save(rows + [row])
        rows.append(row)
        print(f"{label}: {json.dumps({k: v for k, v in row.items() if k not in ('budget', 'tensor_types')})}",
              file=sys.stderr)
    for t in llama:
        row, path = llama_row(base, t)
        row.update(measure(path))
        rows.append(row)
        save(rows)
        print(f"llama.cpp {t}: {row.get('kld_mean', row.get('mean_cosine'))}", file=sys.stderr)
    return rows


def plugin_tools(work):
    """A bin directory whose llama-perplexity / llama-embedding are the patched llama.cpp's with
    libhct preloaded (HCT_PLUGIN_MODE=fast), as compat-tests/plugin/run.sh makes them."""
    patched = dict(line.removeprefix("export ").replace("'", "").split("=", 1) for line in
                   run(["bash", ROOT / "compat-tests/plugin/build_patched.sh", "env"]).stdout.split("\n")
                   if "=" in line)
    run(["cargo", "build", "--release", "--locked", "-p", "hct-kernels", "--manifest-path", ROOT / "Cargo.toml"])
    libhct = ROOT / "target" / "release" / "libhct.so"
    bindir = work / "bin-plugin"
    bindir.mkdir(exist_ok=True)
    for tool in ("llama-perplexity", "llama-embedding"):
        w = bindir / tool
        w.write_text(f"#!/bin/sh\nLD_PRELOAD='{libhct}' HCT_PLUGIN_MODE=fast exec '{patched['HCT_LLAMA_PATCHED_BIN']}/{tool}' \"$@\"\n")
        w.chmod(0o755)
    return bindir


def plugin_peers(bindir, env, stats, *args):
    """peers.py with the plugin tools; libhct's per-codec call counts land in `stats`."""
    e = {**os.environ, **env, "HCT_LLAMA_BIN": str(bindir), "HCT_PLUGIN_STATS": str(stats)}
    r = subprocess.run([env["HCT_PEERS_PYTHON"], str(ROOT / "compat-tests" / "peers.py"), *map(str, args)],
                       capture_output=True, text=True, env=e)
    if r.returncode != 0:
        sys.exit(f"plugin run failed: {args}\n{r.stderr[-4000:]}")
    out = json.loads(r.stdout)
    try:
        calls = json.loads(Path(stats).read_text())["codecs"]
        out["plugin_vec_dot_calls"] = {c: v["vec_dot_calls"] for c, v in calls.items() if v.get("vec_dot_calls")}
        # Prompt batches go through libhct's multi-row entry: its dot products count as well.
        out["plugin_gemm_dots"] = {c: v["gemm_dots"] for c, v in calls.items() if v.get("gemm_dots")}
    except (OSError, KeyError, ValueError):
        out["plugin_vec_dot_calls"] = None
    return out


def throughput(rows, base, work, env):
    """Whole-process encoder time at 2 threads: each HCT row of NEAREST_TYPE (token_embd as
    q8_0_mse_v1) beside a fresh llama-quantize of the same base to the nearest type (its
    default mix keeps the tied token_embd at Q8_0 too), same run."""
    theirs = {t: throughput_llama(base, work, env, t) for t in sorted(set(NEAREST_TYPE.values()))}
    out = throughput_table(rows, theirs)
    print(f"throughput {out}", file=sys.stderr)
    return out


def throughput_table(rows, theirs):
    return [{"hct_codec": c, "hct_seconds": r["encode_seconds_2_threads"], "llama_quantize_type": t,
             "llama_quantize_seconds": theirs[t]}
            for c, t in NEAREST_TYPE.items() if t in theirs
            for r in rows if r["codec"] == c and "encode_seconds_2_threads" in r]


def throughput_llama(base, work, env, qtype="IQ4_NL"):
    quantize = Path(env["HCT_LLAMA_BIN"]) / "llama-quantize"
    g = work / "t.gguf"
    t0 = time.monotonic()
    run([quantize, "--allow-requantize", base, g, qtype, "2"])
    theirs = time.monotonic() - t0
    g.unlink()
    return round(theirs, 2)


def llama_curve(rows, key):
    """llama.cpp's points (bpw, value), the Pareto front: no point beaten at fewer bits."""
    pts = sorted((r["gguf_bits_per_weight"], r[key]) for r in rows if r["kind"] == "llama.cpp")
    front = []
    for b, v in pts:
        if not front or v < front[-1][1]:
            front.append((b, v))
    return front


def interpolate(front, b):
    """log-linear interpolation of the llama.cpp front at `b`; None outside its range."""
    if not front or b < front[0][0] or b > front[-1][0]:
        return None
    for (b0, v0), (b1, v1) in zip(front, front[1:]):
        if b0 <= b <= b1:
            f = (b - b0) / (b1 - b0) if b1 > b0 else 0.0
            return math.exp(math.log(v0) + f * (math.log(v1) - math.log(v0)))
    return front[-1][1]


def judge(rows):
    front = llama_curve(rows, "kld_mean")
    q4km = next((r for r in rows if r["codec"] == "llama.cpp Q4_K_M" and "kld_mean" in r), None)
    for r in rows:
        if r["kind"] != "hct" or "kld_mean" not in r:
            continue
        ref = interpolate(front, r["gguf_bits_per_weight"])
        r["llama_curve_kld_at_same_bpw"] = ref
        r["goal_30pct_below_curve"] = None if ref is None else r["kld_mean"] <= 0.7 * ref
        r["stretch_half_of_curve"] = None if ref is None else r["kld_mean"] <= 0.5 * ref
        r["goal_q4km_kld_at_80pct_size"] = None if q4km is None else (
            r["kld_mean"] <= q4km["kld_mean"] and r["gguf_bits_per_weight"] <= 0.8 * q4km["gguf_bits_per_weight"])


def plot(res, path, python):
    script = r"""
import json, sys
import matplotlib; matplotlib.use("Agg")
import matplotlib.pyplot as plt
res = json.load(open(sys.argv[1]))
rows = res["smollm2"]
fig, ax = plt.subplots(figsize=(8, 5.5))
for kind, style, lab in [("llama.cpp", "o-", "llama.cpp (llama-quantize default mixes)")]:
    pts = sorted((r["gguf_bits_per_weight"], r["kld_mean"], r["codec"]) for r in rows if r["kind"] == kind)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=lab)
    for b, k, c in pts:
        ax.annotate(c.split()[-1], (b, k), fontsize=7, xytext=(3, 3), textcoords="offset points")
for plug, style, lab in [(False, "s-", "HCT --target-bpw (ggml layouts, stock llama.cpp)"),
                         (True, "D-", "HCT --target-bpw --budget-menu plugin (HCT plugin)")]:
    bud = sorted((r["gguf_bits_per_weight"], r["kld_mean"], r["codec"]) for r in rows
                 if r["kind"] == "hct" and r["codec"].startswith("bpw") and "kld_mean" in r
                 and ("(plugin)" in r["codec"]) == plug)
    if bud:
        ax.plot([p[0] for p in bud], [p[1] for p in bud], style, label=lab)
fix = [(r["gguf_bits_per_weight"], r["kld_mean"], r["codec"]) for r in rows
       if r["kind"] == "hct" and not r["codec"].startswith("bpw") and "kld_mean" in r]
ax.plot([p[0] for p in fix], [p[1] for p in fix], "^", label="HCT single codec (token_embd Q8_0)")
for b, k, c in fix:
    ax.annotate(c, (b, k), fontsize=7, xytext=(3, -9), textcoords="offset points")
ax.set_yscale("log"); ax.set_xlabel("bits per weight (GGUF tensor bytes x 8 / elements)")
ax.set_ylabel("mean KL divergence vs F32 (log)"); ax.grid(True, which="both", alpha=0.3)
ax.set_title("SmolLM2-135M, dithered F32 base, stock llama.cpp")
ax.legend(fontsize=8); fig.tight_layout(); fig.savefig(sys.argv[2], dpi=120)
"""
    js = path.with_suffix(".json")
    run([python, "-c", script, js, path])


def render(res):
    L = ["# Searched-scale encoders and `--target-bpw` beside llama.cpp", "",
         (f"Produced by `{res['command']}` in one run ({res.get('minutes', float('nan')):.1f} minutes, {res['date']})."
          if "note" not in res else f"Made {res['date']}. {res['note']}"),
         "" if not res.get("missing_rows") else f"Rows not measured: {', '.join(res['missing_rows'])}.", "",
         "Every row is a GGUF run by the same stock llama.cpp build: HCT files are exported natively "
         "(`hct convert X.hct X.gguf`: the searched codecs' blocks are ggml's IQ4_NL/Q4_0/Q5_0/Q8_0 blocks, "
         "copied byte for byte), so both sides use ggml's own kernels. Bits per weight: GGUF tensor bytes × 8 / "
         "all elements, for every row. llama.cpp rows: `llama-quantize` default mixes, no imatrix. "
         "Rows marked `(plugin)` hold HCT layouts (`nl4_sh64_v1`, `nl5_sh64_v1`, `nl6_sh64_v1`, SPEC.md §7.7): they are exported with "
         "`--gguf-mode plugin` and run by the same llama.cpp source with the HCT plugin patch and libhct's "
         "kernels (`HCT_PLUGIN_MODE=fast`), same text, context and threads; their bits per weight are the "
         "same tensor bytes (the conversion's payload bytes × 8 / all elements).", "",
         "Token embedding policy: HCT single-codec rows store `token_embd` as Q8_0 (`q8_0_mse_v1`); "
         "`--target-bpw` rows floor the tied token embedding (SmolLM2) at `q8_0_mse_v1` and an untied one "
         "(MiniLM) at `iq4_nl_mse_v1`; llama.cpp rows: whatever llama-quantize chose, shown per row "
         "(`token_embd` column).", "",
         "Goal columns (SmolLM2): `30%` = mean KLD at most 70% of llama.cpp's curve (its Pareto front, "
         "log-linear interpolation) at the row's bits per weight; `half` = at most 50% (stretch); `n/a` = "
         "outside the curve's range. `Q4_K_M@80%` = KLD at most Q4_K_M's with at most 80% of its bits.", ""]
    L += ["## SmolLM2-135M-Instruct, dithered F32 base", "",
          "| row | bits/weight | mean KLD | KLD p99 | top-1 | token_embd | curve KLD at same bpw | 30% | half | Q4_K_M@80% | notes |",
          "|---|---:|---:|---:|---:|---|---:|---|---|---|---|"]
    yn = {True: "met", False: "not met", None: "n/a"}
    for r in res["smollm2"]:
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | | | | | | | infeasible: {r['infeasible']} |")
            continue
        ref = r.get("llama_curve_kld_at_same_bpw")
        notes = []
        if "budget_codec_counts" in r:
            notes.append(", ".join(f"{k}×{v}" for k, v in sorted(r["budget_codec_counts"].items())))
        if r.get("threads_1_and_2_identical"):
            notes.append("1 = 2 threads")
        if r.get("plugin_vec_dot_calls"):
            notes.append("libhct vec_dot calls: " + ", ".join(f"{k} {v}" for k, v in sorted(r["plugin_vec_dot_calls"].items())))
        if r.get("plugin_gemm_dots"):
            notes.append("libhct multi-row dot products: " + ", ".join(f"{k} {v}" for k, v in sorted(r["plugin_gemm_dots"].items())))
        L.append(f"| {r['codec']} | {r['gguf_bits_per_weight']:.4f} | {r['kld_mean']:.6f} | {r['kld_p99']:.6f} | "
                 f"{100 * r['top1_agreement']:.2f}% | {r.get('token_embd_type')} | "
                 f"{'' if ref is None else f'{ref:.6f}'} | "
                 f"{yn[r.get('goal_30pct_below_curve')] if r['kind'] == 'hct' else ''} | "
                 f"{yn[r.get('stretch_half_of_curve')] if r['kind'] == 'hct' else ''} | "
                 f"{yn[r.get('goal_q4km_kld_at_80pct_size')] if r['kind'] == 'hct' else ''} | {'; '.join(notes)} |")
    L += ["", "![KLD vs bits per weight](flagship.png)", "",
          "## all-MiniLM-L6-v2 (F32 GGUF base)", "",
          "| row | bits/weight | mean cosine | min cosine | token_embd | notes |", "|---|---:|---:|---:|---|---|"]
    for r in res.get("minilm", []):
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | | infeasible: {r['infeasible']} |")
            continue
        notes = ", ".join(f"{k}×{v}" for k, v in sorted(r.get("budget_codec_counts", {}).items()))
        if r.get("threads_1_and_2_identical"):
            notes += "; 1 = 2 threads"
        L.append(f"| {r['codec']} | {r['gguf_bits_per_weight']:.4f} | {r['mean_cosine']:.6f} | "
                 f"{r['min_cosine']:.6f} | {r.get('token_embd_type')} | {notes} |")
    L += ["", "## Encoder time (SmolLM2 dithered base, whole process, 2 threads, token_embd at Q8_0 on both sides)", "",
          "| HCT codec | seconds | llama-quantize type | seconds |", "|---|---:|---|---:|"]
    for t in res.get("throughput", []):
        L.append(f"| {t['hct_codec']} | {t['hct_seconds']:.1f} | {t['llama_quantize_type']} | {t['llama_quantize_seconds']:.1f} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "compat-tests" / "results" / "flagship"))
    ap.add_argument("--plot-python", default=str(ROOT / "target" / "plot-venv" / "bin" / "python"))
    ap.add_argument("--render", help="only re-render the .md and .png from this results JSON")
    ap.add_argument("--combine", nargs="+", metavar="FILE",
                    help="merge SmolLM2 rows from --part JSON files and run logs (lines `LABEL: {json}`) "
                         "into one results file, then render it")
    ap.add_argument("--note", default="", help="with --combine: how the parts were run, for the results file")
    ap.add_argument("--part", help="SmolLM2 rows only, as CODECS;TARGETS;LLAMA_TYPES[;PLUGIN_CODECS;PLUGIN_TARGETS] "
                    "(comma lists), saved to --out .json: for splitting one table over processes")
    ap.add_argument("--encode-only", metavar="DIR",
                    help="with --part: only encode the part's HCT rows into DIR (for a later run with "
                         "HCT_FLAGSHIP_REUSE=DIR, e.g. while the kernels those rows need are being built)")
    ap.add_argument("--time-quantize", default="", metavar="TYPES",
                    help="with --part: also time llama-quantize to these types (comma list), for the encoder table")
    ap.add_argument("--part-model", choices=["smollm2", "minilm"], default="smollm2",
                    help="with --part: which model's rows (minilm: embedding cosine, 1 = 2 threads checked)")
    a = ap.parse_args()
    out = Path(a.out)
    if a.render:
        res = json.loads(Path(a.render).read_text())
        judge(res["smollm2"])
        out.with_suffix(".json").write_text(json.dumps(res, indent=1))
        if Path(a.plot_python).exists():
            plot(res, out.with_suffix(".png"), a.plot_python)
        out.with_suffix(".md").write_text(render(res))
        return
    if a.combine:
        rows, mini, llama_seconds = {}, {}, {}
        for f in a.combine:
            text = Path(f).read_text()
            if f.endswith(".json"):
                doc = json.loads(text)
                for r in doc.get("smollm2", []):
                    rows[r["codec"]] = r
                for r in doc.get("minilm", []):
                    mini[r["codec"]] = r
                if "throughput_llama_iq4_nl" in doc:
                    llama_seconds["IQ4_NL"] = doc["throughput_llama_iq4_nl"]
                llama_seconds.update(doc.get("throughput_llama", {}))
                continue
            for line in text.splitlines():
                label, _, rest = line.partition(": ")
                if rest.startswith("{") and (label in CODECS or label.startswith("bpw ")
                                             or label.endswith(" (plugin)")):
                    rows[label] = json.loads(rest)
        order = CODECS + [f"bpw {t}" for t in TARGETS] + [f"{c} (plugin)" for c in PLUGIN_CODECS] + \
            [f"bpw {t} (plugin)" for t in PLUGIN_TARGETS] + [f"llama.cpp {t}" for t in LLAMA]
        res = {"command": "compat-tests/quality/flagship.sh (split; see note)", "note": a.note,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "smollm2": [rows[k] for k in order if k in rows],
               "minilm": [mini[k] for k in order if k in mini],
               "missing_rows": [k for k in order if k not in rows]}
        if llama_seconds:
            res["throughput"] = throughput_table(list(rows.values()), llama_seconds)
        judge(res["smollm2"])
        out.with_suffix(".json").write_text(json.dumps(res, indent=1))
        if Path(a.plot_python).exists():
            plot(res, out.with_suffix(".png"), a.plot_python)
        out.with_suffix(".md").write_text(render(res))
        return
    if a.part:
        fields = [[x for x in p.split(",") if x] for p in a.part.split(";")] + [[], []]
        codecs, targets, llama, pcodecs, ptargets = fields[:5]
        if a.encode_only:
            env = dict(line.split("=", 1) for line in
                       (l.removeprefix("export ").strip().replace("'", "") for l in run(["bash", PEERS, "env"]).stdout.splitlines())
                       if "=" in line)
            base = env["HCT_SMOLLM2_DITHERED" if a.part_model == "smollm2" else "HCT_MINILM_F32"]
            encode_only(base, [(c, ["--codec", c, *EMBED]) for c in codecs]
                        + [(f"bpw {float(t)}", ["--target-bpw", str(float(t))]) for t in targets]
                        + [(f"{c} (plugin)", ["--codec", c, *EMBED]) for c in pcodecs]
                        + [(f"bpw {float(t)} (plugin)", ["--target-bpw", str(float(t)), "--budget-menu", "plugin"])
                           for t in ptargets],
                        Path(a.encode_only))
            return
        env = dict(line.split("=", 1) for line in
                   (l.removeprefix("export ").strip().replace("'", "") for l in run(["bash", PEERS, "env"]).stdout.splitlines())
                   if "=" in line)
        work = Path(tempfile.mkdtemp(prefix="hct-flagship-"))
        smol = env["HCT_SMOLLM2_DITHERED"]
        bindir = plugin_tools(work) if pcodecs or ptargets else None
        model = a.part_model
        if model == "smollm2":
            base, measure, check_threads = smol, (lambda g: peers("ppl", g, "--kl-base", smol)), False
            pmeasure = None if bindir is None else \
                (lambda g: plugin_peers(bindir, env, work / "stats.json", "ppl", g, "--kl-base", smol))
        else:
            base, check_threads = env["HCT_MINILM_F32"], True

            def measure(g):
                e = peers("embed", g, "--reference", base)
                return {k: e[k] for k in ("mean_cosine", "min_cosine")}

            def pmeasure(g):
                e = plugin_peers(bindir, env, work / "stats.json", "embed", g, "--reference", base)
                return {k: e.get(k) for k in ("mean_cosine", "min_cosine", "plugin_vec_dot_calls", "plugin_gemm_dots")}
        rows = rows_for(base, measure, work, check_threads, False,
                        codecs, [float(t) for t in targets], llama,
                        save=lambda rows: Path(a.out).with_suffix(".json").write_text(
                            json.dumps({"part": a.part, model: rows}, indent=1)),
                        plugin_measure=None if bindir is None else pmeasure,
                        plugin_codecs=pcodecs, plugin_targets=[float(t) for t in ptargets])
        res = {"part": a.part, model: rows}
        if model == "smollm2" and a.time_quantize:
            res["throughput_llama"] = {t: throughput_llama(smol, work, env, t) for t in a.time_quantize.split(",")}
        Path(a.out).with_suffix(".json").write_text(json.dumps(res, indent=1))
        return
    start = time.monotonic()
    env = dict(line.split("=", 1) for line in
               (l.removeprefix("export ").strip().replace("'", "") for l in run(["bash", PEERS, "env"]).stdout.splitlines())
               if "=" in line)
    work = Path(tempfile.mkdtemp(prefix="hct-flagship-"))
    res = {"command": "compat-tests/quality/flagship.sh", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    smol = env["HCT_SMOLLM2_DITHERED"]
    bindir = plugin_tools(work)
    res["smollm2"] = rows_for(smol, lambda g: peers("ppl", g, "--kl-base", smol), work, False, False,
                              plugin_measure=lambda g: plugin_peers(bindir, env, work / "stats.json",
                                                                     "ppl", g, "--kl-base", smol))
    (work / "partial.json").write_text(json.dumps(res, indent=1))
    judge(res["smollm2"])
    ref = env["HCT_MINILM_F32"]

    def embed(g):
        e = peers("embed", g, "--reference", ref)
        return {k: e[k] for k in ("mean_cosine", "min_cosine")}
    def embed_plugin(g):
        e = plugin_peers(bindir, env, work / "stats.json", "embed", g, "--reference", ref)
        return {k: e.get(k) for k in ("mean_cosine", "min_cosine", "plugin_vec_dot_calls", "plugin_gemm_dots")}
    res["minilm"] = rows_for(ref, embed, work, True, True, plugin_measure=embed_plugin)
    res["throughput"] = throughput(res["smollm2"], smol, work, env)
    res["minutes"] = (time.monotonic() - start) / 60
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    if Path(a.plot_python).exists():
        plot(res, out.with_suffix(".png"), a.plot_python)
    out.with_suffix(".md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()
