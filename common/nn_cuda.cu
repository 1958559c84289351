// nn_cuda.cu — the CUDA backend of the nn core (nnc_* in nn_cuda.h; nn.c
// dispatches every op of an NN_CUDA context here). Our own kernels for the
// element-wise ops, norms, RoPE, im2col/col2im and a fused flash-style
// attention; cuBLAS for the matrix products, loaded with dlopen when a
// context is made, never linked: a CUDA build runs in cpu mode without it.
//
// Conventions are the CPU ops' (nn.h): row-major, same argument meaning,
// activations float32. Precision per op: docs/nn.md ("The CUDA backend").
//
// Errors: compute functions have no error path (as on the CPU); the first
// failed launch or cuBLAS call is recorded with its message and returned by
// nnc_sync / nnc_copy, which every caller reaches through nn_sync or
// nn_download before it reads a result.
//
// STATUS: compiled, not yet run on a GPU (tests/gpu/nn_check.sh is the check).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "err.h"
#include "gpu.h"
#include "nn_cuda.h"
#include "nn_heap.h"
#include "weights.h"
}

// ---- cuBLAS, loaded at run time ----

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*version_fn)(cublasHandle_t, int *);
typedef cublasStatus_t (*setstream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*setws_fn)(cublasHandle_t, void *, size_t);
typedef cublasStatus_t (*setmath_fn)(cublasHandle_t, cublasMath_t);
typedef cublasStatus_t (*sgemm_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                                   const float *, int, const float *, int, const float *, float *, int);
typedef cublasStatus_t (*gemmex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                    const void *, cudaDataType, int, const void *, cudaDataType, int, const void *,
                                    void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

struct blas {
    void *lib, *lt;
    create_fn create;
    destroy_fn destroy;
    version_fn version;
    setstream_fn setstream;
    setws_fn setws;
    setmath_fn setmath;
    sgemm_fn sgemm;
    gemmex_fn gemmex;
    char name[64];
};

// dlopen cuBLAS (libcublasLt first, global, so libcublas finds it even when
// its own RUNPATH does not lead there); 0 or ISO_EUNAVAIL with the reason
static int blas_load(struct blas *b)
{
    static const char *lts[] = { "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so" };
    static const char *libs[] = { "libcublas.so.13", "libcublas.so.12", "libcublas.so" };
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < sizeof lts / sizeof lts[0] && !b->lt; i++) b->lt = dlopen(lts[i], RTLD_NOW | RTLD_GLOBAL);
    const char *err = NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0] && !b->lib; i++) {
        b->lib = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
        if (b->lib) snprintf(b->name, sizeof b->name, "%s", libs[i]);
        else if (!err) err = dlerror();
    }
    if (!b->lib) {
        if (b->lt) dlclose(b->lt);
        b->lt = NULL;
        return iso_fail(ISO_EUNAVAIL, "cuBLAS not found (libcublas.so.13/.so.12: %s); set LD_LIBRARY_PATH to its folder",
                        err ? err : "?");
    }
#define SYM(field, sym)                                                                              \
    do {                                                                                             \
        *(void **)&b->field = dlsym(b->lib, sym);                                                   \
        if (!b->field) {                                                                             \
            dlclose(b->lib);                                                                         \
            if (b->lt) dlclose(b->lt);                                                               \
            b->lib = b->lt = NULL;                                                                   \
            return iso_fail(ISO_EUNAVAIL, "cuBLAS (%s) lacks %s: too old for this build", b->name, sym); \
        }                                                                                            \
    } while (0)
    SYM(create, "cublasCreate_v2");
    SYM(destroy, "cublasDestroy_v2");
    SYM(version, "cublasGetVersion_v2");
    SYM(setstream, "cublasSetStream_v2");
    SYM(setws, "cublasSetWorkspace_v2");
    SYM(setmath, "cublasSetMathMode");
    SYM(sgemm, "cublasSgemm_v2");
    SYM(gemmex, "cublasGemmEx");
#undef SYM
    return 0;
}

static void blas_unload(struct blas *b)
{
    if (b->lib) dlclose(b->lib);
    if (b->lt) dlclose(b->lt);
    b->lib = b->lt = NULL;
}

// ---- the context ----

struct nnc {
    struct blas blas;
    cublasHandle_t h;
    cudaStream_t stream;
    struct gpu_arena *fixed;     // workspace + the two scratch buffers
    void *ws;
    // scratch: 0 converted weight tiles, 1 bf16 activation terms / im2col columns
    void *scr[2];
    size_t scr_n[2];
    struct gpu_arena *scr_grown[2];   // set when an op needed more than NN_CUDA_SLICE
    struct gpu_arena **chunks;   // nn_alloc's device memory: one arena per region of heaps
    char **base;                 // each chunk's device address
    int nchunks;
    struct nn_heaps heaps;       // the offsets handed out in each chunk (nn_heap.h)
    int err;                     // first failure since the last nnc_sync
    char errmsg[256];
    char info[320];
};

static void fail_once(struct nnc *c, int code, const char *what, const char *why)
{
    if (c->err) return;
    c->err = code;
    snprintf(c->errmsg, sizeof c->errmsg, "nn cuda: %s: %s", what, why);
}

#define LAUNCHED(c, what)                                                         \
    do {                                                                          \
        cudaError_t e_ = cudaGetLastError();                                      \
        if (e_ != cudaSuccess) fail_once((c), ISO_EIO, (what), cudaGetErrorString(e_)); \
    } while (0)

static void blas_ck(struct nnc *c, cublasStatus_t st, const char *what)
{
    if (st != CUBLAS_STATUS_SUCCESS) {
        char why[32];
        snprintf(why, sizeof why, "cuBLAS status %d", (int)st);
        fail_once(c, ISO_EIO, what, why);
    }
}

// cublasSetStream puts cuBLAS back on its own workspace pool (cuBLAS docs,
// cublasSetWorkspace), so ours is set again after every stream change
static cublasStatus_t bind_stream(struct nnc *c)
{
    cublasStatus_t st = c->blas.setstream(c->h, c->stream);
    if (st == CUBLAS_STATUS_SUCCESS) st = c->blas.setws(c->h, c->ws, NN_CUDA_WORKSPACE);
    return st;
}

// fp8 -> float tables, built from the CPU's own decoders (weights.h), so
// both backends read a byte as the same number
__device__ float g_fp8[512];

extern "C" int nnc_new(struct nnc **out)
{
    *out = NULL;
    int rc = gpu_init(0);   // idempotent: a tool's rt_begin made the real choice of device
    if (rc) return rc;
    const struct gpu_info *gi = gpu_get_info();
    if (gi->backend != GPU_BACKEND_CUDA) {
        const char *why = gpu_unavailable_reason();
        return iso_fail(ISO_EUNAVAIL, "nn cuda: %s", gi->backend == GPU_BACKEND_FAKE ? "the GPU is the fake one (ISOPIPE_FAKE_GPU)"
                                                       : why ? why : "no CUDA device");
    }
    struct nnc *c = (struct nnc *)calloc(1, sizeof *c);
    if (!c) return iso_fail(ISO_EINTERNAL, "out of memory");
    // cuBLAS before the context: without it nothing is held on the device
    rc = blas_load(&c->blas);
    if (rc) { free(c); return rc; }
    rc = gpu_activate();
    if (rc) { blas_unload(&c->blas); free(c); return rc; }
    cublasStatus_t st = c->blas.create(&c->h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        blas_unload(&c->blas);
        free(c);
        return iso_fail(ISO_EUNAVAIL, "nn cuda: cublasCreate failed (status %d)", (int)st);
    }
    // ISOPIPE_NN_CUDA_SLICE=BYTES (4096 .. NN_CUDA_SLICE) makes the scratch
    // buffers smaller: for tests only, so that small shapes take the
    // sliced and tiled paths that real models take with large ones
    uint64_t slice = NN_CUDA_SLICE;
    const char *se = getenv("ISOPIPE_NN_CUDA_SLICE");
    if (se && atoll(se) >= 4096 && (uint64_t)atoll(se) <= NN_CUDA_SLICE) slice = (uint64_t)atoll(se) & ~(uint64_t)255;
    uint64_t fixed = NN_CUDA_WORKSPACE + 2 * slice;
    rc = gpu_arena_create("nn-fixed", fixed, &c->fixed);
    void *p = NULL;
    if (!rc) rc = gpu_arena_alloc(c->fixed, NN_CUDA_WORKSPACE, 256, &c->ws);
    if (!rc) rc = gpu_arena_alloc(c->fixed, slice, 256, &p);
    c->scr[0] = p;
    if (!rc) rc = gpu_arena_alloc(c->fixed, slice, 256, &p);
    c->scr[1] = p;
    c->scr_n[0] = c->scr_n[1] = slice;
    // no TF32 anywhere: f32 products stay float32
    if (!rc && c->blas.setmath(c->h, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS)
        rc = iso_fail(ISO_EUNAVAIL, "nn cuda: cublasSetMathMode failed");
    if (!rc && bind_stream(c) != CUBLAS_STATUS_SUCCESS)
        rc = iso_fail(ISO_EUNAVAIL, "nn cuda: cublasSetStream / cublasSetWorkspace failed");
    if (!rc) {
        float tab[512];
        for (int i = 0; i < 256; i++) {
            tab[i] = wt_e4m3_to_f32((uint8_t)i);
            tab[256 + i] = wt_e5m2_to_f32((uint8_t)i);
        }
        cudaError_t e = cudaMemcpyToSymbol(g_fp8, tab, sizeof tab);
        if (e != cudaSuccess) rc = iso_fail(ISO_EUNAVAIL, "nn cuda: fp8 table: %s", cudaGetErrorString(e));
    }
    if (rc) {
        nnc_free(&c);
        return rc;
    }
    int v = 0;
    c->blas.version(c->h, &v);
    snprintf(c->info, sizeof c->info, "cuda: cuBLAS %d (%s) on %s", v, c->blas.name, gi->name);
    *out = c;
    return 0;
}

extern "C" void nnc_free(struct nnc **pc)
{
    struct nnc *c = pc ? *pc : NULL;
    if (!c) return;
    cudaDeviceSynchronize();
    if (c->h) c->blas.destroy(c->h);
    blas_unload(&c->blas);
    for (int i = 0; i < c->nchunks; i++) gpu_arena_free(&c->chunks[i]);
    free(c->chunks);
    free(c->base);
    nn_heaps_fini(&c->heaps);
    for (int i = 0; i < 2; i++) gpu_arena_free(&c->scr_grown[i]);
    gpu_arena_free(&c->fixed);
    free(c);
    *pc = NULL;
}

extern "C" const char *nnc_info(const struct nnc *c) { return c->info; }

extern "C" void nnc_set_stream(struct nnc *c, void *stream)
{
    if ((cudaStream_t)stream == c->stream) return;   // nothing to order, no host wait
    // what was queued on the old stream is done before the new one starts
    // (streams from gpu_stream_create do not wait for the default stream)
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) fail_once(c, ISO_EIO, "cudaStreamSynchronize", cudaGetErrorString(e));
    c->stream = (cudaStream_t)stream;
    blas_ck(c, bind_stream(c), "cublasSetStream / cublasSetWorkspace");
}

extern "C" int nnc_sync(struct nnc *c)
{
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) fail_once(c, ISO_EIO, "cudaStreamSynchronize", cudaGetErrorString(e));
    int rc = c->err;
    if (rc) iso_fail(rc, "%s", c->errmsg);
    c->err = 0;
    c->errmsg[0] = 0;
    return rc;
}

extern "C" int nnc_copy(struct nnc *c, void *dst, const void *src, size_t bytes, int to_device)
{
    if (bytes) {
        cudaError_t e = cudaMemcpyAsync(dst, src, bytes, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                                        c->stream);
        if (e != cudaSuccess) fail_once(c, ISO_EIO, to_device ? "upload" : "download", cudaGetErrorString(e));
    }
    return nnc_sync(c);
}

extern "C" void nnc_copy_d2d(struct nnc *c, void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src) return;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream);
    if (e != cudaSuccess) fail_once(c, ISO_EIO, "copy", cudaGetErrorString(e));
}

// ---- activation memory: chunks, each carved best-fit with merging (nn_heap.h) ----

static int new_chunk(struct nnc *c, uint64_t bytes, int reserved)
{
    bytes = (bytes + 255) & ~(uint64_t)255;
    struct gpu_arena **nc = (struct gpu_arena **)realloc(c->chunks, (size_t)(c->nchunks + 1) * sizeof *nc);
    if (!nc) return iso_fail(ISO_EINTERNAL, "out of memory");
    c->chunks = nc;
    char **nb = (char **)realloc(c->base, (size_t)(c->nchunks + 1) * sizeof *nb);
    if (!nb) return iso_fail(ISO_EINTERNAL, "out of memory");
    c->base = nb;
    void *p = NULL;
    int rc = gpu_arena_create("nn-activations", bytes, &c->chunks[c->nchunks]);
    if (rc) return rc;
    if ((rc = gpu_arena_alloc(c->chunks[c->nchunks], bytes, 256, &p)) ||
        (rc = nn_heaps_add(&c->heaps, bytes, 256, reserved))) {
        gpu_arena_free(&c->chunks[c->nchunks]);
        return rc;
    }
    c->base[c->nchunks++] = (char *)p;
    return 0;
}

extern "C" int nnc_reserve(struct nnc *c, uint64_t bytes) { return bytes ? new_chunk(c, bytes, 1) : 0; }

extern "C" void *nnc_alloc(struct nnc *c, size_t bytes, int top)
{
    int k = 0;
    uint64_t off = 0;
    int rc = nn_heaps_alloc(&c->heaps, bytes, top, &k, &off);
    if (rc == 1) {   // nothing reserved holds it: a chunk past the plan
        if (new_chunk(c, nn_act_chunk_bytes(bytes), 0)) return NULL;   // iso_fail said why
        rc = nn_heaps_alloc(&c->heaps, bytes, top, &k, &off);
    }
    if (rc) {
        if (rc == 1) iso_fail(ISO_ETEMPFAIL, "nn cuda: no room for %zu bytes of activations", bytes);
        return NULL;
    }
    void *p = c->base[k] + off;
    cudaError_t e = cudaMemsetAsync(p, 0, (bytes + 255) & ~(size_t)255, c->stream);
    if (e != cudaSuccess) { iso_fail(ISO_EIO, "nn cuda: cudaMemsetAsync: %s", cudaGetErrorString(e)); return NULL; }
    return p;
}

// A released range may be handed out again at once: work queued on the
// stream that still reads it runs before any later op that writes it (one
// stream at a time, nnc_set_stream waits on the old one).
extern "C" void nnc_release(struct nnc *c, void *p)
{
    if (!p) return;
    for (int i = 0; i < c->nchunks; i++)
        if ((char *)p >= c->base[i] && (char *)p < c->base[i] + c->heaps.h[i].size) {
            if (nn_heaps_free(&c->heaps, i, (uint64_t)((char *)p - c->base[i]))) {
                fprintf(stderr, "nn cuda: %s\n", iso_errmsg());
                abort();   // a double release: a bug in the caller
            }
            return;
        }
}

extern "C" void nnc_act_stats(const struct nnc *c, struct nn_act_stats *st) { nn_heaps_stats(&c->heaps, st); }

// scratch buffer `which` of at least `bytes`; grows (rarely: see nn.h) by a
// new arena, after the queued work that may still read the old one is done
static void *scratch(struct nnc *c, int which, size_t bytes)
{
    if (bytes <= c->scr_n[which]) return c->scr[which];
    cudaStreamSynchronize(c->stream);
    gpu_arena_free(&c->scr_grown[which]);
    void *p = NULL;
    if (gpu_arena_create(which ? "nn-scratch1" : "nn-scratch0", bytes, &c->scr_grown[which]) ||
        gpu_arena_alloc(c->scr_grown[which], bytes, 256, &p)) {
        fprintf(stderr, "nn cuda: cannot grow scratch to %zu MiB: %s\n", bytes >> 20, iso_errmsg());
        abort();   // as the CPU backend: no error path in compute functions
    }
    c->scr[which] = p;
    c->scr_n[which] = bytes;
    return p;
}

// ---- weights on the device ----

struct dw { const void *p; int dt; float scale; };
static struct dw dw_of(const struct nn_w *w)
{
    struct dw d = { NULL, WT_F32, 1.0f };
    if (w && w->data) { d.p = w->data; d.dt = (int)w->dtype; d.scale = w->scale; }
    return d;
}

__device__ __forceinline__ float bf16_bits(uint16_t u) { return __uint_as_float((uint32_t)u << 16); }

// element i without the scale
__device__ __forceinline__ float wraw(const void *p, int dt, size_t i)
{
    switch (dt) {
    case WT_F32: return ((const float *)p)[i];
    case WT_F16: return __half2float(((const __half *)p)[i]);
    case WT_BF16: return bf16_bits(((const uint16_t *)p)[i]);
    case WT_F8_E4M3: return g_fp8[((const uint8_t *)p)[i]];
    case WT_F8_E5M2: return g_fp8[256 + ((const uint8_t *)p)[i]];
    default: return __int_as_float(0x7fc00000);
    }
}
// as nn_w_to_f32 does: the element times the scale (skipped when 1)
__device__ __forceinline__ float wget(const struct dw w, size_t i)
{
    float v = wraw(w.p, w.dt, i);
    return w.scale != 1.0f ? v * w.scale : v;
}

static unsigned nblocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 0x7fffffff ? 0x7fffffff : b);
}

// n elements from `first`, without the scale, as float32 (to_bf16 0) or
// bf16 (1: only for bf16 and fp8 sources, where it is exact)
__global__ void k_wconv(void *dst, const void *src, int dt, size_t first, size_t n, int to_bf16)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = wraw(src, dt, first + i);
        if (to_bf16) ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(v);
        else ((float *)dst)[i] = v;
    }
}

extern "C" int nnc_w_upload(struct nnc *c, struct gpu_arena *arena, const struct nn_w *w, size_t n, struct nn_w *out)
{
    *out = *w;
    if (!w->data) return 0;
    int fp8 = w->dtype == WT_F8_E4M3 || w->dtype == WT_F8_E5M2;
    uint64_t bytes = fp8 ? (uint64_t)n * 2 : (uint64_t)n * wt_dtype_size(w->dtype);
    void *dev = NULL;
    if (arena) {
        int rc = gpu_arena_alloc(arena, bytes, 256, &dev);
        if (rc) return rc;
    } else if (!(dev = nnc_alloc(c, bytes, 1))) {
        return ISO_ETEMPFAIL;
    }
    if (!fp8) {
        cudaError_t e = cudaMemcpyAsync(dev, w->data, bytes, cudaMemcpyHostToDevice, c->stream);
        if (e != cudaSuccess) fail_once(c, ISO_EIO, "weight upload", cudaGetErrorString(e));
    } else {
        // the fp8 bytes go up through scratch 0 in slices, widened there
        size_t step = c->scr_n[0];
        for (size_t i = 0; i < n; i += step) {
            size_t m = n - i < step ? n - i : step;
            cudaError_t e = cudaMemcpyAsync(c->scr[0], (const uint8_t *)w->data + i, m, cudaMemcpyHostToDevice, c->stream);
            if (e != cudaSuccess) { fail_once(c, ISO_EIO, "weight upload", cudaGetErrorString(e)); break; }
            k_wconv<<<nblocks(m, 256) < 4096 ? nblocks(m, 256) : 4096, 256, 0, c->stream>>>(
                (uint16_t *)dev + i, c->scr[0], (int)w->dtype, 0, m, 1);
            LAUNCHED(c, "fp8 to bf16");
        }
        out->dtype = WT_BF16;
    }
    out->data = dev;
    return nnc_sync(c);
}

static void wconv(struct nnc *c, void *dst, const struct nn_w *w, size_t first, size_t n, int to_bf16)
{
    unsigned b = nblocks(n, 256);
    k_wconv<<<b < 8192 ? b : 8192, 256, 0, c->stream>>>(dst, w->data, (int)w->dtype, first, n, to_bf16);
    LAUNCHED(c, "weight conversion");
}

// ---- matrix products ----

__global__ void k_scale_matrix(float *C, int M, int N, int ldc, float beta)
{
    size_t n = (size_t)M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float *p = C + (i / N) * ldc + i % N;
        *p = beta == 0 ? 0.0f : beta * *p;
    }
}

// row-major C[M,N] = alpha op(A) op(B) + beta C as cuBLAS's column-major
// C^T = op(B)^T op(A)^T: a row-major matrix is its transpose column-major
static void sgemm_rm(struct nnc *c, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        unsigned b = nblocks((size_t)M * N, 256);
        k_scale_matrix<<<b < 8192 ? b : 8192, 256, 0, c->stream>>>(C, M, N, ldc, beta);
        LAUNCHED(c, "gemm (K = 0)");
        return;
    }
    blas_ck(c, c->blas.sgemm(c->h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                             A, lda, &beta, C, ldc),
            "cublasSgemm");
}

extern "C" void nnc_gemm(struct nnc *c, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc)
{
    sgemm_rm(c, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// x [rows, in] float32 -> `terms` bf16 planes [rows, in]: x = t0 + t1 + t2,
// each the bf16 rounding of what the earlier ones left (as the CPU's AMX path)
__global__ void k_split_bf16(__nv_bfloat16 *planes, const float *x, size_t n, int terms)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float r = x[i];
        for (int t = 0; t < terms; t++) {
            __nv_bfloat16 b = __float2bfloat16_rn(r);
            planes[(size_t)t * n + i] = b;
            r -= __bfloat162float(b);
        }
    }
}

__global__ void k_add_bias(float *y, const float *x, size_t rows, int d, struct dw b)
{
    size_t n = rows * (size_t)d;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = b.p ? x[i] + wget(b, i % d) : x[i];
}

extern "C" void nnc_add_bias(struct nnc *c, float *y, const float *x, int rows, int d, const struct nn_w *b)
{
    if (rows <= 0 || d <= 0) return;
    if (!b || !b->data) {
        if (y != x) {
            cudaError_t e = cudaMemcpyAsync(y, x, (size_t)rows * d * sizeof(float), cudaMemcpyDeviceToDevice, c->stream);
            if (e != cudaSuccess) fail_once(c, ISO_EIO, "add_bias copy", cudaGetErrorString(e));
        }
        return;
    }
    unsigned nb = nblocks((size_t)rows * d, 256);
    k_add_bias<<<nb < 8192 ? nb : 8192, 256, 0, c->stream>>>(y, x, (size_t)rows, d, dw_of(b));
    LAUNCHED(c, "add_bias");
}

// y[rows, out] = x W^T (+ b). bf16 and fp8 weights: bf16 GemmEx with fp32
// accumulation over `terms` bf16 parts of the activations; f32 weights:
// SGEMM; f16 weights: converted to float32 tiles, SGEMM. The scale is alpha.
extern "C" void nnc_linear(struct nnc *c, int terms, float *y, const float *x, int rows, int in, int out,
                           const struct nn_w *W, const struct nn_w *b)
{
    if (rows <= 0 || out <= 0) return;
    float alpha = W->scale, zero = 0.0f, one = 1.0f;
    int bf16 = W->dtype == WT_BF16 || W->dtype == WT_F8_E4M3 || W->dtype == WT_F8_E5M2;
    if (in <= 0) {
        sgemm_rm(c, 0, 1, rows, out, 0, alpha, x, 1, x, 1, 0.0f, y, out);
    } else if (W->dtype == WT_F32) {
        sgemm_rm(c, 0, 1, rows, out, in, alpha, x, in, (const float *)W->data, in, 0.0f, y, out);
    } else if (!bf16) {
        // f16 (or anything else): float32 tiles of output rows of W
        size_t tile = c->scr_n[0] / sizeof(float) / (size_t)in;
        if (tile < 1) tile = 1;
        float *wt = (float *)scratch(c, 0, tile * (size_t)in * sizeof(float));
        for (size_t o0 = 0; o0 < (size_t)out; o0 += tile) {
            size_t t = (size_t)out - o0 < tile ? (size_t)out - o0 : tile;
            wconv(c, wt, W, o0 * (size_t)in, t * (size_t)in, 0);
            sgemm_rm(c, 0, 1, rows, (int)t, in, alpha, x, in, wt, in, 0.0f, y + o0, out);
        }
    } else {
        // weight tiles: bf16 in place, fp8 widened to bf16 in scratch 0
        size_t tile = W->dtype == WT_BF16 ? (size_t)out : c->scr_n[0] / 2 / (size_t)in;
        if (tile < 1) tile = 1;
        if (tile > (size_t)out) tile = (size_t)out;
        __nv_bfloat16 *wt = W->dtype == WT_BF16 ? NULL : (__nv_bfloat16 *)scratch(c, 0, tile * (size_t)in * 2);
        // rows in slices whose bf16 terms fit scratch 1
        size_t rs = c->scr_n[1] / ((size_t)in * 2 * (size_t)terms);
        if (rs < 1) rs = 1;
        if (rs > (size_t)rows) rs = (size_t)rows;
        __nv_bfloat16 *planes = (__nv_bfloat16 *)scratch(c, 1, rs * (size_t)in * 2 * (size_t)terms);
        int ntiles = (int)(((size_t)out + tile - 1) / tile);
        if (wt && ntiles == 1) wconv(c, wt, W, 0, (size_t)out * in, 1);
        for (size_t r0 = 0; r0 < (size_t)rows; r0 += rs) {
            size_t n = (size_t)rows - r0 < rs ? (size_t)rows - r0 : rs;
            unsigned nb = nblocks(n * (size_t)in, 256);
            k_split_bf16<<<nb < 8192 ? nb : 8192, 256, 0, c->stream>>>(planes, x + r0 * (size_t)in, n * (size_t)in, terms);
            LAUNCHED(c, "linear: activations to bf16");
            for (size_t o0 = 0; o0 < (size_t)out; o0 += tile) {
                size_t t = (size_t)out - o0 < tile ? (size_t)out - o0 : tile;
                const void *A;
                if (!wt) A = (const uint16_t *)W->data + o0 * (size_t)in;
                else {
                    if (ntiles > 1) wconv(c, wt, W, o0 * (size_t)in, t * (size_t)in, 1);
                    A = wt;
                }
                for (int k = 0; k < terms; k++)
                    blas_ck(c,
                            c->blas.gemmex(c->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)t, (int)n, in, &alpha, A, CUDA_R_16BF, in,
                                           planes + (size_t)k * n * in, CUDA_R_16BF, in, k ? &one : &zero,
                                           y + r0 * (size_t)out + o0, CUDA_R_32F, out, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT),
                            "cublasGemmEx");
            }
        }
    }
    if (b && b->data) nnc_add_bias(c, y, y, rows, out, b);
}

// ---- reductions ----

// block-wide sum of a double (blockDim.x a multiple of 32, <= 1024)
__device__ double block_sum(double v)
{
    __shared__ double part[32];
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();   // part[] may still be read by a previous call
    if (l == 0) part[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = l < nw ? part[l] : 0.0;
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ float block_max(float v)
{
    __shared__ float part[32];
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) part[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = l < nw ? part[l] : -INFINITY;
    for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// one block per row; sums in double as the CPU does
__global__ void k_norm(float *y, const float *x, int d, struct dw w, struct dw b, float eps, int rms)
{
    const float *xr = x + (size_t)blockIdx.x * d;
    float *yr = y + (size_t)blockIdx.x * d;
    double mean = 0, var = 0;
    if (rms) {
        double s = 0;
        for (int i = threadIdx.x; i < d; i += blockDim.x) s += (double)xr[i] * xr[i];
        var = block_sum(s) / d;
    } else {
        double s = 0;
        for (int i = threadIdx.x; i < d; i += blockDim.x) s += xr[i];
        mean = block_sum(s) / d;
        s = 0;
        for (int i = threadIdx.x; i < d; i += blockDim.x) { double t = xr[i] - mean; s += t * t; }
        var = block_sum(s) / d;
    }
    float inv = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float v = (xr[i] - m) * inv;
        if (w.p) v = v * wget(w, i);
        if (b.p) v = v + wget(b, i);
        yr[i] = v;
    }
}

extern "C" void nnc_norm(struct nnc *c, float *y, const float *x, int rows, int d, const struct nn_w *w,
                         const struct nn_w *b, float eps, int rms)
{
    if (rows <= 0 || d <= 0) return;
    k_norm<<<rows, 256, 0, c->stream>>>(y, x, d, dw_of(w), dw_of(b), eps, rms);
    LAUNCHED(c, rms ? "rmsnorm" : "layernorm");
}

// F.normalize over channels * sqrt(C) * gamma + bias: a thread per position
__global__ void k_rms_channels(float *y, const float *x, int C, size_t S, struct dw g, struct dw b, float eps)
{
    size_t s = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (s >= S) return;
    double ss = 0;
    for (int ch = 0; ch < C; ch++) { double v = x[(size_t)ch * S + s]; ss += v * v; }
    double nrm = sqrt(ss);
    float inv = (float)(1.0 / (nrm > eps ? nrm : eps)), sc = sqrtf((float)C);
    for (int ch = 0; ch < C; ch++) {
        float v = x[(size_t)ch * S + s] * inv * sc;
        if (g.p) v = v * wget(g, ch);
        if (b.p) v = v + wget(b, ch);
        y[(size_t)ch * S + s] = v;
    }
}

extern "C" void nnc_rmsnorm_channels(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *g,
                                     const struct nn_w *b, float eps)
{
    if (!S || C <= 0) return;
    k_rms_channels<<<nblocks(S, 256), 256, 0, c->stream>>>(y, x, C, S, dw_of(g), dw_of(b), eps);
    LAUNCHED(c, "rmsnorm_channels");
}

// one block per group of C/G channels x S positions
__global__ void k_groupnorm(float *y, const float *x, int C, size_t S, int G, struct dw w, struct dw b, float eps)
{
    int cpg = C / G;
    size_t n = (size_t)cpg * S, off = (size_t)blockIdx.x * n;
    const float *xg = x + off;
    float *yg = y + off;
    double s = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) s += xg[i];
    double mean = block_sum(s) / (double)n;
    s = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) { double t = xg[i] - mean; s += t * t; }
    double var = block_sum(s) / (double)n;
    float inv = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        int ch = (int)blockIdx.x * cpg + (int)(i / S);
        float gw = w.p ? wget(w, ch) : 1.0f, gb = b.p ? wget(b, ch) : 0.0f;
        yg[i] = (xg[i] - m) * inv * gw + gb;
    }
}

extern "C" void nnc_groupnorm(struct nnc *c, float *y, const float *x, int C, size_t S, int G, const struct nn_w *w,
                              const struct nn_w *b, float eps)
{
    if (G <= 0 || C <= 0 || !S) return;
    k_groupnorm<<<G, 512, 0, c->stream>>>(y, x, C, S, G, dw_of(w), dw_of(b), eps);
    LAUNCHED(c, "groupnorm");
}

// in-place softmax, one block per row
__global__ void k_softmax(float *x, int d)
{
    float *r = x + (size_t)blockIdx.x * d;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < d; i += blockDim.x) m = fmaxf(m, r[i]);
    m = block_max(m);
    double s = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) { float e = expf(r[i] - m); r[i] = e; s += e; }
    float inv = (float)(1.0 / block_sum(s));
    for (int i = threadIdx.x; i < d; i += blockDim.x) r[i] *= inv;
}

extern "C" void nnc_softmax(struct nnc *c, float *x, int rows, int d)
{
    if (rows <= 0 || d <= 0) return;
    k_softmax<<<rows, 256, 0, c->stream>>>(x, d);
    LAUNCHED(c, "softmax");
}

// ---- element-wise ----

__global__ void k_ew(float *y, const float *a, const float *b, size_t n, float s, int op, int act)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = a[i];
        switch (op) {
        case 1: v = v * s; break;
        case 2: v = v + b[i]; break;
        case 3: v = v * b[i]; break;
        default:
            switch (act) {
            case NN_ACT_GELU_TANH: {
                // 0.5 x (1 + tanh u) = x / (1 + e^(-2u)): no cancellation for x << 0
                float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
                v = v / (1.0f + expf(-2.0f * u));
                break;
            }
            case NN_ACT_GELU_ERF: v = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f)); break;
            case NN_ACT_SILU: v = v / (1.0f + expf(-v)); break;
            default: v = v > 0 ? v : 0; break;
            }
        }
        y[i] = v;
    }
}

extern "C" void nnc_ew(struct nnc *c, int op, float *y, const float *a, const float *b, size_t n, float s, int act)
{
    if (!n) return;
    unsigned nb = nblocks(n, 256);
    k_ew<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(y, a, b, n, s, op, act);
    LAUNCHED(c, "element-wise op");
}

__global__ void k_rows(float *y, const float *x, const float *u, const float *v, size_t rows, int d, int op)
{
    size_t n = rows * (size_t)d;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % d);
        if (op == 0) y[i] += u ? x[i] * u[j] : x[i];
        else y[i] = x[i] * (1.0f + v[j]) + u[j];
    }
}

extern "C" void nnc_rows(struct nnc *c, int op, float *y, const float *x, const float *u, const float *v, int rows, int d)
{
    if (rows <= 0 || d <= 0) return;
    unsigned nb = nblocks((size_t)rows * d, 256);
    k_rows<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(y, x, u, v, (size_t)rows, d, op);
    LAUNCHED(c, op ? "modulate" : "add_gated");
}

// ---- rotary embeddings: a thread per (position, head, pair) ----

__global__ void k_rope(float *x, int L, int H, int D, const float *cs, const float *sn, int interleaved)
{
    int half = D / 2;
    size_t n = (size_t)L * H * half;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < n; t += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(t % half);
        size_t lh = t / half, l = lh / H;
        float *xr = x + lh * D;
        float *a = interleaved ? &xr[2 * i] : &xr[i];
        float *b = interleaved ? &xr[2 * i + 1] : &xr[i + half];
        float c = cs[l * half + i], s = sn[l * half + i], x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
}

extern "C" void nnc_rope(struct nnc *c, float *x, int L, int H, int D, const float *cos, const float *sin,
                         int interleaved)
{
    if (L <= 0 || H <= 0 || D < 2) return;
    unsigned nb = nblocks((size_t)L * H * (D / 2), 256);
    k_rope<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(x, L, H, D, cos, sin, interleaved);
    LAUNCHED(c, "rope");
}

// ---- attention: fused, flash-style ----
//
// A block of ATT_WARPS warps takes ATT_R query rows per warp of one head.
// Keys and values go by in tiles of 32 through shared memory; for each row
// a lane scores one key of the tile (a full dot product over D against the
// row in shared memory), the warp takes the tile's max, rescales what it
// has (online softmax: running max m and sum l per row), and each lane
// accumulates its D/32 output columns over the tile's 32 weighted values.
// Float32 throughout, no [Lq, Lk] matrix anywhere. NT = ceil(D/32) columns
// per lane (D <= 32 * NT).
#define ATT_WARPS 4
#define ATT_R 8
#define ATT_BK 32

template <int NT>
__global__ void __launch_bounds__(ATT_WARPS * 32) k_attention(float *out, const float *q, const float *k, const float *v,
                                                             int Lq, int Lk, int H, int D, float scale,
                                                             const float *bias, int kv)
{
    extern __shared__ float sm[];
    const int ROWS = ATT_WARPS * ATT_R;
    float *Qs = sm;                                  // [ROWS][D]
    float *Ks = Qs + (size_t)ROWS * D;               // [ATT_BK][D + 1] (padded: lanes read different rows)
    float *Vs = Ks + (size_t)ATT_BK * (D + 1);       // [ATT_BK][D]
    int h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = blockIdx.x * ROWS;
    size_t ld = (size_t)H * D;
    for (int i = threadIdx.x; i < ROWS * D; i += blockDim.x) {
        int r = i / D, d = i % D;
        Qs[i] = row0 + r < Lq ? q[(size_t)(row0 + r) * ld + (size_t)h * D + d] : 0.0f;
    }
    // fully unrolled loops over r and t keep acc, m and l in registers
    float acc[ATT_R][NT], m[ATT_R], l[ATT_R];
#pragma unroll
    for (int r = 0; r < ATT_R; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
#pragma unroll
        for (int t = 0; t < NT; t++) acc[r][t] = 0;
    }
    for (int j0 = 0; j0 < kv; j0 += ATT_BK) {
        __syncthreads();   // the previous tile is no longer read (and Qs is written, first time)
        for (int i = threadIdx.x; i < ATT_BK * D; i += blockDim.x) {
            int j = i / D, d = i % D;
            int ok = j0 + j < kv;
            size_t src = (size_t)(j0 + j) * ld + (size_t)h * D + d;
            Ks[j * (D + 1) + d] = ok ? k[src] : 0.0f;
            Vs[j * D + d] = ok ? v[src] : 0.0f;
        }
        __syncthreads();
        int j = j0 + lane;
#pragma unroll
        for (int r = 0; r < ATT_R; r++) {
            int row = row0 + warp * ATT_R + r;
            if (row >= Lq) continue;   // warp-uniform
            const float *qr = Qs + (size_t)(warp * ATT_R + r) * D;
            const float *kr = Ks + lane * (D + 1);
            float s = 0;
            for (int d = 0; d < D; d++) s += qr[d] * kr[d];
            s *= scale;
            if (j < kv) {
                if (bias) s += bias[((size_t)h * Lq + row) * (size_t)Lk + j];
            } else {
                s = -INFINITY;
            }
            float mt = s;
            for (int o = 16; o; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o));
            float mn = fmaxf(m[r], mt);
            // a row whose scores are all -inf so far (a -inf bias) keeps
            // nothing: exp(-inf - -inf) would be NaN
            float corr = mn == -INFINITY ? 1.0f : expf(m[r] - mn);
            float p = mn == -INFINITY ? 0.0f : expf(s - mn);
            float ps = p;
            for (int o = 16; o; o >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o);
            l[r] = l[r] * corr + ps;
            m[r] = mn;
#pragma unroll
            for (int t = 0; t < NT; t++) acc[r][t] *= corr;
            for (int jj = 0; jj < ATT_BK; jj++) {
                float pj = __shfl_sync(0xffffffffu, p, jj);
                const float *vr = Vs + jj * D;
#pragma unroll
                for (int t = 0; t < NT; t++) {
                    int d = lane + 32 * t;
                    if (d < D) acc[r][t] += pj * vr[d];
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < ATT_R; r++) {
        int row = row0 + warp * ATT_R + r;
        if (row >= Lq) continue;
        float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        float *o = out + (size_t)row * ld + (size_t)h * D;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            int d = lane + 32 * t;
            if (d < D) o[d] = acc[r][t] * inv;
        }
    }
}

template <int NT>
static void launch_attention(struct nnc *c, float *out, const float *q, const float *k, const float *v, int Lq, int Lk,
                             int H, int D, float scale, const float *bias, int kv)
{
    size_t smem = ((size_t)ATT_WARPS * ATT_R * D + (size_t)ATT_BK * (D + 1) + (size_t)ATT_BK * D) * sizeof(float);
    static int attr_set;
    if (!attr_set) {
        // up to D = 256: 97 KiB, above the 48 KiB default (sm_80 allows 163 KiB, sm_90 227 KiB)
        cudaError_t e = cudaFuncSetAttribute(k_attention<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)(((size_t)ATT_WARPS * ATT_R * 32 * NT + (size_t)ATT_BK * (32 * NT + 1) +
                                                    (size_t)ATT_BK * 32 * NT) * sizeof(float)));
        if (e != cudaSuccess) { fail_once(c, ISO_EIO, "attention: shared memory", cudaGetErrorString(e)); return; }
        attr_set = 1;
    }
    dim3 grid((unsigned)((Lq + ATT_WARPS * ATT_R - 1) / (ATT_WARPS * ATT_R)), (unsigned)H);
    k_attention<NT><<<grid, ATT_WARPS * 32, smem, c->stream>>>(out, q, k, v, Lq, Lk, H, D, scale, bias, kv);
    LAUNCHED(c, "attention");
}

// ---- attention on tensor cores (bf16 operands, fp32 accumulation) ----
//
// For NN_PREC_BF16 (activations rounded to bf16, as diffusers' bf16 SDPA
// takes them): a block of 4 warps takes 64 query rows (16 per warp) of one
// head; keys and values go by in tiles of 64, converted to bf16 in shared
// memory. Per tile each warp computes its scores S [16, 64] = Q K^T with
// 16x16x16 bf16 WMMA products into shared memory, takes them through the
// online softmax in fp32 (two lanes per row: running max m and sum l,
// P = exp(scale*S - m) rounded to bf16, the output rows rescaled), then adds
// P V [16, DP] into its fp32 output rows in shared memory. No bias (the
// fp32 kernel takes T5's); keys past k_valid score -inf. DP = D rounded up
// to 16 (zero-padded), D <= TC_MAXD.
#define TC_BQ 64
#define TC_BK 64
#define TC_MAXD 128

template <int DP>
struct tc_smem {
    static constexpr int LQ = DP + 8, LS = TC_BK + 4, LP = TC_BK + 8, LO = DP + 4;   // leading dims, padded
    static constexpr size_t Q = 0, K = Q + (size_t)TC_BQ * LQ * 2, V = K + (size_t)TC_BK * LQ * 2,
                            S = V + (size_t)TC_BK * LQ * 2, P = S + (size_t)TC_BQ * LS * 4,
                            O = P + (size_t)TC_BQ * LP * 2, BYTES = O + (size_t)TC_BQ * LO * 4;
};

template <int DP>
__global__ void __launch_bounds__(128) k_attention_tc(float *out, const float *q, const float *k, const float *v,
                                                      int Lq, int H, int D, float scale, int kv)
{
    using namespace nvcuda;
    typedef tc_smem<DP> L;
    extern __shared__ __align__(128) unsigned char smraw[];
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)(smraw + L::Q), *Ks = (__nv_bfloat16 *)(smraw + L::K),
                  *Vs = (__nv_bfloat16 *)(smraw + L::V), *Ps = (__nv_bfloat16 *)(smraw + L::P);
    float *Ss = (float *)(smraw + L::S), *Os = (float *)(smraw + L::O);
    int h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = blockIdx.x * TC_BQ;
    size_t ld = (size_t)H * D;
    for (int i = threadIdx.x; i < TC_BQ * DP; i += blockDim.x) {
        int r = i / DP, d = i % DP;
        float x = row0 + r < Lq && d < D ? q[(size_t)(row0 + r) * ld + (size_t)h * D + d] : 0.0f;
        Qs[r * L::LQ + d] = __float2bfloat16_rn(x);
        Os[r * L::LO + d] = 0.0f;
    }
    // two lanes per row of the warp's 16: lane/2 the row, lane%2 the half
    int rr = warp * 16 + (lane >> 1), half = lane & 1;
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < kv; j0 += TC_BK) {
        __syncthreads();   // every warp is done with the previous tile (and Qs, Os are written, first time)
        for (int i = threadIdx.x; i < TC_BK * DP; i += blockDim.x) {
            int j = i / DP, d = i % DP;
            int ok = j0 + j < kv && d < D;
            size_t src = (size_t)(j0 + j) * ld + (size_t)h * D + d;
            Ks[j * L::LQ + d] = __float2bfloat16_rn(ok ? k[src] : 0.0f);
            Vs[j * L::LQ + d] = __float2bfloat16_rn(ok ? v[src] : 0.0f);
        }
        __syncthreads();
        // S = Q K^T for the warp's 16 rows
        for (int nt = 0; nt < TC_BK / 16; nt++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
            wmma::fill_fragment(sf, 0.0f);
            for (int kk = 0; kk < DP; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf;
                wmma::load_matrix_sync(af, Qs + (size_t)warp * 16 * L::LQ + kk, L::LQ);
                wmma::load_matrix_sync(bf, Ks + (size_t)nt * 16 * L::LQ + kk, L::LQ);   // K^T: key-major = col-major
                wmma::mma_sync(sf, af, bf, sf);
            }
            wmma::store_matrix_sync(Ss + (size_t)warp * 16 * L::LS + nt * 16, sf, L::LS, wmma::mem_row_major);
        }
        __syncwarp();
        // online softmax of the row's 64 scores (32 per lane), P in bf16, O rescaled
        {
            float *srow = Ss + (size_t)rr * L::LS + half * 32;
            float mt = -INFINITY;
            for (int c = 0; c < 32; c++) {
                int j = j0 + half * 32 + c;
                float s = j < kv ? srow[c] * scale : -INFINITY;
                srow[c] = s;
                mt = fmaxf(mt, s);
            }
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
            float mn = fmaxf(m, mt);
            float corr = mn == -INFINITY ? 1.0f : expf(m - mn);
            float ps = 0.0f;
            __nv_bfloat16 *prow = Ps + (size_t)rr * L::LP + half * 32;
            for (int c = 0; c < 32; c++) {
                float p = mn == -INFINITY ? 0.0f : expf(srow[c] - mn);
                __nv_bfloat16 pb = __float2bfloat16_rn(p);
                prow[c] = pb;
                ps += __bfloat162float(pb);   // the sum of what P V adds up
            }
            ps += __shfl_xor_sync(0xffffffffu, ps, 1);
            l = l * corr + ps;
            m = mn;
            float *orow = Os + (size_t)rr * L::LO;
            for (int d = half; d < DP; d += 2) orow[d] *= corr;
        }
        __syncwarp();
        // O += P V for the warp's 16 rows
        for (int dt = 0; dt < DP; dt += 16) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
            wmma::load_matrix_sync(of, Os + (size_t)warp * 16 * L::LO + dt, L::LO, wmma::mem_row_major);
            for (int kk = 0; kk < TC_BK; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> pf;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vf;
                wmma::load_matrix_sync(pf, Ps + (size_t)warp * 16 * L::LP + kk, L::LP);
                wmma::load_matrix_sync(vf, Vs + (size_t)kk * L::LQ + dt, L::LQ);
                wmma::mma_sync(of, pf, vf, of);
            }
            wmma::store_matrix_sync(Os + (size_t)warp * 16 * L::LO + dt, of, L::LO, wmma::mem_row_major);
        }
        __syncwarp();
    }
    // the warp's rows out, divided by their sums (a row that kept nothing: 0)
    int row = row0 + rr;
    if (row < Lq) {
        float inv = l > 0 ? 1.0f / l : 0.0f;
        const float *orow = Os + (size_t)rr * L::LO;
        float *o = out + (size_t)row * ld + (size_t)h * D;
        for (int d = half; d < D; d += 2) o[d] = orow[d] * inv;
    }
}

template <int DP>
static void launch_attention_tc(struct nnc *c, float *out, const float *q, const float *k, const float *v, int Lq,
                                int H, int D, float scale, int kv)
{
    size_t smem = tc_smem<DP>::BYTES;
    static int attr_set;
    if (!attr_set) {
        cudaError_t e = cudaFuncSetAttribute(k_attention_tc<DP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) { fail_once(c, ISO_EIO, "attention (tensor cores): shared memory", cudaGetErrorString(e)); return; }
        attr_set = 1;
    }
    dim3 grid((unsigned)((Lq + TC_BQ - 1) / TC_BQ), (unsigned)H);
    k_attention_tc<DP><<<grid, 128, smem, c->stream>>>(out, q, k, v, Lq, H, D, scale, kv);
    LAUNCHED(c, "attention (tensor cores)");
}

extern "C" int nnc_attention_tc_ok(int D, const float *bias) { return !bias && D > 0 && D <= TC_MAXD; }

extern "C" void nnc_attention(struct nnc *c, float *out, const float *q, const float *k, const float *v, int Lq, int Lk,
                              int H, int D, float scale, const float *bias, int k_valid, int tc)
{
    if (k_valid > Lk || k_valid < 0) k_valid = Lk;
    if (Lq <= 0 || H <= 0 || D <= 0) return;
    if (k_valid == 0) {
        cudaError_t e = cudaMemsetAsync(out, 0, (size_t)Lq * H * D * sizeof(float), c->stream);
        if (e != cudaSuccess) fail_once(c, ISO_EIO, "attention (no keys)", cudaGetErrorString(e));
        return;
    }
    if (tc && nnc_attention_tc_ok(D, bias)) {
        if (D <= 64) launch_attention_tc<64>(c, out, q, k, v, Lq, H, D, scale, k_valid);
        else launch_attention_tc<128>(c, out, q, k, v, Lq, H, D, scale, k_valid);
        return;
    }
    static_assert(32 * 8 == NN_CUDA_ATTN_MAX_D, "the fused kernel's largest instance is NN_CUDA_ATTN_MAX_D");
    if (D <= 32) launch_attention<1>(c, out, q, k, v, Lq, Lk, H, D, scale, bias, k_valid);
    else if (D <= 64) launch_attention<2>(c, out, q, k, v, Lq, Lk, H, D, scale, bias, k_valid);
    else if (D <= 128) launch_attention<4>(c, out, q, k, v, Lq, Lk, H, D, scale, bias, k_valid);
    else if (D <= NN_CUDA_ATTN_MAX_D) launch_attention<8>(c, out, q, k, v, Lq, Lk, H, D, scale, bias, k_valid);
    else fail_once(c, ISO_EINTERNAL, "attention", "head dimension above 256 is not supported on CUDA");
}

// ---- convolutions ----

// cols[K, np] for output positions p0 .. p0+np of To*Ho*Wo; rows (c, dt, dy, dx)
__global__ void k_im2col(float *cols, const float *x, int C, int T, int H, int W, int kt, int kh, int kw, int st,
                         int sh, int sw, int ph, int pw, int dh, int dw, int Ho, int Wo, size_t p0, size_t np, size_t K)
{
    size_t n = K * np;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        size_t r = e / np, p = p0 + e % np;
        int dx = (int)(r % kw), dy = (int)(r / kw % kh), dt = (int)(r / ((size_t)kw * kh) % kt);
        int ch = (int)(r / ((size_t)kw * kh * kt));
        int ox = (int)(p % Wo), oy = (int)(p / Wo % Ho), to = (int)(p / ((size_t)Wo * Ho));
        int t = to * st + dt, yy = oy * sh - ph + dy * dh, xx = ox * sw - pw + dx * dw;
        cols[e] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? x[(((size_t)ch * T + t) * H + yy) * W + xx] : 0.0f;
    }
}

// y[O, P] += b[o]
__global__ void k_bias_rows(float *y, size_t P, int O, struct dw b)
{
    size_t n = (size_t)O * P;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += wget(b, i / P);
}

static void bias_rows(struct nnc *c, float *y, size_t P, int O, const struct nn_w *b)
{
    if (!b || !b->data || !P || O <= 0) return;
    unsigned nb = nblocks((size_t)O * P, 256);
    k_bias_rows<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(y, P, O, dw_of(b));
    LAUNCHED(c, "conv bias");
}

extern "C" void nnc_conv(struct nnc *c, float *y, const float *x, int C, int T, int H, int W, const struct nn_w *w,
                         const struct nn_w *b, int O, int kt, int kh, int kw, int st, int sh, int sw, int ph, int pw,
                         int dh, int dw, int To, int Ho, int Wo)
{
    size_t K = (size_t)C * kt * kh * kw, P = (size_t)To * Ho * Wo;
    if (!K || !P || O <= 0) return;
    float alpha = w->scale;
    // float32 weights in place; others converted in tiles of output channels
    const float *wt = w->dtype == WT_F32 ? (const float *)w->data : NULL;
    size_t otile = wt ? (size_t)O : c->scr_n[0] / sizeof(float) / K;
    if (otile < 1) otile = 1;
    if (otile > (size_t)O) otile = (size_t)O;
    float *wbuf = wt ? NULL : (float *)scratch(c, 0, otile * K * sizeof(float));
    int ntiles = (int)(((size_t)O + otile - 1) / otile);
    if (wbuf && ntiles == 1) wconv(c, wbuf, w, 0, (size_t)O * K, 0);
    int direct = kt == 1 && kh == 1 && kw == 1 && st == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    size_t np = direct ? P : c->scr_n[1] / sizeof(float) / K;
    if (np < 64) np = 64;
    if (np > P) np = P;
    float *cols = direct ? NULL : (float *)scratch(c, 1, K * np * sizeof(float));
    for (size_t p0 = 0; p0 < P; p0 += np) {
        size_t n = P - p0 < np ? P - p0 : np;
        const float *B = x;
        int ldb = (int)P;
        if (!direct) {
            unsigned nb = nblocks(K * n, 256);
            k_im2col<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(cols, x, C, T, H, W, kt, kh, kw, st, sh, sw, ph, pw,
                                                                   dh, dw, Ho, Wo, p0, n, K);
            LAUNCHED(c, "im2col");
            B = cols;
            ldb = (int)n;
        }
        for (size_t o0 = 0; o0 < (size_t)O; o0 += otile) {
            size_t ot = (size_t)O - o0 < otile ? (size_t)O - o0 : otile;
            const float *A;
            if (wt) A = wt + o0 * K;
            else {
                if (ntiles > 1) wconv(c, wbuf, w, o0 * K, ot * K, 0);
                A = wbuf;
            }
            sgemm_rm(c, 0, 0, (int)ot, (int)n, (int)K, alpha, A, (int)K, B + (direct ? p0 : 0), ldb, 0.0f,
                     y + o0 * P + p0, (int)P);
        }
    }
    bias_rows(c, y, P, O, b);
}

// y[o, oy, ox] += the columns of input rows iy0 .. iy0+nh that land there
__global__ void k_col2im(float *y, const float *cols, int O, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                         int Ho, int Wo, int iy0, int nh)
{
    size_t n = (size_t)O * Ho * Wo, HWs = (size_t)nh * W;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        int ox = (int)(e % Wo), oy = (int)(e / Wo % Ho);
        size_t o = e / ((size_t)Wo * Ho);
        float s = 0;
        for (int dy = 0; dy < kh; dy++) {
            int ty = oy + ph - dy;
            if (ty < 0 || ty % sh) continue;
            int iy = ty / sh;
            if (iy < iy0 || iy >= iy0 + nh) continue;
            for (int dx = 0; dx < kw; dx++) {
                int tx = ox + pw - dx;
                if (tx < 0 || tx % sw) continue;
                int ix = tx / sw;
                if (ix >= W) continue;
                s += cols[((o * kh + dy) * kw + dx) * HWs + (size_t)(iy - iy0) * W + ix];
            }
        }
        y[e] += s;
    }
}

extern "C" void nnc_conv_transpose2d(struct nnc *c, float *y, const float *x, int C, int H, int W,
                                     const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw, int sh, int sw,
                                     int ph, int pw)
{
    int Ho = (H - 1) * sh - 2 * ph + kh, Wo = (W - 1) * sw - 2 * pw + kw;
    if (Ho <= 0 || Wo <= 0 || O <= 0) return;
    size_t K = (size_t)O * kh * kw, HW = (size_t)H * W;
    cudaError_t e = cudaMemsetAsync(y, 0, (size_t)O * Ho * Wo * sizeof(float), c->stream);
    if (e != cudaSuccess) { fail_once(c, ISO_EIO, "conv_transpose2d", cudaGetErrorString(e)); return; }
    float alpha = w->scale;
    // W [C, K]: float32 in place, else in tiles of input channels (summed with beta 1)
    const float *wt = w->dtype == WT_F32 ? (const float *)w->data : NULL;
    size_t ctile = wt ? (size_t)C : c->scr_n[0] / sizeof(float) / K;
    if (ctile < 1) ctile = 1;
    if (ctile > (size_t)C) ctile = (size_t)C;
    float *wbuf = wt ? NULL : (float *)scratch(c, 0, ctile * K * sizeof(float));
    int ntiles = (int)(((size_t)C + ctile - 1) / ctile);
    if (wbuf && ntiles == 1) wconv(c, wbuf, w, 0, (size_t)C * K, 0);
    size_t nh = c->scr_n[1] / sizeof(float) / (K * (size_t)(W > 0 ? W : 1));
    if (nh < 1) nh = 1;
    if (nh > (size_t)H) nh = (size_t)H;
    float *cols = (float *)scratch(c, 1, K * nh * (size_t)W * sizeof(float));
    for (int iy0 = 0; iy0 < H; iy0 += (int)nh) {
        int n = H - iy0 < (int)nh ? H - iy0 : (int)nh;
        for (size_t c0 = 0; c0 < (size_t)C; c0 += ctile) {
            size_t ct = (size_t)C - c0 < ctile ? (size_t)C - c0 : ctile;
            const float *A;
            if (wt) A = wt + c0 * K;
            else {
                if (ntiles > 1) wconv(c, wbuf, w, c0 * K, ct * K, 0);
                A = wbuf;
            }
            // cols[K, n*W] (+)= A^T[K, ct] x[c0.., rows iy0..]
            sgemm_rm(c, 1, 0, (int)K, n * W, (int)ct, alpha, A, (int)K, x + c0 * HW + (size_t)iy0 * W, (int)HW,
                     c0 ? 1.0f : 0.0f, cols, n * W);
        }
        unsigned nb = nblocks((size_t)O * Ho * Wo, 256);
        k_col2im<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(y, cols, O, W, kh, kw, sh, sw, ph, pw, Ho, Wo, iy0, n);
        LAUNCHED(c, "col2im");
    }
    bias_rows(c, y, (size_t)Ho * Wo, O, b);
}

// ---- strided copies and per-channel bias: a thread per output element ----

struct box { size_t ds[4], ss[4]; size_t n[4]; };

__global__ void k_copy_box(float *dst, const float *src, struct box b, size_t total)
{
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        size_t r = e, i3 = r % b.n[3];
        r /= b.n[3];
        size_t i2 = r % b.n[2];
        r /= b.n[2];
        size_t i1 = r % b.n[1], i0 = r / b.n[1];
        dst[i0 * b.ds[0] + i1 * b.ds[1] + i2 * b.ds[2] + i3 * b.ds[3]] =
            src[i0 * b.ss[0] + i1 * b.ss[1] + i2 * b.ss[2] + i3 * b.ss[3]];
    }
}

extern "C" void nnc_copy_box(struct nnc *c, float *dst, const size_t ds[4], const float *src, const size_t ss[4],
                             const int n[4])
{
    struct box b;
    size_t total = 1;
    for (int k = 0; k < 4; k++) {
        if (n[k] <= 0) return;
        b.ds[k] = ds[k];
        b.ss[k] = ss[k];
        b.n[k] = (size_t)n[k];
        total *= (size_t)n[k];
    }
    unsigned nb = nblocks(total, 256);
    k_copy_box<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(dst, src, b, total);
    LAUNCHED(c, "copy_box");
}

__global__ void k_add_channels(float *y, const float *x, size_t S, size_t total, struct dw b)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] = b.p ? x[i] + wget(b, i / S) : x[i];
}

extern "C" void nnc_add_channels(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *b)
{
    if (C <= 0 || !S) return;
    if ((!b || !b->data) && y == x) return;
    size_t total = (size_t)C * S;
    unsigned nb = nblocks(total, 256);
    k_add_channels<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(y, x, S, total, dw_of(b));
    LAUNCHED(c, "add_channels");
}

// ---- for the image ops of nn_img_cuda.cu ----

extern "C" void *nnc_stream(struct nnc *c) { return c->stream; }

extern "C" void nnc_launched(struct nnc *c, const char *what) { LAUNCHED(c, what); }

// ---- relative position bias: a thread per element, rows contiguous in t ----

__global__ void k_relpos(float *y, const float *t, int H, int Lq, int Lk)
{
    size_t n = (size_t)H * Lq * Lk, w = (size_t)Lq + Lk - 1;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        size_t j = e % (size_t)Lk, r = e / (size_t)Lk, i = r % (size_t)Lq, h = r / (size_t)Lq;
        y[e] = t[h * w + ((size_t)Lq - 1 - i) + j];
    }
}

extern "C" void nnc_relpos_bias(struct nnc *c, float *y, const float *t, int H, int Lq, int Lk)
{
    unsigned nb = nblocks((size_t)H * Lq * Lk, 256);
    k_relpos<<<nb < 16384 ? nb : 16384, 256, 0, c->stream>>>(y, t, H, Lq, Lk);
    LAUNCHED(c, "relpos_bias");
}
