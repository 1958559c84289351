#include "mem.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static mem_vram_probe_fn g_probe;
static json_t *g_checkpoints;
static uint64_t g_peak_vram;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

double mem_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t read_kb_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    char line[256];
    size_t klen = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoull(line + klen + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

/* cgroup v2: the process's cgroup path from /proc/self/cgroup ("0::/path") */
static uint64_t read_cgroup_value(const char *file_v2, const char *file_v1)
{
    char path[600], rel[400] = "";
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::", 3) == 0) {
                snprintf(rel, sizeof rel, "%s", line + 3);
                rel[strcspn(rel, "\n")] = 0;
            }
        }
        fclose(f);
    }
    const char *cands[3] = { NULL, NULL, NULL };
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "/sys/fs/cgroup%s/%s", strcmp(rel, "/") ? rel : "", file_v2);
    snprintf(p2, sizeof p2, "/sys/fs/cgroup/%s", file_v2);
    cands[0] = p1;
    cands[1] = p2;
    cands[2] = file_v1;
    for (int i = 0; i < 3; i++) {
        if (!cands[i]) continue;
        snprintf(path, sizeof path, "%s", cands[i]);
        f = fopen(path, "re");
        if (!f) continue;
        char buf[64] = "";
        char *ok = fgets(buf, sizeof buf, f);
        fclose(f);
        if (!ok) continue;
        if (strncmp(buf, "max", 3) == 0) return 0;
        uint64_t v = strtoull(buf, NULL, 10);
        /* cgroup v1 reports "no limit" as a huge page-rounded number */
        if (v >= (UINT64_C(1) << 60)) return 0;
        return v;
    }
    return 0;
}

int mem_sample(struct mem_sample *s)
{
    memset(s, 0, sizeof *s);
    s->rss = read_kb_field("/proc/self/status", "VmRSS");
    s->hwm = read_kb_field("/proc/self/status", "VmHWM");
    s->total = read_kb_field("/proc/meminfo", "MemTotal");
    s->available = read_kb_field("/proc/meminfo", "MemAvailable");
    s->cgroup_max = read_cgroup_value("memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes");
    s->cgroup_current = s->cgroup_max ? read_cgroup_value("memory.current", "/sys/fs/cgroup/memory/memory.usage_in_bytes") : 0;
    return s->total ? 0 : -1;
}

uint64_t mem_host_budget(void)
{
    struct mem_sample s;
    mem_sample(&s);
    uint64_t b = s.available;
    if (s.cgroup_max) {
        uint64_t room = s.cgroup_max > s.cgroup_current ? s.cgroup_max - s.cgroup_current : 0;
        if (room < b) b = room;
    }
    return b;
}

void mem_set_vram_probe(mem_vram_probe_fn fn) { g_probe = fn; }

void mem_fmt(char *buf, size_t n, uint64_t bytes)
{
    snprintf(buf, n, "%.0fMB (%.2fGB)", bytes / 1048576.0, bytes / 1073741824.0);
}

void mem_note_vram(uint64_t b)
{
    pthread_mutex_lock(&g_lock);
    if (b != UINT64_MAX && b > g_peak_vram) g_peak_vram = b;
    pthread_mutex_unlock(&g_lock);
}

uint64_t mem_peak_vram(void) { return g_peak_vram; }

void mem_checkpoint(const char *label)
{
    struct mem_sample s;
    mem_sample(&s);
    char proc[64];
    mem_fmt(proc, sizeof proc, s.rss);
    double used = s.total ? 100.0 * (double)(s.total - s.available) / (double)s.total : 0;
    log_tagged(LOG_INFO, "[RAM]", "%s: Process=%s | System=%.1f%% used, %.1fGB available", label, proc, used,
               s.available / 1073741824.0);
    json_t *ev = json_pack("{s:s, s:f, s:I, s:I, s:f, s:I}", "label", label, "time", mem_now(), "rss",
                           (json_int_t)s.rss, "hwm", (json_int_t)s.hwm, "sys_used_pct", used, "available",
                           (json_int_t)s.available);
    uint64_t vp = 0, vf = 0, vt = 0;
    if (g_probe && g_probe(&vp, &vf, &vt) == 0) {
        char pf[64], ff[64], tf[64];
        if (vp == UINT64_MAX) snprintf(pf, sizeof pf, "unknown");
        else mem_fmt(pf, sizeof pf, vp);
        mem_fmt(ff, sizeof ff, vf);
        mem_fmt(tf, sizeof tf, vt);
        log_tagged(LOG_INFO, "[VRAM]", "%s: Process=%s, Device free=%s/total=%s", label, pf, ff, tf);
        if (vp != UINT64_MAX) json_object_set_new(ev, "vram_process", json_integer((json_int_t)vp));
        json_object_set_new(ev, "vram_free", json_integer((json_int_t)vf));
        json_object_set_new(ev, "vram_total", json_integer((json_int_t)vt));
        mem_note_vram(vp);
    }
    pthread_mutex_lock(&g_lock);
    if (!g_checkpoints) g_checkpoints = json_array();
    json_array_append(g_checkpoints, ev);
    pthread_mutex_unlock(&g_lock);
    log_event("checkpoint", ev);
}

json_t *mem_checkpoints_json(void)
{
    pthread_mutex_lock(&g_lock);
    json_t *r = g_checkpoints ? json_deep_copy(g_checkpoints) : json_array();
    pthread_mutex_unlock(&g_lock);
    return r;
}
