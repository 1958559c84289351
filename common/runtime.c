/* runtime.c — the memory life cycle of a model tool (see runtime.h). */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "sig.h"
#include "gpu.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"

#define MIB (UINT64_C(1) << 20)
/* how often a waiting process asks the ledger again */
#define RT_POLL_S 0.1

struct rt {
    const struct cli_common *c;
    enum mem_mode requested, mode;
    struct mem_plan plan;
    int have_plan;
    struct ledger *ledger;
    uint64_t reserved;
    double waited_s;
    int attempts;
    uint64_t free_seen, pending_seen;
    double t_load0, t_load1;
    int load_begun, load_ended, ended;
    /* beefy upload staging */
    void *stage[2];
    uint64_t stage_bytes;
    struct gpu_stream *copy;
    struct gpu_event *ev[2];
    int ev_pending[2];
    char fallback[256];       /* rt_fallback_cpu's why */
};

static void usage_hook(uint64_t own, void *ctx)
{
    struct rt *rt = ctx;
    /* the ledger's "used" lets other processes' fake devices and pending
     * sums see our real footprint; an error here must not fail the tool */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", iso_errmsg());
    if (rt->ledger && ledger_set_used(rt->ledger, own)) log_warn("ledger: %s", iso_errmsg());
    iso_fail(0, "%s", saved);
}

int rt_begin(const struct cli_common *c, struct rt **out)
{
    struct rt *rt = calloc(1, sizeof *rt);
    *out = rt;
    if (!rt) return iso_fail(ISO_EINTERNAL, "out of memory");
    rt->c = c;
    rt->requested = c->memory_mode;
    rt->mode = MEM_MODE_AUTO;
    /* the probe is registered by gpu_init, so "start" shows RAM only when
     * it comes first; discovery first gives "start" its VRAM line too */
    int rc = gpu_init(c->device);
    mem_checkpoint("start");
    return rc;
}

enum mem_mode rt_mode(const struct rt *rt) { return rt->mode; }

struct decide_ctx {
    const struct rt *rt;
    const struct mem_plan *p;
    enum mem_mode requested, got;
};

static void fill_env(const struct rt *rt, struct plan_env *e, uint64_t free_b, uint64_t pending)
{
    memset(e, 0, sizeof *e);
    e->gpu = gpu_present();
    e->vram_free = free_b;
    e->vram_reserve = (uint64_t)rt->c->vram_reserve_mib * MIB;
    e->others_pending = pending;
    e->host_budget = gpu_pinned_budget();
}

static int decide_cb(void *ctx, uint64_t free_b, uint64_t pending, uint64_t *reserve, const char **mode)
{
    struct decide_ctx *d = ctx;
    struct plan_env e;
    fill_env(d->rt, &e, free_b, pending);
    int rc = plan_decide(d->p, d->requested, &e, &d->got);
    if (rc) return rc;
    *reserve = d->p->mode[d->got].vram_peak;
    *mode = mem_mode_name(d->got);
    return 0;
}

/* others' pending reservations in the ledger, without reserving */
static uint64_t ledger_pending(void)
{
    struct ledger_entry *e = NULL;
    int n = 0;
    uint64_t pending = 0;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", iso_errmsg());
    if (ledger_read_key(gpu_get_info()->key, &e, &n) == 0) {
        for (int i = 0; i < n; i++)
            if (e[i].pid != getpid() && e[i].reserved > e[i].used) {
                uint64_t d = e[i].reserved - e[i].used; /* saturating: 2^63 + 2^63 is "all", not 0 */
                pending = pending > UINT64_MAX - d ? UINT64_MAX : pending + d;
            }
    }
    iso_fail(0, "%s", saved);
    free(e);
    return pending;
}

int rt_peek(struct rt *rt, const struct mem_plan *p, enum mem_mode *mode)
{
    struct plan_env e;
    uint64_t free_b = 0, total = 0;
    if (gpu_present()) {
        int rc = gpu_mem_get(&free_b, &total);
        if (rc) return rc;
    }
    fill_env(rt, &e, free_b, gpu_present() ? ledger_pending() : 0);
    return plan_decide(p, rt->requested, &e, mode);
}

json_t *rt_plan_json(struct rt *rt, const struct mem_plan *p)
{
    json_t *j = plan_to_json(p);
    enum mem_mode m;
    int rc = rt_peek(rt, p, &m);
    json_object_set_new(j, "requested", json_string(mem_mode_name(rt->requested)));
    if (rc == 0) {
        json_object_set_new(j, "auto_pick", json_string(mem_mode_name(m)));
    } else {
        json_object_set_new(j, "auto_pick", json_null());
        json_object_set_new(j, "auto_reason", json_string(iso_errmsg()));
    }
    const struct gpu_info *gi = gpu_get_info();
    json_t *dev = json_pack("{s:s, s:s}", "backend",
                            gi->backend == GPU_BACKEND_CUDA ? "cuda" : gi->backend == GPU_BACKEND_FAKE ? "fake" : "none",
                            "name", gi->name);
    uint64_t f, t;
    if (gpu_present() && gpu_mem_get(&f, &t) == 0) {
        json_object_set_new(dev, "free", json_integer((json_int_t)f));
        json_object_set_new(dev, "total", json_integer((json_int_t)t));
    }
    json_object_set_new(j, "device", dev);
    json_object_set_new(j, "vram_reserve", json_integer((json_int_t)(rt->c->vram_reserve_mib * (int64_t)MIB)));
    return j;
}

int rt_print_plan(struct rt *rt, const struct mem_plan *p, json_t *extra)
{
    json_t *pj = rt_plan_json(rt, p);
    if (pj && extra) json_object_update(pj, extra);
    json_decref(extra);
    char *txt = pj ? json_dumps(pj, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(pj);
    if (!txt) return iso_fail(ISO_EINTERNAL, "cannot format the plan");
    printf("%s\n", txt);
    free(txt);
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && !sig_interrupted()) {}
}

int rt_fallback_cpu(struct rt *rt, const char *why)
{
    if (rt->ledger && ledger_release(rt->ledger)) log_warn("ledger: %s", iso_errmsg());
    rt->reserved = 0;
    snprintf(rt->fallback, sizeof rt->fallback, "%s", why ? why : "");
    if (rt->mode == MEM_MODE_CPU) return 0;
    enum mem_mode from = rt->mode, m = MEM_MODE_CPU;
    struct plan_env e;
    fill_env(rt, &e, 0, 0);
    e.gpu = 0;
    int rc = rt->have_plan ? plan_decide(&rt->plan, MEM_MODE_CPU, &e, &m) : 0;
    if (rc) return iso_wrap(rc, "%s mode cannot run on the GPU (%s), and there is no cpu mode", mem_mode_name(from),
                            rt->fallback);
    rt->mode = MEM_MODE_CPU;
    log_warn("%s mode cannot run on the GPU (%s): its VRAM reservation is given back, going on in cpu mode "
             "(host RSS %.1f MiB)", mem_mode_name(from), rt->fallback,
             rt->have_plan ? rt->plan.mode[MEM_MODE_CPU].host_rss / (double)MIB : 0.0);
    return 0;
}

int rt_admit(struct rt *rt, const struct mem_plan *p, enum mem_mode *mode)
{
    int rc = 0;
    *mode = MEM_MODE_AUTO;
    rt->plan = *p;
    rt->have_plan = 1;
    struct plan_env e;
    if (!gpu_present() && gpu_unavailable_reason() && rt->requested != MEM_MODE_CPU &&
        (p->mode[MEM_MODE_BEEFY].possible || p->mode[MEM_MODE_LIGHTWEIGHT].possible))
        log_info("no usable GPU (%s): running on the CPU", gpu_unavailable_reason());
    if (!gpu_present() || rt->requested == MEM_MODE_CPU) {
        fill_env(rt, &e, 0, 0);
        rc = plan_decide(p, rt->requested, &e, &rt->mode);
        if (rc) goto done;
        goto admitted;
    }
    if (!p->mode[MEM_MODE_BEEFY].possible && !p->mode[MEM_MODE_LIGHTWEIGHT].possible) {
        /* a tool with no GPU path (the morph, a CPU-only build's plan): no
         * context, no reservation; an explicit GPU mode is refused below */
        fill_env(rt, &e, 0, 0);
        rc = plan_decide(p, rt->requested, &e, &rt->mode);
        if (rc) goto done;
        goto admitted;
    }
    /* the context is created now, not at discovery, so a run that ends up in
     * cpu mode never paid for it, and the decision below sees free VRAM net
     * of it (the plan does not count it: docs/memory.md) */
    if ((rc = gpu_activate())) goto done;
    if ((rc = ledger_open(gpu_get_info()->key, &rt->ledger))) goto done;
    struct decide_ctx d = { rt, p, rt->requested, MEM_MODE_AUTO };
    double t0 = mem_now(), wait = rt->c->wait_vram_s;
    for (;;) {
        rt->attempts++;
        rc = ledger_admit(rt->ledger, gpu_ledger_free_fn, NULL, decide_cb, &d, &rt->free_seen, &rt->pending_seen);
        rt->waited_s = mem_now() - t0;
        if (rc != ISO_ETEMPFAIL) break;
        if (rt->waited_s >= wait) break;
        if ((rc = sig_check())) break; /* a queued run stops at once on SIGTERM */
        if (rt->attempts == 1) log_info("waiting up to %.0f s for VRAM: %s", wait, iso_errmsg());
        double left = wait - rt->waited_s;
        sleep_s(left < RT_POLL_S ? left : RT_POLL_S);
    }
    if (rc) goto done;
    rt->mode = d.got;
    rt->reserved = p->mode[d.got].vram_peak;
    gpu_set_usage_hook(usage_hook, rt);
    usage_hook(gpu_own_bytes(), rt);
admitted:
    log_info("memory mode %s (requested %s): VRAM peak %.1f MiB, host RSS %.1f MiB%s", mem_mode_name(rt->mode),
             mem_mode_name(rt->requested), p->mode[rt->mode].vram_peak / (double)MIB,
             p->mode[rt->mode].host_rss / (double)MIB, rt->waited_s >= 0.05 ? " (after waiting)" : "");
    *mode = rt->mode;
done:
    /* ISO_EUNAVAIL (69) stays: a mode that can never run here (beefy without
     * a GPU, a GPU mode of a model that has none) is not "retry later", and a
     * scheduler that retries 75 would loop forever on it */
    if (rc == ISO_ETEMPFAIL && rt->attempts > 1)
        rc = iso_wrap(rc, "no room after waiting %.1f s", rt->waited_s);
    return rc;
}

void rt_checkpoint(struct rt *rt, const char *label)
{
    (void)rt;
    mem_checkpoint(label);
}

void rt_load_begin(struct rt *rt)
{
    mem_checkpoint("before load");
    rt->t_load0 = mem_now();
    rt->load_begun = 1;
}

void rt_load_end(struct rt *rt)
{
    rt->t_load1 = mem_now();
    rt->load_ended = 1;
    mem_checkpoint("after load");
}

void rt_cleanup_begin(struct rt *rt)
{
    (void)rt;
    mem_checkpoint("before cleanup");
}

double rt_load_seconds(const struct rt *rt)
{
    if (!rt->load_begun) return 0;
    return (rt->load_ended ? rt->t_load1 : mem_now()) - rt->t_load0;
}

static int stage_init(struct rt *rt)
{
    int rc;
    if (rt->stage[0]) return 0;
    uint64_t chunk = PLAN_UPLOAD_CHUNK;
    if (rt->have_plan && rt->plan.blocks.largest_tensor && rt->plan.blocks.largest_tensor < chunk)
        chunk = (rt->plan.blocks.largest_tensor + 4095) & ~(uint64_t)4095;
    rt->stage_bytes = chunk;
    if ((rc = gpu_stream_create(&rt->copy))) return rc;
    for (int k = 0; k < 2; k++) {
        if ((rc = gpu_host_alloc(chunk, &rt->stage[k]))) return iso_wrap(rc, "upload staging");
        if ((rc = gpu_event_create(&rt->ev[k]))) return rc;
    }
    return 0;
}

static void drop_pages(const void *host, uint64_t n)
{
    /* host lies in a read-only file mapping (the caller says so): whole
     * pages around it can go, they are read again from the file if needed */
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)host & ~(pg - 1);
    uintptr_t e = ((uintptr_t)host + n + pg - 1) & ~(pg - 1);
    madvise((void *)a, e - a, MADV_DONTNEED);
}

int rt_upload_to(struct rt *rt, void *dev, const void *host, uint64_t n, int mapped)
{
    int rc;
    if (!gpu_present()) return iso_fail(ISO_EINTERNAL, "upload without a GPU");
    if ((rc = stage_init(rt))) return rc;
    const uint8_t *src = host;
    uint8_t *dst = dev;
    int k = 0;
    /* pageable -> pinned chunk k (host memcpy) while chunk 1-k is on its
     * way to the device (DMA on the copy stream) */
    for (uint64_t off = 0; off < n; off += rt->stage_bytes, k ^= 1) {
        uint64_t len = n - off < rt->stage_bytes ? n - off : rt->stage_bytes;
        if (rt->ev_pending[k] && (rc = gpu_event_sync(rt->ev[k]))) return rc;
        memcpy(rt->stage[k], src + off, len);
        if ((rc = gpu_memcpy_h2d(dst + off, rt->stage[k], len, rt->copy))) return rc;
        if ((rc = gpu_event_record(rt->ev[k], rt->copy))) return rc;
        rt->ev_pending[k] = 1;
    }
    if ((rc = gpu_stream_sync(rt->copy))) return rc;
    rt->ev_pending[0] = rt->ev_pending[1] = 0;
    if (mapped && n) drop_pages(host, n);
    return 0;
}

int rt_upload(struct rt *rt, struct gpu_arena *arena, const void *host, uint64_t n, int mapped, void **dev)
{
    int rc = gpu_arena_alloc(arena, n, 0, dev);
    if (rc) return rc;
    return rt_upload_to(rt, *dev, host, n, mapped);
}

json_t *rt_memory_json(struct rt *rt)
{
    struct mem_sample s;
    mem_sample(&s);
    const struct gpu_info *gi = gpu_get_info();
    json_t *j = json_object();
    json_object_set_new(j, "mode", json_string(mem_mode_name(rt->mode)));
    json_object_set_new(j, "requested", json_string(mem_mode_name(rt->requested)));
    if (rt->fallback[0]) json_object_set_new(j, "fallback", json_string(rt->fallback));
    json_object_set_new(j, "plan", rt->have_plan ? plan_to_json(&rt->plan) : json_null());
    json_object_set_new(j, "peak_rss", json_integer((json_int_t)s.hwm));
    if (gpu_present()) {
        uint64_t pb = 0;
        int nvml = 0;
        if (gpu_process_bytes(&pb, &nvml) == 0) mem_note_vram(pb);
        json_object_set_new(j, "peak_vram", json_integer((json_int_t)mem_peak_vram()));
        json_object_set_new(j, "vram_source", json_string(gpu_is_fake() ? "fake" : nvml ? "nvml" : "accounting"));
    } else {
        json_object_set_new(j, "peak_vram", json_integer(0));
        json_object_set_new(j, "vram_source", json_string("none"));
    }
    json_object_set_new(j, "load_seconds", json_real(rt_load_seconds(rt)));
    json_object_set_new(j, "device",
                        json_pack("{s:s, s:s, s:I}", "backend",
                                  gi->backend == GPU_BACKEND_CUDA ? "cuda"
                                  : gi->backend == GPU_BACKEND_FAKE ? "fake"
                                                                    : "none",
                                  "name", gi->name, "total", (json_int_t)gi->total));
    json_object_set_new(j, "admission",
                        json_pack("{s:I, s:f, s:i, s:I, s:I, s:I}", "reserved", (json_int_t)rt->reserved,
                                  "waited_seconds", rt->waited_s, "attempts", rt->attempts, "free_seen",
                                  (json_int_t)rt->free_seen, "others_pending_seen", (json_int_t)rt->pending_seen,
                                  "vram_reserve", (json_int_t)(rt->c->vram_reserve_mib * (int64_t)MIB)));
    json_object_set_new(j, "checkpoints", mem_checkpoints_json());
    /* the same clock as the checkpoints' "time" (CLOCK_MONOTONIC, shared by
     * all processes): lets timelines line up runs of several tools */
    json_object_set_new(j, "reported_at", json_real(mem_now()));
    return j;
}

int rt_end(struct rt **rtp, int status)
{
    struct rt *rt = *rtp;
    if (!rt) return status;
    gpu_set_usage_hook(NULL, NULL);
    if (rt->copy) gpu_stream_sync(rt->copy);
    for (int k = 0; k < 2; k++) {
        gpu_host_free(rt->stage[k], rt->stage_bytes);
        gpu_event_free(&rt->ev[k]);
    }
    gpu_stream_free(&rt->copy);
    /* release before "end", so the end line and any waiter see it gone */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", iso_errmsg());
    ledger_close(&rt->ledger);
    iso_fail(0, "%s", saved);
    if (!rt->ended) mem_checkpoint("end");
    rt->ended = 1;
    gpu_shutdown();
    free(rt);
    *rtp = NULL;
    return status;
}
