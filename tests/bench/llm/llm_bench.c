/* llm_bench.c — prompt processing and generation speed of the LLM engine.
 * Built and run by tests/bench/llm/run.sh (not part of make test):
 *   llm_bench MODEL THREADS N_PROMPT N_GEN REPS
 * The prompt is a fixed pattern of token ids (the cost of a forward pass does
 * not depend on which tokens), generation is greedy. Prints one line:
 *   pp_tps=<best of REPS> tg_tps=<best of REPS> hwm=<peak RSS bytes> kv=<bytes> file=<bytes> */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "gguf.h"
#include "llm.h"
#include "mem.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 6) { fprintf(stderr, "usage: llm_bench MODEL THREADS N_PROMPT N_GEN REPS\n"); return 64; }
    int threads = atoi(argv[2]), np = atoi(argv[3]), ng = atoi(argv[4]), reps = atoi(argv[5]);
    struct llm_params p;
    llm_params_default(&p);
    p.threads = threads;
    p.n_ctx = np + ng + 8;
    p.mode = MEM_MODE_CPU;
    struct llm *m = NULL;
    double t_open = now();
    if (llm_open(argv[1], &p, &m) < 0) { fprintf(stderr, "llm_bench: %s\n", iso_errmsg()); return 69; }
    t_open = now() - t_open;   /* mapping, and the x8 packing of the CPU path */
    int nv = llm_n_vocab(m);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)np);
    float *lg = malloc(sizeof(float) * (size_t)nv);
    for (int i = 0; i < np; i++) tok[i] = (int32_t)((i * 7919 + 13) % nv);
    double best_pp = 0, best_tg = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (llm_eval(m, tok, np, 0, lg) < 0) { fprintf(stderr, "llm_bench: %s\n", iso_errmsg()); return 70; }
        double t1 = now();
        for (int g = 0; g < ng; g++) {
            int32_t best = 0;
            for (int i = 1; i < nv; i++) if (lg[i] > lg[best]) best = i;
            if (llm_eval(m, &best, 1, np + g, lg) < 0) { fprintf(stderr, "llm_bench: %s\n", iso_errmsg()); return 70; }
        }
        double t2 = now();
        if (np / (t1 - t0) > best_pp) best_pp = np / (t1 - t0);
        if (ng / (t2 - t1) > best_tg) best_tg = ng / (t2 - t1);
    }
    struct mem_sample s;
    mem_sample(&s);
    struct stat st;
    stat(argv[1], &st);
    /* bytes a generation step streams: every matrix, the token embedding
     * only when it doubles as the output (tied) */
    uint64_t stream = 0;
    struct gguf *g = NULL;
    if (gguf_open(argv[1], &g) == 0) {
        int tied = gguf_find_tensor(g, "output.weight") == NULL;
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const struct gguf_tensor *t = &g->tensors[i];
            if (t->n_dims == 2 && (tied || strncmp(t->name.s, "token_embd.weight", t->name.len) != 0)) stream += t->nbytes;
        }
        gguf_close(&g);
    }
    struct mem_plan plan;
    uint64_t kv = llm_plan(argv[1], &p, &plan) == 0 ? plan.blocks.kv_cache : 0;
    printf("pp_tps=%.1f tg_tps=%.1f hwm=%llu kv=%llu file=%llu stream=%llu simd=%s open_s=%.3f\n", best_pp, best_tg,
           (unsigned long long)s.hwm, (unsigned long long)kv, (unsigned long long)st.st_size, (unsigned long long)stream,
           getenv("ISOPIPE_NO_SIMD") ? "off" : "auto", t_open);
    llm_close(&m);
    free(tok);
    free(lg);
    return 0;
}
