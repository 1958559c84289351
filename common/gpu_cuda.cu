// gpu_cuda.cu — the CUDA runtime half of common/gpu (gpuc_* in gpu.h).
// Every CUDA call's status is checked and turned into an ISO_E* status with
// the call named in the message. Discovery failures (no driver, no device)
// are ISO_EUNAVAIL so gpu_init can fall back to CPU mode: with the static
// runtime (-lcudart_static) a binary starts without libcuda and
// cudaGetDeviceCount reports cudaErrorInsufficientDriver / NoDevice.
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "err.h"
#include "gpu.h"
}

#define CK(call, code)                                                                          \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess) return iso_fail((code), "%s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)

// The context (300-550 MiB of VRAM, by card and driver) is created only when
// a GPU mode is chosen (gpuc_activate, from rt_admit) or a call needs it: a
// CUDA build running in cpu mode, or vram-probe, takes no VRAM at all. The
// discovery below (device count, properties, PCI id) needs no context.
static int g_device = -1, g_active;

extern "C" int gpuc_activate(void)
{
    if (g_active) return 0;
    if (g_device < 0) return iso_fail(ISO_EUNAVAIL, "no CUDA device was discovered");
    CK(cudaSetDevice(g_device), ISO_EUNAVAIL);
    CK(cudaFree(0), ISO_EUNAVAIL);
    g_active = 1;
    return 0;
}

extern "C" int gpuc_active(void) { return g_active; }

#define ENSURE()                                 \
    do {                                         \
        int r_ = gpuc_activate();                \
        if (r_) return r_;                       \
    } while (0)

extern "C" int gpuc_init(int device, struct gpu_info *info, int *n_devices)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();   // clear the sticky-free error so later calls start clean
        // in words a user can act on, the runtime's own string after them
        int rv = 0;
        cudaRuntimeGetVersion(&rv);
        if (e == cudaErrorInsufficientDriver)
            return iso_fail(ISO_EUNAVAIL, "no NVIDIA driver, or one older than this build's CUDA %d.%d needs", rv / 1000,
                            rv % 1000 / 10);
        if (e == cudaErrorNoDevice) return iso_fail(ISO_EUNAVAIL, "no NVIDIA GPU found");
        return iso_fail(ISO_EUNAVAIL, "the GPU cannot be used (%s)", cudaGetErrorString(e));
    }
    *n_devices = n;
    if (n == 0) return iso_fail(ISO_EUNAVAIL, "no NVIDIA GPU found");
    if (device < 0 || device >= n)
        return iso_fail(ISO_EUSAGE, "--device %d: there %s %d CUDA device%s", device, n == 1 ? "is" : "are", n,
                        n == 1 ? "" : "s");
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, device), ISO_EUNAVAIL);
    g_device = device;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->total = p.totalGlobalMem;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->device = device;
    char pci[32] = "";
    CK(cudaDeviceGetPCIBusId(pci, sizeof pci, device), ISO_EUNAVAIL);
    snprintf(info->pci, sizeof info->pci, "%s", pci);
    // a file-name-safe, stable key: the PCI bus id does not change with
    // CUDA_VISIBLE_DEVICES, the ordinal does
    char key[64];
    snprintf(key, sizeof key, "pci-%s", pci);
    for (char *c = key; *c; c++)
        if (*c == ':' || *c == '.') *c = '-';
    snprintf(info->key, sizeof info->key, "%s", key);
    return 0;
}

extern "C" int gpuc_mem_get(uint64_t *free_bytes, uint64_t *total_bytes)
{
    ENSURE();
    size_t f = 0, t = 0;
    CK(cudaMemGetInfo(&f, &t), ISO_EIO);
    *free_bytes = f;
    *total_bytes = t;
    return 0;
}

extern "C" int gpuc_malloc(void **p, uint64_t bytes)
{
    ENSURE();
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *p = NULL;
        return iso_fail(e == cudaErrorMemoryAllocation ? ISO_ETEMPFAIL : ISO_EIO, "cudaMalloc(%llu): %s",
                        (unsigned long long)bytes, cudaGetErrorString(e));
    }
    return 0;
}

extern "C" void gpuc_free(void *p) { cudaFree(p); }

extern "C" int gpuc_host_alloc(void **p, uint64_t bytes)
{
    ENSURE();
    cudaError_t e = cudaHostAlloc(p, bytes, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        cudaGetLastError();
        *p = NULL;
        return iso_fail(ISO_ETEMPFAIL, "cudaHostAlloc(%llu): %s", (unsigned long long)bytes, cudaGetErrorString(e));
    }
    return 0;
}

extern "C" void gpuc_host_free(void *p) { cudaFreeHost(p); }

extern "C" int gpuc_stream_create(void **s)
{
    ENSURE();
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), ISO_EIO);
    *s = st;
    return 0;
}

extern "C" void gpuc_stream_free(void *s) { cudaStreamDestroy((cudaStream_t)s); }
extern "C" int gpuc_stream_sync(void *s)
{
    CK(cudaStreamSynchronize((cudaStream_t)s), ISO_EIO);
    return 0;
}

extern "C" int gpuc_event_create(void **e)
{
    ENSURE();
    cudaEvent_t ev;
    CK(cudaEventCreate(&ev), ISO_EIO);
    *e = ev;
    return 0;
}

extern "C" void gpuc_event_free(void *e) { cudaEventDestroy((cudaEvent_t)e); }
extern "C" int gpuc_event_record(void *e, void *s)
{
    CK(cudaEventRecord((cudaEvent_t)e, (cudaStream_t)s), ISO_EIO);
    return 0;
}
extern "C" int gpuc_stream_wait_event(void *s, void *e)
{
    CK(cudaStreamWaitEvent((cudaStream_t)s, (cudaEvent_t)e, 0), ISO_EIO);
    return 0;
}
extern "C" int gpuc_event_sync(void *e)
{
    CK(cudaEventSynchronize((cudaEvent_t)e), ISO_EIO);
    return 0;
}
extern "C" int gpuc_event_elapsed(void *a, void *b, float *ms)
{
    CK(cudaEventElapsedTime(ms, (cudaEvent_t)a, (cudaEvent_t)b), ISO_EIO);
    return 0;
}
extern "C" int gpuc_memcpy_h2d(void *dev, const void *host, uint64_t n, void *s)
{
    ENSURE();
    if (s) CK(cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, (cudaStream_t)s), ISO_EIO);
    else CK(cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice), ISO_EIO);
    return 0;
}
extern "C" int gpuc_memcpy_d2h(void *host, const void *dev, uint64_t n)
{
    ENSURE();
    CK(cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost), ISO_EIO);
    return 0;
}
extern "C" int gpuc_memset(void *dev, int byte, uint64_t n)
{
    ENSURE();
    CK(cudaMemset(dev, byte, n), ISO_EIO);
    return 0;
}
extern "C" int gpuc_device_sync(void)
{
    ENSURE();
    CK(cudaDeviceSynchronize(), ISO_EIO);
    return 0;
}
