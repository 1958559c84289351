/* membw.c — the memory read bandwidth the generation path can hope for: T
 * threads each sum their share of a buffer much larger than the caches with
 * 256-bit loads, best of 5 passes (not a test; tests/bench/llm/run.sh prints
 * it beside the engines' tokens/s x bytes streamed per token).
 *   membw [THREADS] [MIB] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct part { const uint64_t *p; size_t n; uint64_t sum; };

static void *reader(void *arg)
{
    struct part *q = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= q->n; i += 4) { s0 += q->p[i]; s1 += q->p[i + 1]; s2 += q->p[i + 2]; s3 += q->p[i + 3]; }
    q->sum = s0 ^ s1 ^ s2 ^ s3;
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 512;
    if (threads < 1 || threads > 64 || mib < 1) { fprintf(stderr, "usage: membw [THREADS] [MIB]\n"); return 64; }
    size_t n = mib << 17;   /* uint64 words */
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf) { fprintf(stderr, "membw: out of memory\n"); return 70; }
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
    double best = 1e30;
    uint64_t x = 0;
    for (int pass = 0; pass < 5; pass++) {
        pthread_t tid[64];
        struct part pt[64];
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            pt[t].p = buf + n * (size_t)t / (size_t)threads;
            pt[t].n = n * (size_t)(t + 1) / (size_t)threads - n * (size_t)t / (size_t)threads;
            pthread_create(&tid[t], NULL, reader, &pt[t]);
        }
        for (int t = 0; t < threads; t++) { pthread_join(tid[t], NULL); x ^= pt[t].sum; }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("membw_gbs=%.2f threads=%d mib=%zu check=%llx\n", (double)(n * sizeof *buf) / best / 1e9, threads, mib,
           (unsigned long long)(x & 0xF));
    free(buf);
    return 0;
}
