/* stitch — crossfade segments of PNG frames into one H.264/MP4. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "sig.h"
#include "stitch.h"
#include "video.h"

enum { OPT_OVERLAP = 1000, OPT_CRF, OPT_PRESET, OPT_FPS, OPT_FRAMES_OUT, OPT_REPORT, OPT_CODEC, OPT_DECODERS };

static const struct cli_opt opts[] = {
    { "overlap", 'k', "K", "frames blended at each boundary (default: 1 when every segment starts with the frame the previous one ends with, as segment-gen's do, else 0: concatenate)", OPT_OVERLAP },
    { "crf", 0, "N", "libx264 constant rate factor 0..51 (default 18; 0 is lossless in yuv420p)", OPT_CRF },
    { "preset", 0, "NAME", "libx264 preset, ultrafast .. placebo (default medium)", OPT_PRESET },
    { "fps", 0, "FPS", "frame rate (default: segment.json's fps, else 24)", OPT_FPS },
    { "frames-out", 0, "DIR", "also write the stitched frames as DIR/frame_NNNNN.png (+ DIR/frames.json)", OPT_FRAMES_OUT },
    { "report", 0, "FILE", "where the JSON report goes (default: stitch.json beside the video; none with -o -)", OPT_REPORT },
    { "codec", 0, "NAME", "encoder (default libx264; mpeg4 when libx264 is missing)", OPT_CODEC },
    { "decode-threads", 0, "N", "threads decoding PNGs ahead of the encoder, 1..8 (default 2)", OPT_DECODERS },
    { 0 },
};

static const struct cli_spec spec = {
    .tool = "stitch",
    .usage = "[options] -o final.mp4 SEGDIR...",
    .summary = "Crossfade segments of PNG frames and encode them as H.264 (yuv420p) in MP4.",
    .description =
        "Each SEGDIR holds frame_00000.png, frame_00001.png, ... (numbered from 0 without gaps)\n"
        "and optionally segment.json with \"fps\" and \"prompt\". All frames must have one size.\n"
        "\n"
        "Crossfade: the last K frames of the video so far are blended with the first K frames\n"
        "of the next segment, in RGB before colour conversion, frame j = 0..K-1 of the overlap\n"
        "being (a*(K-j) + b*j + K/2) / K (integer division). The video has sum(len) - (n-1)*K\n"
        "frames; every segment needs at least K frames.\n"
        "\n"
        "Odd sizes: yuv420p needs an even width and height, so an odd width or height is padded\n"
        "by one column or row repeating the last one (the log says so, and stitch.json records\n"
        "the encoded size). Colour: BT.601 limited range, tagged in the stream.\n"
        "\n"
        "The MP4 is written to a temporary file beside it and renamed when complete; the report\n"
        "(inputs, output frame ranges of each segment, encoder settings, timing, memory) goes\n"
        "to stitch.json beside the video. --threads sets the encoder's threads; PNGs are decoded\n"
        "on --decode-threads more, at most max(K+1, 2) frames ahead of the encoder (that many\n"
        "decoded frames are alive at once, whatever the segment lengths).\n"
        "\n"
        "-o - writes a fragmented MP4 to standard output (a pipe or a file, not a terminal), for\n"
        "players and muxers that read a stream; the report is then written only with --report.\n"
        "The output name must end in .mp4, .m4v or .mov: stitch writes nothing else.",
    .opts = opts,
    .examples = "  stitch --overlap 8 --crf 20 -o out/final.mp4 out/seg_000 out/seg_001 out/seg_002\n"
                "  stitch --frames-out out/frames -o out/final.mp4 out/seg_*\n"
                "  stitch -o - out/seg_* | ffplay -",
    .min_args = 0,
    .max_args = -1,
    .common = CLI_C_OUTPUT | CLI_C_MEMMODE | CLI_C_PLAN | CLI_C_THREADS,
    .has_gpu_path = 0,
    .dash_output = 1,
};

static int on_opt(void *ctx, int id, const char *arg)
{
    struct stitch_opts *o = ctx;
    long v;
    double d;
    int rc = 0;
    switch (id) {
    case OPT_OVERLAP: if (!(rc = cli_int("overlap", arg, 0, STITCH_MAX_OVERLAP, &v))) o->overlap = (int)v; break;
    case OPT_CRF: if (!(rc = cli_int("crf", arg, 0, 51, &v))) o->crf = (int)v; break;
    case OPT_PRESET: o->preset = arg; break;
    case OPT_FPS: if (!(rc = cli_double("fps", arg, 0.001, 1000, &d))) o->fps = d; break;
    case OPT_FRAMES_OUT: o->frames_out = arg; break;
    case OPT_REPORT: o->report = arg; break;
    case OPT_CODEC: if (!(rc = video_enc_check_codec(arg))) o->codec = arg; break;
    case OPT_DECODERS: if (!(rc = cli_int("decode-threads", arg, 1, 8, &v))) o->decoders = (int)v; break;
    default: rc = iso_fail(ISO_EINTERNAL, "unknown option id %d", id);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_common c;
    struct stitch_opts o;
    int first = 0;
    stitch_default_opts(&o);
    int rc = cli_parse(&spec, argc, argv, &c, on_opt, &o, &first);
    if (rc == 1) return 0;
    if (rc < 0) return iso_exit_code(rc);
    if ((rc = cli_start(&spec, &c))) return cli_finish(rc);
    o.output = c.output;
    o.threads = c.threads;
    o.plan_only = c.plan_only;
    o.memory_mode = c.memory_mode;
    o.segdirs = argv + first;
    o.nseg = argc - first;
    sig_install();
    rc = stitch_run(&o);
    return cli_finish(rc);
}
