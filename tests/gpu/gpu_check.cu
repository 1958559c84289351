// gpu_check — the memory runtime on a real card (run by tests/gpu/run.sh).
//   arenas:    one cudaMalloc per arena; aligned bump sub-allocations hold
//              distinct patterns that read back intact; the process's VRAM
//              (NVML or accounting) covers the arena
//   streaming: a synthetic weight set of N blocks (default 48 x 96 MiB =
//              4.5 GiB) in pinned host memory goes through the 2-slot window;
//              a kernel checksums every block on the compute stream and
//              checks the order (block i must be the i-th it sees); the sums
//              equal the host's, computed while filling
//   bandwidth: plain pinned H2D copy of one block-sized buffer (events),
//              vs the streamed pass with a trivial kernel: ratio >= 0.8
//   overlap:   a pass with a compute kernel that takes about as long as a
//              copy; overlap = (copy + compute - both) / min(copy, compute)
// Prints "ok - ..." / "FAIL - ..." lines, figures as "# ..." lines, and the
// summary line; exit status 1 on failure.
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "err.h"
#include "gpu.h"
#include "log.h"
#include "stream.h"
}

static int g_pass, g_fail;
#define CHECKF(cond, ...)                                          \
    do {                                                           \
        if (cond) { g_pass++; printf("ok - "); }                   \
        else { g_fail++; printf("FAIL - "); }                      \
        printf(__VA_ARGS__);                                       \
        printf("\n");                                              \
    } while (0)

#define MIB (1ull << 20)

static uint64_t word(uint64_t block, uint64_t i)
{
    // splitmix64 of (block, i): every word of every block differs
    uint64_t z = block * 0x9e3779b97f4a7c15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// sum of w[i] * (2i + 1) (mod 2^64): position-sensitive, so a shifted or
// partial copy changes it
__global__ void checksum_kernel(const uint64_t *w, uint64_t n, unsigned long long *out)
{
    unsigned long long acc = 0;
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x)
        acc += w[i] * (2 * i + 1);
    atomicAdd(out, acc);
}

// one thread: block `expect` must be the next one this stream sees
__global__ void order_kernel(unsigned int *seen, unsigned int expect, unsigned int *bad)
{
    if (*seen != expect) atomicAdd(bad, 1u);
    *seen = expect + 1;
}

__global__ void busy_kernel(float *x, int iters)
{
    float v = x[threadIdx.x];
    for (int i = 0; i < iters; i++) v = v * 0.999f + 0.001f;
    x[threadIdx.x] = v;
}

static double now_s(cudaEvent_t a, cudaEvent_t b)
{
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    return ms / 1000.0;
}

int main(int argc, char **argv)
{
    uint64_t n_blocks = argc > 1 ? strtoull(argv[1], NULL, 10) : 48;
    uint64_t block = (argc > 2 ? strtoull(argv[2], NULL, 10) : 96) * MIB;
    log_init("gpu_check", "gpu", LOG_INFO, NULL);
    if (gpu_init(0) || !gpu_present() || gpu_is_fake()) {
        printf("skip - no real GPU (%s)\n0 passed, 0 failed, 1 skipped\n", iso_errmsg());
        return 0;
    }
    printf("# device: %s, %.0f MiB\n", gpu_get_info()->name, gpu_get_info()->total / (double)MIB);
    // discovery creates no context: measure it, then make it so free-VRAM deltas below are the arena's alone
    {
        uint64_t f0 = 0, t0 = 0, f1 = 0, t1 = 0;
        gpu_mem_get(&f0, &t0);
        if (gpu_activate()) { printf("FAIL - gpu_activate: %s\n", iso_errmsg()); return 1; }
        gpu_mem_get(&f1, &t1);
        printf("# CUDA context: %.1f MiB of VRAM (free before %.1f, after %.1f MiB)\n", ((double)f0 - (double)f1) / MIB,
               f0 / (double)MIB, f1 / (double)MIB);
    }

    // ---- arenas
    {
        uint64_t f0, t0, f1, t1, pb = 0;
        int nvml = 0;
        gpu_mem_get(&f0, &t0);
        struct gpu_arena *a = NULL;
        int rc = gpu_arena_create("check", 256 * MIB, &a);
        CHECKF(rc == 0, "arena of 256 MiB");
        gpu_mem_get(&f1, &t1);
        CHECKF(f0 - f1 >= 255 * MIB && f0 - f1 <= 258 * MIB, "device free fell by the arena (%.1f MiB)", (f0 - f1) / (double)MIB);
        gpu_process_bytes(&pb, &nvml);
        CHECKF(pb >= 256 * MIB, "process VRAM %.1f MiB >= arena (%s)", pb / (double)MIB, nvml ? "NVML" : "accounting");
        void *p[4];
        uint64_t sz[4] = { 1000, 64 * MIB, 3, 100 * MIB }, al[4] = { 0, 4096, 8, 1 << 20 };
        int ok = 1;
        for (int i = 0; i < 4; i++) {
            if (gpu_arena_alloc(a, sz[i], al[i], &p[i])) ok = 0;
            else if ((uintptr_t)p[i] % (al[i] ? al[i] : 256)) ok = 0;
            else gpu_memset(p[i], 0x11 * (i + 1), sz[i]);
        }
        CHECKF(ok, "four aligned sub-allocations");
        uint8_t *h = (uint8_t *)malloc(100 * MIB);
        for (int i = 0; i < 4 && ok; i++) {
            gpu_memcpy_d2h(h, p[i], sz[i]);
            for (uint64_t j = 0; j < sz[i]; j++)
                if (h[j] != (uint8_t)(0x11 * (i + 1))) { ok = 0; break; }
        }
        CHECKF(ok, "each sub-allocation reads back its own pattern (no overlap)");
        free(h);
        gpu_arena_free(&a);
        gpu_mem_get(&f1, &t1);
        CHECKF(f1 + 2 * MIB >= f0, "free VRAM back after the arena (%.1f MiB)", f1 / (double)MIB);
    }

    // ---- streaming
    uint8_t *host = NULL;
    uint64_t total = n_blocks * block, words = block / 8;
    if (gpu_host_alloc(total, (void **)&host)) {
        printf("FAIL - pinned %.1f GiB: %s\n", total / (double)(1 << 30), iso_errmsg());
        printf("%d passed, %d failed, 0 skipped\n", g_pass, g_fail + 1);
        return 1;
    }
    uint64_t *want = (uint64_t *)calloc(n_blocks, 8);
    for (uint64_t b = 0; b < n_blocks; b++) {
        uint64_t *w = (uint64_t *)(host + b * block), acc = 0;
        for (uint64_t i = 0; i < words; i++) {
            w[i] = word(b, i);
            acc += w[i] * (2 * i + 1);
        }
        want[b] = acc;
    }
    printf("# weight set: %llu blocks x %.0f MiB = %.2f GiB pinned\n", (unsigned long long)n_blocks, block / (double)MIB,
           total / (double)(1 << 30));
    struct stream_set *s = NULL;
    CHECKF(stream_create(n_blocks, block, &s) == 0, "stream window of 2 x %.0f MiB", block / (double)MIB);
    for (uint64_t b = 0; b < n_blocks; b++) stream_set_block(s, b, host + b * block, block);
    cudaStream_t cs = (cudaStream_t)gpu_stream_handle(stream_compute(s));
    unsigned long long *sums;
    unsigned int *seen, *bad;
    cudaMalloc(&sums, n_blocks * 8);
    cudaMalloc(&seen, 4);
    cudaMalloc(&bad, 4);
    cudaMemset(sums, 0, n_blocks * 8);
    cudaMemset(seen, 0, 4);
    cudaMemset(bad, 0, 4);
    cudaDeviceSynchronize();
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0, cs);
    for (uint64_t b = 0; b < n_blocks; b++) {
        const void *d;
        if (stream_get(s, b, &d)) { printf("FAIL - stream_get(%llu): %s\n", (unsigned long long)b, iso_errmsg()); g_fail++; break; }
        order_kernel<<<1, 1, 0, cs>>>(seen, (unsigned)b, bad);
        checksum_kernel<<<1024, 256, 0, cs>>>((const uint64_t *)d, words, sums + b);
    }
    cudaEventRecord(e1, cs);
    stream_sync(s);
    double t_stream = now_s(e0, e1);
    uint64_t *got = (uint64_t *)calloc(n_blocks, 8);
    unsigned int hbad = 0;
    cudaMemcpy(got, sums, n_blocks * 8, cudaMemcpyDeviceToHost);
    cudaMemcpy(&hbad, bad, 4, cudaMemcpyDeviceToHost);
    uint64_t mism = 0;
    for (uint64_t b = 0; b < n_blocks; b++) mism += got[b] != want[b];
    CHECKF(mism == 0, "every block's checksum matches the host's (%llu of %llu differ)", (unsigned long long)mism,
           (unsigned long long)n_blocks);
    CHECKF(hbad == 0, "blocks arrived in order (%u out of order)", hbad);
    uint64_t copies, hits, bytes;
    stream_stats(s, &copies, &hits, &bytes);
    CHECKF(hits == n_blocks - 1, "every block after the first was prefetched (%llu hits)", (unsigned long long)hits);

    // ---- pinned H2D bandwidth of the card, same sizes
    void *dbuf;
    cudaMalloc(&dbuf, block);
    cudaStream_t ps;
    cudaStreamCreate(&ps);
    cudaEventRecord(e0, ps);
    for (uint64_t b = 0; b < n_blocks; b++) cudaMemcpyAsync(dbuf, host + b * block, block, cudaMemcpyHostToDevice, ps);
    cudaEventRecord(e1, ps);
    cudaStreamSynchronize(ps);
    double t_copy = now_s(e0, e1);
    double bw_copy = total / t_copy / 1e9, bw_stream = total / t_stream / 1e9;
    printf("# pinned H2D: %.2f GB/s; streamed pass with checksums: %.2f GB/s (%.0f%%)\n", bw_copy, bw_stream,
           100 * bw_stream / bw_copy);
    CHECKF(bw_stream >= 0.8 * bw_copy, "streaming reaches >= 80%% of pinned H2D bandwidth (%.0f%%)", 100 * bw_stream / bw_copy);

    // ---- overlap: compute about as long as one block's copy
    float *x;
    cudaMalloc(&x, 1024 * sizeof(float));
    cudaMemset(x, 0, 1024 * sizeof(float));
    int iters = 1000;
    double t_block = t_copy / n_blocks, t_k = 0;
    for (int tries = 0; tries < 20; tries++) {
        cudaEventRecord(e0, ps);
        busy_kernel<<<1, 1024, 0, ps>>>(x, iters);
        cudaEventRecord(e1, ps);
        cudaStreamSynchronize(ps);
        t_k = now_s(e0, e1);
        if (t_k > 0.8 * t_block) break;
        iters = (int)(iters * (t_block / (t_k > 1e-6 ? t_k : 1e-6)) * 1.1);
    }
    double t_compute = t_k * n_blocks;
    cudaEventRecord(e0, cs);
    for (uint64_t b = 0; b < n_blocks; b++) {
        const void *d;
        stream_get(s, b, &d);
        busy_kernel<<<1, 1024, 0, cs>>>(x, iters);
    }
    cudaEventRecord(e1, cs);
    stream_sync(s);
    double t_both = now_s(e0, e1);
    double lo = t_copy < t_compute ? t_copy : t_compute;
    double overlap = (t_copy + t_compute - t_both) / lo;
    printf("# overlap: copy %.3f s + compute %.3f s, together %.3f s -> overlap %.0f%%\n", t_copy, t_compute, t_both,
           100 * overlap);
    CHECKF(overlap >= 0.5, "copy and compute overlap (%.0f%% of the shorter hidden)", 100 * overlap);

    stream_free(&s);
    cudaFree(sums); cudaFree(seen); cudaFree(bad); cudaFree(dbuf); cudaFree(x);
    cudaStreamDestroy(ps);
    gpu_host_free(host, total);
    free(want);
    free(got);
    gpu_shutdown();
    printf("%d passed, %d failed, 0 skipped\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
