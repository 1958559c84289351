/* report.c — gathers a travel run's figures into report.json and memory.png. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "err.h"
#include "fs.h"
#include "jsonio.h"
#include "mem.h"
#include "travel.h"

static double num_any(const json_t *o, const char *const *keys)
{
    for (int i = 0; keys[i]; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (json_is_number(v)) return json_number_value(v);
    }
    return -1;
}

/* The plan's figures for the mode the tool ran in. The memory runtime writes
 * the plan as {"modes": {"beefy": {...}, ...}} or {"beefy": {...}}; host RAM
 * is its expected RSS, VRAM its device peak. */
static void plan_figures(const json_t *plan, const char *mode, double *ram, double *vram)
{
    static const char *const ram_keys[] = { "host_rss", "expected_rss", "rss", "host_ram", "ram", NULL };
    static const char *const vram_keys[] = { "vram_peak", "peak_vram", "vram", NULL };
    *ram = *vram = -1;
    if (!json_is_object(plan)) return;
    const json_t *m = NULL;
    if (mode) {
        json_t *modes = json_object_get(plan, "modes");
        m = json_is_object(modes) ? json_object_get(modes, mode) : json_object_get(plan, mode);
    }
    if (!json_is_object(m)) m = plan;
    *ram = num_any(m, ram_keys);
    *vram = num_any(m, vram_keys);
    if (mode && strcmp(mode, "cpu") == 0 && *vram < 0) *vram = 0;
}

void report_read_memory(const json_t *memory, struct report_mem *m)
{
    static const char *const rss_keys[] = { "peak_rss", "peak_rss_bytes", "vmhwm", "hwm", NULL };
    static const char *const vram_keys[] = { "peak_vram", "peak_vram_bytes", NULL };
    m->mode = jsonio_str(memory, "mode", NULL);
    m->peak_rss = num_any(memory, rss_keys);
    m->peak_vram = num_any(memory, vram_keys);
    if (m->peak_rss < 0) {
        /* fall back to the highest VmHWM among the checkpoints */
        json_t *cps = json_object_get(memory, "checkpoints");
        size_t i;
        json_t *cp;
        json_array_foreach(cps, i, cp) {
            double h = jsonio_num(cp, "hwm", -1);
            if (h > m->peak_rss) m->peak_rss = h;
        }
    }
    plan_figures(json_object_get(memory, "plan"), m->mode, &m->plan_ram, &m->plan_vram);
}

static const char *stage_kind(const char *name)
{
    if (strncmp(name, "prompt", 6) == 0) return "prompt";
    if (strncmp(name, "flow", 4) == 0) return "flow";
    if (strncmp(name, "seg", 3) == 0) return "segment";
    if (strncmp(name, "stitch", 6) == 0) return "stitch";
    /* MODEL=wan */
    if (strncmp(name, "text", 4) == 0) return "text";
    if (strncmp(name, "keydec", 6) == 0 || strncmp(name, "dec", 3) == 0) return "decode";
    if (strncmp(name, "key", 3) == 0) return "keyframe";
    if (strncmp(name, "ctx", 3) == 0) return "vace";
    return "other";
}

static json_t *num_or_null(double v) { return v >= 0 ? json_integer((json_int_t)v) : json_null(); }

static json_t *model_of(const json_t *j)
{
    json_t *m = json_object_get(j, "model");
    if (json_is_string(m)) return json_incref(m);
    if (json_is_object(m)) {
        const char *s = jsonio_str(m, "name", NULL);
        if (!s) s = jsonio_str(m, "path", NULL);
        if (!s) s = jsonio_str(m, "architecture", NULL);
        if (s) return json_string(s);
    }
    /* tools without a model file say what did the work in their own words */
    const char *preset = jsonio_str(j, "preset", NULL);
    if (preset) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s (preset %s)", jsonio_str(j, "algorithm", "dis"), preset);
        return json_string(buf);
    }
    const char *codec = jsonio_str(json_object_get(j, "encoder"), "codec", NULL);
    if (codec) return json_string(codec);
    return json_null();
}

int report_build(const struct report_stage_in *st, int n, const char *run_dir, const char *report_path,
                 json_t **out)
{
    int rc = 0;
    json_t *root = jsonio_header_new(), *stages = json_array();
    double t_first = -1, t_last = -1, sum_wall = 0, max_rss = 0, max_vram = 0;
    int retries = 0, gpu_stages = 0, device_seen = 0, all_returned = 1, checked = 0;
    double reclaimed_total = 0;
    *out = NULL;
    if (!root || !stages) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        json_t *j = NULL, *rec = NULL;
        if ((rc = jsonio_load(st[i].json, &j))) { rc = iso_wrap(rc, "stage '%s'", st[i].name); goto done; }
        if (run_dir) {
            char *recname = NULL, *recpath = NULL;
            if (asprintf(&recname, "records/%s.json", st[i].name) >= 0) recpath = fs_join(run_dir, recname);
            free(recname);
            if (recpath && fs_exists(recpath) && jsonio_load(recpath, &rec) != 0) rec = NULL;
            free(recpath);
            iso_errclear();
        }
        struct report_mem m;
        report_read_memory(json_object_get(j, "memory"), &m);
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(st[i].name));
        json_object_set_new(e, "kind", json_string(stage_kind(st[i].name)));
        json_object_set_new(e, "tool", json_string(jsonio_str(j, "tool", "?")));
        json_object_set_new(e, "model", model_of(j));
        json_object_set_new(e, "mode", m.mode ? json_string(m.mode) : json_null());
        jsonio_set_path(e, "output", report_path, st[i].json);
        double wall = rec ? jsonio_num(rec, "wall_s", -1) : -1;
        json_object_set_new(e, "wall_s", wall >= 0 ? json_real(wall) : json_null());
        json_object_set_new(e, "peak_rss", num_or_null(m.peak_rss));
        json_object_set_new(e, "peak_vram", num_or_null(m.peak_vram));
        json_object_set_new(e, "plan", json_pack("{s:o, s:o}", "ram", num_or_null(m.plan_ram),
                                                 "vram", num_or_null(m.plan_vram)));
        json_object_set_new(e, "measured", json_pack("{s:o, s:o}", "ram", num_or_null(m.peak_rss),
                                                     "vram", num_or_null(m.peak_vram)));
        if (m.plan_ram > 0 && m.peak_rss >= 0)
            json_object_set_new(e, "ram_measured_over_plan", json_real(m.peak_rss / m.plan_ram));
        if (m.plan_vram > 0 && m.peak_vram >= 0)
            json_object_set_new(e, "vram_measured_over_plan", json_real(m.peak_vram / m.plan_vram));
        /* reclaimed VRAM: what the stage held at its peak, counted only when
         * vram-probe saw the device's free VRAM come back to the baseline */
        json_t *vr = rec ? json_object_get(rec, "vram") : NULL;
        if (json_is_true(json_object_get(vr, "device"))) device_seen = 1;
        if (json_is_boolean(json_object_get(vr, "returned"))) {
            int back = json_is_true(json_object_get(vr, "returned"));
            double base = jsonio_num(vr, "baseline_free", -1), aft = jsonio_num(vr, "after_free", -1);
            checked++;
            if (!back) all_returned = 0;
            json_t *r = json_pack("{s:b, s:o, s:o, s:o}", "returned", back, "baseline_free", num_or_null(base),
                                  "after_free", num_or_null(aft),
                                  "bytes", back ? num_or_null(m.peak_vram) : json_null());
            json_object_set_new(e, "reclaimed_vram", r);
            if (back && m.peak_vram > 0) reclaimed_total += m.peak_vram;
        } else {
            const char *note = jsonio_str(vr, "note", NULL);
            json_object_set_new(e, "reclaimed_vram", json_string(note ? note : "no GPU"));
        }
        json_object_set_new(e, "exit_code", json_integer(rec ? jsonio_int(rec, "exit_code", 0) : 0));
        json_object_set_new(e, "retries", json_integer(rec ? jsonio_int(rec, "retries", 0) : 0));
        if (!rec) json_object_set_new(e, "note", json_string("no runner record (the run was cut off after this stage published)"));
        if (rec) {
            double s = jsonio_num(rec, "started", -1);
            if (s >= 0 && (t_first < 0 || s < t_first)) t_first = s;
            if (s >= 0 && wall >= 0 && s + wall > t_last) t_last = s + wall;
            retries += (int)jsonio_int(rec, "retries", 0);
        }
        if (wall > 0) sum_wall += wall;
        if (m.peak_rss > max_rss) max_rss = m.peak_rss;
        if (m.peak_vram > max_vram) max_vram = m.peak_vram;
        if (m.mode && strcmp(m.mode, "cpu") != 0 && m.peak_vram > 0) gpu_stages++;
        json_array_append_new(stages, e);
        json_decref(j);
        json_decref(rec);
    }
    json_object_set_new(root, "stages", json_incref(stages));
    json_t *tot = json_object();
    json_object_set_new(tot, "stages", json_integer(n));
    json_object_set_new(tot, "stage_wall_s", json_real(sum_wall));
    json_object_set_new(tot, "elapsed_s", t_first >= 0 ? json_real(t_last - t_first) : json_null());
    json_object_set_new(tot, "peak_rss", json_integer((json_int_t)max_rss));
    json_object_set_new(tot, "peak_vram", json_integer((json_int_t)max_vram));
    json_object_set_new(tot, "retries", json_integer(retries));
    json_object_set_new(tot, "gpu_stages", json_integer(gpu_stages));
    if (gpu_stages == 0)
        json_object_set_new(tot, "reclaimed_vram", json_string(device_seen ? "no stage used the GPU" : "no GPU"));
    else json_object_set_new(tot, "reclaimed_vram", json_pack("{s:I, s:i, s:b}", "bytes", (json_int_t)reclaimed_total,
                                                               "checked_stages", checked, "all_returned", all_returned));
    json_object_set_new(root, "totals", tot);
    *out = json_incref(root);
done:
    json_decref(stages);
    json_decref(root);
    return rc;
}

int report_write(const struct report_stage_in *st, int n, const char *run_dir, const char *report_path,
                 const char *png_path, const char *title)
{
    json_t *r = NULL;
    struct chart_row *rows = NULL;
    int rc = report_build(st, n, run_dir, report_path, &r);
    if (rc) goto done;
    if (png_path) {
        json_t *stages = json_object_get(r, "stages"), *e;
        size_t i;
        rows = calloc((size_t)n + 1, sizeof *rows);
        if (!rows) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        int gpu = 0;
        json_array_foreach(stages, i, e) {
            json_t *plan = json_object_get(e, "plan");
            rows[i].label = jsonio_str(e, "name", "?");
            rows[i].ram = jsonio_num(e, "peak_rss", -1);
            rows[i].vram = jsonio_num(e, "peak_vram", -1);
            rows[i].ram_plan = jsonio_num(plan, "ram", -1);
            rows[i].vram_plan = jsonio_num(plan, "vram", -1);
            const char *mode = jsonio_str(e, "mode", NULL);
            if (mode && strcmp(mode, "cpu") != 0 && rows[i].vram > 0) gpu = 1;
        }
        json_t *tot = json_object_get(r, "totals");
        char sub[160];
        char a[32], b[32];
        double pr = jsonio_num(tot, "peak_rss", 0), pv = jsonio_num(tot, "peak_vram", 0);
        mem_fmt(a, sizeof a, (uint64_t)pr);
        mem_fmt(b, sizeof b, (uint64_t)pv);
        snprintf(sub, sizeof sub, "%d stages, %.1f s of stage time, peak RAM %s, peak VRAM %s%s", n,
                 jsonio_num(tot, "stage_wall_s", 0), a, gpu ? b : "-", gpu ? "" : " (no GPU)");
        if ((rc = chart_write_png(png_path, title ? title : "isopipe travel: memory per stage", sub, rows, n, gpu)))
            goto done;
    }
    rc = jsonio_write_atomic(report_path, r);
done:
    free(rows);
    json_decref(r);
    return rc;
}
