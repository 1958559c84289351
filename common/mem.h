/* mem.h — host memory facts and the memory checkpoints of docs/DESIGN.md.
 * mem_sample() reads /proc/self/status (VmRSS, VmHWM), /proc/meminfo
 * (MemTotal, MemAvailable) and the cgroup v2/v1 limit. mem_checkpoint()
 * logs the RAM line (and the VRAM line when a probe is registered by the
 * GPU module), emits the same as a JSON event, and keeps every checkpoint
 * so the tool's report can carry them (mem_checkpoints_json). */
#ifndef ISOPIPE_MEM_H
#define ISOPIPE_MEM_H
#include <jansson.h>
#include <stdint.h>

struct mem_sample {
    uint64_t rss;           /* VmRSS, bytes */
    uint64_t hwm;           /* VmHWM (peak RSS), bytes */
    uint64_t total;         /* MemTotal */
    uint64_t available;     /* MemAvailable */
    uint64_t cgroup_max;    /* cgroup memory.max, 0 = no limit */
    uint64_t cgroup_current;/* cgroup memory.current, 0 = unknown */
};
int mem_sample(struct mem_sample *s);

/* The cgroup memory limit that binds a process, from its /proc/PID/cgroup
 * file and the cgroup mount root ("/sys/fs/cgroup"): cgroup v2's memory.max
 * and v1's memory.limit_in_bytes (under ROOT/memory), on the process's own
 * cgroup and every ancestor; the one with the least room (max - current)
 * wins. *max = 0 when there is no limit. Paths are parameters so tests can
 * point it at fake trees. Returns 0, or -1 when proc_cgroup cannot be read. */
int mem_cgroup_limit(const char *proc_cgroup, const char *root, uint64_t *max, uint64_t *current);

/* Host bytes this process may still take: min(MemAvailable, cgroup max - current).
 * Test-only: ISOPIPE_FAKE_MEM_AVAILABLE_MiB=N lowers MemAvailable to N MiB
 * (never raises it; docs/memory.md). */
uint64_t mem_host_budget(void);

/* VRAM probe the GPU module registers: fills process bytes (UINT64_MAX if
 * unknown), device free and total; returns 0, or <0 when there is no device. */
typedef int (*mem_vram_probe_fn)(uint64_t *process, uint64_t *free, uint64_t *total);
void mem_set_vram_probe(mem_vram_probe_fn fn);

/* Log "[TASK] [RAM] label: Process=812MB (0.79GB) | System=41.2% used, 13.9GB available"
 * (+ the [VRAM] line), emit a "checkpoint" JSON event, and remember it. */
void mem_checkpoint(const char *label);
/* every checkpoint so far: [{label, time, rss, hwm, sys_used_pct, available, vram_process, vram_free, vram_total}] (new reference) */
json_t *mem_checkpoints_json(void);
/* peak VRAM seen at checkpoints and by mem_note_vram (bytes, 0 when none) */
uint64_t mem_peak_vram(void);
void mem_note_vram(uint64_t process_bytes);

/* formats bytes as "812.0 MiB" below 1 GiB, else "13.92 GiB" (one convention in every log) */
void mem_fmt(char *buf, size_t n, uint64_t bytes);
/* seconds from a monotonic clock */
double mem_now(void);
#endif
