/* The layout libhct's Rust mirrors (ggml-kernels/src/ggml_ext.rs) assume, checked against the
 * headers of the patched ggml: compiling this file is the test. Also checks that the patch's
 * declarations have the signatures ggml_ext.rs calls them with. */
#include <stddef.h>
#include "ggml.h"
#include "ggml-cpu.h"

_Static_assert(sizeof(void *) == 8, "the offsets below are for 64-bit targets");
_Static_assert(sizeof(struct ggml_type_traits) == 56, "ggml_type_traits size");
_Static_assert(offsetof(struct ggml_type_traits, type_name) == 0, "type_name");
_Static_assert(offsetof(struct ggml_type_traits, blck_size) == 8, "blck_size");
_Static_assert(offsetof(struct ggml_type_traits, blck_size_interleave) == 16, "blck_size_interleave");
_Static_assert(offsetof(struct ggml_type_traits, type_size) == 24, "type_size");
_Static_assert(offsetof(struct ggml_type_traits, is_quantized) == 32, "is_quantized");
_Static_assert(offsetof(struct ggml_type_traits, to_float) == 40, "to_float");
_Static_assert(offsetof(struct ggml_type_traits, from_float_ref) == 48, "from_float_ref");

_Static_assert(sizeof(struct ggml_type_traits_cpu) == 32, "ggml_type_traits_cpu size");
_Static_assert(offsetof(struct ggml_type_traits_cpu, from_float) == 0, "from_float");
_Static_assert(offsetof(struct ggml_type_traits_cpu, vec_dot) == 8, "vec_dot");
_Static_assert(offsetof(struct ggml_type_traits_cpu, vec_dot_type) == 16, "vec_dot_type");
_Static_assert(offsetof(struct ggml_type_traits_cpu, nrows) == 24, "nrows");
_Static_assert(sizeof(enum ggml_type) == sizeof(int), "enum ggml_type is an int");

/* ggml_ext.rs: the first extension slot and the activation types it registers. */
_Static_assert(GGML_TYPE_EXT_FIRST == 43 && GGML_TYPE_COUNT > GGML_TYPE_EXT_FIRST, "extension slots");
_Static_assert(GGML_TYPE_F32 == 0 && GGML_TYPE_Q8_0 == 8 && GGML_TYPE_Q8_1 == 9, "activation type ids");

enum ggml_type (*const check_register)(const struct ggml_type_traits *) = ggml_ext_type_register;
bool (*const check_is_ext)(enum ggml_type) = ggml_is_ext_type;
bool (*const check_set_cpu)(enum ggml_type, const struct ggml_type_traits_cpu *) = ggml_cpu_ext_type_set_traits;
