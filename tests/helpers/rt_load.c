/* rt_load — a minimal "model tool" for the memory runtime's CLI tests: it
 * plans a safetensors file (tensors named *blocks.K.* / *layers.K.* are
 * streamable blocks, the rest resident), admits itself, loads the file in
 * the decided mode the way a real tool would, optionally holds, and writes a
 * JSON report with the "memory" object.
 *   beefy:       one weights arena, tensor-by-tensor rt_upload from the
 *                mapping (pages dropped after each tensor)
 *   lightweight: resident tensors uploaded; blocks copied into pinned host
 *                memory and run once through the 2-slot stream
 *   cpu:         tensors read in place from the mapping
 * "checksum" is FNV-1a 64 over every block's bytes in block order as the
 * stream (or the mapping) delivered them; a test compares it with its own.
 * Also: --synth N:BYTES writes a synthetic file (sparse, zeros except a
 * tagged first 8 bytes per tensor) so tests create 1 GiB in no time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "cli.h"
#include "err.h"
#include "gpu.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "plan.h"
#include "runtime.h"
#include "safetensors.h"
#include "sig.h"
#include "stream.h"
#include "weights.h"

#define MIB (UINT64_C(1) << 20)

enum { OPT_HOLD = 1000, OPT_ACT, OPT_SYNTH, OPT_FAIL, OPT_RESIDENT, OPT_NO_DROP };

struct opts {
    double hold_s;
    int no_drop;             /* control for the RSS test: keep uploaded pages mapped */
    double act_mib;
    const char *synth;
    const char *fail_at;     /* "after-admit", "after-load" */
    uint64_t resident;        /* --synth: one resident tensor of this many bytes */
};

static const struct cli_opt opts[] = {
    { "hold", 0, "SECONDS", "stay loaded this long before cleanup", OPT_HOLD },
    { "activations", 0, "MiB", "activations to plan (and allocate) besides the weights", OPT_ACT },
    { "synth", 0, "N:BYTES", "write a synthetic file of N blocks of BYTES to -o and exit", OPT_SYNTH },
    { "resident", 0, "BYTES", "with --synth: also one resident tensor of BYTES", OPT_RESIDENT },
    { "no-drop", 0, NULL, "beefy: keep uploaded pages resident (the RSS test's control)", OPT_NO_DROP },
    { "fail", 0, "WHERE", "fail on purpose: after-admit or after-load (error-path tests)", OPT_FAIL },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "rt_load",
    .usage = "[options] -o report.json FILE.safetensors",
    .summary = "Plan, admit and load a safetensors file in the decided memory mode (test helper).",
    .opts = opts,
    .min_args = 0,
    .max_args = 1,
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct opts *o = ctx;
    switch (id) {
    case OPT_HOLD: return cli_double("hold", arg, 0, 3600, &o->hold_s);
    case OPT_ACT: return cli_double("activations", arg, 0, 1e7, &o->act_mib);
    case OPT_RESIDENT: {
        long v;
        int rc = cli_int("resident", arg, 0, 1L << 40, &v);
        o->resident = (uint64_t)v;
        return rc;
    }
    case OPT_SYNTH: o->synth = arg; return 0;
    case OPT_NO_DROP: o->no_drop = 1; return 0;
    case OPT_FAIL:
        if (strcmp(arg, "after-admit") && strcmp(arg, "after-load"))
            return iso_fail(ISO_EUSAGE, "--fail: after-admit or after-load, not '%s'", arg);
        o->fail_at = arg;
        return 0;
    }
    return iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* N blocks "blocks.K.weight" (U8, [BYTES]) + optional "embed.weight";
 * data is a hole except 8 tag bytes at the start of each tensor */
static int write_synth(const char *spec_s, uint64_t res, const char *path)
{
    unsigned long long n = 0, bytes = 0;
    if (!path) return iso_fail(ISO_EUSAGE, "--synth needs -o FILE");
    if (sscanf(spec_s, "%llu:%llu", &n, &bytes) != 2 || n == 0 || n > 100000 || bytes < 8 || bytes > (1ULL << 40))
        return iso_fail(ISO_EUSAGE, "--synth: expected N:BYTES (BYTES >= 8), got '%s'", spec_s);
    json_t *h = json_object();
    uint64_t off = 0;
    if (res) {
        json_object_set_new(h, "embed.weight", json_pack("{s:s, s:[I], s:[I,I]}", "dtype", "U8", "shape", (json_int_t)res,
                                                          "data_offsets", (json_int_t)0, (json_int_t)res));
        off = res;
    }
    for (unsigned long long k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%llu.weight", k);
        json_object_set_new(h, name, json_pack("{s:s, s:[I], s:[I,I]}", "dtype", "U8", "shape", (json_int_t)bytes,
                                               "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "isopipe-synthetic"));
    char *hs = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    if (!hs) return iso_fail(ISO_EINTERNAL, "out of memory");
    size_t hl = strlen(hs);
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(hs);
        return iso_fail(ISO_ECANTCREAT, "cannot create '%s'", path);
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    uint64_t data0 = 8 + hl;
    if (write(fd, len8, 8) != 8 || write(fd, hs, hl) != (ssize_t)hl || ftruncate(fd, (off_t)(data0 + off)) != 0) {
        rc = iso_fail(ISO_EIO, "cannot write '%s'", path);
        goto done;
    }
    for (unsigned long long k = 0; k < n; k++) {
        uint8_t tag[8];
        for (int i = 0; i < 8; i++) tag[i] = (uint8_t)((k * 0x9e3779b97f4a7c15ULL) >> (8 * i)) ^ (uint8_t)(i + 1);
        if (pwrite(fd, tag, 8, (off_t)(data0 + res + k * bytes)) != 8) {
            rc = iso_fail(ISO_EIO, "cannot write '%s'", path);
            goto done;
        }
    }
done:
    free(hs);
    close(fd);
    return rc;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && !sig_interrupted()) {}
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct opts o = { 0 };
    struct rt *rt = NULL;
    struct weights *st = NULL;
    struct gpu_arena *weights = NULL, *act = NULL;
    struct stream_set *ss = NULL;
    uint8_t *pinned = NULL;
    uint64_t pinned_bytes = 0;
    int64_t *block_of = NULL;
    json_t *report = NULL;
    uint64_t checksum = UINT64_C(0xcbf29ce484222325);
    int first = 0;
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &o, &first);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    if (o.synth) return cli_finish(write_synth(o.synth, o.resident, c.output));
    const char *path = first < argc ? argv[first] : c.model;
    if (!path) return cli_finish(iso_fail(ISO_EUSAGE, "no safetensors file given"));

    if ((rc = rt_begin(&c, &rt))) goto done;
    if ((rc = weights_open(path, &st))) goto done;
    block_of = calloc(weights_count(st) ? weights_count(st) : 1, sizeof *block_of);
    if (!block_of) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    struct plan_blocks pb;
    if ((rc = plan_blocks_from_weights(st, &pb, block_of))) goto done;
    pb.activations = (uint64_t)(o.act_mib * MIB);
    pb.host_base = 16 * MIB;
    pb.gpu_ok = pb.cpu_ok = 1;
    struct mem_plan plan;
    if ((rc = plan_from_blocks(&plan, path, &pb))) goto done;
    if (c.plan_only) {
        rc = rt_print_plan(rt, &plan, NULL);
        goto done;
    }
    enum mem_mode mode;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    if (o.fail_at && !strcmp(o.fail_at, "after-admit")) { rc = iso_fail(ISO_EIO, "failing after admission (--fail)"); goto done; }

    rt_load_begin(rt);
    if (mode == MEM_MODE_BEEFY) {
        if ((rc = gpu_arena_create("weights", plan.mode[mode].weights, &weights))) goto done;
        for (size_t i = 0; i < weights_count(st); i++) {
            void *dev;
            const struct wt_tensor *t = weights_at(st, i);
            if ((rc = rt_upload(rt, weights, t->data, t->nbytes, !o.no_drop, &dev))) goto done;
        }
    } else if (mode == MEM_MODE_LIGHTWEIGHT) {
        if ((rc = gpu_arena_create("weights", pb.resident_bytes + pb.align_slack, &weights))) goto done;
        for (size_t i = 0; i < weights_count(st); i++) {
            void *dev;
            const struct wt_tensor *t = weights_at(st, i);
            if (block_of[i] < 0 && (rc = rt_upload(rt, weights, t->data, t->nbytes, 1, &dev))) goto done;
        }
        /* blocks: one contiguous pinned region per block, tensors in file order */
        pinned_bytes = pb.n_blocks * pb.block_bytes;
        if (pinned_bytes && (rc = gpu_host_alloc(pinned_bytes, (void **)&pinned))) goto done;
        if (pb.n_blocks && (rc = stream_create(pb.n_blocks, pb.block_bytes, &ss))) goto done;
        for (uint64_t k = 0; k < pb.n_blocks; k++) {
            uint64_t fill = 0;
            for (size_t i = 0; i < weights_count(st); i++) {
                const struct wt_tensor *t = weights_at(st, i);
                if (block_of[i] != (int64_t)k) continue;
                memcpy(pinned + k * pb.block_bytes + fill, t->data, t->nbytes);
                weights_drop(st, t);
                fill += t->nbytes;
            }
            if ((rc = stream_set_block(ss, k, pinned + k * pb.block_bytes, fill))) goto done;
        }
    }
    if (pb.activations && mode != MEM_MODE_CPU && (rc = gpu_arena_create("activations", pb.activations, &act))) goto done;
    rt_load_end(rt);
    if (o.fail_at && !strcmp(o.fail_at, "after-load")) { rc = iso_fail(ISO_EIO, "failing after load (--fail)"); goto done; }

    /* one "forward pass": every block in order */
    if (ss) {
        for (uint64_t k = 0; k < pb.n_blocks; k++) {
            const void *blk;
            if ((rc = stream_get(ss, k, &blk))) goto done;
            if (!gpu_present() || gpu_is_fake()) {
                uint64_t n = 0;
                for (size_t i = 0; i < weights_count(st); i++)
                    if (block_of[i] == (int64_t)k) n += weights_at(st, i)->nbytes;
                checksum = fnv1a(checksum, blk, n);
            }
        }
        if ((rc = stream_sync(ss))) goto done;
    } else if (mode == MEM_MODE_CPU) {
        for (uint64_t k = 0; k < pb.n_blocks; k++)
            for (size_t i = 0; i < weights_count(st); i++)
                if (block_of[i] == (int64_t)k) {
                    checksum = fnv1a(checksum, weights_at(st, i)->data, weights_at(st, i)->nbytes);
                    weights_drop(st, weights_at(st, i));
                }
    }
    if (o.hold_s > 0) sleep_s(o.hold_s);
    if ((rc = sig_check())) goto done; /* SIGTERM while holding: like every tool, 130 */

    report = jsonio_header_new();
    json_object_set_new(report, "mode", json_string(mem_mode_name(mode)));
    json_object_set_new(report, "n_tensors", json_integer((json_int_t)weights_count(st)));
    json_object_set_new(report, "n_blocks", json_integer((json_int_t)pb.n_blocks));
    if (mode != MEM_MODE_BEEFY) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, checksum);
        json_object_set_new(report, "checksum", json_string(hex));
    }
    if (ss) {
        uint64_t copies, hits, bytes;
        stream_stats(ss, &copies, &hits, &bytes);
        json_object_set_new(report, "stream", json_pack("{s:I, s:I, s:I, s:I}", "copies", (json_int_t)copies, "hits",
                                                        (json_int_t)hits, "bytes", (json_int_t)bytes, "window",
                                                        (json_int_t)stream_window_bytes(ss)));
    }
    if (c.output) jsonio_set_path(report, "model", c.output, path);
    json_object_set_new(report, "memory", rt_memory_json(rt));
    if (c.output && (rc = jsonio_write_atomic(c.output, report))) goto done;
    rt_cleanup_begin(rt);
done:
    stream_free(&ss);
    gpu_host_free(pinned, pinned_bytes);
    gpu_arena_free(&weights);
    gpu_arena_free(&act);
    weights_close(&st);
    free(block_of);
    json_decref(report);
    rc = rt_end(&rt, rc);
    return cli_finish(rc);
}
