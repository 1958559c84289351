/* flow-extract — dense optical flow (DIS + variational refinement) from a
 * video, a directory of frames or a pair of images. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "extract.h"

enum { OPT_PAIR = 1000, OPT_BACKWARD, OPT_NO_VIS, OPT_VIS_MAX, OPT_EVERY, OPT_MAX_SIZE, OPT_PRESET, OPT_GLOBAL, OPT_NO_GLOBAL };

static const struct cli_opt opts[] = {
    { "pair", 0, NULL, "INPUT is two PNG files A.png B.png: one flow A -> B", OPT_PAIR },
    { "backward", 0, NULL, "also write flow_bwd_NNNNN.flo (frame i+1 -> i)", OPT_BACKWARD },
    { "no-vis", 0, NULL, "do not write the colour-wheel PNG beside each .flo", OPT_NO_VIS },
    { "vis-max", 0, "PX", "colour-wheel saturation at PX pixels (default: the run's largest magnitude)", OPT_VIS_MAX },
    { "every", 0, "N", "use every Nth frame (0, N, 2N, ...; default 1)", OPT_EVERY },
    { "max-size", 0, "PIXELS", "compute at most PIXELS on the long side (flows are scaled back to input pixels)", OPT_MAX_SIZE },
    { "preset", 0, "NAME", "fast | medium | accurate (default medium)", OPT_PRESET },
    { "no-global-motion", 0, NULL, "do not try the pair's dominant (camera) motion at each patch (on by default: large pans and periodic textures lock right, at a few % of the time)", OPT_NO_GLOBAL },
    { "global-motion", 0, NULL, "try the pair's dominant motion at each patch (the default; kept for older scripts)", OPT_GLOBAL },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "flow-extract",
    .usage = "[options] -o DIR INPUT  |  [options] -o DIR --pair A.png B.png",
    .summary = "Dense optical flow between consecutive frames (DIS with variational refinement).",
    .description =
        "INPUT is a video file (anything libavformat reads) or a directory of frame_*.png\n"
        "(sorted by name). DIR gets flow_00000.flo ... (Middlebury .flo, flow from selected\n"
        "frame i to i+1, in pixels of the input), flow_00000.png ... (Middlebury colour\n"
        "coding, white = still, saturation reaching 1 at the stated maximum), with --backward\n"
        "also flow_bwd_*.flo/png (i+1 -> i), and flow.json (inputs, sizes, preset, parameters,\n"
        "timing per pair, the colour normalisation, the memory report). DIR is built beside\n"
        "itself and renamed into place at the end: a failed run leaves nothing.\n"
        "\n"
        "Algorithm: DIS (Kroeger et al., ECCV 2016): coarse-to-fine inverse-search patch\n"
        "matching, densification, and variational refinement (brightness + gradient constancy\n"
        "+ smoothness) at every level; CPU, --threads threads. The model is built in: -m dis\n"
        "or nothing. Frames need at least 16x16 pixels; at least two frames are needed.\n"
        "Errors: 66 missing input or no frames, 65 unreadable/corrupt frames or video, frames\n"
        "of different sizes, a single frame; 73 output cannot be created; 64 bad options.",
    .opts = opts,
    .examples = "  flow-extract -o out/flow clip.mp4\n"
                "  flow-extract --preset fast --every 2 --max-size 640 -o out/flow frames/\n"
                "  flow-extract --backward -o out/pair --pair a.png b.png",
    .default_model = "dis (built in)",
    .min_args = 1,
    .max_args = 2,
    .common = CLI_C_MODEL | CLI_C_OUTPUT | CLI_C_MEMORY | CLI_C_THREADS,
    .has_gpu_path = 1,
};

struct parse_ctx {
    struct fx_opts *o;
    int pair;
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct parse_ctx *pc = ctx;
    struct fx_opts *o = pc->o;
    long v;
    double d;
    int rc = 0;
    switch (id) {
    case OPT_PAIR: pc->pair = 1; break;
    case OPT_BACKWARD: o->backward = 1; break;
    case OPT_NO_VIS: o->vis = 0; break;
    case OPT_VIS_MAX: if (!(rc = cli_double("vis-max", arg, 1e-6, 1e6, &d))) o->vis_max = d; break;
    case OPT_EVERY: if (!(rc = cli_int("every", arg, 1, 1000000, &v))) o->every = (int)v; break;
    case OPT_MAX_SIZE: if (!(rc = cli_int("max-size", arg, 16, 1 << 15, &v))) o->max_size = (int)v; break;
    case OPT_PRESET: rc = dis_preset_parse(arg, &o->preset); break;
    case OPT_GLOBAL: o->global = 1; break;
    case OPT_NO_GLOBAL: o->global = 0; break;
    default: rc = iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct fx_opts o;
    struct parse_ctx pc = { &o, 0 };
    int first = 0;
    fx_default_opts(&o);
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &pc, &first);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    int npos = argc - first;
    if ((pc.pair && npos != 2) || (!pc.pair && npos != 1)) {
        fprintf(stderr, "flow-extract: %s\nusage: flow-extract %s\n",
                pc.pair ? "--pair needs two images" : "one INPUT expected (use --pair for two images)", spec.usage);
        return iso_exit_code(ISO_EUSAGE);
    }
    if (!c.output && !c.plan_only) {
        fprintf(stderr, "flow-extract: missing -o DIR\nusage: flow-extract %s\n", spec.usage);
        return iso_exit_code(ISO_EUSAGE);
    }
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    o.input = argv[first];
    o.pair_b = pc.pair ? argv[first + 1] : NULL;
    o.output = c.output;
    o.threads = cli_threads(&c);
    o.common = &c;
    rc = fx_run(&o);
    return cli_finish(rc);
}
