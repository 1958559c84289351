/* nn.c — the CPU backend of the numerical core (see nn.h).
 *
 * Parallelism has one rule: everything runs on the pool, matrix products
 * included. OpenBLAS is set to one thread and nn_gemm splits a product into
 * one slice of rows or columns per pool thread, each an sgemm of its own.
 * (With OpenBLAS's own threads beside the pool, each side spun while the
 * other worked: a fifth of the Wan DiT's CPU time went to sched_yield.) Each
 * output element is written by one thread in a fixed order, so results do
 * not depend on scheduling. */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include "err.h"
#include "gpu.h"
#include "nn_heap.h"
#include "pool.h"
#ifdef ISOPIPE_CUDA
#include "nn_cuda.h"
/* an NN_CUDA context runs the op on the device and returns */
#define CUDA_OP(call)                  \
    do {                               \
        if (nn->cuda) {                \
            call;                      \
            return;                    \
        }                              \
    } while (0)
#else
#define CUDA_OP(call) ((void)0)
#endif

/* OpenBLAS extensions (declared in its cblas.h on Debian; repeated here so
 * the build does not depend on which cblas.h the include path finds) */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

/* scratch a single matrix-product slice may use (im2col columns, converted
 * weight tiles, attention score tiles): bounds the memory of every op */
#define NN_SLICE_BYTES (UINT64_C(64) << 20)
/* the host block cache (nn_set_host_cache) */
#define NN_CACHE_MIN ((size_t)1 << 20)
#define NN_CACHE_SLOTS 16

static int amx_available(void);

struct nn {
    enum nn_backend backend;
    int threads;
    struct pool *pool;
    float *scratch;          /* growable, for slices */
    size_t scratch_n;
    float *scratch2;
    size_t scratch2_n;
    enum nn_precision prec;
    int amx;                 /* AMX bf16 products usable (CPU, kernel, not disabled) */
#ifdef ISOPIPE_CUDA
    struct nnc *cuda;        /* NN_CUDA: the device half (nn_cuda.cu) */
#endif
    /* NN_CPU after nn_reserve (a pretend device): the device's heaps run
     * beside malloc as a shadow, each pointer mapped to its (region, offset) */
    struct nn_heaps shadow;
    struct shadow_ent { const void *p; int k; uint64_t off; } *smap;
    size_t smap_cap, smap_n;
    /* NN_CPU: released blocks of NN_CACHE_MIN bytes or more kept for reuse,
     * at most cache_cap bytes in all (nn_set_host_cache; 0: none) */
    struct cached { void *p; size_t n; } cache[NN_CACHE_SLOTS];
    int ncache;
    size_t cache_bytes, cache_cap;
};

int nn_new(struct nn **out, enum nn_backend backend, int threads)
{
    *out = NULL;
    if (backend != NN_CPU && backend != NN_CUDA) return iso_fail(ISO_EUSAGE, "nn: unknown backend %d", (int)backend);
#ifdef ISOPIPE_CUDA
    struct nnc *cuda = NULL;
    if (backend == NN_CUDA) {
        int rc = nnc_new(&cuda);
        if (rc) return rc;
    }
#else
    if (backend == NN_CUDA) return iso_fail(ISO_EUNAVAIL, "nn: no CUDA backend in this build (built with CUDA=0)");
#endif
    if (threads < 1) threads = 1;
    struct nn *nn = calloc(1, sizeof *nn);
    if (!nn) {
#ifdef ISOPIPE_CUDA
        nnc_free(&cuda);
#endif
        return iso_fail(ISO_EINTERNAL, "out of memory");
    }
    nn->backend = backend;
    nn->threads = threads;
#ifdef ISOPIPE_CUDA
    nn->cuda = cuda;
#endif
    int rc = pool_new(&nn->pool, threads);
    if (rc) {
#ifdef ISOPIPE_CUDA
        nnc_free(&nn->cuda);
#endif
        free(nn);
        return rc;
    }
    openblas_set_num_threads(1); /* the pool parallelises the products (nn_gemm) */
    nn_gemm_split(NULL, NULL);
    const char *ae = getenv("ISOPIPE_NN_AMX");
    nn->amx = !(ae && strcmp(ae, "0") == 0) && amx_available();
    const char *pe = getenv("ISOPIPE_NN_PREC");
    if (pe && strcmp(pe, "bf16") == 0) nn->prec = NN_PREC_BF16;
    else if (pe && strcmp(pe, "bf16x2") == 0) nn->prec = NN_PREC_BF16X2;
    *out = nn;
    return 0;
}

void nn_free(struct nn **pnn)
{
    struct nn *nn = pnn ? *pnn : NULL;
    if (!nn) return;
    pool_free(&nn->pool);
#ifdef ISOPIPE_CUDA
    nnc_free(&nn->cuda);
#endif
    free(nn->scratch);
    free(nn->scratch2);
    nn_heaps_fini(&nn->shadow);
    free(nn->smap);
    for (int i = 0; i < nn->ncache; i++) free(nn->cache[i].p);
    free(nn);
    *pnn = NULL;
}

int nn_threads(const struct nn *nn) { return nn->threads; }
enum nn_backend nn_backend_of(const struct nn *nn) { return nn->backend; }

void nn_set_precision(struct nn *nn, enum nn_precision p) { nn->prec = p; }
enum nn_precision nn_precision(const struct nn *nn) { return nn->prec; }

const char *nn_gemm_info(const struct nn *nn)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) {
        switch (nn->prec) {
        case NN_PREC_BF16: return "cuBLAS bf16 GemmEx, fp32 accumulation (activations rounded to bf16)";
        case NN_PREC_BF16X2: return "cuBLAS bf16 GemmEx, fp32 accumulation, activations in 2 bf16 terms";
        default: return "cuBLAS bf16 GemmEx, fp32 accumulation, activations in 3 bf16 terms (float32 products)";
        }
    }
#endif
    if (!nn->amx) {
        switch (nn->prec) {
        case NN_PREC_BF16: return "float32 sgemm (bf16/fp8 weights converted per tile, activations rounded to bf16)";
        case NN_PREC_BF16X2: return "float32 sgemm (bf16/fp8 weights converted per tile, activations in 2 bf16 terms)";
        default: return "float32 sgemm (bf16/fp8 weights converted per tile)";
        }
    }
    switch (nn->prec) {
    case NN_PREC_BF16: return "AMX bf16 (activations rounded to bf16)";
    case NN_PREC_BF16X2: return "AMX bf16, activations in 2 bf16 terms";
    default: return "AMX bf16, activations in 3 bf16 terms (float32 products)";
    }
}
struct pool *nn_pool(struct nn *nn) { return nn->pool; }

const char *nn_blas_info(void)
{
    static char buf[160];
    if (!buf[0]) {
        const char *cfg = openblas_get_config(), *core = openblas_get_corename();
        snprintf(buf, sizeof buf, "%s (%s)", cfg ? cfg : "OpenBLAS", core ? core : "?");
    }
    return buf;
}

/* ---- the shadow heaps (NN_CPU after nn_reserve): an open-addressing map
 * from pointer to (region, offset), linear probing, deletion by shifting
 * back the entries after it ---- */
static size_t smap_slot(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p >> 6;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 20) & (cap - 1);
}

static int smap_put(struct nn *nn, const void *p, int k, uint64_t off)
{
    if (2 * (nn->smap_n + 1) > nn->smap_cap) { /* keep it at most half full */
        size_t cap = nn->smap_cap ? 2 * nn->smap_cap : 256;
        struct shadow_ent *m = calloc(cap, sizeof *m);
        if (!m) return iso_fail(ISO_EINTERNAL, "out of memory");
        for (size_t i = 0; i < nn->smap_cap; i++)
            if (nn->smap[i].p) {
                size_t j = smap_slot(nn->smap[i].p, cap);
                while (m[j].p) j = (j + 1) & (cap - 1);
                m[j] = nn->smap[i];
            }
        free(nn->smap);
        nn->smap = m;
        nn->smap_cap = cap;
    }
    size_t j = smap_slot(p, nn->smap_cap);
    while (nn->smap[j].p) j = (j + 1) & (nn->smap_cap - 1);
    nn->smap[j] = (struct shadow_ent){ p, k, off };
    nn->smap_n++;
    return 0;
}

/* take p's entry out of the map into *e; 0 when p is not there */
static int smap_take(struct nn *nn, const void *p, struct shadow_ent *e)
{
    if (!nn->smap_cap) return 0;
    size_t m = nn->smap_cap - 1, j = smap_slot(p, nn->smap_cap);
    while (nn->smap[j].p && nn->smap[j].p != p) j = (j + 1) & m;
    if (!nn->smap[j].p) return 0;
    *e = nn->smap[j];
    /* shift back every entry of the run after j that may not stay behind the hole */
    size_t hole = j;
    for (size_t i = (j + 1) & m; nn->smap[i].p; i = (i + 1) & m) {
        size_t home = smap_slot(nn->smap[i].p, nn->smap_cap);
        /* the entry at i may fill the hole when its home is not in (hole, i] (cyclically) */
        int between = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!between) {
            nn->smap[hole] = nn->smap[i];
            hole = i;
        }
    }
    nn->smap[hole].p = NULL;
    nn->smap_n--;
    return 1;
}

/* the device's allocation of `bytes`, in the shadow heaps (a region past
 * the reservation when none holds it, as nn_cuda.cu makes one) */
static int shadow_alloc(struct nn *nn, const void *p, size_t bytes, int top)
{
    int k = 0;
    uint64_t off = 0;
    int rc = nn_heaps_alloc(&nn->shadow, bytes, top, &k, &off);
    if (rc == 1 && !(rc = nn_heaps_add(&nn->shadow, nn_act_chunk_bytes(bytes), 256, 0)))
        rc = nn_heaps_alloc(&nn->shadow, bytes, top, &k, &off);
    if (rc) return rc == 1 ? iso_fail(ISO_EINTERNAL, "nn: shadow heap refused %zu bytes", bytes) : rc;
    return smap_put(nn, p, k, off);
}

/* zeroes on the pool for blocks of 8 MiB or more (never called from a pool worker) */
typedef void (*range_fn)(void *ctx, size_t i0, size_t i1);
static void par_range(struct nn *nn, size_t n, size_t grain, range_fn fn, void *ctx);
static void zero_range(void *ctx, size_t i0, size_t i1) { memset((char *)ctx + i0, 0, i1 - i0); }
static void zero_fill(struct nn *nn, void *p, size_t bytes)
{
    if (bytes < ((size_t)8 << 20) || nn->threads < 2) memset(p, 0, bytes);
    else par_range(nn, bytes, (size_t)1 << 20, zero_range, p);
}

static float *alloc_impl(struct nn *nn, size_t nfloats, int top)
{
    size_t bytes;
    if (__builtin_mul_overflow(nfloats ? nfloats : 1, sizeof(float), &bytes)) {
        iso_fail(ISO_ETEMPFAIL, "nn: allocation of %zu floats overflows", nfloats);
        return NULL;
    }
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_alloc(nn->cuda, bytes, top);
#endif
    size_t asked = bytes;
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = NULL;
    if (nn->ncache && bytes >= NN_CACHE_MIN) { /* the smallest cached block that holds it, at most 5/4 of it */
        int best = -1;
        for (int i = 0; i < nn->ncache; i++)
            if (nn->cache[i].n >= bytes && nn->cache[i].n <= bytes + bytes / 4 &&
                (best < 0 || nn->cache[i].n < nn->cache[best].n))
                best = i;
        if (best >= 0) {
            p = nn->cache[best].p;
            nn->cache_bytes -= nn->cache[best].n;
            nn->cache[best] = nn->cache[--nn->ncache];
        }
    }
    if (!p) p = aligned_alloc(64, bytes);
    if (!p) {
        iso_fail(ISO_ETEMPFAIL, "nn: cannot allocate %zu MiB", bytes >> 20);
        return NULL;
    }
    zero_fill(nn, p, bytes);
    if (nn->shadow.n && shadow_alloc(nn, p, asked, top)) {
        free(p);
        return NULL;
    }
    return p;
}

float *nn_alloc(struct nn *nn, size_t nfloats) { return alloc_impl(nn, nfloats, 0); }
float *nn_alloc_keep(struct nn *nn, size_t nfloats) { return alloc_impl(nn, nfloats, 1); }

void nn_release(struct nn *nn, float **p)
{
    if (!p) return;
#ifdef ISOPIPE_CUDA
    if (nn->cuda) {
        nnc_release(nn->cuda, *p);
        *p = NULL;
        return;
    }
#endif
    struct shadow_ent e;
    if (*p && nn->shadow.n && smap_take(nn, *p, &e) && nn_heaps_free(&nn->shadow, e.k, e.off)) {
        fprintf(stderr, "nn: %s\n", iso_errmsg());
        abort(); /* the map and the heaps disagree: a bug here */
    }
    size_t n = *p && nn->cache_cap ? malloc_usable_size(*p) : 0;
    if (n >= NN_CACHE_MIN && n <= nn->cache_cap) { /* kept, the oldest going first when full */
        while (nn->ncache && (nn->ncache == NN_CACHE_SLOTS || nn->cache_bytes + n > nn->cache_cap)) {
            free(nn->cache[0].p);
            nn->cache_bytes -= nn->cache[0].n;
            memmove(nn->cache, nn->cache + 1, (size_t)--nn->ncache * sizeof *nn->cache);
        }
        nn->cache[nn->ncache++] = (struct cached){ *p, n };
        nn->cache_bytes += n;
    } else {
        free(*p);
    }
    *p = NULL;
}

void nn_set_host_cache(struct nn *nn, uint64_t bytes)
{
    nn->cache_cap = (size_t)bytes;
    while (nn->ncache && nn->cache_bytes > nn->cache_cap) {
        free(nn->cache[--nn->ncache].p);
        nn->cache_bytes -= nn->cache[nn->ncache].n;
    }
}

void nn_act_stats(const struct nn *nn, struct nn_act_stats *st)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) {
        nnc_act_stats(nn->cuda, st);
        return;
    }
#endif
    nn_heaps_stats(&nn->shadow, st);
}

/* ---- backend plumbing (CPU: plain copies and no-ops) ---- */

uint64_t nn_cuda_fixed_bytes(void) { return NN_CUDA_WORKSPACE + 2 * NN_CUDA_SLICE; }

int nn_reserve(struct nn *nn, uint64_t bytes)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_reserve(nn->cuda, nn_act_reserve_bytes(bytes));
#endif
    return bytes ? nn_heaps_add(&nn->shadow, nn_act_reserve_bytes(bytes), 256, 1) : 0;
}

uint64_t nn_act_reserve_bytes(uint64_t bound) { return bound ? (bound + bound / 16 + 255) & ~(uint64_t)255 : 0; }

int nn_upload(struct nn *nn, float *dst, const float *host, size_t n)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_copy(nn->cuda, dst, host, n * sizeof(float), 1);
#endif
    (void)nn;
    if (dst != host && n) memmove(dst, host, n * sizeof(float));
    return 0;
}

int nn_download(struct nn *nn, float *host, const float *src, size_t n)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_copy(nn->cuda, host, src, n * sizeof(float), 0);
#endif
    (void)nn;
    if (host != src && n) memmove(host, src, n * sizeof(float));
    return 0;
}

void nn_copy(struct nn *nn, float *dst, const float *src, size_t n)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) {
        nnc_copy_d2d(nn->cuda, dst, src, n * sizeof(float));
        return;
    }
#endif
    (void)nn;
    if (dst != src && n) memmove(dst, src, n * sizeof(float));
}

int nn_sync(struct nn *nn)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_sync(nn->cuda);
#endif
    (void)nn;
    return 0;
}

void nn_set_stream(struct nn *nn, void *stream)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) nnc_set_stream(nn->cuda, stream);
#endif
    (void)nn; (void)stream;
}

const char *nn_backend_info(const struct nn *nn)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_info(nn->cuda);
#endif
    (void)nn;
    return "cpu";
}

uint64_t nn_w_upload_bytes(enum wt_dtype dtype, size_t n)
{
    if (dtype == WT_F8_E4M3 || dtype == WT_F8_E5M2) return (uint64_t)n * 2;   /* as bf16 */
    return (uint64_t)n * wt_dtype_size(dtype);
}

int nn_w_upload(struct nn *nn, struct gpu_arena *arena, const struct nn_w *w, size_t n, struct nn_w *out)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda) return nnc_w_upload(nn->cuda, arena, w, n, out);
#endif
    (void)nn; (void)arena; (void)n;
    *out = *w;
    return 0;
}

struct nn_w nn_w_at(const void *base, size_t offset, enum wt_dtype dtype, float scale)
{
    struct nn_w w = { (const uint8_t *)base + offset, dtype, scale };
    return w;
}

size_t nn_w_pack(const struct nn_w *ws, const size_t *n, int count, void *block, size_t *offsets)
{
    size_t off = 0;
    for (int k = 0; k < count; k++) {
        offsets[k] = 0;
        if (!ws[k].data) continue;
        size_t bytes = n[k] * wt_dtype_size(ws[k].dtype);
        offsets[k] = off;
        if (block) memcpy((uint8_t *)block + off, ws[k].data, bytes);
        off = (off + bytes + 255) & ~(size_t)255;
    }
    return off;
}

/* a scratch buffer of at least n floats (contents undefined); NULL only when
 * memory is exhausted, which compute functions treat as fatal below */
static float *scratch(struct nn *nn, int which, size_t n)
{
    float **buf = which ? &nn->scratch2 : &nn->scratch;
    size_t *cap = which ? &nn->scratch2_n : &nn->scratch_n;
    if (*cap < n) {
        free(*buf);
        *buf = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
        *cap = *buf ? n : 0;
        if (!*buf) {
            /* compute functions have no error path: running out of memory
             * for a slice bounded by NN_SLICE_BYTES is a broken machine */
            fprintf(stderr, "nn: cannot allocate %zu MiB of scratch\n", (n * sizeof(float)) >> 20);
            abort();
        }
    }
    return *buf;
}

/* ---- weights ---- */

struct nn_w nn_w_of(const struct wt_tensor *t)
{
    struct nn_w w = { NULL, WT_F32, 1.0f };
    if (t) { w.data = t->data; w.dtype = t->dtype; }
    return w;
}

static inline float w_raw(const struct nn_w *w, size_t i)
{
    switch (w->dtype) {
    case WT_F32: return ((const float *)w->data)[i];
    case WT_F16: return wt_f16_to_f32(((const uint16_t *)w->data)[i]);
    case WT_BF16: return wt_bf16_to_f32(((const uint16_t *)w->data)[i]);
    case WT_F8_E4M3: return wt_e4m3_to_f32(((const uint8_t *)w->data)[i]);
    case WT_F8_E5M2: return wt_e5m2_to_f32(((const uint8_t *)w->data)[i]);
    default: return NAN;
    }
}

float nn_w_get(const struct nn_w *w, size_t i)
{
    float v = w_raw(w, i);
    return w->scale != 1.0f ? v * w->scale : v;
}

/* Vectorised conversions, chosen at run time (CI machines and this one
 * differ): bf16 -> f32 is a 16-bit shift, AVX-512 or AVX2 does 16 or 8 at a
 * time; f16 -> f32 is the F16C instruction (exact, like wt_f16_to_f32);
 * fp8 goes through a 256-entry table built from wt_e4m3/e5m2_to_f32. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

/* one CPUID bit (reg 0-3: eax, ebx, ecx, edx): for the features that
 * __builtin_cpu_supports does not name in every compiler (clang 14 knows
 * neither f16c nor amx) */
static int cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit)
{
    unsigned r[4];
    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return 0;
    return (int)(r[reg] >> bit) & 1;
}
__attribute__((target("avx512f"))) static size_t bf16_avx512(const uint16_t *s, size_t n, float sc, float *d)
{
    __m512 vs = _mm512_set1_ps(sc);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
        _mm512_storeu_ps(d + i, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32(u, 16)), vs));
    }
    return i;
}
__attribute__((target("avx2"))) static size_t bf16_avx2(const uint16_t *s, size_t n, float sc, float *d)
{
    __m256 vs = _mm256_set1_ps(sc);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
        _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(u, 16)), vs));
    }
    return i;
}
__attribute__((target("avx,f16c"))) static size_t f16_f16c(const uint16_t *s, size_t n, float sc, float *d)
{
    __m256 vs = _mm256_set1_ps(sc);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))), vs));
    return i;
}
static int cpu_level;        /* 2 avx512f, 1 avx2, 0 neither; bit 4: f16c, bit 8: fma */
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static void cpu_probe(void)
{
    __builtin_cpu_init();
    cpu_level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
    if (cpuid_bit(1, 0, 2, 29) && __builtin_cpu_supports("avx")) cpu_level |= 4;   /* F16C */
    if (__builtin_cpu_supports("fma")) cpu_level |= 8;
}
static size_t bf16_fast(const uint16_t *s, size_t n, float sc, float *d)
{
    pthread_once(&cpu_once, cpu_probe);
    return (cpu_level & 3) == 2 ? bf16_avx512(s, n, sc, d) : (cpu_level & 3) == 1 ? bf16_avx2(s, n, sc, d) : 0;
}
static size_t f16_fast(const uint16_t *s, size_t n, float sc, float *d)
{
    pthread_once(&cpu_once, cpu_probe);
    return cpu_level & 4 ? f16_f16c(s, n, sc, d) : 0;
}
#else
static size_t bf16_fast(const uint16_t *s, size_t n, float sc, float *d) { (void)s; (void)n; (void)sc; (void)d; return 0; }
static size_t f16_fast(const uint16_t *s, size_t n, float sc, float *d) { (void)s; (void)n; (void)sc; (void)d; return 0; }
#endif

static float fp8_tab[2][256];
static pthread_once_t fp8_once = PTHREAD_ONCE_INIT;
static void fp8_init(void)
{
    for (int i = 0; i < 256; i++) {
        fp8_tab[0][i] = wt_e4m3_to_f32((uint8_t)i);
        fp8_tab[1][i] = wt_e5m2_to_f32((uint8_t)i);
    }
}

void nn_w_to_f32(const struct nn_w *w, size_t first, size_t n, float *dst)
{
    float sc = w->scale;
    switch (w->dtype) {
    case WT_F32:
        if (sc == 1.0f) memcpy(dst, (const float *)w->data + first, n * sizeof(float));
        else for (size_t i = 0; i < n; i++) dst[i] = ((const float *)w->data)[first + i] * sc;
        return;
    case WT_BF16: {
        const uint16_t *s = (const uint16_t *)w->data + first;
        for (size_t i = bf16_fast(s, n, sc, dst); i < n; i++) {
            uint32_t u = (uint32_t)s[i] << 16;
            float f;
            memcpy(&f, &u, sizeof f);
            dst[i] = f * sc;
        }
        return;
    }
    case WT_F16: {
        const uint16_t *s = (const uint16_t *)w->data + first;
        for (size_t i = f16_fast(s, n, sc, dst); i < n; i++) dst[i] = wt_f16_to_f32(s[i]) * sc;
        return;
    }
    case WT_F8_E4M3:
    case WT_F8_E5M2: {
        pthread_once(&fp8_once, fp8_init);
        const float *tab = fp8_tab[w->dtype == WT_F8_E5M2];
        const uint8_t *s = (const uint8_t *)w->data + first;
        for (size_t i = 0; i < n; i++) dst[i] = tab[s[i]] * sc;
        return;
    }
    default:
        for (size_t i = 0; i < n; i++) dst[i] = NAN;
    }
}

/* ---- parallel loops over element ranges ---- */

#define NN_GRAIN 4096
struct range_job { range_fn fn; void *ctx; size_t n, grain; };

static void range_worker(void *ctx, int b0, int b1, int worker)
{
    (void)worker;
    struct range_job *j = ctx;
    size_t i0 = (size_t)b0 * j->grain, i1 = (size_t)b1 * j->grain;
    if (i1 > j->n) i1 = j->n;
    if (i0 < i1) j->fn(j->ctx, i0, i1);
}

/* fn over [0, n) in pieces of at least grain elements */
static void par_range(struct nn *nn, size_t n, size_t grain, range_fn fn, void *ctx)
{
    if (n == 0) return;
    if (grain < 1) grain = 1;
    size_t blocks = (n + grain - 1) / grain;
    while (blocks > (1u << 30)) { grain *= 2; blocks = (n + grain - 1) / grain; }
    struct range_job j = { fn, ctx, n, grain };
    pool_for(nn->pool, (int)blocks, range_worker, &j);
}

/* ---- matrix products ---- */

/* one row-major cblas_sgemm call */
static void sgemm_rm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

/* Splitting a product between threads must not change a single bit of it
 * (runs are bit-identical across thread counts): every element has to go
 * through the same kernel arithmetic whether it is computed in one call or
 * in a slice. OpenBLAS's kernels tile C, and an element near a tile edge can
 * take a different code path (an edge kernel, another order of FMAs). Which
 * boundaries are safe depends on the kernel OpenBLAS picked for this CPU:
 * on SkylakeX rows and columns in multiples of 16 are; on Zen (Haswell's
 * kernels) rows in multiples of 24 are and no column split is. So the first
 * nn_new probes: for each side, the smallest granularity in {16, 24, 48}
 * whose slices reproduce the whole product bit for bit on a few shapes
 * (both transposes, short and long K); none means that side is not split. */
static int split_g[2];   /* [0]: rows of C, [1]: columns; 0: never split that side */
static pthread_once_t split_once = PTHREAD_ONCE_INIT;

static int split_exact(int side, int g, int ta, int tb, int K)
{
    int len = 3 * g + 7, other = 37, M = side ? other : len, N = side ? len : other;
    size_t na = (size_t)M * K, nb = (size_t)N * K;
    float *A = malloc(na * sizeof(float)), *B = malloc(nb * sizeof(float));
    float *C1 = malloc((size_t)M * N * sizeof(float)), *C2 = malloc((size_t)M * N * sizeof(float));
    int ok = A && B && C1 && C2;
    if (ok) {
        uint32_t r = 0x9e3779b9u ^ (uint32_t)(g * 131 + K);
        for (size_t i = 0; i < na; i++) { r = r * 1664525u + 1013904223u; A[i] = (float)(r >> 8) / 16777216.0f - 0.5f; }
        for (size_t i = 0; i < nb; i++) { r = r * 1664525u + 1013904223u; B[i] = (float)(r >> 8) / 16777216.0f - 0.5f; }
        int lda = ta ? M : K, ldb = tb ? K : N;
        sgemm_rm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
        for (int a = 0; a < len; a += g) {
            int n = a + g < len ? g : len - a;
            if (side == 0)
                sgemm_rm(ta, tb, n, N, K, 1.0f, ta ? A + a : A + (size_t)a * lda, lda, B, ldb, 0.0f, C2 + (size_t)a * N, N);
            else
                sgemm_rm(ta, tb, M, n, K, 1.0f, A, lda, tb ? B + (size_t)a * ldb : B + a, ldb, 0.0f, C2 + a, N);
        }
        ok = memcmp(C1, C2, (size_t)M * N * sizeof(float)) == 0;
    }
    free(A); free(B); free(C1); free(C2);
    return ok;
}

static void split_probe(void)
{
    openblas_set_num_threads(1);   /* as nn_gemm runs it */
    static const int cand[] = { 16, 24, 48 };
    static const int shapes[][3] = { { 0, 1, 64 }, { 0, 0, 300 }, { 1, 0, 96 } };   /* ta, tb, K */
    for (int side = 0; side < 2; side++)
        for (int c = 0; c < 3 && !split_g[side]; c++) {
            int ok = 1;
            for (int s = 0; s < 3 && ok; s++) ok = split_exact(side, cand[c], shapes[s][0], shapes[s][1], shapes[s][2]);
            if (ok) split_g[side] = cand[c];
        }
}

void nn_gemm_split(int *rows, int *cols)
{
    pthread_once(&split_once, split_probe);
    if (rows) *rows = split_g[0];
    if (cols) *cols = split_g[1];
}

/* a product shared between threads: rows [a, b) of C per pool thread
 * (gemm_slice, a in multiples of the probed row granularity g) or column
 * chunks of g columns (gemm_chunks) */
struct gemm_job {
    int ta, tb, M, N, K, lda, ldb, ldc, g;
    float alpha, beta;
    const float *A, *B;
    float *C;
};
static void gemm_slice(void *ctx, int i, int n)
{
    const struct gemm_job *g = ctx;
    int per = ((g->M + n - 1) / n + g->g - 1) / g->g * g->g;
    int a = i * per, b = a + per < g->M ? a + per : g->M;
    if (a >= b) return;
    sgemm_rm(g->ta, g->tb, b - a, g->N, g->K, g->alpha, g->ta ? g->A + a : g->A + (size_t)a * g->lda, g->lda, g->B,
             g->ldb, g->beta, g->C + (size_t)a * g->ldc, g->ldc);
}

/* column chunks [c0, c1) of g->g columns each (pool_for tasks) */
static void gemm_chunks(void *ctx, int c0, int c1, int worker)
{
    const struct gemm_job *g = ctx;
    (void)worker;
    for (int c = c0; c < c1; c++) {
        int a = c * g->g, n = a + g->g < g->N ? g->g : g->N - a;
        sgemm_rm(g->ta, g->tb, g->M, n, g->K, g->alpha, g->A, g->lda, g->tb ? g->B + (size_t)a * g->ldb : g->B + a,
                 g->ldb, g->beta, g->C + a, g->ldc);
    }
}

void nn_gemm(struct nn *nn, int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    CUDA_OP(nnc_gemm(nn->cuda, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    int T = nn->threads, gm = split_g[0], gn = split_g[1];
    /* How a product is shared must not depend on the thread count where
     * that would change bits. Small products (a decode step's, a short
     * prompt's): the calling thread. Many rows (>= 16 granules): one exact
     * row slice per thread (at most a granule of imbalance, <= 12%). Else,
     * with 512 columns or more: column chunks of a size set by the product
     * alone (>= 256 columns, <= 64 chunks), the same chunks at any thread
     * count, handed out to the pool: balanced where rows cannot be (64 rows
     * in granules of 24 split 48 + 16), and the way out where columns cannot
     * be cut exactly at all (Zen). Each chunk packs op(A) again: few rows
     * here. Else an exact row split if there is one, else one call. */
    int small = (double)M * N * K < 262144.0 || (M < 32 && N < 32);
    int can_m = gm && M >= 2 * gm;
    if (!small && !(can_m && M >= 16 * gm) && N >= 512) {
        int chunk = ((N + 63) / 64 + 15) & ~15;
        if (chunk < 256) chunk = 256;
        if (gn) chunk = (chunk + gn - 1) / gn * gn;
        struct gemm_job g = { trans_a, trans_b, M, N, K, lda, ldb, ldc, chunk, alpha, beta, A, B, C };
        pool_for(nn->pool, (N + chunk - 1) / chunk, gemm_chunks, &g);
        return;
    }
    if (small || T < 2 || !can_m) {
        sgemm_rm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* each slice packs the whole of the other operand once */
    struct gemm_job g = { trans_a, trans_b, M, N, K, lda, ldb, ldc, gm, alpha, beta, A, B, C };
    pool_run(nn->pool, gemm_slice, &g);
}

struct conv_job { const struct nn_w *w; float *dst; size_t first; };
static void conv_range(void *ctx, size_t i0, size_t i1)
{
    struct conv_job *j = ctx;
    nn_w_to_f32(j->w, j->first + i0, i1 - i0, j->dst + i0);
}

/* n elements of w from `first` as float32: the weight itself when it is
 * f32 already, else converted in parallel into scratch `which` */
static const float *w_f32(struct nn *nn, const struct nn_w *w, size_t first, size_t n, int which)
{
    if (w->dtype == WT_F32 && w->scale == 1.0f) return (const float *)w->data + first;
    float *dst = scratch(nn, which, n);
    struct conv_job j = { w, dst, first };
    par_range(nn, n, 1 << 14, conv_range, &j);
    return dst;
}

/* a small weight (bias, norm gain) as float32 once per call, not an
 * nn_w_get per element and row; NULL when absent */
static const float *w_vec(struct nn *nn, const struct nn_w *w, size_t n, int which)
{
    return w && w->data ? w_f32(nn, w, 0, n, which) : NULL;
}

struct bias_job { float *y; const float *b; int d; };
static void bias_range(void *ctx, size_t r0, size_t r1)
{
    struct bias_job *j = ctx;
    for (size_t r = r0; r < r1; r++) {
        float *row = j->y + r * (size_t)j->d;
        for (int i = 0; i < j->d; i++) row[i] += j->b[i];
    }
}

void nn_add_bias(struct nn *nn, float *y, const float *x, int rows, int d, const struct nn_w *b)
{
    CUDA_OP(nnc_add_bias(nn->cuda, y, x, rows, d, b));
    if (y != x) memcpy(y, x, (size_t)rows * d * sizeof(float));
    if (!b || !b->data) return;
    struct bias_job j = { y, w_vec(nn, b, (size_t)d, 0), d };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, bias_range, &j);
}

/* ---- bf16 matrix products on AMX ----
 *
 * Intel AMX (amx_bf16: Sapphire Rapids and later) multiplies a 16 x 32 bf16
 * tile by a 32 x 16 bf16 tile into 16 x 16 float32 sums, 16x the multiply
 * rate of AVX-512 float32 FMAs. nn_linear uses it for bf16 and fp8 weights
 * (both exact in bf16) when the CPU and the kernel allow it, checked at run
 * time; everywhere else it keeps the convert-to-f32-and-sgemm path.
 *
 * The weights are the A operand straight from the mapping (rows of W are
 * the tile rows, no repacking); the activations are the B operand, packed
 * once per call into the pair-interleaved ("VNNI") layout. Numerics: the
 * activations are split into `terms` bf16 parts, x = t0 + t1 + t2 (each the
 * bf16 rounding of what the previous ones left), and every part is
 * multiplied. Products of bf16 numbers are exact in float32, so with three
 * terms (NN_PREC_F32, the default) the sum differs from a float32 GEMM only
 * in its order: x - (t0 + t1 + t2) is below 2^-24 |x|. NN_PREC_BF16X2 drops
 * t2 (activations to 2^-17 relative), NN_PREC_BF16 keeps t0 only: the
 * activations rounded to bf16, as PyTorch's bf16 kernels do (2^-9). */

#if defined(__x86_64__) && defined(__GNUC__)
#define NN_AMX 1
#include <sys/syscall.h>
#include <unistd.h>

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static void amx_probe(void)
{
    __builtin_cpu_init();
    if (!cpuid_bit(7, 0, 3, 24) || !cpuid_bit(7, 0, 3, 22)) return;   /* AMX-TILE, AMX-BF16 */
    /* Linux hands out the 8 KiB tile state only on request
     * (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); it fails where the
     * kernel or the hypervisor does not enable it */
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return;
    amx_ok = 1;
}
static int amx_available(void)
{
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* activations x[rows, in] -> terms packed bf16 planes: plane t holds, for
 * each block of 16 rows and each pair of columns kk, the 16 pairs
 * (x[r][2kk], x[r][2kk+1]); rows and columns padded with zeros to the
 * multiples of 32 the tiles need */
struct amx_pack_job { uint16_t *p; const float *x; int rows, in, inpad, terms; size_t plane; };
/* the same split for 32 columns of one row at a time (AVX-512F; every AMX
 * CPU has it): same rounding, same residuals, bit for bit */
__attribute__((target("avx512f"))) static void amx_pack_row16(const struct amx_pack_job *j, size_t rb, int n,
                                                               const float *xr)
{
    size_t kp = (size_t)j->inpad / 2;
    const __m512i exp_m = _mm512_set1_epi32(0x7f800000), hi_m = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i man_m = _mm512_set1_epi32(0x7fffff), quiet = _mm512_set1_epi32(0x400000);
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff);
    for (int k0 = 0; k0 < j->inpad; k0 += 32) {
        int m = xr ? j->in - k0 : 0;
        m = m < 0 ? 0 : m > 32 ? 32 : m;
        __mmask16 ma = (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1);
        __mmask16 mb = (__mmask16)(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
        __m512 v[2] = { _mm512_maskz_loadu_ps(ma, xr ? xr + k0 : NULL), _mm512_maskz_loadu_ps(mb, xr ? xr + k0 + 16 : NULL) };
        for (int t = 0; t < j->terms; t++) {
            uint32_t w[16];
            for (int h = 0; h < 2; h++) {
                __m512i u = _mm512_castps_si512(v[h]);
                __m512i hu = _mm512_and_si512(
                    _mm512_add_epi32(_mm512_add_epi32(u, half), _mm512_and_si512(_mm512_srli_epi32(u, 16), one)), hi_m);
                __mmask16 sp = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exp_m), exp_m);
                __mmask16 nan = _mm512_test_epi32_mask(u, man_m) & sp;
                hu = _mm512_mask_mov_epi32(hu, sp, u);
                hu = _mm512_mask_or_epi32(hu, nan, hu, quiet);
                _mm256_storeu_si256((__m256i *)(w + h * 8), _mm512_cvtepi32_epi16(_mm512_srli_epi32(hu, 16)));
                hu = _mm512_and_si512(hu, hi_m);
                __mmask16 fin = ~_mm512_cmpeq_epi32_mask(_mm512_and_si512(hu, exp_m), exp_m);
                v[h] = _mm512_maskz_sub_ps(fin, v[h], _mm512_castsi512_ps(hu));
            }
            uint16_t *dst = j->p + t * j->plane + (rb * kp + (size_t)k0 / 2) * 32 + (size_t)n * 2;
            for (int kk = 0; kk < 16; kk++) memcpy(dst + (size_t)kk * 32, &w[kk], 4);
        }
    }
}

static void amx_pack_range(void *ctx, size_t b0, size_t b1)
{
    struct amx_pack_job *j = ctx;
    size_t kp = (size_t)j->inpad / 2;
    pthread_once(&cpu_once, cpu_probe);
    if ((cpu_level & 3) == 2) {
        for (size_t rb = b0; rb < b1; rb++)
            for (int n = 0; n < 16; n++) {
                int r = (int)rb * 16 + n;
                amx_pack_row16(j, rb, n, r < j->rows ? j->x + (size_t)r * j->in : NULL);
            }
        return;
    }
    for (size_t rb = b0; rb < b1; rb++)
        for (int n = 0; n < 16; n++) {
            int r = (int)rb * 16 + n;
            const float *xr = r < j->rows ? j->x + (size_t)r * j->in : NULL;
            for (size_t k = 0; k < (size_t)j->inpad; k++) {
                float v = xr && k < (size_t)j->in ? xr[k] : 0.0f;
                size_t at = (rb * kp + k / 2) * 32 + (size_t)n * 2 + (k & 1);
                for (int t = 0; t < j->terms; t++) {
                    uint32_t u, hu;
                    memcpy(&u, &v, 4);
                    /* round to nearest even (wt_f32_to_bf16 inlined; NaN
                     * stays NaN: its payload's top bit is set) */
                    hu = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
                    if ((u & 0x7f800000u) == 0x7f800000u) hu = u | (u & 0x7fffffu ? 0x00400000u : 0);
                    j->p[t * j->plane + at] = (uint16_t)(hu >> 16);
                    float hv;
                    hu &= 0xffff0000u;
                    memcpy(&hv, &hu, 4);
                    v = isfinite(hv) ? v - hv : 0.0f;   /* exact: hv is v rounded */
                }
            }
        }
}

/* the blocking: a work item is a panel of AMX_PO outputs by a group of
 * AMX_PR rows, its float32 sums kept in a per-worker buffer (64 KiB, in L2)
 * while K goes by in chunks of AMX_KC, so that the activations' chunk
 * (AMX_PR x AMX_KC x terms bf16, <= 384 KiB) stays in L2 across the panel
 * and each weight tile is read from memory once and reused by every row
 * block from L1 */
#define AMX_PO 128
#define AMX_PR 128
#define AMX_KC 1024
#define AMX_PF 8

struct amx_job {
    float *y; const uint8_t *w; enum wt_dtype dt; float scale;
    const uint16_t *p; size_t plane; int terms;
    int rows, rpad, in, inpad, out, npanels;
    uint16_t *wbuf;          /* per worker: AMX_PO x AMX_KC bf16 (edge blocks, fp8) */
    float *acc;              /* per worker: AMX_PO x AMX_PR float32 */
};

/* W rows o0 .. o0+32 (zeros past `out`), columns k0 .. k0+kc (zeros past
 * `in`) as bf16 [32, kc] */
static void amx_wcopy(const struct amx_job *j, int o0, int k0, int kc, uint16_t *dst)
{
    size_t es = wt_dtype_size(j->dt);
    int n = j->in - k0 < kc ? j->in - k0 : kc;
    for (int i = 0; i < 32; i++) {
        uint16_t *d = dst + (size_t)i * kc;
        int o = o0 + i, m = o < j->out ? n : 0;
        const uint8_t *s = j->w + ((size_t)o * j->in + k0) * es;
        if (m && j->dt == WT_BF16) memcpy(d, s, (size_t)m * 2);
        else
            for (int k = 0; k < m; k++) {
                /* fp8 -> float32 -> bf16 drops only zero bits */
                float f = j->dt == WT_F8_E4M3 ? wt_e4m3_to_f32(s[k]) : wt_e5m2_to_f32(s[k]);
                d[k] = wt_f32_to_bf16(f);
            }
        memset(d + m, 0, (size_t)(kc - m) * 2);
    }
}

__attribute__((target("amx-tile,amx-bf16"))) static void amx_range(void *ctx, int b0, int b1, int worker)
{
    struct amx_job *j = ctx;
    struct amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    uint16_t *wbuf = j->wbuf + (size_t)worker * AMX_PO * AMX_KC;
    float *acc = j->acc + (size_t)worker * AMX_PO * AMX_PR;
    const size_t tile_b = 16 * 32;     /* uint16 per packed B tile */
    size_t kp_tiles = (size_t)j->inpad / 32;
    int direct = j->dt == WT_BF16 && j->in == j->inpad;
    for (int item = b0; item < b1; item++) {
        int p0 = item % j->npanels * AMX_PO, g0 = item / j->npanels * AMX_PR;
        int nob = ((j->out - p0 < AMX_PO ? j->out - p0 : AMX_PO) + 31) / 32;
        int nrb = (j->rpad - g0 < AMX_PR ? j->rpad - g0 : AMX_PR) / 32;
        for (int k0 = 0; k0 < j->inpad; k0 += AMX_KC) {
            int kc = j->inpad - k0 < AMX_KC ? j->inpad - k0 : AMX_KC;
            for (int ob = 0; ob < nob; ob++) {
                int o0 = p0 + ob * 32;
                const uint8_t *wp;
                size_t ldw;
                if (direct && o0 + 32 <= j->out) {
                    wp = j->w + ((size_t)o0 * j->in + k0) * 2;
                    ldw = (size_t)j->in * 2;
                } else {
                    amx_wcopy(j, o0, k0, kc, wbuf + (size_t)ob * 32 * AMX_KC);
                    wp = (const uint8_t *)(wbuf + (size_t)ob * 32 * AMX_KC);
                    ldw = (size_t)kc * 2;
                }
                for (int rb = 0; rb < nrb; rb++) {
                    float *a = acc + (size_t)(ob * (AMX_PR / 32) + rb) * 1024;
                    if (k0 == 0) {
                        _tile_zero(0);
                        _tile_zero(1);
                        _tile_zero(2);
                        _tile_zero(3);
                    } else {
                        _tile_loadd(0, a, 64);
                        _tile_loadd(1, a + 256, 64);
                        _tile_loadd(2, a + 512, 64);
                        _tile_loadd(3, a + 768, 64);
                    }
                    const uint16_t *pb = j->p + (size_t)((g0 / 16) + rb * 2) * kp_tiles * tile_b
                                         + (size_t)(k0 / 32) * tile_b;
                    for (int s = 0; s < kc / 32; s++) {
                        if (rb == 0)
                            /* the first row block reads this weight block from
                             * memory: 32 rows at a stride the hardware
                             * prefetcher does not follow, so ask for the
                             * columns AMX_PF steps ahead */
                            for (int r = 0; r < 32; r++)
                                _mm_prefetch((const char *)(wp + r * ldw + (size_t)(s + AMX_PF) * 64), _MM_HINT_T0);
                        _tile_loadd(4, wp + (size_t)s * 64, ldw);
                        _tile_loadd(5, wp + 16 * ldw + (size_t)s * 64, ldw);
                        for (int t = 0; t < j->terms; t++) {
                            const uint16_t *b = pb + t * j->plane + (size_t)s * tile_b;
                            _tile_loadd(6, b, 64);
                            _tile_loadd(7, b + kp_tiles * tile_b, 64);
                            _tile_dpbf16ps(0, 4, 6);
                            _tile_dpbf16ps(1, 4, 7);
                            _tile_dpbf16ps(2, 5, 6);
                            _tile_dpbf16ps(3, 5, 7);
                        }
                    }
                    _tile_stored(0, a, 64);
                    _tile_stored(1, a + 256, 64);
                    _tile_stored(2, a + 512, 64);
                    _tile_stored(3, a + 768, 64);
                }
            }
        }
        /* tile q = 2a + b of block (ob, rb) holds y[r0 + 16b + n][o0 + 16a + i] at [i][n] */
        for (int ob = 0; ob < nob; ob++)
            for (int rb = 0; rb < nrb; rb++)
                for (int q = 0; q < 4; q++) {
                    const float *c = acc + (size_t)(ob * (AMX_PR / 32) + rb) * 1024 + (size_t)q * 256;
                    int oa = p0 + ob * 32 + (q >> 1) * 16, ra = g0 + rb * 32 + (q & 1) * 16;
                    int no = j->out - oa < 16 ? j->out - oa : 16, nr = j->rows - ra < 16 ? j->rows - ra : 16;
                    for (int n = 0; n < nr; n++) {
                        float *yr = j->y + (size_t)(ra + n) * j->out + oa;
                        for (int i = 0; i < no; i++) yr[i] = c[i * 16 + n] * j->scale;
                    }
                }
    }
    _tile_release();
}

/* y[rows, out] = x W^T on AMX; 0 when it cannot (then nothing was written) */
static int amx_linear(struct nn *nn, float *y, const float *x, int rows, int in, int out, const struct nn_w *W)
{
    if (!nn->amx) return 0;
    if (W->dtype != WT_BF16 && W->dtype != WT_F8_E4M3 && W->dtype != WT_F8_E5M2) return 0;
    int terms = nn->prec == NN_PREC_BF16 ? 1 : nn->prec == NN_PREC_BF16X2 ? 2 : 3;
    int inpad = (in + 31) & ~31;
    size_t wb = (size_t)nn->threads * AMX_PO * AMX_KC, ab = (size_t)nn->threads * AMX_PO * AMX_PR;
    /* rows in slices whose packed planes, with the weight copies, stay
     * within NN_SLICE_BYTES (at least 32 rows) */
    size_t room = NN_SLICE_BYTES > wb * 2 ? NN_SLICE_BYTES - wb * 2 : 0;
    size_t rs = room / ((size_t)inpad * terms * 2) / 32 * 32;
    if (rs < 32) rs = 32;
    int rpad_all = (rows + 31) & ~31;
    if (rs > (size_t)rpad_all) rs = (size_t)rpad_all;
    size_t plane = rs * inpad;
    /* planes and the per-worker weight copies in scratch 0, sums in scratch 1 */
    uint16_t *p = (uint16_t *)scratch(nn, 0, (plane * terms + wb + 1) / 2 + 16);
    uint16_t *wbuf = p + plane * terms;
    float *acc = scratch(nn, 1, ab);
    int npanels = (out + AMX_PO - 1) / AMX_PO;
    for (size_t r0 = 0; r0 < (size_t)rows; r0 += rs) {
        int nr = (int)((size_t)rows - r0 < rs ? (size_t)rows - r0 : rs);
        int rpad = (nr + 31) & ~31;
        struct amx_pack_job pj = { p, x + r0 * in, nr, in, inpad, terms, plane };
        par_range(nn, (size_t)rpad / 16, 1, amx_pack_range, &pj);
        struct amx_job j = { y + r0 * out, W->data, W->dtype, W->scale, p, plane, terms, nr, rpad, in, inpad, out,
                             npanels, wbuf, acc };
        pool_for(nn->pool, npanels * ((rpad + AMX_PR - 1) / AMX_PR), amx_range, &j);
    }
    return 1;
}
#else
static int amx_available(void) { return 0; }
static int amx_linear(struct nn *nn, float *y, const float *x, int rows, int in, int out, const struct nn_w *W)
{
    (void)nn; (void)y; (void)x; (void)rows; (void)in; (void)out; (void)W;
    return 0;
}
#endif

/* activations as the sum of their first `terms` bf16 parts (each the
 * nearest-even bf16 of what the previous ones left), as amx_pack splits
 * them; a value whose first part is not finite stays that part */
struct round_job { const float *x; float *y; int terms; };
static void round_range(void *ctx, size_t i0, size_t i1)
{
    const struct round_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        float t0 = wt_bf16_to_f32(wt_f32_to_bf16(j->x[i]));
        if (j->terms > 1 && isfinite(t0)) t0 += wt_bf16_to_f32(wt_f32_to_bf16(j->x[i] - t0));
        j->y[i] = t0;
    }
}

void nn_linear(struct nn *nn, float *y, const float *x, int rows, int in, int out,
               const struct nn_w *W, const struct nn_w *b)
{
    CUDA_OP(nnc_linear(nn->cuda, nn->prec == NN_PREC_BF16 ? 1 : nn->prec == NN_PREC_BF16X2 ? 2 : 3, y, x, rows, in,
                       out, W, b));
    if (rows <= 0 || out <= 0) return;
    if (W->dtype == WT_F32 && W->scale == 1.0f) {
        nn_gemm(nn, 0, 1, rows, out, in, 1.0f, x, in, (const float *)W->data, in, 0.0f, y, out);
    } else if (amx_linear(nn, y, x, rows, in, out, W)) {
        /* done on AMX */
    } else {
        /* convert a tile of output rows of W at a time; with NN_PREC_BF16X2
         * or NN_PREC_BF16 the activations are first rounded as the AMX path
         * splits them (a slice of rows at a time, in scratch 1), so that a
         * mode means the same numerics on every CPU */
        int bf = W->dtype == WT_BF16 || W->dtype == WT_F8_E4M3 || W->dtype == WT_F8_E5M2;   /* as amx_linear */
        int terms = !bf || nn->prec == NN_PREC_F32 ? 0 : nn->prec == NN_PREC_BF16 ? 1 : 2;
        size_t tile = NN_SLICE_BYTES / sizeof(float) / (size_t)(in > 0 ? in : 1);
        if (tile < 16) tile = 16;
        size_t rs = terms ? tile : (size_t)rows;
        for (size_t r0 = 0; r0 < (size_t)rows; r0 += rs) {
            size_t nr = (size_t)rows - r0 < rs ? (size_t)rows - r0 : rs;
            const float *xs = x + r0 * (size_t)in;
            if (terms) {
                float *xr = scratch(nn, 1, nr * (size_t)in);
                struct round_job rj = { xs, xr, terms };
                par_range(nn, nr * (size_t)in, 1 << 14, round_range, &rj);
                xs = xr;
            }
            for (size_t o0 = 0; o0 < (size_t)out; o0 += tile) {
                size_t t = (size_t)out - o0 < tile ? (size_t)out - o0 : tile;
                const float *wt = w_f32(nn, W, o0 * (size_t)in, t * (size_t)in, 0);
                nn_gemm(nn, 0, 1, (int)nr, (int)t, in, 1.0f, xs, in, wt, in, 0.0f, y + r0 * (size_t)out + o0, out);
            }
        }
    }
    if (b && b->data) nn_add_bias(nn, y, y, rows, out, b);
}

/* ---- normalisation ---- */

struct norm_job {
    float *y; const float *x; int d; const float *w, *b; float eps;
    int rms;
};
static int dsum_fast(const float *x, int d, double c, int sq, double *s); /* below: vector sums in double */
static void norm_range(void *ctx, size_t r0, size_t r1)
{
    struct norm_job *j = ctx;
    int d = j->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * (size_t)d;
        float *y = j->y + r * (size_t)d;
        double mean = 0, var = 0;
        if (j->rms) {
            for (int i = dsum_fast(x, d, 0.0, 1, &var); i < d; i++) var += (double)x[i] * x[i];
            var /= d;
        } else {
            for (int i = dsum_fast(x, d, 0.0, 0, &mean); i < d; i++) mean += x[i];
            mean /= d;
            for (int i = dsum_fast(x, d, mean, 1, &var); i < d; i++) { double t = x[i] - mean; var += t * t; }
            var /= d;
        }
        float inv = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
        const float *w = j->w, *b = j->b;
        if (w && b) for (int i = 0; i < d; i++) y[i] = (x[i] - m) * inv * w[i] + b[i];
        else if (w) for (int i = 0; i < d; i++) y[i] = (x[i] - m) * inv * w[i];
        else if (b) for (int i = 0; i < d; i++) y[i] = (x[i] - m) * inv + b[i];
        else for (int i = 0; i < d; i++) y[i] = (x[i] - m) * inv;
    }
}

void nn_layernorm(struct nn *nn, float *y, const float *x, int rows, int d,
                  const struct nn_w *w, const struct nn_w *b, float eps)
{
    CUDA_OP(nnc_norm(nn->cuda, y, x, rows, d, w, b, eps, 0));
    struct norm_job j = { y, x, d, w_vec(nn, w, (size_t)d, 0), w_vec(nn, b, (size_t)d, 1), eps, 0 };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, norm_range, &j);
}

void nn_rmsnorm(struct nn *nn, float *y, const float *x, int rows, int d, const struct nn_w *w, float eps)
{
    CUDA_OP(nnc_norm(nn->cuda, y, x, rows, d, w, NULL, eps, 1));
    struct norm_job j = { y, x, d, w_vec(nn, w, (size_t)d, 0), NULL, eps, 1 };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, norm_range, &j);
}

struct chnorm_job {
    float *y; const float *x; int C; size_t S; const float *g, *b; float eps;
    int G; int group;        /* group norm: G groups; else RMS over channels */
};
/* positions in blocks of 256, channels outer: rows of x are read
 * contiguously (a position's channels are S apart); each position's sum
 * still runs over c in order, as before */
static void chrms_range(void *ctx, size_t s0, size_t s1)
{
    struct chnorm_job *j = ctx;
    float sc = sqrtf((float)j->C);
    double ss[256];
    float inv[256];
    for (size_t b0 = s0; b0 < s1; b0 += 256) {
        int n = (int)(s1 - b0 < 256 ? s1 - b0 : 256);
        for (int k = 0; k < n; k++) ss[k] = 0;
        for (int c = 0; c < j->C; c++) {
            const float *x = j->x + (size_t)c * j->S + b0;
            for (int k = 0; k < n; k++) ss[k] += (double)x[k] * x[k];
        }
        for (int k = 0; k < n; k++) {
            double nrm = sqrt(ss[k]);
            inv[k] = (float)(1.0 / (nrm > j->eps ? nrm : j->eps));
        }
        for (int c = 0; c < j->C; c++) {
            const float *x = j->x + (size_t)c * j->S + b0;
            float *y = j->y + (size_t)c * j->S + b0;
            float g = j->g ? j->g[c] : 1.0f, bb = j->b ? j->b[c] : 0.0f;
            if (j->g && j->b) for (int k = 0; k < n; k++) y[k] = x[k] * inv[k] * sc * g + bb;
            else if (j->g) for (int k = 0; k < n; k++) y[k] = x[k] * inv[k] * sc * g;
            else if (j->b) for (int k = 0; k < n; k++) y[k] = x[k] * inv[k] * sc + bb;
            else for (int k = 0; k < n; k++) y[k] = x[k] * inv[k] * sc;
        }
    }
}

void nn_rmsnorm_channels(struct nn *nn, float *y, const float *x, int C, size_t S,
                         const struct nn_w *gamma, const struct nn_w *bias, float eps)
{
    CUDA_OP(nnc_rmsnorm_channels(nn->cuda, y, x, C, S, gamma, bias, eps));
    struct chnorm_job j = { y, x, C, S, w_vec(nn, gamma, (size_t)C, 0), w_vec(nn, bias, (size_t)C, 1), eps, 0, 0 };
    par_range(nn, S, (size_t)(NN_GRAIN / (C > 0 ? C : 1)) + 1, chrms_range, &j);
}

static void group_range(void *ctx, size_t g0, size_t g1)
{
    struct chnorm_job *j = ctx;
    int cpg = j->C / j->G;
    for (size_t g = g0; g < g1; g++) {
        const float *x = j->x + g * (size_t)cpg * j->S;
        float *y = j->y + g * (size_t)cpg * j->S;
        size_t n = (size_t)cpg * j->S;
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; i++) mean += x[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) { double t = x[i] - mean; var += t * t; }
        var /= (double)n;
        float inv = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
        for (int c = 0; c < cpg; c++) {
            int ch = (int)g * cpg + c;
            float gw = j->g ? j->g[ch] : 1.0f;
            float gb = j->b ? j->b[ch] : 0.0f;
            for (size_t s = 0; s < j->S; s++) {
                size_t i = (size_t)c * j->S + s;
                y[i] = (x[i] - m) * inv * gw + gb;
            }
        }
    }
}

void nn_groupnorm(struct nn *nn, float *y, const float *x, int C, size_t S, int G,
                  const struct nn_w *w, const struct nn_w *b, float eps)
{
    CUDA_OP(nnc_groupnorm(nn->cuda, y, x, C, S, G, w, b, eps));
    struct chnorm_job j = { y, x, C, S, w_vec(nn, w, (size_t)C, 0), w_vec(nn, b, (size_t)C, 1), eps, G, 1 };
    par_range(nn, (size_t)G, 1, group_range, &j);
}

/* ---- vectorised exp for GELU, SiLU and softmax ----
 * exp(x) = 2^n e^r with n = round(x / ln 2), |r| <= ln2/2, e^r by its
 * Taylor polynomial to r^7 (truncation < 1e-8), 2^n put into the exponent
 * bits; x clamped to [-87, 88] (no overflow, no denormals: below -87 the
 * result stays e^-87 = 1.6e-38 instead of going to 0). Relative error
 * against double, measured over 4M points: SiLU 1.4e-7 on [-87, -17]
 * (where it is x e^x: exp's own error) and 1.8e-7 on [-17, 17] (libm's
 * expf: 1 ulp, 6e-8). test_nn checks GELU/SiLU/softmax element by element.
 * AVX-512 or AVX2+FMA, chosen at run time; other CPUs keep libm. */
#if defined(__x86_64__) && defined(__GNUC__)
#define EXP_BODY(V, set1, max, min, fmadd, sub, mul, round, cvt, add_i, sll, cast) \
    x = min(set1(88.0f), max(set1(-87.0f), x)); /* this order keeps NaN (x86 min/max return the 2nd) */ \
    V n = round(mul(x, set1(1.44269504088896341f))); \
    V r = fmadd(n, set1(-0.693145751953125f), x); \
    r = fmadd(n, set1(-1.428606765330187e-06f), r); \
    V p = set1(1.0f / 5040); \
    p = fmadd(p, r, set1(1.0f / 720)); \
    p = fmadd(p, r, set1(1.0f / 120)); \
    p = fmadd(p, r, set1(1.0f / 24)); \
    p = fmadd(p, r, set1(1.0f / 6)); \
    p = fmadd(p, r, set1(0.5f)); \
    p = fmadd(p, r, set1(1.0f)); \
    p = fmadd(p, r, set1(1.0f)); \
    return mul(p, cast(sll(add_i(cvt(n), 127), 23)));

#define R512(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ADDI512(v, k) _mm512_add_epi32(v, _mm512_set1_epi32(k))
__attribute__((target("avx512f"))) static inline __m512 exp16(__m512 x)
{
    EXP_BODY(__m512, _mm512_set1_ps, _mm512_max_ps, _mm512_min_ps, _mm512_fmadd_ps, _mm512_sub_ps, _mm512_mul_ps,
             R512, _mm512_cvtps_epi32, ADDI512, _mm512_slli_epi32, _mm512_castsi512_ps)
}
#define R256(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ADDI256(v, k) _mm256_add_epi32(v, _mm256_set1_epi32(k))
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x)
{
    EXP_BODY(__m256, _mm256_set1_ps, _mm256_max_ps, _mm256_min_ps, _mm256_fmadd_ps, _mm256_sub_ps, _mm256_mul_ps,
             R256, _mm256_cvtps_epi32, ADDI256, _mm256_slli_epi32, _mm256_castsi256_ps)
}

/* GELU tanh: 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), no cancellation;
 * SiLU: x / (1 + e^-x). Returns how many elements were done. */
__attribute__((target("avx512f"))) static size_t act16(float *y, const float *a, size_t n, enum nn_act act)
{
    size_t i = 0;
    __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(a + i), z;
        if (act == NN_ACT_GELU_TANH) {
            __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
            __m512 u = _mm512_mul_ps(_mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x),
                                     _mm512_set1_ps(-2.0f * 0.7978845608028654f));
            z = exp16(u);
        } else {
            z = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        }
        _mm512_storeu_ps(y + i, _mm512_div_ps(x, _mm512_add_ps(one, z)));
    }
    return i;
}
__attribute__((target("avx2,fma"))) static size_t act8(float *y, const float *a, size_t n, enum nn_act act)
{
    size_t i = 0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i), z;
        if (act == NN_ACT_GELU_TANH) {
            __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
            __m256 u = _mm256_mul_ps(_mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x),
                                     _mm256_set1_ps(-2.0f * 0.7978845608028654f));
            z = exp8(u);
        } else {
            z = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        }
        _mm256_storeu_ps(y + i, _mm256_div_ps(x, _mm256_add_ps(one, z)));
    }
    return i;
}
/* x[i] = exp(x[i] - m) for the vector part; returns the count done and adds
 * their sum (lane partials, then in order) to *sum */
__attribute__((target("avx512f"))) static int expsub16(float *x, int d, float m, double *sum)
{
    int i = 0;
    __m512 vm = _mm512_set1_ps(m), s = _mm512_setzero_ps();
    for (; i + 16 <= d; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(x + i, e);
        s = _mm512_add_ps(s, e);
    }
    float l[16];
    _mm512_storeu_ps(l, s);
    for (int k = 0; k < 16; k++) *sum += l[k];
    return i;
}
__attribute__((target("avx2,fma"))) static int expsub8(float *x, int d, float m, double *sum)
{
    int i = 0;
    __m256 vm = _mm256_set1_ps(m), s = _mm256_setzero_ps();
    for (; i + 8 <= d; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    float l[8];
    _mm256_storeu_ps(l, s);
    for (int k = 0; k < 8; k++) *sum += l[k];
    return i;
}
/* the largest of x[0..d) in vector lanes (a NaN is not propagated); the
 * count of elements looked at (the caller finishes the tail) */
__attribute__((target("avx512f"))) static int max16(const float *x, int d, float *m)
{
    int i = 0;
    __m512 v = _mm512_set1_ps(*m);
    for (; i + 16 <= d; i += 16) v = _mm512_max_ps(v, _mm512_loadu_ps(x + i));
    *m = _mm512_reduce_max_ps(v);
    return i;
}
__attribute__((target("avx2"))) static int max8(const float *x, int d, float *m)
{
    int i = 0;
    __m256 v = _mm256_set1_ps(*m);
    for (; i + 8 <= d; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
    float l[8];
    _mm256_storeu_ps(l, v);
    for (int k = 0; k < 8; k++) *m = l[k] > *m ? l[k] : *m;
    return i;
}
/* sums in double over 16 lanes (two 8-lane halves), for the norms: *s +=
 * sum of x[i] (sq 0) or of (x[i] - c)^2 (sq 1) over the elements looked at,
 * their count returned (the caller finishes the tail) */
__attribute__((target("avx512f"))) static int dsum16(const float *x, int d, double c, int sq, double *s)
{
    int i = 0;
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), vc = _mm512_set1_pd(c);
    for (; i + 16 <= d; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        if (sq) {
            lo = _mm512_sub_pd(lo, vc);
            hi = _mm512_sub_pd(hi, vc);
            a0 = _mm512_fmadd_pd(lo, lo, a0);
            a1 = _mm512_fmadd_pd(hi, hi, a1);
        } else {
            a0 = _mm512_add_pd(a0, lo);
            a1 = _mm512_add_pd(a1, hi);
        }
    }
    *s += _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    return i;
}
static int dsum_fast(const float *x, int d, double c, int sq, double *s)
{
    pthread_once(&cpu_once, cpu_probe);
    if ((cpu_level & 3) == 2) return dsum16(x, d, c, sq, s);
    return 0;
}
static int max_fast(const float *x, int d, float *m)
{
    pthread_once(&cpu_once, cpu_probe);
    if ((cpu_level & 3) == 2) return max16(x, d, m);
    if ((cpu_level & 3) == 1) return max8(x, d, m);
    return 0;
}
static size_t act_fast(float *y, const float *a, size_t n, enum nn_act act)
{
    if (act != NN_ACT_GELU_TANH && act != NN_ACT_SILU) return 0;
    pthread_once(&cpu_once, cpu_probe);
    if ((cpu_level & 3) == 2) return act16(y, a, n, act);
    if ((cpu_level & 3) == 1 && (cpu_level & 8)) return act8(y, a, n, act);
    return 0;
}
static int expsub_fast(float *x, int d, float m, double *sum)
{
    pthread_once(&cpu_once, cpu_probe);
    if ((cpu_level & 3) == 2) return expsub16(x, d, m, sum);
    if ((cpu_level & 3) == 1 && (cpu_level & 8)) return expsub8(x, d, m, sum);
    return 0;
}
#else
static size_t act_fast(float *y, const float *a, size_t n, enum nn_act act) { (void)y; (void)a; (void)n; (void)act; return 0; }
static int expsub_fast(float *x, int d, float m, double *sum) { (void)x; (void)d; (void)m; (void)sum; return 0; }
static int max_fast(const float *x, int d, float *m) { (void)x; (void)d; (void)m; return 0; }
static int dsum_fast(const float *x, int d, double c, int sq, double *s)
{
    (void)x; (void)d; (void)c; (void)sq; (void)s;
    return 0;
}
#endif

/* ---- element-wise ---- */

struct ew_job {
    float *y; const float *a, *b; float s; int op; enum nn_act act;
};
enum { EW_ACT, EW_SCALE, EW_ADD, EW_MUL };
static void ew_range(void *ctx, size_t i0, size_t i1)
{
    struct ew_job *j = ctx;
    float *y = j->y;
    const float *a = j->a, *b = j->b;
    switch (j->op) {
    case EW_SCALE: for (size_t i = i0; i < i1; i++) y[i] = a[i] * j->s; break;
    case EW_ADD: for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i]; break;
    case EW_MUL: for (size_t i = i0; i < i1; i++) y[i] = a[i] * b[i]; break;
    case EW_ACT:
        switch (j->act) {
        case NN_ACT_GELU_TANH:
            for (size_t i = i0 + act_fast(y + i0, a + i0, i1 - i0, j->act); i < i1; i++) {
                float x = a[i];
                y[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
            }
            break;
        case NN_ACT_GELU_ERF:
            for (size_t i = i0; i < i1; i++) {
                float x = a[i];
                y[i] = 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
            }
            break;
        case NN_ACT_SILU:
            for (size_t i = i0 + act_fast(y + i0, a + i0, i1 - i0, j->act); i < i1; i++) {
                float x = a[i];
                y[i] = x / (1.0f + expf(-x));
            }
            break;
        case NN_ACT_RELU:
            for (size_t i = i0; i < i1; i++) y[i] = a[i] > 0 ? a[i] : 0;
            break;
        }
        break;
    }
}

static void ew(struct nn *nn, struct ew_job *j, size_t n) { par_range(nn, n, NN_GRAIN, ew_range, j); }

void nn_act(struct nn *nn, float *y, const float *x, size_t n, enum nn_act act)
{
    CUDA_OP(nnc_ew(nn->cuda, 0, y, x, NULL, n, 0, (int)act));
    struct ew_job j = { y, x, NULL, 0, EW_ACT, act };
    ew(nn, &j, n);
}
void nn_scale(struct nn *nn, float *y, const float *x, size_t n, float a)
{
    CUDA_OP(nnc_ew(nn->cuda, 1, y, x, NULL, n, a, 0));
    struct ew_job j = { y, x, NULL, a, EW_SCALE, 0 };
    ew(nn, &j, n);
}
void nn_add(struct nn *nn, float *y, const float *a, const float *b, size_t n)
{
    CUDA_OP(nnc_ew(nn->cuda, 2, y, a, b, n, 0, 0));
    struct ew_job j = { y, a, b, 0, EW_ADD, 0 };
    ew(nn, &j, n);
}
void nn_mul(struct nn *nn, float *y, const float *a, const float *b, size_t n)
{
    CUDA_OP(nnc_ew(nn->cuda, 3, y, a, b, n, 0, 0));
    struct ew_job j = { y, a, b, 0, EW_MUL, 0 };
    ew(nn, &j, n);
}

struct row_job { float *y; const float *x, *u, *v; int d; int op; };
enum { ROW_GATED, ROW_MODULATE };
static void row_range(void *ctx, size_t r0, size_t r1)
{
    struct row_job *j = ctx;
    int d = j->d;
    for (size_t r = r0; r < r1; r++) {
        float *y = j->y + r * (size_t)d;
        const float *x = j->x + r * (size_t)d;
        if (j->op == ROW_GATED) {
            if (j->u) for (int i = 0; i < d; i++) y[i] += x[i] * j->u[i];
            else for (int i = 0; i < d; i++) y[i] += x[i];
        } else {
            for (int i = 0; i < d; i++) y[i] = x[i] * (1.0f + j->v[i]) + j->u[i];
        }
    }
}

void nn_add_gated(struct nn *nn, float *x, const float *y, const float *gate, int rows, int d)
{
    CUDA_OP(nnc_rows(nn->cuda, 0, x, y, gate, NULL, rows, d));
    struct row_job j = { x, y, gate, NULL, d, ROW_GATED };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, row_range, &j);
}

void nn_modulate(struct nn *nn, float *y, const float *x, int rows, int d, const float *shift,
                 const float *scale)
{
    CUDA_OP(nnc_rows(nn->cuda, 1, y, x, shift, scale, rows, d));
    struct row_job j = { y, x, shift, scale, d, ROW_MODULATE };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, row_range, &j);
}

/* x <- exp(x - max x) in place; returns the sum */
static double softmax_exp(float *x, int d)
{
    float m = -INFINITY;
    for (int i = max_fast(x, d, &m); i < d; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = expsub_fast(x, d, m, &s); i < d; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    return s;
}

static void softmax_row(float *x, int d)
{
    float inv = (float)(1.0 / softmax_exp(x, d));
    for (int i = 0; i < d; i++) x[i] *= inv;
}

struct sm_job { float *x; int d; };
static void sm_range(void *ctx, size_t r0, size_t r1)
{
    struct sm_job *j = ctx;
    for (size_t r = r0; r < r1; r++) softmax_row(j->x + r * (size_t)j->d, j->d);
}

void nn_softmax(struct nn *nn, float *x, int rows, int d)
{
    CUDA_OP(nnc_softmax(nn->cuda, x, rows, d));
    struct sm_job j = { x, d };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, sm_range, &j);
}

/* ---- attention ---- */

/* One task = one head's tile of query rows, all on one pool thread: its
 * scores S = scale q k^T (+ bias) [rows, kv] by a single-threaded sgemm into
 * the thread's own scratch (about 4 MiB), exp(S - row max) in
 * place, out = S v by a second sgemm, each output row divided by its sum
 * last. No [Lq, Lk] matrix. */
struct att_job {
    const float *q, *k, *v, *bias;
    float *out, *scr;
    int Lq, Lk, H, D, kv, ld, tr, tiles;
    size_t per; /* scratch floats per thread: tr * kv scores + tr sums */
    float scale;
};
static void att_task(void *ctx, int t0, int t1, int worker)
{
    const struct att_job *j = ctx;
    float *S = j->scr + (size_t)worker * j->per, *inv = S + (size_t)j->tr * j->kv;
    for (int t = t0; t < t1; t++) {
        int h = t / j->tiles, r0 = (t % j->tiles) * j->tr, n = j->Lq - r0 < j->tr ? j->Lq - r0 : j->tr;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, j->kv, j->D, j->scale, j->q + (size_t)r0 * j->ld + (size_t)h * j->D,
                    j->ld, j->k + (size_t)h * j->D, j->ld, 0.0f, S, j->kv);
        for (int r = 0; r < n; r++) {
            float *row = S + (size_t)r * j->kv;
            if (j->bias) {
                const float *b = j->bias + ((size_t)h * j->Lq + r0 + r) * (size_t)j->Lk;
                for (int i = 0; i < j->kv; i++) row[i] += b[i];
            }
            inv[r] = (float)(1.0 / softmax_exp(row, j->kv));
        }
        float *o = j->out + (size_t)r0 * j->ld + (size_t)h * j->D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, j->D, j->kv, 1.0f, S, j->kv, j->v + (size_t)h * j->D, j->ld,
                    0.0f, o, j->ld);
        for (int r = 0; r < n; r++)
            for (int d = 0; d < j->D; d++) o[(size_t)r * j->ld + d] *= inv[r];
    }
}

/* rows of scores per slice of the product attention: at most 64 MiB */
static int products_rows(int Lq, int Lk)
{
    size_t rows = (UINT64_C(64) << 20) / sizeof(float) / (size_t)(Lk > 0 ? Lk : 1);
    if (rows < 1) rows = 1;
    return rows > (size_t)Lq ? Lq : (int)rows;
}

uint64_t nn_attention_products_bytes(int D, int Lq, int Lk)
{
    return D > NN_CUDA_ATTN_MAX_D ? (uint64_t)products_rows(Lq, Lk) * (uint64_t)Lk * sizeof(float) : 0;
}

void nn_attention_products(struct nn *nn, float *o, const float *q, const float *k, const float *v, int Lq, int Lk,
                           int D, float scale, float *scores)
{
    int rows = products_rows(Lq, Lk);
    for (int i0 = 0; i0 < Lq; i0 += rows) {
        int n = Lq - i0 < rows ? Lq - i0 : rows;
        nn_gemm(nn, 0, 1, n, Lk, D, scale, q + (size_t)i0 * D, D, k, D, 0.0f, scores, Lk);
        nn_softmax(nn, scores, n, Lk);
        nn_gemm(nn, 0, 0, n, D, Lk, 1.0f, scores, Lk, v, D, 0.0f, o + (size_t)i0 * D, D);
    }
}

void nn_attention(struct nn *nn, float *out, const float *q, const float *k, const float *v,
                  int Lq, int Lk, int H, int D, float scale, const float *bias, int k_valid)
{
#ifdef ISOPIPE_CUDA
    if (nn->cuda && D > NN_CUDA_ATTN_MAX_D && H == 1 && !bias && (k_valid < 0 || k_valid >= Lk)) {
        /* past the fused kernel's head size: products on a scratch; without
         * one the fused kernel below refuses the head size and nn_sync says so */
        float *sc = nn_alloc(nn, nn_attention_products_bytes(D, Lq, Lk) / sizeof(float));
        if (sc) {
            nn_attention_products(nn, out, q, k, v, Lq, Lk, D, scale, sc);
            nn_release(nn, &sc);
            return;
        }
    }
#endif
    CUDA_OP(nnc_attention(nn->cuda, out, q, k, v, Lq, Lk, H, D, scale, bias, k_valid, nn->prec == NN_PREC_BF16));
    if (k_valid > Lk || k_valid < 0) k_valid = Lk;
    int ld = H * D;
    if (k_valid == 0) {
        memset(out, 0, (size_t)Lq * ld * sizeof(float));
        return;
    }
    /* rows per task: about 4 MiB of scores, 16 to 512 rows. Each task packs
     * the head's k and v once more, so taller tiles pay that less often; on
     * the Wan DiT bench (2240 keys) 464-row tiles took 7% less CPU than
     * 112-row ones (1 MiB) and as little as 928-row ones */
    int tr = (int)((UINT64_C(1) << 20) / (uint64_t)k_valid);
    tr = tr < 16 ? 16 : tr > 512 ? 512 : tr & ~15;
    if (tr > Lq) tr = Lq;
    int tiles = (Lq + tr - 1) / tr, T = pool_threads(nn->pool);
    size_t per = (size_t)tr * (size_t)k_valid + (size_t)tr;
    struct att_job j = { q, k, v, bias, out, scratch(nn, 1, per * (size_t)T), Lq, Lk, H, D, k_valid, ld, tr, tiles,
                         per, scale };
    pool_for(nn->pool, H * tiles, att_task, &j);
}

/* ---- rotary embeddings ---- */

struct rope_job { float *x; int H, D; const float *cos, *sin; int interleaved; };
static void rope_range(void *ctx, size_t l0, size_t l1)
{
    struct rope_job *j = ctx;
    int half = j->D / 2;
    for (size_t l = l0; l < l1; l++) {
        const float *c = j->cos + l * (size_t)half, *s = j->sin + l * (size_t)half;
        for (int h = 0; h < j->H; h++) {
            float *x = j->x + (l * (size_t)j->H + (size_t)h) * (size_t)j->D;
            for (int i = 0; i < half; i++) {
                float *a = j->interleaved ? &x[2 * i] : &x[i];
                float *b = j->interleaved ? &x[2 * i + 1] : &x[i + half];
                float x0 = *a, x1 = *b;
                *a = x0 * c[i] - x1 * s[i];
                *b = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

void nn_rope(struct nn *nn, float *x, int L, int H, int D, const float *cos, const float *sin, int interleaved)
{
    CUDA_OP(nnc_rope(nn->cuda, x, L, H, D, cos, sin, interleaved));
    struct rope_job j = { x, H, D, cos, sin, interleaved };
    par_range(nn, (size_t)L, 1, rope_range, &j);
}

/* ---- convolutions ---- */

/* im2col for a 3-D convolution (2-D is kt = 1, T = 1): rows (c, dt, dy, dx)
 * of C*kt*kh*kw, columns output positions p0..p1-1 of To*Ho*Wo */
struct im2col_job {
    float *cols; const float *x; int C, T, H, W, kt, kh, kw, st, sh, sw, ph, pw, dh, dw, To, Ho, Wo;
    size_t p0, np;
};
static void im2col_range(void *ctx, size_t r0, size_t r1)
{
    struct im2col_job *j = ctx;
    size_t HoWo = (size_t)j->Ho * j->Wo;
    /* the first position's (to, oy, ox) once; then whole output rows at a time
     * (a div/mod per element made this loop half of a convolution's time) */
    int to0 = (int)(j->p0 / HoWo), oy0 = (int)(j->p0 % HoWo / (size_t)j->Wo), ox0 = (int)(j->p0 % (size_t)j->Wo);
    for (size_t r = r0; r < r1; r++) {
        int dx = (int)(r % (size_t)j->kw), dy = (int)(r / (size_t)j->kw % (size_t)j->kh);
        int dt = (int)(r / ((size_t)j->kw * j->kh) % (size_t)j->kt);
        int c = (int)(r / ((size_t)j->kw * j->kh * j->kt));
        float *row = j->cols + r * j->np;
        size_t i = 0;
        int to = to0, oy = oy0, ox = ox0;
        while (i < j->np) {
            int n = j->Wo - ox;
            if ((size_t)n > j->np - i) n = (int)(j->np - i);
            float *dst = row + i;
            int t = to * j->st + dt, y = oy * j->sh - j->ph + dy * j->dh;
            if (y < 0 || y >= j->H) {
                memset(dst, 0, (size_t)n * sizeof(float));
            } else {
                const float *src = j->x + (((size_t)c * j->T + t) * j->H + y) * j->W;
                int x0 = ox * j->sw - j->pw + dx * j->dw;   /* input column of dst[0]; dst[k] reads x0 + k*sw */
                int klo = x0 >= 0 ? 0 : (-x0 + j->sw - 1) / j->sw;
                int khi = x0 >= j->W ? 0 : (j->W - x0 + j->sw - 1) / j->sw;
                if (klo > n) klo = n;
                if (khi > n) khi = n;
                if (khi < klo) khi = klo;
                for (int k = 0; k < klo; k++) dst[k] = 0.0f;
                if (j->sw == 1) memcpy(dst + klo, src + x0 + klo, (size_t)(khi - klo) * sizeof(float));
                else
                    for (int k = klo; k < khi; k++) dst[k] = src[x0 + k * j->sw];
                for (int k = khi; k < n; k++) dst[k] = 0.0f;
            }
            i += (size_t)n;
            ox = 0;
            if (++oy == j->Ho) { oy = 0; to++; }
        }
    }
}

/* y[O, P] (+bias) = Wt[O, K] * cols[K, P] in slices of positions */
static void conv_gemm(struct nn *nn, float *y, const float *x, int C, int T, int H, int W, const struct nn_w *w,
                      const struct nn_w *b, int O, int kt, int kh, int kw, int st, int sh, int sw, int ph, int pw,
                      int dh, int dw, int To, int Ho, int Wo)
{
    CUDA_OP(nnc_conv(nn->cuda, y, x, C, T, H, W, w, b, O, kt, kh, kw, st, sh, sw, ph, pw, dh, dw, To, Ho, Wo));
    size_t K = (size_t)C * kt * kh * kw, P = (size_t)To * Ho * Wo;
    const float *wt = w_f32(nn, w, 0, (size_t)O * K, 0);
    int direct = kt == 1 && kh == 1 && kw == 1 && st == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    if (direct) {
        nn_gemm(nn, 0, 0, O, (int)P, (int)K, 1.0f, wt, (int)K, x, (int)P, 0.0f, y, (int)P);
    } else {
        size_t np = NN_SLICE_BYTES / sizeof(float) / K;
        if (np < 64) np = 64;
        if (np > P) np = P;
        float *cols = scratch(nn, 1, K * np);
        for (size_t p0 = 0; p0 < P; p0 += np) {
            size_t n = P - p0 < np ? P - p0 : np;
            struct im2col_job j = { cols, x, C, T, H, W, kt, kh, kw, st, sh, sw, ph, pw, dh, dw, To, Ho, Wo, p0, n };
            par_range(nn, K, 1, im2col_range, &j);
            nn_gemm(nn, 0, 0, O, (int)n, (int)K, 1.0f, wt, (int)K, cols, (int)n, 0.0f, y + p0, (int)P);
        }
    }
    if (b && b->data) {
        /* bias per output channel: rows of [O, P] */
        for (int o = 0; o < O; o++) {
            float bv = nn_w_get(b, (size_t)o);
            float *row = y + (size_t)o * P;
            for (size_t i = 0; i < P; i++) row[i] += bv;
        }
    }
}

void nn_conv2d(struct nn *nn, float *y, const float *x, int C, int H, int W,
               const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw,
               int sh, int sw, int ph, int pw, int dh, int dw, int groups)
{
    int Ho = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1, Wo = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    if (groups <= 1) {
        conv_gemm(nn, y, x, C, 1, H, W, w, b, O, 1, kh, kw, 1, sh, sw, ph, pw, dh, dw, 1, Ho, Wo);
        return;
    }
    int cg = C / groups, og = O / groups;
    size_t wg = (size_t)og * cg * kh * kw;
    for (int g = 0; g < groups; g++) {
        struct nn_w wsub = *w, bsub = { NULL, WT_F32, 1.0f };
        wsub.data = (const uint8_t *)w->data + wg * g * wt_dtype_size(w->dtype);
        if (b && b->data) {
            bsub = *b;
            bsub.data = (const uint8_t *)b->data + (size_t)og * g * wt_dtype_size(b->dtype);
        }
        conv_gemm(nn, y + (size_t)g * og * Ho * Wo, x + (size_t)g * cg * H * W, cg, 1, H, W, &wsub, &bsub, og, 1, kh,
                  kw, 1, sh, sw, ph, pw, dh, dw, 1, Ho, Wo);
    }
}

void nn_conv3d(struct nn *nn, float *y, const float *x, int C, int T, int H, int W,
               const struct nn_w *w, const struct nn_w *b, int O, int kt, int kh, int kw,
               int st, int sh, int sw, int ph, int pw)
{
    int To = (T - kt) / st + 1;
    int Ho = (H + 2 * ph - (kh - 1) - 1) / sh + 1, Wo = (W + 2 * pw - (kw - 1) - 1) / sw + 1;
    if (To <= 0) return;
    conv_gemm(nn, y, x, C, T, H, W, w, b, O, kt, kh, kw, st, sh, sw, ph, pw, 1, 1, To, Ho, Wo);
}

/* col2im for the transposed convolution: cols [O*kh*kw, nh*W] (input rows
 * iy0 .. iy0+nh) scattered into y [O, Ho, Wo]; one output channel per task,
 * so no two threads add to the same element */
struct col2im_job {
    float *y; const float *cols; int H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, iy0, nh;
};
static void col2im_range(void *ctx, size_t o0, size_t o1)
{
    struct col2im_job *j = ctx;
    size_t HW = (size_t)j->nh * j->W;
    for (size_t o = o0; o < o1; o++) {
        float *yo = j->y + o * (size_t)j->Ho * j->Wo;
        for (int dy = 0; dy < j->kh; dy++)
            for (int dx = 0; dx < j->kw; dx++) {
                const float *row = j->cols + ((o * j->kh + dy) * j->kw + dx) * HW;
                for (int iy = 0; iy < j->nh; iy++) {
                    int oy = (j->iy0 + iy) * j->sh - j->ph + dy;
                    if (oy < 0 || oy >= j->Ho) continue;
                    for (int ix = 0; ix < j->W; ix++) {
                        int ox = ix * j->sw - j->pw + dx;
                        if (ox < 0 || ox >= j->Wo) continue;
                        yo[(size_t)oy * j->Wo + ox] += row[(size_t)iy * j->W + ix];
                    }
                }
            }
    }
}

void nn_conv_transpose2d(struct nn *nn, float *y, const float *x, int C, int H, int W,
                         const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw,
                         int sh, int sw, int ph, int pw)
{
    CUDA_OP(nnc_conv_transpose2d(nn->cuda, y, x, C, H, W, w, b, O, kh, kw, sh, sw, ph, pw));
    int Ho = (H - 1) * sh - 2 * ph + kh, Wo = (W - 1) * sw - 2 * pw + kw;
    size_t K = (size_t)O * kh * kw, HW = (size_t)H * W;
    const float *wt = w_f32(nn, w, 0, (size_t)C * K, 0);
    /* whole input rows per slice, so that the columns stay within
     * NN_SLICE_BYTES (at least one row) */
    size_t nh = NN_SLICE_BYTES / sizeof(float) / (K * (size_t)(W > 0 ? W : 1));
    if (nh < 1) nh = 1;
    if (nh > (size_t)H) nh = (size_t)H;
    float *cols = scratch(nn, 1, K * nh * W);
    memset(y, 0, (size_t)O * Ho * Wo * sizeof(float));
    for (int iy0 = 0; iy0 < H; iy0 += (int)nh) {
        int n = H - iy0 < (int)nh ? H - iy0 : (int)nh;
        /* cols[K, n*W] = Wt^T[K, C] x[C, rows iy0..] with Wt viewed as [C, K] */
        nn_gemm(nn, 1, 0, (int)K, n * W, C, 1.0f, wt, (int)K, x + (size_t)iy0 * W, (int)HW, 0.0f, cols, n * W);
        struct col2im_job j = { y, cols, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, iy0, n };
        par_range(nn, (size_t)O, 1, col2im_range, &j);
    }
    if (b && b->data)
        for (int o = 0; o < O; o++) {
            float bv = nn_w_get(b, (size_t)o);
            float *row = y + (size_t)o * Ho * Wo;
            for (size_t i = 0; i < (size_t)Ho * Wo; i++) row[i] += bv;
        }
}

/* ---- strided copies and per-channel bias ---- */

/* rows of a box copy (the three outer indices flattened) on the pool */
struct box_job { float *dst; const float *src; const size_t *ds, *ss; const int *n; };
static void box_range(void *ctx, size_t r0, size_t r1)
{
    const struct box_job *j = ctx;
    const size_t *ds = j->ds, *ss = j->ss;
    int rows = ds[3] == 1 && ss[3] == 1, nc = j->n[2], nb = j->n[1];
    for (size_t r = r0; r < r1; r++) {
        size_t c = r % (size_t)nc, b = r / (size_t)nc % (size_t)nb, a = r / (size_t)nc / (size_t)nb;
        float *d = j->dst + a * ds[0] + b * ds[1] + c * ds[2];
        const float *s = j->src + a * ss[0] + b * ss[1] + c * ss[2];
        if (rows) memcpy(d, s, (size_t)j->n[3] * sizeof(float));
        else
            for (int i = 0; i < j->n[3]; i++) d[i * ds[3]] = s[i * ss[3]];
    }
}

void nn_copy_box(struct nn *nn, float *dst, const size_t ds[4], const float *src, const size_t ss[4], const int n[4])
{
    if (n[0] <= 0 || n[1] <= 0 || n[2] <= 0 || n[3] <= 0) return;
    CUDA_OP(nnc_copy_box(nn->cuda, dst, ds, src, ss, n));
    struct box_job j = { dst, src, ds, ss, n };
    par_range(nn, (size_t)n[0] * n[1] * n[2], (size_t)(NN_GRAIN / n[3]) + 1, box_range, &j);
}

/* channels of y = x + b[c] on the pool, in slices of a channel's positions */
struct chan_job { float *y; const float *x; const float *b; size_t S, per; };
static void chan_range(void *ctx, size_t i0, size_t i1)
{
    const struct chan_job *j = ctx;
    for (size_t i = i0; i < i1; i++) {
        size_t c = i / j->per, s0 = i % j->per * NN_GRAIN, s1 = s0 + NN_GRAIN < j->S ? s0 + NN_GRAIN : j->S;
        float *yr = j->y + c * j->S;
        const float *xr = j->x + c * j->S;
        if (j->b) {
            float bv = j->b[c];
            for (size_t k = s0; k < s1; k++) yr[k] = xr[k] + bv;
        } else {
            memcpy(yr + s0, xr + s0, (s1 - s0) * sizeof(float));
        }
    }
}

void nn_add_channels(struct nn *nn, float *y, const float *x, int C, size_t S, const struct nn_w *b)
{
    if (C <= 0 || !S) return;
    CUDA_OP(nnc_add_channels(nn->cuda, y, x, C, S, b));
    const float *bv = w_vec(nn, b, (size_t)C, 0);
    if (!bv && y == x) return;
    struct chan_job j = { y, x, bv, S, (S + NN_GRAIN - 1) / NN_GRAIN };
    par_range(nn, (size_t)C * j.per, 1, chan_range, &j);
}

#ifdef ISOPIPE_CUDA
/* for nn_img.c's dispatch to nn_img_cuda.cu */
struct nnc *nn_cuda_of(struct nn *nn) { return nn->cuda; }
#endif

/* ---- relative position bias ---- */

struct relpos_job { float *y; const float *t; int Lq, Lk; };
static void relpos_range(void *ctx, size_t r0, size_t r1)
{
    struct relpos_job *j = ctx;
    size_t w = (size_t)j->Lq + (size_t)j->Lk - 1;
    for (size_t r = r0; r < r1; r++) {
        /* row (h, i) is t[h, Lq - 1 - i .. Lq - 1 - i + Lk - 1]: contiguous */
        size_t h = r / (size_t)j->Lq, i = r % (size_t)j->Lq;
        memcpy(j->y + r * (size_t)j->Lk, j->t + h * w + ((size_t)j->Lq - 1 - i), (size_t)j->Lk * sizeof(float));
    }
}

void nn_relpos_bias(struct nn *nn, float *y, const float *t, int H, int Lq, int Lk)
{
    if (H <= 0 || Lq <= 0 || Lk <= 0) return;
    CUDA_OP(nnc_relpos_bias(nn->cuda, y, t, H, Lq, Lk));
    struct relpos_job j = { y, t, Lq, Lk };
    par_range(nn, (size_t)H * (size_t)Lq, (size_t)(NN_GRAIN / Lk) + 1, relpos_range, &j);
}
