#!/usr/bin/env python3
"""The founding pipeline's codecs measured beside llama.cpp's low-bit types, part by part.

Parts (`--parts`, comma-separated; default all, in this order):
- `iq2`: llama.cpp IQ2_XXS and IQ2_XS on SmolLM2-135M (dithered F32 base). llama-quantize
  refuses them without an importance matrix, so llama-imatrix computes one first, on a
  CALIBRATION text disjoint from the evaluation text: the 64 KiB of the Jargon File that follow
  the evaluation slice (`HCT_JARGON_TXT`, cut at a line end). These two rows are therefore
  calibrated on text of the same kind; the HCT rows use no calibration at all.
- `minilm`: all-MiniLM-L6-v2 (F32): `tq1_0_absmean_v1` / `tq2_0_absmean_v1` (Q4_0 fallback,
  Q8_0 token embedding, exported natively) and llama-quantize TQ1_0, TQ2_0, Q4_0; mean and
  minimum embedding cosine against F32. A type llama-quantize refuses is recorded with its error.
- `bench`: llama-bench pp64 / tg32, 2 threads, one repetition per model per round, rounds
  interleaved across models, medians, and ratios to llama.cpp Q4_0 measured in the same run.
  SeedLM and VQ run through the plugin: plugin GGUFs (`--gguf-mode plugin`, token embedding at
  Q8_0) loaded by the stock llama-bench with the patched ggml libraries and libhct preloaded in
  fast mode (compat-tests/plugin/bench.sh's way). Ternary HCT files are native GGUFs of ggml's
  own TQ blocks and run in stock llama.cpp, as do TQ1_0, TQ2_0, IQ2_XXS, IQ2_XS and Q4_0. The
  SeedLM/VQ conversions are timed: encoded elements per CPU-second of `hct convert`.
- `ternary`: the ternary rows on SmolLM2 (same mixes as `minilm`, plus a Q8_0-fallback row
  isolating the ternary matrices' damage) and llama-quantize TQ1_0, TQ2_0, Q4_0: perplexity,
  mean KLD and top-1 agreement against the dithered base (peers.sh ppl: ctx 256, 16 chunks).
- `encoder`: the ternary encoder alone in Melem/s (SmolLM2's ffn_down matrices encoded, less a
  pass-through conversion of the same file; 2 threads, best of 3).

Each part updates compat-tests/results/founding-rows.json (so parts may run at different times;
each part's date, command and load averages are kept) and re-renders the generated section of
compat-tests/results/founding.md, between its two marker lines; the rest of that file is prose
written by hand and left alone. SeedLM/VQ quality columns are copied from seedlm_vq.json.

  compat-tests/quality/founding.sh rows [--parts iq2,minilm,bench,ternary,encoder] [--rounds 3]
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HCT = ROOT / "target" / "release" / "hct"
LIBHCT = ROOT / "target" / "release" / "libhct.so"
RESULTS = ROOT / "compat-tests" / "results"
# Converted and quantized models live here between parts (the bench part reuses them).
WORK = ROOT / "target" / "founding-work"
sys.path.insert(0, str(ROOT / "compat-tests"))
import peers  # noqa: E402  (the shared peer machinery: perplexity, embeddings, quantize, bpw)

PARTS = ["iq2", "minilm", "bench", "ternary", "encoder"]
TQ_MIX = ["--fallback-codec", "ggml_q4_0", "--codec-for", "token_embd.weight=ggml_q8_0"]
TERNARY = [
    ("tq1_0_absmean_v1", ["--codec", "tq1_0_absmean_v1", *TQ_MIX]),
    ("tq2_0_absmean_v1", ["--codec", "tq2_0_absmean_v1", *TQ_MIX]),
    ("tq2_0_absmean_v1, fallback Q8_0", ["--codec", "tq2_0_absmean_v1", "--fallback-codec", "ggml_q8_0",
                                         "--codec-for", "token_embd.weight=ggml_q8_0"]),
]
LLAMA_PLAIN = ["TQ1_0", "TQ2_0", "Q4_0"]
LLAMA_IMATRIX = ["IQ2_XXS", "IQ2_XS"]
PLUGIN_CODECS = ["seedlm_c8p3_s8_v1", "vq8_r2x256_g32_v1"]
PLUGIN_EMBED = ["--codec-for", "token_embd.weight=q8_0_mse_v1"]
# BERT's position and token-type tables are not weight matrices: keep them as they are.
KEEP = ["--keep", "position_embd.weight", "--keep", "token_types.weight"]
BENCH_PP, BENCH_TG = 64, 32
BEGIN = "<!-- founding.py: generated section begins; edit founding.py, not this -->"
END = "<!-- founding.py: generated section ends -->"


def run(cmd, env=None, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-4000:]}")
    return r


def last_error_line(r, fallback):
    lines = [l.strip() for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    errs = [l for l in lines if "error" in l.lower() or "GGML_ASSERT" in l or "failed" in l.lower()]
    return (errs or lines or [fallback])[-1][:400]


def cpu_children():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def short_sha(path):
    return peers.sha256_file(Path(path))[:16]


def hct_gguf(base, label, args, plugin=False):
    """base → HCT with `args` → GGUF (native, or plugin), cached in WORK. Returns (info, path)
    or (info with "infeasible", None). `info` has the conversion's CPU seconds when it ran now."""
    tag = label.replace(" ", "_").replace(",", "")
    out = WORK / f"{short_sha(base)}-{tag}{'.plugin' if plugin else ''}.gguf"
    info = {}
    if not out.exists():
        hct = WORK / f"{tag}.hct"
        c0, t0 = cpu_children(), time.monotonic()
        r = run([HCT, "convert", base, hct, *args, *KEEP, "--threads", "2", "--json"], check=False)
        if r.returncode != 0:
            return {"infeasible": r.stderr.strip().removeprefix("hct: error: ")[-400:]}, None
        wall, cpu = time.monotonic() - t0, cpu_children() - c0
        summary = json.loads(r.stdout)
        info = {"convert_wall_seconds": round(wall, 1), "convert_cpu_seconds": round(cpu, 1),
                "hct_bits_per_weight_whole_file": summary["bits_per_weight_whole_file"]}
        if plugin:
            inspect = json.loads(run([HCT, "inspect", hct, "--json", "--max-items", "100000"]).stdout)
            codec = args[args.index("--codec") + 1]
            encoded = sum(t["elements"] for t in inspect["tensors"] if t["codec"] == codec)
            info.update(encoded_elements=encoded, encode_melem_per_cpu_second=round(encoded / cpu / 1e6, 3))
        tmp = out.with_suffix(".tmp.gguf")
        run([HCT, "convert", hct, tmp, *(["--gguf-mode", "plugin"] if plugin else [])])
        hct.unlink()
        tmp.rename(out)
    return info, out


def bpw_row(label, kind, path):
    b = peers.bits_per_weight(str(path))
    return {"codec": label, "kind": kind, "gguf_bits_per_weight": b["bits_per_weight"],
            "tensor_types": b["tensor_types"]}


def llama_plain(base, t):
    """llama-quantize without an importance matrix (peers.py caches the file)."""
    try:
        q = peers.quantize(base, t)
    except peers.PeerError as e:
        return {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "infeasible": str(e).strip().splitlines()[-1][:400]}, None
    return bpw_row(f"llama.cpp {t}", "llama.cpp", q["path"]), q["path"]


def calibration_text():
    """The 64 KiB of the Jargon File after the evaluation slice, cut back to a line end."""
    data = Path(os.environ["HCT_JARGON_TXT"]).read_bytes()
    evaluation = Path(os.environ["HCT_TEXT_SLICE"]).read_bytes()
    start = data.find(evaluation)
    if start < 0:
        sys.exit("the evaluation slice is not a substring of HCT_JARGON_TXT")
    begin = start + len(evaluation)
    piece = data[begin:begin + 65536]
    piece = piece[:piece.rindex(b"\n") + 1]
    out = WORK / "calibration.txt"
    out.write_bytes(piece)
    return out, {"source": "HCT_JARGON_TXT", "byte_offset": begin, "bytes": len(piece),
                 "evaluation_slice_bytes": [start, begin], "sha256": short_sha(out)}


def iq2_models(base):
    """The importance matrix (on the calibration text) and the IQ2 files, cached in WORK."""
    text, text_info = calibration_text()
    imat = WORK / f"{short_sha(base)}-{text_info['sha256']}.imatrix.gguf"
    info = {"calibration_text": text_info,
            "imatrix_command": "llama-imatrix -m BASE -f CALIBRATION -c 512 -t 2 -o IMATRIX"}
    if not imat.exists():
        t0 = time.monotonic()
        r = run([Path(os.environ["HCT_LLAMA_BIN"]) / "llama-imatrix", "-m", base, "-f", text, "-o",
                 imat.with_suffix(".tmp.gguf"), "-c", "512", "-t", "2"], check=False)
        if r.returncode != 0:
            return info, {t: (None, f"llama-imatrix failed: {last_error_line(r, 'no output')}") for t in LLAMA_IMATRIX}
        imat.with_suffix(".tmp.gguf").rename(imat)
        info["imatrix_seconds"] = round(time.monotonic() - t0, 1)
    out = {}
    for t in LLAMA_IMATRIX:
        g = WORK / f"{imat.stem}-{t}.gguf"
        if not g.exists():
            r = run([Path(os.environ["HCT_LLAMA_BIN"]) / "llama-quantize", "--allow-requantize", "--imatrix", imat,
                     base, g.with_suffix(".tmp.gguf"), t, "2"], check=False)
            if r.returncode != 0:
                out[t] = (None, f"llama-quantize failed: {last_error_line(r, 'no output')}")
                continue
            g.with_suffix(".tmp.gguf").rename(g)
        out[t] = (g, None)
    return info, out


def part_iq2(res):
    smol = os.environ["HCT_SMOLLM2_DITHERED"]
    info, models = iq2_models(smol)
    res["iq2_imatrix"] = info
    for t, (g, err) in models.items():
        label = f"llama.cpp {t} (imatrix)"
        row = {"codec": label, "kind": "llama.cpp", "infeasible": err} if g is None else \
            {**bpw_row(label, "llama.cpp", g), **peers.perplexity(str(g), kl_base=smol)}
        res["smollm2"][label] = row
        print(f"{label}: {row.get('kld_mean', row.get('infeasible'))}", file=sys.stderr)


def part_ternary(res):
    smol = os.environ["HCT_SMOLLM2_DITHERED"]
    for label, args in TERNARY:
        info, g = hct_gguf(smol, label, args)
        row = {"codec": label, "kind": "hct", **info}
        if g is not None:
            row.update({**bpw_row(label, "hct", g), **info, **peers.perplexity(str(g), kl_base=smol)})
        res["smollm2"][label] = row
        print(f"{label}: {row.get('kld_mean', row.get('infeasible'))}", file=sys.stderr)
    for t in LLAMA_PLAIN:
        row, path = llama_plain(smol, t)
        if path is not None:
            row.update(peers.perplexity(path, kl_base=smol))
        res["smollm2"][row["codec"]] = row
        print(f"{row['codec']}: {row.get('kld_mean', row.get('infeasible'))}", file=sys.stderr)


def part_minilm(res):
    ref = os.environ["HCT_MINILM_F32"]

    def cosines(path):
        e = peers.embeddings(str(path), reference=ref)
        return {k: e[k] for k in ("mean_cosine", "min_cosine")}
    for label, args in TERNARY[:2]:
        info, g = hct_gguf(ref, label, args)
        row = {"codec": label, "kind": "hct", **info}
        if g is not None:
            row.update({**bpw_row(label, "hct", g), **info, **cosines(g)})
        res["minilm"][label] = row
        print(f"MiniLM {label}: {row.get('mean_cosine', row.get('infeasible'))}", file=sys.stderr)
    for t in LLAMA_PLAIN:
        row, path = llama_plain(ref, t)
        if path is not None:
            row.update(cosines(path))
        res["minilm"][row["codec"]] = row
        print(f"MiniLM {row['codec']}: {row.get('mean_cosine', row.get('infeasible'))}", file=sys.stderr)


def bench_env(kind):
    env = dict(os.environ)
    if kind == "plugin":
        env["LD_LIBRARY_PATH"] = str(Path(os.environ["HCT_LLAMA_PATCHED"]) / "lib")
        env["LD_PRELOAD"] = str(LIBHCT)
        env["HCT_PLUGIN_MODE"] = "fast"
    return env


def part_bench(res, rounds):
    smol = os.environ["HCT_SMOLLM2_DITHERED"]
    models, encode = [], {}  # (label, path, kind)
    for codec in PLUGIN_CODECS:
        info, g = hct_gguf(smol, codec, ["--codec", codec, *PLUGIN_EMBED], plugin=True)
        if g is None:
            res["bench_errors"][codec] = info["infeasible"]
            continue
        if info:
            encode[codec] = info
        models.append((f"{codec} (plugin)", g, "plugin"))
    for label, args in TERNARY[:2]:
        info, g = hct_gguf(smol, label, args)
        if g is not None:
            models.append((label, g, "stock"))
    for t in ["TQ1_0", "TQ2_0"]:
        _, path = llama_plain(smol, t)
        if path is not None:
            models.append((f"llama.cpp {t}", path, "stock"))
    _, iq2 = iq2_models(smol)
    for t, (g, err) in iq2.items():
        if g is not None:
            models.append((f"llama.cpp {t} (imatrix)", g, "stock"))
    _, q4 = llama_plain(smol, "Q4_0")
    models.append(("llama.cpp Q4_0", q4, "stock"))

    tool = Path(os.environ["HCT_LLAMA_BIN"]) / "llama-bench"
    samples = {label: {"pp": [], "tg": []} for label, _, _ in models}
    loads = [loadavg()]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for r_ in range(rounds):
        for label, path, kind in models:
            r = run([tool, "-m", path, "-p", str(BENCH_PP), "-n", str(BENCH_TG), "-t", "2", "-r", "1", "-o", "json"],
                    env=bench_env(kind), check=False)
            if r.returncode != 0:
                res["bench_errors"][label] = last_error_line(r, "llama-bench failed")
                continue
            for test in json.loads(r.stdout):
                samples[label]["pp" if test["n_prompt"] > 0 else "tg"].append(test["avg_ts"])
            print(f"[bench round {r_ + 1}/{rounds}] {label}: {samples[label]} (load {loadavg()})", file=sys.stderr)
        loads.append(loadavg())
    med = {label: {k: (statistics.median(v) if v else None) for k, v in s.items()} for label, s in samples.items()}
    q = med["llama.cpp Q4_0"]
    rows = {}
    for label, path, kind in models:
        m = med[label]
        rows[label] = {
            "runtime": "llama.cpp + libhct plugin (fast mode)" if kind == "plugin" else "stock llama.cpp",
            "gguf_bits_per_weight": peers.bits_per_weight(str(path))["bits_per_weight"] if kind == "stock" else
            tensor_bits_per_weight(path),
            f"pp{BENCH_PP}_tok_s": m["pp"], f"tg{BENCH_TG}_tok_s": m["tg"],
            f"pp{BENCH_PP}_samples": samples[label]["pp"], f"tg{BENCH_TG}_samples": samples[label]["tg"],
            "pp_ratio_to_q4_0": round(m["pp"] / q["pp"], 3) if m["pp"] and q["pp"] else None,
            "tg_ratio_to_q4_0": round(m["tg"] / q["tg"], 3) if m["tg"] and q["tg"] else None,
            **({"encode": encode[label.removesuffix(' (plugin)')]} if label.removesuffix(" (plugin)") in encode else {}),
        }
    res["bench"] = {"started": started, "rounds": rounds, "threads": 2,
                    "command": f"llama-bench -m MODEL -p {BENCH_PP} -n {BENCH_TG} -t 2 -r 1 -o json, per model per round",
                    "load_average_before_and_after_each_round": loads, "rows": rows}
    # Encoder speed of the plugin codecs, kept from the run that converted them.
    for codec, info in encode.items():
        res["plugin_encode"][codec] = info


def tensor_bits_per_weight(path):
    """Bits per weight of a plugin GGUF (gguf-py refuses its extension types; hct reads it)."""
    inspect = json.loads(run([HCT, "inspect", path, "--json", "--max-items", "100000"]).stdout)
    n_bytes = sum(t["length"] for t in inspect["tensors"])
    n_elems = sum(math.prod(t["shape"]) for t in inspect["tensors"])
    return 8.0 * n_bytes / n_elems


def part_encoder(res):
    """Ternary encoder alone: ffn_down matrices only (rows of whole blocks) minus a pass-through."""
    base = os.environ["HCT_SMOLLM2_DITHERED"]

    def timed(args):
        best, s = None, None
        for _ in range(3):
            out = WORK / "speed.hct"
            t0 = time.monotonic()
            s = json.loads(run([HCT, "convert", base, out, *args, "--threads", "2", "--json"]).stdout)
            dt = time.monotonic() - t0
            out.unlink()
            best = dt if best is None else min(best, dt)
        return best, s
    copy, _ = timed([])
    res["encoder"] = []
    for codec in ("tq1_0_absmean_v1", "tq2_0_absmean_v1"):
        t, s = timed(["--codec-for", f"*ffn_down*={codec}"])
        elems = sum(r["elements"] for r in s["tensor_reports"] if r["codec"] == codec)
        res["encoder"].append({"codec": codec, "elements": elems, "seconds_with_encode": round(t, 3),
                               "seconds_pass_through": round(copy, 3),
                               "melem_per_s": round(elems / max(t - copy, 1e-9) / 1e6, 1)})


# ------------------------------------------------------------------------------------------------
# rendering

def fmt(v, spec, scale=1.0):
    return "" if v is None else format(v * scale, spec)


def spread(samples):
    return f"{max(samples) / min(samples):.1f}×" if samples and min(samples) > 0 else ""


def types_text(row):
    return ", ".join(f"{k}×{v}" for k, v in sorted(row.get("tensor_types", {}).items(), key=lambda kv: -kv[1]))


def render(res):
    L = [BEGIN, "", "## Generated rows: ternary, IQ2 with an importance matrix, MiniLM, speed through llama.cpp", "",
         "Made by `compat-tests/quality/founding.sh rows` (`founding.py`; raw figures in `founding-rows.json`). "
         "Parts run at these times on the shared 2-core machine (load average: 1, 5, 15 minutes, before the part):", ""]
    for p in res["runs"]:
        L.append(f"- `{p['part']}`: {p['date']}, {p['minutes']:.1f} min, load {p['load_before']} → {p['load_after']} "
                 f"(`{p['command']}`)")
    L += ["", "### SmolLM2-135M-Instruct, dithered F32 base", "",
          "llama-perplexity, ctx 256, 16 chunks of the evaluation slice (`peers.sh ppl X.gguf --kl-base BASE`). "
          "Bits per weight: GGUF tensor bytes × 8 / all elements. HCT rows: no calibration."]
    imat = res.get("iq2_imatrix")
    if imat:
        c = imat["calibration_text"]
        L.append(f"IQ2 rows: importance matrix by `{imat['imatrix_command']}` on {c['bytes']:,} bytes of the Jargon "
                 f"File from byte {c['byte_offset']:,} (just after the evaluation slice, bytes "
                 f"{c['evaluation_slice_bytes'][0]:,}–{c['evaluation_slice_bytes'][1]:,}; no overlap): **calibrated** "
                 "on text of the same kind as the scored text, which favours them.")
    L += ["", "| row | bits/weight | perplexity | mean KLD | KLD p99 | top-1 | tensor types |",
          "|---|---:|---:|---:|---:|---:|---|"]
    for r in res["smollm2"].values():
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | | | infeasible: {r['infeasible']} |")
            continue
        L.append(f"| {r['codec']} | {r['gguf_bits_per_weight']:.4f} | {fmt(r.get('ppl'), ',.1f')} | "
                 f"{fmt(r.get('kld_mean'), '.4f')} | {fmt(r.get('kld_p99'), '.3f')} | "
                 f"{fmt(r.get('top1_agreement'), '.2f', 100)}% | {types_text(r)} |")
    sv = res.get("seedlm_vq_quality", [])
    for r in sv:
        L.append(f"| {r['codec']} (plugin; from `seedlm_vq.json`, {r['date']}) | {r['bits_per_weight']:.4f} | "
                 f"{r['ppl']:,.1f} | {r['kld_mean']:.4f} | | {100 * r['top1_agreement']:.2f}% | "
                 "token_embd Q8_0, rest the codec |")
    L += ["", "### all-MiniLM-L6-v2 (F32 base)", "",
          "`peers.sh embed X.gguf --reference F32`: cosine of sentence embeddings against the F32 model.", "",
          "| row | bits/weight | mean cosine | min cosine | tensor types |", "|---|---:|---:|---:|---|"]
    for r in res["minilm"].values():
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | infeasible: {r['infeasible']} |")
            continue
        L.append(f"| {r['codec']} | {r['gguf_bits_per_weight']:.4f} | {r['mean_cosine']:.4f} | "
                 f"{r['min_cosine']:.4f} | {types_text(r)} |")
    b = res.get("bench")
    if b:
        loads = b["load_average_before_and_after_each_round"]
        L += ["", "### Speed: llama-bench on SmolLM2 (dithered base), 2 threads", "",
              f"`{b['command']}`; {b['rounds']} rounds interleaved across models (started {b['started']}), median "
              f"tokens/s, ratios to llama.cpp Q4_0 from the same rounds. Load average before the rounds {loads[0]}, "
              f"after each round: {'; '.join(loads[1:])}. The spread columns give max ÷ min over the rounds of each "
              "row: where it is large, the machine's load, not the model, set the figure. Rows with the same tensor "
              "types (`tq1_0_absmean_v1` and llama.cpp TQ1_0; `tq2_0_absmean_v1` and TQ2_0) run the same ggml "
              "kernels on the same shapes, so their difference is a measure of the noise too.", "",
              f"| row | runtime | bits/weight | pp{BENCH_PP} tok/s | pp spread | tg{BENCH_TG} tok/s | tg spread | "
              "pp ÷ Q4_0 | tg ÷ Q4_0 | encode Melem/CPU-s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, r in b["rows"].items():
            enc = r.get("encode", res["plugin_encode"].get(label.removesuffix(" (plugin)"), {}))
            L.append(f"| {label} | {r['runtime']} | {r['gguf_bits_per_weight']:.4f} | "
                     f"{fmt(r[f'pp{BENCH_PP}_tok_s'], '.1f')} | {spread(r[f'pp{BENCH_PP}_samples'])} | "
                     f"{fmt(r[f'tg{BENCH_TG}_tok_s'], '.2f')} | {spread(r[f'tg{BENCH_TG}_samples'])} | "
                     f"{fmt(r['pp_ratio_to_q4_0'], '.3f')} | {fmt(r['tg_ratio_to_q4_0'], '.3f')} | "
                     f"{fmt(enc.get('encode_melem_per_cpu_second'), '.3f')} |")
    if res.get("bench_errors"):
        L += ["", "Bench errors: " + "; ".join(f"{k}: {v}" for k, v in res["bench_errors"].items())]
    if res.get("encoder"):
        L += ["", "### Ternary encoder speed (SmolLM2 ffn_down matrices, 2 threads, best of 3)", "",
              "| codec | elements | seconds (ffn_down encoded) | seconds (pass-through) | Melem/s |",
              "|---|---:|---:|---:|---:|"]
        for s in res["encoder"]:
            L.append(f"| {s['codec']} | {s['elements']:,} | {s['seconds_with_encode']:.3f} | "
                     f"{s['seconds_pass_through']:.3f} | {s['melem_per_s']:.1f} |")
    L += ["", END]
    return "\n".join(L) + "\n"


def write_md(res):
    """Replaces the generated section of founding.md (appended if the file has none)."""
    path = RESULTS / "founding.md"
    text = path.read_text() if path.exists() else ""
    section = render(res)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.rename(path)


def seedlm_vq_quality():
    """SeedLM/VQ perplexity rows already measured by seedlm_vq.sh (same base, text and settings)."""
    p = RESULTS / "seedlm_vq.json"
    if not p.exists():
        return []
    d = json.loads(p.read_text())
    return [{"codec": r["codec"], "date": d.get("date", "?"), **{k: r[k] for k in
             ("bits_per_weight", "ppl", "kld_mean", "top1_agreement")}}
            for r in d.get("smollm2", []) if r["codec"] in PLUGIN_CODECS and "kld_mean" in r]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--rounds", type=int, default=3, help="llama-bench rounds (bench part)")
    ap.add_argument("--out", default=str(RESULTS / "founding-rows.json"))
    ap.add_argument("--render", action="store_true", help="only re-render founding.md from --out")
    a = ap.parse_args()
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    for key in ("smollm2", "minilm", "plugin_encode", "bench_errors"):
        res.setdefault(key, {})
    res.setdefault("runs", [])
    res["seedlm_vq_quality"] = seedlm_vq_quality()
    if a.render:
        write_md(res)
        return
    parts = [p for p in a.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        sys.exit(f"unknown part(s) {sorted(unknown)}; parts are {PARTS}")
    WORK.mkdir(parents=True, exist_ok=True)
    for part in parts:
        start, load_before = time.monotonic(), loadavg()
        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        if part == "bench":
            res["bench_errors"] = {}
            part_bench(res, a.rounds)
        else:
            globals()[f"part_{part}"](res)
        res["runs"] = [r for r in res["runs"] if r["part"] != part] + [{
            "part": part, "date": date, "minutes": (time.monotonic() - start) / 60,
            "load_before": load_before, "load_after": loadavg(),
            "command": f"compat-tests/quality/founding.sh rows --parts {part}"
            + (f" --rounds {a.rounds}" if part == "bench" else "")}]
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(res, indent=1))
        tmp.rename(out)
        write_md(res)
        print(f"part {part} done in {(time.monotonic() - start) / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
