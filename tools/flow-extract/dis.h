/* dis.h — dense optical flow by DIS (Dense Inverse Search, Kroeger, Timofte,
 * Dai and Van Gool, ECCV 2016) with variational refinement.
 * Per pyramid level, coarse to fine: (1) inverse-compositional gradient
 * descent on a grid of patches, initialised from the coarser level and from
 * neighbouring patches (spatial propagation), (2) densification by averaging
 * the overlapping patch flows weighted by their photometric error, (3) a
 * few fixed-point/SOR iterations of a variational energy (brightness and
 * gradient constancy, smoothness; Brox et al. ECCV 2004, DIS §3.3).
 * A struct dis owns its buffers for one frame size and may be reused for any
 * number of pairs of that size; it borrows the thread pool. Images are
 * grey float in [0, 255], row major; flows are planar u, v in pixels. */
#ifndef FLOW_DIS_H
#define FLOW_DIS_H

#include "pool.h"

enum dis_preset { DIS_PRESET_FAST = 0, DIS_PRESET_MEDIUM, DIS_PRESET_ACCURATE };

struct dis_params {
    int patch;        /* patch side, px */
    int stride;       /* spacing of the patch grid, px */
    int iters;        /* gradient-descent iterations per patch */
    int finest;       /* finest pyramid level computed (0 = full resolution; coarser is upsampled) */
    int coarsest;     /* coarsest level, -1 = from the frame size */
    int var_outer;    /* variational refinement: fixed-point iterations per level (0 = none) */
    int var_inner;    /* SOR sweeps per fixed-point iteration */
    int var_below;    /* fixed-point iterations at each level finer than `finest` (0: just upsample) */
    float alpha;      /* smoothness weight */
    float delta;      /* brightness constancy weight */
    float gamma;      /* gradient constancy weight */
    float omega;      /* SOR relaxation */
    float zeta;       /* data-term normalisation offset, grey levels per pixel */
    float smooth;     /* Gaussian sigma (px of the level) of the images the refinement's data terms read (0: none) */
    int mean_norm;    /* patch SSD on zero-mean patches (robust to brightness change) */
    int propagate;    /* spatial propagation between neighbouring patches */
    int cand;         /* below the coarsest level: also try the coarser flow +-cand px diagonally from each patch (0: off) */
    int global;       /* every patch level: also try the dominant motion of the pair (gmotion.h) as a start (0: off) */
    int search;       /* coarsest level: also descend from the best whole-pixel offset within +-search (0: off) */
};

void dis_params_preset(struct dis_params *p, enum dis_preset preset);
/* "fast", "medium", "accurate" -> preset; ISO_EUSAGE otherwise */
int dis_preset_parse(const char *name, enum dis_preset *out);
const char *dis_preset_name(enum dis_preset preset);

struct dis;
/* buffers for w x h frames; ISO_EDATA when the frame is smaller than the patch */
int dis_new(struct dis **out, int w, int h, const struct dis_params *p, struct pool *pool);
void dis_free(struct dis **d);
/* the coarsest level actually used (after the automatic choice) */
int dis_coarsest(const struct dis *d);
/* flow from I0 to I1 (both w x h) into u, v (w*h floats each) */
int dis_compute(struct dis *d, const float *I0, const float *I1, float *u, float *v);
#endif
