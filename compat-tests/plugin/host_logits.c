/* A host application of libllama: evaluates the first N tokens of a text in one batch, writes
 * every position's logits (float32, N x n_vocab, little-endian) to a file, then generates G tokens
 * greedily and prints them as JSON, with the N token ids it evaluated (llama.cpp's own tokenizer,
 * special tokens added as the model asks) so another implementation can run on the same ids.
 * run.sh compares the raw logits of the plugin (both modes) with those of the decoded-F32 model
 * under stock llama.cpp, bit for bit where they should be.
 *
 * With HCT_HOST_F32_ATTENTION=1 in the environment the KV cache is float32 (llama.cpp's default is
 * f16) and flash attention is off, so attention runs in float32 throughout: how compat-tests/hf
 * separates the KV cache's f16 rounding from plain summation-order differences when it compares
 * llama.cpp with transformers.
 *
 * Built with -DHCT_HOST_REGISTER it links libhct and calls hct_ggml_register_all() itself,
 * which is how an application that embeds llama.cpp adopts the HCT codecs (run.sh sets
 * HCT_GGML_AUTOREGISTER=0 so that the explicit call is the only registration).
 *
 * usage: host_logits MODEL TEXT_FILE N_TOKENS LOGITS_OUT N_GENERATE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

#ifdef HCT_HOST_REGISTER
#include "hct_ggml.h"
#endif

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static int argmax(const float * v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

int main(int argc, char ** argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL TEXT_FILE N_TOKENS LOGITS_OUT N_GENERATE\n", argv[0]);
        return 2;
    }
    const char * model_path = argv[1];
    const int n_tokens = atoi(argv[3]);
    const int n_generate = atoi(argv[5]);
    if (n_tokens < 1 || n_generate < 0) {
        fprintf(stderr, "N_TOKENS must be >= 1 and N_GENERATE >= 0\n");
        return 2;
    }

    llama_log_set(quiet, NULL);
    llama_backend_init();
#ifdef HCT_HOST_REGISTER
    const int registered = hct_ggml_register_all();
    if (registered < 0) {
        fprintf(stderr, "hct_ggml_register_all() failed: %d\n", registered);
        return 3;
    }
#else
    const int registered = -1;
#endif

    FILE * f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static char text[1 << 20];
    const size_t text_len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);

    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", model_path);
        return 1;
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    llama_token * tokens = malloc(sizeof(llama_token) * (text_len + 2));
    const int n_text = llama_tokenize(vocab, text, (int32_t) text_len, tokens, (int32_t) text_len + 2, true, false);
    if (n_text < n_tokens) {
        fprintf(stderr, "the text has %d tokens, fewer than %d\n", n_text, n_tokens);
        return 1;
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_tokens + n_generate;
    cp.n_batch = n_tokens;
    cp.n_ubatch = n_tokens;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    const char * f32_attention = getenv("HCT_HOST_F32_ATTENTION");
    if (f32_attention && strcmp(f32_attention, "1") == 0) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "cannot create a context\n");
        return 1;
    }

    struct llama_batch batch = llama_batch_init(n_tokens, 0, 1);
    for (int i = 0; i < n_tokens; i++) {
        batch.token[i] = tokens[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n_tokens;
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_decode failed\n");
        return 1;
    }
    FILE * out = fopen(argv[4], "wb");
    if (!out) {
        perror(argv[4]);
        return 1;
    }
    for (int i = 0; i < n_tokens; i++) {
        if (fwrite(llama_get_logits_ith(ctx, i), sizeof(float), n_vocab, out) != (size_t) n_vocab) {
            perror(argv[4]);
            return 1;
        }
    }
    fclose(out);

    printf("{\"n_tokens\":%d,\"n_vocab\":%d,\"registered\":%d,\"tokens\":[", n_tokens, n_vocab, registered);
    for (int i = 0; i < n_tokens; i++) {
        printf("%s%d", i ? "," : "", tokens[i]);
    }
    printf("],\"generated\":[");
    llama_token next = argmax(llama_get_logits_ith(ctx, n_tokens - 1), n_vocab);
    for (int g = 0; g < n_generate; g++) {
        printf("%s%d", g ? "," : "", next);
        struct llama_batch one = llama_batch_get_one(&next, 1);
        if (llama_decode(ctx, one) != 0) {
            fprintf(stderr, "llama_decode failed while generating\n");
            return 1;
        }
        next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    }
    printf("]}\n");

    llama_batch_free(batch);
    free(tokens);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
