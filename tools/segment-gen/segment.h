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
};

void segment_args_default(struct segment_args *a);
/* SIGINT and SIGTERM make a run stop, clean up and return ISO_EINTR (exit 130) */
/* 0 or a negative status with iso_fail's message */
int segment_run(const struct segment_args *a, const struct cli_common *c);
#endif
