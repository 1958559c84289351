/* stitch.h — segments of PNG frames to one crossfaded H.264/MP4.
 * stitch_run() checks every input up front (directories, frame numbering,
 * sizes, segment.json), then streams: decoder threads (2 by default)
 * read PNGs ahead of the blender/encoder, and no more than max(K+1, 2)
 * decoded frames are alive at once, whatever the segment lengths. Outputs (the MP4, the
 * optional frame directory, the report) appear whole or not at all. */
#ifndef ISOPIPE_STITCH_H
#define ISOPIPE_STITCH_H
#include <stddef.h>

#define STITCH_MAX_OVERLAP 1000

struct stitch_opts {
    const char *output;       /* -o final.mp4 */
    const char *report;       /* --report FILE; NULL = stitch.json beside the output */
    const char *frames_out;   /* --frames-out DIR; NULL = none */
    int overlap;              /* K frames blended at each boundary */
    int crf;
    const char *preset;
    const char *codec;        /* NULL = libx264 (mpeg4 fallback) */
    double fps;               /* 0 = from segment.json, else 24 */
    int threads;              /* encoder threads, 0 = libavcodec's choice */
    int decoders;             /* PNG decoder threads (default 2) */
    int plan_only;            /* --plan: print the memory plan (JSON) and return */
    int memory_mode;          /* enum mem_mode from --memory-mode (auto and cpu run) */
    char **segdirs;
    int nseg;
};

void stitch_default_opts(struct stitch_opts *o);
/* 0 or a negative ISO_E* status with the message set */
int stitch_run(const struct stitch_opts *o);
/* SIGINT/SIGTERM make a running stitch_run stop with ISO_EINTR */

/* (a*(K-j) + b*j + K/2) / K for every byte, in place in a: the crossfade
 * weight of frame j (0..K-1) of the overlap. Exposed for tests. */
void stitch_blend(unsigned char *a, const unsigned char *b, size_t n, int j, int k);
#endif
