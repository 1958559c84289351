/* report.h — report.json and memory.png of a travel run: one entry per stage
 * from the stage's own JSON output (its "memory" object) and the runner's
 * record (wall time, exit code, retries, the VRAM check), plus totals. */
#ifndef ISOPIPE_REPORT_H
#define ISOPIPE_REPORT_H
#include <jansson.h>
#include <stdint.h>

struct report_stage_in {
    const char *name;    /* "prompt", "flow_000", "seg_001", "stitch" */
    const char *json;    /* the stage's JSON output */
};

/* what the report reads out of a tool's "memory" object; -1 = unknown */
struct report_mem {
    const char *mode;
    double peak_rss, peak_vram, plan_ram, plan_vram;
};
void report_read_memory(const json_t *memory, struct report_mem *m);

/* Builds the report (new reference) from the stages; run_dir holds the
 * runner's records/ (may be NULL). report_path is where it will be written
 * (paths inside are relative to it). */
int report_build(const struct report_stage_in *st, int n, const char *run_dir, const char *report_path,
                 json_t **out);
/* report.json and memory.png, both atomically */
int report_write(const struct report_stage_in *st, int n, const char *run_dir, const char *report_path,
                 const char *png_path, const char *title);
#endif
