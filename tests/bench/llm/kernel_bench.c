/* kernel_bench.c — the matrix-vector kernels of prompt-expand on one random
 * matrix per type: the per-row AVX2 kernels (the file's layout), the x8
 * layout's (eight rows interleaved, for the types the engine packs), and,
 * where the CPU has AVX-512 VNNI, the AVX-512 ones: per row (32-element
 * types) and packed (x16: two groups of 8 rows per register; all packed
 * types but Q8_0; ISOPIPE_X8_AVX512=1 has the engine use them). Timed in
 * thread CPU time so that other load on the machine does not count; best of
 * 3; GB/s of weights (the file's bytes). Not a test.
 *   sh tests/bench/llm/kernel_bench.sh [ROWS] [COLS] [REPEATS]
 * ROWS x COLS small enough for L2 measures the arithmetic, large ones the
 * memory path. "x4" = four tokens per call (prompt processing), per token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"

int quant_rows_avx2(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);
int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);
int quant_x8_rows_avx2(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                       size_t xa_stride, int nt, float *y, size_t y_stride);
int quant_x8_rows_avx512(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                         size_t xa_stride, int nt, float *y, size_t y_stride);

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int rows = argc > 1 ? atoi(argv[1]) : 1536, cols = argc > 2 ? atoi(argv[2]) : 1536, reps = argc > 3 ? atoi(argv[3]) : 50;
    rows &= ~7;
    cols &= ~255;
    if (rows < 8 || cols < 256 || reps < 1) { fprintf(stderr, "usage: kernel_bench [ROWS>=8] [COLS>=256] [REPEATS]\n"); return 64; }
    quant_init();
    if (quant_simd() < 1) { printf("# this CPU has no AVX2 (or ISOPIPE_NO_SIMD is set): nothing to compare\n"); return 0; }
    static const enum ggml_type ts[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0,
                                         GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };
    printf("# %d x %d matrix, %d repeats, thread CPU time, best of 3, GB/s of weights per token\n", rows, cols, reps);
    printf("%-6s %10s %10s %10s %12s %11s %11s\n", "type", "avx2 rows", "x8", "x8 x4", "avx512 rows", "x8 avx512",
           "x8x4 avx512");
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
        enum ggml_type t = ts[i];
        size_t rb = quant_row_bytes(t, cols), ab = quant_act_bytes(t, cols);
        unsigned char *w = malloc(rb * (size_t)rows), *w8 = NULL;
        float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)rows * 4);
        unsigned char *xa = malloc(ab * 4);
        srand(1);
        for (size_t k = 0; k < rb * (size_t)rows; k++) w[k] = (unsigned char)rand();
        for (int k = 0; k < cols; k++) x[k] = (float)rand() / RAND_MAX - 0.5f;
        for (int k = 0; k < 4; k++) quant_act(t, x, xa + (size_t)k * ab, cols);
        int x8 = quant_x8_usable(t), v512 = quant_simd() == 2 && t != GGML_TYPE_Q4_K && t != GGML_TYPE_Q6_K;
        int x8v512 = x8 && quant_simd() == 2 && t != GGML_TYPE_Q8_0;
        if (x8) {
            w8 = malloc(quant_x8_bytes(t, cols, rows));
            quant_x8_pack(t, w, cols, 0, rows / 8, w8);
        }
        double best[6] = { 1e30, 1e30, 1e30, 1e30, 1e30, 1e30 };
        for (int round = 0; round < 3; round++)
            for (int v = 0; v < 6; v++) {
                if ((v == 1 || v == 2) && !x8) continue;
                if (v == 3 && !v512) continue;
                if (v >= 4 && !x8v512) continue;
                double t0 = cpu_now();
                for (int r = 0; r < reps; r++) {
                    if (v == 0) quant_rows_avx2(t, w, rb, 0, rows, xa, cols, y);
                    else if (v == 1) quant_x8_rows_avx2(t, w8, cols, 0, rows / 8, xa, ab, 1, y, (size_t)rows);
                    else if (v == 2) quant_x8_rows_avx2(t, w8, cols, 0, rows / 8, xa, ab, 4, y, (size_t)rows);
                    else if (v == 3) quant_rows_avx512(t, w, rb, 0, rows, xa, cols, y);
                    else quant_x8_rows_avx512(t, w8, cols, 0, rows / 8, xa, ab, v == 4 ? 1 : 4, y, (size_t)rows);
                }
                double dt = (cpu_now() - t0) / (v == 2 || v == 5 ? 4 : 1);
                if (dt < best[v]) best[v] = dt;
            }
        double gb = (double)rb * rows * reps / 1e9;
        char c[6][16];
        for (int v = 0; v < 6; v++)
            if (best[v] < 1e29) snprintf(c[v], sizeof c[v], "%.2f", gb / best[v]);
            else snprintf(c[v], sizeof c[v], "-");
        printf("%-6s %10s %10s %10s %12s %11s %11s\n", ggml_type_name(t), c[0], c[1], c[2], c[3], c[4], c[5]);
        free(w); free(w8); free(x); free(y); free(xa);
    }
    return 0;
}
