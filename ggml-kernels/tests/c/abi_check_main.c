/*
 * The fixed part of the C program tests/c_header.rs builds: it follows a generated table
 * `functions[]` (every function hct.h declares) and precedes a generated print_layouts().
 * argv[1] is format-spec/tests/golden/minimal-v1.0.hct.
 */
static void print_layouts(void);

static int failures = 0;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAILED line %d: %s (last error: %s)\n", __LINE__, #cond, hct_last_error()); \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

int main(int argc, char **argv) {
    size_t n_functions = sizeof functions / sizeof functions[0];
    for (size_t i = 0; i < n_functions; i++) CHECK(functions[i] != NULL);
    printf("functions %zu\n", n_functions);
    print_layouts();
    if (argc != 2) {
        printf("usage: %s GOLDEN_FILE\n", argv[0]);
        return 2;
    }

    /* The header's version macros are the library's. */
    hct_version_info v = hct_version();
    CHECK(v.library_major == HCT_LIBRARY_VERSION_MAJOR);
    CHECK(v.library_minor == HCT_LIBRARY_VERSION_MINOR);
    CHECK(v.library_patch == HCT_LIBRARY_VERSION_PATCH);
    CHECK(v.spec_major == HCT_SPEC_VERSION_MAJOR && v.spec_minor == HCT_SPEC_VERSION_MINOR);
    printf("version %s, isa %s\n", v.text, hct_isa_name(hct_active_isa()));

    /* The spec's golden file: w = f32 [[1, -2], [0.5, 0]], b = bf16 [1, -1, 0.5]. */
    hct_file *file = NULL;
    CHECK(hct_open(argv[1], &file) == HCT_OK);
    if (file == NULL) return 1;
    CHECK(hct_tensor_count(file) == 2);
    int64_t index = -1;
    CHECK(hct_tensor_find(file, "b", &index) == HCT_OK && index == 1);
    hct_tensor_info info;
    memset(&info, 0, sizeof info);
    CHECK(hct_tensor_get_info(file, 0, &info) == HCT_OK);
    CHECK(info.name_len == 1 && strcmp(info.name, "w") == 0 && strcmp(info.codec_id, "f32") == 0);
    CHECK(info.n_dims == 2 && info.dims[0] == 2 && info.dims[1] == 2 && info.dims[2] == 0);
    CHECK(info.payload_len == 16 && info.payload_offset == 64 && info.traits == NULL);
    float w[4] = {0};
    CHECK(hct_tensor_decode_rows(file, 0, 0, 2, w, 4) == HCT_OK);
    CHECK(w[0] == 1.0f && w[1] == -2.0f && w[2] == 0.5f && w[3] == 0.0f);
    CHECK(hct_verify(file) == HCT_OK);

    /* Bad input gives codes, not crashes. */
    CHECK(hct_tensor_decode_rows(file, 0, 1, 2, w, 4) == HCT_ERR_INVALID_ARGUMENT);
    CHECK(strstr(hct_last_error(), "has 2 rows") != NULL);
    CHECK(hct_tensor_get_info(file, 2, &info) == HCT_ERR_INVALID_ARGUMENT);
    CHECK(hct_tensor_find(file, "nope", &index) == HCT_ERR_NOT_FOUND);
    CHECK(hct_status_name(HCT_ERR_NOT_FOUND) != NULL && hct_status_name(-1) == NULL);
    CHECK(hct_isa_name(99) == NULL);
    hct_close(file);

    /* A traits record, called through its pointers. */
    const hct_codec_traits *t = hct_codec_traits_find("int4_g32_fp16_v1");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK(t->blck_size == 32 && t->type_size == 20 && t->vec_dot_type == 8 && t->nrows == 1);
        /* d = 1.0, m = -8.0, nibbles 0..15 / 15..0: values q - 8. */
        unsigned char block[20] = {0x00, 0x3c, 0x00, 0xc8};
        for (int i = 0; i < 16; i++) block[4 + i] = (unsigned char) (i | (15 - i) << 4);
        float y[32];
        t->to_float(block, y, 32);
        CHECK(y[0] == -8.0f && y[15] == 7.0f && y[16] == 7.0f && y[31] == -8.0f);
        float ones[32], s = 0.0f;
        for (int i = 0; i < 32; i++) ones[i] = 1.0f;
        unsigned char act[34];
        t->from_float(ones, act, 32);
        t->vec_dot(32, &s, 0, block, 0, act, 0, 1);
        /* The 32 values sum to -16; the activations are all 1 within fp16 rounding. */
        CHECK(s < -15.99f && s > -16.01f);
    }
    CHECK(hct_codec_traits_find("no_such_codec") == NULL);

    printf("abi_check: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
