/* vram-probe — device free/total VRAM, per-process use and the admission
 * ledger as JSON; or wait until free VRAM is back at a baseline (the proof
 * that a stage gave everything back). Loads no model. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "sig.h"
#include "gpu.h"
#include "jsonio.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"

#define MIB (UINT64_C(1) << 20)

enum { OPT_BASELINE = 1000, OPT_TIMEOUT, OPT_TOLERANCE, OPT_INTERVAL };

struct probe_opts {
    double baseline_mib;   /* < 0: no waiting */
    double timeout_s;
    double tolerance_mib;
    double interval_s;
};

static const struct cli_opt opts[] = {
    { "wait-baseline", 0, "MiB", "wait until free VRAM >= MiB - tolerance (exit 0) or --timeout passes (exit 75)",
      OPT_BASELINE },
    { "timeout", 0, "SECONDS", "how long --wait-baseline waits (default 30)", OPT_TIMEOUT },
    { "tolerance", 0, "MiB", "how far below the baseline still counts as back (default 64)", OPT_TOLERANCE },
    { "interval", 0, "SECONDS", "polling interval (default 0.2)", OPT_INTERVAL },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "vram-probe",
    .usage = "[options]",
    .summary = "Print free/total VRAM, per-process use and the isopipe ledger as JSON.",
    .description =
        "Without --wait-baseline: one JSON object on stdout (or -o FILE): \"device\" {backend,\n"
        "name, key, total, free, used}, \"processes\" (NVML's compute processes, when NVML is\n"
        "present) and \"ledger\" (live isopipe reservations on this device, dead ones dropped).\n"
        "\n"
        "With --wait-baseline MiB: polls free VRAM until it is at least MiB - tolerance, then\n"
        "prints the same JSON with \"waited_seconds\" and exits 0; after --timeout seconds it\n"
        "exits 75. Record the baseline before a stage with `vram-probe | jq .device.free`.\n"
        "Without a GPU there is nothing to give back: the wait succeeds at once (\"backend\":\n"
        "\"none\"). ISOPIPE_FAKE_GPU=TOTAL_MiB:FREE_MiB probes the pretend device.",
    .opts = opts,
    .examples = "  base=$(vram-probe | jq '.device.free / 1048576 | floor')\n"
                "  segment-gen ... && vram-probe --wait-baseline $base --timeout 10",
    .min_args = 0,
    .max_args = 0,
    .common = CLI_C_OUTPUT | CLI_C_DEVICE,
    .has_gpu_path = 1,
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct probe_opts *o = ctx;
    switch (id) {
    case OPT_BASELINE: return cli_double("wait-baseline", arg, 0, 1e9, &o->baseline_mib);
    case OPT_TIMEOUT: return cli_double("timeout", arg, 0, 1e7, &o->timeout_s);
    case OPT_TOLERANCE: return cli_double("tolerance", arg, 0, 1e9, &o->tolerance_mib);
    case OPT_INTERVAL: return cli_double("interval", arg, 0.001, 60, &o->interval_s);
    }
    return iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
}

static json_t *snapshot(void)
{
    json_t *root = jsonio_header_new();
    const struct gpu_info *gi = gpu_get_info();
    const char *backend = gi->backend == GPU_BACKEND_CUDA ? "cuda" : gi->backend == GPU_BACKEND_FAKE ? "fake" : "none";
    json_t *dev = json_pack("{s:s, s:s, s:s, s:i}", "backend", backend, "name", gi->name, "key", gi->key, "index",
                            gi->device);
    uint64_t f = 0, t = 0;
    if (gpu_present() && gpu_mem_get(&f, &t) == 0) {
        json_object_set_new(dev, "total", json_integer((json_int_t)t));
        json_object_set_new(dev, "free", json_integer((json_int_t)f));
        json_object_set_new(dev, "used", json_integer((json_int_t)(t > f ? t - f : 0)));
    }
    json_object_set_new(root, "device", dev);
    json_t *procs = json_array();
    struct gpu_proc p[128];
    int n = 0;
    if (gpu_present() && gpu_nvml_processes(p, 128, &n) == 0) {
        for (int i = 0; i < n; i++)
            json_array_append_new(procs, p[i].bytes == UINT64_MAX
                                             ? json_pack("{s:i, s:n}", "pid", (int)p[i].pid, "bytes")
                                             : json_pack("{s:i, s:I}", "pid", (int)p[i].pid, "bytes",
                                                         (json_int_t)p[i].bytes));
        json_object_set_new(root, "processes_source", json_string("nvml"));
    } else {
        json_object_set_new(root, "processes_source", json_null());
    }
    iso_errclear();
    json_object_set_new(root, "processes", procs);
    json_t *led = json_array();
    struct ledger_entry *e = NULL;
    if (gpu_present() && ledger_read_key(gi->key, &e, &n) == 0) {
        for (int i = 0; i < n; i++)
            json_array_append_new(led, json_pack("{s:i, s:I, s:I, s:s, s:s}", "pid", (int)e[i].pid, "reserved",
                                                 (json_int_t)e[i].reserved, "used", (json_int_t)e[i].used, "mode",
                                                 e[i].mode, "task_id", e[i].task_id));
    }
    free(e);
    json_object_set_new(root, "ledger", led);
    return root;
}

static int emit(const struct cli_common *c, json_t *root)
{
    if (c->output) return jsonio_write_atomic(c->output, root);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? 0 : iso_fail(ISO_EIO, "cannot write to stdout");
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && !sig_interrupted()) {}
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct probe_opts o = { -1, 30, 64, 0.2 };
    json_t *root = NULL;
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &o, NULL);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    if ((rc = gpu_init(c.device))) goto done;
    if (!gpu_present() && gpu_unavailable_reason()) log_info("no usable GPU: %s", gpu_unavailable_reason());
    if (o.baseline_mib >= 0) {
        double t0 = mem_now(), waited = 0;
        uint64_t want = (uint64_t)((o.baseline_mib > o.tolerance_mib ? o.baseline_mib - o.tolerance_mib : 0) * MIB);
        uint64_t f = 0, t = 0;
        for (;;) {
            if (!gpu_present()) break;
            if ((rc = sig_check())) goto done;
            if ((rc = gpu_mem_get(&f, &t))) goto done;
            waited = mem_now() - t0;
            if (f >= want) break;
            if (waited >= o.timeout_s) {
                rc = iso_fail(ISO_ETEMPFAIL,
                              "free VRAM %.1f MiB did not come back to the baseline %.1f MiB (tolerance %.1f MiB) "
                              "within %.1f s",
                              f / (double)MIB, o.baseline_mib, o.tolerance_mib, o.timeout_s);
                goto done;
            }
            double left = o.timeout_s - waited;
            sleep_s(left < o.interval_s ? left : o.interval_s);
        }
        root = snapshot();
        json_object_set_new(root, "baseline", json_integer((json_int_t)(o.baseline_mib * MIB)));
        json_object_set_new(root, "tolerance", json_integer((json_int_t)(o.tolerance_mib * MIB)));
        json_object_set_new(root, "waited_seconds", json_real(waited));
    } else {
        root = snapshot();
    }
    rc = emit(&c, root);
done:
    json_decref(root);
    gpu_shutdown();
    return cli_finish(rc);
}
