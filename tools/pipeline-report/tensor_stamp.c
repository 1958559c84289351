/* tensor_stamp.c — a stamp file holding the sha256 of named tensors of a
 * weights file (MODEL=wan: one segment's prompt embedding and the negative
 * in text.safetensors), rewritten only when a digest changes. A Make target
 * that depends on the stamp instead of the whole file re-runs only when its
 * own tensors changed: editing one segment's prompt re-runs that segment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sha256.h"
#include "travel.h"
#include "weights.h"

int travel_tensor_stamp(const char *stamp, const char *file, int nnames, char **names)
{
    struct weights *w = NULL;
    int rc = weights_open(file, &w);
    if (rc) return iso_wrap(rc, "tensor-stamp");
    size_t cap = (size_t)nnames * 200 + 1, len = 0;
    char *out = malloc(cap);
    if (!out) { weights_close(&w); return iso_fail(ISO_EINTERNAL, "out of memory"); }
    out[0] = 0;
    for (int i = 0; i < nnames && !rc; i++) {
        const struct wt_tensor *t = weights_find(w, names[i]);
        if (!t) { rc = iso_fail(ISO_EDATA, "tensor-stamp: '%s' has no tensor '%s'", file, names[i]); break; }
        if (strlen(names[i]) > 100) { rc = iso_fail(ISO_EUSAGE, "tensor-stamp: name too long"); break; }
        struct sha256 s;
        uint8_t d[32];
        char hex[65];
        sha256_init(&s);
        sha256_update(&s, t->data, (size_t)t->nbytes);
        sha256_final(&s, d);
        sha256_hex(d, hex);
        len += (size_t)snprintf(out + len, cap - len, "%s %s %s", names[i], wt_dtype_name(t->dtype), hex);
        for (int k = 0; k < t->n_dims; k++) len += (size_t)snprintf(out + len, cap - len, " %lld", (long long)t->shape[k]);
        len += (size_t)snprintf(out + len, cap - len, "\n");
    }
    weights_close(&w);
    if (!rc) rc = travel_write_if_changed(stamp, out, len);
    free(out);
    return rc;
}
