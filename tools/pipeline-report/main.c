/* pipeline-report — the travel driver's helper (pipelines/travel.mk):
 *   topic-vars  check a topic file and print it as Make variables
 *   stamp       write a stamp file only when its content changes
 *   tensor-stamp  the same, of the digests of named tensors (MODEL=wan)
 *   run         run one stage's tool: timing, retry after exit 75, VRAM check
 *   report      report.json + memory.png from every stage's JSON output
 *   summary     the table at the end of pipelines/batch.sh */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "report.h"
#include "travel.h"

enum { OPT_SEGMODEL = 1000, OPT_PROMPT_TOPIC, OPT_DIR, OPT_NAME, OPT_KIND, OPT_JSON, OPT_PROBE, OPT_BTIMEOUT,
       OPT_BTOL, OPT_PNG, OPT_TITLE, OPT_SWEEP, OPT_WAN_MODEL, OPT_KEY_TOPIC, OPT_NEGATIVE };

static const struct cli_opt opts[] = {
    { "seg-model", 0, "NAME", "topic-vars: the segment model the topic is checked for (default morph)", OPT_SEGMODEL },
    { "prompt-topic", 0, "FILE", "topic-vars: also write the prompt stage's topic file", OPT_PROMPT_TOPIC },
    { "wan-model", 0, "ROLE=NAME", "topic-vars --seg-model wan: a model the run needs (repeat; each must be found)", OPT_WAN_MODEL },
    { "key-topic", 0, "FILE", "topic-vars --seg-model wan: the keyframe prompts' topic file (keyframes generated)", OPT_KEY_TOPIC },
    { "negative", 0, "FILE", "topic-vars --seg-model wan: where the topic's negative prompt is written", OPT_NEGATIVE },
    { "dir", 0, "DIR", "run/report: the run's bookkeeping folder (OUT/.travel)", OPT_DIR },
    { "name", 0, "NAME", "run: the stage's name (seg_001)", OPT_NAME },
    { "kind", 0, "KIND", "run: prompt, flow, segment or stitch", OPT_KIND },
    { "json", 0, "FILE", "run: the stage's JSON output (its memory mode decides the VRAM check)", OPT_JSON },
    { "probe", 0, "PATH", "run: vram-probe binary (missing: no GPU check)", OPT_PROBE },
    { "baseline-timeout", 0, "SECONDS", "run: how long vram-probe may wait for the baseline (default 30)", OPT_BTIMEOUT },
    { "baseline-tolerance", 0, "MiB", "run: tolerance for the baseline (default: vram-probe's)", OPT_BTOL },
    { "sweep", 0, "DIR", "run: first remove temporaries of dead processes in DIR (left by kill -9)", OPT_SWEEP },
    { "png", 0, "FILE", "report: also draw memory.png", OPT_PNG },
    { "title", 0, "TEXT", "report: title of memory.png", OPT_TITLE },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "pipeline-report",
    .usage = "topic-vars|stamp|tensor-stamp|run|report|summary [options] ARGS...",
    .summary = "Helper of the travel pipeline's Make driver: topic variables, stamps, the stage runner, the report.",
    .description =
        "  topic-vars [--seg-model M] [--prompt-topic FILE] -o VARS.mk TOPICFILE\n"
        "  topic-vars --seg-model wan [--wan-model ROLE=NAME]... [--key-topic F] [--negative F] -o VARS.mk TOPICFILE\n"
        "  stamp FILE -- WORD...\n"
        "  tensor-stamp STAMP WEIGHTS NAME...   (sha256, dtype, shape of each tensor)\n"
        "  run --dir D --name N [--kind K] [--json F] [--probe P] [--sweep DIR] [--memory-mode M] -- COMMAND...\n"
        "  report [--dir D] [--png F] -o report.json NAME=STAGE.json...\n"
        "  summary -- NAME EXIT WALL OUTDIR...   (exit 1 when a run failed)",
    .opts = opts,
    .examples = "  pipeline-report topic-vars -o out/h/.travel/vars.mk sample_inputs/harbor.topic\n"
                "  pipeline-report report --dir out/h/.travel --png out/h/memory.png -o out/h/report.json prompt=out/h/scenes.json",
    .min_args = 1,
    .max_args = -1,
    .common = CLI_C_OUTPUT | CLI_C_MEMMODE,
    .has_gpu_path = 0,
};

struct args {
    const char *seg_model, *prompt_topic, *dir, *name, *kind, *json, *probe, *png, *title, *sweep;
    const char *key_topic, *negative;
    char *models[16];
    int nmodels;
    double btimeout;
    long btol;
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct args *a = ctx;
    switch (id) {
    case OPT_SEGMODEL: a->seg_model = arg; return 0;
    case OPT_PROMPT_TOPIC: a->prompt_topic = arg; return 0;
    case OPT_DIR: a->dir = arg; return 0;
    case OPT_NAME: a->name = arg; return 0;
    case OPT_KIND: a->kind = arg; return 0;
    case OPT_JSON: a->json = arg; return 0;
    case OPT_PROBE: a->probe = arg; return 0;
    case OPT_BTIMEOUT: return cli_double("baseline-timeout", arg, 0, 86400, &a->btimeout);
    case OPT_BTOL: return cli_int("baseline-tolerance", arg, 0, 1 << 20, &a->btol);
    case OPT_SWEEP: a->sweep = arg; return 0;
    case OPT_PNG: a->png = arg; return 0;
    case OPT_TITLE: a->title = arg; return 0;
    case OPT_KEY_TOPIC: a->key_topic = arg; return 0;
    case OPT_NEGATIVE: a->negative = arg; return 0;
    case OPT_WAN_MODEL:
        if (a->nmodels >= 16) return iso_fail(ISO_EUSAGE, "--wan-model: at most 16");
        if (!strchr(arg, '=') || arg[0] == '=') return iso_fail(ISO_EUSAGE, "--wan-model: '%s' is not ROLE=NAME", arg);
        a->models[a->nmodels++] = (char *)arg;
        return 0;
    }
    return iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct args a = { 0 };
    struct report_stage_in *st = NULL;
    int first, rc = cli_parse(&spec, argc, argv, &c, on_opt, &a, &first);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    const char *cmd = argv[first];
    char **rest = argv + first + 1;
    int nrest = argc - first - 1;

    if (strcmp(cmd, "topic-vars") == 0) {
        if (nrest != 1 || !c.output) { rc = iso_fail(ISO_EUSAGE, "topic-vars: usage: topic-vars -o VARS.mk TOPICFILE"); goto done; }
        struct travel_vars_opts o = { a.seg_model, a.prompt_topic, a.nmodels, a.models, a.key_topic, a.negative };
        rc = a.seg_model && strcmp(a.seg_model, "wan") == 0 ? travel_topic_vars_wan(rest[0], c.output, &o)
                                                           : travel_topic_vars(rest[0], c.output, &o);
    } else if (strcmp(cmd, "stamp") == 0) {
        if (nrest < 1) { rc = iso_fail(ISO_EUSAGE, "stamp: usage: stamp FILE -- WORD..."); goto done; }
        rc = travel_stamp(rest[0], nrest - 1, rest + 1);
    } else if (strcmp(cmd, "tensor-stamp") == 0) {
        if (nrest < 3) { rc = iso_fail(ISO_EUSAGE, "tensor-stamp: usage: tensor-stamp STAMP WEIGHTS NAME..."); goto done; }
        rc = travel_tensor_stamp(rest[0], rest[1], nrest - 2, rest + 2);
    } else if (strcmp(cmd, "run") == 0) {
        if (!a.dir || !a.name) { rc = iso_fail(ISO_EUSAGE, "run: --dir and --name are required"); goto done; }
        struct travel_run_opts o = { a.dir, a.name, a.kind, a.json, mem_mode_name(c.memory_mode), a.probe,
                                     a.btimeout, (int)a.btol, a.sweep };
        rc = travel_run(&o, nrest, rest);
        /* the tool's exit status passes through unchanged; its message is already on stderr */
        if (rc > 0) { cli_finish(0); return rc; }
    } else if (strcmp(cmd, "report") == 0) {
        if (!c.output || nrest < 1) { rc = iso_fail(ISO_EUSAGE, "report: usage: report -o report.json NAME=STAGE.json..."); goto done; }
        st = calloc((size_t)nrest, sizeof *st);
        if (!st) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        for (int i = 0; i < nrest; i++) {
            char *eq = strchr(rest[i], '=');
            if (!eq || eq == rest[i] || !eq[1]) { rc = iso_fail(ISO_EUSAGE, "report: '%s' is not NAME=STAGE.json", rest[i]); goto done; }
            *eq = 0;
            st[i].name = rest[i];
            st[i].json = eq + 1;
        }
        rc = report_write(st, nrest, a.dir, c.output, a.png, a.title);
    } else if (strcmp(cmd, "summary") == 0) {
        int failed = 0;
        rc = travel_summary(nrest, rest, &failed);
        if (!rc && failed) { cli_finish(0); return 1; }
    } else {
        rc = iso_fail(ISO_EUSAGE, "unknown command '%s' (topic-vars, stamp, tensor-stamp, run, report, summary)", cmd);
    }
done:
    free(st);
    return cli_finish(rc);
}
