/* gmotion.h — the dominant (global) motion of a frame pair, for flow-extract's
 * DIS: band-limited phase correlation of the whole frame and of a grid of
 * blocks, and an affine fit of the block shifts. Used as one more start
 * candidate per patch (dis.c), so large motions beyond the pyramid's reach
 * and periodic textures whose coarse levels alias lock to the right shift.
 * Shared by the CPU and CUDA paths (the CUDA path copies one small pyramid
 * level back to the host). */
#ifndef FLOW_GMOTION_H
#define FLOW_GMOTION_H

/* the level whose frame gmotion_estimate works on: the finest with a long side of at most GM_SIDE px */
#define GM_SIDE 256

/* A model fitted to fewer blocks, or to weaker peaks, is not trusted beyond
 * what dis.c can check (analytic set, tune part: a 160x120 translation of
 * 20 px was fitted from 9 blocks at a mean peak of 0.26, wrongly; the right
 * fits at 1920x1080 had 0.40-0.71) */
#define GM_SURE_BLOCKS 6
#define GM_SURE_PEAK 0.35

struct gmotion {
    int valid;   /* 0: no clear dominant motion, no candidate */
    int blocks;  /* blocks the affine model was fitted to (0: a whole-frame translation) */
    double peak; /* their mean correlation peak (1 = perfect shifts) */
    int sure;    /* blocks >= GM_SURE_BLOCKS and peak >= GM_SURE_PEAK: to be trusted where it cannot be checked */
    /* flow at (x, y), pixels of the level it was estimated on:
     * u = a[0] + a[1] x + a[2] y,  v = a[3] + a[4] x + a[5] y */
    double a[6];
};

struct pool;
/* estimate the dominant motion from I0 to I1 (w x h, grey levels), its
 * correlations spread over the pool (NULL: inline; the result does not
 * depend on the thread count); 0, or -1 when out of memory (then g->valid = 0) */
int gmotion_estimate(const float *I0, const float *I1, int w, int h, struct pool *pool, struct gmotion *g);
#endif
