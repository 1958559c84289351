/* summary.c — the table pipelines/batch.sh prints at the end: one line per
 * topic with its status, wall time and the peaks from its report.json; for
 * a failed run, the stage that failed and its exit code (from the runner's
 * records), or that it stopped before any stage (the topic check). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "jsonio.h"
#include "mem.h"
#include "travel.h"

static void fmt_bytes(char *buf, size_t n, double b)
{
    if (b < 0) snprintf(buf, n, "-");
    else mem_fmt(buf, n, (uint64_t)b); /* the logs' units: MiB, GiB from 1 GiB on */
}

/* the first failed stage among OUT/.travel/records (by name), into buf */
static void failed_stage(const char *out, char *buf, size_t n)
{
    char *dir = NULL, *log = NULL, *text = NULL;
    size_t len;
    snprintf(buf, n, "before any stage ran (see the log)");
    /* the topic check's own message, from the run's log (OUTDIR.log) */
    if (asprintf(&log, "%s.log", out) >= 0 && fs_read_all(log, &text, &len, (size_t)64 << 20) == 0) {
        const char *tag = "[travel] pipeline-report: ", *p = strstr(text, tag);
        if (!p) { /* a TOPIC or OUT name the Make driver refused (pipelines/travel.mk) */
            tag = "*** make pipeline: ";
            p = strstr(text, tag);
        }
        if (p) {
            p += strlen(tag);
            size_t l = strcspn(p, "\n");
            snprintf(buf, n, "before any stage: %.*s", (int)(l > 200 ? 200 : l), p);
        }
    }
    free(text);
    free(log);
    if (asprintf(&dir, "%s/.travel/records", out) < 0) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char best[256] = "";
        int code = 0;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
            char *p = fs_join(dir, e->d_name);
            json_t *j = NULL;
            if (p && jsonio_load(p, &j) == 0) {
                int c = (int)jsonio_int(j, "exit_code", 0);
                if (c != 0 && (!best[0] || strcmp(e->d_name, best) < 0)) {
                    snprintf(best, sizeof best, "%s", e->d_name);
                    code = c;
                }
            }
            json_decref(j);
            free(p);
        }
        closedir(d);
        if (best[0]) {
            best[strlen(best) - 5] = 0;
            snprintf(buf, n, "stage %s exited %d", best, code);
        }
    }
    iso_errclear();
    free(dir);
}

int travel_summary(int argc, char **argv, int *failed)
{
    if (argc % 4) return iso_fail(ISO_EUSAGE, "summary: arguments come in fours: NAME EXIT WALL OUTDIR");
    int ok = 0, bad = 0;
    printf("%-20s %-6s %9s %10s %10s  %s\n", "topic", "status", "wall", "peak RAM", "peak VRAM", "detail");
    for (int i = 0; i < argc; i += 4) {
        const char *name = argv[i], *out = argv[i + 3];
        int code = atoi(argv[i + 1]);
        double wall = atof(argv[i + 2]);
        char ram[32] = "-", vram[32] = "-", detail[300] = "";
        char *rp = fs_join(out, "report.json");
        json_t *r = NULL;
        if (code == 0 && rp && jsonio_load(rp, &r) == 0) {
            json_t *t = json_object_get(r, "totals");
            fmt_bytes(ram, sizeof ram, jsonio_num(t, "peak_rss", -1));
            if (json_is_string(json_object_get(t, "reclaimed_vram")))
                snprintf(vram, sizeof vram, "no GPU");
            else fmt_bytes(vram, sizeof vram, jsonio_num(t, "peak_vram", -1));
            snprintf(detail, sizeof detail, "%s/final.mp4", out);
        } else if (code == 0) {
            snprintf(detail, sizeof detail, "finished but report.json is unreadable");
            code = -1;
        } else {
            failed_stage(out, detail, sizeof detail);
        }
        iso_errclear();
        json_decref(r);
        free(rp);
        if (code == 0) ok++;
        else bad++;
        printf("%-20s %-6s %8.1fs %10s %10s  %s\n", name, code == 0 ? "ok" : "FAIL", wall, ram, vram, detail);
    }
    printf("%d ok, %d failed\n", ok, bad);
    fflush(stdout);
    *failed = bad;
    return 0;
}
