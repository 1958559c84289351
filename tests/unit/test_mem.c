/* test_mem.c — host memory facts and checkpoints (common/mem.c): VmRSS and
 * VmHWM follow a 64 MiB allocation (checked against a separate reading of
 * /proc/self/status), MemAvailable, the cgroup limit parser on fake v1 and
 * v2 trees, the checkpoint line of docs/DESIGN.md character by character, the
 * VRAM line from a registered probe, and the JSON event and report array. */
#include <fcntl.h>
#include <inttypes.h>
#include <regex.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "log.h"
#include "mem.h"
#include "test.h"

static char dir[600];

static char *P(const char *name) { return test_path_in(dir, name); }

static void put(const char *rel, const char *s)
{
    char *p = P(rel);
    char *d = fs_dirname(p);
    fs_mkdir_p(d);
    free(d);
    FILE *f = fopen(p, "wb");
    if (f) { fputs(s, f); fclose(f); }
}

static int saved = -1;
static char cap_path[700];
static void cap_begin(void)
{
    snprintf(cap_path, sizeof cap_path, "%s/stderr.txt", dir);
    fflush(stderr);
    saved = dup(2);
    int fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}
static char *cap_end(void)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *d;
    size_t n;
    return fs_read_all(cap_path, &d, &n, 1 << 20) ? strdup("") : d;
}

/* an independent reading of "Key:   123 kB" from a /proc file, in bytes */
static uint64_t proc_kb(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
    char line[256];
    uint64_t v = 0;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { sscanf(line + kl + 1, "%" SCNu64, &v); v *= 1024; break; }
    if (f) fclose(f);
    return v;
}

static void test_sample(void)
{
    TEST("VmRSS, VmHWM, MemAvailable");
    struct mem_sample a, b, c;
    CHECK(mem_sample(&a) == 0);
    CHECK(a.rss > 0 && a.hwm >= a.rss && a.total > 0 && a.available > 0 && a.available <= a.total);
    uint64_t ref = proc_kb("/proc/self/status", "VmRSS");
    CHECK_NEAR((double)a.rss, (double)ref, 8 << 20);
    CHECK_NEAR((double)a.total, (double)proc_kb("/proc/meminfo", "MemTotal"), 0);
    size_t n = (size_t)64 << 20;
    volatile uint8_t *blk = malloc(n);
    CHECK(blk != NULL);
    if (!blk) return;
    for (size_t i = 0; i < n; i += 4096) blk[i] = (uint8_t)i; /* touch every page */
    CHECK(mem_sample(&b) == 0);
    CHECKF(b.rss >= a.rss + (60u << 20), "rss %" PRIu64 " -> %" PRIu64, a.rss, b.rss);
    CHECKF(b.hwm >= b.rss && b.hwm >= a.hwm + (60u << 20) - (a.hwm - a.rss), "hwm %" PRIu64 ", rss %" PRIu64, b.hwm, b.rss);
    free((void *)blk);
    CHECK(mem_sample(&c) == 0);
    /* the peak remembers what the allocation reached after it is gone (less
     * the kernel's lag in folding per-thread RSS counters into VmHWM: up to
     * 64 page events per thread, so 1 MiB is ample) */
    CHECKF(c.hwm + (1u << 20) >= b.rss && c.hwm >= a.rss + (60u << 20), "hwm %" PRIu64 " < earlier rss %" PRIu64, c.hwm, b.rss);
    uint64_t budget = mem_host_budget();
    CHECK(budget > 0 && budget <= c.total);
    if (c.cgroup_max) CHECK(budget <= c.cgroup_max);
    char buf[64];
    mem_fmt(buf, sizeof buf, (uint64_t)812 << 20);
    CHECK_STR(buf, "812.0 MiB");
    mem_fmt(buf, sizeof buf, 0);
    CHECK_STR(buf, "0.0 MiB");
    mem_fmt(buf, sizeof buf, ((uint64_t)1 << 30) - 1);
    CHECK_STR(buf, "1024.0 MiB");
    mem_fmt(buf, sizeof buf, (uint64_t)1 << 30);
    CHECK_STR(buf, "1.00 GiB");
    mem_fmt(buf, sizeof buf, (uint64_t)14250 << 20);
    CHECK_STR(buf, "13.92 GiB");
    double t0 = mem_now();
    usleep(20000);
    CHECK(mem_now() - t0 >= 0.019 && mem_now() - t0 < 1.0);
}

static void test_cgroup(void)
{
    TEST("cgroup limits on fake trees");
    uint64_t mx, cur;
    /* v2, the limit on the parent, "max" on the process's own cgroup */
    put("A/proc", "0::/a/b\n");
    put("A/cg/a/b/memory.max", "max\n");
    put("A/cg/a/b/memory.current", "100\n");
    put("A/cg/a/memory.max", "1000000\n");
    put("A/cg/a/memory.current", "400000\n");
    CHECK(mem_cgroup_limit(P("A/proc"), P("A/cg"), &mx, &cur) == 0);
    CHECKF(mx == 1000000 && cur == 400000, "max %" PRIu64 " current %" PRIu64, mx, cur);
    /* v2, the leaf has less room left than its parent */
    put("B/proc", "0::/a/b\n");
    put("B/cg/a/b/memory.max", "500000\n");
    put("B/cg/a/b/memory.current", "300000\n");
    put("B/cg/a/memory.max", "1000000\n");
    put("B/cg/a/memory.current", "350000\n");
    CHECK(mem_cgroup_limit(P("B/proc"), P("B/cg"), &mx, &cur) == 0 && mx == 500000 && cur == 300000);
    /* v2 in a cgroup namespace: the process sees itself at "/" */
    put("C/proc", "0::/\n");
    put("C/cg/memory.max", "2147483648\n");
    put("C/cg/memory.current", "1073741824\n");
    CHECK(mem_cgroup_limit(P("C/proc"), P("C/cg"), &mx, &cur) == 0 && mx == 2147483648u && cur == 1073741824u);
    /* v2 without a namespace: the path is not under the mount, its root holds the limit */
    put("D/proc", "0::/docker/0123abcd\n");
    put("D/cg/memory.max", "3000000\n");
    put("D/cg/memory.current", "1000\n");
    CHECK(mem_cgroup_limit(P("D/proc"), P("D/cg"), &mx, &cur) == 0 && mx == 3000000 && cur == 1000);
    /* v1 (hybrid, like this CI machine): memory controller line, "no limit" is 2^63 rounded to pages */
    put("E/proc", "9:name=systemd:/\n4:memory:/process_api/c99d\n1:cpu:/\n0::/\n");
    put("E/cg/memory/process_api/c99d/memory.limit_in_bytes", "9223372036854771712\n");
    put("E/cg/memory/process_api/c99d/memory.usage_in_bytes", "730578944\n");
    put("E/cg/memory/process_api/memory.limit_in_bytes", "536870912\n");
    put("E/cg/memory/process_api/memory.usage_in_bytes", "100000000\n");
    put("E/cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
    CHECK(mem_cgroup_limit(P("E/proc"), P("E/cg"), &mx, &cur) == 0);
    CHECKF(mx == 536870912 && cur == 100000000, "max %" PRIu64 " current %" PRIu64, mx, cur);
    /* v1 with the memory controller co-mounted with another */
    put("F/proc", "3:cpu,memory:/g\n");
    put("F/cg/memory/g/memory.limit_in_bytes", "4096000\n");
    put("F/cg/memory/g/memory.usage_in_bytes", "96000\n");
    CHECK(mem_cgroup_limit(P("F/proc"), P("F/cg"), &mx, &cur) == 0 && mx == 4096000 && cur == 96000);
    /* no limit anywhere; unreadable values; a missing /proc file */
    put("G/proc", "0::/x\n");
    put("G/cg/x/memory.max", "max\n");
    put("G/cg/memory.max", "garbage\n");
    CHECK(mem_cgroup_limit(P("G/proc"), P("G/cg"), &mx, &cur) == 0 && mx == 0 && cur == 0);
    CHECK(mem_cgroup_limit(P("nope/proc"), P("G/cg"), &mx, &cur) == -1 && mx == 0);
    /* the real machine: whatever it has, a sample agrees with a direct call */
    struct mem_sample s;
    mem_sample(&s);
    CHECK(mem_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup", &mx, &cur) == 0 && mx == s.cgroup_max);
}

static uint64_t fake_proc = (uint64_t)1536 << 20, fake_free = (uint64_t)10 << 30, fake_total = (uint64_t)80 << 30;
static int fake_probe(uint64_t *p, uint64_t *f, uint64_t *t) { *p = fake_proc; *f = fake_free; *t = fake_total; return 0; }
static int no_probe(uint64_t *p, uint64_t *f, uint64_t *t) { return -1; }

static void test_checkpoint(void)
{
    TEST("checkpoint line, VRAM line, JSON event");
    char ev[700];
    snprintf(ev, sizeof ev, "%s/ev.jsonl", dir);
    CHECK(log_init("segment-gen", "Task42", LOG_INFO, ev) == 0);
    cap_begin();
    mem_checkpoint("after load");
    char *out = cap_end();
    /* docs/DESIGN.md: [Task ID] [RAM] after load: Process=812.0 MiB (peak 830.5 MiB) | System=41.2% used, 13.92 GiB available */
    regex_t re;
    regcomp(&re, "^\\[Task42\\] \\[RAM\\] after load: Process=([0-9]+\\.[0-9]) MiB \\(peak ([0-9]+\\.[0-9]) MiB\\) \\| "
                 "System=([0-9]+\\.[0-9])% used, ([0-9]+\\.[0-9]{2}) GiB available\n$", REG_EXTENDED);
    regmatch_t m[5];
    int match = regexec(&re, out, 5, m, 0) == 0;
    CHECKF(match, "line: '%s'", out);
    if (match) {
        double mb = atof(out + m[1].rm_so), peak = atof(out + m[2].rm_so), pct = atof(out + m[3].rm_so),
               avail = atof(out + m[4].rm_so);
        double rss = (double)proc_kb("/proc/self/status", "VmRSS"), hwm = (double)proc_kb("/proc/self/status", "VmHWM"),
               total = (double)proc_kb("/proc/meminfo", "MemTotal"), mavail = (double)proc_kb("/proc/meminfo", "MemAvailable");
        CHECK_NEAR(mb, rss / 1048576.0, 8);
        CHECK_NEAR(peak, hwm / 1048576.0, 8);
        CHECK(peak >= mb);
        CHECK_NEAR(avail, mavail / 1073741824.0, 0.5);
        CHECK_NEAR(pct, 100.0 * (total - mavail) / total, 3);
    }
    regfree(&re);
    free(out);

    /* with a VRAM probe: a second line, and the figures in the event */
    mem_set_vram_probe(fake_probe);
    cap_begin();
    mem_checkpoint("before cleanup");
    out = cap_end();
    char *vram = strstr(out, "\n[Task42] [VRAM] ");
    CHECKF(vram && strcmp(vram + 1, "[Task42] [VRAM] before cleanup: Process=1.50 GiB (peak 1.50 GiB), Device free=10.00 GiB/total=80.00 GiB\n") == 0,
           "'%s'", out);
    free(out);
    CHECK(mem_peak_vram() == fake_proc);
    fake_proc = UINT64_MAX; /* the driver cannot tell the process's own use */
    cap_begin();
    mem_checkpoint("end");
    out = cap_end();
    CHECKF(strstr(out, "[Task42] [VRAM] end: Process=unknown (peak 1.50 GiB), Device free=") != NULL, "'%s'", out);
    /* the end line sums the run up: peak RSS, peak VRAM, wall time */
    CHECKF(strstr(out, "| run: peak RSS ") && strstr(out, ", peak VRAM 1.50 GiB, wall "), "'%s'", out);
    free(out);
    CHECK(mem_peak_vram() == (uint64_t)1536 << 20);
    mem_note_vram((uint64_t)2 << 30);
    mem_note_vram(1);
    CHECK(mem_peak_vram() == (uint64_t)2 << 30);
    mem_set_vram_probe(no_probe);
    cap_begin();
    mem_checkpoint("no device");
    out = cap_end();
    CHECK(strstr(out, "[RAM] no device:") && !strstr(out, "[VRAM]"));
    free(out);
    mem_set_vram_probe(NULL);
    /* quiet: no line, but still recorded */
    log_set_level(LOG_ERROR);
    cap_begin();
    mem_checkpoint("quiet");
    out = cap_end();
    CHECK_STR(out, "");
    free(out);
    log_set_level(LOG_INFO);
    log_close();

    /* the JSON events, one per checkpoint */
    char *d;
    size_t n;
    CHECK(fs_read_all(ev, &d, &n, 1 << 20) == 0);
    int lines = 0;
    json_t *second = NULL;
    char *save = NULL;
    for (char *l = strtok_r(d, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        CHECK(json_is_object(j));
        CHECK_STR(json_string_value(json_object_get(j, "event")), "checkpoint");
        CHECK_STR(json_string_value(json_object_get(j, "task_id")), "Task42");
        if (lines == 0) {
            CHECK_STR(json_string_value(json_object_get(j, "label")), "after load");
            CHECK(json_integer_value(json_object_get(j, "rss")) > 0);
            CHECK(json_integer_value(json_object_get(j, "hwm")) >= json_integer_value(json_object_get(j, "rss")));
            CHECK(json_integer_value(json_object_get(j, "available")) > 0);
            CHECK(json_is_number(json_object_get(j, "sys_used_pct")));
            CHECK(!json_object_get(j, "vram_free"));
        }
        if (lines == 1) second = json_incref(j);
        json_decref(j);
        lines++;
    }
    free(d);
    CHECK(lines == 5);
    CHECK(second && json_integer_value(json_object_get(second, "vram_process")) == (json_int_t)1536 << 20);
    CHECK(second && json_integer_value(json_object_get(second, "vram_total")) == (json_int_t)80 << 30);
    json_decref(second);
    /* and the report array keeps them all, in order */
    json_t *all = mem_checkpoints_json();
    CHECK(json_array_size(all) == 5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(all, 0), "label")), "after load");
    CHECK_STR(json_string_value(json_object_get(json_array_get(all, 4), "label")), "quiet");
    CHECK(!json_object_get(json_array_get(all, 2), "vram_process") && json_object_get(json_array_get(all, 2), "vram_free"));
    json_decref(all);
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    test_sample();
    test_cgroup();
    test_checkpoint();
    fs_rm_rf(dir);
    return test_report();
}
