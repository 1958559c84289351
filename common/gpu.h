/* gpu.h — the GPU as isopipe sees it: discovery, free/total VRAM, the
 * process's own VRAM, arenas, pinned host memory, copies, streams, events.
 * There is at most one device per process (--device N). Three backends:
 *   cuda: a real device through the CUDA runtime (only in ISOPIPE_CUDA builds);
 *   fake: ISOPIPE_FAKE_GPU=TOTAL_MiB:FREE_MiB, a pretend device for discovery,
 *         planning, admission and the ledger; "allocations" are accounted but
 *         not real (arena pointers must never be dereferenced, no kernels run,
 *         copies only read their source); its free VRAM is FREE_MiB minus what
 *         this process holds minus what live ledger holders report using, so
 *         tests can simulate contention between processes;
 *   none: no driver or no device (a CUDA build on a machine without a GPU
 *         included): CPU mode, announced by ONE log line at gpu_init.
 * The gpu module owns its arenas, streams and events; callers free them with
 * the matching *_free(&p), which sets the pointer to NULL. */
#ifndef ISOPIPE_GPU_H
#define ISOPIPE_GPU_H
#include <stddef.h>
#include <stdint.h>

enum gpu_backend { GPU_BACKEND_NONE = 0, GPU_BACKEND_CUDA, GPU_BACKEND_FAKE };

struct gpu_info {
    enum gpu_backend backend;
    int device;              /* CUDA ordinal (0 for fake) */
    char name[128];          /* "NVIDIA H100 80GB HBM3", "fake", "" */
    char key[64];            /* stable id for the ledger file: "pci-0000-01-00-0", "fake" */
    char pci[32];            /* PCI bus id "0000:01:00.0" (NVML lookup), "" for fake */
    uint64_t total;          /* bytes */
    int cc_major, cc_minor;  /* compute capability (0 for fake/none) */
};

/* Discover the device (idempotent; later calls return the first result).
 * ISOPIPE_FAKE_GPU wins over a real device. No device is not an error: the
 * backend is GPU_BACKEND_NONE and one line says so. Registers the VRAM probe
 * with mem_set_vram_probe() when a device is present. Returns 0, ISO_EUSAGE
 * for a malformed ISOPIPE_FAKE_GPU or a --device that does not exist. */
int gpu_init(int device);
/* after gpu_init in a CUDA build that found no usable GPU: why, in words a
 * user understands ("no NVIDIA driver, or one older than ..."); else NULL */
const char *gpu_unavailable_reason(void);
/* the result of gpu_init (backend NONE before it) */
const struct gpu_info *gpu_get_info(void);
/* 1 when a device (real or fake) is present */
int gpu_present(void);
int gpu_is_fake(void);
/* Create the CUDA context on the discovered device (once; no-op for the
 * fake device and without one). Discovery does not create it: a process
 * that never chooses a GPU mode costs no VRAM. rt_admit calls this before a
 * GPU-mode decision, so the decision sees free VRAM net of our own context;
 * any gpuc_* call that needs the context also creates it. */
int gpu_activate(void);
/* release CUDA/NVML resources at exit (arenas must be freed first) */
void gpu_shutdown(void);

/* Device-wide free and total VRAM in bytes: other programs count. On the
 * fake device: FREE_MiB - own - other live ledger holders' reported use.
 * Returns 0, or ISO_EUNAVAIL without a device. */
int gpu_mem_get(uint64_t *free_bytes, uint64_t *total_bytes);
/* the same with other holders' use given (ledger_admit calls it under its
 * lock, where gpu_mem_get would wait for the lock); matches ledger_free_fn */
int gpu_ledger_free_fn(uint64_t others_used, uint64_t *free_bytes, void *ctx);
/* This process's VRAM: NVML (dlopen("libnvidia-ml.so.1"), the entry of
 * nvmlDeviceGetComputeRunningProcesses with our pid) when present, else our
 * own accounting (arenas + streaming buffers + CUDA context estimate 0).
 * *from_nvml (may be NULL) says which. Returns 0 or ISO_EUNAVAIL. */
int gpu_process_bytes(uint64_t *bytes, int *from_nvml);
/* every compute process on the device as NVML lists it (pid, bytes; bytes
 * UINT64_MAX when NVML cannot tell). ISO_EUNAVAIL without NVML. */
struct gpu_proc { unsigned pid; uint64_t bytes; };
int gpu_nvml_processes(struct gpu_proc *out, int max, int *n);
/* bytes this process holds through this module (arenas), always known */
uint64_t gpu_own_bytes(void);
/* called (outside any lock of ours) whenever gpu_own_bytes() changes; the
 * runtime uses it to keep its ledger entry's "used" field current */
void gpu_set_usage_hook(void (*fn)(uint64_t own_bytes, void *ctx), void *ctx);

/* ---- arenas
 * An arena is ONE device allocation (one cudaMalloc) made up front with the
 * size the memory plan computed, then handed out by an aligned bump pointer
 * and given back only as a whole (reset, or free at exit). Fragmentation is
 * impossible by construction: there is no per-tensor cudaMalloc/cudaFree, so
 * the CUDA allocator never sees holes of mixed sizes, and inside an arena
 * nothing is freed out of order, so no hole ever forms. The total is known
 * before loading (the plan), which is also what admission reserves. */
struct gpu_arena;
/* name: "weights", "activations" (logs, reports). ISO_ETEMPFAIL when the
 * device cannot give `bytes` now, ISO_EUNAVAIL without a device. */
int gpu_arena_create(const char *name, uint64_t bytes, struct gpu_arena **out);
/* align: a power of two (0 = 256, what cuBLAS and vector loads like).
 * ISO_ETEMPFAIL (message names the arena, need and room) when it does not fit. */
int gpu_arena_alloc(struct gpu_arena *a, uint64_t bytes, uint64_t align, void **dev);
/* forget every sub-allocation (pointers from before become invalid) */
void gpu_arena_reset(struct gpu_arena *a);
uint64_t gpu_arena_size(const struct gpu_arena *a);
uint64_t gpu_arena_used(const struct gpu_arena *a);
uint64_t gpu_arena_peak(const struct gpu_arena *a);
void gpu_arena_free(struct gpu_arena **a);

/* ---- pinned host memory
 * Page-locked memory cannot be swapped or reclaimed, so it is budgeted from
 * what the host can actually spare (mem_host_budget(): MemAvailable and the
 * cgroup memory.max), never from total RAM. Default budget: 80% of that,
 * ISOPIPE_PINNED_MAX_MiB overrides it downwards. Without a real device the
 * memory is ordinary page-aligned memory (accounted the same way). */
uint64_t gpu_pinned_budget(void);
uint64_t gpu_pinned_used(void);
/* ISO_ETEMPFAIL when bytes exceed what is left of the budget */
int gpu_host_alloc(uint64_t bytes, void **out);
void gpu_host_free(void *p, uint64_t bytes);

/* ---- streams, events, copies (real device; fake/none: synchronous no-ops
 * that keep the same ordering, so the streaming logic runs in CI) */
struct gpu_stream;
struct gpu_event;
int gpu_stream_create(struct gpu_stream **out);
void gpu_stream_free(struct gpu_stream **s);
int gpu_stream_sync(struct gpu_stream *s);
/* the CUDA handle (cudaStream_t) for kernel launches, NULL on fake/none */
void *gpu_stream_handle(struct gpu_stream *s);
int gpu_event_create(struct gpu_event **out);
void gpu_event_free(struct gpu_event **e);
int gpu_event_record(struct gpu_event *e, struct gpu_stream *s);
/* make stream s wait (on the device, not the host) until e has happened */
int gpu_stream_wait_event(struct gpu_stream *s, struct gpu_event *e);
int gpu_event_sync(struct gpu_event *e);
/* seconds between two recorded events (real device only; ISO_EUNAVAIL else) */
int gpu_event_elapsed(struct gpu_event *start, struct gpu_event *end, double *seconds);
/* host-to-device copy, asynchronous on s (NULL: synchronous). On the fake
 * device the source is read (so page-in and RSS behave as for real) and the
 * destination is not touched. */
int gpu_memcpy_h2d(void *dev, const void *host, uint64_t n, struct gpu_stream *s);
/* device-to-host, synchronous (tests and checksums; ISO_EUNAVAIL on fake) */
int gpu_memcpy_d2h(void *host, const void *dev, uint64_t n);
int gpu_memset(void *dev, int byte, uint64_t n);
int gpu_device_sync(void);

#ifdef ISOPIPE_CUDA
/* The CUDA side (gpu_cuda.cu); gpu.c is the only caller. Each returns 0 or
 * a negative status with iso_fail() done. */
int gpuc_init(int device, struct gpu_info *info, int *n_devices);
int gpuc_activate(void);   /* set the device and create its context (once) */
int gpuc_active(void);
int gpuc_mem_get(uint64_t *free_bytes, uint64_t *total_bytes);
int gpuc_malloc(void **p, uint64_t bytes);
void gpuc_free(void *p);
int gpuc_host_alloc(void **p, uint64_t bytes);
void gpuc_host_free(void *p);
int gpuc_stream_create(void **s);
void gpuc_stream_free(void *s);
int gpuc_stream_sync(void *s);
int gpuc_event_create(void **e);
void gpuc_event_free(void *e);
int gpuc_event_record(void *e, void *s);
int gpuc_stream_wait_event(void *s, void *e);
int gpuc_event_sync(void *e);
int gpuc_event_elapsed(void *a, void *b, float *ms);
int gpuc_memcpy_h2d(void *dev, const void *host, uint64_t n, void *s);
int gpuc_memcpy_d2h(void *host, const void *dev, uint64_t n);
int gpuc_memset(void *dev, int byte, uint64_t n);
int gpuc_device_sync(void);
#endif
#endif
