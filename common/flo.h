/* flo.h — dense optical flow fields and the Middlebury .flo format.
 * File layout (Baker et al., Middlebury flow page): float32 magic 202021.25,
 * int32 width, int32 height, then width*height (u, v) float32 pairs, row
 * major, little-endian. A flow owns its uv buffer. */
#ifndef ISOPIPE_FLO_H
#define ISOPIPE_FLO_H
#include <stddef.h>
#include <stdint.h>

#define FLO_MAGIC 202021.25f
/* Middlebury marks unknown flow with values above this */
#define FLO_UNKNOWN_THRESH 1e9f

struct flow {
    int w, h;
    float *uv; /* 2*w*h: u at [2*(y*w+x)], v at [2*(y*w+x)+1] */
};

int flow_alloc(struct flow *f, int w, int h);
void flow_free(struct flow *f);
int flo_read(const char *path, struct flow *f);
int flo_read_mem(const uint8_t *buf, size_t len, struct flow *f, const char *name);
/* non-atomic write (callers write inside a temporary output directory) */
int flo_write(const char *path, const struct flow *f);
int flo_write_atomic(const char *path, const struct flow *f);
#endif
