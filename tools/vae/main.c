/* vae — the Wan2.1 video autoencoder: `vae decode` latents to frames,
 * `vae encode` frames to latents. Thin: the command picks a spec, the
 * command line goes into struct vae_args, then vae_decode_run /
 * vae_encode_run (vae_run.c). */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "sig.h"
#include "vae_run.h"

enum { OPT_PNG_LEVEL = 1000, OPT_TILE, OPT_TILE_OVERLAP, OPT_VACE, OPT_START, OPT_END, OPT_FRAMES, OPT_KEEP, OPT_KEEP_FRAMES, OPT_VIDEO, OPT_MASK };

static const struct cli_opt decode_opts[] = {
    { "png-level", 0, "L", "zlib level of the frames, 1 (fast) .. 9 (default 1)", OPT_PNG_LEVEL },
    { "tile", 0, "N", "tiles of N x N latent pixels (default: only past the host memory budget)", OPT_TILE },
    { "tile-overlap", 0, "K", "latent pixels neighbouring tiles share and blend (default N/4)", OPT_TILE_OVERLAP },
    { 0 },
};
static const struct cli_opt encode_opts[] = {
    { "vace", 0, NULL, "write the VACE conditioning `vace_context` instead of latents (see below)", OPT_VACE },
    { "start", 0, "A.png", "--vace: keyframe at frame 0 (kept)", OPT_START },
    { "end", 0, "B.png", "--vace: keyframe at frame N-1 (kept)", OPT_END },
    { "frames", 0, "N", "--vace: frames of the segment, 1 + 4k", OPT_FRAMES },
    { "keep", 0, "DIR", "--vace: previous segment's frames; its last K go to frames 0..K-1 (instead of --start)",
      OPT_KEEP },
    { "keep-frames", 0, "K", "--vace: how many frames of --keep", OPT_KEEP_FRAMES },
    { "video", 0, "DIR", "--vace: explicit video frames (frame_NNNNN.png, values 0..255 to [-1, 1])", OPT_VIDEO },
    { "mask", 0, "DIR", "--vace: explicit mask frames (255 = generate, 0 = keep; binarised at 0.5 for the video)",
      OPT_MASK },
    { 0 },
};

#define MODES_TEXT \
    "Memory: the decoder streams one latent frame at a time through the causal convolutions'\n" \
    "two-frame caches (as Wan does) and the encoder a first frame then chunks of four, so memory\n" \
    "does not grow with the number of frames; --plan prints the weights, the activation bound and\n" \
    "the peak RSS before anything is read. Modes: cpu (auto picks it: the GPU path has not been\n" \
    "verified on a card yet); beefy runs on CUDA with every weight on the device and whole frames;\n" \
    "lightweight the same weights, decoding in tiles sized to the free VRAM (--vram-reserve kept),\n" \
    "one tile through all frames at a time (each tile's frames wait on disk, beside the output,\n" \
    "for the blend: the plan's spill_bytes).\n" \
    "Both only when asked for (--memory-mode); without cuBLAS they say so and run on the CPU.\n" \
    "decode tiles space (--tile, or by itself when whole frames would exceed the host memory budget\n" \
    "in cpu mode, the device room in lightweight): each tile keeps its own caches and tiles\n" \
    "overlap and blend linearly; the plan and vae.json say which tile and why.\n" \
    "Weights (-m, default " VAE_DEFAULT_MODEL " in the model search path, or a path): a diffusers\n" \
    "AutoencoderKLWan directory (config.json + safetensors), a safetensors file with the original\n" \
    "Wan2.1 / ComfyUI names, or the original Wan2.1_VAE.pth; f32, f16 or bf16. The configuration\n" \
    "comes from config.json when there is one, else from the tensor shapes; latent mean/std from\n" \
    "config.json, else Wan2.1's published values. Only the half the command needs is bound.\n"

static const struct cli_spec decode_spec = {
    .tool = "vae decode",
    .usage = "[-m MODEL] LATENTS -o DIR",
    .summary = "Decode Wan2.1 latents to video frames.",
    .description =
        "LATENTS is a safetensors file holding `latents` (float32 [16, T, h, w], normalised as the DiT\n"
        "sees them) or a segment directory holding latents.safetensors. Writes DIR/frame_00000.png ...\n"
        "(1 + 4(T-1) frames of 8w x 8h, 8-bit RGB round(clamp((x+1)/2, 0, 1) * 255)) and DIR/vae.json\n"
        "(model, configuration source, frames, timing, memory), all at once or not at all. Decoding a\n"
        "segment directory keeps its segment.json and latents.safetensors (so it can decode in place).\n"
        "Exit 65 for latents whose channels differ from the model's z_dim, a missing `latents` tensor\n"
        "or a bad model file; 66 for a missing input; 73 when DIR exists, is not empty and holds\n"
        "neither a segment.json nor a vae.json of isopipe's.\n\n" MODES_TEXT,
    .opts = decode_opts,
    .examples = "  vae decode -m models/Wan2.1-VAE-diffusers latents.safetensors -o frames/\n"
                "  vae decode seg_000 -o seg_000",
    .default_model = VAE_DEFAULT_MODEL,
    .min_args = 1,
    .max_args = 1,
    .common = CLI_C_MODEL | CLI_C_OUTPUT | CLI_C_MEMORY | CLI_C_THREADS,
    .has_gpu_path = 1,
};

static const struct cli_spec encode_spec = {
    .tool = "vae encode",
    .usage = "[-m MODEL] FRAMES... -o OUT.safetensors | --vace (--start A.png | --keep DIR --keep-frames K) "
             "--end B.png --frames N -o CTX.safetensors | --vace --video DIR --mask DIR -o CTX.safetensors",
    .summary = "Encode video frames to normalised Wan2.1 latents.",
    .description =
        "FRAMES are PNG files in order, or one directory of frame_00000.png, frame_00001.png, ...:\n"
        "1 + 4k frames of one size, width and height multiples of 8. Writes OUT.safetensors with\n"
        "`latents` (float32 [16, 1 + k, H/8, W/8]): the posterior mean, normalised (mu - mean) / std.\n"
        "Exit 65 for another frame count or size (the message gives the nearest valid ones) or frames\n"
        "of different sizes; 66 for a missing frame; 73 when OUT exists and is not a vae output.\n\n"
        "--vace writes the conditioning of Wan's VACE models, `vace_context` float32 [96, T, H/8, W/8],\n"
        "built as diffusers' WanVACEPipeline builds it without reference images: the mask binarised at\n"
        "0.5, inactive = video * (1 - mask) and reactive = video * mask each encoded and normalised\n"
        "(16 + 16 channels), then the mask pixel-unshuffled 8x8 (64 channels) and resampled in time\n"
        "with nearest-exact to T. The video and mask come from --start A --end B --frames N (A at\n"
        "frame 0, B at frame N-1, both kept (mask 0); every other frame the neutral value 0 and to be\n"
        "generated (mask 1)); with --keep DIR --keep-frames K instead of --start, the last K frames of\n"
        "DIR are kept at frames 0..K-1 (continuity across segments); or from --video DIR --mask DIR.\n\n"
        MODES_TEXT,
    .opts = encode_opts,
    .examples = "  vae encode frames/ -o latents.safetensors\n"
                "  vae encode a.png b.png c.png d.png e.png -o latents.safetensors",
    .default_model = VAE_DEFAULT_MODEL,
    .min_args = 0,
    .max_args = -1,
    .common = CLI_C_MODEL | CLI_C_OUTPUT | CLI_C_MEMORY | CLI_C_THREADS,
    .has_gpu_path = 1,
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct vae_args *a = ctx;
    long v;
    int rc = 0;
    switch (id) {
    case OPT_PNG_LEVEL:
        if (!(rc = cli_int("png-level", arg, 1, 9, &v))) a->png_level = (int)v;
        break;
    case OPT_TILE: rc = cli_int("tile", arg, 1, 100000, &a->tile); break;
    case OPT_TILE_OVERLAP: rc = cli_int("tile-overlap", arg, 0, 100000, &a->tile_overlap); break;
    case OPT_VACE: a->vace = 1; break;
    case OPT_START: a->start = arg; break;
    case OPT_END: a->end = arg; break;
    case OPT_FRAMES: rc = cli_int("frames", arg, 0, 100000, &a->frames); break;
    case OPT_KEEP: a->keep = arg; break;
    case OPT_KEEP_FRAMES: rc = cli_int("keep-frames", arg, 1, 100000, &a->keep_frames); break;
    case OPT_VIDEO: a->video = arg; break;
    case OPT_MASK: a->mask = arg; break;
    default: rc = iso_fail(ISO_EINTERNAL, "unhandled option %d", id);
    }
    return rc;
}

static void top_help(FILE *f)
{
    fprintf(f,
            "usage: vae decode [-m MODEL] LATENTS -o DIR\n"
            "       vae encode [-m MODEL] FRAMES... -o OUT.safetensors\n"
            "The Wan2.1 video autoencoder (8x spatial, 4x temporal, 16 latent channels), streamed so that\n"
            "memory does not grow with the number of frames. 'vae decode --help' and 'vae encode --help'\n"
            "describe each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        top_help(stderr);
        return 64;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        top_help(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vae (isopipe) %s\n", ISOPIPE_VERSION);
#ifdef ISOPIPE_CUDA
        printf("built with CUDA (beefy and lightweight: not yet verified on a card)\n");
#else
        printf("built without CUDA (CPU only)\n");
#endif
        return 0;
    }
    const struct cli_spec *spec = !strcmp(argv[1], "decode") ? &decode_spec
                                : !strcmp(argv[1], "encode") ? &encode_spec : NULL;
    if (!spec) {
        fprintf(stderr, "vae: unknown command '%s' (decode or encode)\n", argv[1]);
        top_help(stderr);
        return 64;
    }
    struct vae_args a;
    memset(&a, 0, sizeof a);
    a.png_level = 1;
    a.tile_overlap = -1;
    struct cli_common c;
    int optind_out = 0;
    int rc = cli_parse(spec, argc - 1, argv + 1, &c, on_opt, &a, &optind_out);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    a.inputs = argv + 1 + optind_out;
    a.n_inputs = argc - 1 - optind_out;
    if ((rc = cli_start(spec, &c))) return cli_finish(rc);
    sig_install();
    /* Every chunk allocates and frees tensors of many MiB. glibc's dynamic
     * mmap threshold would move such sizes onto the heap after the first
     * frees, where fragmentation kept freed memory resident and the peak RSS
     * of an encode grew with the frame count (373 MiB for 5 frames, 478 MiB
     * for 17, base_dim 32 at 256x256); a fixed 1 MiB threshold keeps them
     * mmapped and returned on free (323 MiB for both). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (spec == &encode_spec && !a.vace && (a.start || a.end || a.frames || a.keep || a.keep_frames || a.video || a.mask)) {
        fprintf(stderr, "vae encode: --start, --end, --frames, --keep, --video and --mask go with --vace\n");
        return 64;
    }
    if (spec == &encode_spec && !a.vace && a.n_inputs == 0) {
        fprintf(stderr, "vae encode: missing argument (FRAMES...)\n");
        return 64;
    }
    if (spec == &decode_spec) return cli_finish(vae_decode_run(&a, &c));
    return cli_finish(a.vace ? vae_vace_run(&a, &c) : vae_encode_run(&a, &c));
}
