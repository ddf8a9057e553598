/*
 * libhct against the real ggml (the pinned llama.cpp build), through both C APIs.
 *
 * usage: hct_vs_ggml GOLDEN_HCT [REAL_HCT [NOT_HCT_FILE]]
 *   GOLDEN_HCT    format-spec/tests/golden/minimal-v1.0.hct
 *   REAL_HCT      a converted model whose ggml_q4_0/q4_1/q8_0 tensors are checked against ggml
 *   NOT_HCT_FILE  any non-HCT file (the source GGUF): hct_open must refuse it
 *
 * What is checked, and how:
 *
 * 1. to_float. For Q4_0, Q4_1, Q8_0 and IQ4_NL, libhct's traits (codecs ggml_q4_0, ggml_q4_1,
 *    ggml_q8_0, ggml_iq4_nl) and int4_g32_fp16_v1 (Q4_1's bytes) decode the same rows as
 *    ggml_get_type_traits(type)->to_float: every value must be identical bit for bit (two
 *    NaNs count as equal). Rows are ggml_quantize_chunk's output for random weights, and raw
 *    random blocks whose fp16 scales cover zero, subnormals, ±65504 and random exponents.
 *
 * 2. vec_dot. Activations are quantized by ggml's own CPU quantizer
 *    (ggml_get_type_traits_cpu(vec_dot_type)->from_float), so both libraries read identical
 *    activation bytes. ggml's CPU vec_dot (SIMD, fused multiply-adds, its own order) and
 *    libhct's (eight lanes, no FMA) differ by rounding, so each is held to the exact value of
 *    the sum it computes:
 *        R = sum_i x_i * y_i          (x, y: the dequantized weights and activations, in double;
 *                                      x_i = d q_i + m exactly, not rounded to f32 as to_float
 *                                      stores it, for neither kernel rounds it)
 *          + sum_b m_b * (s_b - sum_{i in b} y_i)   only for kernels that read Q8_1's stored
 *                                                   s_b = fp16(d_b * sum q) (both Q4_1 dots)
 *    and must satisfy |result - R| <= BOUND = (blocks + 10) * 2^-24 * M, where M is the sum of
 *    the magnitudes of what is added: sum_i |d_b q_i y_i| plus sum_b |m_b| max(|s_b|, |sum y|)
 *    for the formats with a minimum (for Q4_0 and Q8_0, sum_i |x_i y_i|). That is the
 *    classical error bound of summing `blocks` terms in f32 (u = 2^-24 each), with slack for
 *    the final reductions of both implementations.
 *    int4_g32_fp16_v1 takes Q8_0 activations where ggml's Q4_1 takes Q8_1: both results are
 *    compared with the exact dot of the dequantized values; ggml's also carries the fp16
 *    rounding of s (the second term of R), reported separately.
 *
 * 3. A real container through the C API: the golden file's tensors and values (SPEC.md §12);
 *    every tensor of REAL_HCT listed, found by name, verified, and for ggml block types some
 *    rows decoded with hct_tensor_decode_rows and compared bit for bit with ggml's to_float of
 *    the same payload bytes, Q4_1 tensors also through int4_g32_fp16_v1's to_float, and one
 *    real row dotted by both libraries; f32 tensors compared with their payload bytes.
 *    Refusals: a missing file, a non-HCT file, a corrupted payload, bad indices.
 *
 * The last line "hct_digest" is a hash of every libhct result (decoded bits, dot bits): run
 * under HCT_ISA=scalar and under the detected ISA, it must not change.
 *
 * Exit status 0 only if every check passed. Compiled with -ffp-contract=off so the double
 * reference sums are not fused.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"
#include "hct.h"

static long n_checks = 0;
static long n_failures = 0;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        n_checks++;                                                               \
        if (!(cond)) {                                                            \
            n_failures++;                                                         \
            if (n_failures <= 40) {                                               \
                fprintf(stderr, "FAILED (line %d) %s: ", __LINE__, #cond);        \
                fprintf(stderr, __VA_ARGS__);                                     \
                fprintf(stderr, " [hct_last_error: %s]\n", hct_last_error());     \
            }                                                                     \
        }                                                                         \
    } while (0)

/* ---- deterministic inputs -------------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t next_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t) (rng_state >> 16);
}

static float uniform(void) { /* [-1, 1) */
    return (float) ((int32_t) next_u32() >> 8) / 8388608.0f;
}

/* Roughly normal (sum of four uniforms), with a rare large outlier as real weights have. */
static float weight_like(void) {
    float v = (uniform() + uniform() + uniform() + uniform()) * 0.5f;
    if (next_u32() % 997 == 0) v *= 12.0f;
    return v;
}

/* fp16 bits: mostly moderate normals of either sign, sometimes an edge value. */
static uint16_t random_half(void) {
    static const uint16_t edges[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x8001, 0x0400,
                                     0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3555};
    const uint32_t r = next_u32();
    if (r % 8 == 0) return edges[(r >> 3) % (sizeof edges / sizeof edges[0])];
    const uint16_t exponent = (uint16_t) (1 + (r >> 8) % 30); /* normals, 2^-14 .. 2^15 */
    return (uint16_t) (((r >> 13) & 1) << 15 | exponent << 10 | ((r >> 14) & 0x3ff));
}

static uint16_t read_le16(const uint8_t *p) { return (uint16_t) (p[0] | p[1] << 8); }
static float half_at(const uint8_t *p) { return ggml_fp16_to_fp32(read_le16(p)); }

/* ---- results digest (must not depend on HCT_ISA) --------------------------------------- */

static uint64_t digest = 0xcbf29ce484222325ull; /* FNV-1a */

static void digest_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) digest = (digest ^ b[i]) * 0x100000001b3ull;
}

/* ---- the pairs under test -------------------------------------------------------------- */

struct pairing {
    const char *codec;       /* libhct codec id */
    enum ggml_type type;     /* ggml type with the same bytes */
    int has_min;             /* layout d, m, nibbles (Q4_1 and int4) */
    int nibbles;             /* 4-bit quants (else Q8_0's int8) */
    int signed_offset;       /* Q4_0: q - 8 */
    int codebook;            /* IQ4_NL: q indexes ggml's non-uniform grid (iq4nl_grid) */
};

static const struct pairing pairings[] = {
    {"ggml_q4_0", GGML_TYPE_Q4_0, 0, 1, 1, 0},
    {"ggml_q4_1", GGML_TYPE_Q4_1, 1, 1, 0, 0},
    {"ggml_q8_0", GGML_TYPE_Q8_0, 0, 0, 0, 0},
    {"int4_g32_fp16_v1", GGML_TYPE_Q4_1, 1, 1, 0, 0},
    {"ggml_iq4_nl", GGML_TYPE_IQ4_NL, 0, 1, 0, 1},
};

/* IQ4_NL's 16 grid values, read from ggml itself: its to_float of a block with d = 1 and
 * indices 0..15 (so this program does not restate the table it checks). */
static float iq4nl_grid[16];

static void read_iq4nl_grid(void) {
    uint8_t block[18] = {0x00, 0x3c}; /* d = 1.0 in binary16 */
    for (int j = 0; j < 16; j++) block[2 + j] = (uint8_t) j;
    float out[32];
    ggml_get_type_traits(GGML_TYPE_IQ4_NL)->to_float(block, out, 32);
    for (int j = 0; j < 16; j++) iq4nl_grid[j] = out[j];
}

/* d * q_i for element i of a 32-element block (exact in float), and the block's minimum. */
static float block_scaled_quant(const struct pairing *p, const uint8_t *block, int i, float *m) {
    const float d = half_at(block);
    *m = p->has_min ? half_at(block + 2) : 0.0f;
    const uint8_t *qs = block + (p->has_min ? 4 : 2);
    if (!p->nibbles) return d * (float) (int8_t) qs[i];
    int q = i < 16 ? (qs[i] & 15) : (qs[i - 16] >> 4);
    if (p->signed_offset) q -= 8;
    if (p->codebook) return d * iq4nl_grid[q];
    return d * (float) q;
}

/* ---- 1. to_float ----------------------------------------------------------------------- */

struct to_float_stats {
    long values, identical;
};

static void compare_to_float(const struct pairing *p, const hct_codec_traits *t,
                             const uint8_t *row, int64_t n, struct to_float_stats *st,
                             const char *what) {
    float *a = malloc(sizeof(float) * (size_t) n), *b = malloc(sizeof(float) * (size_t) n);
    t->to_float(row, a, n);
    ggml_get_type_traits(p->type)->to_float(row, b, n);
    digest_bytes(a, sizeof(float) * (size_t) n);
    long bad = 0;
    for (int64_t i = 0; i < n; i++) {
        st->values++;
        if (memcmp(&a[i], &b[i], 4) == 0 || (isnan(a[i]) && isnan(b[i]))) {
            st->identical++;
        } else if (bad++ < 3) {
            n_failures++;
            fprintf(stderr, "MISMATCH to_float %s (%s) element %lld: hct %.9g, ggml %.9g\n", p->codec,
                    what, (long long) i, a[i], b[i]);
        }
    }
    n_checks++;
    free(a);
    free(b);
}

/* ---- 2. vec_dot ------------------------------------------------------------------------ */

struct dot_stats {
    long dots, hct_equals_ggml;
    double hct_worst, ggml_worst; /* max |result - R| / BOUND */
    double hct_rel, ggml_rel;     /* max |result - exact dequantized dot| / M */
    double s_term_rel;            /* max |sum m (s - sum y)| / M: ggml's Q8_1 s rounding */
};

/* Dequantizes one activation row (Q8_0 or Q8_1 blocks) into y; block sums and s into sums. */
static void dequantize_activations(enum ggml_type type, const uint8_t *row, int64_t n, float *y,
                                   double *block_sum_y, double *block_s) {
    const size_t bytes = type == GGML_TYPE_Q8_1 ? 36 : 34, off = type == GGML_TYPE_Q8_1 ? 4 : 2;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = row + b * bytes;
        const float d = half_at(blk);
        block_s[b] = type == GGML_TYPE_Q8_1 ? half_at(blk + 2) : 0.0;
        block_sum_y[b] = 0;
        for (int i = 0; i < 32; i++) {
            y[b * 32 + i] = d * (float) (int8_t) blk[off + i];
            block_sum_y[b] += y[b * 32 + i];
        }
    }
}

/*
 * One weight row against one f32 activation vector: libhct's vec_dot with its vec_dot_type
 * activations, ggml's with its own, both quantized by ggml's CPU quantizer.
 */
static void compare_vec_dot(const struct pairing *p, const hct_codec_traits *t, const uint8_t *row,
                            int64_t n, const float *act, struct dot_stats *st, const char *what) {
    const struct ggml_type_traits_cpu *gcpu = ggml_get_type_traits_cpu(p->type);
    const enum ggml_type hct_act = (enum ggml_type) t->vec_dot_type;
    const enum ggml_type ggml_act = gcpu->vec_dot_type;
    const int64_t nb = n / 32;
    uint8_t *qa_hct = malloc((size_t) nb * 36), *qa_ggml = malloc((size_t) nb * 36);
    ggml_get_type_traits_cpu(hct_act)->from_float(act, qa_hct, n);
    ggml_get_type_traits_cpu(ggml_act)->from_float(act, qa_ggml, n);

    float s_hct = NAN, s_ggml = NAN;
    t->vec_dot((int) n, &s_hct, 0, row, 0, qa_hct, 0, 1);
    gcpu->vec_dot((int) n, &s_ggml, 0, row, 0, qa_ggml, 0, 1);
    digest_bytes(&s_hct, sizeof s_hct);

    const size_t block_bytes = (size_t) t->type_size;
    float *y = malloc(sizeof(float) * (size_t) n);
    double *sum_y = malloc(sizeof(double) * (size_t) nb), *s = malloc(sizeof(double) * (size_t) nb);
    double results[2] = {s_hct, s_ggml}, worst[2] = {0, 0}, rel[2] = {0, 0}, s_term = 0;
    const enum ggml_type acts[2] = {hct_act, ggml_act};
    for (int side = 0; side < 2; side++) {
        dequantize_activations(acts[side], side == 0 ? qa_hct : qa_ggml, n, y, sum_y, s);
        double exact = 0, magnitude = 0, correction = 0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t) b * block_bytes;
            float m = 0;
            for (int i = 0; i < 32; i++) {
                const float dq = block_scaled_quant(p, blk, i, &m);
                /* d*q + m exactly: the kernels never round it (to_float's f32 values do). */
                const double x = (double) dq + (double) m;
                exact += x * (double) y[b * 32 + i];
                magnitude += fabs((double) dq * (double) y[b * 32 + i]);
            }
            if (p->has_min) {
                magnitude += fabs((double) m) * fmax(fabs(s[b]), fabs(sum_y[b]));
                if (acts[side] == GGML_TYPE_Q8_1) correction += (double) m * (s[b] - sum_y[b]);
            }
        }
        const double reference = exact + correction;
        const double bound = (double) (nb + 10) * ldexp(1.0, -24) * magnitude;
        const double err = fabs(results[side] - reference);
        CHECK(err <= bound, "%s vec_dot %s (%s, n=%lld): result %.9g, exact %.17g, error %.3g > bound %.3g",
              side == 0 ? "hct" : "ggml", p->codec, what, (long long) n, results[side], reference, err,
              bound);
        worst[side] = bound > 0 ? err / bound : (err == 0 ? 0 : INFINITY);
        rel[side] = magnitude > 0 ? fabs(results[side] - exact) / magnitude : 0;
        if (side == 1 && magnitude > 0) s_term = fabs(correction) / magnitude;
    }
    st->dots++;
    if (memcmp(&s_hct, &s_ggml, 4) == 0) st->hct_equals_ggml++;
    st->hct_worst = fmax(st->hct_worst, worst[0]);
    st->ggml_worst = fmax(st->ggml_worst, worst[1]);
    st->hct_rel = fmax(st->hct_rel, rel[0]);
    st->ggml_rel = fmax(st->ggml_rel, rel[1]);
    st->s_term_rel = fmax(st->s_term_rel, s_term);
    free(qa_hct);
    free(qa_ggml);
    free(y);
    free(sum_y);
    free(s);
}

static void fill_random_blocks(const struct pairing *p, uint8_t *row, int64_t n) {
    const size_t bytes = p->has_min ? 20 : (p->nibbles ? 18 : 34);
    for (int64_t b = 0; b < n / 32; b++) {
        uint8_t *blk = row + (size_t) b * bytes;
        uint16_t d = random_half();
        blk[0] = (uint8_t) d;
        blk[1] = (uint8_t) (d >> 8);
        size_t at = 2;
        if (p->has_min) {
            uint16_t m = random_half();
            blk[2] = (uint8_t) m;
            blk[3] = (uint8_t) (m >> 8);
            at = 4;
        }
        for (; at < bytes; at++) blk[at] = (uint8_t) next_u32();
    }
}

static void test_kernels(void) {
    static const int64_t lengths[] = {32, 64, 96, 256, 576, 1536, 4096, 14336};
    const int n_lengths = (int) (sizeof lengths / sizeof lengths[0]);
    for (size_t k = 0; k < sizeof pairings / sizeof pairings[0]; k++) {
        const struct pairing *p = &pairings[k];
        const hct_codec_traits *t = hct_codec_traits_find(p->codec);
        CHECK(t != NULL, "no traits for %s", p->codec);
        if (t == NULL) continue;
        const struct ggml_type_traits *g = ggml_get_type_traits(p->type);
        const struct ggml_type_traits_cpu *gcpu = ggml_get_type_traits_cpu(p->type);
        CHECK(t->blck_size == g->blck_size && t->type_size == g->type_size,
              "%s: block %lld x %zu bytes, ggml %s has %lld x %zu", p->codec, (long long) t->blck_size,
              t->type_size, g->type_name, (long long) g->blck_size, g->type_size);
        CHECK(t->nrows == 1 && t->from_float != NULL, "%s traits", p->codec);
        if (strncmp(p->codec, "ggml_", 5) == 0) {
            CHECK(t->vec_dot_type == (int) gcpu->vec_dot_type, "%s: vec_dot_type %d, ggml %d",
                  p->codec, t->vec_dot_type, (int) gcpu->vec_dot_type);
        } else {
            CHECK(t->vec_dot_type == GGML_TYPE_Q8_0 && strcmp(t->vec_dot_type_name, "q8_0") == 0,
                  "%s takes Q8_0", p->codec);
        }

        struct to_float_stats tf = {0, 0};
        struct dot_stats ds = {0, 0, 0, 0, 0, 0, 0};
        for (int li = 0; li < n_lengths; li++) {
            const int64_t n = lengths[li];
            const int64_t rows = n >= 4096 ? 3 : 8;
            const size_t row_bytes = (size_t) (n / 32) * t->type_size;
            float *w = malloc(sizeof(float) * (size_t) (n * rows));
            float *act = malloc(sizeof(float) * (size_t) n);
            uint8_t *q = malloc(row_bytes * (size_t) rows);
            for (int64_t i = 0; i < n * rows; i++) w[i] = weight_like();
            ggml_quantize_chunk(p->type, w, q, 0, rows, n, NULL);
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t i = 0; i < n; i++) act[i] = uniform() * (r % 3 == 0 ? 30.0f : 1.0f);
                compare_to_float(p, t, q + r * row_bytes, n, &tf, "ggml-quantized");
                compare_vec_dot(p, t, q + r * row_bytes, n, act, &ds, "ggml-quantized");
            }
            /* Raw random blocks: to_float over every scale, vec_dot where values are finite. */
            for (int64_t r = 0; r < rows; r++) {
                fill_random_blocks(p, q, n);
                compare_to_float(p, t, q, n, &tf, "random blocks");
                for (int64_t i = 0; i < n; i++) act[i] = uniform();
                compare_vec_dot(p, t, q, n, act, &ds, "random blocks");
            }
            free(w);
            free(act);
            free(q);
        }
        printf("%-17s to_float vs ggml %-5s: %ld/%ld values bit-identical\n", p->codec, g->type_name,
               tf.identical, tf.values);
        printf("%-17s vec_dot  vs ggml %-5s: %ld dots, bit-identical to ggml in %ld; worst error/bound: "
               "hct %.3f, ggml %.3f\n",
               p->codec, g->type_name, ds.dots, ds.hct_equals_ggml, ds.hct_worst, ds.ggml_worst);
        printf("%-17s   max |result - exact dequantized dot| / M: hct (%s) %.3g, ggml (%s) %.3g; "
               "ggml's fp16-s term alone up to %.3g\n",
               "", t->vec_dot_type_name, ds.hct_rel, ggml_type_name(gcpu->vec_dot_type), ds.ggml_rel,
               ds.s_term_rel);
        CHECK(tf.identical == tf.values, "%s to_float: %ld of %ld differ", p->codec,
              tf.values - tf.identical, tf.values);
    }
}

/* ---- 3. containers through the C API --------------------------------------------------- */

static void test_golden(const char *path) {
    hct_file *f = NULL;
    int st = hct_open(path, &f);
    CHECK(st == HCT_OK && f != NULL, "hct_open(%s) = %s", path, hct_status_name(st));
    if (f == NULL) return;
    CHECK(hct_tensor_count(f) == 2, "golden has 2 tensors");
    int64_t iw = -1, ib = -1;
    CHECK(hct_tensor_find(f, "w", &iw) == HCT_OK && iw == 0, "find w");
    CHECK(hct_tensor_find(f, "b", &ib) == HCT_OK && ib == 1, "find b");
    hct_tensor_info info;
    CHECK(hct_tensor_get_info(f, iw, &info) == HCT_OK, "info w");
    CHECK(strcmp(info.name, "w") == 0 && strcmp(info.codec_id, "f32") == 0 && info.n_dims == 2 &&
              info.dims[0] == 2 && info.dims[1] == 2 && info.payload_len == 16,
          "w is f32 [2, 2]");
    float w[4], b[3];
    CHECK(hct_tensor_decode_rows(f, iw, 0, 2, w, 4) == HCT_OK, "decode w");
    CHECK(w[0] == 1.0f && w[1] == -2.0f && w[2] == 0.5f && w[3] == 0.0f, "w values");
    CHECK(hct_tensor_decode_rows(f, ib, 0, 1, b, 3) == HCT_OK, "decode b");
    CHECK(b[0] == 1.0f && b[1] == -1.0f && b[2] == 0.5f, "b values (bf16 3f80 bf80 3f00)");
    CHECK(hct_verify(f) == HCT_OK, "golden verifies");
    /* Bad arguments come back as codes. */
    CHECK(hct_tensor_get_info(f, 2, &info) == HCT_ERR_INVALID_ARGUMENT, "index 2");
    CHECK(hct_tensor_get_info(f, -1, &info) == HCT_ERR_INVALID_ARGUMENT, "index -1");
    CHECK(hct_tensor_decode_rows(f, iw, 2, 1, w, 4) == HCT_ERR_INVALID_ARGUMENT, "row 2 of 2");
    CHECK(hct_tensor_decode_rows(f, iw, 0, 2, w, 3) == HCT_ERR_INVALID_ARGUMENT, "out too small");
    CHECK(hct_tensor_find(f, "nope", &iw) == HCT_ERR_NOT_FOUND, "unknown name");
    CHECK(hct_tensor_find(f, NULL, &iw) == HCT_ERR_INVALID_ARGUMENT, "NULL name");
    hct_close(f);

    /* A corrupted payload byte: opens, fails verification naming the tensor. */
    FILE *in = fopen(path, "rb");
    static uint8_t bytes[4096];
    size_t len = in ? fread(bytes, 1, sizeof bytes, in) : 0;
    if (in) fclose(in);
    CHECK(len > 200, "read the golden file");
    bytes[128] ^= 0x40; /* first payload byte of b */
    char tmp[] = "/tmp/hct_vs_ggml_corrupt_XXXXXX";
    FILE *out = NULL;
    int fd = mkstemp(tmp);
    if (fd >= 0) out = fdopen(fd, "wb");
    if (out) {
        fwrite(bytes, 1, len, out);
        fclose(out);
        CHECK(hct_open(tmp, &f) == HCT_OK, "corrupt payload still opens");
        if (f) {
            CHECK(hct_tensor_verify(f, 0) == HCT_OK, "w intact");
            CHECK(hct_tensor_verify(f, 1) == HCT_ERR_CHECKSUM, "b corrupt");
            CHECK(strstr(hct_last_error(), "\"b\"") != NULL, "message names b: %s", hct_last_error());
            CHECK(hct_verify(f) == HCT_ERR_CHECKSUM, "whole-file verify");
            hct_close(f);
        }
        remove(tmp);
    }
    CHECK(hct_open("/nonexistent/dir/model.hct", &f) == HCT_ERR_IO && f == NULL, "missing file");
    printf("golden %s: 2 tensors, values as SPEC.md §12, checksums verified; corrupted copy refused\n",
           path);
}

static enum ggml_type ggml_type_of_codec(const char *codec) {
    if (strcmp(codec, "ggml_q4_0") == 0) return GGML_TYPE_Q4_0;
    if (strcmp(codec, "ggml_q4_1") == 0) return GGML_TYPE_Q4_1;
    if (strcmp(codec, "ggml_q8_0") == 0) return GGML_TYPE_Q8_0;
    return GGML_TYPE_COUNT;
}

static void test_real_file(const char *path) {
    hct_file *f = NULL;
    int st = hct_open(path, &f);
    CHECK(st == HCT_OK, "hct_open(%s) = %s", path, hct_status_name(st));
    if (f == NULL) return;
    const int64_t count = hct_tensor_count(f);
    CHECK(count > 0, "tensor count");
    int vst = hct_verify(f);
    CHECK(vst == HCT_OK, "verify %s", path);
    long by_codec[4] = {0, 0, 0, 0}, f32_tensors = 0, other = 0, rows_compared = 0, values = 0,
         identical = 0;
    struct dot_stats ds = {0, 0, 0, 0, 0, 0, 0};
    uint64_t payload_bytes = 0;
    for (int64_t i = 0; i < count; i++) {
        hct_tensor_info info;
        if (hct_tensor_get_info(f, i, &info) != HCT_OK) {
            CHECK(0, "info %lld", (long long) i);
            continue;
        }
        payload_bytes += info.payload_len;
        int64_t found = -1;
        CHECK(hct_tensor_find(f, info.name, &found) == HCT_OK && found == i, "find %s", info.name);
        CHECK(info.n_dims >= 1 && info.dims[info.n_dims - 1] == info.row_len, "%s shape", info.name);
        const enum ggml_type type = ggml_type_of_codec(info.codec_id);
        float *out = malloc(sizeof(float) * (size_t) info.row_len);
        float *ref = malloc(sizeof(float) * (size_t) info.row_len);
        if (type != GGML_TYPE_COUNT) {
            by_codec[type == GGML_TYPE_Q4_0 ? 0 : type == GGML_TYPE_Q4_1 ? 1 : 2]++;
            CHECK(info.traits != NULL, "%s has kernels", info.name);
            const size_t row_bytes = (size_t) (info.row_len / 32) * ggml_get_type_traits(type)->type_size;
            CHECK(row_bytes * info.n_rows == info.payload_len, "%s payload length", info.name);
            const uint64_t pick[3] = {0, info.n_rows / 2, info.n_rows - 1};
            for (int k = 0; k < 3; k++) {
                const uint64_t r = pick[k];
                const uint8_t *src = info.payload + r * row_bytes;
                CHECK(hct_tensor_decode_rows(f, i, r, 1, out, info.row_len) == HCT_OK, "decode %s row %llu",
                      info.name, (unsigned long long) r);
                ggml_get_type_traits(type)->to_float(src, ref, (int64_t) info.row_len);
                digest_bytes(out, sizeof(float) * info.row_len);
                for (uint64_t j = 0; j < info.row_len; j++) {
                    values++;
                    if (memcmp(&out[j], &ref[j], 4) == 0) identical++;
                }
                rows_compared++;
                if (type == GGML_TYPE_Q4_1) { /* the same bytes as int4_g32_fp16_v1 */
                    const hct_codec_traits *g32 = hct_codec_traits_find("int4_g32_fp16_v1");
                    g32->to_float(src, out, (int64_t) info.row_len);
                    for (uint64_t j = 0; j < info.row_len; j++) {
                        values++;
                        if (memcmp(&out[j], &ref[j], 4) == 0) identical++;
                    }
                }
                if (k == 1) {
                    float *act = malloc(sizeof(float) * info.row_len);
                    for (uint64_t j = 0; j < info.row_len; j++) act[j] = uniform();
                    const struct pairing *p = &pairings[type == GGML_TYPE_Q4_0 ? 0 : type == GGML_TYPE_Q4_1 ? 1 : 2];
                    compare_vec_dot(p, info.traits, src, (int64_t) info.row_len, act, &ds, info.name);
                    if (type == GGML_TYPE_Q4_1) {
                        compare_vec_dot(&pairings[3], hct_codec_traits_find("int4_g32_fp16_v1"), src,
                                        (int64_t) info.row_len, act, &ds, info.name);
                    }
                    free(act);
                }
            }
        } else if (strcmp(info.codec_id, "f32") == 0) {
            f32_tensors++;
            const uint64_t r = info.n_rows - 1;
            CHECK(hct_tensor_decode_rows(f, i, r, 1, out, info.row_len) == HCT_OK, "decode %s", info.name);
            CHECK(memcmp(out, info.payload + r * info.row_len * 4, info.row_len * 4) == 0,
                  "%s: f32 rows decode to their own bytes", info.name);
        } else {
            other++;
        }
        free(out);
        free(ref);
    }
    CHECK(values == identical, "%ld of %ld decoded values differ from ggml", values - identical, values);
    CHECK(by_codec[0] + by_codec[1] + by_codec[2] > 0, "the file has ggml block tensors");
    int64_t idx;
    CHECK(hct_tensor_find(f, "no.such.tensor", &idx) == HCT_ERR_NOT_FOUND, "missing name");
    CHECK(hct_tensor_decode_rows(f, 0, UINT64_MAX, 2, NULL, 0) == HCT_ERR_INVALID_ARGUMENT, "row overflow");
    printf("real file %s: %lld tensors, %.1f MB of payload, all checksums verified\n", path,
           (long long) count, payload_bytes / 1e6);
    printf("  ggml_q4_0 %ld, ggml_q4_1 %ld, ggml_q8_0 %ld, f32 %ld, other %ld tensors; %ld rows decoded "
           "through hct_tensor_decode_rows (Q4_1 also as int4_g32_fp16_v1): %ld/%ld values bit-identical "
           "to ggml's to_float\n",
           by_codec[0], by_codec[1], by_codec[2], f32_tensors, other, rows_compared, identical, values);
    printf("  real rows dotted: %ld dots, bit-identical to ggml in %ld; worst error/bound: hct %.3f, ggml "
           "%.3f\n",
           ds.dots, ds.hct_equals_ggml, ds.hct_worst, ds.ggml_worst);
    hct_close(f);
}

static void test_not_hct(const char *path) {
    hct_file *f = NULL;
    const int st = hct_open(path, &f);
    CHECK(st == HCT_ERR_INVALID_FILE && f == NULL, "hct_open of a non-HCT file gave %s", hct_status_name(st));
    CHECK(strstr(hct_last_error(), "not an HCT file") != NULL, "message: %s", hct_last_error());
    printf("non-HCT file refused: %s\n", hct_last_error());
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s GOLDEN_HCT [REAL_HCT [NOT_HCT_FILE]]\n", argv[0]);
        return 2;
    }
    ggml_cpu_init();
    const hct_version_info v = hct_version();
    CHECK(v.library_major == HCT_LIBRARY_VERSION_MAJOR && v.library_minor == HCT_LIBRARY_VERSION_MINOR,
          "header and library versions");
    printf("%s, isa %s; ggml %s\n", v.text, hct_isa_name(hct_active_isa()), ggml_version());
    read_iq4nl_grid();
    test_kernels();
    test_golden(argv[1]);
    if (argc >= 3) test_real_file(argv[2]);
    if (argc >= 4) test_not_hct(argv[3]);
    printf("hct_vs_ggml: %ld checks, %ld failures\n", n_checks, n_failures);
    printf("hct_digest %016llx\n", (unsigned long long) digest);
    return n_failures == 0 ? 0 : 1;
}
