"""Judges HCT's conversions with peers nobody here wrote (llama.cpp's gguf-py, PyPI safetensors).

    gguf-same A.gguf B.gguf             every key, value type, value and order; every tensor's
                                        name, shape, type and bytes, as gguf-py reads them
    st-same A.safetensors B.safetensors every tensor's dtype, shape and bytes, and __metadata__
    st-vs-gguf-dequant OUT.safetensors SRC.gguf
                                        OUT (hct convert --dtype f32) equals gguf-py's own
                                        dequantization of SRC, bit for bit, for every tensor
Each prints a JSON summary and exits non-zero on the first difference.
"""
import json
import sys

import numpy as np


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def gguf_fields(path):
    from gguf import GGUFReader

    r = GGUFReader(path)
    fields = []
    for name, f in r.fields.items():
        # Raw parts: the exact bytes of each field as gguf-py parsed them (type ids included).
        fields.append((name, [int(t) for t in f.types], [bytes(p.tobytes()) for p in f.parts]))
    tensors = [(t.name, [int(d) for d in t.shape], int(t.tensor_type), bytes(t.data.tobytes())) for t in r.tensors]
    return fields, tensors


def gguf_same(a, b):
    fa, ta = gguf_fields(a)
    fb, tb = gguf_fields(b)
    if [f[0] for f in fa] != [f[0] for f in fb]:
        fail(f"key order or set differs: {[f[0] for f in fa]} vs {[f[0] for f in fb]}")
    for x, y in zip(fa, fb):
        if x != y:
            fail(f"field {x[0]!r} differs (types {x[1]} vs {y[1]})")
    if len(ta) != len(tb):
        fail(f"{len(ta)} tensors vs {len(tb)}")
    for x, y in zip(ta, tb):
        for what, i in (("name", 0), ("shape", 1), ("type", 2), ("bytes", 3)):
            if x[i] != y[i]:
                fail(f"tensor {x[0]!r}: {what} differs")
    print(json.dumps({"ok": True, "check": "gguf-same", "fields": len(fa), "tensors": len(ta)}))


def st_same(a, b):
    from safetensors import safe_open

    with safe_open(a, "numpy") as fa, safe_open(b, "numpy") as fb:
        if fa.metadata() != fb.metadata():
            fail(f"__metadata__ differs: {fa.metadata()} vs {fb.metadata()}")
        ka, kb = sorted(fa.keys()), sorted(fb.keys())
        if ka != kb:
            fail(f"tensor names differ: {set(ka) ^ set(kb)}")
        for k in ka:
            x, y = fa.get_tensor(k), fb.get_tensor(k)
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                fail(f"tensor {k!r} differs ({x.dtype}{x.shape} vs {y.dtype}{y.shape})")
        print(json.dumps({"ok": True, "check": "st-same", "tensors": len(ka), "metadata": fa.metadata()}))


def st_vs_gguf_dequant(st_path, gguf_path):
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    r = GGUFReader(gguf_path)
    types = {}
    with safe_open(st_path, "numpy") as f:
        for t in r.tensors:
            expected = dequantize(t.data, t.tensor_type).astype(np.float32)
            got = f.get_tensor(t.name)
            if got.dtype != np.float32:
                fail(f"tensor {t.name!r} is {got.dtype}, expected float32")
            if got.size != expected.size:
                fail(f"tensor {t.name!r}: {got.size} elements vs {expected.size}")
            # gguf-py's arrays are row-major with the GGUF dims reversed, as HCT's shapes are.
            if list(got.shape) != list(expected.shape):
                fail(f"tensor {t.name!r}: shape {list(got.shape)} vs gguf-py {list(expected.shape)}")
            diff = np.flatnonzero(got.view(np.uint32).ravel() != expected.view(np.uint32).ravel())
            if diff.size:
                i = int(diff[0])
                fail(f"tensor {t.name!r} ({t.tensor_type.name}): {diff.size} elements differ, first at {i}: "
                     f"{got.ravel()[i]!r} vs {expected.ravel()[i]!r}")
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    print(json.dumps({"ok": True, "check": "st-vs-gguf-dequant", "tensors_by_type": types}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"gguf-same": gguf_same, "st-same": st_same, "st-vs-gguf-dequant": st_vs_gguf_dequant}[cmd](*args)
