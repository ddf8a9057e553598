#!/usr/bin/env python3
"""The founding pipeline's ternary stage, measured beside llama.cpp's low-bit types, in one run.

Reuses flagship.py's machinery (HCT → native GGUF export, llama-quantize through peers.sh,
llama-perplexity KLD against the dithered F32 base, llama-embedding cosine for MiniLM).

Rows, on SmolLM2-135M (dithered F32 base) and all-MiniLM-L6-v2 (F32):
- `tq1_0_absmean_v1`, `tq2_0_absmean_v1` (SPEC.md §7.8) with `--fallback-codec ggml_q4_0` for
  matrices whose rows are not whole 256-element blocks and `token_embd` at Q8_0: the same mix
  llama-quantize makes for TQ1_0/TQ2_0 (it falls back to Q4_0 for such rows and keeps the
  token embedding at Q8_0), so the two differ only in the ternary encoder.
- `tq2_0_absmean_v1` with fallback Q8_0: isolates the damage of the ternary matrices alone.
- llama.cpp TQ1_0, TQ2_0, Q4_0 (no imatrix) and IQ2_XXS, IQ2_XS with an importance matrix
  that llama-imatrix computes from the EVALUATION text itself (the same slice perplexity
  scores: this favours the IQ2 rows; llama-quantize refuses these types without one).
- Speed: llama-bench pp64/tg16 (2 threads, interleaved rounds) of every SmolLM2 row through
  the stock llama.cpp build; ternary HCT tensors are ggml TQ blocks, which a plugin GGUF also
  keeps as built-in types, so plugin and stock builds run the same ggml kernels.
- Encode speed: whole-process seconds of each conversion at 2 threads, and the ternary encoder
  alone (the time of converting only the ffn_down matrices, less a pass-through conversion
  of the same file) in Melem/s.

Writes compat-tests/results/founding-ternary.{json,md}.
  compat-tests/quality/founding.sh
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flagship  # noqa: E402  (same directory)
from flagship import HCT, PEERS, hct_row, llama_row, peers, run  # noqa: E402

ROOT = flagship.ROOT
TERNARY = [
    ("tq1_0_absmean_v1", ["--codec", "tq1_0_absmean_v1", "--fallback-codec", "ggml_q4_0",
                          "--codec-for", "token_embd.weight=ggml_q8_0"]),
    ("tq2_0_absmean_v1", ["--codec", "tq2_0_absmean_v1", "--fallback-codec", "ggml_q4_0",
                          "--codec-for", "token_embd.weight=ggml_q8_0"]),
    ("tq2_0_absmean_v1, fallback Q8_0", ["--codec", "tq2_0_absmean_v1", "--fallback-codec", "ggml_q8_0",
                                         "--codec-for", "token_embd.weight=ggml_q8_0"]),
]
LLAMA_PLAIN = ["TQ1_0", "TQ2_0", "Q4_0"]
LLAMA_IMATRIX = ["IQ2_XXS", "IQ2_XS"]


def env_of_peers():
    return dict(line.split("=", 1) for line in
                (l.removeprefix("export ").strip().replace("'", "") for l in run(["bash", PEERS, "env"]).stdout.splitlines())
                if "=" in line)


def imatrix(env, base, text, work):
    out = work / f"{Path(base).stem}.imatrix.gguf"
    t0 = time.monotonic()
    r = run([Path(env["HCT_LLAMA_BIN"]) / "llama-imatrix", "-m", base, "-f", text, "-o", out,
             "-c", "512", "-t", "2"], check=False)
    if r.returncode != 0 or not out.exists():
        lines = r.stderr.strip().splitlines()
        why = [l for l in lines if "GGML_ASSERT" in l or "error" in l.lower()] or lines[-1:] or ["no output"]
        return None, [why[0].strip()]
    return out, round(time.monotonic() - t0, 1)


def llama_imatrix_row(env, base, t, imat, work):
    g = work / f"{Path(base).stem}-{t}.gguf"
    r = run([Path(env["HCT_LLAMA_BIN"]) / "llama-quantize", "--allow-requantize", "--imatrix", imat,
             base, g, t, "2"], check=False)
    if r.returncode != 0:
        return {"codec": f"llama.cpp {t} (imatrix)", "kind": "llama.cpp",
                "infeasible": (r.stderr.strip().splitlines() or ["llama-quantize failed"])[-1]}, None
    b = peers("bpw", g)
    return {"codec": f"llama.cpp {t} (imatrix)", "kind": "llama.cpp", "gguf_bits_per_weight": b["bits_per_weight"],
            "tensor_types": b["tensor_types"], "token_embd_type": flagship.token_embd_type(g)}, g


def encoder_speed(base, work):
    """Ternary encoder alone: ffn_down matrices only (rows of whole blocks) minus a pass-through."""
    def timed(args):
        best = None
        for _ in range(3):
            out = work / "speed.hct"
            t0 = time.monotonic()
            s = json.loads(run([HCT, "convert", base, out, *args, "--threads", "2", "--json"]).stdout)
            dt = time.monotonic() - t0
            out.unlink()
            best = dt if best is None else min(best, dt)
        return best, s
    copy, _ = timed([])
    out = []
    for codec in ("tq1_0_absmean_v1", "tq2_0_absmean_v1"):
        t, s = timed(["--codec-for", f"*ffn_down*={codec}"])
        elems = sum(r["elements"] for r in s["tensor_reports"] if r["codec"] == codec)
        out.append({"codec": codec, "elements": elems, "seconds_with_encode": round(t, 3),
                    "seconds_pass_through": round(copy, 3),
                    "melem_per_s": round(elems / max(t - copy, 1e-9) / 1e6, 1)})
    return out


def bench(env, models, rounds):
    """llama-bench pp64 / tg16, 2 threads, one repetition per model per round, interleaved."""
    tool = Path(env["HCT_LLAMA_BIN"]) / "llama-bench"
    res = {label: {"pp": [], "tg": []} for label in models}
    for _ in range(rounds):
        for label, path in models.items():
            r = run([tool, "-m", path, "-p", "64", "-n", "16", "-r", "1", "-t", "2", "-o", "json"], check=False)
            if r.returncode != 0:
                res[label]["error"] = (r.stderr.strip().splitlines() or ["llama-bench failed"])[-1]
                continue
            for t in json.loads(r.stdout):
                key = "pp" if t["n_prompt"] > 0 else "tg"
                res[label][key].append(t["avg_ts"])
    return {k: {"pp64_tok_s": statistics.median(v["pp"]) if v["pp"] else None,
                "tg16_tok_s": statistics.median(v["tg"]) if v["tg"] else None,
                "rounds": rounds, **({"error": v["error"]} if "error" in v else {})} for k, v in res.items()}


def model_rows(base, measure, work, env, text, keep_files):
    rows, files = [], {}
    for label, args in TERNARY:
        t0 = time.monotonic()
        row, g = hct_row(base, label, args, work, False)
        row["convert_seconds_2_threads"] = round(time.monotonic() - t0, 2)
        if g is not None:
            row.update(measure(g))
            (files.__setitem__(label, g) if keep_files else g.unlink())
        rows.append(row)
        print(f"{label}: {row.get('kld_mean', row.get('mean_cosine'))}", file=sys.stderr)
    for t in LLAMA_PLAIN:
        row, path = llama_row(base, t)
        row.update(measure(path))
        files[row["codec"]] = Path(path)
        rows.append(row)
        print(f"{row['codec']}: {row.get('kld_mean', row.get('mean_cosine'))}", file=sys.stderr)
    imat, info = imatrix(env, base, text, work)
    for t in LLAMA_IMATRIX:
        if imat is None:
            rows.append({"codec": f"llama.cpp {t} (imatrix)", "kind": "llama.cpp",
                         "infeasible": f"llama-imatrix failed: {info[0]}"})
            continue
        row, g = llama_imatrix_row(env, base, t, imat, work)
        row["imatrix_seconds"] = info
        if g is not None:
            row.update(measure(g))
            files[row["codec"]] = g
        rows.append(row)
        print(f"{row['codec']}: {row.get('kld_mean', row.get('mean_cosine'))}", file=sys.stderr)
    return rows, files


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def render(res):
    L = ["# Ternary codecs beside llama.cpp's low-bit types", "",
         f"Produced by `{res['command']}` in one run ({res['minutes']:.1f} minutes, {res['date']}), on a 2-core "
         "machine shared with other builds (speed figures are noisy; llama-bench rounds are interleaved).", "",
         "Every row is a GGUF run by the same stock llama.cpp build. HCT rows are exported natively "
         "(`hct convert X.hct X.gguf`): `tq*_absmean_v1` blocks are ggml TQ1_0/TQ2_0 blocks, copied byte for byte. "
         "Bits per weight: GGUF tensor bytes × 8 / all elements. SmolLM2: KL divergence and top-1 against the "
         "dithered F32 base (perplexity of that base: "
         f"{res.get('ppl_base', float('nan')):.2f}). MiniLM: mean embedding cosine against F32.", "",
         "Only matrices whose rows are whole 256-element blocks can be ternary: in SmolLM2 the 30 `ffn_down` "
         "(rows of 1,536), in MiniLM the 6 `output.dense` / `ffn_down` (rows of 1,536); every other matrix has "
         "rows of 576 (384). llama-quantize silently stores those as Q4_0; HCT rows name the same fallback "
         "explicitly (`--fallback-codec ggml_q4_0`), and the token embedding is Q8_0 on both sides. "
         "IQ2 rows use an importance matrix computed by llama-imatrix from the evaluation text itself.", "",
         "## SmolLM2-135M-Instruct, dithered F32 base", "",
         "| row | bits/weight | ppl | mean KLD | top-1 | pp64 tok/s | tg16 tok/s | convert s | tensor types |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["smollm2"]:
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | | | | | infeasible: {r['infeasible']} |")
            continue
        b = res["bench"].get(r["codec"], {})
        types = ", ".join(f"{k}×{v}" for k, v in sorted(r["tensor_types"].items()))
        L.append(f"| {r['codec']} | {r['gguf_bits_per_weight']:.4f} | {r['ppl']:.1f} | {r['kld_mean']:.4f} | "
                 f"{100 * r['top1_agreement']:.2f}% | {fmt(b.get('pp64_tok_s'), '.1f')} | {fmt(b.get('tg16_tok_s'), '.1f')} | "
                 f"{fmt(r.get('convert_seconds_2_threads'), '.1f')} | {types} |")
    L += ["", "## all-MiniLM-L6-v2 (F32 base)", "",
          "| row | bits/weight | mean cosine | min cosine | tensor types |", "|---|---:|---:|---:|---|"]
    for r in res["minilm"]:
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | infeasible: {r['infeasible']} |")
            continue
        types = ", ".join(f"{k}×{v}" for k, v in sorted(r["tensor_types"].items()))
        L.append(f"| {r['codec']} | {r['gguf_bits_per_weight']:.4f} | {r['mean_cosine']:.6f} | "
                 f"{r['min_cosine']:.6f} | {types} |")
    L += ["", "## Ternary encoder speed (SmolLM2 ffn_down matrices, 2 threads, best of 3)", "",
          "| codec | elements | seconds (convert with ffn_down encoded) | seconds (pass-through) | Melem/s |",
          "|---|---:|---:|---:|---:|"]
    for s in res["encoder_speed"]:
        L.append(f"| {s['codec']} | {s['elements']:,} | {s['seconds_with_encode']:.3f} | "
                 f"{s['seconds_pass_through']:.3f} | {s['melem_per_s']:.1f} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "compat-tests" / "results" / "founding-ternary"))
    ap.add_argument("--bench-rounds", type=int, default=2)
    ap.add_argument("--render", help="only re-render the .md from this results JSON")
    a = ap.parse_args()
    out = Path(a.out)
    if a.render:
        out.with_suffix(".md").write_text(render(json.loads(Path(a.render).read_text())))
        return
    start = time.monotonic()
    env = env_of_peers()
    work = Path(tempfile.mkdtemp(prefix="hct-founding-"))
    res = {"command": "compat-tests/quality/founding.sh", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    smol, text = env["HCT_SMOLLM2_DITHERED"], env["HCT_TEXT_SLICE"]
    res["smollm2"], files = model_rows(smol, lambda g: peers("ppl", g, "--kl-base", smol), work, env, text, True)
    res["ppl_base"] = next((r["ppl_base"] for r in res["smollm2"] if "ppl_base" in r), None)
    (work / "partial.json").write_text(json.dumps(res, indent=1))
    res["bench"] = bench(env, files, a.bench_rounds)
    for label, g in files.items():
        if str(g).startswith(str(work)):
            g.unlink()
    res["encoder_speed"] = encoder_speed(smol, work)
    ref = env["HCT_MINILM_F32"]

    def embed(g):
        e = peers("embed", g, "--reference", ref)
        return {k: e[k] for k in ("mean_cosine", "min_cosine")}
    res["minilm"], _ = model_rows(ref, embed, work, env, env["HCT_SENTENCES"], False)
    res["minutes"] = (time.monotonic() - start) / 60
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()
