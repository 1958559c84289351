/* morph.h — the flow-guided morph between two keyframes (segment-gen's
 * default model; morph.c names the method and its source).
 * struct morph holds what does not depend on t: the keyframes and flows
 * (borrowed, not owned) and each pixel's splat priority, which encodes
 * whether it stays visible in the other keyframe (forward-backward check).
 * morph_frame renders one in-between frame into a caller's image using a
 * caller's scratch, so one struct morph serves many threads at once. */
#ifndef ISOPIPE_MORPH_H
#define ISOPIPE_MORPH_H
#include <stdint.h>

#include "flo.h"
#include "image.h"

/* a splat priority at or above this marks a pixel not visible in the other frame */
#define MORPH_OCCLUDED 1e6f

struct morph {
    int w, h, c;
    const struct image *a, *b;  /* keyframes at t = 0 and t = 1 (same size and channels) */
    const struct flow *f, *g;   /* a -> b and b -> a, same size as the images */
    float *cost_a;              /* (h, w) splat priority of a's pixels, lower wins; INFINITY: unusable flow */
    float *cost_b;              /* (h, w) the same for b's pixels */
};

/* Per-thread working buffers for one w x h frame. */
struct morph_scratch {
    int w, h;
    float *va, *vb;     /* (h, w, 2) motion a -> b splatted to time t from a, from b */
    float *za, *zb;     /* (h, w) splat depth of the winner (INFINITY: nothing landed) */
    float *vh;          /* (h, w, 2) hole-filled motion */
    int32_t *level;     /* (h, w) hole filling order */
    int32_t *queue;     /* (h * w) hole pixels in filling order */
};

/* Checks sizes (ISO_EDATA naming what differs) and computes the visibility
 * of every pixel. a, b, f, g must outlive m. */
int morph_init(struct morph *m, const struct image *a, const struct image *b,
               const struct flow *f, const struct flow *g);
void morph_free(struct morph *m);

int morph_scratch_alloc(struct morph_scratch *s, int w, int h);
void morph_scratch_free(struct morph_scratch *s);
/* bytes of one scratch, and of the per-segment state, for memory plans */
uint64_t morph_scratch_bytes(int w, int h);
uint64_t morph_state_bytes(int w, int h);

/* Render time t in [0, 1] into out (allocated by the caller: w x h x c). */
int morph_frame(const struct morph *m, struct morph_scratch *s, double t, struct image *out);

/* Fraction of a's and b's pixels found not visible in the other frame (for the report). */
void morph_occlusion_stats(const struct morph *m, double *frac_a, double *frac_b);
#endif
