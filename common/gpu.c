/* gpu.c — the backend-independent half of the GPU module: discovery order,
 * the fake device, accounting, the pinned budget, NVML, arenas. The CUDA
 * calls live in gpu_cuda.cu behind the gpuc_* functions (CUDA builds only). */
#include "gpu.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"

#define MIB (UINT64_C(1) << 20)

static struct gpu_info g_info;
static int g_inited, g_init_rc;
static uint64_t g_fake_free;             /* ISOPIPE_FAKE_GPU FREE, bytes */
static uint64_t g_own;                   /* bytes held in arenas */
static uint64_t g_pinned_used, g_pinned_budget;
static int g_pinned_budget_set;
static uint64_t g_fake_next = UINT64_C(1) << 44; /* fake device address space */
static void (*g_hook)(uint64_t, void *);
static void *g_hook_ctx;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- NVML, loaded at run time so a binary needs no NVML to start.
 * nvmlProcessInfo_t as of NVML 11.x/12.x (the layout the _v2/_v3 process
 * queries fill): pid, usedGpuMemory, gpuInstanceId, computeInstanceId. */
struct nvml_proc { unsigned int pid; unsigned long long used; unsigned int gi, ci; };
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_by_pci_fn)(const char *, void **);
typedef int (*nvml_procs_fn)(void *, unsigned int *, struct nvml_proc *);
static void *g_nvml_lib, *g_nvml_dev;
static nvml_procs_fn g_nvml_procs;
static int (*g_nvml_shutdown)(void);
/* nvmlMemory_t: device-wide total/free/used, readable without a CUDA context */
struct nvml_mem { unsigned long long total, free, used; };
static int (*g_nvml_meminfo)(void *, struct nvml_mem *) __attribute__((unused)); /* used by CUDA builds */

#ifdef ISOPIPE_CUDA
static void nvml_open(void)
{
    if (!g_info.pci[0]) return;
    g_nvml_lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g_nvml_lib) {
        log_verbose("gpu: no NVML (%s): process VRAM from own accounting", dlerror());
        return;
    }
    nvml_init_fn init = (nvml_init_fn)dlsym(g_nvml_lib, "nvmlInit_v2");
    nvml_by_pci_fn by_pci = (nvml_by_pci_fn)dlsym(g_nvml_lib, "nvmlDeviceGetHandleByPciBusId_v2");
    g_nvml_procs = (nvml_procs_fn)dlsym(g_nvml_lib, "nvmlDeviceGetComputeRunningProcesses_v3");
    if (!g_nvml_procs) g_nvml_procs = (nvml_procs_fn)dlsym(g_nvml_lib, "nvmlDeviceGetComputeRunningProcesses_v2");
    g_nvml_shutdown = (int (*)(void))dlsym(g_nvml_lib, "nvmlShutdown");
    g_nvml_meminfo = (int (*)(void *, struct nvml_mem *))dlsym(g_nvml_lib, "nvmlDeviceGetMemoryInfo");
    if (!init || !by_pci || !g_nvml_procs || init() != 0 || by_pci(g_info.pci, &g_nvml_dev) != 0) {
        log_verbose("gpu: NVML present but unusable: process VRAM from own accounting");
        if (init && g_nvml_shutdown && g_nvml_dev) g_nvml_shutdown();
        dlclose(g_nvml_lib);
        g_nvml_lib = NULL;
        g_nvml_dev = NULL;
        g_nvml_procs = NULL;
        g_nvml_meminfo = NULL;
    }
}
#endif

/* 0 and *bytes when NVML lists our pid with a known size; <0 otherwise
 * (in a container NVML reports host pids, so we may well not find ours) */
static int nvml_process_bytes(uint64_t *bytes)
{
    if (!g_nvml_procs) return -1;
    struct nvml_proc procs[128];
    unsigned int n = 128;
    if (g_nvml_procs(g_nvml_dev, &n, procs) != 0) return -1;
    unsigned int me = (unsigned int)getpid();
    for (unsigned int i = 0; i < n && i < 128; i++) {
        /* NVML_VALUE_NOT_AVAILABLE is all ones */
        if (procs[i].pid == me && procs[i].used != ~0ULL) {
            *bytes = procs[i].used;
            return 0;
        }
    }
    return -1;
}

/* runs inside checkpoints, also on error paths: the caller's error message
 * must survive it */
int gpu_nvml_processes(struct gpu_proc *out, int max, int *n)
{
    *n = 0;
    if (!g_nvml_procs) return iso_fail(ISO_EUNAVAIL, "no NVML");
    struct nvml_proc procs[128];
    unsigned int cnt = 128;
    if (g_nvml_procs(g_nvml_dev, &cnt, procs) != 0) return iso_fail(ISO_EIO, "NVML process query failed");
    for (unsigned int i = 0; i < cnt && i < 128 && *n < max; i++) {
        out[*n].pid = procs[i].pid;
        out[*n].bytes = procs[i].used == ~0ULL ? UINT64_MAX : procs[i].used;
        (*n)++;
    }
    return 0;
}

static int vram_probe(uint64_t *process, uint64_t *free_b, uint64_t *total)
{
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", iso_errmsg());
    int rc = gpu_mem_get(free_b, total);
    if (rc == 0 && gpu_process_bytes(process, NULL)) *process = UINT64_MAX;
    iso_fail(0, "%s", saved);
    return rc ? -1 : 0;
}

static int parse_fake(const char *s)
{
    char *end;
    unsigned long long t = strtoull(s, &end, 10);
    if (end == s || *end != ':' || t == 0 || t > (UINT64_C(1) << 30))
        return iso_fail(ISO_EUSAGE, "ISOPIPE_FAKE_GPU: expected TOTAL_MiB:FREE_MiB, got '%s'", s);
    const char *p = end + 1;
    unsigned long long f = strtoull(p, &end, 10);
    if (end == p || *end || f > t)
        return iso_fail(ISO_EUSAGE, "ISOPIPE_FAKE_GPU: expected TOTAL_MiB:FREE_MiB with FREE <= TOTAL, got '%s'", s);
    g_info.total = t * MIB;
    g_fake_free = f * MIB;
    return 0;
}

static char g_no_gpu[256]; /* why a CUDA build found no usable GPU */

const char *gpu_unavailable_reason(void) { return g_no_gpu[0] ? g_no_gpu : NULL; }

int gpu_init(int device)
{
    if (g_inited) return g_init_rc;
    g_inited = 1;
    int rc = 0;
    memset(&g_info, 0, sizeof g_info);
    g_info.device = device;
    const char *fake = getenv("ISOPIPE_FAKE_GPU");
    if (fake && *fake) {
        if ((rc = parse_fake(fake))) goto done;
        if (device != 0) {
            rc = iso_fail(ISO_EUSAGE, "--device %d: the fake device (ISOPIPE_FAKE_GPU) is device 0", device);
            goto done;
        }
        g_info.backend = GPU_BACKEND_FAKE;
        snprintf(g_info.name, sizeof g_info.name, "fake");
        snprintf(g_info.key, sizeof g_info.key, "fake");
        log_info("gpu: fake device (ISOPIPE_FAKE_GPU=%s): no kernels run, allocations are only accounted", fake);
        mem_set_vram_probe(vram_probe);
        goto done;
    }
#ifdef ISOPIPE_CUDA
    int n = 0;
    rc = gpuc_init(device, &g_info, &n);
    if (rc == ISO_EUNAVAIL) {
        /* said once, at info level, by the tools that could have used it
         * (rt_admit, vram-probe); a tool without a GPU path stays quiet */
        snprintf(g_no_gpu, sizeof g_no_gpu, "%s", iso_errmsg());
        log_verbose("gpu: %s; running in CPU mode", g_no_gpu);
        iso_errclear();
        memset(&g_info, 0, sizeof g_info);
        rc = 0;
        goto done;
    }
    if (rc) goto done;
    g_info.backend = GPU_BACKEND_CUDA;
    nvml_open();
    mem_set_vram_probe(vram_probe);
    log_verbose("gpu: device %d '%s' (%s), %" PRIu64 " MiB, compute %d.%d%s", device, g_info.name, g_info.pci,
                g_info.total / MIB, g_info.cc_major, g_info.cc_minor, g_nvml_lib ? ", NVML" : "");
#else
    /* a CPU-only build never had a GPU to lose: say it only when asked (-v) */
    log_verbose("gpu: this build has no CUDA support; running in CPU mode");
#endif
done:
    g_init_rc = rc;
    return rc;
}

const struct gpu_info *gpu_get_info(void) { return &g_info; }
int gpu_present(void) { return g_info.backend != GPU_BACKEND_NONE; }

int gpu_activate(void)
{
#ifdef ISOPIPE_CUDA
    if (g_info.backend == GPU_BACKEND_CUDA) return gpuc_activate();
#endif
    return 0;
}

#ifdef ISOPIPE_CUDA
/* free/total of the real device: NVML while this process has no context (so
 * asking costs no VRAM), the CUDA runtime once it has one */
static int cuda_mem_get(uint64_t *free_bytes, uint64_t *total_bytes)
{
    struct nvml_mem m;
    if (!gpuc_active() && g_nvml_meminfo && g_nvml_meminfo(g_nvml_dev, &m) == 0) {
        *free_bytes = m.free;
        *total_bytes = m.total;
        return 0;
    }
    return gpuc_mem_get(free_bytes, total_bytes);
}
#endif
int gpu_is_fake(void) { return g_info.backend == GPU_BACKEND_FAKE; }

void gpu_shutdown(void)
{
    if (g_nvml_lib) {
        if (g_nvml_shutdown) g_nvml_shutdown();
        dlclose(g_nvml_lib);
        g_nvml_lib = NULL;
        g_nvml_procs = NULL;
    }
    /* the probe stays: the "end" checkpoint after this still wants VRAM
     * figures, and own accounting needs nothing that was shut down */
}

static uint64_t fake_free(uint64_t others_used)
{
    pthread_mutex_lock(&g_lock);
    uint64_t used = g_own;
    pthread_mutex_unlock(&g_lock);
    uint64_t take = used > UINT64_MAX - others_used ? UINT64_MAX : used + others_used; /* saturating */
    return take >= g_fake_free ? 0 : g_fake_free - take;
}

int gpu_ledger_free_fn(uint64_t others_used, uint64_t *free_bytes, void *ctx)
{
    (void)ctx;
    switch (g_info.backend) {
    case GPU_BACKEND_FAKE: *free_bytes = fake_free(others_used); return 0;
#ifdef ISOPIPE_CUDA
    case GPU_BACKEND_CUDA: { uint64_t t; return cuda_mem_get(free_bytes, &t); }
#endif
    default: return iso_fail(ISO_EUNAVAIL, "no GPU");
    }
}

int gpu_mem_get(uint64_t *free_bytes, uint64_t *total_bytes)
{
    switch (g_info.backend) {
    case GPU_BACKEND_FAKE:
        *free_bytes = fake_free(ledger_others_used(g_info.key));
        *total_bytes = g_info.total;
        return 0;
#ifdef ISOPIPE_CUDA
    case GPU_BACKEND_CUDA: return cuda_mem_get(free_bytes, total_bytes);
#endif
    default: return iso_fail(ISO_EUNAVAIL, "no GPU");
    }
}

uint64_t gpu_own_bytes(void)
{
    pthread_mutex_lock(&g_lock);
    uint64_t v = g_own;
    pthread_mutex_unlock(&g_lock);
    return v;
}

int gpu_process_bytes(uint64_t *bytes, int *from_nvml)
{
    if (from_nvml) *from_nvml = 0;
    if (!gpu_present()) return iso_fail(ISO_EUNAVAIL, "no GPU");
    if (nvml_process_bytes(bytes) == 0) {
        if (from_nvml) *from_nvml = 1;
        return 0;
    }
    *bytes = gpu_own_bytes();
    return 0;
}

void gpu_set_usage_hook(void (*fn)(uint64_t, void *), void *ctx)
{
    g_hook = fn;
    g_hook_ctx = ctx;
}

static void own_add(uint64_t add, uint64_t sub)
{
    pthread_mutex_lock(&g_lock);
    g_own = g_own + add - sub;
    uint64_t now = g_own;
    pthread_mutex_unlock(&g_lock);
    mem_note_vram(now);
    if (g_hook) g_hook(now, g_hook_ctx);
}

/* ---- arenas */
struct gpu_arena {
    char name[32];
    uint8_t *base;
    uint64_t size, used, peak;
};

int gpu_arena_create(const char *name, uint64_t bytes, struct gpu_arena **out)
{
    *out = NULL;
    int rc = 0;
    struct gpu_arena *a = NULL;
    if (!gpu_present()) return iso_fail(ISO_EUNAVAIL, "arena '%s': no GPU", name);
    if (bytes == 0) bytes = 256;   /* a valid, empty arena */
    a = calloc(1, sizeof *a);
    if (!a) return iso_fail(ISO_EINTERNAL, "out of memory");
    snprintf(a->name, sizeof a->name, "%s", name);
    a->size = bytes;
    if (g_info.backend == GPU_BACKEND_FAKE) {
        uint64_t f, t;
        if ((rc = gpu_mem_get(&f, &t))) goto done;
        if (bytes > f) {
            rc = iso_fail(ISO_ETEMPFAIL, "arena '%s': cannot take %.1f MiB of VRAM, %.1f MiB free", name,
                          bytes / (double)MIB, f / (double)MIB);
            goto done;
        }
        /* fake pointers: distinct, 64 KiB aligned, never dereferenced */
        pthread_mutex_lock(&g_lock);
        a->base = (uint8_t *)(uintptr_t)g_fake_next;
        g_fake_next += (bytes + 0xffff) & ~(uint64_t)0xffff;
        pthread_mutex_unlock(&g_lock);
    } else {
#ifdef ISOPIPE_CUDA
        if ((rc = gpuc_malloc((void **)&a->base, bytes))) {
            rc = iso_wrap(ISO_ETEMPFAIL, "arena '%s' (%.1f MiB)", name, bytes / (double)MIB);
            goto done;
        }
#else
        rc = iso_fail(ISO_EUNAVAIL, "arena '%s': no GPU", name);
        goto done;
#endif
    }
    own_add(bytes, 0);
    log_debug("gpu: arena '%s' %.1f MiB", name, bytes / (double)MIB);
done:
    if (rc) free(a);
    else *out = a;
    return rc;
}

int gpu_arena_alloc(struct gpu_arena *a, uint64_t bytes, uint64_t align, void **dev)
{
    *dev = NULL;
    if (align == 0) align = 256;
    if (align & (align - 1)) return iso_fail(ISO_EINTERNAL, "arena '%s': alignment %" PRIu64 " is not a power of two", a->name, align);
    /* the base is at least 256-aligned (cudaMalloc; fake: 64 KiB) so
     * aligning the offset aligns the address for align <= 256; larger
     * alignments are aligned on the address itself */
    uintptr_t base = (uintptr_t)a->base;
    uint64_t start = ((uint64_t)(base + a->used) + align - 1) & ~(align - 1);
    start -= base;
    if (start < a->used || start > a->size || bytes > a->size - start)
        return iso_fail(ISO_ETEMPFAIL, "arena '%s' is full: need %" PRIu64 " bytes, %" PRIu64 " of %" PRIu64 " left",
                        a->name, bytes, a->size - (a->used < a->size ? a->used : a->size), a->size);
    *dev = a->base + start;
    a->used = start + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return 0;
}

void gpu_arena_reset(struct gpu_arena *a) { a->used = 0; }
uint64_t gpu_arena_size(const struct gpu_arena *a) { return a->size; }
uint64_t gpu_arena_used(const struct gpu_arena *a) { return a->used; }
uint64_t gpu_arena_peak(const struct gpu_arena *a) { return a->peak; }

void gpu_arena_free(struct gpu_arena **ap)
{
    struct gpu_arena *a = *ap;
    if (!a) return;
#ifdef ISOPIPE_CUDA
    if (g_info.backend == GPU_BACKEND_CUDA) gpuc_free(a->base);
#endif
    own_add(0, a->size);
    free(a);
    *ap = NULL;
}

/* ---- pinned host memory */
uint64_t gpu_pinned_budget(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_pinned_budget_set) {
        uint64_t b = mem_host_budget() / 5 * 4;
        const char *e = getenv("ISOPIPE_PINNED_MAX_MiB");
        if (e && *e) {
            uint64_t m = strtoull(e, NULL, 10) * MIB;
            if (m < b) b = m;
        }
        g_pinned_budget = b;
        g_pinned_budget_set = 1;
    }
    uint64_t v = g_pinned_budget;
    pthread_mutex_unlock(&g_lock);
    return v;
}

uint64_t gpu_pinned_used(void)
{
    pthread_mutex_lock(&g_lock);
    uint64_t v = g_pinned_used;
    pthread_mutex_unlock(&g_lock);
    return v;
}

int gpu_host_alloc(uint64_t bytes, void **out)
{
    *out = NULL;
    uint64_t budget = gpu_pinned_budget();
    int rc = 0;
    pthread_mutex_lock(&g_lock);
    if (bytes > budget || g_pinned_used > budget - bytes) {
        rc = iso_fail(ISO_ETEMPFAIL, "pinned host memory: need %.1f MiB, %.1f MiB left of a %.1f MiB budget",
                      bytes / (double)MIB, (budget - g_pinned_used) / (double)MIB, budget / (double)MIB);
    } else {
        g_pinned_used += bytes;
    }
    pthread_mutex_unlock(&g_lock);
    if (rc) return rc;
    void *p = NULL;
#ifdef ISOPIPE_CUDA
    if (g_info.backend == GPU_BACKEND_CUDA) {
        rc = gpuc_host_alloc(&p, bytes);
        goto done;
    }
#endif
    p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        p = NULL;
        rc = iso_fail(ISO_ETEMPFAIL, "cannot map %.1f MiB of host memory", bytes / (double)MIB);
    }
    goto done;
done:
    if (rc) {
        pthread_mutex_lock(&g_lock);
        g_pinned_used -= bytes;
        pthread_mutex_unlock(&g_lock);
    } else {
        *out = p;
    }
    return rc;
}

void gpu_host_free(void *p, uint64_t bytes)
{
    if (!p) return;
#ifdef ISOPIPE_CUDA
    if (g_info.backend == GPU_BACKEND_CUDA) gpuc_host_free(p);
    else
#endif
        munmap(p, bytes ? bytes : 1);
    pthread_mutex_lock(&g_lock);
    g_pinned_used -= bytes <= g_pinned_used ? bytes : g_pinned_used;
    pthread_mutex_unlock(&g_lock);
}

/* ---- streams, events, copies */
struct gpu_stream { void *h; };
struct gpu_event { void *h; };

static inline int is_cuda(void) { return g_info.backend == GPU_BACKEND_CUDA; }

int gpu_stream_create(struct gpu_stream **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return iso_fail(ISO_EINTERNAL, "out of memory");
#ifdef ISOPIPE_CUDA
    if (is_cuda()) {
        int rc = gpuc_stream_create(&(*out)->h);
        if (rc) { free(*out); *out = NULL; }
        return rc;
    }
#endif
    return 0;
}

void gpu_stream_free(struct gpu_stream **s)
{
    if (!*s) return;
#ifdef ISOPIPE_CUDA
    if ((*s)->h) gpuc_stream_free((*s)->h);
#endif
    free(*s);
    *s = NULL;
}

void *gpu_stream_handle(struct gpu_stream *s) { return s ? s->h : NULL; }

int gpu_stream_sync(struct gpu_stream *s)
{
#ifdef ISOPIPE_CUDA
    if (s && s->h) return gpuc_stream_sync(s->h);
#endif
    (void)s;
    return 0;
}

int gpu_event_create(struct gpu_event **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return iso_fail(ISO_EINTERNAL, "out of memory");
#ifdef ISOPIPE_CUDA
    if (is_cuda()) {
        int rc = gpuc_event_create(&(*out)->h);
        if (rc) { free(*out); *out = NULL; }
        return rc;
    }
#endif
    return 0;
}

void gpu_event_free(struct gpu_event **e)
{
    if (!*e) return;
#ifdef ISOPIPE_CUDA
    if ((*e)->h) gpuc_event_free((*e)->h);
#endif
    free(*e);
    *e = NULL;
}

int gpu_event_record(struct gpu_event *e, struct gpu_stream *s)
{
#ifdef ISOPIPE_CUDA
    if (e->h) return gpuc_event_record(e->h, s ? s->h : NULL);
#endif
    (void)e; (void)s;
    return 0;
}

int gpu_stream_wait_event(struct gpu_stream *s, struct gpu_event *e)
{
#ifdef ISOPIPE_CUDA
    if (e->h) return gpuc_stream_wait_event(s ? s->h : NULL, e->h);
#endif
    (void)e; (void)s;
    return 0;
}

int gpu_event_sync(struct gpu_event *e)
{
#ifdef ISOPIPE_CUDA
    if (e->h) return gpuc_event_sync(e->h);
#endif
    (void)e;
    return 0;
}

int gpu_event_elapsed(struct gpu_event *a, struct gpu_event *b, double *seconds)
{
#ifdef ISOPIPE_CUDA
    if (a->h && b->h) {
        float ms = 0;
        int rc = gpuc_event_elapsed(a->h, b->h, &ms);
        *seconds = ms / 1000.0;
        return rc;
    }
#endif
    (void)a; (void)b;
    *seconds = 0;
    return iso_fail(ISO_EUNAVAIL, "event timing needs a real GPU");
}

int gpu_memcpy_h2d(void *dev, const void *host, uint64_t n, struct gpu_stream *s)
{
    if (g_info.backend == GPU_BACKEND_FAKE) {
        /* what a DMA engine does to the source: read every page of it */
        const volatile uint8_t *p = host;
        uint8_t x = 0;
        for (uint64_t i = 0; i < n; i += 4096) x ^= p[i];
        if (n) x ^= p[n - 1];
        (void)x;
        (void)dev; (void)s;
        return 0;
    }
#ifdef ISOPIPE_CUDA
    if (is_cuda()) return gpuc_memcpy_h2d(dev, host, n, s ? s->h : NULL);
#endif
    return iso_fail(ISO_EUNAVAIL, "no GPU");
}

int gpu_memcpy_d2h(void *host, const void *dev, uint64_t n)
{
#ifdef ISOPIPE_CUDA
    if (is_cuda()) return gpuc_memcpy_d2h(host, dev, n);
#endif
    (void)host; (void)dev; (void)n;
    return iso_fail(ISO_EUNAVAIL, "device-to-host copy needs a real GPU");
}

int gpu_memset(void *dev, int byte, uint64_t n)
{
    if (g_info.backend == GPU_BACKEND_FAKE) return 0;
#ifdef ISOPIPE_CUDA
    if (is_cuda()) return gpuc_memset(dev, byte, n);
#endif
    (void)dev; (void)byte; (void)n;
    return iso_fail(ISO_EUNAVAIL, "no GPU");
}

int gpu_device_sync(void)
{
#ifdef ISOPIPE_CUDA
    if (is_cuda()) return gpuc_device_sync();
#endif
    return 0;
}
