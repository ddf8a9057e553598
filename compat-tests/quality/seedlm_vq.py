#!/usr/bin/env python3
"""SeedLM and vector quantization (SPEC.md §7.9, §7.10) beside llama.cpp's types, in one run.

HCT rows: the model → HCT with one codec on every weight matrix except the token embedding
(kept at Q8_0 by `q8_0_mse_v1`, as the flagship rows do) → a plugin GGUF (`--gguf-mode plugin`,
the codec kept as an extension type) → the patched llama.cpp with libhct preloaded in its
default fast mode (libhct's `vec_dot` against Q8_0 activations), the same way llama.cpp's own
quantized types run. llama.cpp rows: `llama-quantize` default mixes of the same base; IQ2_XXS
and IQ2_XS need an importance matrix, made here with `llama-imatrix` on the evaluation text
itself (so those two rows are calibrated on the very text they are scored on: a favour to them).

Measured per row:
- SmolLM2-135M on the dithered F32 base: llama-perplexity perplexity, mean KL divergence and
  top-1 agreement against the base; llama-bench pp256/tg64 tokens/s at 2 threads (rounds
  interleaved across models, median);
- all-MiniLM-L6-v2: mean/min embedding cosine against the F32 model;
- bits per weight: payload bytes × 8 / all elements (HCT rows: the HCT file's tensors; llama.cpp
  rows: the GGUF's tensors, the same definition);
- encoder speed: elements encoded with the codec / CPU seconds of the `hct convert` process
  (user + system, 2 threads), and wall seconds. CPU time is reported because the machine is
  shared: wall time depends on what else runs.

Writes compat-tests/results/seedlm_vq.{json,md}.

  compat-tests/quality/seedlm_vq.sh [--codecs A,B] [--rounds N] [--skip-minilm]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HCT = ROOT / "target" / "release" / "hct"
LIBHCT = ROOT / "target" / "release" / "libhct.so"
sys.path.insert(0, str(ROOT / "compat-tests"))
import peers  # noqa: E402  (the shared peer machinery: perplexity, embeddings, quantize, bpw)

CODECS = ["seedlm_c8p3_s8_v1", "seedlm_c8p3_s12_v1", "vq8_r2x256_g32_v1"]
LLAMA = ["Q4_0", "Q3_K", "IQ2_XS", "IQ2_XXS"]
NEEDS_IMATRIX = {"IQ2_XS", "IQ2_XXS"}
EMBED = ["--codec-for", "token_embd.weight=q8_0_mse_v1"]
KEEP = ["--keep", "position_embd.weight", "--keep", "token_types.weight"]


def run(cmd, env=None, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-4000:]}")
    return r


def cpu_children():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def plugin_env(patched_bin):
    """Environment under which peers.py's llama.cpp tools are the patched build with libhct."""
    env = dict(os.environ)
    env["HCT_LLAMA_BIN"] = patched_bin
    env["LD_PRELOAD"] = str(LIBHCT)
    env["HCT_PLUGIN_MODE"] = "fast"
    return env


def with_env(env, fn, *args, **kw):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return fn(*args, **kw)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def hct_row(base, codec, work):
    """base GGUF → HCT (codec) → plugin GGUF. Returns (row, plugin gguf path)."""
    hct = work / f"{codec}.hct"
    c0, t0 = cpu_children(), time.monotonic()
    r = run([HCT, "convert", base, hct, "--codec", codec, *EMBED, *KEEP, "--threads", "2", "--json"],
            check=False)
    wall, cpu = time.monotonic() - t0, cpu_children() - c0
    if r.returncode != 0:
        return {"codec": codec, "kind": "hct", "infeasible": r.stderr.strip()[-500:]}, None
    summary = json.loads(r.stdout)
    inspect = json.loads(run([HCT, "inspect", hct, "--json", "--max-items", "100000"]).stdout)
    encoded = sum(t["elements"] for t in inspect["tensors"] if t["codec"] == codec)
    row = {"codec": codec, "kind": "hct",
           "bits_per_weight": summary["bits_per_weight_whole_file"],
           "encoded_elements": encoded,
           "encode_wall_seconds": round(wall, 1), "encode_cpu_seconds": round(cpu, 1),
           "encode_melem_per_cpu_second": round(encoded / cpu / 1e6, 4),
           "encode_melem_per_wall_second": round(encoded / wall / 1e6, 4)}
    gguf = work / f"{codec}.plugin.gguf"
    run([HCT, "convert", hct, gguf, "--gguf-mode", "plugin"])
    hct.unlink()
    return row, gguf


def imatrix(base, work, env):
    out = work / "imatrix.dat"
    if not out.exists():
        tool = Path(env["HCT_LLAMA_BIN"]) / "llama-imatrix"
        r = run([tool, "-m", base, "-f", env["HCT_TEXT_SLICE"], "-o", out, "-c", "512", "-t", "2"], check=False)
        if r.returncode != 0:
            return None, (r.stdout + r.stderr)[-600:]
    return out, None


def llama_row(base, t, work, env):
    if t not in NEEDS_IMATRIX:
        q = peers.quantize(base, t)
        return {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "bits_per_weight": q["bits_per_weight"],
                "tensor_types": q["tensor_types"]}, q["path"]
    im, err = imatrix(base, work, env)
    if im is None:
        return {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "infeasible": f"llama-imatrix failed: {err}"}, None
    out = work / f"{t}.gguf"
    tool = Path(env["HCT_LLAMA_BIN"]) / "llama-quantize"
    r = run([tool, "--allow-requantize", "--imatrix", im, base, out, t, "2"], check=False)
    if r.returncode != 0:
        return {"codec": f"llama.cpp {t}", "kind": "llama.cpp",
                "infeasible": f"llama-quantize failed: {(r.stdout + r.stderr)[-600:]}"}, None
    b = peers.bits_per_weight(str(out))
    return {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "imatrix": "llama-imatrix on the evaluation text",
            "bits_per_weight": b["bits_per_weight"], "tensor_types": b["tensor_types"]}, str(out)


def bench(models, rounds, env, patched_bin):
    """llama-bench pp256/tg64 at 2 threads, rounds interleaved across models; median tokens/s."""
    results = {name: {"pp256": [], "tg64": []} for name, _, _ in models}
    for _ in range(rounds):
        for name, path, kind in models:
            if kind == "hct":
                e, exe = plugin_env(patched_bin), Path(patched_bin) / "llama-bench"
            else:
                e, exe = dict(os.environ), Path(env["HCT_LLAMA_BIN"]) / "llama-bench"
            r = run([exe, "-m", path, "-p", "256", "-n", "64", "-r", "1", "-t", "2", "-o", "json"], env=e,
                    check=False)
            if r.returncode != 0:
                print(f"bench {name} failed: {r.stderr[-300:]}", file=sys.stderr)
                continue
            for test in json.loads(r.stdout):
                key = "pp256" if test["n_prompt"] else "tg64"
                results[name][key].append(test["avg_ts"])
            print(f"[bench] {name}: {results[name]}", file=sys.stderr)
    return {name: {k: (round(statistics.median(v), 1) if v else None) for k, v in d.items()}
            for name, d in results.items()}


def render(res):
    L = ["# SeedLM and vector quantization beside llama.cpp's types", ""]
    if res.get("note"):
        L += [f"Made {res['date']}. {res['note']}", ""]
    else:
        L += [f"Produced by `{res['command']}` in one run ({res.get('minutes', float('nan')):.1f} minutes, {res['date']}; "
              f"load average {res['load_before']} before, {res.get('load_after', '?')} after, on {res['cpu']}). "
              "The machine was shared with other jobs: wall times and tokens/s are lower than on an idle machine; "
              "encoder speed is also given per CPU-second.", "",
              "HCT rows: every weight matrix in the codec except `token_embd` (Q8_0 by `q8_0_mse_v1`); run as a "
              "plugin GGUF by the patched llama.cpp with libhct (fast mode: libhct's portable `vec_dot` against "
              "Q8_0 activations).", ""]
    L += ["llama.cpp rows: `llama-quantize` default mixes of the same base; IQ2_XXS/IQ2_XS with an importance "
          "matrix from `llama-imatrix` on the evaluation text itself (calibrated on the scored text, which favours "
          "them); HCT rows use no calibration. Bits per weight: tensor payload bytes × 8 / all elements.", ""]
    L += ["## SmolLM2-135M-Instruct, dithered F32 base", "",
          "| row | bits/weight | perplexity | mean KLD | top-1 | pp256 t/s | tg64 t/s | encode Melem/CPU-s | encode wall s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    speed = res.get("speed", {})
    for r in res["smollm2"]:
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | | | | | infeasible: {r['infeasible'][:200]} |")
            continue
        s = speed.get(r["codec"], {})
        enc = (f"{r['encode_melem_per_cpu_second']:.4f} | {r['encode_wall_seconds']:.0f}"
               if "encode_cpu_seconds" in r else " | ")
        L.append(f"| {r['codec']} | {r['bits_per_weight']:.3f} | {r.get('ppl', float('nan')):.2f} | "
                 f"{r.get('kld_mean', float('nan')):.4f} | {100 * r.get('top1_agreement', float('nan')):.2f}% | "
                 f"{s.get('pp256') or ''} | {s.get('tg64') or ''} | {enc} |")
    if res.get("base_ppl"):
        L += ["", f"Base (dithered F32) perplexity on the same text: {res['base_ppl']:.2f}."]
    L += ["", "## all-MiniLM-L6-v2 (F32 GGUF base)", "",
          "| row | bits/weight | mean cosine | min cosine | encode Melem/CPU-s |", "|---|---:|---:|---:|---:|"]
    for r in res.get("minilm", []):
        if "infeasible" in r:
            L.append(f"| {r['codec']} | | | | infeasible: {r['infeasible'][:200]} |")
            continue
        enc = f"{r['encode_melem_per_cpu_second']:.4f}" if "encode_cpu_seconds" in r else ""
        L.append(f"| {r['codec']} | {r['bits_per_weight']:.3f} | {r['mean_cosine']:.4f} | {r['min_cosine']:.4f} | {enc} |")
    L += claims(res)
    return "\n".join(L) + "\n"


def claims(res):
    """The founding documents' per-stage claims beside what this run measured."""
    smol = {r["codec"]: r for r in res["smollm2"] if "infeasible" not in r}
    mini = {r["codec"]: r for r in res.get("minilm", []) if "infeasible" not in r}

    def measured(codec, bpw):
        parts = [f"{bpw:.2f} bits per weight in the layout = {32 / bpw:.1f}× vs F32, {16 / bpw:.1f}× vs F16"]
        if codec in smol:
            r = smol[codec]
            parts.append(f"SmolLM2 whole file {r['bits_per_weight']:.2f} bpw (token_embd at Q8_0), "
                         f"mean KLD {r.get('kld_mean', float('nan')):.3f}, top-1 {100 * r.get('top1_agreement', float('nan')):.1f}%, "
                         f"perplexity {r.get('ppl', float('nan')):.1f}")
        if codec in mini:
            parts.append(f"MiniLM mean cosine {mini[codec]['mean_cosine']:.3f}")
        return "; ".join(parts)

    def stock(t):
        r = next((v for k, v in smol.items() if k == f"llama.cpp {t}" or k.startswith(f"llama.cpp {t} ")), None)
        return "" if r is None else (f"llama.cpp {t}: {r['bits_per_weight']:.2f} bpw, KLD {r.get('kld_mean', float('nan')):.3f}, "
                                     f"perplexity {r.get('ppl', float('nan')):.1f}")

    L = ["", "## The founding documents' claims", "",
         "The documents measured each stage on 100×100 tensors and quoted compression ratios; a ratio is "
         "fixed by the bits per weight a codec is built for, so the real question is what quality a model "
         "keeps at that size.", "",
         "| stage | claimed | measured here | verdict |", "|---|---|---|---|"]
    L.append("| SeedLM (LFSR seeds + 4-bit coefficients, data-free) | 5.3× compression; 3–4 bits per weight "
             f"| `seedlm_c8p3_s8_v1`: {measured('seedlm_c8p3_s8_v1', 3.0)}. `seedlm_c8p3_s12_v1`: "
             f"{measured('seedlm_c8p3_s12_v1', 3.5)}. `seedlm_c8p3_s16_v1` (the paper's 16-bit seeds, 4.0 bpw): "
             "encoder too slow for a whole model here (see the encoder speed note). "
             f"Beside: {stock('Q3_K')}; {stock('Q4_0')} "
             "| The ratio is real (it is the bit budget); whether the quality is usable is in the SmolLM2 "
             "table beside llama.cpp's types of similar size. |")
    L.append("| VPTQ (vector quantization, ~2 bits) | 15.4× compression | "
             f"`vq8_r2x256_g32_v1`: {measured('vq8_r2x256_g32_v1', 2.25)}. "
             f"Beside: {stock('IQ2_XS')}; {stock('IQ2_XXS')} "
             "| The ratio is close (2.25 bpw = 14.2× vs F32); the documents themselves say VPTQ is good only "
             "with Hessian calibration, and this codec is calibration-free. |")
    return L


KERNEL_SPEED = "\n## Kernel speed"


def write_md(path, text):
    """Writes the rendered results, keeping the hand-run kernel speed section (measured by
    `cargo bench -p hct-kernels --bench seedlm_vq`, not by this script) if the file has one."""
    old = path.read_text() if path.exists() else ""
    if KERNEL_SPEED in old:
        text = text.rstrip("\n") + "\n" + old[old.index(KERNEL_SPEED):]
    path.write_text(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "compat-tests" / "results" / "seedlm_vq"))
    ap.add_argument("--codecs", default=",".join(CODECS))
    ap.add_argument("--llama", default=",".join(LLAMA))
    ap.add_argument("--minilm-codecs", default=None, help="default: --codecs")
    ap.add_argument("--minilm-llama", default=None, help="default: --llama")
    ap.add_argument("--no-base-ppl", action="store_true", help="skip the base model's own perplexity")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--note", default="", help="with --merge: how the parts were run and what is missing")
    ap.add_argument("--merge", nargs="+", metavar="FILE",
                    help="merge the rows of results JSON files (later files add rows the earlier lack), then render")
    ap.add_argument("--render", help="only re-render the .md from this results JSON")
    a = ap.parse_args()
    out = Path(a.out)
    if a.merge:
        docs = [json.loads(Path(f).read_text()) for f in a.merge]
        res = dict(docs[0])
        for key in ("smollm2", "minilm"):
            rows = {}
            for d in docs:
                for r in d.get(key, []):
                    if r["codec"] not in rows or "infeasible" in rows[r["codec"]]:
                        rows[r["codec"]] = r
            res[key] = list(rows.values())
        res["speed"] = {k: v for d in docs for k, v in d.get("speed", {}).items()}
        res["command"] = "; ".join(d["command"] for d in docs)
        res["parts"] = [{k: d.get(k) for k in ("command", "date", "minutes", "load_before", "load_after")} for d in docs]
        res["note"] = a.note
        out.with_suffix(".json").write_text(json.dumps(res, indent=1))
        write_md(out.with_suffix(".md"), render(res))
        return
    if a.render:
        write_md(out.with_suffix(".md"), render(json.loads(Path(a.render).read_text())))
        return
    start = time.monotonic()
    env = dict(os.environ)
    patched_bin = env["HCT_LLAMA_PATCHED_BIN"]
    codecs = [c for c in a.codecs.split(",") if c]
    minilm_codecs = codecs if a.minilm_codecs is None else [c for c in a.minilm_codecs.split(",") if c]
    llama = [t for t in a.llama.split(",") if t]
    minilm_llama = llama if a.minilm_llama is None else [t for t in a.minilm_llama.split(",") if t]
    work = Path(tempfile.mkdtemp(prefix="hct-seedvq-"))
    res = {"command": "compat-tests/quality/seedlm_vq.sh " + " ".join(sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_before": open("/proc/loadavg").read().split()[0], "cpu": peers.cpu_model()}
    save = lambda: out.with_suffix(".json").write_text(json.dumps(res, indent=1))  # noqa: E731

    smol = env["HCT_SMOLLM2_DITHERED"]
    if not a.no_base_ppl:
        res["base_ppl"] = peers.perplexity(smol).get("ppl")
    res["smollm2"], models = [], []
    for codec in codecs:
        row, gguf = hct_row(smol, codec, work)
        if gguf is not None:
            row.update(with_env(plugin_env(patched_bin), peers.perplexity, str(gguf), kl_base=smol))
            models.append((codec, str(gguf), "hct"))
        res["smollm2"].append(row)
        print(f"{codec}: {json.dumps(row)}", file=sys.stderr)
        save()
    for t in llama:
        row, path = llama_row(smol, t, work, env)
        if path is not None:
            row.update(peers.perplexity(path, kl_base=smol))
            models.append((row["codec"], path, "llama.cpp"))
        res["smollm2"].append(row)
        print(f"{t}: {json.dumps(row)}", file=sys.stderr)
        save()
    if a.rounds > 0:
        res["speed"] = bench(models, a.rounds, env, patched_bin)
        save()

    ref = env["HCT_MINILM_F32"]
    res["minilm"] = []
    for codec in minilm_codecs:
        row, gguf = hct_row(ref, codec, work)
        if gguf is not None:
            e = with_env(plugin_env(patched_bin), peers.embeddings, str(gguf), reference=ref)
            row.update({k: e[k] for k in ("mean_cosine", "min_cosine")})
        res["minilm"].append(row)
        save()
    mini_work = work / "minilm"
    mini_work.mkdir()
    for t in minilm_llama:
        row, path = llama_row(ref, t, mini_work, env)
        if path is not None:
            e = peers.embeddings(path, reference=ref)
            row.update({k: e[k] for k in ("mean_cosine", "min_cosine")})
        res["minilm"].append(row)
        save()
    res["load_after"] = open("/proc/loadavg").read().split()[0]
    res["minutes"] = (time.monotonic() - start) / 60
    save()
    write_md(out.with_suffix(".md"), render(res))
    print(render(res))


if __name__ == "__main__":
    main()
