/*
 * hct_ggml.h: libhct as a ggml plugin (ggml-kernels/src/ggml_ext.rs).
 *
 * For a ggml built with compat-tests/plugin/ggml-ext-types.patch: registers HCT's int4 codecs
 * (int4_g8_fp16_v1, int4_g16_fp16_v1, int4_g32_fp16_v1, int4_opt_v1) as ggml extension types, so
 * llama.cpp loads plugin GGUFs (hct convert --gguf-mode plugin) and runs them with libhct's kernels.
 * Kept apart from hct.h, which is generated from the container and kernel C API.
 *
 * Environment: HCT_PLUGIN_MODE=fast|reference (how matrix products run; default fast),
 * HCT_PLUGIN_STATS=PATH|- (count calls, write JSON at exit), HCT_GGML_AUTOREGISTER=0 (no
 * registration from the library constructor when libhct is loaded or preloaded).
 */
#ifndef HCT_GGML_H
#define HCT_GGML_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Register the codecs with the ggml of this process (call after ggml is loaded). Returns the
 * number registered (4), or -1 if ggml's registration functions are not in the process (ggml not
 * loaded, or not patched), -2 if ggml refused a type, -3 if ggml-cpu refused its kernels, -4 for a
 * bad HCT_PLUGIN_MODE, -5 for an internal error. Calling it again keeps the same slots. */
int hct_ggml_register_all(void);

/* The call counts (HCT_PLUGIN_STATS) as NUL-terminated JSON in buf (cap bytes); returns the
 * JSON's length without the NUL, and writes nothing if cap is too small or buf is NULL. */
size_t hct_ggml_stats_json(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* HCT_GGML_H */
