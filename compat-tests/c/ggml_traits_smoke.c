/*
 * Proof that a test program links against the real ggml (the pinned llama.cpp build) and that its
 * reference dequantizers can serve as the oracle for HCT's ggml-native codecs.
 *
 * For Q4_0, Q4_1 and Q8_0 this builds blocks by hand from the layout facts (an f16 scale, for Q4_1
 * an f16 minimum, then packed quants), asks ggml_get_type_traits(type)->to_float to decode them,
 * and compares every value, bit for bit, with a decoder written here from the same facts:
 *   Q4_0 (18 bytes / 32 values): d; qs[16]; value j = d * ((qs[j%16] >> 4*(j/16)) & 15) - 8)
 *   Q4_1 (20 bytes / 32 values): d, m; qs[16]; value j = d * ((qs[j%16] >> 4*(j/16)) & 15) + m
 *   Q8_0 (34 bytes / 32 values): d; int8 qs[32]; value j = d * qs[j]
 * The f16 decoding is done here from the IEEE bits too, not with ggml's helpers.
 *
 * Exactness does not depend on FMA contraction: an f16 scale has 11 significant bits and a quant
 * at most 8, so d*q is exact in f32 and only the final addition rounds, fused or not. This file is
 * compiled with -ffp-contract=off so the oracle is unfused whatever the compiler's default.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ggml.h"

static int passed = 0;
static int failed = 0;

/* f16 bits to f32, from the IEEE 754 binary16 layout (1 sign, 5 exponent, 10 fraction bits). */
static float half_bits_to_float(uint16_t h) {
    const int sign = (h >> 15) & 1;
    const int exponent = (h >> 10) & 0x1f;
    const int fraction = h & 0x3ff;
    float magnitude;
    if (exponent == 0) {
        magnitude = ldexpf((float) fraction, -24); /* subnormal: fraction * 2^-24 */
    } else if (exponent == 31) {
        magnitude = fraction ? NAN : INFINITY;
    } else {
        magnitude = ldexpf((float) (fraction | 0x400), exponent - 25);
    }
    return sign ? -magnitude : magnitude;
}

/* A small deterministic generator, so the blocks are the same on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t) (rng_state >> 16);
}

/* A finite f16 bit pattern with a moderate exponent (normal numbers of either sign). */
static uint16_t random_half_bits(void) {
    const uint32_t r = next_u32();
    const uint16_t exponent = (uint16_t) (5 + r % 20); /* 2^-10 .. 2^9 */
    return (uint16_t) (((r >> 8) & 1) << 15 | exponent << 10 | ((r >> 9) & 0x3ff));
}

static void put_half(uint8_t * p, uint16_t h) {
    p[0] = (uint8_t) (h & 0xff); /* GGUF and ggml blocks are little-endian */
    p[1] = (uint8_t) (h >> 8);
}

static void compare(const char * what, int block, int j, float expected, float got) {
    uint32_t a, b;
    memcpy(&a, &expected, 4);
    memcpy(&b, &got, 4);
    if (a == b) {
        passed++;
    } else {
        failed++;
        if (failed <= 10) {
            fprintf(stderr, "MISMATCH %s block %d value %d: expected %.9g (0x%08x), ggml gave %.9g (0x%08x)\n",
                    what, block, j, expected, a, got, b);
        }
    }
}

enum { BLOCKS = 256, QK = 32 };

static int check_traits(enum ggml_type type, int64_t block_size, size_t type_size) {
    const struct ggml_type_traits * traits = ggml_get_type_traits(type);
    if (traits == NULL || traits->to_float == NULL || traits->blck_size != block_size ||
        traits->type_size != type_size || !traits->is_quantized) {
        fprintf(stderr, "ggml traits for type %d do not match the layout (blck_size %lld, type_size %zu)\n",
                (int) type, traits ? (long long) traits->blck_size : -1LL, traits ? traits->type_size : 0);
        failed++;
        return 0;
    }
    passed++;
    return 1;
}

static void test_q4_1(void) {
    enum { BYTES = 20 };
    static uint8_t blocks[BLOCKS * BYTES];
    static float expected[BLOCKS * QK], got[BLOCKS * QK];
    if (!check_traits(GGML_TYPE_Q4_1, QK, BYTES)) return;

    for (int b = 0; b < BLOCKS; b++) {
        uint8_t * p = blocks + b * BYTES;
        /* Block 0 uses round values a reader can check by eye: d = 0.5, m = -1.25. */
        const uint16_t d_bits = b == 0 ? 0x3800 : random_half_bits();
        const uint16_t m_bits = b == 0 ? 0xbd00 : random_half_bits();
        put_half(p, d_bits);
        put_half(p + 2, m_bits);
        for (int i = 0; i < 16; i++) {
            /* Block 0: low nibbles 0..15, high nibbles 15..0, so every code appears in both halves. */
            p[4 + i] = b == 0 ? (uint8_t) (i | (15 - i) << 4) : (uint8_t) next_u32();
        }
        const float d = half_bits_to_float(d_bits), m = half_bits_to_float(m_bits);
        for (int j = 0; j < QK; j++) {
            const int q = (p[4 + j % 16] >> (4 * (j / 16))) & 15;
            expected[b * QK + j] = d * (float) q + m;
        }
    }
    ggml_get_type_traits(GGML_TYPE_Q4_1)->to_float(blocks, got, BLOCKS * QK);
    for (int i = 0; i < BLOCKS * QK; i++) compare("Q4_1", i / QK, i % QK, expected[i], got[i]);
    printf("Q4_1 block 0 (d=0.5, m=-1.25): %g %g %g ... %g | %g ... %g\n", got[0], got[1], got[2], got[15],
           got[16], got[31]);
}

static void test_q4_0(void) {
    enum { BYTES = 18 };
    static uint8_t blocks[BLOCKS * BYTES];
    static float expected[BLOCKS * QK], got[BLOCKS * QK];
    if (!check_traits(GGML_TYPE_Q4_0, QK, BYTES)) return;

    for (int b = 0; b < BLOCKS; b++) {
        uint8_t * p = blocks + b * BYTES;
        const uint16_t d_bits = random_half_bits();
        put_half(p, d_bits);
        for (int i = 0; i < 16; i++) p[2 + i] = (uint8_t) next_u32();
        const float d = half_bits_to_float(d_bits);
        for (int j = 0; j < QK; j++) {
            const int q = ((p[2 + j % 16] >> (4 * (j / 16))) & 15) - 8;
            expected[b * QK + j] = d * (float) q;
        }
    }
    ggml_get_type_traits(GGML_TYPE_Q4_0)->to_float(blocks, got, BLOCKS * QK);
    for (int i = 0; i < BLOCKS * QK; i++) compare("Q4_0", i / QK, i % QK, expected[i], got[i]);
}

static void test_q8_0(void) {
    enum { BYTES = 34 };
    static uint8_t blocks[BLOCKS * BYTES];
    static float expected[BLOCKS * QK], got[BLOCKS * QK];
    if (!check_traits(GGML_TYPE_Q8_0, QK, BYTES)) return;

    for (int b = 0; b < BLOCKS; b++) {
        uint8_t * p = blocks + b * BYTES;
        const uint16_t d_bits = random_half_bits();
        put_half(p, d_bits);
        for (int i = 0; i < QK; i++) p[2 + i] = (uint8_t) next_u32();
        const float d = half_bits_to_float(d_bits);
        for (int j = 0; j < QK; j++) expected[b * QK + j] = d * (float) (int8_t) p[2 + j];
    }
    ggml_get_type_traits(GGML_TYPE_Q8_0)->to_float(blocks, got, BLOCKS * QK);
    for (int i = 0; i < BLOCKS * QK; i++) compare("Q8_0", i / QK, i % QK, expected[i], got[i]);
}

int main(void) {
    printf("ggml %s, Q4_1 traits: blck_size %lld, type_size %zu, name %s\n", ggml_version(),
           (long long) ggml_get_type_traits(GGML_TYPE_Q4_1)->blck_size,
           ggml_get_type_traits(GGML_TYPE_Q4_1)->type_size, ggml_type_name(GGML_TYPE_Q4_1));
    test_q4_1();
    test_q4_0();
    test_q8_0();
    printf("ggml_traits_smoke: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
