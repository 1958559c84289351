/* llm_check.c — CUDA vs CPU logits of the LLM engine, and VRAM vs the plan.
 * Built and run by tests/gpu/llm_check.sh on a machine with a GPU:
 *   llm_check MODEL [N_TOKENS]
 * Evaluates the same tokens (teacher-forced) in cpu, beefy and lightweight
 * modes, twice: with float activations (llm_params.f32_act, the reference
 * mode: CPU and GPU then differ only by float rounding, pass: relative logit
 * error max|gpu - cpu| / max|cpu| <= 1e-3), and with the engine's normal
 * 8-bit activation blocks (where even the CPU's scalar and AVX2 kernels differ
 * by ~1% after 30 layers, because a last-bit difference can flip the rounding
 * of an activation: pass there is <= 5e-2 and >= 90% top-1 agreement). Also
 * prints top-1 agreement, the VRAM this
 * process held (arenas, and NVML's figure) against the plan's vram_peak, and
 * generation speed. Ends with "N passed, N failed, N skipped". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "gpu.h"
#include "llm.h"

static int passed, failed;
#define CHECKF(c, ...) do { if (c) { passed++; printf("ok - "); } else { failed++; printf("FAIL - "); } printf(__VA_ARGS__); printf("\n"); } while (0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: llm_check MODEL [N_TOKENS]\n"); return 64; }
    int n = argc > 2 ? atoi(argv[2]) : 100;
    if (gpu_init(0) < 0 || !gpu_present() || gpu_is_fake()) {
        printf("skip - no CUDA device\n0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    printf("# device: %s\n", gpu_get_info()->name);
    if (gpu_activate()) { printf("FAIL - gpu_activate: %s\n", iso_errmsg()); return 1; }
    struct llm_params p;
    llm_params_default(&p);
    p.n_ctx = n + 64;
    p.threads = 0;
    struct llm *m = NULL;
    int nv = 0;
    int32_t *tok = NULL;
    float *ref = NULL, *got = NULL;
    for (int f32 = 1; f32 >= 0; f32--) {
    p.f32_act = f32;
    p.mode = MEM_MODE_CPU;
    if (llm_open(argv[1], &p, &m) < 0) { printf("FAIL - cpu open: %s\n0 passed, 1 failed\n", iso_errmsg()); return 1; }
    if (!tok) {
        nv = llm_n_vocab(m);
        tok = malloc(sizeof(int32_t) * (size_t)n);
        for (int i = 0; i < n; i++) tok[i] = (int32_t)((i * 7919 + 13) % nv);
        ref = malloc(sizeof(float) * (size_t)n * nv);
        got = malloc(sizeof(float) * (size_t)n * nv);
    }
    if (llm_eval_all(m, tok, n, 0, ref) < 0) { printf("FAIL - cpu eval: %s\n", iso_errmsg()); return 1; }
    llm_close(&m);
    enum mem_mode modes[2] = { MEM_MODE_BEEFY, MEM_MODE_LIGHTWEIGHT };
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s, %s activations", mem_mode_name(modes[k]), f32 ? "float" : "8-bit");
        struct mem_plan plan;
        p.mode = modes[k];
        if (llm_plan(argv[1], &p, &plan) < 0) { CHECKF(0, "%s plan: %s", name, iso_errmsg()); continue; }
        uint64_t before = 0, after = 0;
        int nvml = 0;
        gpu_process_bytes(&before, &nvml);
        double t0 = now();
        if (llm_open(argv[1], &p, &m) < 0) { CHECKF(0, "%s open: %s", name, iso_errmsg()); continue; }
        double t1 = now();
        uint64_t own = gpu_own_bytes();
        if (llm_eval_all(m, tok, n, 0, got) < 0) { CHECKF(0, "%s eval: %s", name, iso_errmsg()); llm_close(&m); continue; }
        gpu_process_bytes(&after, &nvml);
        double maxd = 0, maxa = 0;
        int agree = 0;
        for (int t = 0; t < n; t++) {
            int a = 0, b = 0;
            for (int i = 0; i < nv; i++) {
                double d = fabs((double)got[(size_t)t * nv + i] - ref[(size_t)t * nv + i]);
                if (d > maxd) maxd = d;
                if (fabs(ref[(size_t)t * nv + i]) > maxa) maxa = fabs(ref[(size_t)t * nv + i]);
                if (got[(size_t)t * nv + i] > got[(size_t)t * nv + a]) a = i;
                if (ref[(size_t)t * nv + i] > ref[(size_t)t * nv + b]) b = i;
            }
            agree += a == b;
        }
        double tol = f32 ? 1e-3 : 5e-2;
        CHECKF(maxd <= tol * maxa && (f32 || agree >= n * 9 / 10),
               "%s: logits max|gpu - cpu| = %.3g, relative %.3g (<= %g), top-1 agreement %d/%d",
               name, maxd, maxd / maxa, tol, agree, n);
        /* generation speed: one token at a time after the prompt */
        float *lg = malloc(sizeof(float) * (size_t)nv);
        double g0 = now();
        int ng = 32;
        for (int g = 0; g < ng; g++) {
            int32_t t = tok[g % n];
            if (llm_eval(m, &t, 1, n + g, lg) < 0) break;
        }
        double g1 = now();
        free(lg);
        CHECKF(own <= plan.mode[modes[k]].vram_peak,
               "%s: arenas %.1f MiB <= plan vram_peak %.1f MiB (process per %s: %.1f MiB, of which %.1f before load); "
               "load %.2f s, %.1f tok/s generation",
               name, own / 1048576.0, plan.mode[modes[k]].vram_peak / 1048576.0, nvml ? "NVML" : "own accounting",
               after / 1048576.0, before / 1048576.0, t1 - t0, ng / (g1 - g0));
        llm_close(&m);
    }
    }
    free(tok); free(ref); free(got);
    printf("%d passed, %d failed, 0 skipped\n", passed, failed);
    return failed ? 1 : 0;
}
