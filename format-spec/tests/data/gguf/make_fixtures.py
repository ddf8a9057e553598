#!/usr/bin/env python3
"""Make the GGUF fixtures of format-spec/tests/gguf_*.rs with llama.cpp's own writer.

Requires PyPI `gguf==0.19.0` (the gguf-py of the pinned llama.cpp tree) and numpy:
    pip install gguf==0.19.0
    python3 make_fixtures.py          # writes *.gguf and *.expected.json beside this file

Each fixture comes with an `.expected.json` written from the values handed to GGUFWriter
(not from any reader), plus what gguf-py's own GGUFReader reports about the tensors, so the
Rust tests check our reader against the writer's intent and gguf-py's reading of the file.
The script asserts GGUFReader agrees with the intent for every flat (non-nested) key.

Value encoding in the JSON: {"t": TYPE, ...} with TYPE a GGUF type name; integers in "v",
floats as IEEE bit patterns in "bits" (so NaN payloads and -0.0 compare exactly), strings
as hex of their bytes in "hex" (some are deliberately not UTF-8), arrays as "elem" plus
"items" (a list of such objects).
"""

import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf import quants

HERE = Path(__file__).resolve().parent
EXPECTED_GGUF_PY = "0.19.0"

TYPE_NAME = {
    V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32",
    V.INT32: "i32", V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string", V.ARRAY: "array",
    V.UINT64: "u64", V.INT64: "i64", V.FLOAT64: "f64",
}


def typed(vtype, value, sub_type=None):
    """JSON form of a value exactly as GGUFWriter will encode it."""
    t = TYPE_NAME[vtype]
    if vtype == V.FLOAT32:
        return {"t": t, "bits": struct.unpack("<I", struct.pack("<f", value))[0]}
    if vtype == V.FLOAT64:
        return {"t": t, "bits": struct.unpack("<Q", struct.pack("<d", value))[0]}
    if vtype == V.BOOL:
        return {"t": t, "v": bool(value)}
    if vtype == V.STRING:
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return {"t": t, "hex": raw.hex()}
    if vtype == V.ARRAY:
        elem = sub_type if sub_type is not None else V.get_type(value[0])
        # Nested lists carry their own element type, inferred by GGUFWriter per list.
        return {"t": t, "elem": TYPE_NAME[elem],
                "items": [typed(elem, item) for item in value]}
    return {"t": t, "v": int(value)}


class Fixture:
    def __init__(self, name, arch="llama"):
        self.name = name
        self.path = HERE / f"{name}.gguf"
        self.w = gguf.GGUFWriter(str(self.path), arch)
        # GGUFWriter adds general.architecture in its constructor.
        self.kv = [("general.architecture", typed(V.STRING, arch))]
        self.flat = {"general.architecture": arch}

    def add(self, key, vtype, value, sub_type=None, flat=True):
        self.w.add_key_value(key, value, vtype, sub_type=sub_type)
        self.kv.append((key, typed(vtype, value, sub_type)))
        if flat:
            self.flat[key] = value

    def write(self, tensors):
        for name, data, raw_dtype in tensors:
            self.w.add_tensor(name, data, raw_dtype=raw_dtype)
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_tensors_to_file()
        self.w.close()
        self.check_with_reader_and_dump()

    def check_with_reader_and_dump(self):
        r = gguf.GGUFReader(str(self.path))
        for key, value in self.flat.items():
            f = r.fields[key]
            if isinstance(value, (bytes, bytearray)):
                got = bytes(f.parts[-1])
            elif isinstance(value, list) and value and isinstance(value[0], (bytes, bytearray)):
                got = [bytes(f.parts[i]) for i in f.data]
            else:
                got = f.contents()
            if isinstance(value, float):
                assert struct.pack("<d", got) == struct.pack("<d", value) or (
                    struct.pack("<f", got) == struct.pack("<f", value)), (key, got, value)
            elif isinstance(value, list) and value and isinstance(value[0], float):
                assert len(got) == len(value), key
            else:
                assert got == value, (key, got, value)
        assert list(r.fields)[3:] == [k for k, _ in self.kv], "key order"
        data = self.path.read_bytes()
        tensors = []
        for t in r.tensors:
            raw = data[t.data_offset:t.data_offset + t.n_bytes]
            tensors.append({
                "name": t.name,
                "dims": [int(d) for d in t.shape],
                "type_id": int(t.tensor_type),
                "offset": int(t.data_offset) - int(r.data_offset),
                "size": int(t.n_bytes),
                "sha256": hashlib.sha256(raw).hexdigest(),
            })
        expected = {
            "made_by": f"gguf-py {EXPECTED_GGUF_PY} GGUFWriter, via make_fixtures.py",
            "version": 3,
            "alignment": int(r.alignment),
            "data_offset": int(r.data_offset),
            "file_len": len(data),
            "metadata": [[k, v] for k, v in self.kv],
            "tensors": tensors,
        }
        (HERE / f"{self.name}.expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        print(f"{self.path.name}: {len(data)} bytes, {len(self.kv)} keys, {len(tensors)} tensors")


def weights(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32)


def all_types():
    fx = Fixture("all_types")
    # One of every scalar type, including edge values.
    fx.add("test.u8", V.UINT8, 255)
    fx.add("test.i8", V.INT8, -128)
    fx.add("test.u16", V.UINT16, 65535)
    fx.add("test.i16", V.INT16, -32768)
    fx.add("test.u32", V.UINT32, 4294967295)
    fx.add("test.i32", V.INT32, -2147483648)
    fx.add("test.u64", V.UINT64, 18446744073709551615)
    fx.add("test.i64", V.INT64, -9223372036854775808)
    fx.add("test.f32", V.FLOAT32, 0.1)
    fx.add("test.f32_neg_zero", V.FLOAT32, -0.0)
    fx.add("test.f32_inf", V.FLOAT32, float("-inf"))
    fx.add("test.f64", V.FLOAT64, 1.0 / 3.0)
    nan_with_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_1234))[0]
    fx.add("test.f64_nan_payload", V.FLOAT64, nan_with_payload, flat=False)
    fx.add("test.bool_true", V.BOOL, True)
    fx.add("test.bool_false", V.BOOL, False)
    fx.add("test.string", V.STRING, "héllo, GGUF ✓")
    fx.add("test.string_not_utf8", V.STRING, b"\xff\xfe stray bytes \xc3")
    fx.add("test.key-with-dash", V.STRING, "gpt-oss and command-r use dashes in keys")
    # Arrays of every element type.
    fx.add("test.arr.u8", V.ARRAY, [0, 1, 255], V.UINT8)
    fx.add("test.arr.i8", V.ARRAY, [-128, 0, 127], V.INT8)
    fx.add("test.arr.u16", V.ARRAY, [0, 65535], V.UINT16)
    fx.add("test.arr.i16", V.ARRAY, [-32768, 32767], V.INT16)
    fx.add("test.arr.u32", V.ARRAY, [0, 4294967295], V.UINT32)
    fx.add("test.arr.i32", V.ARRAY, [-1, 2, -3])
    fx.add("test.arr.u64", V.ARRAY, [18446744073709551615, 0], V.UINT64)
    fx.add("test.arr.i64", V.ARRAY, [-9223372036854775808, 1], V.INT64)
    fx.add("test.arr.f32", V.ARRAY, [0.5, -2.25, 1e-8])
    fx.add("test.arr.f64", V.ARRAY, [3.141592653589793, -0.0], V.FLOAT64)
    fx.add("test.arr.bool", V.ARRAY, [True, False, True])
    fx.add("test.arr.string", V.ARRAY, ["a", "", "ünïcödé", "<|im_start|>"])
    fx.add("test.arr.string_bytes", V.ARRAY, [b"\x80\x81", b"ok"], V.STRING)
    # Nested arrays: GGUFWriter infers each inner list's element type from its first item.
    fx.add("test.nested.i32", V.ARRAY, [[1, 2, 3], [4], [5, 6]], flat=False)
    fx.add("test.nested.string", V.ARRAY, [["x", "y"], ["z"]], flat=False)
    fx.add("test.nested.depth3", V.ARRAY, [[[1.5, 2.5], [3.5]], [[True]]], flat=False)
    # A tokenizer-sized array, so multi-kilobyte KV sections are exercised.
    fx.add("tokenizer.ggml.tokens", V.ARRAY, [f"tok{i}" for i in range(300)])
    fx.add("tokenizer.ggml.scores", V.ARRAY, [float(-i) / 7 for i in range(300)], V.FLOAT32)

    w = weights((4, 64), 1)
    tensors = [
        ("token_embd.weight", quants.quantize(weights((8, 64), 2), Q.Q8_0), Q.Q8_0),
        ("blk.0.attn_q.weight", quants.quantize(w, Q.Q4_1), Q.Q4_1),
        ("blk.0.attn_k.weight", quants.quantize(weights((2, 3, 32), 3), Q.Q4_0), Q.Q4_0),
        ("blk.0.attn_v.weight", quants.quantize(weights((2, 32), 4), Q.Q5_0), Q.Q5_0),
        ("blk.0.ffn_up.weight", quants.quantize(weights((1, 256), 5), Q.TQ2_0), Q.TQ2_0),
        ("blk.0.ffn_down.weight", quants.quantize(weights((3, 32), 6), Q.MXFP4), Q.MXFP4),
        ("blk.0.ffn_gate.weight", quants.quantize(weights((2, 16), 7), Q.BF16), Q.BF16),
        ("blk.0.attn_norm.weight", weights((5,), 8), None),  # 20 bytes: padded to 32
        ("output_norm.weight", weights((3, 5), 9).astype(np.float16), None),
        ("rope_freqs.weight", np.arange(7, dtype=np.int32), None),
        ("positions.i8", np.arange(-3, 4, dtype=np.int8), None),
        ("a.4d.tensor", weights((2, 1, 2, 3), 10), None),
    ]
    fx.write(tensors)


def custom_alignment():
    fx = Fixture("custom_alignment")
    fx.add("general.name", V.STRING, "alignment 64")
    fx.w.add_custom_alignment(64)
    fx.kv.append(("general.alignment", typed(V.UINT32, 64)))
    fx.flat["general.alignment"] = 64
    fx.add("general.file_type", V.UINT32, 3)
    fx.write([
        ("a", weights((3,), 11), None),
        ("b", quants.quantize(weights((1, 32), 12), Q.Q8_0), Q.Q8_0),
        ("c", weights((2, 2), 13).astype(np.float16), None),
    ])


def big_endian():
    """A file gguf-py writes for big-endian hosts: our reader must refuse it by name."""
    path = HERE / "big_endian.gguf"
    w = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("general.file_type", 0)
    w.add_tensor("t", np.arange(4, dtype=np.float32), tensor_endianess=gguf.GGUFEndian.LITTLE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path.name}: {path.stat().st_size} bytes")


def metadata_only():
    fx = Fixture("metadata_only")
    fx.add("general.name", V.STRING, "no tensors at all")
    fx.write([])


if __name__ == "__main__":
    from importlib.metadata import version
    have = version("gguf")
    if have != EXPECTED_GGUF_PY:
        sys.exit(f"gguf {have} installed, fixtures are pinned to gguf=={EXPECTED_GGUF_PY}")
    all_types()
    custom_alignment()
    metadata_only()
    big_endian()
