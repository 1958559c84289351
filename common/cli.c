#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "sig.h"
#include "log.h"
#include "mem.h"

enum {
    OPT_HELP = 'h', OPT_MODEL = 'm', OPT_OUTPUT = 'o', OPT_QUIET = 'q', OPT_VERBOSE = 'v',
    OPT_VERSION = 256, OPT_MEMMODE, OPT_PLAN, OPT_DEVICE, OPT_RESERVE, OPT_WAIT, OPT_THREADS,
    OPT_SEED, OPT_TASK, OPT_LOGJSON,
};

/* the enum cli_common_opt bit of a common option; 0 for those every tool has */
static unsigned common_bit(int id)
{
    switch (id) {
    case OPT_MODEL: return CLI_C_MODEL;
    case OPT_OUTPUT: return CLI_C_OUTPUT;
    case OPT_MEMMODE: return CLI_C_MEMMODE;
    case OPT_PLAN: return CLI_C_PLAN;
    case OPT_DEVICE: return CLI_C_DEVICE;
    case OPT_RESERVE: return CLI_C_RESERVE;
    case OPT_WAIT: return CLI_C_WAIT;
    case OPT_THREADS: return CLI_C_THREADS;
    case OPT_SEED: return CLI_C_SEED;
    default: return 0;
    }
}

static unsigned spec_common(const struct cli_spec *s) { return s->common ? s->common : CLI_C_ALL; }

static const struct cli_opt common_opts[] = {
    { "model", 'm', "NAME|PATH", "model; NAME is looked up in $ISOPIPE_MODELS, $XDG_DATA_HOME/isopipe/models, <prefix>/share/isopipe/models, <bin>/../models", OPT_MODEL },
    { "output", 'o', "PATH", "where results go (written atomically; an existing folder is replaced only when it is this tool's earlier output)", OPT_OUTPUT },
    { "memory-mode", 0, "MODE", "auto|beefy|lightweight|cpu (default auto: from the memory plan and free VRAM)", OPT_MEMMODE },
    { "plan", 0, NULL, "print the memory plan as JSON and exit without loading weights", OPT_PLAN },
    { "device", 0, "N", "CUDA device (default 0)", OPT_DEVICE },
    { "vram-reserve", 0, "MiB", "leave this much VRAM free for other programs (default 0)", OPT_RESERVE },
    { "wait-vram", 0, "SECONDS", "wait up to this long for VRAM to free up, then exit 75 (default 0)", OPT_WAIT },
    { "threads", 0, "N", "CPU threads (default: all online CPUs)", OPT_THREADS },
    { "seed", 0, "N", "random seed (default 0)", OPT_SEED },
    { "task-id", 0, "ID", "prefix for every log line (default: a fresh id)", OPT_TASK },
    { "log-json", 0, "FILE", "append machine-readable events (JSON Lines) to FILE", OPT_LOGJSON },
    { "quiet", 'q', NULL, "only errors on stderr", OPT_QUIET },
    { "verbose", 'v', NULL, "more detail on stderr", OPT_VERBOSE },
    { "help", 'h', NULL, "show this help and exit", OPT_HELP },
    { "version", 0, NULL, "show the version and exit", OPT_VERSION },
    { 0 },
};

const char *mem_mode_name(enum mem_mode m)
{
    switch (m) {
    case MEM_MODE_AUTO: return "auto";
    case MEM_MODE_BEEFY: return "beefy";
    case MEM_MODE_LIGHTWEIGHT: return "lightweight";
    case MEM_MODE_CPU: return "cpu";
    }
    return "?";
}

int mem_mode_parse(const char *s, enum mem_mode *out)
{
    for (int m = MEM_MODE_AUTO; m <= MEM_MODE_CPU; m++)
        if (strcmp(s, mem_mode_name((enum mem_mode)m)) == 0) { *out = (enum mem_mode)m; return 0; }
    return iso_fail(ISO_EUSAGE, "--memory-mode: '%s' is not one of auto, beefy, lightweight, cpu", s);
}

int cli_int(const char *opt, const char *arg, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end)
        return iso_fail(ISO_EUSAGE, "--%s: '%s' is not an integer", opt, arg);
    if (v < min || v > max)
        return iso_fail(ISO_EUSAGE, "--%s: %ld is out of range [%ld, %ld]", opt, v, min, max);
    *out = v;
    return 0;
}

int cli_double(const char *opt, const char *arg, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || v != v)
        return iso_fail(ISO_EUSAGE, "--%s: '%s' is not a number", opt, arg);
    if (v < min || v > max)
        return iso_fail(ISO_EUSAGE, "--%s: %g is out of range [%g, %g]", opt, v, min, max);
    *out = v;
    return 0;
}

int cli_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

int cli_threads(const struct cli_common *c)
{
    return c->threads > 0 ? c->threads : cli_cpu_count();
}

static void print_opts(FILE *f, const struct cli_opt *o, const char *default_model, unsigned common)
{
    for (; o && o->name; o++) {
        unsigned bit = common_bit(o->id);
        if (bit && !(common & bit)) continue;
        char left[96];
        int n = 0;
        if (o->short_name) n = snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name);
        else n = snprintf(left, sizeof left, "      --%s", o->name);
        if (o->arg && n < (int)sizeof left) snprintf(left + n, sizeof left - n, " %s", o->arg);
        if (strlen(left) > 28) fprintf(f, "%s\n%-30s", left, "");
        else fprintf(f, "%-30s", left);
        fprintf(f, "%s", o->help);
        if (o->id == OPT_MODEL && default_model) fprintf(f, " (default: %s)", default_model);
        fputc('\n', f);
    }
}

static void print_help(const struct cli_spec *s)
{
    printf("usage: %s %s\n\n%s\n", s->tool, s->usage, s->summary);
    if (s->description) printf("\n%s\n", s->description);
    if (s->opts && s->opts->name) {
        printf("\n%s options:\n", s->tool);
        print_opts(stdout, s->opts, NULL, CLI_C_ALL);
    }
    printf("\ncommon options:\n");
    print_opts(stdout, common_opts, s->default_model, spec_common(s));
    printf("\nexit status: 0 ok, 64 usage, 65 bad input data, 66 input missing, 69 model unavailable,\n"
           "70 internal error, 73 cannot create output, 74 I/O error, 75 not enough VRAM/RAM now,\n"
           "130 interrupted (SIGINT, SIGTERM, SIGHUP). A failed run leaves no partial output behind.\n");
    if (s->examples) printf("\nexamples:\n%s\n", s->examples);
}

int cli_parse(const struct cli_spec *spec, int argc, char **argv, struct cli_common *c,
              cli_handler handler, void *ctx, int *optind_out)
{
    /* the first thing every tool does: a signal from here on stops it with
     * 130 at its next safe point (common/sig.h) */
    sig_install();
    memset(c, 0, sizeof *c);
    int ntool = 0, ncommon = 0;
    for (const struct cli_opt *o = spec->opts; o && o->name; o++) ntool++;
    for (const struct cli_opt *o = common_opts; o->name; o++) ncommon++;
    struct option *lo = calloc((size_t)(ntool + ncommon + 1), sizeof *lo);
    char shorts[256];
    int ns = 0, k = 0, rc = 0;
    if (!lo) return iso_fail(ISO_EINTERNAL, "out of memory");
    shorts[ns++] = ':';
    const struct cli_opt *sets[2] = { spec->opts, common_opts };
    unsigned allowed = spec_common(spec);
    for (int s = 0; s < 2; s++)
        for (const struct cli_opt *o = sets[s]; o && o->name; o++) {
            /* a common option the tool does not take stays known to getopt
             * (so the message can say it does not apply) but is refused below */
            lo[k].name = o->name;
            lo[k].has_arg = o->arg ? required_argument : no_argument;
            lo[k].flag = NULL;
            lo[k].val = o->short_name ? o->short_name : o->id;
            k++;
            if (o->short_name && ns < (int)sizeof shorts - 3) {
                shorts[ns++] = (char)o->short_name;
                if (o->arg) shorts[ns++] = ':';
            }
        }
    shorts[ns] = 0;

    /* 0, not 1: glibc then resets its whole scanner, including the position
     * inside a cluster such as "-hq" left over from an earlier parse */
    optind = 0;
    opterr = 0;
    for (;;) {
        int li = -1;
        int ch = getopt_long(argc, argv, shorts, lo, &li);
        if (ch == -1) break;
        if (ch == '?' || ch == ':') {
            const char *bad = argv[optind - 1];
            if (ch == ':') rc = iso_fail(ISO_EUSAGE, "option '%s' needs an argument", bad);
            else if (optopt && optopt < 256 && optopt != '?') rc = iso_fail(ISO_EUSAGE, "unknown option '-%c'", optopt);
            else rc = iso_fail(ISO_EUSAGE, "unknown option '%s'", bad);
            goto done;
        }
        /* map a short option back to its id (tool options first, as declared) */
        int id = ch;
        for (int s = 0; s < 2; s++)
            for (const struct cli_opt *o = sets[s]; o && o->name; o++)
                if (o->short_name && o->short_name == ch) { id = o->id; goto found; }
    found:;
        long v;
        double d;
        if (common_bit(id) && !(allowed & common_bit(id))) {
            const char *name = "?";
            for (const struct cli_opt *o = common_opts; o->name; o++)
                if (o->id == id) name = o->name;
            rc = iso_fail(ISO_EUSAGE, "option '--%s' does not apply to %s", name, spec->tool);
            goto done;
        }
        switch (id) {
        case OPT_HELP: print_help(spec); rc = 1; goto done;
        case OPT_VERSION:
            printf("%s (isopipe) %s\n", spec->tool, ISOPIPE_VERSION);
#ifdef ISOPIPE_CUDA
            printf("built with CUDA%s\n", spec->has_gpu_path ? "" : " (this tool runs on the CPU only)");
#else
            printf("built without CUDA (CPU only)\n");
#endif
            rc = 1;
            goto done;
        case OPT_MODEL: c->model = optarg; break;
        case OPT_OUTPUT:
            if (!*optarg) { rc = iso_fail(ISO_EUSAGE, "-o: the output path is empty"); goto done; }
            c->output = optarg;
            break;
        case OPT_MEMMODE: if ((rc = mem_mode_parse(optarg, &c->memory_mode))) goto done; break;
        case OPT_PLAN: c->plan_only = 1; break;
        case OPT_DEVICE: if ((rc = cli_int("device", optarg, 0, 64, &v))) goto done; c->device = (int)v; break;
        case OPT_RESERVE: if ((rc = cli_int("vram-reserve", optarg, 0, 1L << 30, &v))) goto done; c->vram_reserve_mib = v; break;
        case OPT_WAIT: if ((rc = cli_double("wait-vram", optarg, 0, 1e7, &d))) goto done; c->wait_vram_s = d; break;
        case OPT_THREADS: if ((rc = cli_int("threads", optarg, 1, 4096, &v))) goto done; c->threads = (int)v; break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            /* decimal only: base 0 read "010" as 8 and refused "08"; strtoull
             * would also wrap " -1" to 2^64-1, so the first character must be a digit */
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] < '0' || optarg[0] > '9') {
                rc = iso_fail(ISO_EUSAGE, "--seed: '%s' is not a non-negative integer", optarg);
                goto done;
            }
            c->seed = s;
            c->seed_set = 1;
            break;
        }
        case OPT_TASK: c->task_id = optarg; break;
        case OPT_LOGJSON: c->log_json = optarg; break;
        case OPT_QUIET: c->quiet = 1; break;
        case OPT_VERBOSE: c->verbose++; break;
        default:
            if (!handler) { rc = iso_fail(ISO_EINTERNAL, "option without a handler"); goto done; }
            if ((rc = handler(ctx, id, optarg))) goto done;
        }
    }
    int npos = argc - optind;
    if (npos < spec->min_args) {
        rc = iso_fail(ISO_EUSAGE, npos ? "too few arguments" : "missing argument");
        goto done;
    }
    if (spec->max_args >= 0 && npos > spec->max_args) {
        rc = iso_fail(ISO_EUSAGE, "unexpected argument '%s'", argv[optind + spec->max_args]);
        goto done;
    }
    /* '-' is a stream where the tool says so, and never a file named '-' */
    if (c->output && !strcmp(c->output, "-") && !spec->dash_output) {
        rc = iso_fail(ISO_EUSAGE, "-o -: %s does not write to standard output (it writes files); give a path, or ./- for a "
                      "file named '-'", spec->tool);
        goto done;
    }
    for (int i = optind; i < argc; i++)
        if (!strcmp(argv[i], "-") && !spec->dash_input) {
            rc = iso_fail(ISO_EUSAGE, "'-': %s does not read standard input; give a path, or ./- for a file named '-'",
                          spec->tool);
            goto done;
        }
    if (optind_out) *optind_out = optind;
done:
    free(lo);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\nusage: %s %s\nTry '%s --help' for more information.\n", spec->tool,
                iso_errmsg(), spec->tool, spec->usage, spec->tool);
    }
    return rc;
}

int cli_start(const struct cli_spec *spec, const struct cli_common *c)
{
    enum log_level lvl = c->quiet ? LOG_ERROR : c->verbose > 1 ? LOG_DEBUG : c->verbose ? LOG_VERBOSE : LOG_INFO;
    int rc = log_init(spec->tool, c->task_id, lvl, c->log_json);
    /* every tool: SIGINT/SIGTERM/SIGHUP stop the run at its next safe point,
     * its temporaries go, exit 130 (common/sig.h); cli_parse installed it
     * already, this covers a tool that calls cli_start alone */
    sig_install();
    if (rc) {
        log_error("%s", iso_errmsg());
        return rc;
    }
    return 0;
}

int cli_finish(int status)
{
    if (status < 0) log_error("%s", iso_errmsg());
    log_close();
    return iso_exit_code(status);
}
