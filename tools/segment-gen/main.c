/* segment-gen — the frames of one video segment between two keyframes.
 * Thin: the command line into struct segment_args, then segment_run(). */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "err.h"
#include "sig.h"
#include "segment.h"
#include "segmodel.h"

enum { OPT_START = 1000, OPT_END, OPT_FLOW, OPT_FLOW_BACK, OPT_FRAMES, OPT_SCENES, OPT_INDEX, OPT_FPS, OPT_PNG_LEVEL,
       OPT_SCALE, OPT_TEXT, OPT_NOISE, OPT_WIDTH, OPT_HEIGHT, OPT_STEPS, OPT_GUIDANCE, OPT_SHIFT, OPT_SAMPLER, OPT_HEADS,
       OPT_VACE_CONTEXT, OPT_VACE_SCALE };

static const struct cli_opt opts[] = {
    { "start", 0, "A.png", "keyframe at t = 0 (written as frame_00000.png, unchanged)", OPT_START },
    { "end", 0, "B.png", "keyframe at t = 1 (written as the last frame, unchanged)", OPT_END },
    { "flow", 0, "F.flo", "optical flow A -> B (flow-extract --pair A B: flow_00000.flo)", OPT_FLOW },
    { "flow-back", 0, "G.flo", "optical flow B -> A (flow-extract --backward: flow_bwd_00000.flo)", OPT_FLOW_BACK },
    { "frames", 0, "N", "frames in the segment, both keyframes included (default 25, at least 2; Wan: 4k+1, default 81)", OPT_FRAMES },
    { "scenes", 0, "FILE", "scenes.json from prompt-expand; the segment's prompt goes into segment.json", OPT_SCENES },
    { "index", 0, "I", "which segment of --scenes this is (Wan: the prompt tensor prompt.<I> of --text, default 0)", OPT_INDEX },
    { "text", 0, "EMB", "Wan: text embeddings from text-encode (prompt.<I>, negative)", OPT_TEXT },
    { "noise", 0, "FILE", "Wan: initial noise (tensor 'noise' [16, (N-1)/4+1, H/8, W/8]) instead of --seed's", OPT_NOISE },
    { "width", 0, "W", "Wan: width in pixels, a multiple of 16 (default 832)", OPT_WIDTH },
    { "height", 0, "H", "Wan: height in pixels, a multiple of 16 (default 480)", OPT_HEIGHT },
    { "steps", 0, "S", "Wan: sampling steps (default 50)", OPT_STEPS },
    { "guidance", 0, "G", "Wan: classifier-free guidance scale (default 6; 1 = no negative prompt)", OPT_GUIDANCE },
    { "shift", 0, "F", "Wan: flow shift of the sigma schedule (default 8)", OPT_SHIFT },
    { "sampler", 0, "NAME", "Wan: unipc (default) or euler", OPT_SAMPLER },
    { "heads", 0, "N", "Wan: attention heads of a single-file model without config.json (default dim/128)", OPT_HEADS },
    { "vace-context", 0, "CTX", "Wan VACE: the context from vae encode --vace ('vace_context' [96, T, H/8, W/8])", OPT_VACE_CONTEXT },
    { "vace-scale", 0, "S", "Wan VACE: scale of the context's hints, 0 .. 100 (default 1)", OPT_VACE_SCALE },
    { "fps", 0, "F", "frame rate recorded in segment.json (default 24)", OPT_FPS },
    { "png-level", 0, "L", "zlib level of the frames, 1 (fast) .. 9 (default 1)", OPT_PNG_LEVEL },
    { "scale", 0, "S", "rife: working resolution, 0.25 0.5 1 2 or 4 (default 1; 0.5 for 4K)", OPT_SCALE },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "segment-gen",
    .usage = "[-m morph|rife] --start A.png --end B.png [--flow F.flo --flow-back G.flo] --frames N "
             "[--scale S] [--scenes scenes.json --index I] -o DIR\n"
             "  or: segment-gen -m WAN --text EMB.safetensors [--index I] [--noise NOISE.safetensors] --frames N\n"
             "      --width W --height H [--steps S] [--guidance G] [--shift F] [--sampler unipc|euler] [--seed N] -o DIR\n"
             "  or: segment-gen -m WAN_VACE --vace-context CTX.safetensors [--vace-scale S] --text EMB.safetensors ... -o DIR",
    .summary = "Generate the frames of one video segment that carries the viewer from keyframe A to keyframe B,\n"
               "or (-m a Wan2.1 DiT) the latents of a segment from its text embeddings (VACE: and keyframes).",
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
        "resolution (use it for 4K), 2 at twice. Memory: cpu mode reads the weights in place; beefy and\n"
        "lightweight (a CUDA build) run the whole forward on the GPU with all weights resident there (24 MB:\n"
        "nothing is streamed, so the two modes are the same). Not yet verified on a card: auto picks cpu, only\n"
        "an explicit --memory-mode beefy|lightweight takes the GPU; without cuBLAS it says so and runs on the CPU.\n"
        "Exit 65 for keyframes of different sizes, a flow of another size, N < 2 or an index not in\n"
        "--scenes, or a model file without a tensor the model needs, or with a wrong shape (the message\n"
        "names the tensor); exit 66 for an input file that does not exist (so a driver can tell a stage\n"
        "that has not run from bad data); exit 69 for an unknown model or a model file not found (the\n"
        "message names every path tried).\n"
        "\n"
        "Wan2.1 text-to-video (-m a Wan2.1 T2V DiT: a diffusers directory, a Wan checkpoint directory or a\n"
        "ComfyUI single file; f32, f16, bf16 or scaled fp8-e4m3; recognised from its tensor names): denoises\n"
        "latents from the embeddings text-encode wrote and writes DIR/latents.safetensors ('latents', float32\n"
        "[16, (N-1)/4+1, H/8, W/8], for vae decode) and DIR/segment.json. Only the DiT is loaded. Defaults are\n"
        "Wan2.1's published recommendation for T2V-1.3B (README: 832x480, 81 frames, 50 steps, guidance 6,\n"
        "shift 8). Samplers: unipc = diffusers' UniPCMultistepScheduler (flow_prediction, flow sigmas, bh2,\n"
        "order 2), euler = FlowMatchEulerDiscreteScheduler; CFG = uncond + G (cond - uncond). Without --noise\n"
        "the noise is a counter-based generator of --seed (docs/wan.md): identical runs give identical\n"
        "latents whatever --threads. Memory: only the CPU path exists yet; --plan gives beefy and lightweight as\n"
        "not possible and auto picks cpu. Exit 65 for frames not 4k+1 or a size not a multiple of 16 (the\n"
        "message gives the nearest valid values), a missing or misshapen tensor (named), embeddings whose width\n"
        "is not the model's text_dim, noise of another shape, no 'negative' with G > 1, or a Wan checkpoint of\n"
        "another kind (image-to-video: not supported yet).\n"
        "\n"
        "Wan2.1 VACE (-m a checkpoint with vace_blocks.* and vace_patch_embedding, e.g. wan2.1-vace-1.3b: 15\n"
        "VACE blocks acting after blocks 0, 2, ..., 28; the same layouts and dtypes): the same denoising, each\n"
        "forward also running the VACE blocks on --vace-context (what vae encode --vace writes: the keyframes\n"
        "kept, the frames between to generate) and adding their hints, times --vace-scale, after the main blocks\n"
        "of vace_layers (config.json, else every k-th block, k = blocks / VACE blocks). Without --frames, --width,\n"
        "--height these come from the context's shape. Exit 64 for a VACE checkpoint without --vace-context or\n"
        "--vace-context given to a text-to-video checkpoint; 65 for a context whose shape is not [96, T, H/8, W/8]\n"
        "of the latents (both shapes said). segment.json records the context file, the scale and the VACE layers.",
    .opts = opts,
    .examples = "  flow-extract --pair a.png b.png --backward -o flow/\n"
                "  segment-gen --start a.png --end b.png --flow flow/flow_00000.flo \\\n"
                "      --flow-back flow/flow_bwd_00000.flo --frames 49 -o seg_000\n"
                "  segment-gen -m rife --start a.png --end b.png --frames 49 -o seg_000\n"
                "  segment-gen -m wan2.1-t2v-1.3b --text text.safetensors --index 3 --frames 81 \\\n"
                "      --width 832 --height 480 --seed 7 -o seg_003\n"
                "  vae encode --vace --start a.png --end b.png --frames 81 -o ctx_000.safetensors\n"
                "  segment-gen -m wan2.1-vace-1.3b --vace-context ctx_000.safetensors --text text.safetensors \\\n"
                "      --index 0 --seed 7 -o seg_000",
    .default_model = "morph",
    .min_args = 0,
    .max_args = 0,
    .common = CLI_C_ALL,
    .has_gpu_path = 1,   /* rife (explicit --memory-mode beefy|lightweight) */
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
    case OPT_FRAMES: rc = cli_int("frames", arg, LONG_MIN, 100000, &a->frames); a->frames_set = 1; break;
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
    case OPT_TEXT: a->text = arg; break;
    case OPT_NOISE: a->noise = arg; break;
    /* sizes: any integer parses; invalid ones are bad data (exit 65 with the nearest valid value) */
    case OPT_WIDTH: rc = cli_int("width", arg, LONG_MIN, 1 << 16, &a->width); break;
    case OPT_HEIGHT: rc = cli_int("height", arg, LONG_MIN, 1 << 16, &a->height); break;
    case OPT_STEPS: rc = cli_int("steps", arg, 1, 1000, &a->steps); break;
    case OPT_GUIDANCE: rc = cli_double("guidance", arg, 0, 1000, &a->guidance); break;
    case OPT_SHIFT: rc = cli_double("shift", arg, 1e-3, 1000, &a->shift); break;
    case OPT_SAMPLER: a->sampler = arg; break;
    case OPT_HEADS: rc = cli_int("heads", arg, 1, 4096, &a->heads); break;
    case OPT_VACE_CONTEXT: a->vace_context = arg; break;
    case OPT_VACE_SCALE: rc = cli_double("vace-scale", arg, 0, 100, &a->vace_scale); break;
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
    /* a name the registry knows is a keyframe model; anything else is a weights file or
     * directory holding a latent diffusion model (a Wan2.1 DiT) */
    if (c.model && !segmodel_find(c.model)) return cli_finish(segment_run_latent(&a, &c));
    return cli_finish(segment_run(&a, &c));
}
