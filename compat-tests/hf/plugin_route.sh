#!/usr/bin/env bash
# The plugin route from a Hugging Face folder: all-MiniLM-L6-v2's folder -> HCT (CODEC) ->
# plugin GGUF, run by the patched llama.cpp with libhct. The same weights reached from the F32
# GGUF that llama.cpp's own converter made (the route compat-tests/plugin/run.sh checks) must give
# the same tensors byte for byte and the same embeddings under the patched llama.cpp.
#
#   plugin_route.sh WORK_DIR [CODEC]   (CODEC default int4_opt_v1; prints one JSON line; exits
#                                      non-zero on a difference)
# Needs the patched build (compat-tests/plugin/build_patched.sh) and release builds of hct and libhct.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$1"; mkdir -p "$work"
codec="${2:-int4_opt_v1}"
eval "$(bash "$root/compat-tests/peers.sh" env)"
eval "$(bash "$root/compat-tests/plugin/build_patched.sh" env)"
hct="$root/target/release/hct"
libhct="$root/target/release/libhct.so"
py="$HCT_PEERS_PYTHON"
m="$work/hfroute-minilm-$codec"
"$hct" convert "$HCT_MINILM_HF" "$m.from-folder.hct" --codec "$codec" >&2
"$hct" convert "$m.from-folder.hct" "$m.from-folder.plugin.gguf" --gguf-mode plugin >&2
"$hct" convert "$HCT_MINILM_F32" "$m.from-gguf.hct" --codec "$codec" >&2
"$hct" convert "$m.from-gguf.hct" "$m.from-gguf.plugin.gguf" --gguf-mode plugin >&2
"$hct" verify "$m.from-folder.plugin.gguf" >&2
mkdir -p "$work/bin-hfroute"
printf '#!/bin/sh\nLD_PRELOAD=%q HCT_PLUGIN_MODE=fast exec %q "$@"\n' "$libhct" "$HCT_LLAMA_PATCHED_BIN/llama-embedding" \
    >"$work/bin-hfroute/llama-embedding"
chmod +x "$work/bin-hfroute/llama-embedding"
for which in from-folder from-gguf; do
    HCT_LLAMA_BIN="$work/bin-hfroute" HCT_PLUGIN_STATS="$m.$which.stats.json" \
        "$py" "$root/compat-tests/peers.py" embed "$m.$which.plugin.gguf" --vectors >"$m.$which.embed.json"
done
"$py" - "$m" "$codec" <<'PY'
import json, struct, sys

# gguf-py refuses extension types, so the plugin records (`hct.tensor_names`, `hct.tensor_sha256`)
# are read with a minimal reader of the key-value section.
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

def records(path):
    b = open(path, "rb").read()
    assert b[:4] == b"GGUF"
    pos = 24
    n_kv = struct.unpack_from("<Q", b, 16)[0]
    def string():
        nonlocal pos
        n = struct.unpack_from("<Q", b, pos)[0]; pos += 8
        s = b[pos:pos + n]; pos += n
        return s
    def value(t):
        nonlocal pos
        if t == 8:
            return string()
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, pos); pos += 12
            return [value(et) for _ in range(n)]
        v = b[pos:pos + SIZES[t]]; pos += SIZES[t]
        return v
    kv = {}
    for _ in range(n_kv):
        k = string().decode()
        t = struct.unpack_from("<I", b, pos)[0]; pos += 4
        kv[k] = value(t)
    names = [n.decode() for n in kv["hct.tensor_names"]]
    shas = kv["hct.tensor_sha256"]
    shas = [x.decode() if isinstance(x, bytes) else bytes(x).hex() for x in shas]
    codecs = [c.decode() for c in kv["hct.tensor_codecs"]]
    return {n: (c, h) for n, c, h in zip(names, codecs, shas)}

m, codec = sys.argv[1], sys.argv[2]
a, b = records(f"{m}.from-folder.plugin.gguf"), records(f"{m}.from-gguf.plugin.gguf")
ea, eb = (json.load(open(f"{m}.{w}.embed.json"))["vectors"] for w in ("from-folder", "from-gguf"))
same_tensors = a == b
doc = {"check": f"hf-folder-plugin-route-minilm-{codec}", "codec": codec, "tensors": len(a),
       "codec_tensors": sum(1 for c, _ in a.values() if c == codec),
       "tensors_identical_to_gguf_route": same_tensors, "embeddings_identical_to_gguf_route": ea == eb,
       # libhct ran the codec's matrix products (not a decoded fallback): dot products it
       # computed, one per vec_dot call or many per multi-row call
       "codec_dot_products": (lambda c: c["vec_dot_calls"] + c.get("gemm_dots", 0))(
           json.load(open(f"{m}.from-folder.stats.json"))["codecs"][codec])}
doc["ok"] = same_tensors and ea == eb and doc["codec_tensors"] > 0 and doc["codec_dot_products"] > 0
print(json.dumps(doc))
sys.exit(0 if doc["ok"] else 1)
PY
