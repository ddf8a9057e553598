#!/usr/bin/env python3
"""Golden vectors for HCT's ggml-native codecs, taken from the real peers.

Writes format-spec/tests/vectors/ggml/<type>.json: for each ggml type HCT decodes, rows of
block bytes and the f32 values the peer dequantizes them to (as IEEE bit patterns, so the
Rust test compares bit for bit); for the types HCT encodes, f32 rows and the bytes the
peer quantizes them to.

Peers:
  * PyPI `gguf` (llama.cpp's own Python package): `gguf.quants.dequantize` / `quantize`.
  * ggml's C reference (`dequantize_row_*`, `quantize_row_*_ref`) from libggml-base built
    from the pinned llama.cpp source, called through ctypes. It is authoritative: where
    both peers cover a type they must agree bit for bit, or the script stops; where only
    ggml covers a type (Q1_0, Q2_0, Q8_K) the vectors come from ggml alone.
  * The plain element types (I8 … F64) have no ggml conversion to f32; their vectors are
    numpy's `astype(float32)`, the value conversion HCT defines.

Block bytes are deterministic pseudo-random (splitmix64, seeded per type) except the scale
fields, which are set to chosen values so that every block is finite and the edge cases
are present: zero and negative-zero scales, negative scales, the largest and subnormal
binary16 scales, and all-ones / all-zeros quant bits.

Usage (the library build takes ~15 s on 2 cores):
  cmake -G Ninja -S /tmp/llama.cpp-src-readonly -B /tmp/ggmlq-build -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
  ninja -C /tmp/ggmlq-build ggml-base
  python -m venv /work/venv-ggmlq && /work/venv-ggmlq/bin/pip install gguf numpy
  /work/venv-ggmlq/bin/python compat-tests/scripts/make_ggml_vectors.py \
        --ggml-lib /tmp/ggmlq-build/bin/libggml-base.so
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "format-spec" / "tests" / "vectors" / "ggml"

GGML_DESCRIPTION = (
    "libggml-base 0.25.3 built from the llama.cpp tree vendored in the PyPI sdist "
    "llama-cpp-python==0.3.36 (CMAKE_BUILD_TYPE=Release, GGML_NATIVE=OFF: x86-64 baseline, "
    "no FMA)"
)

FORMAT = (
    "input_hex / expected_hex: bytes as hex. input_f32_bits / expected_f32_bits: one f32 per "
    "8 hex digits, each the IEEE binary32 bit pattern as a big-endian u32 (3f800000 = 1.0)."
)


# ---------------------------------------------------------------------------------------
# Types, their scale fields and their peers

# kind of scale field -> byte width
FIELD_WIDTH = {"f16": 2, "f32": 4, "e8m0": 1, "ue4m3": 1}

# ggml name -> its scale fields as (byte offset in the block, kind)
DECODE_TYPES: dict[str, list[tuple[int, str]]] = {
    "q4_0": [(0, "f16")],
    "q4_1": [(0, "f16"), (2, "f16")],
    "q5_0": [(0, "f16")],
    "q5_1": [(0, "f16"), (2, "f16")],
    "q8_0": [(0, "f16")],
    "q2_K": [(80, "f16"), (82, "f16")],
    "q3_K": [(108, "f16")],
    "q4_K": [(0, "f16"), (2, "f16")],
    "q5_K": [(0, "f16"), (2, "f16")],
    "q6_K": [(208, "f16")],
    "q8_K": [(0, "f32")],
    "iq4_nl": [(0, "f16")],
    "iq4_xs": [(0, "f16")],
    "tq1_0": [(52, "f16")],
    "tq2_0": [(64, "f16")],
    "mxfp4": [(0, "e8m0")],
    "nvfp4": [(0, "ue4m3"), (1, "ue4m3"), (2, "ue4m3"), (3, "ue4m3")],
    "q1_0": [(0, "f16")],
    "q2_0": [(0, "f16")],
}

PLAIN_TYPES = {"i8": "<i1", "i16": "<i2", "i32": "<i4", "i64": "<i8", "f64": "<f8"}

ENCODE_TYPES = ["q8_0", "q4_0", "q4_1"]

# Type ids and block geometry come from gguf-py where it knows the type, else from ggml.h.
EXTRA_TYPES = {"q2_0": (42, 64, 18)}


def qtype_of(name: str) -> GGMLQuantizationType | None:
    try:
        return GGMLQuantizationType[name.upper()]
    except KeyError:
        return None


def geometry(name: str) -> tuple[int, int, int]:
    """(ggml type id, block size, type size)."""
    qt = qtype_of(name)
    if qt is not None:
        bs, ts = GGML_QUANT_SIZES[qt]
        return int(qt), bs, ts
    return EXTRA_TYPES[name]


def gguf_py_can_dequantize(name: str) -> bool:
    qt = qtype_of(name)
    return qt is not None and qt in quants._type_traits


# ---------------------------------------------------------------------------------------
# Deterministic bytes


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def bytes(self, n: int) -> bytearray:
        out = bytearray()
        while len(out) < n:
            out += self.next_u64().to_bytes(8, "little")
        return out[:n]

    def uniform(self) -> float:
        """In [0, 1), 53 bits."""
        return (self.next_u64() >> 11) / float(1 << 53)

    def normal(self) -> float:
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def seed_of(name: str) -> int:
    return int.from_bytes(name.encode().ljust(8, b"\0")[:8], "little") ^ 0x48435447474D4C31


def f16_bits(x: float) -> int:
    return int(np.array([x], dtype=np.float16).view(np.uint16)[0])


# Scale values per edge case, for each field kind. Each entry: (note, per-field values);
# a value is a float, or ("bits", n) for an exact bit pattern.
def scale_cases(kind: str, n_fields: int, rng: SplitMix64) -> list[tuple[str, list]]:
    if kind == "f16":
        cases = [
            ("typical positive scales", [0.0123, 0.0041]),
            ("negative scales", [-0.75, -0.3]),
            ("zero scale", [0.0, 0.5]),
            ("negative-zero scale, zero min", [-0.0, 0.0]),
            ("largest binary16 scales", [65504.0, -65504.0]),
            ("subnormal binary16 scales", [("bits", 0x0001), ("bits", 0x83FF)]),
            ("mixed magnitudes", [3.0, 1.0 / 1024.0]),
        ]
        for k in range(3):
            vals = [
                (rng.uniform() * 2 - 1) * 2.0 ** (-(rng.next_u64() % 12)) for _ in range(2)
            ]
            cases.append((f"pseudo-random scales #{k}", vals))
        return [(note, vals[:n_fields]) for note, vals in cases]
    if kind == "f32":
        return [
            ("typical scale", [0.0123]),
            ("negative scale", [-3.5]),
            ("zero scale", [0.0]),
            ("negative-zero scale", [-0.0]),
            ("tiny scale (products subnormal)", [1e-40]),
            ("huge scale (products overflow to infinity)", [1e38]),
            ("pseudo-random scale", [rng.normal()]),
        ]
    if kind == "e8m0":
        return [
            ("scale 2^0", [("bits", 127)]),
            ("scale 2^-127 (e=0, subnormal half)", [("bits", 0)]),
            ("scale 2^-126 (e=1)", [("bits", 1)]),
            ("scale 2^-125 (e=2, first normal half)", [("bits", 2)]),
            ("scale 2^126 (e=253)", [("bits", 253)]),
            ("scale 2^128 (e=255, no NaN in ggml)", [("bits", 255)]),
            ("pseudo-random exponent", [("bits", 100 + rng.next_u64() % 40)]),
        ]
    if kind == "ue4m3":
        return [
            ("unit-ish scales", [("bits", b) for b in (0x38, 0x30, 0x40, 0x3C)]),
            ("zero and 0x7F (read as zero)", [("bits", b) for b in (0x00, 0x7F, 0x7E, 0x01)]),
            ("top bit set (ignored)", [("bits", b) for b in (0x80, 0xB8, 0xFF, 0xFE)]),
            ("subnormals", [("bits", b) for b in (0x02, 0x03, 0x07, 0x08)]),
            ("pseudo-random", [("bits", rng.next_u64() % 256) for _ in range(4)]),
        ]
    raise ValueError(kind)


def put_field(block: bytearray, offset: int, kind: str, value) -> None:
    if isinstance(value, tuple) and value[0] == "bits":
        bits = value[1]
        block[offset:offset + FIELD_WIDTH[kind]] = bits.to_bytes(FIELD_WIDTH[kind], "little")
        return
    if kind == "f16":
        block[offset:offset + 2] = f16_bits(value).to_bytes(2, "little")
    elif kind == "f32":
        block[offset:offset + 4] = struct.pack("<f", value)
    else:
        raise ValueError(kind)


def decode_rows(name: str) -> list[tuple[str, bytes]]:
    """Rows of blocks: one row per scale case, plus rows whose quant bits are all ones /
    all zeros. Multi-block rows check that blocks are decoded in order."""
    _, _, ts = geometry(name)
    fields = DECODE_TYPES[name]
    kind = fields[0][1]
    rng = SplitMix64(seed_of(name))
    blocks_per_row = 2 if ts <= 40 else 1
    rows = []
    for note, values in scale_cases(kind, len(fields), rng):
        row = bytearray()
        for _ in range(blocks_per_row):
            block = rng.bytes(ts)
            for (offset, k), v in zip(fields, values):
                put_field(block, offset, k, v)
            row += block
        rows.append((note, bytes(row)))
    scale_note, scale_values = scale_cases(kind, len(fields), SplitMix64(1))[0]
    for fill, note in ((0xFF, "all quant bits set"), (0x00, "all quant bits clear")):
        block = bytearray([fill] * ts)
        for (offset, k), v in zip(fields, scale_values):
            put_field(block, offset, k, v)
        rows.append((f"{note}, {scale_note}", bytes(block)))
    return rows


# ---------------------------------------------------------------------------------------
# Encode inputs


def encode_rows() -> list[tuple[str, np.ndarray]]:
    rng = SplitMix64(0x5145_4E43)
    rows: list[tuple[str, np.ndarray]] = []

    def f32(xs) -> np.ndarray:
        return np.array(xs, dtype=np.float32)

    rows.append(("weight-like normal(0, 0.02), four blocks",
                 f32([0.02 * rng.normal() for _ in range(128)])))
    rows.append(("uniform(-1, 1)", f32([rng.uniform() * 2 - 1 for _ in range(32)])))
    rows.append(("all zeros", f32([0.0] * 32)))
    rows.append(("constant positive (max == min)", f32([0.3] * 32)))
    rows.append(("constant negative", f32([-2.0] * 32)))
    rows.append(("half-integer grid -8 … 7.5", f32([-8 + 0.5 * j for j in range(32)])))
    rows.append(("quarter grid 0 … 7.75 (Q4_1 d = 7.75/15)", f32([0.25 * j for j in range(32)])))
    ties = [127.0, -127.0] + [s * (k + 0.5) for k in range(15) for s in (1, -1)]
    rows.append(("q8_0 ties at ±(k + 0.5) with d = 1: roundf rounds away from zero", f32(ties)))
    q4_ties = [-8.0] + [-8.0 + 0.25 * j for j in range(1, 32)]
    rows.append(("q4_0 truncation steps with d = 1", f32(q4_ties)))
    pos_first = [0.1] * 32
    pos_first[5], pos_first[9] = 3.0, -3.0
    rows.append(("equal magnitudes, positive first (q4_0 takes the first)", f32(pos_first)))
    neg_first = [0.1] * 32
    neg_first[5], neg_first[9] = -3.0, 3.0
    rows.append(("equal magnitudes, negative first", f32(neg_first)))
    rows.append(("positive extreme (q4_0 d < 0, extreme saturates at 15)",
                 f32([8.0] + [rng.uniform() * 16 - 8 for _ in range(31)])))
    rows.append(("huge values: binary16 scale overflows to infinity",
                 f32([1e7 * (rng.uniform() * 2 - 1) for _ in range(31)] + [1e7])))
    rows.append(("tiny values: binary16 scale rounds to zero or subnormal",
                 f32([1e-6 * (rng.uniform() * 2 - 1) for _ in range(32)])))
    rows.append(("values near binary16 scale rounding boundaries",
                 f32([(1 + 2.0 ** -11) * 127] + [rng.normal() for _ in range(31)])))
    return rows


# ---------------------------------------------------------------------------------------
# Peers


class Ggml:
    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)

    def dequantize(self, name: str, data: bytes) -> np.ndarray:
        _, bs, ts = geometry(name)
        k = len(data) // ts * bs
        fn = getattr(self.lib, f"dequantize_row_{name}")
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        src = ctypes.create_string_buffer(bytes(data), len(data))
        out = np.zeros(k, dtype=np.float32)
        fn(src, out.ctypes.data, k)
        return out

    def quantize(self, name: str, xs: np.ndarray) -> bytes:
        _, bs, ts = geometry(name)
        xs = np.ascontiguousarray(xs, dtype=np.float32)
        fn = getattr(self.lib, f"quantize_row_{name}_ref")
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        out = ctypes.create_string_buffer(len(xs) // bs * ts)
        fn(xs.ctypes.data, out, len(xs))
        return out.raw


def bits_hex(values: np.ndarray) -> str:
    return "".join(f"{int(b):08x}" for b in np.asarray(values, dtype=np.float32).view(np.uint32))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.asarray(a, np.float32).view(np.uint32),
                          np.asarray(b, np.float32).view(np.uint32))


def header(name: str, versions: dict, expected_from: str) -> dict:
    type_id, bs, ts = geometry(name)
    return {
        "type": name,
        "ggml_type_id": type_id,
        # Plain element types share HCT's element codecs (GgmlType::plain_element_codec).
        "codec": name.lower() if name.lower() in ("i8", "i16", "i32", "i64", "f64") else f"ggml_{name.lower()}",
        "block_size": bs,
        "type_size": ts,
        "generator": "compat-tests/scripts/make_ggml_vectors.py",
        "peer_versions": versions,
        "expected_from": expected_from,
        "format": FORMAT,
    }


def decode_vectors(name: str, ggml: Ggml, versions: dict) -> dict:
    use_gguf = gguf_py_can_dequantize(name)
    cases = []
    for note, data in decode_rows(name):
        ref = ggml.dequantize(name, data)
        if use_gguf:
            py = quants.dequantize(np.frombuffer(data, dtype=np.uint8), qtype_of(name))
            if not same_bits(py, ref):
                diff = np.nonzero(py.view(np.uint32) != ref.view(np.uint32))[0]
                sys.exit(f"{name} ({note}): gguf-py and ggml disagree at {diff[:8]}: "
                         f"{py[diff[:4]]} vs {ref[diff[:4]]}")
        cases.append({"note": note, "input_hex": data.hex(), "expected_f32_bits": bits_hex(ref)})
    if use_gguf:
        source = (f"gguf-py {versions['gguf']} gguf.quants.dequantize and ggml C "
                  f"dequantize_row_{name}: identical bits on every case")
    else:
        source = (f"ggml C dequantize_row_{name} (gguf-py {versions['gguf']} has no "
                  f"dequantizer for this type)")
    doc = header(name, versions, source)
    doc["decode"] = cases
    return doc


def encode_vectors(name: str, ggml: Ggml, versions: dict) -> list[dict]:
    cases = []
    for note, xs in encode_rows():
        ref = ggml.quantize(name, xs)
        py = quants.quantize(xs.reshape(1, -1), qtype_of(name)).tobytes()
        case = {"note": note, "input_f32_bits": bits_hex(xs), "expected_hex": ref.hex()}
        if py != ref:
            case["gguf_py_differs"] = py.hex()
        cases.append(case)
    return cases


def plain_vectors(name: str, versions: dict) -> dict:
    dtype = np.dtype(PLAIN_TYPES[name])
    rng = SplitMix64(seed_of(name))
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        edge = [0, 1, -1, info.max, info.min, info.max - 1, info.min + 1]
        if dtype.itemsize >= 4:
            # around 2^24 and 2^25, where f32 starts rounding (ties go to even)
            edge += [2**24, 2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**25 + 2, 2**25 + 6]
        if dtype.itemsize == 8:
            edge += [2**53 + 1, -(2**62) - 1, 2**40 + 2**16]
        values = np.array(edge, dtype=dtype)
        random = np.frombuffer(bytes(rng.bytes(24 * dtype.itemsize)), dtype=dtype)
    else:
        edge = [0.0, -0.0, 1.0, -2.5, 1e-300, -1e-40, 3.4028235677973366e38, 3.5e38, -1e39,
                float("inf"), float("-inf"), 1.0 + 2.0**-24, 1.0 + 3 * 2.0**-24, 2.0**-149,
                2.0**-150, 3 * 2.0**-151, math.pi]
        values = np.array(edge, dtype=dtype)
        random = np.array([rng.normal() * 10.0 ** (int(rng.next_u64() % 20) - 10) for _ in range(24)],
                          dtype=dtype)
    cases = []
    for note, arr in (("edge values", values), ("pseudo-random values", random)):
        arr = np.ascontiguousarray(arr, dtype=dtype)
        expected = arr.astype(np.float32)
        cases.append({"note": note, "input_hex": arr.tobytes().hex(),
                      "expected_f32_bits": bits_hex(expected)})
    source = (f"numpy {versions['numpy']} astype(float32): ggml defines no conversion of "
              f"{name} to f32, and HCT defines it as the nearest f32, ties to even")
    doc = header(name, versions, source)
    doc["decode"] = cases
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ggml-lib", required=True, help="path to libggml-base.so")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    # The huge-value cases overflow binary16 scales and products to infinity on purpose.
    np.seterr(over="ignore")
    ggml = Ggml(args.ggml_lib)
    versions = {
        "gguf": importlib.metadata.version("gguf"),
        "numpy": importlib.metadata.version("numpy"),
        "ggml": GGML_DESCRIPTION,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DECODE_TYPES:
        doc = decode_vectors(name, ggml, versions)
        if name in ENCODE_TYPES:
            doc["encode"] = encode_vectors(name, ggml, versions)
            differs = [c["note"] for c in doc["encode"] if "gguf_py_differs" in c]
            doc["encode_expected_from"] = (
                f"ggml C quantize_row_{name}_ref; gguf-py {versions['gguf']} "
                f"gguf.quants.quantize gives "
                + ("identical bytes on every case" if not differs else
                   f"different bytes on {len(differs)} case(s), kept as gguf_py_differs")
            )
        written.append(write(args.out, name, doc))
    for name in PLAIN_TYPES:
        written.append(write(args.out, name, plain_vectors(name, versions)))
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files, {total} bytes, to {args.out}")


def write(out_dir: Path, name: str, doc: dict) -> Path:
    path = out_dir / f"{name.lower()}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    encode = len(doc.get("encode", []))
    print(f"{path.name}: {len(doc['decode'])} decode cases, {encode} encode cases; {doc['expected_from']}")
    return path


if __name__ == "__main__":
    main()
