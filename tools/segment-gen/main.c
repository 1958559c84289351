/* segment-gen — the frames of one video segment between two keyframes.
 * Thin: the command line into struct segment_args, then segment_run(). */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "err.h"
#include "sig.h"
#include "segment.h"

enum { OPT_START = 1000, OPT_END, OPT_FLOW, OPT_FLOW_BACK, OPT_FRAMES, OPT_SCENES, OPT_INDEX, OPT_FPS, OPT_PNG_LEVEL };

static const struct cli_opt opts[] = {
    { "start", 0, "A.png", "keyframe at t = 0 (written as frame_00000.png, unchanged)", OPT_START },
    { "end", 0, "B.png", "keyframe at t = 1 (written as the last frame, unchanged)", OPT_END },
    { "flow", 0, "F.flo", "optical flow A -> B (flow-extract --pair A B: flow_00000.flo)", OPT_FLOW },
    { "flow-back", 0, "G.flo", "optical flow B -> A (flow-extract --backward: flow_bwd_00000.flo)", OPT_FLOW_BACK },
    { "frames", 0, "N", "frames in the segment, both keyframes included (default 25, at least 2)", OPT_FRAMES },
    { "scenes", 0, "FILE", "scenes.json from prompt-expand; the segment's prompt goes into segment.json", OPT_SCENES },
    { "index", 0, "I", "which segment of --scenes this is", OPT_INDEX },
    { "fps", 0, "F", "frame rate recorded in segment.json (default 24)", OPT_FPS },
    { "png-level", 0, "L", "zlib level of the frames, 1 (fast) .. 9 (default 1)", OPT_PNG_LEVEL },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "segment-gen",
    .usage = "[-m morph] --start A.png --end B.png --flow F.flo --flow-back G.flo --frames N "
             "[--scenes scenes.json --index I] -o DIR",
    .summary = "Generate the frames of one video segment that carries the viewer from keyframe A to keyframe B.",
    .description =
        "Writes DIR/frame_00000.png (exactly A) ... DIR/frame_<N-1>.png (exactly B) and DIR/segment.json\n"
        "(model, keyframes, frames, fps, prompt, timing, memory), all at once or not at all.\n"
        "Models: morph (default): motion-compensated interpolation along the given flows, with\n"
        "occlusion reasoning by forward-backward consistency (Baker et al. 2011, section 3). It reads\n"
        "flows computed beforehand by flow-extract in its own process; it never computes flow.\n"
        "Exit 65 for keyframes of different sizes, a flow of another size, N < 2 or an index not in\n"
        "--scenes; exit 66 for an input file that does not exist (so a driver can tell a stage that has\n"
        "not run from bad data); exit 69 for an unknown model.",
    .opts = opts,
    .examples = "  flow-extract --pair a.png b.png --backward -o flow/\n"
                "  segment-gen --start a.png --end b.png --flow flow/flow_00000.flo \\\n"
                "      --flow-back flow/flow_bwd_00000.flo --frames 49 -o seg_000",
    .default_model = "morph",
    .min_args = 0,
    .max_args = 0,
    .common = CLI_C_ALL,
    .has_gpu_path = 0,
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct segment_args *a = ctx;
    long v;
    int rc = 0;
    switch (id) {
    case OPT_START: a->start = arg; break;
    case OPT_END: a->end = arg; break;
    case OPT_FLOW: a->flow = arg; break;
    case OPT_FLOW_BACK: a->flow_back = arg; break;
    /* any integer parses; N < 2 is bad data (exit 65), checked with the other inputs */
    case OPT_FRAMES: rc = cli_int("frames", arg, LONG_MIN, 100000, &a->frames); break;
    case OPT_SCENES: a->scenes = arg; break;
    case OPT_INDEX: rc = cli_int("index", arg, 0, INT_MAX, &a->index); break;
    case OPT_FPS: rc = cli_double("fps", arg, 1e-3, 1e4, &a->fps); break;
    case OPT_PNG_LEVEL:
        if (!(rc = cli_int("png-level", arg, 1, 9, &v))) a->png_level = (int)v;
        break;
    default: rc = iso_fail(ISO_EINTERNAL, "unhandled option %d", id);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct segment_args a;
    struct cli_common c;
    segment_args_default(&a);
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &a, NULL);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    sig_install();
    return cli_finish(segment_run(&a, &c));
}
