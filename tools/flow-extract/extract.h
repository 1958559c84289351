/* extract.h — the flow-extract run: read frames (source.h), compute DIS
 * flow for consecutive selected frames (dis.h), write .flo files, colour
 * PNGs and flow.json into a temporary directory published whole at the end. */
#ifndef FLOW_EXTRACT_H
#define FLOW_EXTRACT_H

#include "cli.h"
#include "dis.h"

struct fx_opts {
    const char *input;      /* video, frame directory, or first PNG of --pair */
    const char *pair_b;     /* second PNG of --pair, or NULL */
    const char *output;     /* output directory */
    enum dis_preset preset;
    int every;              /* use frames 0, N, 2N, ... */
    int max_size;           /* downscale so the long side is at most this (0 = never) */
    int backward;           /* also i+1 -> i */
    int global;             /* the dominant-motion candidate (dis_params.global): 1 by default, 0 with --no-global-motion */
    int vis;                /* colour PNGs */
    double vis_max;         /* normalisation in px (<= 0: the run's largest magnitude) */
    int threads;
    const struct cli_common *common;
};

void fx_default_opts(struct fx_opts *o);
/* 0 or a negative status; nothing is left at o->output on failure */
int fx_run(const struct fx_opts *o);
#endif
