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

/* First line of a cgroup file as a byte count; 0 for "max", a missing or
 * unreadable file, or cgroup v1's "no limit" (a huge page-rounded number). */
static int read_cg_file(const char *dir, const char *name, uint64_t *out)
{
    char path[1200], buf[64] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!ok) return -1;
    *out = 0;
    if (strncmp(buf, "max", 3) == 0) return 0;
    if (buf[0] < '0' || buf[0] > '9') return -1;
    uint64_t v = strtoull(buf, NULL, 10);
    *out = v >= (UINT64_C(1) << 60) ? 0 : v;
    return 0;
}

/* Walk from the process's cgroup up to the mount root: a limit set on any
 * ancestor binds too (cgroup v2 docs, "memory.max"; v1 with use_hierarchy),
 * so keep the one with the least room left. */
static void walk_cgroup(const char *mount, const char *rel, const char *fmax, const char *fcur, uint64_t *best_max,
                        uint64_t *best_cur)
{
    char r[600];
    snprintf(r, sizeof r, "%s", rel);
    for (;;) {
        char dir[1200];
        size_t rl = strlen(r);
        while (rl > 1 && r[rl - 1] == '/') r[--rl] = 0;
        snprintf(dir, sizeof dir, "%s%s", mount, strcmp(r, "/") == 0 ? "" : r);
        uint64_t mx = 0, cur = 0;
        if (read_cg_file(dir, fmax, &mx) == 0 && mx) {
            read_cg_file(dir, fcur, &cur);
            uint64_t room = mx > cur ? mx - cur : 0;
            uint64_t best_room = *best_max > *best_cur ? *best_max - *best_cur : 0;
            if (!*best_max || room < best_room) { *best_max = mx; *best_cur = cur; }
        }
        char *slash = strrchr(r, '/');
        if (!slash || (slash == r && r[1] == 0)) break;
        if (slash == r) r[1] = 0;
        else *slash = 0;
    }
}

int mem_cgroup_limit(const char *proc_cgroup, const char *root, uint64_t *max, uint64_t *current)
{
    *max = *current = 0;
    FILE *f = fopen(proc_cgroup, "re");
    if (!f) return -1;
    char line[1024], v2[600] = "", v1[600] = "";
    int have_v2 = 0, have_v1 = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        /* "hierarchy-ID:controller-list:cgroup-path" (cgroups(7)); v2 is "0::path" */
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        if (strncmp(line, "0::", 3) == 0) { snprintf(v2, sizeof v2, "%s", c2 + 1); have_v2 = 1; continue; }
        *c2 = 0;
        char *save = NULL;
        for (char *t = strtok_r(c1 + 1, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (strcmp(t, "memory") == 0) { snprintf(v1, sizeof v1, "%s", c2 + 1); have_v1 = 1; }
    }
    fclose(f);
    char mount[700];
    if (have_v2 && v2[0] == '/') walk_cgroup(root, v2, "memory.max", "memory.current", max, current);
    if (have_v1 && v1[0] == '/') {
        snprintf(mount, sizeof mount, "%s/memory", root);
        walk_cgroup(mount, v1, "memory.limit_in_bytes", "memory.usage_in_bytes", max, current);
    }
    return 0;
}

int mem_sample(struct mem_sample *s)
{
    memset(s, 0, sizeof *s);
    s->rss = read_kb_field("/proc/self/status", "VmRSS");
    s->hwm = read_kb_field("/proc/self/status", "VmHWM");
    /* the kernel updates VmHWM lazily from per-thread RSS counters, so it can
     * read a few hundred KiB below VmRSS; a peak is never below the present */
    if (s->hwm < s->rss) s->hwm = s->rss;
    s->total = read_kb_field("/proc/meminfo", "MemTotal");
    s->available = read_kb_field("/proc/meminfo", "MemAvailable");
    mem_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup", &s->cgroup_max, &s->cgroup_current);
    return s->total ? 0 : -1;
}

uint64_t mem_host_budget(void)
{
    struct mem_sample s;
    mem_sample(&s);
    uint64_t b = s.available;
    /* test-only: pretend MemAvailable is this small (it can only lower the
     * budget), so a "too big for RAM" path is testable on any machine */
    const char *fake = getenv("ISOPIPE_FAKE_MEM_AVAILABLE_MiB");
    if (fake && *fake) {
        char *end;
        unsigned long long mib = strtoull(fake, &end, 10);
        if (!*end && mib < b >> 20) b = (uint64_t)mib << 20;
    }
    if (s.cgroup_max) {
        uint64_t room = s.cgroup_max > s.cgroup_current ? s.cgroup_max - s.cgroup_current : 0;
        if (room < b) b = room;
    }
    return b;
}

void mem_set_vram_probe(mem_vram_probe_fn fn) { g_probe = fn; }

void mem_fmt(char *buf, size_t n, uint64_t bytes)
{
    /* one convention in every log line: binary units, labelled; GiB from 1 GiB on */
    if (bytes < (UINT64_C(1) << 30)) snprintf(buf, n, "%.1f MiB", bytes / 1048576.0);
    else snprintf(buf, n, "%.2f GiB", bytes / 1073741824.0);
}

static double g_t_start = -1; /* the first checkpoint ("start"): the run's wall clock */

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
    double now = mem_now();
    if (g_t_start < 0) g_t_start = now;
    char proc[64], hwm[64], avail[64];
    mem_fmt(proc, sizeof proc, s.rss);
    mem_fmt(hwm, sizeof hwm, s.hwm);
    mem_fmt(avail, sizeof avail, s.available);
    double used = s.total ? 100.0 * (double)(s.total - s.available) / (double)s.total : 0;
    char run[160] = "";
    if (!strcmp(label, "end")) {
        /* the run in one line: peak RSS above, peak VRAM and wall time here */
        char pv[64];
        mem_fmt(pv, sizeof pv, g_peak_vram);
        snprintf(run, sizeof run, " | run: peak RSS %s, peak VRAM %s, wall %.2f s", hwm, pv, now - g_t_start);
    }
    log_tagged(LOG_INFO, "[RAM]", "%s: Process=%s (peak %s) | System=%.1f%% used, %s available%s", label, proc, hwm, used,
               avail, run);
    json_t *ev = json_pack("{s:s, s:f, s:I, s:I, s:f, s:I}", "label", label, "time", mem_now(), "rss",
                           (json_int_t)s.rss, "hwm", (json_int_t)s.hwm, "sys_used_pct", used, "available",
                           (json_int_t)s.available);
    uint64_t vp = 0, vf = 0, vt = 0;
    if (g_probe && g_probe(&vp, &vf, &vt) == 0) {
        char pf[64], ff[64], tf[64], pk[64];
        mem_note_vram(vp);
        if (vp == UINT64_MAX) snprintf(pf, sizeof pf, "unknown");
        else mem_fmt(pf, sizeof pf, vp);
        mem_fmt(pk, sizeof pk, g_peak_vram);
        mem_fmt(ff, sizeof ff, vf);
        mem_fmt(tf, sizeof tf, vt);
        log_tagged(LOG_INFO, "[VRAM]", "%s: Process=%s (peak %s), Device free=%s/total=%s", label, pf, pk, ff, tf);
        if (vp != UINT64_MAX) json_object_set_new(ev, "vram_process", json_integer((json_int_t)vp));
        json_object_set_new(ev, "vram_free", json_integer((json_int_t)vf));
        json_object_set_new(ev, "vram_total", json_integer((json_int_t)vt));
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
