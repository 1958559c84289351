/* segment.h — one segment-gen run: check the inputs, run the model chosen
 * with -m (segmodel.h) and publish DIR/frame_NNNNN.png + DIR/segment.json
 * as one directory (fs_dir_begin/fs_dir_publish), or nothing at all.
 * main.c fills struct segment_args from the command line. */
#ifndef ISOPIPE_SEGMENT_H
#define ISOPIPE_SEGMENT_H
#include "cli.h"

struct segment_args {
    const char *start, *end;        /* --start, --end keyframes (PNG) */
    const char *flow, *flow_back;   /* --flow (start -> end), --flow-back (end -> start), .flo */
    const char *scenes;             /* --scenes scenes.json, NULL for none */
    long index;                     /* --index I (-1: not given) */
    long frames;                    /* --frames N, keyframes included */
    double fps;                     /* --fps */
    int png_level;                  /* zlib level of the frames */
    double scale;                   /* --scale (0: not given) */
    int frames_set;                 /* --frames was given */
    /* latent (diffusion) models: wan_run.c */
    const char *text;               /* --text EMB.safetensors (text-encode) */
    const char *noise;              /* --noise NOISE.safetensors, NULL: --seed's generator */
    long width, height;             /* --width, --height in pixels (0: the model's default) */
    long steps;                     /* --steps (0: the sampler's default) */
    double guidance, shift;         /* --guidance, --shift (< 0: default) */
    const char *sampler;            /* --sampler unipc|euler (NULL: unipc) */
    long heads;                     /* --heads (0: config.json or dim/128) */
    const char *vace_context;       /* --vace-context CTX.safetensors (vae encode --vace), VACE models */
    double vace_scale;              /* --vace-scale (< 0: not given, 1) */
};

void segment_args_default(struct segment_args *a);
/* SIGINT and SIGTERM make a run stop, clean up and return ISO_EINTR (exit 130) */
/* 0 or a negative status with iso_fail's message */
int segment_run(const struct segment_args *a, const struct cli_common *c);
/* -m names no keyframe model of the registry: a latent diffusion model read
 * from a weights file (wan_run.c: a Wan2.1 T2V or VACE DiT) */
int segment_run_latent(const struct segment_args *a, const struct cli_common *c);
#endif
