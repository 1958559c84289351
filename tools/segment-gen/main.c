/* segment-gen — the frames of one video segment between two keyframes.
 * Thin: the command line into struct segment_args, then segment_run(). */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "err.h"
#include "sig.h"
#include "segment.h"

enum { OPT_START = 1000, OPT_END, OPT_FLOW, OPT_FLOW_BACK, OPT_FRAMES, OPT_SCENES, OPT_INDEX, OPT_FPS, OPT_PNG_LEVEL, OPT_SCALE };

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
    { "scale", 0, "S", "rife: working resolution, 0.25 0.5 1 2 or 4 (default 1; 0.5 for 4K)", OPT_SCALE },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "segment-gen",
    .usage = "[-m morph|rife] --start A.png --end B.png [--flow F.flo --flow-back G.flo] --frames N "
             "[--scale S] [--scenes scenes.json --index I] -o DIR",
    .summary = "Generate the frames of one video segment that carries the viewer from keyframe A to keyframe B.",
    .description =
        "Writes DIR/frame_00000.png (exactly A) ... DIR/frame_<N-1>.png (exactly B) and DIR/segment.json\n"
        "(model, keyframes, frames, fps, prompt, timing, memory), all at once or not at all.\n"
        "Models: morph (default): motion-compensated interpolation along the given flows, with\n"
        "occlusion reasoning by forward-backward consistency (Baker et al. 2011, section 3). It reads\n"
        "flows computed beforehand by flow-extract in its own process; it never computes flow.\n"
        "rife: RIFE (Practical-RIFE IFNet, 4.25/4.26 family), a learned network that estimates its own\n"
        "motion (no flow files) and takes each frame's time t = i/(N-1) as an input. Weights: models/rife.pkl\n"
        "(`make models`; a PyTorch checkpoint read without running its pickle). Frames are padded to a\n"
        "multiple of 128 and the flow is refined at 1/16 .. 1 of the frame size; --scale 0.5 works at half\n"
        "resolution (use it for 4K), 2 at twice. CPU only for now.\n"
        "Exit 65 for keyframes of different sizes, a flow of another size, N < 2 or an index not in\n"
        "--scenes, or a model file without a tensor the model needs, or with a wrong shape (the message\n"
        "names the tensor); exit 66 for an input file that does not exist (so a driver can tell a stage\n"
        "that has not run from bad data); exit 69 for an unknown model or a model file not found (the\n"
        "message names every path tried).",
    .opts = opts,
    .examples = "  flow-extract --pair a.png b.png --backward -o flow/\n"
                "  segment-gen --start a.png --end b.png --flow flow/flow_00000.flo \\\n"
                "      --flow-back flow/flow_bwd_00000.flo --frames 49 -o seg_000\n"
                "  segment-gen -m rife --start a.png --end b.png --frames 49 -o seg_000",
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
    case OPT_SCALE:
        if (!(rc = cli_double("scale", arg, 0.25, 4, &a->scale)) && a->scale != 0.25 && a->scale != 0.5 &&
            a->scale != 1 && a->scale != 2 && a->scale != 4)
            rc = iso_fail(ISO_EUSAGE, "--scale: %s is not one of 0.25, 0.5, 1, 2, 4", arg);
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
