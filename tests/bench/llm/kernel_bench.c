/* kernel_bench.c — the matrix-vector kernels of prompt-expand (one token,
 * the generation path) for the 32-element formats: AVX2 against AVX-512 VNNI
 * on the same random matrix, timed in thread CPU time so that other load on
 * the machine does not count (not a test: prints one line per type).
 *   build/bench/kernel_bench [ROWS] [COLS] [REPEATS] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "quant.h"

int quant_rows_avx2(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);
int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int rows = argc > 1 ? atoi(argv[1]) : 2048, cols = argc > 2 ? atoi(argv[2]) : 2048, reps = argc > 3 ? atoi(argv[3]) : 20;
    quant_init();
    if (quant_simd() < 2) { printf("# this CPU has no AVX-512 VNNI (or ISOPIPE_NO_AVX512 is set): nothing to compare\n"); return 0; }
    static const enum ggml_type ts[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0 };
    printf("# %d x %d matrix, %d repeats, thread CPU time, best of 3\n", rows, cols, reps);
    printf("%-6s %12s %12s %8s\n", "type", "avx2 GB/s", "avx512 GB/s", "ratio");
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
        enum ggml_type t = ts[i];
        size_t rb = quant_row_bytes(t, cols);
        unsigned char *w = malloc(rb * (size_t)rows);
        float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)rows);
        void *xa = malloc(quant_act_bytes(t, cols));
        srand(1);
        for (size_t k = 0; k < rb * (size_t)rows; k++) w[k] = (unsigned char)rand();
        for (size_t b = 0; b < (size_t)rows * (rb / ggml_type_block_bytes(t)); b++) { /* sane half scales */
            unsigned char *p = w + b * ggml_type_block_bytes(t);
            p[0] = 0x00; p[1] = 0x2C;
            if (t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1) { p[2] = 0x00; p[3] = 0x28; }
        }
        for (int k = 0; k < cols; k++) x[k] = (float)rand() / RAND_MAX - 0.5f;
        quant_act(t, x, xa, cols);
        double best[2] = { 1e30, 1e30 };
        for (int round = 0; round < 3; round++)
            for (int v = 0; v < 2; v++) {
                double t0 = cpu_now();
                for (int r = 0; r < reps; r++)
                    if (v) quant_rows_avx512(t, w, rb, 0, rows, xa, cols, y);
                    else quant_rows_avx2(t, w, rb, 0, rows, xa, cols, y);
                double dt = cpu_now() - t0;
                if (dt < best[v]) best[v] = dt;
            }
        double gb = (double)rb * rows * reps / 1e9;
        printf("%-6s %12.2f %12.2f %7.2fx\n", ggml_type_name(t), gb / best[0], gb / best[1], best[0] / best[1]);
        free(w); free(x); free(y); free(xa);
    }
    return 0;
}
