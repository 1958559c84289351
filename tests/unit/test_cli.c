/* test_cli.c — the shared command line (common/cli.c): every common flag,
 * tool flags through the handler, usage errors (ISO_EUSAGE with a message
 * on stderr), --help/--version (exit path 1, text on stdout), ranges, and
 * cli_finish's mapping to exit codes. */
#include <fcntl.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "test.h"

static char dir[600];

/* fd 1 or 2 into a file until cap_end returns what was written (malloc'd) */
static int cap_saved = -1, cap_fd;
static char cap_path[700];
static void cap_begin(int fd)
{
    fflush(stdout);
    fflush(stderr);
    cap_fd = fd;
    snprintf(cap_path, sizeof cap_path, "%s/cap-%d.txt", dir, fd);
    cap_saved = dup(fd);
    int f = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(f, fd);
    close(f);
}
static char *cap_end(void)
{
    fflush(stdout);
    fflush(stderr);
    dup2(cap_saved, cap_fd);
    close(cap_saved);
    char *d = NULL;
    size_t n;
    if (fs_read_all(cap_path, &d, &n, 1 << 20)) return strdup("");
    return d;
}

enum { OPT_OVERLAP = 1000, OPT_CRF, OPT_FAST };
static const struct cli_opt tool_opts[] = {
    { "overlap", 0, "K", "frames blended between segments", OPT_OVERLAP },
    { "crf", 'c', "N", "x264 quality", OPT_CRF },
    { "fast", 'f', NULL, "a flag", OPT_FAST },
    { 0 },
};
static const struct cli_spec spec = {
    .tool = "stitch", .usage = "[options] -o final.mp4 SEGDIR...", .summary = "Crossfade segments and encode.",
    .description = "A paragraph about stitch.", .opts = tool_opts, .examples = "  stitch -o a.mp4 seg_000 seg_001",
    .default_model = NULL, .min_args = 1, .max_args = 3,
};

struct tool { long overlap, crf; int fast; };
static int handler(void *ctx, int id, const char *arg)
{
    struct tool *t = ctx;
    switch (id) {
    case OPT_OVERLAP: return cli_int("overlap", arg, 0, 1000, &t->overlap);
    case OPT_CRF: return cli_int("crf", arg, 0, 51, &t->crf);
    case OPT_FAST: t->fast = 1; return 0;
    }
    return iso_fail(ISO_EINTERNAL, "unexpected option id %d", id);
}

/* parse a NULL-terminated list; stderr captured into *err (malloc'd) when err != NULL */
static char *argv[64]; /* of the last parse */
static int parse(struct cli_common *c, struct tool *t, int *optind_out, char **err, ...)
{
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    argv[argc++] = "stitch";
    for (char *a; (a = va_arg(ap, char *)) && argc < 63;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(t, 0, sizeof *t);
    cap_begin(2);
    int rc = cli_parse(&spec, argc, argv, c, handler, t, optind_out);
    char *e = cap_end();
    if (err) *err = e;
    else free(e);
    return rc;
}

static void test_common_flags(void)
{
    TEST("every common flag");
    struct cli_common c;
    struct tool t;
    int oi = 0;
    char *err;
    int rc = parse(&c, &t, &oi, &err, "-m", "smollm", "-o", "out.mp4", "--memory-mode", "lightweight", "--plan",
                   "--device", "2", "--vram-reserve", "512", "--wait-vram", "1.5", "--threads", "3", "--seed", "42",
                   "--task-id", "T9", "--log-json", "ev.jsonl", "-q", "-v", "-v", "seg_000", "--overlap", "8",
                   "-c", "20", "-f", "seg_001", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, err);
    free(err);
    CHECK_STR(c.model, "smollm");
    CHECK_STR(c.output, "out.mp4");
    CHECK(c.memory_mode == MEM_MODE_LIGHTWEIGHT && c.plan_only == 1 && c.device == 2);
    CHECK(c.vram_reserve_mib == 512 && c.wait_vram_s == 1.5 && c.threads == 3);
    CHECK(c.seed == 42 && c.seed_set == 1);
    CHECK_STR(c.task_id, "T9");
    CHECK_STR(c.log_json, "ev.jsonl");
    CHECK(c.quiet == 1 && c.verbose == 2);
    CHECK(t.overlap == 8 && t.crf == 20 && t.fast == 1);
    CHECK(cli_threads(&c) == 3);
    /* GNU permutation: positionals end up after the options */
    CHECK(oi == 30 && strcmp(argv[30], "seg_000") == 0 && strcmp(argv[31], "seg_001") == 0);
    /* defaults */
    rc = parse(&c, &t, &oi, NULL, "seg", NULL);
    CHECK(rc == 0 && oi == 1 && c.model == NULL && c.output == NULL && c.memory_mode == MEM_MODE_AUTO);
    CHECK(c.plan_only == 0 && c.device == 0 && c.threads == 0 && c.seed_set == 0 && c.quiet == 0 && c.verbose == 0);
    CHECK(cli_threads(&c) == cli_cpu_count() && cli_cpu_count() >= 1);
    /* long forms of the short ones, --opt=value */
    rc = parse(&c, &t, &oi, NULL, "--model=x.gguf", "--output=o", "--quiet", "--verbose", "--crf=30", "--memory-mode=cpu", "s", NULL);
    CHECK(rc == 0 && c.model && strcmp(c.model, "x.gguf") == 0 && c.output && strcmp(c.output, "o") == 0);
    CHECK(c.quiet && c.verbose == 1 && t.crf == 30 && c.memory_mode == MEM_MODE_CPU);
    /* "--" ends options */
    rc = parse(&c, &t, &oi, NULL, "--", "-o", NULL);
    CHECK(rc == 0 && c.output == NULL && oi == 2);
}

static void test_memory_modes(void)
{
    TEST("--memory-mode values");
    const char *names[] = { "auto", "beefy", "lightweight", "cpu" };
    struct cli_common c;
    struct tool t;
    for (int m = 0; m < 4; m++) {
        CHECK(parse(&c, &t, NULL, NULL, "--memory-mode", names[m], "s", NULL) == 0 && (int)c.memory_mode == m);
        CHECK_STR(mem_mode_name((enum mem_mode)m), names[m]);
        enum mem_mode out;
        CHECK(mem_mode_parse(names[m], &out) == 0 && (int)out == m);
    }
    char *err;
    CHECK(parse(&c, &t, NULL, &err, "--memory-mode", "huge", "s", NULL) == ISO_EUSAGE);
    CHECK(strstr(err, "stitch: --memory-mode: 'huge' is not one of auto, beefy, lightweight, cpu") != NULL);
    free(err);
    CHECK(parse(&c, &t, NULL, NULL, "--memory-mode", "CPU", "s", NULL) == ISO_EUSAGE);
    CHECK(parse(&c, &t, NULL, NULL, "--memory-mode", "", "s", NULL) == ISO_EUSAGE);
}

static void test_usage_errors(void)
{
    TEST("usage errors");
    struct cli_common c;
    struct tool t;
    char *err;
    CHECK(parse(&c, &t, NULL, &err, "--bogus", "s", NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "stitch: unknown option '--bogus'") && strstr(err, "usage: stitch [options]") &&
           strstr(err, "Try 'stitch --help'"), "%s", err);
    free(err);
    CHECK(parse(&c, &t, NULL, &err, "-Z", "s", NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "unknown option '-Z'") != NULL, "%s", err);
    free(err);
    CHECK(parse(&c, &t, NULL, &err, "s", "-o", NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "needs an argument") != NULL, "%s", err);
    free(err);
    CHECK(parse(&c, &t, NULL, &err, "s", "--overlap", NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "needs an argument") != NULL, "%s", err);
    free(err);
    CHECK(parse(&c, &t, NULL, &err, NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "missing argument") != NULL, "%s", err);
    free(err);
    CHECK(parse(&c, &t, NULL, &err, "a", "b", "c", "d", NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "unexpected argument 'd'") != NULL, "%s", err);
    free(err);
    /* a cluster with an unknown letter, then a fresh parse in the same process */
    CHECK(parse(&c, &t, NULL, NULL, "-qZ", "s", NULL) == ISO_EUSAGE);
    CHECK(parse(&c, &t, NULL, NULL, "-fq", "s", NULL) == 0 && t.fast && c.quiet);
    CHECK(parse(&c, &t, NULL, NULL, "-qf", "s", NULL) == 0 && t.fast && c.quiet);
    /* --help inside a cluster stops the parse half way through "-hq"; the next
     * parse must start clean, not carry on with the stale "q" */
    char *hq[] = { "stitch", "-hq", "s", NULL };
    cap_begin(1);
    int hr = cli_parse(&spec, 3, hq, &c, handler, &t, NULL);
    free(cap_end());
    CHECK(hr == 1);
    CHECK(parse(&c, &t, NULL, NULL, "-f", "s", NULL) == 0 && t.fast && !c.quiet);
    /* a handler error comes back as is */
    CHECK(parse(&c, &t, NULL, &err, "--crf", "99", "s", NULL) == ISO_EUSAGE);
    CHECKF(strstr(err, "--crf: 99 is out of range [0, 51]") != NULL, "%s", err);
    free(err);
}

static void test_ranges(void)
{
    TEST("ranges of the numeric flags");
    struct cli_common c;
    struct tool t;
    struct { const char *flag, *val; int ok; } r[] = {
        { "--threads", "1", 1 }, { "--threads", "4096", 1 }, { "--threads", "0", 0 }, { "--threads", "4097", 0 },
        { "--threads", "-2", 0 }, { "--threads", "3x", 0 }, { "--threads", "", 0 },
        { "--device", "0", 1 }, { "--device", "64", 1 }, { "--device", "-1", 0 }, { "--device", "65", 0 },
        { "--vram-reserve", "0", 1 }, { "--vram-reserve", "1073741824", 1 }, { "--vram-reserve", "1073741825", 0 },
        { "--vram-reserve", "-5", 0 }, { "--vram-reserve", "99999999999999999999", 0 },
        { "--wait-vram", "0", 1 }, { "--wait-vram", "2.5", 1 }, { "--wait-vram", "1e7", 1 }, { "--wait-vram", "-1", 0 },
        { "--wait-vram", "nan", 0 }, { "--wait-vram", "inf", 0 }, { "--wait-vram", "1e400", 0 }, { "--wait-vram", "5s", 0 },
        { "--seed", "0", 1 }, { "--seed", "18446744073709551615", 1 }, { "--seed", "18446744073709551616", 0 },
        { "--seed", "-1", 0 }, { "--seed", " -1", 0 }, { "--seed", "x", 0 }, { "--seed", "", 0 },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        int rc = parse(&c, &t, NULL, NULL, r[i].flag, r[i].val, "s", NULL);
        CHECKF(r[i].ok ? rc == 0 : rc == ISO_EUSAGE, "%s '%s': rc %d", r[i].flag, r[i].val, rc);
    }
    CHECK(parse(&c, &t, NULL, NULL, "--seed", "18446744073709551615", "s", NULL) == 0 && c.seed == UINT64_MAX);
    /* seeds are decimal: a leading zero is not octal */
    CHECK(parse(&c, &t, NULL, NULL, "--seed", "010", "s", NULL) == 0 && c.seed == 10);
    CHECK(parse(&c, &t, NULL, NULL, "--seed", "08", "s", NULL) == 0 && c.seed == 8);
    long v;
    double d;
    CHECK(cli_int("n", "17", 0, 20, &v) == 0 && v == 17);
    CHECK(cli_int("n", "21", 0, 20, &v) == ISO_EUSAGE && strstr(iso_errmsg(), "--n: 21 is out of range [0, 20]"));
    CHECK(cli_int("n", "1.5", 0, 20, &v) == ISO_EUSAGE && strstr(iso_errmsg(), "is not an integer"));
    CHECK(cli_double("x", "0.25", 0, 1, &d) == 0 && d == 0.25);
    CHECK(cli_double("x", "1.0001", 0, 1, &d) == ISO_EUSAGE);
    CHECK(cli_double("x", "abc", 0, 1, &d) == ISO_EUSAGE && strstr(iso_errmsg(), "is not a number"));
}

static void test_help(void)
{
    TEST("--help and --version");
    struct cli_common c;
    struct tool t;
    char *argv1[] = { "stitch", "--help", NULL };
    cap_begin(1);
    int rc = cli_parse(&spec, 2, argv1, &c, handler, &t, NULL);
    char *out = cap_end();
    CHECK(rc == 1);
    const char *first = "usage: stitch [options] -o final.mp4 SEGDIR...\n";
    CHECK(strncmp(out, first, strlen(first)) == 0);
    CHECK(strstr(out, "Crossfade segments and encode.") && strstr(out, "A paragraph about stitch."));
    CHECK(strstr(out, "stitch options:") && strstr(out, "      --overlap K") && strstr(out, "  -c, --crf N"));
    CHECK(strstr(out, "common options:") && strstr(out, "  -m, --model NAME|PATH") && strstr(out, "--memory-mode MODE"));
    CHECK(strstr(out, "--log-json FILE") && strstr(out, "  -h, --help") && strstr(out, "--version"));
    CHECK(strstr(out, "exit status: 0 ok, 64 usage") && strstr(out, "examples:\n  stitch -o a.mp4 seg_000 seg_001"));
    free(out);
    /* -h even with missing positionals and other flags around it */
    char *argv2[] = { "stitch", "-q", "-h", NULL };
    cap_begin(1);
    rc = cli_parse(&spec, 3, argv2, &c, handler, &t, NULL);
    out = cap_end();
    CHECK(rc == 1 && strncmp(out, "usage: stitch", 13) == 0);
    free(out);
    char *argv3[] = { "stitch", "--version", NULL };
    cap_begin(1);
    rc = cli_parse(&spec, 2, argv3, &c, handler, &t, NULL);
    out = cap_end();
    CHECK(rc == 1);
#ifdef ISOPIPE_CUDA
    CHECK_STR(out, "stitch (isopipe) " ISOPIPE_VERSION "\nbuilt with CUDA (this tool runs on the CPU only)\n");
#else
    CHECK_STR(out, "stitch (isopipe) " ISOPIPE_VERSION "\nbuilt without CUDA (CPU only)\n");
#endif
    free(out);
    /* a tool with a default model says so next to -m */
    struct cli_spec s2 = spec;
    s2.default_model = "smollm2-135m";
    cap_begin(1);
    rc = cli_parse(&s2, 2, argv1, &c, handler, &t, NULL);
    out = cap_end();
    CHECK(rc == 1 && strstr(out, "(default: smollm2-135m)"));
    free(out);
}

static void test_start_finish(void)
{
    TEST("cli_start / cli_finish");
    struct cli_common c;
    struct tool t;
    char ev[700];
    snprintf(ev, sizeof ev, "%s/ev.jsonl", dir);
    CHECK(parse(&c, &t, NULL, NULL, "--task-id", "CLI1", "--log-json", ev, "-v", "s", NULL) == 0);
    CHECK(cli_start(&spec, &c) == 0);
    CHECK_STR(log_task_id(), "CLI1");
    CHECK(log_get_level() == LOG_VERBOSE);
    cap_begin(2);
    iso_fail(ISO_EDATA, "cannot read 'x.png': not a PNG file");
    int code = cli_finish(ISO_EDATA);
    char *err = cap_end();
    CHECK(code == 65);
    CHECK_STR(err, "[CLI1] stitch: cannot read 'x.png': not a PNG file\n");
    free(err);
    CHECK(cli_finish(0) == 0);
    /* the error also went to the JSON log */
    char *d;
    size_t n;
    CHECK(fs_read_all(ev, &d, &n, 1 << 20) == 0 && strstr(d, "\"event\":\"error\"") && strstr(d, "not a PNG file"));
    free(d);
    CHECK(parse(&c, &t, NULL, NULL, "-q", "s", NULL) == 0 && cli_start(&spec, &c) == 0 && log_get_level() == LOG_ERROR);
    CHECK(parse(&c, &t, NULL, NULL, "-vv", "s", NULL) == 0 && cli_start(&spec, &c) == 0 && log_get_level() == LOG_DEBUG);
    /* an unopenable --log-json */
    CHECK(parse(&c, &t, NULL, NULL, "--log-json", "/nonexistent-dir/e.jsonl", "s", NULL) == 0);
    cap_begin(2);
    int rc = cli_start(&spec, &c);
    err = cap_end();
    CHECK(rc == ISO_ECANTCREAT && strstr(err, "/nonexistent-dir/e.jsonl"));
    free(err);
    log_close();
}

int main(void)
{
    char *d = test_tmpdir();
    if (!d) { printf("FAIL - cannot create a temporary directory\n0 passed, 1 failed, 0 skipped\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    test_common_flags();
    test_memory_modes();
    test_usage_errors();
    test_ranges();
    test_help();
    test_start_finish();
    fs_rm_rf(dir);
    return test_report();
}
