/* cli.h — the command-line contract every tool shares (docs/DESIGN.md).
 * A tool declares only its own options (struct cli_opt) and a handler;
 * cli_parse() adds the common ones, handles --help/--version, and fills
 * struct cli_common. --help text is generated the same way for every tool.
 * After parsing, cli_start() sets up logging. */
#ifndef ISOPIPE_CLI_H
#define ISOPIPE_CLI_H
#include <stdint.h>

enum mem_mode { MEM_MODE_AUTO = 0, MEM_MODE_BEEFY, MEM_MODE_LIGHTWEIGHT, MEM_MODE_CPU };
const char *mem_mode_name(enum mem_mode m);
int mem_mode_parse(const char *s, enum mem_mode *out);

struct cli_common {
    const char *model;          /* -m NAME|PATH, NULL = the tool's default */
    const char *output;         /* -o PATH */
    enum mem_mode memory_mode;  /* --memory-mode */
    int plan_only;              /* --plan */
    int device;                 /* --device N */
    int64_t vram_reserve_mib;   /* --vram-reserve MiB */
    double wait_vram_s;         /* --wait-vram SECONDS (0 = do not wait) */
    int threads;                /* --threads N (0 = all online CPUs) */
    uint64_t seed;              /* --seed N */
    int seed_set;
    const char *task_id;        /* --task-id */
    const char *log_json;       /* --log-json FILE */
    int quiet, verbose;
};

struct cli_opt {
    const char *name;     /* long name without dashes */
    int short_name;       /* 0 for none */
    const char *arg;      /* argument name for help, NULL for a flag */
    const char *help;     /* one line */
    int id;               /* passed to the handler; >= 1000 to stay clear of short options */
};

/* The common options a tool takes (struct cli_spec.common): --help shows
 * only these, and any other common option is refused as a usage error
 * (an option that is accepted and then ignored misleads). --task-id,
 * --log-json, -q, -v, --help and --version are always there. */
enum cli_common_opt {
    CLI_C_MODEL = 1 << 0, CLI_C_OUTPUT = 1 << 1, CLI_C_MEMMODE = 1 << 2, CLI_C_PLAN = 1 << 3,
    CLI_C_DEVICE = 1 << 4, CLI_C_RESERVE = 1 << 5, CLI_C_WAIT = 1 << 6, CLI_C_THREADS = 1 << 7,
    CLI_C_SEED = 1 << 8,
    /* a model-loading tool: planning, admission and the GPU choice */
    CLI_C_MEMORY = CLI_C_MEMMODE | CLI_C_PLAN | CLI_C_DEVICE | CLI_C_RESERVE | CLI_C_WAIT,
    CLI_C_ALL = 0x1ff,
};

struct cli_spec {
    const char *tool;         /* "stitch" */
    const char *usage;        /* "[options] -o final.mp4 SEGDIR..." */
    const char *summary;      /* one sentence */
    const char *description;  /* paragraphs after usage (may be NULL) */
    const struct cli_opt *opts; /* tool options, terminated by {0} */
    const char *examples;     /* lines of examples (may be NULL) */
    const char *default_model;/* shown in --help for -m, NULL when the tool has none */
    int min_args, max_args;   /* positional arguments allowed (max -1 = unlimited) */
    unsigned common;          /* enum cli_common_opt bits; 0 = all of them */
    int has_gpu_path;         /* --version says whether this build can use a GPU for it */
    int dash_output;          /* -o - means standard output; else it is refused */
    int dash_input;           /* a positional '-' means standard input; else it is refused */
};

/* handler returns 0, or a negative status after iso_fail() (a usage error) */
typedef int (*cli_handler)(void *ctx, int id, const char *arg);

/* Parses argv. Returns 0 to go on (positional args are argv[*optind_out..argc-1]),
 * 1 when --help/--version was printed (exit 0), or ISO_EUSAGE after printing
 * "tool: message" and a hint to stderr. */
int cli_parse(const struct cli_spec *spec, int argc, char **argv, struct cli_common *c,
              cli_handler handler, void *ctx, int *optind_out);

/* Logging (level, task id, --log-json) from the parsed options. Returns 0 or a
 * status. It takes no checkpoint: the tool (or common/runtime.c) logs "start". */
int cli_start(const struct cli_spec *spec, const struct cli_common *c);
/* Print "tool: <iso_errmsg()>" (as an error log line) and return the exit code. */
int cli_finish(int status);

/* Argument helpers for handlers: parse or iso_fail(ISO_EUSAGE, "--name: ...") */
int cli_int(const char *opt, const char *arg, long min, long max, long *out);
int cli_double(const char *opt, const char *arg, double min, double max, double *out);
/* number of online CPUs */
int cli_cpu_count(void);
/* threads to use: c->threads or all online CPUs */
int cli_threads(const struct cli_common *c);
#endif
