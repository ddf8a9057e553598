// Streaming-read bandwidth of this machine: T threads each read their share of a 1 GiB buffer
// with 256-bit loads (or 128-bit, or plain words, whatever the compiler vectorizes the loop to),
// best of 7 passes. Prints one JSON line per thread count given on the command line.
//   cc -O2 -march=native -pthread read_bw.c -o read_bw && ./read_bw 1 2
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (1ull << 30)

struct job { const uint64_t * p; size_t n; uint64_t sum; };

static void * reader(void * arg) {
    struct job * j = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {  // four independent chains: loads, not adds, limit
        a ^= j->p[i]; b ^= j->p[i + 1]; c ^= j->p[i + 2]; d ^= j->p[i + 3];
    }
    j->sum = a ^ b ^ c ^ d;
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char ** argv) {
    uint64_t * buf = aligned_alloc(64, BYTES);
    if (buf == NULL) { fprintf(stderr, "read_bw: cannot allocate 1 GiB\n"); return 1; }
    for (size_t i = 0; i < BYTES / 8; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;  // touch every page
    for (int a = 1; a < argc; a++) {
        int t = atoi(argv[a]);
        if (t < 1 || t > 64) { fprintf(stderr, "read_bw: bad thread count %s\n", argv[a]); return 2; }
        double best = 1e9;
        uint64_t sink = 0;
        for (int pass = 0; pass < 7; pass++) {
            pthread_t th[64];
            struct job jobs[64];
            size_t share = BYTES / 8 / t;
            double t0 = now();
            for (int k = 0; k < t; k++) {
                jobs[k] = (struct job) { buf + k * share, share, 0 };
                pthread_create(&th[k], NULL, reader, &jobs[k]);
            }
            for (int k = 0; k < t; k++) { pthread_join(th[k], NULL); sink ^= jobs[k].sum; }
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("{\"threads\": %d, \"read_gb_per_s\": %.2f, \"sink\": %llu}\n", t, BYTES / best / 1e9,
               (unsigned long long) (sink & 1));
    }
    free(buf);
    return 0;
}
