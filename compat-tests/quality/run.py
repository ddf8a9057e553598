#!/usr/bin/env python3
"""HCT codecs against llama.cpp's types on the same models, text, sentences and tool.

For each codec: the F32 model → HCT (weight matrices under the codec; token_embd as ggml_q8_0,
as llama-quantize keeps it for these types) → GGUF with every HCT-coded tensor decoded to F32,
so stock llama.cpp evaluates exactly what HCT decodes. SmolLM2: perplexity, KL divergence and
top-1 agreement against the F32 model's logits, on two bases (the dequantized Q4_1 source, and
the dithered copy that removes the source-grid advantage). MiniLM: mean embedding cosine
against the F32 model. llama.cpp's own types come from `peers.sh quantize` of the same base,
measured in the same run. Also checks that 1 and 2 encoder threads give identical files.

  compat-tests/quality/run.py [--codecs a,b,...] [--out compat-tests/results/int4]
Run through the peers' tools Python (see compat-tests/quality/run.sh).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HCT = ROOT / "target" / "release" / "hct"
PEERS = Path(os.environ.get("HCT_PEERS_SH", ROOT / "compat-tests" / "peers.sh"))
LLAMA_SMOL = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_1", "Q4_0"]
LLAMA_MINILM = ["Q8_0", "Q5_0", "Q4_1", "Q4_0"]
KEEP = ["--codec-for", "token_embd.weight=ggml_q8_0",
        # Embedding tables that llama.cpp adds (not multiplies) stay at source precision, as
        # llama-quantize keeps them: a quantized operand of ADD aborts ggml.
        "--keep", "position_embd.weight", "--keep", "token_types.weight"]


def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-4000:]}")
    return r.stdout


def peers(*args):
    return json.loads(run(["bash", PEERS, *args]))


def hct_json(*args):
    return json.loads(run([HCT, *args, "--json"]))


def encode(base_gguf, codec, work, check_threads):
    """base GGUF → HCT under `codec` → decoded-F32 GGUF. Returns (gguf path, summary)."""
    tag = f"{Path(base_gguf).stem}.{codec}"
    hct = work / f"{tag}.hct"
    t0 = time.time()
    summary = hct_json("convert", base_gguf, hct, "--codec", codec, *KEEP, "--threads", "2")
    seconds = time.time() - t0
    if check_threads:
        again = work / f"{tag}.t1.hct"
        hct_json("convert", base_gguf, again, "--codec", codec, *KEEP, "--threads", "1")
        if hct.read_bytes() != again.read_bytes():
            sys.exit(f"{codec}: 1-thread and 2-thread outputs differ")
        again.unlink()
    gguf = work / f"{tag}.f32.gguf"
    hct_json("convert", hct, gguf, "--dtype", "f32", "--gguf-mode", "decoded")
    q = [r["quality"] for r in summary["tensor_reports"] if r.get("quality") and r["codec"] == codec]
    rel = sum(x["rel_rms_error"] for x in q) / max(len(q), 1)
    return gguf, {
        "codec": codec,
        "hct_bits_per_weight_whole_file": summary["bits_per_weight_whole_file"],
        "bits_per_weight_codec_tensors": summary["bits_per_weight_re_encoded"],
        "mean_tensor_rel_rms_error": rel,
        "encode_seconds_2_threads": seconds,
        "hct_file": str(hct),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--codecs", default="int4_g8_fp16_v1,int4_g16_fp16_v1,int4_g32_fp16_v1,int4_opt_v1")
    ap.add_argument("--out", default=str(ROOT / "compat-tests" / "results" / "int4"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--no-thread-check", action="store_true")
    ap.add_argument("--only", choices=["smollm2", "minilm"], help="run one model's section")
    a = ap.parse_args()
    codecs = a.codecs.split(",")
    env = dict(line.split("=", 1) for line in
               (l.removeprefix("export ").strip() for l in run(["bash", PEERS, "env"]).splitlines()) if "=" in line)
    work = Path(a.work or tempfile.mkdtemp(prefix="hct-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"command": " ".join(["compat-tests/quality/run.sh"] + sys.argv[1:]), "codecs": codecs, "smollm2": {}, "minilm": []}

    bases = [("dequantized", env["HCT_SMOLLM2_F32"]), ("dithered", env["HCT_SMOLLM2_DITHERED"])]
    for base_name, base in (bases if a.only in (None, "smollm2") else []):
        rows = []
        for codec in codecs:
            gguf, row = encode(base, codec, work, check_threads=not a.no_thread_check and base_name == "dequantized")
            row.update(peers("ppl", gguf, "--kl-base", base))
            row["kind"] = "hct"
            rows.append(row)
            Path(row["hct_file"]).unlink()
            gguf.unlink()
            print(f"smollm2/{base_name} {codec}: ppl {row['ppl']:.4f} kld {row['kld_mean']:.6f}", file=sys.stderr)
        for t in LLAMA_SMOL:
            q = peers("quantize", base, t)
            row = {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "gguf_bits_per_weight": q["bits_per_weight"]}
            row.update(peers("ppl", q["path"], "--kl-base", base))
            rows.append(row)
        results["smollm2"][base_name] = rows

    ref = env["HCT_MINILM_F32"]
    for codec in (codecs if a.only in (None, "minilm") else []):
        gguf, row = encode(ref, codec, work, check_threads=False)
        row.update(peers("embed", gguf, "--reference", ref))
        for k in ("vectors", "cosines"):
            row.pop(k, None)
        row["kind"] = "hct"
        results["minilm"].append(row)
        Path(row["hct_file"]).unlink()
        gguf.unlink()
    for t in (LLAMA_MINILM if a.only in (None, "minilm") else []):
        q = peers("quantize", ref, t)
        row = {"codec": f"llama.cpp {t}", "kind": "llama.cpp", "gguf_bits_per_weight": q["bits_per_weight"]}
        row.update(peers("embed", q["path"], "--reference", ref))
        for k in ("vectors", "cosines"):
            row.pop(k, None)
        results["minilm"].append(row)

    out = Path(a.out + (f"-{a.only}" if a.only else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(render(results))
    print(render(results))


def bpw(r):
    return r.get("hct_bits_per_weight_whole_file", r.get("gguf_bits_per_weight"))


def render(res):
    L = ["# HCT codecs beside llama.cpp's types", "",
         f"Produced by `{res['command']}`.", "",
         "HCT rows: the F32 model converted with `--codec ID --codec-for token_embd.weight=ggml_q8_0` (and "
         "`position_embd`/`token_types` kept, as llama-quantize keeps them), then exported with every coded tensor "
         "decoded to F32 (`hct convert X.hct X.gguf --dtype f32 --gguf-mode decoded`), so llama.cpp evaluates "
         "exactly what HCT decodes. Bits per weight: the HCT file's bytes × 8 / all elements (norms and embeddings "
         "included); llama.cpp rows: the GGUF's tensor bytes × 8 / all elements. Same text slice, sentences, context, "
         "threads (2) and build as `compat-tests/results/baseline.md`.", ""]
    for base, rows in res["smollm2"].items():
        L += [f"## SmolLM2-135M-Instruct, {base} F32 base", ""]
        if base == "dequantized":
            L += ["Grid-alignment caveat: this base is the Q4_1 source dequantized, so codecs sharing Q4_1's grid "
                  "(`int4_g32_fp16_v1`, llama.cpp Q4_1: asymmetric, groups of 32 along rows) can reproduce it nearly "
                  "exactly. The dithered base below removes that advantage.", ""]
        L += ["| codec | bits/weight | perplexity | mean KLD | KLD p99 | top-1 agreement | mean tensor rel. RMS error |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            rel = f"{r['mean_tensor_rel_rms_error']:.5f}" if "mean_tensor_rel_rms_error" in r else ""
            L.append(f"| {r['codec']} | {bpw(r):.4f} | {r['ppl']:.4f} | {r['kld_mean']:.6f} | {r['kld_p99']:.6f} | "
                     f"{100 * r['top1_agreement']:.3f}% | {rel} |")
        L.append("")
    if res["minilm"]:
        L += ["## all-MiniLM-L6-v2 (F32 GGUF base)", "",
              "| codec | bits/weight | mean cosine | min cosine |", "|---|---:|---:|---:|"]
    for r in res["minilm"]:
        L.append(f"| {r['codec']} | {bpw(r):.4f} | {r['mean_cosine']:.6f} | {r['min_cosine']:.6f} |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
