"""Compares the GGUF llama.cpp's convert_hf_to_gguf.py writes with the one `hct convert` writes
from the same Hugging Face folder, as llama.cpp's own gguf-py reads them.

    compare_gguf.py PY.gguf HCT.gguf [--allow-key-prefix P]...

Metadata: the same keys with the same value types and values (arrays element by element).
Tensors: the same names, shapes, types and bytes (order may differ). Keys under an allowed
prefix may differ, and are listed. Prints a JSON report; exits 1 on any other difference.
"""
import argparse
import json
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType


def field_value(f):
    """A field as (type names, python value): strings decoded, arrays as lists."""
    types = [GGUFValueType(t).name for t in f.types]
    if f.types[0] == GGUFValueType.ARRAY:
        vals = [f.parts[i] for i in f.data]
        if f.types[-1] == GGUFValueType.STRING:
            return types, [bytes(v).decode("utf-8", "replace") for v in vals]
        return types, [v.tolist()[0] if hasattr(v, "tolist") else v for v in vals]
    part = f.parts[f.data[0]]
    if f.types[0] == GGUFValueType.STRING:
        return types, bytes(part).decode("utf-8", "replace")
    return types, part.tolist()[0]


def short(v, n=120):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + f"... ({len(v) if isinstance(v, list) else len(s)} items/chars)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("python_gguf")
    ap.add_argument("hct_gguf")
    ap.add_argument("--allow-key-prefix", action="append", default=[])
    a = ap.parse_args()
    ra, rb = GGUFReader(a.python_gguf), GGUFReader(a.hct_gguf)
    skip = ("GGUF.",)  # the reader's own header pseudo-fields
    fa = {k: field_value(f) for k, f in ra.fields.items() if not k.startswith(skip)}
    fb = {k: field_value(f) for k, f in rb.fields.items() if not k.startswith(skip)}
    allowed = lambda k: any(k.startswith(p) for p in a.allow_key_prefix)
    problems, deliberate = [], []
    for k in sorted(set(fa) | set(fb)):
        if k in fa and k in fb:
            if fa[k] == fb[k]:
                continue
            what = {"key": k, "python": [fa[k][0], short(fa[k][1])], "hct": [fb[k][0], short(fb[k][1])]}
            if isinstance(fa[k][1], list) and isinstance(fb[k][1], list):
                diff = [i for i, (x, y) in enumerate(zip(fa[k][1], fb[k][1])) if x != y]
                what["first_differing_items"] = [(i, fa[k][1][i], fb[k][1][i]) for i in diff[:5]]
                what["lengths"] = [len(fa[k][1]), len(fb[k][1])]
        else:
            side = "python" if k in fa else "hct"
            what = {"key": k, "only_in": side, "value": short((fa if k in fa else fb)[k][1])}
        (deliberate if allowed(k) else problems).append(what)
    ta = {t.name: t for t in ra.tensors}
    tb = {t.name: t for t in rb.tensors}
    tensor_problems = []
    for n in sorted(set(ta) | set(tb)):
        if n not in ta or n not in tb:
            tensor_problems.append({"tensor": n, "only_in": "python" if n in ta else "hct"})
            continue
        x, y = ta[n], tb[n]
        if [int(d) for d in x.shape] != [int(d) for d in y.shape]:
            tensor_problems.append({"tensor": n, "shape": [x.shape.tolist(), y.shape.tolist()]})
        elif int(x.tensor_type) != int(y.tensor_type):
            tensor_problems.append({"tensor": n, "type": [x.tensor_type.name, y.tensor_type.name]})
        elif x.data.tobytes() != y.data.tobytes():
            tensor_problems.append({"tensor": n, "bytes_differ": True})
    report = {
        "python_gguf": a.python_gguf,
        "hct_gguf": a.hct_gguf,
        "keys_compared": len(set(fa) | set(fb)),
        "keys_equal": sum(1 for k in fa if k in fb and fa[k] == fb[k]),
        "tensors_compared": len(set(ta) | set(tb)),
        "tensors_identical": sum(1 for n in ta if n in tb) - len([p for p in tensor_problems if "only_in" not in p]),
        "deliberate_differences": deliberate,
        "differences": problems,
        "tensor_differences": tensor_problems,
        "ok": not problems and not tensor_problems,
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
