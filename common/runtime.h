/* runtime.h — the memory life cycle every model-loading tool goes through
 * (docs/DESIGN.md, "Memory: what every model-loading tool does"), as one object:
 *
 *   cli_parse(...); cli_start(...);
 *   rt_begin(&common, &rt);                 "start" checkpoint, GPU discovery
 *   ... open the model file, read its header only, fill a struct mem_plan ...
 *   if (common.plan_only) { print rt_plan_json(rt, &plan); goto done; }
 *   rt_admit(rt, &plan, &mode);             decide mode, reserve in the ledger
 *                                           (waits up to --wait-vram; 75 if no room)
 *   rt_load_begin(rt);                      "before load"
 *   gpu_arena_create("weights", plan.mode[mode].weights, &w);
 *   for each tensor: rt_upload(rt, w, t->data, t->nbytes, 1, &dev);   (beefy)
 *   rt_load_end(rt);                        "after load" + load seconds
 *   ... compute ...
 *   json_object_set_new(report, "memory", rt_memory_json(rt));
 *   rt_cleanup_begin(rt);                   "before cleanup"
 *   gpu_arena_free(&w); ...
 * done:
 *   rc = rt_end(&rt, rc);                   "end" (success or error), release
 *   return cli_finish(rc);
 *
 * The runtime owns the ledger reservation, the upload staging buffers and
 * the usage hook that keeps the ledger's "used" current. rt_end is safe on a
 * NULL or partly set up runtime and always logs "end" once when rt_begin ran. */
#ifndef ISOPIPE_RUNTIME_H
#define ISOPIPE_RUNTIME_H
#include <jansson.h>
#include <stdint.h>

#include "cli.h"
#include "plan.h"

struct gpu_arena;
struct rt;

/* "start" checkpoint, gpu_init(c->device). c must outlive the runtime. */
int rt_begin(const struct cli_common *c, struct rt **out);

/* The mode auto would pick now (no reservation, no waiting) and why:
 * 0 and *mode, or the status plan_decide gives (*mode = MEM_MODE_AUTO). */
int rt_peek(struct rt *rt, const struct mem_plan *p, enum mem_mode *mode);
/* plan_to_json + "requested", "auto_pick" (or null + "auto_reason"),
 * "device" {backend, name, free, total}, "vram_reserve" (new reference) */
json_t *rt_plan_json(struct rt *rt, const struct mem_plan *p);
/* --plan: print rt_plan_json (with the fields of extra merged in; extra is
 * consumed and may be NULL) on stdout as indented JSON. 0 or a status. */
int rt_print_plan(struct rt *rt, const struct mem_plan *p, json_t *extra);

/* Decide the mode for c->memory_mode and reserve its vram_peak in the
 * ledger, atomically. Not admitted: retry every 100 ms up to c->wait_vram_s
 * seconds, then ISO_ETEMPFAIL with a message giving need, free, others'
 * reservations and the reserve. Explicit modes are obeyed or refused with
 * ISO_ETEMPFAIL (exit 75), never changed. cpu mode reserves nothing. */
int rt_admit(struct rt *rt, const struct mem_plan *p, enum mem_mode *mode);
enum mem_mode rt_mode(const struct rt *rt);
/* After admission to a GPU mode, the GPU path cannot start after all (no
 * cuBLAS, ...): give the ledger's reservation back at once, so queued runs
 * on the card need not wait for this one, check that the plan has a cpu
 * mode (plan_decide's status when not) and run as cpu mode from now on.
 * `why` goes to the report (memory.fallback) and into the one warning line
 * it logs (the caller logs nothing more). The CUDA context made for
 * admission stays until exit (not ours to reset while libraries may hold
 * it). */
int rt_fallback_cpu(struct rt *rt, const char *why);

/* "before load" checkpoint, starts the load clock */
void rt_load_begin(struct rt *rt);
/* "after load" checkpoint, stops the load clock */
void rt_load_end(struct rt *rt);
/* "before cleanup" checkpoint */
void rt_cleanup_begin(struct rt *rt);
/* any other checkpoint */
void rt_checkpoint(struct rt *rt, const char *label);

/* Upload n bytes at host into a new sub-allocation of arena (*dev). The copy
 * goes through two pinned staging chunks (PLAN_UPLOAD_CHUNK each, allocated
 * on first use) on a copy stream, so the read of the next chunk overlaps the
 * transfer of this one. mapped != 0 says host lies in a read-only file
 * mapping: its pages are dropped (MADV_DONTNEED) once uploaded, so peak RSS
 * stays near one tensor, not the model. Never pass mapped for malloc'd
 * memory (its contents would be lost). Returns after the copy completed. */
int rt_upload(struct rt *rt, struct gpu_arena *arena, const void *host, uint64_t n, int mapped,
              void **dev);
/* the same into an existing device pointer */
int rt_upload_to(struct rt *rt, void *dev, const void *host, uint64_t n, int mapped);

/* seconds between rt_load_begin and rt_load_end */
double rt_load_seconds(const struct rt *rt);

/* {"mode", "requested", "plan", "peak_rss", "peak_vram", "vram_source",
 *  "load_seconds", "admission": {...}, "checkpoints": [...], "reported_at"}: the "memory"
 * object of every model tool's JSON output (new reference; docs/memory.md) */
json_t *rt_memory_json(struct rt *rt);

/* "end" checkpoint (once), release the ledger entry and staging, free the
 * runtime. Returns status unchanged (for `rc = rt_end(&rt, rc)`). */
int rt_end(struct rt **rt, int status);
#endif
