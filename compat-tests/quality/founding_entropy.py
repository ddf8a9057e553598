#!/usr/bin/env python3
"""What an entropy stage (zstd, LZMA) saves on every codec's payload of the real models.

For SmolLM2-135M (dithered F32 base) and all-MiniLM-L6-v2 (F32), each codec that this build
encodes is applied to every weight matrix (`hct convert BASE X.hct --codec C`; ternary codecs
with `--fallback-codec ggml_q8_0` for rows that are not whole 256-element blocks, and only
their ternary tensors counted). The payloads of that codec's matrices are then compressed
one tensor at a time by `format-spec/examples/entropy_gain.rs` (zstd level 3 and level 19,
level 9 above 150 MiB; decompression GB/s on one thread), and a sample (the first 16 MiB of
those payloads, in tensor order) by LZMA (Python's `lzma`, preset 9 | extreme, the xz
format) for the founding documents' LZMA stage.

Writes compat-tests/results/founding-entropy.{json,md}.
  compat-tests/quality/founding.sh entropy
"""
import argparse
import json
import lzma
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HCT = ROOT / "target" / "release" / "hct"
GAIN = ROOT / "target" / "release" / "examples" / "entropy_gain"
PEERS = ROOT / "compat-tests" / "peers.sh"
CODECS = ["f32", "f16", "bf16", "ggml_q8_0", "q8_0_mse_v1", "q5_0_mse_v1", "ggml_q4_1", "ggml_q4_0",
          "q4_0_mse_v1", "iq4_nl_mse_v1", "int4_g8_fp16_v1", "int4_g16_fp16_v1", "int4_g32_fp16_v1",
          "int4_opt_v1", "tq2_0_absmean_v1", "tq1_0_absmean_v1"]
LZMA_SAMPLE = 16 << 20
KEEP = ["--keep", "position_embd.weight", "--keep", "token_types.weight"]


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-3000:]}")
    return r.stdout


def lzma_sample(hct, codec):
    info = json.loads(run([HCT, "inspect", hct, "--json"]))
    sample = bytearray()
    with open(hct, "rb") as f:
        for t in info["tensors"]:
            if t["codec"] != codec or len(t["shape"]) < 2 or len(sample) >= LZMA_SAMPLE:
                continue
            f.seek(t["offset"])
            sample += f.read(min(t["length"], LZMA_SAMPLE - len(sample)))
    t0 = time.monotonic()
    packed = lzma.compress(bytes(sample), preset=9 | lzma.PRESET_EXTREME)
    secs = time.monotonic() - t0
    t0 = time.monotonic()
    lzma.decompress(packed)
    dsecs = time.monotonic() - t0
    return {"sample_bytes": len(sample), "bytes": len(packed), "ratio": len(sample) / len(packed),
            "compress_seconds": round(secs, 2), "decompress_gb_per_s": len(sample) / dsecs / 1e9}


def measure(base, model, work):
    rows = []
    for codec in CODECS:
        hct = work / f"{model}.{codec}.hct"
        args = [] if codec == "f32" else ["--codec", codec]
        if codec.startswith("tq"):
            args += ["--fallback-codec", "ggml_q8_0"]
        run([HCT, "convert", base, hct, *args, *KEEP, "--threads", "2"])
        found = [json.loads(l) for l in run([GAIN, hct]).splitlines()]
        row = next((r for r in found if r["codec"] == codec), None)
        if row is None:
            rows.append({"model": model, "codec": codec, "note": "no matrix took this codec"})
        else:
            row.pop("file")
            row["model"] = model
            row["lzma"] = lzma_sample(hct, codec)
            rows.append(row)
            print(f"{model} {codec}: zstd3 {row['zstd3']['ratio']:.4f}, lzma {row['lzma']['ratio']:.4f}",
                  file=sys.stderr)
        hct.unlink()
    return rows


def render(res):
    L = ["# An entropy stage on every codec's payload", "",
         f"Produced by `{res['command']}` ({res['minutes']:.1f} minutes, {res['date']}) on a 2-core machine "
         "shared with other builds (throughput figures are noisy).", "",
         "Each row: the weight-matrix payloads of one codec (every matrix converted with `--codec`; ternary "
         "codecs only on rows of whole 256-element blocks, the rest Q8_0 and not counted), compressed one "
         "tensor at a time. zstd: level 3 and level 19 (level 9 where marked), decompression on one thread "
         "including the output allocation. LZMA: xz preset 9e on the first 16 MiB of the same payloads. "
         "Ratio = bytes before / bytes after.", "",
         "| model | codec | matrices | payload bytes | zstd-3 ratio | zstd-19 ratio | zstd-19 bytes | zstd decode GB/s | LZMA-9e ratio (16 MiB) |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        if "note" in r:
            L.append(f"| {r['model']} | {r['codec']} | | | | | | | {r['note']} |")
            continue
        strong = r.get("zstd19") or r.get("zstd9")
        mark = "" if "zstd19" in r else " (level 9)"
        L.append(f"| {r['model']} | `{r['codec']}` | {r['tensors']} | {r['bytes']:,} | {r['zstd3']['ratio']:.4f} | "
                 f"{strong['ratio']:.4f}{mark} | {strong['bytes']:,} | {strong['decompress_gb_per_s']:.2f} | "
                 f"{r['lzma']['ratio']:.4f} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "compat-tests" / "results" / "founding-entropy"))
    ap.add_argument("--render")
    a = ap.parse_args()
    out = Path(a.out)
    if a.render:
        out.with_suffix(".md").write_text(render(json.loads(Path(a.render).read_text())))
        return
    env = dict(line.split("=", 1) for line in
               (l.removeprefix("export ").strip().replace("'", "") for l in run(["bash", PEERS, "env"]).splitlines())
               if "=" in line)
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="hct-entropy-"))
    res = {"command": "compat-tests/quality/founding.sh entropy",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": []}
    for model, base in (("SmolLM2", env["HCT_SMOLLM2_DITHERED"]), ("MiniLM", env["HCT_MINILM_F32"])):
        res["rows"] += measure(base, model, work)
        out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    res["minutes"] = (time.monotonic() - start) / 60
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()
