/* fixture.h — what the unit tests that compare against committed reference
 * fixtures (tests/fixtures, written by the scripts in tests/ref) share: the checkout's
 * root, a fixture tensor as float32, and the relative error they state their
 * tolerances in. */
#ifndef ISOPIPE_TEST_FIXTURE_H
#define ISOPIPE_TEST_FIXTURE_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "weights.h"

/* the checkout (tests/run.sh sets ISOPIPE_ROOT) */
static inline const char *fixture_root(void)
{
    const char *r = getenv("ISOPIPE_ROOT");
    return r ? r : ".";
}

/* a tensor of an open file as f32 (malloc'd), NULL when absent */
static inline float *fixture_tensor(struct weights *w, const char *name, uint64_t *n)
{
    const struct wt_tensor *t = weights_find(w, name);
    if (!t) return NULL;
    float *d = malloc(t->nelem * sizeof(float));
    if (d && weights_to_f32(t, 0, t->nelem, d)) { free(d); return NULL; }
    if (n) *n = t->nelem;
    return d;
}

/* max |a - b| / max |b| (max |a - b| when b is all zeros; NaN counts as the largest) */
static inline double fixture_rel_err(const float *a, const float *b, uint64_t n)
{
    double md = 0, mb = 0;
    for (uint64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}
#endif
